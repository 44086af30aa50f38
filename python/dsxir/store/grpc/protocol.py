"""What client and server of ``CheckpointStoreService`` agree on, besides the messages.

The service's full name, the page sizes of ``ListSessions``, and the
``google.rpc.ErrorInfo`` every error carries (AIP-193): :data:`DOMAIN` and a
reason that is the name of an ``ErrorReason`` value
(``proto/dsxir/checkpoint_store/v1/error_reason.proto``), so a reason is never
spelled by hand.

The ``checkpoint`` field (1) of ``PutCheckpointRequest`` and
``GetCheckpointResponse`` carries the checkpoint's sealed bytes (FORMAT.md
§2: the body, then the CRC-32C trailer), exactly as ``checkpoint.encode``
writes them; each side takes them out with :func:`split_checkpoint` and reads
them with ``checkpoint.decode``, never through the runtime's parse of the
envelope.
"""

from __future__ import annotations

from collections.abc import Collection

from dsxir.checkpoint_store.v1 import error_reason_pb2, service_pb2
from dsxir.optimizer_session.wire import read_varint

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DETAILS_KEY",
    "DOMAIN",
    "MAX_PAGE_SIZE",
    "SERVICE_NAME",
    "Reason",
    "split_checkpoint",
    "split_field",
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


def split_checkpoint(data: bytes) -> tuple[bytes | None, bytes]:
    """Field 1 of a message (the sealed checkpoint bytes), and the message's other fields.

    The checkpoint's bytes are returned as sent, for ``checkpoint.decode``;
    the rest is for the runtime to parse. Bytes the walk cannot follow are
    returned whole as the rest (``None`` for the checkpoint), for the
    runtime to refuse. Raises ``ValueError`` when field 1 comes twice (the
    runtime would merge the two).
    """
    split = split_field(data, (1,), "is given twice")
    return (None, data) if split is None else split[1:]


def split_field(
    data: bytes, numbers: Collection[int], twice: str
) -> tuple[int, bytes | None, bytes] | None:
    """The length-delimited field of a message numbered in ``numbers``, and its other fields.

    Returns the field's number and bytes as sent (``0`` and ``None`` when
    there is none) and the other fields' bytes, for the runtime to parse;
    ``None`` when the walk cannot follow the bytes. Raises ``ValueError``
    with ``twice`` when such a field comes more than once (the runtime
    would merge them).
    """
    view = memoryview(data)
    position, number, found, keep, end = 0, 0, None, [], len(view)
    while position < end:
        start = position
        tag, position = read_varint(view, position)
        if tag is None:
            return None
        wire_type = tag & 7
        if wire_type == 0:
            value, position = read_varint(view, position)
            if value is None:
                return None
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        elif wire_type == 2:
            length, position = read_varint(view, position)
            if length is None or position + length > end:
                return None
            if tag >> 3 in numbers:
                if found is not None:
                    raise ValueError(twice)
                number, found = tag >> 3, bytes(view[position : position + length])
                position += length
                continue
            position += length
        else:
            return None
        if position > end:
            return None
        keep.append(view[start:position])
    return number, found, b"".join(keep)
