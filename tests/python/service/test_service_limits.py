"""Hostile clients: half-open streams, huge requests, stuck watchers, bad tokens and fields.

Each test holds one limit of docs/security.md (service section). Servers run
on loopback; the memory test measures a server process through
/proc/PID/status and kills it if it ever grows past what the test allows, so
a regression fails the test without taking the machine's memory.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from dsxir.checkpoint_store.v1 import service_pb2 as pb
from dsxir.checkpoint_store.v1 import service_pb2_grpc
from dsxir.errors import CorruptStore, StoreUnavailable
from dsxir.optimizer_session import accel
from dsxir.optimizer_session.wire import varint
from dsxir.service import CheckpointServer, ServerConfig
from dsxir.store import FileStore, MemoryStore
from dsxir.store.grpc import GrpcStore, ResourceExhausted, ServiceError, Unavailable
from dsxir.store.grpc.protocol import SERVICE_NAME
from service_fixtures import (
    REPO,
    TOKEN,
    backend,
    serve_in_thread,
    start_server_process,
    wait_until,
)
from store_util import make_cp

MIB = 1024 * 1024
PUT = f"/{SERVICE_NAME}/PutCheckpoint"
GET = f"/{SERVICE_NAME}/GetCheckpoint"
LIST = f"/{SERVICE_NAME}/ListSessions"
WATCH = f"/{SERVICE_NAME}/WatchSession"


# --- helpers ------------------------------------------------------------------------


def _own_channel(address: str) -> grpc.Channel:
    """A channel with a TCP connection of its own (not shared with other channels)."""
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def _silent(stop: threading.Event) -> Iterator[bytes]:
    """A request stream that sends nothing until ``stop`` is set."""
    stop.wait()
    yield from ()


@contextlib.contextmanager
def half_open(
    address: str, count: int, method: str = PUT, metadata: Any = None, per_connection: int = 100
) -> Iterator[list[Any]]:
    """``count`` calls that send their headers and never their request message."""
    stop = threading.Event()
    channels = [_own_channel(address) for _ in range(-(-count // per_connection))]
    calls = [
        channels[i // per_connection]
        .stream_unary(method)
        .future(_silent(stop), metadata=metadata, timeout=120)
        for i in range(count)
    ]
    try:
        yield calls
    finally:
        for call in calls:
            call.cancel()
        stop.set()
        for channel in channels:
            channel.close()


def _health_latency(address: str, timeout: float = 5, channel: grpc.Channel | None = None) -> float:
    """Seconds a health check takes (on a new connection unless ``channel`` is given)."""
    own = channel is None
    channel = _own_channel(address) if channel is None else channel
    try:
        started = time.monotonic()
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=timeout
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        return time.monotonic() - started
    finally:
        if own:
            channel.close()


def _reason(error: grpc.RpcError) -> str | None:
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return None


def _put_request(checkpoint_bytes: bytes) -> bytes:
    return b"\x0a" + varint(len(checkpoint_bytes)) + checkpoint_bytes


def _hostile_put(size: int) -> bytes:
    """A PutCheckpoint of ``size`` bytes of empty trial entries: about 54 bytes to parse each."""
    entries = b"\x0a\x00" * ((size - 64) // 2)
    progress = b"\x4a" + varint(len(entries)) + entries
    return _put_request(progress)


# --- 1. admission: half-open streams, unauthenticated calls, the call cap, the read timeout --


def test_half_open_streams_do_not_stop_the_service() -> None:
    server = serve_in_thread(MemoryStore())  # the defaults: 32 workers, 256 calls
    client = GrpcStore(server.address, timeout=5)
    client.put(make_cp("s1"))
    with half_open(server.address, 200) as calls:
        time.sleep(0.5)  # every stream has reached the server
        assert not any(call.done() for call in calls)
        latencies = [_health_latency(server.address) for _ in range(5)]
        started = time.monotonic()
        assert client.get("s1").generation == 1
        get_latency = time.monotonic() - started
        assert [item.session_id for item in client.list()] == ["s1"]
    print(f"health {max(latencies) * 1000:.1f} ms, get {get_latency * 1000:.1f} ms")
    assert max(latencies) < 1 and get_latency < 1
    client.close()
    server.stop(1)


def test_unauthenticated_calls_are_refused_before_their_message() -> None:
    server = serve_in_thread(MemoryStore(), token=TOKEN)
    for method in (PUT, GET, LIST, WATCH, "/grpc.reflection.v1alpha.ServerReflection/X"):
        with half_open(server.address, 40, method) as calls:
            for call in calls:
                error = call.exception(timeout=5)  # answered without the request message
                assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert server.limits.calls.held == 0
    server.stop(1)


def test_a_call_that_sends_nothing_is_ended_after_the_read_timeout() -> None:
    server = serve_in_thread(MemoryStore(), read_timeout=0.5)
    for method in (PUT, GET, LIST, WATCH):
        with half_open(server.address, 20, method) as calls:
            started = time.monotonic()
            for call in calls:
                error = call.exception(timeout=10)
                assert error is not None and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert "read timeout" in error.details()
            assert time.monotonic() - started < 5
    wait_until(lambda: server.limits.calls.held == 0, 5, "call slots given back")
    server.stop(1)


def test_calls_without_their_message_do_not_hold_the_shutdown() -> None:
    server = serve_in_thread(MemoryStore())
    with half_open(server.address, 20, GET) as calls:
        wait_until(lambda: server.limits.calls.held == 20, 5, "20 calls held")
        started = time.monotonic()
        server.stop(grace=20)
        assert time.monotonic() - started < 5  # not the grace: nothing was in flight
        for call in calls:
            error = call.exception(timeout=5)
            assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE


def test_calls_over_the_cap_are_resource_exhausted_and_health_still_answers() -> None:
    server = serve_in_thread(MemoryStore(), max_calls=8)
    client = GrpcStore(server.address, timeout=5)
    client.put(make_cp("s1"))
    with half_open(server.address, 8):
        wait_until(lambda: server.limits.calls.held == 8, 5, "8 calls held")
        started = time.monotonic()
        with pytest.raises(ResourceExhausted, match="at most 8 calls"):
            client.get("s1")
        assert time.monotonic() - started < 1  # refused at once, not queued
        assert _health_latency(server.address) < 1  # health checks are not counted
    wait_until(lambda: server.limits.calls.held == 0, 5, "call slots given back")
    assert client.get("s1").generation == 1
    client.close()
    server.stop(1)


# --- 2. the memory budget -------------------------------------------------------------


def _rss(pid: int) -> dict[str, int]:
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_memory_budget_bounds_the_server_under_concurrent_max_size_puts() -> None:
    limit, budget, puts = 4 * MIB, 256 * MIB, 16
    server = start_server_process(
        "memory:", "--max-message-bytes", str(limit), "--memory-budget", str(budget)
    )
    pid = server.process.pid
    try:
        prober = _own_channel(server.address)
        for _ in range(3):
            _health_latency(server.address, channel=prober)
        baseline = _rss(pid)["VmRSS"]
        # What the server may take: the budget, and the requests being received
        # (bytes in gRPC's buffers and their copy) before they are charged.
        allowed = budget + 2 * puts * limit + 64 * MIB
        peak = [0]
        killed = threading.Event()
        done = threading.Event()

        def watchdog() -> None:
            while not done.is_set():
                rss = _rss(pid)["VmRSS"] - baseline
                peak[0] = max(peak[0], rss)
                if rss > allowed + 512 * MIB:  # far over: stop before the machine suffers
                    killed.set()
                    server.kill()
                    return
                time.sleep(0.02)

        request = _hostile_put(limit - 1024)
        outcomes: list[Any] = []

        def put() -> None:
            channel = _own_channel(server.address)
            try:
                channel.unary_unary(PUT)(request, timeout=60)
                outcomes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                outcomes.append(exc.code())
            finally:
                channel.close()

        guard = threading.Thread(target=watchdog, daemon=True)
        guard.start()
        threads = [threading.Thread(target=put) for _ in range(puts)]
        for thread in threads:
            thread.start()
        latencies = []
        while any(thread.is_alive() for thread in threads) and not killed.is_set():
            latencies.append(_health_latency(server.address, timeout=10, channel=prober))
            time.sleep(0.05)
        for thread in threads:
            thread.join(60)
        done.set()
        guard.join(5)
        assert not killed.is_set(), f"the server grew by {peak[0] / MIB:.0f} MiB"
        hwm = _rss(pid)["VmHWM"] - baseline
        print(
            f"baseline {baseline / MIB:.0f} MiB, peak +{max(peak[0], hwm) / MIB:.0f} MiB "
            f"(allowed +{allowed / MIB:.0f}), health max {max(latencies) * 1000:.0f} ms "
            f"over {len(latencies)} checks, outcomes {Counter(c.name for c in outcomes)}"
        )
        assert max(peak[0], hwm) <= allowed
        assert len(outcomes) == puts
        assert set(outcomes) <= {
            grpc.StatusCode.INVALID_ARGUMENT,  # admitted, parsed, refused by the checks
            grpc.StatusCode.RESOURCE_EXHAUSTED,  # refused before parsing: budget in use
        }
        assert grpc.StatusCode.INVALID_ARGUMENT in outcomes
        assert max(latencies) < 5
        prober.close()
        # The memory is given back once the requests are done.
        wait_until(lambda: _rss(pid)["VmRSS"] - baseline < 96 * MIB, 10, "memory given back")
    finally:
        if server.process.poll() is None:
            code, _ = server.terminate()
            assert code == 0


def test_a_request_is_charged_before_it_is_parsed() -> None:
    limit = 2 * MIB
    backing = MemoryStore()
    server = serve_in_thread(backing, max_message_bytes=limit, memory_budget=24 * limit)
    channel = grpc.insecure_channel(server.address)
    big = make_cp("big", blob=b"x" * (limit - 4096))
    client = GrpcStore(server.address)
    if accel.ACCELERATED:
        # A canonical checkpoint (checked in C without parsing) is charged 24 bytes per byte.
        assert client.put(big) == 1
    else:
        # Without the compiled check every put is charged 64 bytes per byte: over the budget.
        with pytest.raises(ResourceExhausted, match="memory budget"):
            client.put(big)
        backing.put(big)
    # Anything else is charged 64 per byte: more than the whole budget, refused unparsed.
    with pytest.raises(grpc.RpcError) as refused:
        channel.unary_unary(PUT)(_hostile_put(limit - 1024), timeout=30)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "memory budget" in refused.value.details()
    assert server.limits.memory.used == 0
    assert [item.session_id for item in backing.list()] == ["big"]
    client.close()
    channel.close()
    server.stop(1)


def test_a_budget_too_small_for_the_largest_message_is_refused() -> None:
    with pytest.raises(ValueError, match="memory-budget"):
        ServerConfig(max_message_bytes=64 * MIB, memory_budget=64 * MIB).check()


# --- 4. secrets in status messages ----------------------------------------------------------

SECRET_URL = "postgresql://app:hunter2@db.internal:5432/ckpt?sslpassword=s3cret&password=hunter2"


class _LeakyStore(MemoryStore):
    """A store whose failures quote its connection string, secrets and all."""

    def get(self, session_id: str) -> Any:
        if session_id == "corrupt":
            raise CorruptStore(f"{SECRET_URL}/{session_id}", f"bad row (from {SECRET_URL})")
        raise StoreUnavailable(f"connection to {SECRET_URL} failed: password=hunter2")

    def delete(self, session_id: str) -> None:
        raise OSError(f"could not reach {SECRET_URL}")

    def list(self, **kwargs: Any) -> Any:
        raise RuntimeError(f"unexpected failure on {SECRET_URL}")

    list_page = None  # type: ignore[assignment]


def test_status_messages_hide_store_secrets() -> None:
    server = serve_in_thread(_LeakyStore())
    client = GrpcStore(server.address, timeout=10)
    errors: list[Exception] = []
    for call in (
        lambda: client.get("s1"),
        lambda: client.delete("s1"),
        lambda: client.list(),
        lambda: client.get("corrupt"),
    ):
        with pytest.raises(Exception) as info:
            call()
        errors.append(info.value)
    assert isinstance(errors[0], Unavailable) and isinstance(errors[1], Unavailable)
    assert isinstance(errors[2], ServiceError) and isinstance(errors[3], CorruptStore)
    for error in errors:
        text = f"{error} {vars(error)}"
        assert "hunter2" not in text and "s3cret" not in text, text
        assert "***" in text
    client.close()
    server.stop(1)


# --- 7. malformed tokens, damaged sessions, strings a store cannot hold -------------------


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        _token(b"[" * 100_000 + b"]" * 100_000),  # deeply nested: RecursionError
        _token(b"[" * 300 + b"]" * 300),  # nested, short
        "A" * 1_000_000,  # huge
        _token(b'"just a string"'),
        _token(b"[1, 2]"),
        _token(b"7"),
        _token(b'{"v": 1, "after": 5, "f": "x"}'),
        _token(b'{"v": 1, "after": "a\\u0000b", "f": "x"}'),
        _token(b'{"v": 1, "after": "../up", "f": "x"}'),
        _token(b"\xff\xfe not utf-8"),
        "!!!***",
    ],
)
def test_malformed_page_tokens_are_invalid_argument(token: str) -> None:
    server = serve_in_thread(MemoryStore())
    channel = grpc.insecure_channel(server.address)
    stub = service_pb2_grpc.CheckpointStoreServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.ListSessions(pb.ListSessionsRequest(page_token=token), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _reason(info.value) == "INVALID_REQUEST"
    assert info.value.details().startswith("page_token:")
    channel.close()
    server.stop(1)


def test_a_damaged_session_is_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = FileStore(tmp_path / "store")
    for i in range(100):
        files.put(make_cp(f"s{i:03d}"))
    damaged = Path(files.file_path("s042"))
    damaged.write_bytes(damaged.read_bytes()[:20])  # torn
    server = serve_in_thread(files)
    client = GrpcStore(server.address, timeout=30)
    with caplog.at_level(logging.WARNING, logger="dsxir.service"):
        listed = [item.session_id for item in client.list()]
    assert listed == [f"s{i:03d}" for i in range(100) if i != 42]
    lines = [r.getMessage() for r in caplog.records if r.name == "dsxir.service"]
    assert len(lines) == 1 and "s042" in lines[0] and "damaged" in lines[0], lines
    # Page by page, the same.
    channel = grpc.insecure_channel(server.address)
    stub = service_pb2_grpc.CheckpointStoreServiceStub(channel)
    seen: list[str] = []
    request = pb.ListSessionsRequest(page_size=7)
    while True:
        response = stub.ListSessions(request, timeout=30)
        seen += [item.session_id for item in response.sessions]
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    assert seen == listed
    channel.close()
    client.close()
    server.stop(1)


def test_a_damaged_url_store_path_is_logged_redacted(caplog: pytest.LogCaptureFixture) -> None:
    class Damaged(MemoryStore):
        def list_page(self, **kwargs: Any) -> Any:
            kwargs["on_damage"](CorruptStore(f"{SECRET_URL} (session s9)", "bad row"))
            return []

    server = serve_in_thread(Damaged())
    client = GrpcStore(server.address, timeout=30)
    with caplog.at_level(logging.WARNING, logger="dsxir.service"):
        assert client.list() == []
    lines = [r.getMessage() for r in caplog.records if r.name == "dsxir.service"]
    assert len(lines) == 1 and "s9" in lines[0] and "hunter2" not in lines[0], lines
    client.close()
    server.stop(1)


@pytest.mark.parametrize("kind", ["memory", "postgres"])
def test_a_nul_in_a_filter_is_invalid_argument(kind: str, tmp_path: Path) -> None:
    server = serve_in_thread(backend(kind, tmp_path))
    channel = grpc.insecure_channel(server.address)
    stub = service_pb2_grpc.CheckpointStoreServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.ListSessions(pb.ListSessionsRequest(optimizer="a\x00b"), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _reason(info.value) == "INVALID_REQUEST"
    assert info.value.details().startswith("optimizer:")
    channel.close()
    server.stop(1)


# --- 8. watch caps and timeouts --------------------------------------------------------------


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_watchers_per_client_are_capped() -> None:
    # "localhost" listens on 127.0.0.1 and, when there is one, ::1: two clients.
    server = CheckpointServer(
        MemoryStore(), ServerConfig(listen="localhost:0", max_watchers=10, watchers_per_client=2)
    )
    first = GrpcStore(f"127.0.0.1:{server.port}")
    streams = [first.watch("a"), first.watch("b")]
    assert [next(iter(s)).kind for s in streams] == ["initial", "initial"]
    third = first.watch("c")
    with pytest.raises(ResourceExhausted) as refused:
        next(iter(third))
    assert refused.value.reason == "TOO_MANY_WATCHERS"
    assert "per client" in str(refused.value)
    if _ipv6_loopback():
        other = GrpcStore(f"[::1]:{server.port}")
        elsewhere = other.watch("c")
        assert next(iter(elsewhere)).kind == "initial"  # another client has its own share
        elsewhere.cancel()
        other.close()
    for stream in streams:
        stream.cancel()
    wait_until(lambda: server.limits.watches.held == 0, 5, "watch slots given back")
    again = first.watch("c")
    assert next(iter(again)).kind == "initial"
    again.cancel()
    first.close()
    server.stop(1)


def test_a_watcher_that_never_reads_is_ended() -> None:
    server = serve_in_thread(MemoryStore(), max_watchers=1, watch_write_timeout=1.0)
    channel = _own_channel(server.address)
    request = pb.WatchSessionRequest(session_id="w").SerializeToString()
    stuck = channel.unary_stream(WATCH)(request, timeout=120)  # never read
    wait_until(lambda: server.limits.watches.held == 1, 5, "the watch is open")
    writer = GrpcStore(server.address, timeout=30)
    generation = 0
    cp = make_cp("w", optimizer="o" * MIB)
    for _ in range(40):  # 1 MiB events: far more than the connection's buffers
        if server.limits.watches.held == 0:
            break
        generation = writer.put(cp, expected_generation=generation or None)
    wait_until(lambda: server.limits.watches.held == 0, 10, "the stuck watcher was ended")
    other = GrpcStore(server.address)
    stream = other.watch("w")
    assert next(iter(stream)).kind == "initial"  # its slot is free again
    stream.cancel()
    stuck.cancel()
    for closing in (other, writer):
        closing.close()
    channel.close()
    server.stop(1)


def test_requests_parsed_on_the_loop_are_small() -> None:
    server = serve_in_thread(MemoryStore())
    channel = grpc.insecure_channel(server.address)
    big = pb.WatchSessionRequest(session_id="w").SerializeToString() + b"\x1a\x00" * 40_000
    with pytest.raises(grpc.RpcError) as refused:
        next(channel.unary_stream(WATCH)(big, timeout=30))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 65536" in refused.value.details()
    health = channel.unary_unary("/grpc.health.v1.Health/Check")
    for bad in (b"\xff\xff", b"\x0a\x00" * 40_000):
        with pytest.raises(grpc.RpcError) as refused:
            health(bad, timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert server.limits.watches.held == 0
    channel.close()
    server.stop(1)


def test_an_idle_watch_ends_so_the_client_watches_again() -> None:
    server = serve_in_thread(MemoryStore(), watch_idle_seconds=0.5)
    client = GrpcStore(server.address)
    events = iter(client.watch("quiet"))
    assert next(events).kind == "initial"
    started = time.monotonic()
    with pytest.raises(Unavailable) as ended:
        next(events)
    assert ended.value.reason == "WATCH_IDLE" and "watch again" in str(ended.value)
    assert time.monotonic() - started < 5
    wait_until(lambda: server.limits.watches.held == 0, 5, "watch slot given back")
    client.close()
    server.stop(1)


# --- 9. insecure serving and plain-text tokens ---------------------------------------------


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dsxir.cli", "serve", "--store", "memory:", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=REPO,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


# 192.0.2.1 (TEST-NET-1) is no address of this host: these servers never bind.
UNBOUND = "192.0.2.1:50051"


def test_serving_beyond_loopback_without_token_or_tls_is_refused() -> None:
    for listen in (UNBOUND, "0.0.0.0:0", "[::]:0"):
        result = _serve("--listen", listen)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "--insecure" in lines[0] and "Traceback" not in result.stderr


def test_insecure_serving_and_plain_text_tokens_are_warned_about() -> None:
    result = _serve("--listen", UNBOUND, "--insecure")
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("warning: ") and "without a token or TLS" in lines[0]
    assert result.returncode == 6 and "cannot listen" in lines[-1]  # the address is not ours
    result = _serve("--listen", UNBOUND, "--token-env", "T", env={"T": TOKEN})
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("warning: ") and "plain text" in lines[0]
    assert ServerConfig(token=TOKEN).warnings() == []  # loopback: nothing to warn about
    assert ServerConfig(listen="0.0.0.0:1", insecure=True).warnings()


def test_the_client_sends_no_token_in_plain_text_beyond_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match=r"plain text.*insecure"):
        GrpcStore(UNBOUND, token=TOKEN)
    for target in ("127.0.0.1:1", "127.8.0.1:1", "localhost:1", "[::1]:1", "unix:/tmp/s"):
        GrpcStore(target, token=TOKEN).close()
    GrpcStore(UNBOUND, token=TOKEN, insecure=True).close()
    GrpcStore(UNBOUND).close()  # no token, nothing to protect
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with pytest.raises(ValueError, match="plain text"):
        GrpcStore.from_url(f"grpc://{UNBOUND}?token_file={token_file}")
    GrpcStore.from_url(f"grpc://{UNBOUND}?token_file={token_file}&insecure=1").close()
    GrpcStore.from_url(f"grpcs://{UNBOUND}?token_file={token_file}").close()
    with pytest.raises(ValueError, match="grpc:// only"):
        GrpcStore.from_url(f"grpcs://{UNBOUND}?insecure=1")
    with pytest.raises(ValueError, match="insecure must be"):
        GrpcStore.from_url(f"grpc://{UNBOUND}?insecure=maybe")


def test_a_token_variable_that_is_not_set_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSXIR_TEST_NO_TOKEN", raising=False)
    with pytest.raises(ValueError, match="DSXIR_TEST_NO_TOKEN is not set"):
        GrpcStore.from_url("grpc://127.0.0.1:1?token_env=DSXIR_TEST_NO_TOKEN")
    monkeypatch.setenv("DSXIR_TEST_NO_TOKEN", "")
    with pytest.raises(ValueError, match="DSXIR_TEST_NO_TOKEN holds no token"):
        GrpcStore.from_url("grpc://127.0.0.1:1?token_env=DSXIR_TEST_NO_TOKEN")
    monkeypatch.delenv("DSXIR_CHECKPOINT_TOKEN", raising=False)
    store = GrpcStore.from_url("grpc://127.0.0.1:1")  # the default variable unset: no token
    assert store._metadata is None
    store.close()
    monkeypatch.setenv("DSXIR_CHECKPOINT_TOKEN", TOKEN)
    store = GrpcStore.from_url("grpc://127.0.0.1:1")
    assert store._metadata is not None
    store.close()
    with pytest.raises(ValueError, match="not both"):
        GrpcStore.from_url("grpc://127.0.0.1:1?token_env=A&token_file=/x")


def test_serve_help_names_every_limit() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dsxir.cli", "serve", "--help"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0
    section = _security_section()
    for option in (
        "--max-calls",
        "--read-timeout",
        "--memory-budget",
        "--max-watchers",
        "--watchers-per-client",
        "--watch-idle-timeout",
        "--watch-write-timeout",
        "--max-message-bytes",
        "--insecure",
        "--workers",
    ):
        assert option in result.stdout, option
        assert option in section, option


def _security_section() -> str:
    text = (REPO / "docs" / "security.md").read_text()
    start = text.index("<!-- section: service")
    return text[start : text.index("<!-- end: service -->", start)]


def test_the_security_page_states_the_defaults() -> None:
    from dsxir.service import defaults

    section = _security_section()
    for value in (
        f"{defaults.DEFAULT_MAX_CALLS}",
        f"{defaults.DEFAULT_READ_TIMEOUT_SECONDS:g} s",
        f"{defaults.DEFAULT_MEMORY_BUDGET_BYTES // 1024**3} GiB",
        f"{defaults.DEFAULT_WATCHERS_PER_CLIENT}",
        f"{defaults.DEFAULT_WATCH_IDLE_SECONDS / 60:g} min",
        f"{defaults.DEFAULT_WATCH_WRITE_TIMEOUT_SECONDS:g} s",
        f"{defaults.MAX_STREAMS_PER_CONNECTION}",
        f"{defaults.PUT_COST_CANONICAL}",
        f"{defaults.PUT_COST_OTHER}",
    ):
        assert value in section, value
