"""Errors of the service, and their mapping to and from gRPC status codes.

The server turns every store error into a status code with a message and
two details (``google.rpc.Status`` in the ``grpc-status-details-bin``
trailer, AIP-193): a ``google.rpc.ErrorInfo`` with domain :data:`DOMAIN`, a
reason and string metadata, and, for a refused request, a
``google.rpc.BadRequest`` naming the field. The client turns them back into
the exceptions a local store raises, so code written against the file store
works unchanged:

========================  ========================  =======================================
store error               status code               reason (ErrorInfo metadata)
========================  ========================  =======================================
``NotFound``              NOT_FOUND                 SESSION_NOT_FOUND (session_id)
``Conflict``              ABORTED                   GENERATION_CONFLICT (session_id,
                                                    expected_generation, stored_generation;
                                                    ``0`` stands for none)
``InvalidCheckpoint``     INVALID_ARGUMENT          INVALID_CHECKPOINT (field, detail)
``InvalidSessionId``      INVALID_ARGUMENT          INVALID_SESSION_ID
bad request field         INVALID_ARGUMENT          INVALID_REQUEST (field)
``CorruptStore``          DATA_LOSS                 CORRUPT_STORE (path, detail)
``StoreUnavailable``,     UNAVAILABLE               STORE_UNAVAILABLE
``OSError``
no or wrong token         UNAUTHENTICATED           UNAUTHENTICATED
message over the limit    RESOURCE_EXHAUSTED        (set by gRPC itself, no detail)
anything else             INTERNAL                  INTERNAL
========================  ========================  =======================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]

from dsxir.errors import (
    CheckpointError,
    Conflict,
    CorruptStore,
    InvalidCheckpoint,
    InvalidSessionId,
    NotFound,
    ResumeMismatch,
    StoreUnavailable,
)

__all__ = [
    "DOMAIN",
    "InvalidRequest",
    "ResourceExhausted",
    "RpcFailure",
    "ServiceError",
    "StoreUnavailable",
    "Unauthenticated",
    "Unavailable",
    "abort",
    "failure_of",
    "from_rpc_error",
]

DOMAIN = "dsxir.optimizer_session.v1"
"""The ``ErrorInfo.domain`` of every error the service sends."""

_DETAILS_KEY = "grpc-status-details-bin"


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


class RpcFailure(Exception):
    """A status the server sends: raised inside a handler, turned into the RPC's status."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str,
        metadata: Mapping[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.field = field

    def status(self) -> Any:
        """The ``google.rpc.Status`` of this failure (ErrorInfo, and BadRequest for a field)."""
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN)
        info.metadata.update(self.metadata)
        details = [info]
        if self.field is not None:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=self.field, description=self.message
                        )
                    ]
                )
            )
        packed = []
        for detail in details:
            holder = any_pb2.Any()
            holder.Pack(detail)
            packed.append(holder)
        return status_pb2.Status(code=_RPC_CODES[self.code], message=self.message, details=packed)


def failure_of(exc: BaseException, *, field_prefix: str = "") -> RpcFailure:
    """The status the server sends for an exception raised by a store.

    ``field_prefix`` is the request field holding the checkpoint
    (``"checkpoint."``), prepended to checkpoint field paths in the
    ``BadRequest`` detail; the ``ErrorInfo`` keeps the FORMAT.md path.
    """
    if isinstance(exc, RpcFailure):
        return exc
    if isinstance(exc, NotFound):
        return RpcFailure(
            grpc.StatusCode.NOT_FOUND, str(exc), "SESSION_NOT_FOUND", {"session_id": exc.session_id}
        )
    if isinstance(exc, Conflict):
        return RpcFailure(
            grpc.StatusCode.ABORTED,
            str(exc),
            "GENERATION_CONFLICT",
            {
                "session_id": exc.session_id,
                "expected_generation": str(exc.expected or 0),
                "stored_generation": str(exc.actual or 0),
            },
        )
    if isinstance(exc, InvalidCheckpoint):
        return _invalid_checkpoint(exc.path, exc.detail, field_prefix)
    if isinstance(exc, ResumeMismatch) and exc.reason == "checkpoint_shape":
        return _invalid_checkpoint(exc.field or "<input>", exc.detail or str(exc), field_prefix)
    if isinstance(exc, InvalidSessionId):
        return RpcFailure(
            grpc.StatusCode.INVALID_ARGUMENT,
            str(exc),
            "INVALID_SESSION_ID",
            field=f"{field_prefix}session_id",
        )
    if isinstance(exc, CorruptStore):
        return RpcFailure(
            grpc.StatusCode.DATA_LOSS,
            str(exc),
            "CORRUPT_STORE",
            {"path": exc.path, "detail": exc.detail},
        )
    if isinstance(exc, (StoreUnavailable, OSError)):
        return RpcFailure(
            grpc.StatusCode.UNAVAILABLE, f"store unavailable: {exc}", "STORE_UNAVAILABLE"
        )
    return RpcFailure(
        grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}", "INTERNAL"
    )


def _invalid_checkpoint(path: str, detail: str, prefix: str) -> RpcFailure:
    shown = path if path == "<input>" else prefix + path
    return RpcFailure(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"checkpoint refused: {path}: {detail}",
        "INVALID_CHECKPOINT",
        {"field": path, "detail": detail},
        field=shown,
    )


def abort(context: grpc.ServicerContext, failure: RpcFailure) -> NoReturn:
    """End the RPC of ``context`` with ``failure`` (code, message and details)."""
    status = failure.status()
    context.abort_with_status(
        _Status(
            failure.code,
            failure.message,
            ((_DETAILS_KEY, status.SerializeToString()),),
        )
    )
    raise AssertionError("abort_with_status returned")  # pragma: no cover


class _Status(grpc.Status):
    def __init__(
        self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[tuple[str, bytes], ...]
    ) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


# --- the client side ----------------------------------------------------------


def from_rpc_error(error: grpc.RpcError, *, session_id: str | None = None) -> Exception:
    """The store-level exception for a failed call (see the module table)."""
    code = error.code()
    message = error.details() or ""
    info = _error_info(error)
    reason = info.reason if info is not None else ""
    meta = dict(info.metadata) if info is not None else {}
    if code == grpc.StatusCode.NOT_FOUND and reason == "SESSION_NOT_FOUND":
        return NotFound(meta.get("session_id", session_id or ""))
    if code == grpc.StatusCode.ABORTED and reason == "GENERATION_CONFLICT":
        expected = int(meta.get("expected_generation", "0") or 0)
        stored = int(meta.get("stored_generation", "0") or 0)
        return Conflict(meta.get("session_id", session_id or ""), expected or None, stored or None)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        if reason == "INVALID_CHECKPOINT":
            return InvalidCheckpoint(meta.get("field", "<input>"), meta.get("detail", message))
        if reason == "INVALID_SESSION_ID":
            return InvalidSessionId(message)
        return InvalidRequest(code, message, reason)
    if code == grpc.StatusCode.DATA_LOSS and reason == "CORRUPT_STORE":
        return CorruptStore(meta.get("path", "?"), meta.get("detail", message))
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable(code, message, reason)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return Unauthenticated(code, message, reason)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ResourceExhausted(code, message, reason)
    return ServiceError(code, message, reason)


def _error_info(error: grpc.RpcError) -> Any:
    for item in error.trailing_metadata() or ():
        if item.key != _DETAILS_KEY or not isinstance(item.value, bytes):
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


_RPC_CODES: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.NOT_FOUND: code_pb2.NOT_FOUND,
    grpc.StatusCode.ABORTED: code_pb2.ABORTED,
    grpc.StatusCode.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    grpc.StatusCode.DATA_LOSS: code_pb2.DATA_LOSS,
    grpc.StatusCode.UNAVAILABLE: code_pb2.UNAVAILABLE,
    grpc.StatusCode.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    grpc.StatusCode.INTERNAL: code_pb2.INTERNAL,
}
