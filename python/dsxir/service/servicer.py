"""The handlers of ``CheckpointStoreService`` over any store.

Handlers run on the server's asyncio loop and take every method as a
request stream, so they decide when, and how long, to wait for the request
message: a call whose message has not arrived within the read timeout is
ended, and no thread ever waits for a client. Each request is then charged
to the memory budget (:func:`~dsxir.service.limits.request_cost`) and
handed as raw bytes to a worker thread, which parses it itself (a small
delta the store can append at once is committed on the loop instead:
:mod:`dsxir.service.inline`): a request that is not valid protobuf is
answered with INVALID_ARGUMENT (gRPC would answer INTERNAL), and
checkpoints are validated by the store's ``put`` with the rules of
``checkpoint.encode``/``decode``: nothing a reader would refuse is ever
stored. Store errors become status codes through
:func:`~dsxir.service.failures.failure_of`.

Watch events come from the store when it is a
:class:`~dsxir.store.events.CommitFeed`; otherwise the
servicer publishes the commits it makes itself, under a per-session lock so
that events of one session are published in commit order. A watch stream
takes no thread: it waits on its subscription's waker.

A watch of ``WATCH_VIEW_CHECKPOINT`` also sends the session's state, as
sealed bytes: the stored checkpoint first, then on each commit the delta the
commit came with when its base is the watcher's last generation, else the
checkpoint the commit came with, else, for the commit after the watcher's
last generation, the delta the store still holds for it (a store with
``delta_bytes``, such as the PostgreSQL store, whose feed's events carry no
state), else the checkpoint the store holds then. While such a
watcher exists, the servicer's own commits carry their sealed bytes to the
hub (:meth:`~dsxir.service.watch.WatchHub.wants_state`).

``ListSessions`` skips damaged sessions (one warning line each on the
``dsxir.service`` logger) instead of failing the page.

The lease methods hand the store's leases over (:mod:`dsxir.store.grpc.leases`
checks holder, ttl and token first). A lease token is a secret: only
``AcquireLease`` and ``RenewLease`` answers carry it, and no status message or
metadata ever holds the token a request sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as _dt
import hashlib
import inspect
import json
import logging
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message

from dsxir.checkpoint_store.v1 import service_pb2 as pb
from dsxir.errors import (
    Conflict,
    CorruptStore,
    InvalidCheckpoint,
    InvalidDelta,
    NotFound,
    ResumeMismatch,
)
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.statuses import STATUS_NAMES
from dsxir.optimizer_session.v1.checkpoint_pb2 import CheckpointDelta
from dsxir.optimizer_session.validate import seal_body
from dsxir.optimizer_session.wire import varint
from dsxir.service.failures import RpcFailure, abort, failure_of
from dsxir.service.inline import LoopCommits
from dsxir.service.limits import (
    MemoryBudget,
    Slots,
    WatchSlots,
    client_of,
    give_back_memory,
    request_cost,
)
from dsxir.service.watch import (
    Subscription,
    WatchClosed,
    WatchHub,
    WatchInterrupted,
    WatchOverflow,
)
from dsxir.store.events import CommitEvent
from dsxir.store.grpc import convert, leases
from dsxir.store.grpc.protocol import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    SERVICE_NAME,
    Reason,
    split_checkpoint,
)
from dsxir.store.interface import (
    Lease,
    Listing,
    Store,
    listing_of,
    timestamp_to_datetime,
)
from dsxir.store.redact import redact_text
from dsxir.store.session_ids import check_session_id

__all__ = [
    "MAX_SMALL_REQUEST_BYTES",
    "CheckpointStoreServicer",
    "Limits",
    "next_message",
    "read_request",
    "within",
]

_M = TypeVar("_M", bound=Message)
_T = TypeVar("_T")
_STRIPES = 64
_MAX_PAGE_TOKEN_CHARS = 1024
_GIVE_BACK_AFTER = 1024 * 1024
MAX_SMALL_REQUEST_BYTES = 64 * 1024
"""The longest WatchSession or health request: they are parsed on the loop, not charged."""
MAX_LOOP_COMMIT_BYTES = 8 * 1024
"""The longest PutCheckpointDelta request that may be committed on the loop (:mod:`.inline`)."""
_MIB = 1024 * 1024
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_log = logging.getLogger("dsxir.service")
_SHORTEST_SECRET = 8
"""The shortest request token kept out of failures (shorter ones are no secret)."""
if TYPE_CHECKING:
    _Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Limits:
    """The bounds the handlers keep (docs/security.md lists the defaults)."""

    calls: Slots
    """Calls handled at once, from their arrival to their answer (watch streams until
    their request is read)."""
    memory: MemoryBudget
    """Bytes the requests in flight may take."""
    watches: WatchSlots
    """Watch streams open at once, in all and per client."""
    read_timeout: float
    """Seconds a call may take to send its request message."""
    watch_idle_seconds: float
    """A watch stream with no event for this long ends (the client watches again)."""
    watch_write_timeout: float
    """A watcher that does not take an event within this ends."""


async def within(awaitable: Awaitable[_T], timeout: float) -> _T:
    """``await awaitable`` for at most ``timeout`` seconds, else ``asyncio.TimeoutError``.

    Unlike ``asyncio.wait_for`` before Python 3.12, this never loses a
    cancellation (the client went away) that comes just as the awaitable
    finishes: a handler that lost it would wait for nobody, holding its slot.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait((task,), timeout=timeout)
    finally:
        if not task.done():
            task.cancel()
    if not done:
        raise asyncio.TimeoutError
    return task.result()


async def next_message(
    context: _Context, timeout: float, closing: asyncio.Event | None = None
) -> Any:
    """The call's next message (``grpc.aio.EOF`` after the last), within ``timeout``.

    A call that sends nothing for ``timeout`` seconds is ended with
    DEADLINE_EXCEEDED; when ``closing`` is set first (the server shuts down),
    with UNAVAILABLE, so that it does not hold the shutdown for its grace.
    """
    if closing is None:
        closing = asyncio.Event()
    reading = asyncio.ensure_future(context.read())
    stopping = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait(
            (reading, stopping), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (reading, stopping):
            if not task.done():
                task.cancel()
    if reading.done() and not reading.cancelled():
        return reading.result()
    if stopping.done() and not stopping.cancelled():
        await abort(
            context, _unavailable(Reason.SERVER_SHUTTING_DOWN, "the server is shutting down")
        )
    await abort(
        context,
        RpcFailure(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"no request message within {timeout:g} s (the server's read timeout)",
            Reason.REQUEST_TIMEOUT,
        ),
    )


async def read_request(
    context: _Context, timeout: float, closing: asyncio.Event | None = None
) -> Any:
    """The call's one request message (see :func:`next_message`); none is INVALID_ARGUMENT."""
    message = await next_message(context, timeout, closing)
    if message is grpc.aio.EOF:
        await abort(
            context,
            RpcFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                "<input>: the call sent no request message",
                Reason.INVALID_REQUEST,
                {"field": "<input>"},
                field="<input>",
            ),
        )
    return message


def too_many_calls(limit: int) -> RpcFailure:
    """The answer to a call over the cap of calls at once."""
    return RpcFailure(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the server is busy: it handles at most {limit} calls at once; try again later",
        Reason.TOO_MANY_CALLS,
    )


class CheckpointStoreServicer:
    """``CheckpointStoreService`` over ``store``; watch events go through ``hub``.

    Store work runs on ``executor``'s threads; ``limits`` bound the rest.
    """

    def __init__(
        self,
        store: Store,
        hub: WatchHub,
        *,
        publish_own_commits: bool,
        limits: Limits,
        executor: Executor,
    ) -> None:
        """Serve ``store``; publish own commits to ``hub`` unless the store feeds it."""
        self.store = store
        self.hub = hub
        self.limits = limits
        self._executor = executor
        self._publish = publish_own_commits
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._giving_back = threading.Event()
        self.closing: asyncio.Event | None = None
        """Set when the server shuts down (by the server, on its loop)."""
        self._list_page = getattr(store, "list_page", None)
        self._page_on_damage = callable(self._list_page) and _accepts(self._list_page, "on_damage")
        self._delta_bytes: Callable[[str, int], bytes | None] | None = getattr(
            store, "delta_bytes", None
        )
        self._try_put_delta: Callable[[CheckpointDelta], int | None] | None = getattr(
            store, "try_put_delta", None
        )
        self.loop_commits = LoopCommits()
        """Whether commits run on the event loop now (:mod:`dsxir.service.inline`)."""

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler to add to a ``grpc.aio.Server``."""
        unary = grpc.stream_unary_rpc_method_handler
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "PutCheckpoint": unary(self._unary("PutCheckpoint", self.put_checkpoint)),
                "PutCheckpointDelta": unary(
                    self._unary(
                        "PutCheckpointDelta",
                        self.put_checkpoint_delta,
                        at_once=self.put_checkpoint_delta_at_once if self._try_put_delta else None,
                    )
                ),
                "GetCheckpoint": unary(self._unary("GetCheckpoint", self.get_checkpoint)),
                "ListSessions": unary(self._unary("ListSessions", self.list_sessions)),
                "DeleteCheckpoint": unary(self._unary("DeleteCheckpoint", self.delete_checkpoint)),
                "WatchSession": grpc.stream_stream_rpc_method_handler(self._watch),
                "AcquireLease": unary(self._unary("AcquireLease", self.acquire_lease)),
                "RenewLease": unary(self._unary("RenewLease", self.renew_lease)),
                "ReleaseLease": unary(self._unary("ReleaseLease", self.release_lease)),
                "GetLease": unary(self._unary("GetLease", self.get_lease)),
            },
        )

    # --- the methods (each takes a request's bytes and returns the response's) ----
    # They run on worker threads.

    def put_checkpoint(self, data: bytes) -> bytes:
        """Commit under the CAS rule (see the .proto)."""
        try:
            raw, rest = split_checkpoint(data)
        except ValueError as exc:
            raise _bad_request("checkpoint", str(exc)) from None
        del data
        request = _parse(pb.PutCheckpointRequest, rest)
        if raw is None:
            raise _bad_request("checkpoint", "is required")
        if request.expected_generation < 0:
            raise _bad_request("expected_generation", "must not be negative")
        try:  # the sealed checkpoint bytes, read as every reader reads them
            cp = checkpoint.decode(raw)
        except ResumeMismatch as exc:
            raise failure_of(exc, field_prefix="checkpoint.") from None
        del raw
        expected = request.expected_generation or None
        try:
            if not self._publish:
                generation = self.store.put(cp, expected_generation=expected)
            else:
                session_id = check_session_id(cp.session_id)
                with self._stripe(session_id):
                    generation = self.store.put(cp, expected_generation=expected)
                    sealed = None
                    if self.hub.wants_state(session_id):
                        sealed = seal_body(cp.SerializeToString(deterministic=True))
                    listing = listing_of(cp, generation)
                    self.hub.publish(CommitEvent(session_id, listing, checkpoint=sealed))
        except Exception as exc:
            raise failure_of(exc, field_prefix="checkpoint.") from exc
        return pb.PutCheckpointResponse(generation=generation).SerializeToString()

    def put_checkpoint_delta(self, data: bytes) -> bytes:
        """Commit a delta under the CAS rule (see the .proto)."""
        response = self._put_delta(data, at_once=False)
        assert response is not None  # the store waits when it must
        return response

    def put_checkpoint_delta_at_once(self, data: bytes) -> bytes | None:
        """:meth:`put_checkpoint_delta` when the store commits without waiting, else None.

        None when the store's ``try_put_delta`` or the session's stripe would
        wait: nothing is committed then. For the event loop (:mod:`.inline`).
        """
        return self._put_delta(data, at_once=True)

    def _put_delta(self, data: bytes, *, at_once: bool) -> bytes | None:
        try:
            raw, rest = split_checkpoint(data)
        except ValueError as exc:
            raise _bad_request("delta", str(exc)) from None
        del data
        _parse(pb.PutCheckpointDeltaRequest, rest)
        if raw is None:
            raise _bad_request("delta", "is required")
        try:  # the sealed delta bytes, read as every reader reads them
            delta = dl.decode_delta(raw)
        except Exception as exc:
            raise failure_of(exc, field_prefix="delta.") from None
        try:
            session_id = check_session_id(delta.head.session_id)
        except Exception as exc:
            raise failure_of(exc, field_prefix="delta.head.") from None
        commit = self._try_put_delta if at_once else self._commit_delta
        assert commit is not None
        try:
            if not self._publish:
                generation = commit(delta)
            else:
                stripe = self._stripe(session_id)
                if not stripe.acquire(blocking=not at_once):
                    return None
                try:
                    generation = commit(delta)
                    if generation is None:
                        return None
                    listing = self._listing(session_id)
                    carried = None
                    if listing.generation == generation and self.hub.wants_state(session_id):
                        carried = raw  # the delta's sealed bytes, as decode_delta read them
                    self.hub.publish(CommitEvent(session_id, listing, delta=carried))
                finally:
                    stripe.release()
            if generation is None:
                return None
        except InvalidCheckpoint as exc:
            if not exc.path.startswith("head."):  # the new checkpoint's field
                raise failure_of(exc, field_prefix="checkpoint.") from exc
            failure = failure_of(exc, field_prefix="delta.")  # the head's, as its writer screens
            failure.metadata["subject"] = "delta"
            raise failure from exc
        except Exception as exc:
            raise failure_of(exc, field_prefix="checkpoint.") from exc
        return pb.PutCheckpointDeltaResponse(generation=generation).SerializeToString()

    def _commit_delta(self, delta: CheckpointDelta) -> int:
        """``put_delta`` of the store, or (a store without it) the delta applied and ``put``."""
        put_delta = getattr(self.store, "put_delta", None)
        if put_delta is not None:
            generation: int = put_delta(delta)
            return generation
        session_id, expected = delta.head.session_id, delta.base_generation
        try:
            stored = self.store.get(session_id)
        except NotFound:
            raise Conflict(session_id, expected, None) from None
        if stored.generation != expected:
            raise Conflict(session_id, expected, stored.generation)
        return self.store.put(dl.apply(stored.checkpoint, delta), expected_generation=expected)

    def _listing(self, session_id: str) -> Listing:
        """The listing of a session just committed, for the commit event."""
        listing = getattr(self.store, "listing", None)
        if listing is not None:
            found: Listing = listing(session_id)
            return found
        stored = self.store.get(session_id)
        return listing_of(stored.checkpoint, stored.generation)

    def get_checkpoint(self, data: bytes) -> bytes:
        """The latest checkpoint and its generation."""
        request = _parse(pb.GetCheckpointRequest, data)
        stored = self.store.get(request.session_id)
        # The response's bytes, built around the checkpoint's sealed bytes (FORMAT.md §2).
        body = seal_body(stored.checkpoint.SerializeToString(deterministic=True))
        return _length_delimited(1, body) + _varint_field(2, stored.generation)

    def list_sessions(self, data: bytes) -> bytes:
        """One page of summaries (AIP-158); damaged sessions are logged and skipped."""
        request = _parse(pb.ListSessionsRequest, data)
        if request.page_size < 0:
            raise _bad_request("page_size", "must not be negative")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        status = None
        if request.status:
            status = STATUS_NAMES.get(request.status)
            if status is None:
                raise _bad_request("status", f"unknown status {request.status}")
        if "\x00" in request.optimizer:
            raise _bad_request("optimizer", "must not hold NUL (U+0000): no optimizer name does")
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
        return response.SerializeToString()

    def delete_checkpoint(self, data: bytes) -> bytes:
        """Forget a session (idempotent)."""
        request = _parse(pb.DeleteCheckpointRequest, data)
        session_id = check_session_id(request.session_id)
        if not self._publish:
            self.store.delete(session_id)
        else:
            with self._stripe(session_id):
                self.store.delete(session_id)
                self.hub.publish(CommitEvent(session_id, None))
        return pb.DeleteCheckpointResponse().SerializeToString()

    def acquire_lease(self, data: bytes) -> bytes:
        """Take a session's lease (LEASE_HELD while another worker holds it)."""
        request = _parse(pb.AcquireLeaseRequest, data)
        session_id = check_session_id(request.session_id)
        _check_holder(request.holder)
        ttl = _ttl_seconds(request)
        lease = self.store.acquire_lease(session_id, request.holder, ttl=ttl)
        message = leases.lease_message(lease, with_token=True)
        return pb.AcquireLeaseResponse(lease=message).SerializeToString()

    def renew_lease(self, data: bytes) -> bytes:
        """Extend a held lease (LEASE_LOST when its token is no longer the session's)."""
        request = _parse(pb.RenewLeaseRequest, data)
        session_id = check_session_id(request.session_id)
        token = _check_token(request.token)
        ttl = _ttl_seconds(request)
        with _token_kept_out(token):
            lease = self.store.renew_lease(_held(session_id, token), ttl=ttl)
            message = leases.lease_message(lease, with_token=True)
        return pb.RenewLeaseResponse(lease=message).SerializeToString()

    def release_lease(self, data: bytes) -> bytes:
        """Give a lease up (idempotent)."""
        request = _parse(pb.ReleaseLeaseRequest, data)
        session_id = check_session_id(request.session_id)
        token = _check_token(request.token)
        with _token_kept_out(token):
            self.store.release_lease(_held(session_id, token))
        return pb.ReleaseLeaseResponse().SerializeToString()

    def get_lease(self, data: bytes) -> bytes:
        """A session's lease, expired or not, never with its token."""
        request = _parse(pb.GetLeaseRequest, data)
        session_id = check_session_id(request.session_id)
        lease = self.store.get_lease(session_id)
        response = pb.GetLeaseResponse()
        if lease is not None:
            response.lease.CopyFrom(leases.lease_message(lease, with_token=False))
        return response.SerializeToString()

    # --- the asyncio side ----------------------------------------------------------

    def _unary(
        self,
        name: str,
        method: Callable[[bytes], bytes],
        *,
        at_once: Callable[[bytes], bytes | None] | None = None,
    ) -> Callable[[Any, _Context], Awaitable[bytes]]:
        """The handler of a unary method: ``method`` runs on a worker thread.

        With ``at_once``, a small request is first tried on the loop while
        :attr:`loop_commits` allows it (:mod:`.inline`); ``method`` runs on a
        worker only when ``at_once`` returns None.
        """

        async def call(request_iterator: Any, context: _Context) -> bytes:
            limits = self.limits
            if not limits.calls.try_acquire():
                await abort(context, too_many_calls(limits.calls.limit))
            handed_over = False
            size = 0
            try:
                data: bytes = await read_request(context, limits.read_timeout, self.closing)
                size = len(data)
                if size < _GIVE_BACK_AFTER:
                    cost = request_cost(name, data)
                else:  # reading a large request takes a while: not on the loop
                    cost = await asyncio.get_running_loop().run_in_executor(
                        self._executor, request_cost, name, data
                    )
                refusal = _charge(limits.memory, cost, size)
                if refusal is not None:
                    del data  # freed before the memory is given back
                    await abort(context, refusal)
                done = None
                if at_once is not None and size <= MAX_LOOP_COMMIT_BYTES:
                    done = self._at_once(at_once, data)
                if done is not None:  # the slot is given back below, before the answer
                    limits.memory.release(cost)
                    outcome = done
                else:
                    work = asyncio.get_running_loop().run_in_executor(
                        self._executor, _run, method, data
                    )
                    del data
                    # The slot and the charge are given back when the work is done,
                    # even when the client has gone away before.
                    work.add_done_callback(lambda _: self._done(cost, size))
                    handed_over = True
                    outcome = await asyncio.shield(work)
            finally:
                if not handed_over:
                    limits.calls.release()
                    self._give_back(size)
            return await _answer(context, outcome)

        return call

    def _at_once(
        self, method: Callable[[bytes], bytes | None], data: bytes
    ) -> bytes | RpcFailure | None:
        """``method`` run on the loop and timed, when :attr:`loop_commits` allows it."""
        if not self.loop_commits.allowed():
            return None
        began = time.perf_counter()
        outcome = _run(method, data)
        self.loop_commits.took(time.perf_counter() - began)
        return outcome

    def _done(self, cost: int, size: int) -> None:
        self.limits.calls.release()
        self.limits.memory.release(cost)
        self._give_back(size)

    def _give_back(self, size: int) -> None:
        """After a large request, return the freed heap to the system (one at a time)."""
        if size < _GIVE_BACK_AFTER or self._giving_back.is_set():
            return
        self._giving_back.set()

        def give_back() -> None:
            self._giving_back.clear()
            give_back_memory()

        with contextlib.suppress(RuntimeError):  # shutting down
            self._executor.submit(give_back)

    async def _watch(self, request_iterator: Any, context: _Context) -> None:
        limits = self.limits
        if not limits.calls.try_acquire():
            await abort(context, too_many_calls(limits.calls.limit))
        try:
            data: bytes = await read_request(context, limits.read_timeout, self.closing)
        finally:
            limits.calls.release()
        try:
            request = _parse(pb.WatchSessionRequest, _small(data))
            session_id = check_session_id(request.session_id)
            state = _carries_state(request.view)
        except Exception as exc:
            await abort(context, failure_of(exc))
        client = client_of(context.peer())
        refusal = limits.watches.try_acquire(client)
        if refusal is not None:
            await abort(
                context,
                RpcFailure(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal, Reason.TOO_MANY_WATCHERS),
            )
        try:
            await self._stream(session_id, state, context)
        except Exception as exc:
            failure = failure_of(exc)
        else:
            return
        finally:
            limits.watches.release(client)
        await abort(context, failure)

    async def _stream(self, session_id: str, state: bool, context: _Context) -> None:
        """The events of one session, until the client leaves or the stream must end.

        With ``state`` (the checkpoint view) each event but DELETED also
        carries the checkpoint or the delta that makes it from the last one.
        """
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(ready.set)

        try:
            subscription = self.hub.subscribe(session_id, wake, state=state)
        except WatchClosed as exc:
            raise _unavailable(Reason.SERVER_SHUTTING_DOWN, str(exc)) from None
        idle = self.limits.watch_idle_seconds
        try:
            if state:
                initial, first = await loop.run_in_executor(
                    self._executor, self._initial_state, session_id
                )
            else:
                initial = await loop.run_in_executor(self._executor, self._current, session_id)
                first = _event(pb.WATCH_EVENT_TYPE_INITIAL, session_id, initial)
            last = 0 if initial is None else initial.generation
            await self._send(context, first)
            del first  # no checkpoint is kept while the watcher waits
            quiet_until = loop.time() + idle
            while True:
                ready.clear()
                event = _next_event(subscription)
                if event is None:
                    left = quiet_until - loop.time()
                    if left <= 0:
                        raise _unavailable(
                            Reason.WATCH_IDLE,
                            f"no event for {idle:g} s: the watch ended; watch again "
                            "(the current state comes first)",
                        )
                    with contextlib.suppress(asyncio.TimeoutError):
                        await within(ready.wait(), left)
                    continue
                if event.listing is None:
                    last = 0
                    message = _event(pb.WATCH_EVENT_TYPE_DELETED, session_id, None)
                elif event.listing.generation <= last:
                    continue
                elif not state:
                    last = event.listing.generation
                    message = _event(pb.WATCH_EVENT_TYPE_COMMITTED, session_id, event.listing)
                else:
                    committed = await self._committed(event, event.listing, last)
                    if committed is None:
                        continue
                    last, message = committed
                del event
                await self._send(context, message)
                del message
                quiet_until = loop.time() + idle
        finally:
            subscription.close()

    async def _committed(
        self, event: CommitEvent, listing: Listing, last: int
    ) -> tuple[int, bytes] | None:
        """The COMMITTED event of the checkpoint view for ``event``, and its generation.

        The event's delta when its base is ``last``, the generation of the
        watcher's previous event; else the event's checkpoint; else, when the
        commit is the one after ``last``, the delta the store holds for it
        (:meth:`_stored_delta`); else the checkpoint stored now: a later one
        when the session moved on since (the events up to it are then
        skipped), None when the session was deleted since (its DELETED event
        follows).
        """
        kind, session_id = pb.WATCH_EVENT_TYPE_COMMITTED, event.session_id
        if event.delta is not None and listing.generation - 1 == last:
            return listing.generation, _event(kind, session_id, listing, delta=event.delta)
        if event.checkpoint is not None:
            sealed = event.checkpoint
            return listing.generation, _event(kind, session_id, listing, checkpoint=sealed)
        loop = asyncio.get_running_loop()
        if listing.generation - 1 == last and self._delta_bytes is not None:
            delta = await loop.run_in_executor(self._executor, self._stored_delta, listing)
            if delta is not None:
                return listing.generation, _event(kind, session_id, listing, delta=delta)
        found = await loop.run_in_executor(self._executor, self._stored, session_id)
        if found is None or found[0].generation < listing.generation:
            return None
        stored, sealed = found
        return stored.generation, _event(kind, session_id, stored, checkpoint=sealed)

    async def _send(self, context: _Context, message: bytes) -> None:
        timeout = self.limits.watch_write_timeout
        try:
            await within(context.write(message), timeout)
        except asyncio.TimeoutError:
            raise RpcFailure(
                grpc.StatusCode.ABORTED,
                f"the watcher took no event within {timeout:g} s",
                Reason.WATCH_OVERFLOW,
            ) from None

    # --- plumbing ---------------------------------------------------------------

    def _stripe(self, session_id: str) -> threading.Lock:
        return self._stripes[zlib.crc32(session_id.encode()) % _STRIPES]

    def _stored(self, session_id: str) -> tuple[Listing, bytes] | None:
        """The stored checkpoint's listing and sealed bytes; None when there is none."""
        try:
            stored = self.store.get(session_id)
        except NotFound:
            return None
        cp = stored.checkpoint
        sealed = seal_body(cp.SerializeToString(deterministic=True))
        return listing_of(cp, stored.generation), sealed

    def _stored_delta(self, listing: Listing) -> bytes | None:
        """The sealed bytes of the delta the store holds for the commit ``listing`` tells of.

        None when the store holds none for its generation, or when the one
        it holds is not that commit's: what every delta holds (base
        generation, ``updated_at``, the trial count and counters, the best
        score) must agree with ``listing``, which a session deleted and made
        again since would not. A delta that cannot be read is left to
        ``get`` to report.
        """
        assert self._delta_bytes is not None
        data = self._delta_bytes(listing.session_id, listing.generation)
        if data is None:
            return None
        try:
            delta = dl.decode_delta(data)
        except InvalidDelta:
            return None
        return data if _made_by(delta, listing) else None

    def _initial_state(self, session_id: str) -> tuple[Listing | None, bytes]:
        """The listing and the INITIAL event of the checkpoint view."""
        found = self._stored(session_id)
        if found is None:
            return None, _event(pb.WATCH_EVENT_TYPE_INITIAL, session_id, None)
        listing, sealed = found
        return listing, _event(pb.WATCH_EVENT_TYPE_INITIAL, session_id, listing, checkpoint=sealed)

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
        list_page = self._list_page
        if callable(list_page):
            extra = {"on_damage": _skip_damaged} if self._page_on_damage else {}
            rows: list[Listing] = list_page(
                status=status,
                optimizer=optimizer,
                updated_since=since,
                after=after,
                limit=size + 1,
                **extra,
            )
        else:
            rows = self.store.list(
                status=status, optimizer=optimizer, updated_since=since, on_damage=_skip_damaged
            )
            if after is not None:
                key = after.encode()
                rows = [item for item in rows if item.session_id.encode() > key]
            rows = rows[: size + 1]
        return rows[:size], len(rows) > size


async def _answer(context: _Context, outcome: bytes | RpcFailure) -> bytes:
    """The response bytes to send; a failure ends the call instead."""
    if isinstance(outcome, RpcFailure):
        await abort(context, outcome)
    assert isinstance(outcome, bytes)
    return outcome


def _run(method: Callable[[bytes], _T], data: bytes) -> _T | RpcFailure:
    """Run ``method`` (on a worker thread, or on the loop); its failure is returned, not raised.

    The failure goes without its traceback and causes: their frames hold the
    parsed request, which must be freed now, not when a garbage collection
    finds the cycle.
    """
    try:
        return method(data)
    except Exception as exc:
        failure = failure_of(exc)
        failure.__traceback__ = failure.__cause__ = failure.__context__ = None
        return failure


def _charge(budget: MemoryBudget, cost: int, size: int) -> RpcFailure | None:
    """Charge ``cost`` to ``budget``; the answer to send when it cannot be."""
    if cost > budget.total:
        message = (
            f"a request of {size / _MIB:.1f} MiB needs {cost / _MIB:.0f} MiB of memory to be "
            f"checked, more than the server's memory budget ({budget.total / _MIB:.0f} MiB)"
        )
    elif not budget.try_charge(cost):
        message = (
            f"the server's memory budget is in use ({budget.used / _MIB:.0f} of "
            f"{budget.total / _MIB:.0f} MiB); try again later"
        )
    else:
        return None
    return RpcFailure(grpc.StatusCode.RESOURCE_EXHAUSTED, message, Reason.MEMORY_BUDGET_EXHAUSTED)


def _next_event(subscription: Subscription) -> CommitEvent | None:
    """The subscription's next event if one is pending (never waits)."""
    try:
        return subscription.get(0)
    except WatchClosed:
        raise _unavailable(Reason.SERVER_SHUTTING_DOWN, "shutting down") from None
    except WatchInterrupted as exc:
        raise _unavailable(Reason.WATCH_INTERRUPTED, f"watch interrupted: {exc}") from None
    except WatchOverflow as exc:
        raise RpcFailure(grpc.StatusCode.ABORTED, str(exc), Reason.WATCH_OVERFLOW) from None


def _skip_damaged(exc: CorruptStore) -> None:
    _log.warning(
        "ListSessions: skipped a damaged session: %s: %s",
        redact_text(exc.path),
        redact_text(exc.detail),
    )


def _accepts(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _length_delimited(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def _varint_field(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value) if value else b""


def _small(data: bytes) -> bytes:
    """``data``, a request parsed on the loop itself, unless it is too long to be one."""
    if len(data) > MAX_SMALL_REQUEST_BYTES:
        raise RpcFailure(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"<input>: {len(data)} bytes: this request is at most {MAX_SMALL_REQUEST_BYTES}",
            Reason.INVALID_REQUEST,
            {"field": "<input>"},
            field="<input>",
        )
    return data


def _parse(cls: type[_M], data: bytes) -> _M:
    message = cls()
    try:
        message.ParseFromString(data)
    except Exception as exc:  # untrusted bytes: any parse failure is the caller's
        # Not a checkpoint (its bytes are read by checkpoint.decode, apart): a
        # bad request, with no rule of FORMAT.md.
        raise RpcFailure(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"<input>: not a valid {cls.DESCRIPTOR.name} ({exc})",
            Reason.INVALID_REQUEST,
            {"field": "<input>"},
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


def _check_holder(holder: str) -> None:
    problem = leases.holder_problem(holder)
    if problem is not None:
        raise _bad_request("holder", problem)


def _check_token(token: str) -> str:
    problem = leases.token_problem(token)
    if problem is not None:
        raise _bad_request("token", problem)
    return token


def _ttl_seconds(request: pb.AcquireLeaseRequest | pb.RenewLeaseRequest) -> float:
    if not request.HasField("ttl"):
        raise _bad_request("ttl", "is required (a google.protobuf.Duration)")
    ttl = leases.ttl_of(request.ttl)
    if isinstance(ttl, str):
        raise _bad_request("ttl", ttl)
    return ttl


def _held(session_id: str, token: str) -> Lease:
    """The lease a request names by its token (holder and end are the store's to know)."""
    return Lease(session_id, "", token, _EPOCH)


@contextlib.contextmanager
def _token_kept_out(token: str) -> Iterator[None]:
    """Turn any failure inside into a status whose message and metadata never hold ``token``.

    A token shorter than :data:`_SHORTEST_SECRET` characters is no secret (a
    store's tokens have 32) and is left alone: replacing it would garble the
    text around it. The ``session_id`` metadata is the request's own id and
    is kept as it is, so clients always read the id they asked about.
    """
    try:
        yield
    except Exception as exc:
        failure = failure_of(exc)
        if len(token) < _SHORTEST_SECRET:
            raise failure from None
        raise RpcFailure(
            failure.code,
            failure.message.replace(token, "***"),
            failure.reason,
            {
                key: value if key == "session_id" else value.replace(token, "***")
                for key, value in failure.metadata.items()
            },
            field=failure.field,
        ) from None


def _unavailable(reason: str, message: str) -> RpcFailure:
    return RpcFailure(grpc.StatusCode.UNAVAILABLE, message, reason)


def _event(
    kind: int,
    session_id: str,
    listing: Listing | None,
    *,
    checkpoint: bytes | None = None,
    delta: bytes | None = None,
) -> bytes:
    """A WatchSessionResponse's bytes, around the sealed bytes of its state when it has one."""
    response = pb.WatchSessionResponse(type=kind, session_id=session_id)  # type: ignore[arg-type]
    if listing is not None:
        response.session.CopyFrom(convert.summary_from_listing(listing))
    data = response.SerializeToString()
    if checkpoint is not None:
        return data + _length_delimited(pb.WatchSessionResponse.CHECKPOINT_FIELD_NUMBER, checkpoint)
    if delta is not None:
        return data + _length_delimited(pb.WatchSessionResponse.DELTA_FIELD_NUMBER, delta)
    return data


def _made_by(delta: CheckpointDelta, listing: Listing) -> bool:
    """Whether the fields every delta's head holds agree with ``listing`` (its commit's)."""
    head, progress = delta.head, delta.head.progress
    best = progress.best_score if progress.HasField("best_score") else None
    return (
        delta.base_generation == listing.generation - 1
        and timestamp_to_datetime(head.updated_at.seconds, head.updated_at.nanos)
        == listing.updated_at
        and delta.base_trials + len(progress.trial_log) == listing.trials
        and (progress.completed, progress.errors, progress.attempts, best)
        == (listing.completed, listing.errors, listing.attempts, listing.best_score)
    )


def _carries_state(view: int) -> bool:
    """Whether a watch of ``view`` sends the session's state; an unknown view is refused."""
    if view == pb.WATCH_VIEW_CHECKPOINT:
        return True
    if view in (pb.WATCH_VIEW_UNSPECIFIED, pb.WATCH_VIEW_SUMMARY):
        return False
    raise _bad_request("view", f"unknown WatchView {view}")


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
        if len(token) > _MAX_PAGE_TOKEN_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("not an object")
        after = body.get("after")
        if body.get("v") != 1 or not isinstance(after, str):
            raise ValueError("bad token")
        check_session_id(after)
    except (ValueError, TypeError, RecursionError):  # InvalidSessionId is a ValueError
        raise _bad_request("page_token", "not a page token of this service") from None
    if body.get("f") != fingerprint:
        raise _bad_request(
            "page_token", "the filters differ from those of the request that returned the token"
        )
    return after
