"""The handlers of ``CheckpointStoreService`` over any store.

Each handler takes the request's raw bytes and parses them itself, so a
request that is not valid protobuf is answered with INVALID_ARGUMENT (gRPC
would answer INTERNAL), and checkpoints are validated by the store's ``put``
with the rules of ``checkpoint.encode``/``decode``: nothing a reader would
refuse is ever stored. Store errors become status codes through
:func:`~dsxir.service.failures.failure_of`.

Watch events come from the store when it is a
:class:`~dsxir.store.events.CommitFeed`; otherwise the
servicer publishes the commits it makes itself, under a per-session lock so
that events of one session are published in commit order.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from dsxir.checkpoint_store.v1 import service_pb2 as pb
from dsxir.errors import InvalidCheckpoint, InvalidSessionId, NotFound
from dsxir.optimizer_session.statuses import STATUS_NAMES
from dsxir.optimizer_session.validate import checked_bytes
from dsxir.service.failures import RpcFailure, abort, failure_of
from dsxir.service.watch import (
    WatchClosed,
    WatchHub,
    WatchInterrupted,
    WatchOverflow,
)
from dsxir.store.events import CommitEvent
from dsxir.store.grpc import convert
from dsxir.store.grpc.protocol import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, SERVICE_NAME, Reason
from dsxir.store.interface import (
    Listing,
    Store,
    listing_of,
    timestamp_to_datetime,
)
from dsxir.store.session_ids import check_session_id

__all__ = ["CheckpointStoreServicer"]

_M = TypeVar("_M", bound=Message)
_STRIPES = 64
_POLL_SECONDS = 0.25


class CheckpointStoreServicer:
    """``CheckpointStoreService`` over ``store``; watch events go through ``hub``."""

    def __init__(
        self,
        store: Store,
        hub: WatchHub,
        *,
        publish_own_commits: bool,
        max_watchers: int,
    ) -> None:
        """Serve ``store``; publish own commits to ``hub`` unless the store feeds it."""
        self.store = store
        self.hub = hub
        self._publish = publish_own_commits
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._watch_slots = threading.BoundedSemaphore(max_watchers)
        self._max_watchers = max_watchers

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler to add to a ``grpc.Server``."""
        unary = grpc.unary_unary_rpc_method_handler
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "PutCheckpoint": unary(self._unary(self.put_checkpoint)),
                "GetCheckpoint": unary(self._unary(self.get_checkpoint)),
                "ListSessions": unary(self._unary(self.list_sessions)),
                "DeleteCheckpoint": unary(self._unary(self.delete_checkpoint)),
                "WatchSession": grpc.unary_stream_rpc_method_handler(self._watch),
            },
        )

    # --- the methods (each takes and returns messages) -------------------------

    def put_checkpoint(self, data: bytes) -> pb.PutCheckpointResponse:
        """Commit under the CAS rule (see the .proto)."""
        request = _parse(pb.PutCheckpointRequest, data)
        if not request.HasField("checkpoint"):
            raise _bad_request("checkpoint", "is required")
        if request.expected_generation < 0:
            raise _bad_request("expected_generation", "must not be negative")
        cp = request.checkpoint
        expected = request.expected_generation or None
        try:
            if not self._publish:
                generation = self.store.put(cp, expected_generation=expected)
            else:
                with self._stripe(check_session_id(cp.session_id)):
                    generation = self.store.put(cp, expected_generation=expected)
                    self.hub.publish(CommitEvent(cp.session_id, listing_of(cp, generation)))
        except InvalidSessionId as exc:
            # Report the checkpoint's first refused field (FORMAT.md §7 order) when
            # it has one: the session id is only the store's own, later rule.
            try:
                checked_bytes(cp)
            except InvalidCheckpoint as shape:
                raise failure_of(shape, field_prefix="checkpoint.") from None
            raise failure_of(exc, field_prefix="checkpoint.") from exc
        except Exception as exc:
            raise failure_of(exc, field_prefix="checkpoint.") from exc
        return pb.PutCheckpointResponse(generation=generation)

    def get_checkpoint(self, data: bytes) -> pb.GetCheckpointResponse:
        """The latest checkpoint and its generation."""
        request = _parse(pb.GetCheckpointRequest, data)
        stored = self.store.get(request.session_id)
        return pb.GetCheckpointResponse(checkpoint=stored.checkpoint, generation=stored.generation)

    def list_sessions(self, data: bytes) -> pb.ListSessionsResponse:
        """One page of summaries (AIP-158)."""
        request = _parse(pb.ListSessionsRequest, data)
        if request.page_size < 0:
            raise _bad_request("page_size", "must not be negative")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        status = None
        if request.status:
            status = STATUS_NAMES.get(request.status)
            if status is None:
                raise _bad_request("status", f"unknown status {request.status}")
        optimizer = request.optimizer or None
        since = None
        if request.HasField("updated_since"):
            stamp = request.updated_since
            if not 0 <= stamp.nanos < 1_000_000_000:
                raise _bad_request("updated_since", "nanos must be in [0, 1e9)")
            try:
                since = timestamp_to_datetime(stamp.seconds, stamp.nanos)
            except (OverflowError, ValueError):
                raise _bad_request("updated_since", "out of range") from None
        fingerprint = _fingerprint(request)
        after = _read_page_token(request.page_token, fingerprint)
        page, more = self._page(status, optimizer, since, after, size)
        response = pb.ListSessionsResponse(
            sessions=[convert.summary_from_listing(item) for item in page]
        )
        if more and page:
            response.next_page_token = _page_token(page[-1].session_id, fingerprint)
        return response

    def delete_checkpoint(self, data: bytes) -> pb.DeleteCheckpointResponse:
        """Forget a session (idempotent)."""
        request = _parse(pb.DeleteCheckpointRequest, data)
        session_id = check_session_id(request.session_id)
        if not self._publish:
            self.store.delete(session_id)
        else:
            with self._stripe(session_id):
                self.store.delete(session_id)
                self.hub.publish(CommitEvent(session_id, None))
        return pb.DeleteCheckpointResponse()

    def watch_session(self, data: bytes, is_active: Callable[[], bool]) -> Iterator[Any]:
        """The events of one session until ``is_active()`` turns false (see the .proto)."""
        request = _parse(pb.WatchSessionRequest, data)
        session_id = check_session_id(request.session_id)
        try:
            subscription = self.hub.subscribe(session_id)
        except WatchClosed as exc:
            raise _unavailable(Reason.SERVER_SHUTTING_DOWN, str(exc)) from None
        try:
            initial = self._current(session_id)
            last = 0 if initial is None else initial.generation
            yield _event(pb.WATCH_EVENT_TYPE_INITIAL, session_id, initial)
            while is_active():
                try:
                    event = subscription.get(_POLL_SECONDS)
                except WatchClosed:
                    raise _unavailable(Reason.SERVER_SHUTTING_DOWN, "shutting down") from None
                except WatchInterrupted as exc:
                    raise _unavailable(
                        Reason.WATCH_INTERRUPTED, f"watch interrupted: {exc}"
                    ) from None
                except WatchOverflow as exc:
                    raise RpcFailure(
                        grpc.StatusCode.ABORTED, str(exc), Reason.WATCH_OVERFLOW
                    ) from None
                if event is None:
                    continue
                if event.listing is None:
                    last = 0
                    yield _event(pb.WATCH_EVENT_TYPE_DELETED, session_id, None)
                elif event.listing.generation > last:
                    last = event.listing.generation
                    yield _event(pb.WATCH_EVENT_TYPE_COMMITTED, session_id, event.listing)
        finally:
            subscription.close()

    # --- plumbing ---------------------------------------------------------------

    def _unary(
        self, method: Callable[[bytes], Message]
    ) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def call(data: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                return method(data).SerializeToString()
            except Exception as exc:
                failure = failure_of(exc)
            abort(context, failure)

        return call

    def _watch(self, data: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        if not self._watch_slots.acquire(blocking=False):
            abort(
                context,
                RpcFailure(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"too many watchers (the server allows {self._max_watchers})",
                    Reason.TOO_MANY_WATCHERS,
                ),
            )
        try:
            try:
                for event in self.watch_session(data, context.is_active):
                    yield event.SerializeToString()
            except Exception as exc:
                failure = failure_of(exc)
            else:
                return
        finally:
            self._watch_slots.release()
        abort(context, failure)

    def _stripe(self, session_id: str) -> threading.Lock:
        return self._stripes[zlib.crc32(session_id.encode()) % _STRIPES]

    def _current(self, session_id: str) -> Listing | None:
        summary = getattr(self.store, "summary", None)
        if callable(summary):
            found: Listing | None = summary(session_id)
            return found
        try:
            stored = self.store.get(session_id)
        except NotFound:
            return None
        return listing_of(stored.checkpoint, stored.generation)

    def _page(
        self,
        status: str | None,
        optimizer: str | None,
        since: _dt.datetime | None,
        after: str | None,
        size: int,
    ) -> tuple[list[Listing], bool]:
        list_page = getattr(self.store, "list_page", None)
        if callable(list_page):
            rows: list[Listing] = list_page(
                status=status, optimizer=optimizer, updated_since=since, after=after, limit=size + 1
            )
        else:
            rows = self.store.list(status=status, optimizer=optimizer, updated_since=since)
            if after is not None:
                key = after.encode()
                rows = [item for item in rows if item.session_id.encode() > key]
            rows = rows[: size + 1]
        return rows[:size], len(rows) > size


def _parse(cls: type[_M], data: bytes) -> _M:
    message = cls()
    try:
        message.ParseFromString(data)
    except Exception as exc:  # untrusted bytes: any parse failure is the caller's
        raise RpcFailure(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"<input>: not a valid {cls.DESCRIPTOR.name} ({exc})",
            Reason.INVALID_CHECKPOINT,
            {"field": "<input>", "detail": f"not a protobuf request ({exc})"},
            field="<input>",
        ) from None
    return message


def _bad_request(field: str, detail: str) -> RpcFailure:
    return RpcFailure(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{field}: {detail}",
        Reason.INVALID_REQUEST,
        {"field": field},
        field=field,
    )


def _unavailable(reason: str, message: str) -> RpcFailure:
    return RpcFailure(grpc.StatusCode.UNAVAILABLE, message, reason)


def _event(kind: int, session_id: str, listing: Listing | None) -> pb.WatchSessionResponse:
    response = pb.WatchSessionResponse(type=kind, session_id=session_id)  # type: ignore[arg-type]
    if listing is not None:
        response.session.CopyFrom(convert.summary_from_listing(listing))
    return response


def _fingerprint(request: pb.ListSessionsRequest) -> str:
    stamp = request.updated_since
    key = [
        request.status,
        request.optimizer,
        [stamp.seconds, stamp.nanos] if request.HasField("updated_since") else None,
    ]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def _page_token(after: str, fingerprint: str) -> str:
    body = json.dumps({"v": 1, "after": after, "f": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def _read_page_token(token: str, fingerprint: str) -> str | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        after = body["after"]
        if body.get("v") != 1 or not isinstance(after, str):
            raise ValueError("bad token")
    except (ValueError, KeyError, TypeError):
        raise _bad_request("page_token", "not a page token of this service") from None
    if body.get("f") != fingerprint:
        raise _bad_request(
            "page_token", "the filters differ from those of the request that returned the token"
        )
    return after
