"""Leases over the service: the checks client and server both make, and the conversions.

The server checks every lease request with the rules every store keeps
(:mod:`dsxir.store.leases`) and refuses a bad one with INVALID_ARGUMENT and a
``google.rpc.BadRequest`` naming the field:

- ``holder``: empty, longer than 256 bytes of UTF-8
  (:data:`~dsxir.store.leases.MAX_HOLDER_BYTES`), or holding a control
  character (C0, DEL, C1);
- ``ttl``: absent, not positive, or longer than one day
  (:data:`~dsxir.store.leases.MAX_LEASE_TTL`: a worker renews its lease, and
  a day-long lease of a dead worker would hold its session for that long);
- ``token``: empty, or longer than :data:`MAX_TOKEN_BYTES` bytes (a store's
  tokens are 32 hex digits).

The client makes the same checks before sending, raising what a local store
raises. A :class:`~dsxir.store.interface.Lease` travels as the ``Lease``
message, its ``expires_at`` as a ``Timestamp`` (microseconds); ``ErrorInfo``
metadata gives times in RFC 3339, UTC (:func:`rfc3339`).
"""

from __future__ import annotations

import datetime as _dt

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from dsxir.checkpoint_store.v1 import service_pb2 as pb
from dsxir.store.grpc.convert import datetime_to_timestamp
from dsxir.store.interface import Lease, timestamp_to_datetime
from dsxir.store.leases import MAX_LEASE_TTL, check_holder, check_ttl

__all__ = [
    "MAX_TOKEN_BYTES",
    "duration_of",
    "holder_problem",
    "lease_from_message",
    "lease_message",
    "parse_rfc3339",
    "rfc3339",
    "token_problem",
    "ttl_of",
]

MAX_TOKEN_BYTES = 256
"""The longest lease token a request may carry, in bytes of UTF-8."""

_NANOS = 1_000_000_000
_MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z, the first time a Timestamp holds
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z, the last


def holder_problem(holder: str) -> str | None:
    """Why a store refuses ``holder`` (see the module text), or None."""
    try:
        check_holder(holder)
    except ValueError as exc:
        return str(exc)
    return None


def token_problem(token: str) -> str | None:
    """Why a lease ``token`` in a request is refused, or None (its value is never quoted)."""
    if not token:
        return "is required (the token of the lease, from AcquireLease)"
    try:
        size = len(token.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode (lone surrogate)"
    if size > MAX_TOKEN_BYTES:
        return f"{size} bytes: a lease token is at most {MAX_TOKEN_BYTES}"
    return None


def ttl_of(duration: Duration) -> float | str:
    """The seconds of a ``ttl`` Duration, or why it is refused."""
    seconds, nanos = duration.seconds, duration.nanos
    if seconds < 0 or not 0 <= nanos < _NANOS:
        return "must be a positive duration (seconds >= 0, nanos in [0, 1e9))"
    if seconds == 0 and nanos == 0:
        return "must be positive"
    if seconds + nanos / _NANOS > MAX_LEASE_TTL:
        return f"{seconds}.{nanos:09d} s: at most {MAX_LEASE_TTL:g} s (one day)"
    return seconds + nanos / _NANOS


def duration_of(ttl: float) -> Duration:
    """The ``Duration`` of ``ttl`` seconds; ``TypeError`` or ``ValueError`` as a store refuses."""
    seconds, nanos = divmod(round(check_ttl(ttl) * _NANOS), _NANOS)
    if seconds == 0 and nanos == 0:
        raise ValueError(f"ttl must be at least a nanosecond, got {ttl!r}")
    return Duration(seconds=seconds, nanos=nanos)


def lease_message(lease: Lease, *, with_token: bool) -> pb.Lease:
    """The ``Lease`` message of a lease; its token only when ``with_token``."""
    message = pb.Lease(
        session_id=lease.session_id,
        holder=lease.holder,
        token=lease.token if with_token else "",
    )
    message.expires_at.CopyFrom(datetime_to_timestamp(lease.expires_at))
    return message


def lease_from_message(message: pb.Lease) -> Lease:
    """The lease a ``Lease`` message describes (``expires_at`` aware UTC).

    ``ValueError`` when it is no lease a store gives: an ``expires_at``
    outside the years 1 to 9999 (or with nanos outside [0, 1e9)), or a
    holder a store refuses.
    """
    stamp = message.expires_at
    if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < _NANOS):
        raise ValueError(f"expires_at {stamp.seconds}.{stamp.nanos} s is not a valid time")
    problem = holder_problem(message.holder) if message.holder else None
    if problem is not None:
        raise ValueError(f"holder: {problem}")
    return Lease(
        session_id=message.session_id,
        holder=message.holder,
        token=message.token,
        expires_at=timestamp_to_datetime(stamp.seconds, stamp.nanos),
    )


def rfc3339(when: _dt.datetime) -> str:
    """An aware datetime as RFC 3339 in UTC (``2026-01-02T03:04:05.678Z``)."""
    text: str = datetime_to_timestamp(when).ToJsonString()
    return text


def parse_rfc3339(text: str) -> _dt.datetime | None:
    """The aware UTC datetime of an RFC 3339 text, or None when it is not one."""
    stamp = Timestamp()
    try:
        stamp.FromJsonString(text)
        return timestamp_to_datetime(stamp.seconds, stamp.nanos)
    except (ValueError, OverflowError):
        return None
