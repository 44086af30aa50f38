"""Attacks on the lease RPCs from both ends: a hostile client, and a hostile server.

- the client turns whatever a server sends (a lease dated outside years
  1-9999, a holder no store accepts, bytes that are no response, generations
  that are no numbers, another session's id) into the exceptions a store
  raises, never ``OverflowError``, ``DecodeError`` or ``ValueError``;
- a token is never in a server's output, nor in what another worker is told;
- over PostgreSQL a token holding NUL is LEASE_LOST, as over every store;
- a holder of 256 bytes of multi-byte UTF-8 comes back exactly in LEASE_HELD.
"""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from dsxir.checkpoint_store.v1 import service_pb2 as pb
from dsxir.checkpoint_store.v1 import service_pb2_grpc
from dsxir.errors import Conflict, IllegalHistory, LeaseHeld, LeaseLost, NotFound
from dsxir.store import Lease, MemoryStore
from dsxir.store.grpc import GrpcStore, ServiceError
from dsxir.store.grpc.protocol import DETAILS_KEY, DOMAIN
from service_fixtures import REPO, serve_in_thread

# --- a hostile server ----------------------------------------------------------------

_Answer = bytes | tuple[grpc.StatusCode, str, dict[str, str]]


class _Hostile(grpc.GenericRpcHandler):
    """Answers every call with ``answer``: response bytes, or a failure with ErrorInfo."""

    def __init__(self) -> None:
        self.answer: _Answer = b""

    def service(self, details: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(self._handle)

    def _handle(self, request: bytes, context: Any) -> bytes:
        if isinstance(self.answer, bytes):
            return self.answer
        code, reason, metadata = self.answer
        info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
        info.metadata.update(metadata)
        packed = any_pb2.Any()
        packed.Pack(info)
        status = status_pb2.Status(code=code.value[0], message="no", details=[packed])
        context.set_trailing_metadata(((DETAILS_KEY, status.SerializeToString()),))
        context.abort(code, "no")
        raise AssertionError("abort returned")


@pytest.fixture
def hostile() -> Iterator[tuple[_Hostile, GrpcStore]]:
    handler = _Hostile()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = GrpcStore(f"127.0.0.1:{port}", timeout=10)
    yield handler, client
    client.close()
    server.stop(0)


def _lease(seconds: int = 1_800_000_000, nanos: int = 0, **fields: str) -> pb.Lease:
    message = pb.Lease(**{"session_id": "s1", "holder": "h", "token": "t" * 32, **fields})
    message.expires_at.seconds = seconds
    message.expires_at.nanos = nanos
    return message


_LEASE = Lease("s1", "h", "a" * 32, _dt.datetime(2030, 1, 1, tzinfo=_dt.timezone.utc))
_CALLS: dict[str, Callable[[GrpcStore], object]] = {
    "acquire": lambda c: c.acquire_lease("s1", "h", ttl=30),
    "renew": lambda c: c.renew_lease(_LEASE, ttl=30),
    "get_lease": lambda c: c.get_lease("s1"),
}
_RESPONSES = {
    "acquire": pb.AcquireLeaseResponse,
    "renew": pb.RenewLeaseResponse,
    "get_lease": pb.GetLeaseResponse,
}


@pytest.mark.parametrize("call", list(_CALLS))
@pytest.mark.parametrize(
    "sent",
    [
        _lease(seconds=2**62),
        _lease(seconds=-(2**62)),
        _lease(seconds=253402300800),
        _lease(nanos=-1),
        _lease(nanos=1_000_000_000),
        _lease(holder="\x1b[2J"),
        _lease(holder="é" * 129),
    ],
    ids=["far-future", "far-past", "year-10000", "negative-nanos", "nanos-1e9", "ESC", "258B"],
)
def test_a_lease_no_store_gives_is_a_service_error(
    hostile: tuple[_Hostile, GrpcStore], call: str, sent: pb.Lease
) -> None:
    handler, client = hostile
    handler.answer = _RESPONSES[call](lease=sent).SerializeToString()
    with pytest.raises(ServiceError) as info:
        _CALLS[call](client)
    assert info.value.code == grpc.StatusCode.INTERNAL
    assert "invalid lease" in str(info.value)


@pytest.mark.parametrize("call", list(_CALLS))
def test_bytes_that_are_no_response_are_a_service_error(
    hostile: tuple[_Hostile, GrpcStore], call: str
) -> None:
    handler, client = hostile
    handler.answer = b"\xff\xff\xff\xff"
    with pytest.raises(ServiceError) as info:
        _CALLS[call](client)
    assert _RESPONSES[call].DESCRIPTOR.name in str(info.value)


def test_the_other_calls_refuse_bytes_that_are_no_response_too(
    hostile: tuple[_Hostile, GrpcStore],
) -> None:
    handler, client = hostile
    handler.answer = b"\xff\xff\xff\xff"
    for call in (lambda: client.get("s1"), client.list, lambda: client.put(_cp())):
        with pytest.raises(ServiceError):
            call()


def _cp() -> Any:
    from store_util import make_cp

    return make_cp("s1")


@pytest.mark.parametrize(
    ("expected", "stored", "actual"),
    [("zz", "1", 1), ("9" * 5000, "-3", None), ("\u0663", "1e3", None), ("", "0", None)],
)
def test_generations_that_are_no_numbers_are_none(
    hostile: tuple[_Hostile, GrpcStore], expected: str, stored: str, actual: int | None
) -> None:
    handler, client = hostile
    metadata = {"expected_generation": expected, "stored_generation": stored}
    handler.answer = (grpc.StatusCode.ABORTED, "GENERATION_CONFLICT", metadata)
    with pytest.raises(Conflict) as info:
        client.put(_cp(), expected_generation=4)
    assert info.value.session_id == "s1"
    assert (info.value.expected, info.value.actual) == (None, actual)


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("LEASE_HELD", LeaseHeld),
        ("LEASE_LOST", LeaseLost),
        ("ILLEGAL_HISTORY", IllegalHistory),
        ("SESSION_NOT_FOUND", NotFound),
    ],
)
def test_a_failure_names_the_session_asked_about(
    hostile: tuple[_Hostile, GrpcStore], reason: str, error: type[Exception]
) -> None:
    handler, client = hostile
    code = (
        grpc.StatusCode.NOT_FOUND
        if reason == "SESSION_NOT_FOUND"
        else grpc.StatusCode.FAILED_PRECONDITION
    )
    handler.answer = (code, reason, {"session_id": "../../other\x1b[2J", "holder": "h"})
    with pytest.raises(error) as info:
        client.acquire_lease("s1", "h", ttl=30)
    assert info.value.session_id == "s1"  # type: ignore[attr-defined]
    assert "other" not in str(info.value)


# --- tokens stay secret ----------------------------------------------------------------


def test_no_token_reaches_the_server_output_or_another_worker(tmp_path: Any) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dsxir.cli",
            "serve",
            "--store",
            f"file:{tmp_path / 'store'}",
            "--listen",
            "127.0.0.1:0",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "always"},
    )
    told: list[str] = []
    tokens: list[str] = []
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving on "), line
        with (
            GrpcStore(line.split()[-1], timeout=30) as a,
            GrpcStore(line.split()[-1], timeout=30) as b,
        ):
            held = a.acquire_lease("s1", "worker-a", ttl=30)
            tokens.append(held.token)
            tokens.append(a.renew_lease(held, ttl=30).token)
            near = held.token[:-1] + ("1" if held.token[-1] == "0" else "0")
            for attempt in (
                lambda: b.acquire_lease("s1", "worker-b", ttl=30),
                lambda: b.renew_lease(Lease("s1", "b", near, held.expires_at), ttl=1),
                lambda: b.renew_lease(Lease("s1", "b", "\x00" * 32, held.expires_at), ttl=1),
                lambda: b.renew_lease(Lease("s1", "b", "x" * 256, held.expires_at), ttl=1),
            ):
                with pytest.raises((LeaseHeld, LeaseLost)) as info:
                    attempt()
                told.append(f"{info.value!s} {info.value!r} {vars(info.value)}")
            told.append(repr(b.get_lease("s1")))
            a.release_lease(held)
            with pytest.raises(LeaseLost) as lost:
                a.renew_lease(held, ttl=30)
            told.append(str(lost.value))
            second = b.acquire_lease("s1", "worker-b", ttl=30)
            tokens.append(second.token)
            with pytest.raises(LeaseLost) as taken:
                a.renew_lease(held, ttl=30)
            told.append(str(taken.value))
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert len(set(tokens)) == 2 and all(len(token) == 32 for token in tokens)
    for token in set(tokens):
        assert token not in out and token not in err
        assert all(token not in text for text in told), told


@pytest.mark.parametrize("token", ["e", "s", "1", "sion-o"])
def test_a_short_token_never_garbles_the_lease_lost_status(token: str) -> None:
    server = serve_in_thread(MemoryStore())
    channel = grpc.insecure_channel(server.address)
    try:
        server.store.acquire_lease("session-one", "the holder", ttl=30)
        stub = service_pb2_grpc.CheckpointStoreServiceStub(channel)
        request = pb.RenewLeaseRequest(session_id="session-one", token=token)
        request.ttl.seconds = 30
        with pytest.raises(grpc.RpcError) as info:
            stub.RenewLease(request, timeout=30)
        status = rpc_status.from_call(info.value)
        found = error_details_pb2.ErrorInfo()
        status.details[0].Unpack(found)
        assert found.reason == "LEASE_LOST"
        assert found.metadata["session_id"] == "session-one"  # was "s***ssion-on***"
        assert info.value.details() == (
            'lease on session "session-one" lost: it expired and '
            "'the holder' took the session over"
        )
    finally:
        channel.close()
        server.stop(1)


def test_a_nul_token_over_postgres_is_lease_lost(tmp_path: Any) -> None:
    from service_fixtures import backend

    server = serve_in_thread(backend("postgres", tmp_path))
    try:
        with GrpcStore(server.address, timeout=30) as client:
            held = client.acquire_lease("s1", "h", ttl=30)
            forged = Lease("s1", "h", "\x00" + held.token[1:], held.expires_at)
            with pytest.raises(LeaseLost):  # was INTERNAL: the driver refused the NUL
                client.renew_lease(forged, ttl=30)
            client.release_lease(forged)
            assert client.get_lease("s1") == Lease("s1", "h", "", held.expires_at)
    finally:
        server.stop(1)


# --- a long multi-byte holder ----------------------------------------------------------


@pytest.mark.parametrize("holder", ["é" * 128, "\U0001f600" * 64, "界" * 85 + "a"])
def test_a_256_byte_holder_comes_back_exactly_in_lease_held(holder: str) -> None:
    assert len(holder.encode()) == 256
    server = serve_in_thread(MemoryStore())
    try:
        with GrpcStore(server.address, timeout=30) as client:
            held = client.acquire_lease("s1", holder, ttl=30)
            assert held.holder == holder
            with pytest.raises(LeaseHeld) as info:
                client.acquire_lease("s1", "other", ttl=30)
            assert info.value.holder == holder
            assert info.value.expires_at == held.expires_at
            shown = client.get_lease("s1")
            assert shown is not None and shown.holder == holder
    finally:
        server.stop(1)
