"""The LISTEN side of the PostgreSQL store's commit notifications.

Every commit and delete of the store sends ``NOTIFY`` on the schema's
channel in the same transaction, so a notification is delivered exactly when
the commit is visible, in commit order. A payload is one of::

    c <generation> <summary JSON>     a commit (summary as in the file store)
    C <generation> <session id>       a commit whose summary was too long for
                                      NOTIFY; the listener reads it from the row
    d <session id>                    a delete

:class:`Listener` holds one dedicated connection (not from the pool) in a
daemon thread, turns payloads into
:class:`~dsxir.store.events.CommitEvent`\\ s and hands them
to its subscribers. When the connection is lost it tells them (``on_gap``:
notifications sent meanwhile are lost), and reconnects with backoff.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
from psycopg import sql

from dsxir.errors import CorruptStore
from dsxir.store.events import CommitEvent
from dsxir.store.interface import Listing
from dsxir.store.summary import parse_summary

__all__ = ["Listener", "parse_payload"]

_EventCallback = Callable[[CommitEvent], None]
_GapCallback = Callable[[str], None]


def parse_payload(
    payload: str, read_summary: Callable[[str], Listing | None]
) -> CommitEvent | None:
    """The event a notification payload describes; None for a payload not understood."""
    kind, _, rest = payload.partition(" ")
    if kind == "d" and rest:
        return CommitEvent(rest, None)
    generation_text, _, body = rest.partition(" ")
    if not generation_text.isdigit() or not body:
        return None
    if kind == "c":
        try:
            listing = parse_summary(body.encode(), int(generation_text), "NOTIFY payload")
        except CorruptStore:
            return None
        return CommitEvent(listing.session_id, listing)
    if kind == "C":
        found = read_summary(body)
        return CommitEvent(body, found) if found is not None else None
    return None


class Listener:
    """A thread that LISTENs on ``channel`` and calls subscribers for each event."""

    def __init__(
        self,
        conninfo: str,
        channel: str,
        read_summary: Callable[[str], Listing | None],
        *,
        poll_seconds: float = 0.5,
    ) -> None:
        """Listen with a connection of its own; started by the first :meth:`subscribe`."""
        self._conninfo = conninfo
        self._channel = channel
        self._read_summary = read_summary
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._subscribers: dict[int, tuple[_EventCallback, _GapCallback]] = {}
        self._next_id = 0
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(
        self, on_event: _EventCallback, on_gap: _GapCallback, *, wait: float = 10.0
    ) -> Callable[[], None]:
        """Add a subscriber; wait up to ``wait`` s for LISTEN; return its unsubscribe."""
        with self._lock:
            key = self._next_id
            self._next_id += 1
            self._subscribers[key] = (on_event, on_gap)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="dsxir-pg-listen", daemon=True
                )
                self._thread.start()
        self._listening.wait(wait)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(key, None)

        return unsubscribe

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up."""
        return self._listening.is_set()

    def close(self) -> None:
        """Stop the thread (within about ``poll_seconds``)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._listening.set()
                    delay = 0.1
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self._poll):
                            self._dispatch(note.payload)
            except psycopg.Error as exc:
                was_listening = self._listening.is_set()
                self._listening.clear()
                if was_listening:
                    self._gap(f"lost the notification connection: {exc}")
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
        self._listening.clear()

    def _dispatch(self, payload: str) -> None:
        try:
            event = parse_payload(payload, self._read_summary)
        except psycopg.Error:
            self._gap("could not read a summary for a notification")
            return
        if event is None:
            return
        with self._lock:
            targets = [callbacks[0] for callbacks in self._subscribers.values()]
        for on_event in targets:
            on_event(event)

    def _gap(self, reason: str) -> None:
        with self._lock:
            targets = [callbacks[1] for callbacks in self._subscribers.values()]
        for on_gap in targets:
            on_gap(reason)
