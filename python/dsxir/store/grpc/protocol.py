"""What client and server of ``CheckpointStoreService`` agree on, besides the messages.

The service's full name, the page sizes of ``ListSessions``, and the
``google.rpc.ErrorInfo`` every error carries (AIP-193): :data:`DOMAIN` and a
reason that is the name of an ``ErrorReason`` value
(``proto/dsxir/checkpoint_store/v1/error_reason.proto``), so a reason is never
spelled by hand.
"""

from __future__ import annotations

from dsxir.checkpoint_store.v1 import error_reason_pb2, service_pb2

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DETAILS_KEY",
    "DOMAIN",
    "MAX_PAGE_SIZE",
    "SERVICE_NAME",
    "Reason",
]

SERVICE_NAME: str = service_pb2.DESCRIPTOR.services_by_name["CheckpointStoreService"].full_name
"""``dsxir.checkpoint_store.v1.CheckpointStoreService``."""

DEFAULT_PAGE_SIZE = 100
"""The page size of ListSessions when the request gives 0."""

MAX_PAGE_SIZE = 1000
"""Larger page sizes are treated as this."""

DOMAIN: str = error_reason_pb2.DESCRIPTOR.package
"""The ``ErrorInfo.domain`` of every error the service sends: ``dsxir.checkpoint_store.v1``."""

DETAILS_KEY = "grpc-status-details-bin"
"""The trailing metadata key of the ``google.rpc.Status`` with the error details."""


class Reason:
    """The ``ErrorInfo.reason`` strings: the names of the ``ErrorReason`` values."""

    SESSION_NOT_FOUND: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.SESSION_NOT_FOUND)
    GENERATION_CONFLICT: str = error_reason_pb2.ErrorReason.Name(
        error_reason_pb2.GENERATION_CONFLICT
    )
    INVALID_CHECKPOINT: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.INVALID_CHECKPOINT)
    INVALID_SESSION_ID: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.INVALID_SESSION_ID)
    INVALID_REQUEST: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.INVALID_REQUEST)
    CORRUPT_STORE: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.CORRUPT_STORE)
    STORE_UNAVAILABLE: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.STORE_UNAVAILABLE)
    UNAUTHENTICATED: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.UNAUTHENTICATED)
    TOO_MANY_WATCHERS: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.TOO_MANY_WATCHERS)
    WATCH_OVERFLOW: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.WATCH_OVERFLOW)
    INTERNAL: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.INTERNAL)
    SERVER_SHUTTING_DOWN: str = error_reason_pb2.ErrorReason.Name(
        error_reason_pb2.SERVER_SHUTTING_DOWN
    )
    WATCH_INTERRUPTED: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.WATCH_INTERRUPTED)
    TOO_MANY_CALLS: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.TOO_MANY_CALLS)
    MEMORY_BUDGET_EXHAUSTED: str = error_reason_pb2.ErrorReason.Name(
        error_reason_pb2.MEMORY_BUDGET_EXHAUSTED
    )
    REQUEST_TIMEOUT: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.REQUEST_TIMEOUT)
    WATCH_IDLE: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.WATCH_IDLE)
    ILLEGAL_HISTORY: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.ILLEGAL_HISTORY)
    LEASE_HELD: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.LEASE_HELD)
    LEASE_LOST: str = error_reason_pb2.ErrorReason.Name(error_reason_pb2.LEASE_LOST)
