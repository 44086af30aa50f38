"""Watches: how the service fans commit events out to watchers.

A store that is a :class:`~dsxir.store.events.CommitFeed` gives the server
every commit, whoever made it (the PostgreSQL store does). For other stores
the server publishes the commits it makes itself, so watchers of a file or
memory store see the commits made through that server.

:class:`WatchHub` delivers events to :class:`Subscription`\\ s, one per
watcher and session, in the order published. A subscription holds at most
``max_pending`` undelivered events: a watcher that falls further behind is
told so (:class:`WatchOverflow`) instead of the server buffering without
bound. A subscription that takes the events' state (``state=True``, the
checkpoint view of a watch) also holds at most ``max_pending_bytes`` of it,
beyond one event; the others drop the state of the events they hold, so
the state is kept only while a watcher wants it
(:meth:`WatchHub.wants_state`). When the feed may have missed events (its
connection to the database was lost), :meth:`WatchHub.interrupt` ends every subscription with
:class:`WatchInterrupted`, so no watcher silently misses a commit.

A subscription may have a ``waker``, called (from whichever thread
publishes) after each event or end, so an asyncio handler can wait for its
events without a thread: it then takes them with ``get(0)``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from dsxir.store.events import CommitEvent

__all__ = [
    "Subscription",
    "WatchClosed",
    "WatchHub",
    "WatchInterrupted",
    "WatchOverflow",
]


class WatchClosed(Exception):
    """The hub was closed (the server is shutting down)."""


class WatchOverflow(Exception):
    """The watcher fell behind by more than the hub's ``max_pending`` events."""


class WatchInterrupted(Exception):
    """The commit feed may have missed events; the watcher must start again."""


class Subscription:
    """The events of one session for one watcher, in order, bounded."""

    def __init__(
        self,
        hub: WatchHub,
        session_id: str,
        max_pending: int,
        waker: Callable[[], None] | None = None,
        *,
        state: bool = False,
        max_pending_bytes: int = 0,
    ) -> None:
        """A subscription of ``hub`` to ``session_id``; use :meth:`WatchHub.subscribe`."""
        self.session_id = session_id
        self.state = state
        self._hub = hub
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._pending_bytes = 0
        self._events: collections.deque[CommitEvent] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._ended: Exception | None = None
        self._waker = waker

    def _push(self, event: CommitEvent) -> None:
        if not self.state:
            event = event.without_state()
        size = event.state_size
        with self._ready:
            if self._ended is not None:
                return
            if len(self._events) >= self._max_pending:
                self._overflow(f"{self._max_pending} events")
            elif self._events and self._pending_bytes + size > self._max_pending_bytes:
                self._overflow(f"over {self._max_pending_bytes} bytes of checkpoints")
            else:
                self._events.append(event)
                self._pending_bytes += size
            self._ready.notify()
        self._wake()

    def _overflow(self, behind: str) -> None:
        self._ended = WatchOverflow(f"watcher of {self.session_id!r} fell behind by {behind}")
        self._events.clear()
        self._pending_bytes = 0

    def _end(self, reason: Exception) -> None:
        with self._ready:
            if self._ended is None:
                self._ended = reason
            self._ready.notify()
        self._wake()

    def _wake(self) -> None:
        if self._waker is not None:
            self._waker()

    def get(self, timeout: float) -> CommitEvent | None:
        """The next event, or None after ``timeout`` seconds without one.

        Raises the reason the subscription ended (``WatchClosed``,
        ``WatchOverflow``, ``WatchInterrupted``) once pending events are
        delivered (none are pending after an overflow).
        """
        deadline = time.monotonic() + timeout
        with self._ready:
            while not self._events:
                if self._ended is not None:
                    raise self._ended
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._ready.wait(left)
            event = self._events.popleft()
            self._pending_bytes -= event.state_size
            return event

    def close(self) -> None:
        """Stop receiving events (idempotent)."""
        self._hub._remove(self)
        self._end(WatchClosed("subscription closed"))


class WatchHub:
    """Fans commit events out to the subscriptions of their session."""

    def __init__(self, *, max_pending: int = 1024, max_pending_bytes: int = 64 << 20) -> None:
        """A hub whose subscriptions each hold at most ``max_pending`` events.

        A subscription with ``state`` also holds at most ``max_pending_bytes``
        of the events' state, unless one event alone is larger.
        """
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._closed = False

    def subscribe(
        self, session_id: str, waker: Callable[[], None] | None = None, *, state: bool = False
    ) -> Subscription:
        """A new subscription to ``session_id``; ``WatchClosed`` once the hub is closed.

        ``waker``, when given, is called after each event or end of the
        subscription. Without ``state`` the events come without their state.
        """
        subscription = Subscription(
            self,
            session_id,
            self._max_pending,
            waker,
            state=state,
            max_pending_bytes=self._max_pending_bytes,
        )
        with self._lock:
            if self._closed:
                raise WatchClosed("the server is shutting down")
            self._subscriptions.setdefault(session_id, set()).add(subscription)
        return subscription

    def wants_state(self, session_id: str) -> bool:
        """Whether a subscription to ``session_id`` takes the events' state."""
        with self._lock:
            return any(s.state for s in self._subscriptions.get(session_id, ()))

    def publish(self, event: CommitEvent) -> None:
        """Deliver ``event`` to every subscription of its session."""
        with self._lock:
            targets = list(self._subscriptions.get(event.session_id, ()))
        for subscription in targets:
            subscription._push(event)

    def interrupt(self, reason: str) -> None:
        """End every current subscription with ``WatchInterrupted(reason)``."""
        for subscription in self._take_all():
            subscription._end(WatchInterrupted(reason))

    def close(self) -> None:
        """End every subscription with ``WatchClosed`` and refuse new ones."""
        with self._lock:
            self._closed = True
        for subscription in self._take_all():
            subscription._end(WatchClosed("the server is shutting down"))

    def watchers(self) -> int:
        """How many subscriptions are open."""
        with self._lock:
            return sum(len(group) for group in self._subscriptions.values())

    def _take_all(self) -> list[Subscription]:
        with self._lock:
            taken = [s for group in self._subscriptions.values() for s in group]
            self._subscriptions.clear()
        return taken

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            group = self._subscriptions.get(subscription.session_id)
            if group is not None:
                group.discard(subscription)
                if not group:
                    del self._subscriptions[subscription.session_id]
