"""Conversions between store values and the service's messages.

A :class:`~dsxir.store.Listing` travels as a
``SessionSummary`` and a :class:`~dsxir.store.ListFilter` as a
``ListSessionsRequest``; status names (``"running"`` …) as ``SessionStatus``
numbers; datetimes as ``google.protobuf.Timestamp`` at microsecond precision
(the precision of a listing's ``updated_at``). :func:`split_state` takes
the sealed state out of a ``WatchSessionResponse``'s bytes.
"""

from __future__ import annotations

import datetime as _dt

from google.protobuf.timestamp_pb2 import Timestamp

from dsxir.checkpoint_store.v1.service_pb2 import (
    ListSessionsRequest,
    SessionSummary,
    WatchSessionResponse,
)
from dsxir.optimizer_session.statuses import STATUS_NAMES, STATUS_NUMBERS
from dsxir.store.grpc.protocol import split_field
from dsxir.store.interface import ListFilter, Listing, timestamp_to_datetime

__all__ = [
    "datetime_to_timestamp",
    "list_request",
    "listing_from_summary",
    "split_state",
    "summary_from_listing",
]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def datetime_to_timestamp(when: _dt.datetime) -> Timestamp:
    """An aware datetime as a timestamp (microsecond precision, exact)."""
    delta = when - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    seconds, micro = divmod(micros, 1_000_000)
    return Timestamp(seconds=seconds, nanos=micro * 1000)


def list_request(where: ListFilter) -> ListSessionsRequest:
    """The ``ListSessionsRequest`` (first page, default size) of a list filter."""
    request = ListSessionsRequest(optimizer=where.optimizer or "")
    if where.status is not None:
        request.status = STATUS_NUMBERS[where.status]  # type: ignore[assignment]
    if where.updated_since is not None:
        request.updated_since.CopyFrom(datetime_to_timestamp(where.updated_since))
    return request


def summary_from_listing(listing: Listing) -> SessionSummary:
    """The ``SessionSummary`` of a listing."""
    summary = SessionSummary(
        session_id=listing.session_id,
        status=STATUS_NUMBERS[listing.status],  # type: ignore[arg-type]
        optimizer=listing.optimizer,
        completed=listing.completed,
        errors=listing.errors,
        attempts=listing.attempts,
        trials=listing.trials,
        generation=listing.generation,
    )
    summary.updated_at.CopyFrom(datetime_to_timestamp(listing.updated_at))
    if listing.best_score is not None:
        summary.best_score = listing.best_score
    return summary


def listing_from_summary(summary: SessionSummary) -> Listing:
    """The listing a ``SessionSummary`` describes; ``ValueError`` for an unknown status."""
    status = STATUS_NAMES.get(summary.status)
    if status is None:
        raise ValueError(f"summary of {summary.session_id!r} has unknown status {summary.status}")
    return Listing(
        session_id=summary.session_id,
        status=status,
        optimizer=summary.optimizer,
        updated_at=timestamp_to_datetime(summary.updated_at.seconds, summary.updated_at.nanos),
        best_score=summary.best_score if summary.HasField("best_score") else None,
        completed=summary.completed,
        errors=summary.errors,
        attempts=summary.attempts,
        trials=summary.trials,
        generation=summary.generation,
    )


def split_state(data: bytes) -> tuple[int, bytes | None, bytes]:
    """The state of a ``WatchSessionResponse``'s bytes: its field number, its bytes, the rest.

    The state (``checkpoint``, field 4, or ``delta``, field 5) is returned
    as sent, sealed bytes for ``checkpoint.decode`` or ``decode_delta``,
    with field number 0 and ``None`` when there is none; the rest is for
    the runtime to parse. Raises ``ValueError`` when the state comes more
    than once or the bytes cannot be walked.
    """
    states = (WatchSessionResponse.CHECKPOINT_FIELD_NUMBER, WatchSessionResponse.DELTA_FIELD_NUMBER)
    split = split_field(data, states, "the state is given more than once")
    if split is None:
        raise ValueError("the bytes cannot be walked as a message")
    return split
