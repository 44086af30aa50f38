"""Store errors as gRPC statuses: what the server sends for each failure.

The server turns every store error into a status code with a message and
two details (``google.rpc.Status`` in the ``grpc-status-details-bin``
trailer, AIP-193): a ``google.rpc.ErrorInfo`` with domain ``dsxir.checkpoint_store.v1``, a
reason (an ``ErrorReason`` name) and string metadata, and, for a refused request, a
``google.rpc.BadRequest`` naming the field. The client
(:func:`dsxir.store.grpc.errors.from_rpc_error`) turns them back into the
exceptions a local store raises:

========================  ========================  =======================================
store error               status code               reason (ErrorInfo metadata)
========================  ========================  =======================================
``NotFound``              NOT_FOUND                 SESSION_NOT_FOUND (session_id)
``Conflict``              ABORTED                   GENERATION_CONFLICT (session_id,
                                                    expected_generation, stored_generation;
                                                    ``0`` stands for none)
``InvalidCheckpoint``     INVALID_ARGUMENT          INVALID_CHECKPOINT (field, detail, rule)
``InvalidSessionId``      INVALID_ARGUMENT          INVALID_SESSION_ID
bad request field         INVALID_ARGUMENT          INVALID_REQUEST (field)
``IllegalHistory``        FAILED_PRECONDITION       ILLEGAL_HISTORY (session_id, rule, detail)
``LeaseHeld``             FAILED_PRECONDITION       LEASE_HELD (session_id, holder,
                                                    expires_at: RFC 3339, UTC)
``LeaseLost``             FAILED_PRECONDITION       LEASE_LOST (session_id, detail)
``CorruptStore``          DATA_LOSS                 CORRUPT_STORE (path, detail)
``StoreUnavailable``,     UNAVAILABLE               STORE_UNAVAILABLE
``OSError``
no or wrong token         UNAUTHENTICATED           UNAUTHENTICATED
message over the limit    RESOURCE_EXHAUSTED        (set by gRPC itself, no detail)
too many calls, memory    RESOURCE_EXHAUSTED        TOO_MANY_CALLS, MEMORY_BUDGET_EXHAUSTED
budget in use
too many watchers         RESOURCE_EXHAUSTED        TOO_MANY_WATCHERS
no request message        DEADLINE_EXCEEDED         REQUEST_TIMEOUT
within the read timeout
anything else             INTERNAL                  INTERNAL
========================  ========================  =======================================

Every message and metadata value the server sends goes through
:func:`~dsxir.store.redact.redact_text`, so the secrets of a store URL quoted
by a driver's error never reach a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]

from dsxir.errors import (
    Conflict,
    CorruptStore,
    IllegalHistory,
    InvalidCheckpoint,
    InvalidDelta,
    InvalidSessionId,
    LeaseHeld,
    LeaseLost,
    NotFound,
    ResumeMismatch,
    StoreUnavailable,
)
from dsxir.store.grpc.leases import rfc3339
from dsxir.store.grpc.protocol import DETAILS_KEY, DOMAIN, Reason
from dsxir.store.redact import redact_text

__all__ = ["RpcFailure", "abort", "failure_of"]


class RpcFailure(Exception):
    """A status the server sends: raised inside a handler, turned into the RPC's status.

    ``reason`` None sends no details (a RESOURCE_EXHAUSTED that no
    ``ErrorReason`` names). The message and metadata values are redacted.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str | None,
        metadata: Mapping[str, str] | None = None,
        field: str | None = None,
    ) -> None:
        message = redact_text(message)
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = {key: redact_text(value) for key, value in (metadata or {}).items()}
        self.field = field

    def status(self) -> Any:
        """The ``google.rpc.Status`` of this failure (ErrorInfo, and BadRequest for a field)."""
        details: list[Any] = []
        if self.reason is not None:
            info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN)
            info.metadata.update(self.metadata)
            details.append(info)
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
            grpc.StatusCode.NOT_FOUND,
            str(exc),
            Reason.SESSION_NOT_FOUND,
            {"session_id": exc.session_id},
        )
    if isinstance(exc, Conflict):
        return RpcFailure(
            grpc.StatusCode.ABORTED,
            str(exc),
            Reason.GENERATION_CONFLICT,
            {
                "session_id": exc.session_id,
                "expected_generation": str(exc.expected or 0),
                "stored_generation": str(exc.actual or 0),
            },
        )
    if isinstance(exc, IllegalHistory):
        return RpcFailure(
            grpc.StatusCode.FAILED_PRECONDITION,
            str(exc),
            Reason.ILLEGAL_HISTORY,
            {"session_id": exc.session_id, "rule": exc.rule, "detail": exc.detail},
        )
    if isinstance(exc, LeaseHeld):
        return RpcFailure(
            grpc.StatusCode.FAILED_PRECONDITION,
            str(exc),
            Reason.LEASE_HELD,
            {
                "session_id": exc.session_id,
                "holder": exc.holder,
                "expires_at": rfc3339(exc.expires_at),
            },
        )
    if isinstance(exc, LeaseLost):
        return RpcFailure(
            grpc.StatusCode.FAILED_PRECONDITION,
            str(exc),
            Reason.LEASE_LOST,
            {"session_id": exc.session_id, "detail": exc.detail},
        )
    if isinstance(exc, InvalidDelta):  # the delta's own paths, whatever field_prefix says
        failure = _invalid_checkpoint(exc.path, exc.detail, exc.rule, "delta.", "delta")
        failure.metadata["subject"] = "delta"
        return failure
    if isinstance(exc, InvalidCheckpoint):
        return _invalid_checkpoint(exc.path, exc.detail, exc.rule, field_prefix)
    if isinstance(exc, ResumeMismatch) and exc.reason == "checkpoint_shape":
        field, detail = exc.field or "<input>", exc.detail or str(exc)
        return _invalid_checkpoint(field, detail, exc.rule, field_prefix)
    if isinstance(exc, InvalidSessionId):
        return RpcFailure(
            grpc.StatusCode.INVALID_ARGUMENT,
            str(exc),
            Reason.INVALID_SESSION_ID,
            field=f"{field_prefix}session_id",
        )
    if isinstance(exc, CorruptStore):
        return RpcFailure(
            grpc.StatusCode.DATA_LOSS,
            str(exc),
            Reason.CORRUPT_STORE,
            {"path": exc.path, "detail": exc.detail},
        )
    if isinstance(exc, (StoreUnavailable, OSError)):
        return RpcFailure(
            grpc.StatusCode.UNAVAILABLE, f"store unavailable: {exc}", Reason.STORE_UNAVAILABLE
        )
    return RpcFailure(
        grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}", Reason.INTERNAL
    )


def _invalid_checkpoint(
    path: str, detail: str, rule: str | None, prefix: str, what: str = "checkpoint"
) -> RpcFailure:
    shown = path if path == "<input>" else prefix + path
    meta = {"field": path, "detail": detail}
    if rule is not None:
        meta["rule"] = rule
    suffix = f" (rule {rule})" if rule is not None else ""
    return RpcFailure(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{what} refused: {path}: {detail}{suffix}",
        Reason.INVALID_CHECKPOINT,
        meta,
        field=shown,
    )


async def abort(context: grpc.aio.ServicerContext[Any, Any], failure: RpcFailure) -> NoReturn:
    """End the RPC of ``context`` with ``failure`` (code, message and details)."""
    trailing: tuple[tuple[str, bytes], ...] = ()
    if failure.reason is not None or failure.field is not None:
        trailing = ((DETAILS_KEY, failure.status().SerializeToString()),)
    await context.abort(failure.code, failure.message, trailing)
    raise AssertionError("abort returned")  # pragma: no cover


_RPC_CODES: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.NOT_FOUND: code_pb2.NOT_FOUND,
    grpc.StatusCode.ABORTED: code_pb2.ABORTED,
    grpc.StatusCode.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    grpc.StatusCode.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    grpc.StatusCode.DATA_LOSS: code_pb2.DATA_LOSS,
    grpc.StatusCode.UNAVAILABLE: code_pb2.UNAVAILABLE,
    grpc.StatusCode.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED: code_pb2.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL: code_pb2.INTERNAL,
}
