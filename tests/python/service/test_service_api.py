"""CheckpointStoreService: validation, status codes, limits, auth, TLS, paging, health, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (  # type: ignore[import-untyped]
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status  # type: ignore[import-untyped]

from dsxir.checkpoint_store.v1 import error_reason_pb2, service_pb2_grpc
from dsxir.checkpoint_store.v1 import service_pb2 as pb
from dsxir.errors import Conflict, InvalidCheckpoint, InvalidSessionId, NotFound
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import SESSION_STATUS_PAUSED, Checkpoint
from dsxir.optimizer_session.wire import varint
from dsxir.service import CheckpointServer, ServerConfig, TlsFiles
from dsxir.store import MemoryStore, open_store
from dsxir.store.grpc import GrpcStore, ResourceExhausted, Unauthenticated, Unavailable
from dsxir.store.grpc.errors import from_rpc_error
from dsxir.store.grpc.protocol import SERVICE_NAME
from dsxir.store.postgres import PostgresStore
from service_fixtures import REPO, TOKEN, ServerProcess, serve_in_thread
from store_util import make_cp, sealed_message

VECTORS = REPO / "tests" / "vectors"


@pytest.fixture
def served() -> Iterator[tuple[CheckpointServer, grpc.Channel]]:
    server = serve_in_thread(MemoryStore())
    channel = grpc.insecure_channel(server.address)
    yield server, channel
    channel.close()
    server.stop(1)


def _put_raw(channel: grpc.Channel, body: bytes, expected: int = 0) -> Any:
    """PutCheckpoint with ``body`` as the checkpoint field's bytes, untouched."""
    request = b"\x0a" + varint(len(body)) + body
    if expected:
        request += b"\x10" + varint(expected)
    call = channel.unary_unary(f"/{SERVICE_NAME}/PutCheckpoint")
    return call(request, timeout=30)


def _details(error: grpc.RpcError) -> tuple[Any, Any]:
    status = rpc_status.from_call(error)
    info = bad = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == "dsxir.checkpoint_store.v1"
            error_reason_pb2.ErrorReason.Value(info.reason)  # raises for an unknown reason
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
    return info, bad


# --- validation: the server never stores what a reader refuses -------------------


def test_every_invalid_vector_is_refused_naming_its_field(
    served: tuple[CheckpointServer, grpc.Channel],
) -> None:
    server, channel = served
    manifest = json.loads((VECTORS / "manifest.json").read_text())
    assert len(manifest["invalid"]) > 40
    for vector in manifest["invalid"]:
        body = (VECTORS / vector["binpb"]).read_bytes()
        with pytest.raises(grpc.RpcError) as info:
            _put_raw(channel, body)
        error = info.value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, vector["name"]
        detail, bad = _details(error)
        assert detail.reason == "INVALID_CHECKPOINT", vector["name"]
        assert detail.metadata["field"] == vector["field"], vector["name"]
        assert detail.metadata["rule"] == vector["rule"], vector["name"]
        mapped = from_rpc_error(error)  # what the Python client raises
        assert isinstance(mapped, InvalidCheckpoint), vector["name"]
        assert (mapped.path, mapped.rule) == (vector["field"], vector["rule"]), vector["name"]
        expected_field = (
            "<input>" if vector["field"] == "<input>" else "checkpoint." + vector["field"]
        )
        assert bad.field_violations[0].field == expected_field
        assert vector["field"] in error.details()
    assert server.store.list() == []


def test_valid_and_newer_vectors_are_stored_as_canonical_bytes(
    served: tuple[CheckpointServer, grpc.Channel],
) -> None:
    server, channel = served
    manifest = json.loads((VECTORS / "manifest.json").read_text())
    client = GrpcStore(server.address)
    for vector in manifest["valid"] + manifest["unknown"]:
        body = (VECTORS / vector["binpb"]).read_bytes()
        session_id = checkpoint.decode(body).session_id
        client.delete(session_id)
        response = pb.PutCheckpointResponse.FromString(_put_raw(channel, body))
        assert response.generation == 1
        stored = client.get(session_id)
        assert stored.generation == 1
        assert checkpoint.encode(stored.checkpoint) == body, vector["name"]
    client.close()


def test_garbage_request_bytes_are_invalid_argument(
    served: tuple[CheckpointServer, grpc.Channel],
) -> None:
    _, channel = served
    for method in ("PutCheckpoint", "GetCheckpoint", "ListSessions", "DeleteCheckpoint"):
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(f"/{SERVICE_NAME}/{method}")(b"\xff\xff\xff", timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method


def test_request_fields_are_checked(served: tuple[CheckpointServer, grpc.Channel]) -> None:
    server, channel = served
    stub = service_pb2_grpc.CheckpointStoreServiceStub(channel)
    cases: list[tuple[Any, Any, str, str]] = [
        (stub.PutCheckpoint, pb.PutCheckpointRequest(), "INVALID_REQUEST", "checkpoint"),
        (
            stub.PutCheckpoint,
            pb.PutCheckpointRequest(checkpoint=sealed_message(make_cp()), expected_generation=-1),
            "INVALID_REQUEST",
            "expected_generation",
        ),
        (
            stub.PutCheckpoint,
            pb.PutCheckpointRequest(checkpoint=sealed_message(make_cp("../up"))),
            "INVALID_SESSION_ID",
            "checkpoint.session_id",
        ),
        (
            stub.GetCheckpoint,
            pb.GetCheckpointRequest(session_id=".hidden"),
            "INVALID_SESSION_ID",
            "session_id",
        ),
        (stub.ListSessions, pb.ListSessionsRequest(page_size=-5), "INVALID_REQUEST", "page_size"),
        (
            stub.ListSessions,
            pb.ListSessionsRequest(page_token="nonsense"),
            "INVALID_REQUEST",
            "page_token",
        ),
    ]
    for method, request, reason, field in cases:
        with pytest.raises(grpc.RpcError) as info:
            method(request, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        detail, bad = _details(info.value)
        assert (detail.reason, bad.field_violations[0].field) == (reason, field)
    assert server.store.list() == []


def test_status_codes_map_back_to_store_errors(grpc_over_memory: GrpcStore) -> None:
    store = grpc_over_memory
    with pytest.raises(NotFound) as missing:
        store.get("nobody")
    assert missing.value.session_id == "nobody"
    cp = make_cp()
    store.put(cp)
    with pytest.raises(Conflict) as conflict:
        store.put(cp, expected_generation=7)
    assert (conflict.value.session_id, conflict.value.expected, conflict.value.actual) == (
        "s1",
        7,
        1,
    )
    with pytest.raises(InvalidSessionId):
        store.get("a/b")
    bad = make_cp()
    bad.progress.attempts = 0
    checkpoint.record_trial(bad, score=1.0)
    bad.progress.attempts = 0
    with pytest.raises(InvalidCheckpoint) as refused:
        store.put(bad, expected_generation=1)
    assert refused.value.path == "progress.attempts"
    assert refused.value.rule == "counters.attempts"


def test_status_codes_seen_by_a_raw_client(served: tuple[CheckpointServer, grpc.Channel]) -> None:
    _, channel = served
    stub = service_pb2_grpc.CheckpointStoreServiceStub(channel)
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetCheckpoint(pb.GetCheckpointRequest(session_id="x"), timeout=30)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert _details(missing.value)[0].reason == "SESSION_NOT_FOUND"
    stub.PutCheckpoint(pb.PutCheckpointRequest(checkpoint=sealed_message(make_cp("x"))), timeout=30)
    with pytest.raises(grpc.RpcError) as conflict:
        stub.PutCheckpoint(
            pb.PutCheckpointRequest(checkpoint=sealed_message(make_cp("x"))), timeout=30
        )
    assert conflict.value.code() == grpc.StatusCode.ABORTED
    detail = _details(conflict.value)[0]
    assert (detail.reason, detail.metadata["stored_generation"]) == ("GENERATION_CONFLICT", "1")
    stub.DeleteCheckpoint(pb.DeleteCheckpointRequest(session_id="x"), timeout=30)
    stub.DeleteCheckpoint(pb.DeleteCheckpointRequest(session_id="x"), timeout=30)


def test_every_reason_is_an_error_reason_name() -> None:
    from dsxir.store.grpc.protocol import DOMAIN, Reason

    names = {v for k, v in vars(Reason).items() if not k.startswith("_")}
    assert names == set(error_reason_pb2.ErrorReason.keys()) - {"ERROR_REASON_UNSPECIFIED"}
    assert DOMAIN == "dsxir.checkpoint_store.v1"


# --- limits -------------------------------------------------------------------------


def test_a_message_over_the_limit_is_resource_exhausted() -> None:
    backing = MemoryStore()
    server = serve_in_thread(backing, max_message_bytes=64 * 1024)
    client = GrpcStore(server.address)
    with pytest.raises(ResourceExhausted) as too_big:
        client.put(make_cp(blob=b"x" * 100_000))
    assert too_big.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert backing.list() == []
    client.put(make_cp(blob=b"x" * 30_000))  # under the limit: fine
    backing.put(make_cp("big", blob=b"y" * 100_000))  # stored by other means
    with pytest.raises(ResourceExhausted):
        client.get("big")  # the response would be over the server's limit
    client.close()
    server.stop(1)


# --- authentication -------------------------------------------------------------------


def test_token_auth(tmp_path: Path) -> None:
    backing = MemoryStore()
    server = serve_in_thread(backing, token=TOKEN)
    anonymous = GrpcStore(server.address)
    wrong = GrpcStore(server.address, token=TOKEN[:-1] + "X")
    right = GrpcStore(server.address, token=TOKEN)
    for client in (anonymous, wrong):
        for call in (
            lambda c=client: c.put(make_cp()),
            lambda c=client: c.get("s1"),
            lambda c=client: c.list(),
            lambda c=client: c.delete("s1"),
            lambda c=client: next(iter(c.watch("s1"))),
        ):
            with pytest.raises(Unauthenticated) as denied:
                call()
            assert denied.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert backing.list() == []
    assert right.put(make_cp()) == 1
    assert [item.session_id for item in right.list()] == ["s1"]
    # Health checks need no token; reflection does.
    channel = grpc.insecure_channel(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(Exception, match=r"UNAUTHENTICATED|Unauthenticated|token"):
        ProtoReflectionDescriptorDatabase(channel).get_services()
    # A token file works through the URL.
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    by_url = open_store(f"grpc://{server.address}?token_file={token_file}")
    assert isinstance(by_url, GrpcStore) and by_url.get("s1").generation == 1
    for client in (anonymous, wrong, right, by_url):
        client.close()
    channel.close()
    server.stop(1)


def test_health_and_reflection(served: tuple[CheckpointServer, grpc.Channel]) -> None:
    server, channel = served
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=30)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= services
    found = database.FindFileContainingSymbol(SERVICE_NAME)
    assert found.name == "dsxir/checkpoint_store/v1/service.proto"
    server.stop(1)
    with pytest.raises(grpc.RpcError):
        health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)


# --- TLS -------------------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return cert, key


def test_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = _self_signed(tmp_path)
    server = serve_in_thread(MemoryStore(), tls=TlsFiles(str(cert), str(key)), token=TOKEN)
    monkeypatch.setenv("TLS_TOKEN", TOKEN)
    secure = GrpcStore.from_url(
        f"grpcs://localhost:{server.port}?ca_file={cert}&token_env=TLS_TOKEN"
    )
    assert secure.put(make_cp()) == 1
    assert secure.get("s1").generation == 1
    plain = GrpcStore(f"127.0.0.1:{server.port}", token=TOKEN, timeout=5)
    with pytest.raises(Unavailable):
        plain.get("s1")
    untrusted = GrpcStore.from_url(f"grpcs://localhost:{server.port}?timeout=5")
    with pytest.raises(Unavailable):
        untrusted.get("s1")  # the system roots do not trust a self-signed certificate
    for client in (secure, plain, untrusted):
        client.close()
    server.stop(1)


# --- paging (AIP-158) --------------------------------------------------------------------


def test_list_sessions_pages(served: tuple[CheckpointServer, grpc.Channel]) -> None:
    server, channel = served
    for i in range(25):
        cp = make_cp(f"s{i:02d}", optimizer="a.Opt" if i % 2 else "b.Opt")
        if i % 5 == 0:
            checkpoint.pause(cp)
        server.store.put(cp)
    stub = service_pb2_grpc.CheckpointStoreServiceStub(channel)
    seen: list[str] = []
    request = pb.ListSessionsRequest(page_size=10)
    pages = 0
    while True:
        response = stub.ListSessions(request, timeout=30)
        pages += 1
        seen += [item.session_id for item in response.sessions]
        assert len(response.sessions) <= 10
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    assert pages == 3 and seen == [f"s{i:02d}" for i in range(25)]
    paused = stub.ListSessions(
        pb.ListSessionsRequest(status=SESSION_STATUS_PAUSED, page_size=2), timeout=30
    )
    assert [s.session_id for s in paused.sessions] == ["s00", "s05"]
    assert paused.sessions[0].status == SESSION_STATUS_PAUSED
    with pytest.raises(grpc.RpcError) as changed:  # a token is bound to its filters
        stub.ListSessions(
            pb.ListSessionsRequest(page_size=2, page_token=paused.next_page_token), timeout=30
        )
    assert changed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    rest = stub.ListSessions(
        pb.ListSessionsRequest(
            status=SESSION_STATUS_PAUSED, page_size=2, page_token=paused.next_page_token
        ),
        timeout=30,
    )
    assert [s.session_id for s in rest.sessions] == ["s10", "s15"]
    client = GrpcStore(server.address)
    assert [i.session_id for i in client.list(optimizer="a.Opt")] == [
        f"s{i:02d}" for i in range(1, 25, 2)
    ]
    client.close()


def test_list_pages_on_postgres(pg_store_served: tuple[PostgresStore, GrpcStore]) -> None:
    store, client = pg_store_served
    for i in range(7):
        store.put(make_cp(f"p{i}"))
    assert [item.session_id for item in store.list_page(after="p2", limit=3)] == ["p3", "p4", "p5"]
    assert [item.session_id for item in client.list()] == [f"p{i}" for i in range(7)]


@pytest.fixture
def pg_store_served(
    pg_store: PostgresStore,
) -> Iterator[tuple[PostgresStore, GrpcStore]]:
    server = serve_in_thread(pg_store)
    client = GrpcStore(server.address)
    yield pg_store, client
    client.close()
    server.stop(1)


# --- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "grpc://localhost",
        "grpc://:50051",
        "grpc://host:1/path",
        "grpc://user@host:1",
        "grpc://host:1?token=abc",
        "grpc://host:1?ca_file=/x",
    ],
)
def test_bad_grpc_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        GrpcStore.from_url(url)


def test_store_urls_resolve(tmp_path: Path) -> None:
    pg = open_store("postgresql://u@127.0.0.1:1/db?schema=abc&pool_max=3&connect_timeout=2")
    assert isinstance(pg, PostgresStore) and pg.schema == "abc"
    assert "connect_timeout=2" in repr(pg) and "schema=abc&" not in repr(pg)
    pg.close()
    with pytest.raises(ValueError, match="schema"):
        open_store("postgresql://u@h/db?schema=Bad-Name")
    remote = open_store("grpc://127.0.0.1:1")
    assert isinstance(remote, GrpcStore)
    remote.close()
    assert isinstance(open_store("memory:"), MemoryStore)
    assert ServerConfig().listen == "127.0.0.1:50051"


# --- graceful shutdown and the serve command ----------------------------------------------


class _SlowStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()

    def put(self, cp: Checkpoint, *, expected_generation: int | None = None) -> int:
        self.entered.set()
        time.sleep(1.0)
        return super().put(cp, expected_generation=expected_generation)


def test_shutdown_finishes_commits_in_flight() -> None:
    slow = _SlowStore()
    server = serve_in_thread(slow)
    client = GrpcStore(server.address)
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(client.put(make_cp())))
    worker.start()
    assert slow.entered.wait(10)
    started = time.monotonic()
    server.stop(grace=10)  # what SIGTERM does
    worker.join(10)
    assert results == [1] and slow.get("s1").generation == 1
    assert time.monotonic() - started < 5
    with pytest.raises(Unavailable):
        GrpcStore(server.address, timeout=2).get("s1")
    client.close()


def test_serve_command_runs_and_stops_on_sigterm(tmp_path: Path) -> None:
    process = ServerProcess(["--store", f"file:{tmp_path / 'store'}", "--listen", "127.0.0.1:0"])
    assert process.address.startswith("127.0.0.1:")
    client = GrpcStore(process.address)
    assert client.put(make_cp()) == 1
    code, out = process.terminate()
    assert code == 0 and "stopped" in out
    client.close()
    assert open_store(f"file:{tmp_path / 'store'}").get("s1").generation == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "50051"], "HOST:PORT"),
        (["--listen", "127.0.0.1:1", "--max-message-bytes", "10"], "max message size"),
        (["--listen", "127.0.0.1:1", "--token-env", "DSXIR_NO_SUCH_VAR"], "token"),
        (["--listen", "127.0.0.1:1", "--tls-cert", "x.pem"], "--tls-key"),
        (["--store", "s3://bucket"], "unknown store URL"),
    ],
)
def test_serve_command_usage_errors(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dsxir.cli", "serve", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_serve_reports_an_unusable_address() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dsxir.cli", "serve", "--store", "memory:",
         "--listen", "256.0.0.1:1", "--insecure"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 6 and "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr
