"""The client side of the service's errors: status codes back into store exceptions.

:func:`from_rpc_error` turns a failed call into the exception a local store
raises for the same failure, so code written against the file store works
unchanged over gRPC (the table of codes and reasons is in
:mod:`dsxir.service.failures`, which makes them). A status with no store
meaning raises a :class:`ServiceError` subclass.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from dsxir.errors import (
    CheckpointError,
    Conflict,
    CorruptStore,
    IllegalHistory,
    InvalidCheckpoint,
    InvalidDelta,
    InvalidSessionId,
    LeaseHeld,
    LeaseLost,
    NotFound,
    StoreUnavailable,
)
from dsxir.optimizer_session import rules
from dsxir.optimizer_session.delta import DELTA_RULES
from dsxir.store.grpc.leases import parse_rfc3339
from dsxir.store.grpc.protocol import DETAILS_KEY, DOMAIN, Reason

__all__ = [
    "InvalidRequest",
    "ResourceExhausted",
    "ServiceError",
    "Unauthenticated",
    "Unavailable",
    "from_rpc_error",
]


class ServiceError(CheckpointError):
    """A call to the service failed with a status that has no store-level meaning.

    ``code`` is the ``grpc.StatusCode``, ``reason`` the ``ErrorInfo`` reason
    (empty when the status carried none).
    """

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


class Unavailable(ServiceError, StoreUnavailable):
    """The service or its storage cannot be reached (UNAVAILABLE, DEADLINE_EXCEEDED)."""


class Unauthenticated(ServiceError, PermissionError):
    """The call carried no valid bearer token (UNAUTHENTICATED, PERMISSION_DENIED)."""


class ResourceExhausted(ServiceError):
    """A message was over a size limit, or the server was out of a resource."""


class InvalidRequest(ServiceError, ValueError):
    """The server refused a request field (INVALID_ARGUMENT about the request)."""


def from_rpc_error(error: grpc.RpcError, *, session_id: str | None = None) -> Exception:
    """The store-level exception for a failed call (see the module table)."""
    code = error.code()
    message = error.details() or ""
    info = _error_info(error)
    reason = info.reason if info is not None else ""
    meta = dict(info.metadata) if info is not None else {}
    if session_id is not None:  # the session asked about, whatever the server says
        meta["session_id"] = session_id
    if code == grpc.StatusCode.NOT_FOUND and reason == Reason.SESSION_NOT_FOUND:
        return NotFound(meta.get("session_id", ""))
    if code == grpc.StatusCode.ABORTED and reason == Reason.GENERATION_CONFLICT:
        expected = _generation(meta.get("expected_generation", ""))
        stored = _generation(meta.get("stored_generation", ""))
        return Conflict(meta.get("session_id", ""), expected, stored)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        if reason == Reason.INVALID_CHECKPOINT and meta.get("subject") == "delta":
            rule = meta.get("rule", "")
            return InvalidDelta(
                meta.get("field", "<input>"),
                meta.get("detail", message),
                rule if rule in rules.ALL or rule in DELTA_RULES else "",
            )
        if reason == Reason.INVALID_CHECKPOINT:
            rule = meta.get("rule")
            return InvalidCheckpoint(
                meta.get("field", "<input>"),
                meta.get("detail", message),
                rule if rule in rules.ALL else None,  # only an id this library knows
            )
        if reason == Reason.INVALID_SESSION_ID:
            return InvalidSessionId(message)
        return InvalidRequest(code, message, reason)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        found = _precondition(reason, meta, session_id or "", message)
        if found is not None:
            return found
    if code == grpc.StatusCode.DATA_LOSS and reason == Reason.CORRUPT_STORE:
        return CorruptStore(meta.get("path", "?"), meta.get("detail", message))
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable(code, message, reason)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return Unauthenticated(code, message, reason)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ResourceExhausted(code, message, reason)
    return ServiceError(code, message, reason)


def _precondition(
    reason: str, meta: dict[str, str], session_id: str, message: str
) -> CheckpointError | None:
    """The exception of a FAILED_PRECONDITION with one of the store's reasons, else None."""
    session_id = meta.get("session_id", session_id)
    if reason == Reason.ILLEGAL_HISTORY:
        return IllegalHistory(session_id, meta.get("rule", ""), meta.get("detail", message))
    if reason == Reason.LEASE_HELD:
        until = parse_rfc3339(meta.get("expires_at", ""))
        if until is None:  # a server that sent no time: the lease holds for now
            until = _dt.datetime.now(_dt.timezone.utc)
        return LeaseHeld(session_id, meta.get("holder", ""), until)
    if reason == Reason.LEASE_LOST:
        return LeaseLost(session_id, meta.get("detail", ""))
    return None


def _generation(text: str) -> int | None:
    """A generation in ``ErrorInfo`` metadata (``0`` is none); None when it is not one."""
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        return None
    return int(text) or None


def _error_info(error: grpc.RpcError) -> Any:
    for item in error.trailing_metadata() or ():
        if item.key != DETAILS_KEY or not isinstance(item.value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(item.value)
        except Exception:  # a damaged detail is ignored, the code still counts
            return None
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info) and info.domain == DOMAIN:
                return info  # an ErrorInfo
    return None
