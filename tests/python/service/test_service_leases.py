"""Leases and illegal history over CheckpointStoreService: codes, reasons, hostile calls.

The lease semantics themselves (grant, refuse, renew, release, takeover) are
the contract suite's, run on the gRPC backends too
(tests/python/store); this file holds what only the service has: the status
codes and their ErrorInfo metadata, the checks of holder, ttl and token,
the token kept out of every answer, and floods of lease calls.
"""

from __future__ import annotations

import datetime as _dt
import re
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from dsxir.checkpoint_store.v1 import service_pb2 as pb
from dsxir.checkpoint_store.v1 import service_pb2_grpc
from dsxir.errors import IllegalHistory, LeaseHeld, LeaseLost
from dsxir.optimizer_session import checkpoint
from dsxir.service import CheckpointServer
from dsxir.store import Lease, MemoryStore
from dsxir.store.grpc import GrpcStore, ResourceExhausted, Unauthenticated
from dsxir.store.grpc.leases import MAX_TOKEN_BYTES
from dsxir.store.grpc.protocol import SERVICE_NAME
from service_fixtures import REPO, TOKEN, serve_in_thread
from store_util import make_cp, sealed_message

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$")


@pytest.fixture
def served() -> Iterator[tuple[CheckpointServer, Any]]:
    server = serve_in_thread(MemoryStore())
    channel = grpc.insecure_channel(server.address)
    yield server, service_pb2_grpc.CheckpointStoreServiceStub(channel)
    channel.close()
    server.stop(1)


def _details(error: grpc.RpcError) -> tuple[Any, Any]:
    status = rpc_status.from_call(error)
    info = bad = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
    return info, bad


def _ttl(seconds: int = 30, nanos: int = 0) -> Duration:
    return Duration(seconds=seconds, nanos=nanos)


def _failure(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value


def _said(error: grpc.RpcError) -> str:
    """Everything a failed call told its caller: message, ErrorInfo metadata, BadRequest."""
    info, bad = _details(error)
    parts = [error.details() or ""]
    if info is not None:
        parts += [f"{k}={v}" for k, v in info.metadata.items()]
    if bad is not None:
        parts += [v.description for v in bad.field_violations]
    return "\n".join(parts)


# --- the four RPCs, as a client in any language sees them ---------------------------


def test_lease_rpcs_and_their_failures(served: tuple[CheckpointServer, Any]) -> None:
    _, stub = served
    before = _dt.datetime.now(_dt.timezone.utc)
    granted = stub.AcquireLease(
        pb.AcquireLeaseRequest(session_id="s1", holder="host-a:41", ttl=_ttl(30)), timeout=30
    ).lease
    assert (granted.session_id, granted.holder) == ("s1", "host-a:41")
    assert len(granted.token) >= 16
    ends = granted.expires_at.ToDatetime(tzinfo=_dt.timezone.utc)
    assert before + _dt.timedelta(seconds=29) < ends < before + _dt.timedelta(seconds=60)

    # GetLease: the holder and the end, never the token.
    seen = stub.GetLease(pb.GetLeaseRequest(session_id="s1"), timeout=30)
    assert seen.HasField("lease") and seen.lease.token == ""
    assert (seen.lease.holder, seen.lease.expires_at) == ("host-a:41", granted.expires_at)

    # Another worker is refused: LEASE_HELD naming the holder and the end, RFC 3339 UTC.
    held = _failure(
        stub.AcquireLease, pb.AcquireLeaseRequest(session_id="s1", holder="b:2", ttl=_ttl())
    )
    assert held.code() == grpc.StatusCode.FAILED_PRECONDITION
    info, _ = _details(held)
    assert info.reason == "LEASE_HELD" and info.domain == "dsxir.checkpoint_store.v1"
    assert info.metadata["holder"] == "host-a:41"
    assert RFC3339_UTC.match(info.metadata["expires_at"]), info.metadata["expires_at"]
    assert info.metadata["expires_at"] == granted.expires_at.ToJsonString()
    assert granted.token not in _said(held)

    # RenewLease moves the end and keeps the token.
    renewed = stub.RenewLease(
        pb.RenewLeaseRequest(session_id="s1", token=granted.token, ttl=_ttl(600)), timeout=30
    ).lease
    assert renewed.token == granted.token and renewed.holder == "host-a:41"
    assert renewed.expires_at.ToDatetime() > granted.expires_at.ToDatetime()

    # ReleaseLease is idempotent; afterwards there is no lease, and renewing is LEASE_LOST.
    for _ in range(2):
        stub.ReleaseLease(pb.ReleaseLeaseRequest(session_id="s1", token=granted.token), timeout=30)
    assert not stub.GetLease(pb.GetLeaseRequest(session_id="s1"), timeout=30).HasField("lease")
    lost = _failure(
        stub.RenewLease, pb.RenewLeaseRequest(session_id="s1", token=granted.token, ttl=_ttl())
    )
    assert lost.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _details(lost)[0].reason == "LEASE_LOST"
    assert granted.token not in _said(lost)


def test_an_unknown_token_neither_renews_nor_releases(
    served: tuple[CheckpointServer, Any],
) -> None:
    server, stub = served
    lease = server.store.acquire_lease("s1", "owner:1", ttl=60)
    guess = "0" * 32
    lost = _failure(stub.RenewLease, pb.RenewLeaseRequest(session_id="s1", token=guess, ttl=_ttl()))
    assert _details(lost)[0].reason == "LEASE_LOST"
    assert guess not in _said(lost) and lease.token not in _said(lost)
    stub.ReleaseLease(pb.ReleaseLeaseRequest(session_id="s1", token=guess), timeout=30)
    still = server.store.get_lease("s1")
    assert still is not None and still.holder == "owner:1"
    assert still.expires_at == lease.expires_at


HOLDER_LIMIT = "h" * 256
GUESS = "0123456789abcdef0123456789abcdef"
HOSTILE: list[tuple[str, str, Any, str]] = [
    # (id, method, request, the field named)
    ("empty holder", "AcquireLease", pb.AcquireLeaseRequest(session_id="s1", ttl=_ttl()), "holder"),
    (
        "holder of 257 bytes",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="h" * 257, ttl=_ttl()),
        "holder",
    ),
    (
        "holder of 129 two-byte characters",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="é" * 129, ttl=_ttl()),
        "holder",
    ),
    (
        "huge holder",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="h" * (1 << 20), ttl=_ttl()),
        "holder",
    ),
    (
        "holder with ESC",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="a\x1b[31mb", ttl=_ttl()),
        "holder",
    ),
    (
        "holder with NUL",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="a\x00b", ttl=_ttl()),
        "holder",
    ),
    ("no ttl", "AcquireLease", pb.AcquireLeaseRequest(session_id="s1", holder="h"), "ttl"),
    (
        "zero ttl",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="h", ttl=_ttl(0)),
        "ttl",
    ),
    (
        "negative ttl",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="h", ttl=_ttl(-5)),
        "ttl",
    ),
    (
        "negative nanos",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="h", ttl=_ttl(0, -1)),
        "ttl",
    ),
    (
        "nanos out of range",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="h", ttl=_ttl(1, 1_000_000_000)),
        "ttl",
    ),
    (
        "a day and a nanosecond",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="h", ttl=_ttl(86_400, 1)),
        "ttl",
    ),
    (
        "huge ttl",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="s1", holder="h", ttl=_ttl(2**62)),
        "ttl",
    ),
    (
        "bad session id",
        "AcquireLease",
        pb.AcquireLeaseRequest(session_id="../x", holder="h", ttl=_ttl()),
        "session_id",
    ),
    ("renew without ttl", "RenewLease", pb.RenewLeaseRequest(session_id="s1", token=GUESS), "ttl"),
    (
        "renew with huge ttl",
        "RenewLease",
        pb.RenewLeaseRequest(session_id="s1", token=GUESS, ttl=_ttl(10**9)),
        "ttl",
    ),
    (
        "renew without token",
        "RenewLease",
        pb.RenewLeaseRequest(session_id="s1", ttl=_ttl()),
        "token",
    ),
    (
        "renew with a huge token",
        "RenewLease",
        pb.RenewLeaseRequest(session_id="s1", token="t" * (1 << 20), ttl=_ttl()),
        "token",
    ),
    ("release without token", "ReleaseLease", pb.ReleaseLeaseRequest(session_id="s1"), "token"),
    (
        "release with a long token",
        "ReleaseLease",
        pb.ReleaseLeaseRequest(session_id="s1", token="t" * (MAX_TOKEN_BYTES + 1)),
        "token",
    ),
    ("get of a bad id", "GetLease", pb.GetLeaseRequest(session_id=".hidden"), "session_id"),
]


@pytest.mark.parametrize(
    ("method", "request_", "field"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE]
)
def test_hostile_lease_requests_are_invalid_argument(
    served: tuple[CheckpointServer, Any], method: str, request_: Any, field: str
) -> None:
    server, stub = served
    error = _failure(getattr(stub, method), request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    info, bad = _details(error)
    assert info.reason in ("INVALID_REQUEST", "INVALID_SESSION_ID")
    assert bad.field_violations[0].field == field
    assert len(error.details()) < 300  # a huge holder or token is not echoed back
    token = getattr(request_, "token", "")
    assert not token or token not in _said(error)
    assert server.store.get_lease("s1") is None


def test_the_longest_holder_and_ttl_are_granted(served: tuple[CheckpointServer, Any]) -> None:
    _, stub = served
    request = pb.AcquireLeaseRequest(session_id="s1", holder=HOLDER_LIMIT, ttl=_ttl(86_400))
    lease = stub.AcquireLease(request, timeout=30).lease
    assert lease.holder == HOLDER_LIMIT
    one_day = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(days=1)
    assert abs(lease.expires_at.ToDatetime(tzinfo=_dt.timezone.utc) - one_day).total_seconds() < 30


def test_garbage_lease_requests_are_invalid_argument(served: tuple[CheckpointServer, Any]) -> None:
    server, _ = served
    channel = grpc.insecure_channel(server.address)
    for method in ("AcquireLease", "RenewLease", "ReleaseLease", "GetLease"):
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(f"/{SERVICE_NAME}/{method}")(b"\xff\xff\xff", timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
    channel.close()


# --- the Python client ----------------------------------------------------------------


def test_the_client_raises_what_a_local_store_raises(grpc_over_memory: GrpcStore) -> None:
    store = grpc_over_memory
    lease = store.acquire_lease("s1", "w:1", ttl=30)
    with pytest.raises(LeaseHeld) as held:
        store.acquire_lease("s1", "w:2", ttl=30)
    assert (held.value.session_id, held.value.holder) == ("s1", "w:1")
    assert held.value.expires_at == lease.expires_at  # microseconds survive the trip
    store.release_lease(lease)
    with pytest.raises(LeaseLost) as lost:
        store.renew_lease(lease, ttl=30)
    assert lost.value.session_id == "s1"
    assert store.get_lease("s1") is None
    # A token no store gives is answered locally, as a local store answers it.
    for token in ("", "\ud800" * 4):
        with pytest.raises(LeaseLost):
            store.renew_lease(Lease("s1", "w:1", token, lease.expires_at), ttl=30)
    store.release_lease(Lease("s1", "w:1", "x" * 1000, lease.expires_at))


def test_illegal_history_is_failed_precondition_with_its_rule(
    served: tuple[CheckpointServer, Any], grpc_over_memory: GrpcStore
) -> None:
    _, stub = served
    cp = make_cp("s1", trials=3)
    stub.PutCheckpoint(pb.PutCheckpointRequest(checkpoint=sealed_message(cp)), timeout=30)
    shorter = make_cp("s1", trials=1)
    shorter.created_at.CopyFrom(cp.created_at)
    error = _failure(
        stub.PutCheckpoint,
        pb.PutCheckpointRequest(checkpoint=sealed_message(shorter), expected_generation=1),
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    info, _ = _details(error)
    assert info.reason == "ILLEGAL_HISTORY"
    assert info.metadata["rule"] == "history.trial_log_shortened"
    assert stub.GetCheckpoint(pb.GetCheckpointRequest(session_id="s1"), timeout=30).generation == 1

    store = grpc_over_memory
    store.put(cp)
    ended = make_cp("s1", trials=3)
    ended.CopyFrom(cp)
    checkpoint.complete(ended)
    store.put(ended, expected_generation=1)
    checkpoint.record_trial(cp, score=9.0)
    with pytest.raises(IllegalHistory) as refused:
        store.put(cp, expected_generation=2)
    assert (refused.value.session_id, refused.value.rule) == ("s1", "history.terminal")
    assert refused.value.detail


def test_lease_calls_need_the_token() -> None:
    server = serve_in_thread(MemoryStore(), token=TOKEN)
    anonymous = GrpcStore(server.address, timeout=10)
    with pytest.raises(Unauthenticated):
        anonymous.acquire_lease("s1", "w:1", ttl=30)
    with pytest.raises(Unauthenticated):
        anonymous.get_lease("s1")
    assert server.store.get_lease("s1") is None
    anonymous.close()
    server.stop(1)


def test_a_lease_call_that_sends_nothing_is_ended_after_the_read_timeout() -> None:
    server = serve_in_thread(MemoryStore(), read_timeout=0.5)
    channel = grpc.insecure_channel(server.address)
    stop = threading.Event()

    def silent() -> Iterator[bytes]:
        stop.wait()
        yield from ()

    call = channel.stream_unary(f"/{SERVICE_NAME}/AcquireLease").future(silent(), timeout=30)
    error = call.exception(timeout=10)
    stop.set()
    assert error is not None and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert _details(error)[0].reason == "REQUEST_TIMEOUT"
    channel.close()
    server.stop(1)


# --- floods ---------------------------------------------------------------------------


def test_a_flood_of_acquires_grants_one_lease() -> None:
    server = serve_in_thread(MemoryStore())
    client = GrpcStore(server.address, timeout=30)
    outcomes: Counter[str] = Counter()
    start = threading.Barrier(48)
    lock = threading.Lock()

    def acquire(worker: int) -> None:
        start.wait()
        try:
            client.acquire_lease("contested", f"worker:{worker}", ttl=60)
            kind = "granted"
        except LeaseHeld:
            kind = "held"
        with lock:
            outcomes[kind] += 1

    threads = [threading.Thread(target=acquire, args=(i,)) for i in range(48)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == Counter(granted=1, held=47)
    channel = grpc.insecure_channel(server.address)
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    channel.close()
    client.close()
    server.stop(1)


def test_a_flood_over_the_call_cap_is_refused_not_queued() -> None:
    server = serve_in_thread(MemoryStore(), max_calls=4, workers=4)
    client = GrpcStore(server.address, timeout=30)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def acquire(worker: int) -> None:
        for round_ in range(10):
            try:
                client.acquire_lease(f"s{worker}-{round_}", "w", ttl=60)
                kind = "granted"
            except ResourceExhausted as exc:
                assert exc.reason == "TOO_MANY_CALLS"
                kind = "refused"
            with lock:
                outcomes[kind] += 1

    threads = [threading.Thread(target=acquire, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(outcomes.values()) == 240 and outcomes["granted"] > 0
    assert server.limits.calls.held == 0
    client.close()
    server.stop(1)


# --- docs -----------------------------------------------------------------------------


def test_the_docs_state_the_lease_limits() -> None:
    from dsxir.store.leases import MAX_HOLDER_BYTES, MAX_LEASE_TTL

    security = (REPO / "docs" / "security.md").read_text()
    start = security.index("<!-- section: service")
    section = security[start : security.index("<!-- end: service -->", start)]
    assert f"{MAX_HOLDER_BYTES} bytes" in section
    assert f"{MAX_LEASE_TTL:g} s" in section
    assert f"{MAX_TOKEN_BYTES} bytes" in section
    service = (REPO / "docs" / "service.md").read_text()
    for name in ("AcquireLease", "RenewLease", "ReleaseLease", "GetLease"):
        assert f"`{name}`" in service, name
    for reason in ("ILLEGAL_HISTORY", "LEASE_HELD", "LEASE_LOST"):
        assert f"`{reason}`" in service, reason
