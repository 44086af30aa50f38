"""WatchSession: one event per commit, in order, from the server or from PostgreSQL NOTIFY."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest

from dsxir.optimizer_session import checkpoint
from dsxir.service.watch import (
    WatchClosed,
    WatchHub,
    WatchInterrupted,
    WatchOverflow,
)
from dsxir.store import MemoryStore
from dsxir.store.events import CommitEvent
from dsxir.store.grpc import GrpcStore, ResourceExhausted, Unavailable, WatchEvent, WatchStream
from dsxir.store.postgres import PostgresStore
from service_fixtures import backend, serve_in_thread
from store_util import make_cp


class Collector:
    """Reads a watch stream in a thread; events and the final error land in a queue."""

    def __init__(self, stream: WatchStream) -> None:
        self.stream = stream
        self.events: queue.Queue[WatchEvent | Exception | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.stream:
                self.events.put(event)
        except Exception as exc:
            self.events.put(exc)
        else:
            self.events.put(None)

    def next(self, timeout: float = 10) -> WatchEvent:
        item = self.events.get(timeout=timeout)
        assert isinstance(item, WatchEvent), item
        return item

    def end(self, timeout: float = 10) -> Exception | None:
        item = self.events.get(timeout=timeout)
        assert not isinstance(item, WatchEvent), item
        return item

    def quiet(self, seconds: float = 0.3) -> bool:
        try:
            self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def _kinds(events: list[WatchEvent]) -> list[tuple[str, int | None]]:
    return [(e.kind, e.listing.generation if e.listing else None) for e in events]


@pytest.mark.parametrize("kind", ["memory", "file", "postgres"])
def test_every_commit_and_delete_is_an_event(kind: str, tmp_path: Path) -> None:
    server = serve_in_thread(backend(kind, tmp_path))
    client = GrpcStore(server.address)
    watcher = Collector(client.watch("w"))
    initial = watcher.next()
    assert (initial.kind, initial.listing) == ("initial", None)  # no session yet
    cp = make_cp("w")
    client.put(cp)
    for generation in range(1, 4):
        checkpoint.record_trial(cp, score=float(generation))
        client.put(cp, expected_generation=generation)
    client.delete("w")
    client.put(make_cp("w", trials=1))
    client.put(make_cp("other"))  # another session: not this watcher's business
    events = [watcher.next() for _ in range(6)]
    assert _kinds(events) == [
        ("committed", 1),
        ("committed", 2),
        ("committed", 3),
        ("committed", 4),
        ("deleted", None),
        ("committed", 1),
    ]
    assert events[3].listing is not None and events[3].listing.best_score == 3.0
    assert events[3].listing.trials == 3
    assert all(e.session_id == "w" for e in events)
    assert watcher.quiet()
    late = Collector(client.watch("w"))
    first = late.next()
    assert (first.kind, first.listing and first.listing.trials) == ("initial", 1)
    watcher.stream.cancel()
    late.stream.cancel()
    assert watcher.end() is None and late.end() is None
    client.close()
    server.stop(1)


def test_postgres_commits_by_anyone_reach_watchers(
    pg_store: PostgresStore,
    pg_url: str,
) -> None:
    server = serve_in_thread(pg_store)
    client = GrpcStore(server.address)
    watcher = Collector(client.watch("shared"))
    assert watcher.next().kind == "initial"
    elsewhere = PostgresStore.from_url(pg_url)  # another process's store, no server
    cp = make_cp("shared", optimizer="x" * 8000)  # too long for a NOTIFY payload
    elsewhere.put(cp)
    checkpoint.record_trial(cp, score=0.5)
    elsewhere.put(cp, expected_generation=1)
    checkpoint.record_trial(cp, score=0.7)
    elsewhere.put(cp, expected_generation=2)
    events = [watcher.next() for _ in range(3)]
    assert _kinds(events) == [("committed", 1), ("committed", 2), ("committed", 3)]
    assert events[2].listing is not None and events[2].listing.optimizer == "x" * 8000
    watcher.stream.cancel()
    elsewhere.close()
    client.close()
    server.stop(1)


def test_shutdown_ends_watches_with_unavailable() -> None:
    server = serve_in_thread(MemoryStore())
    client = GrpcStore(server.address)
    watcher = Collector(client.watch("w"))
    assert watcher.next().kind == "initial"
    client.put(make_cp("w"))
    assert watcher.next().kind == "committed"
    server.stop(5)
    assert isinstance(watcher.end(), Unavailable)
    client.close()


def test_watchers_are_bounded() -> None:
    server = serve_in_thread(MemoryStore(), workers=4)  # room for 2 watchers
    client = GrpcStore(server.address)
    first, second = Collector(client.watch("a")), Collector(client.watch("b"))
    assert first.next().kind == second.next().kind == "initial"
    client.put(make_cp("a"))
    client.put(make_cp("b"))
    assert first.next().kind == second.next().kind == "committed"
    third = Collector(client.watch("c"))
    assert isinstance(third.end(), ResourceExhausted)
    assert client.put(make_cp("c")) == 1  # commits still have threads
    first.stream.cancel()
    second.stream.cancel()
    client.close()
    server.stop(1)


def test_hub_overflow_interrupt_and_close() -> None:
    hub = WatchHub(max_pending=3)
    slow = hub.subscribe("s")
    fast = hub.subscribe("s")
    listing = MemoryStore()
    listing.put(make_cp("s"))
    event = CommitEvent("s", listing.list()[0])
    for _ in range(3):
        hub.publish(event)
    assert fast.get(1) == event
    hub.publish(event)  # slow now has 4 pending: over the bound
    with pytest.raises(WatchOverflow):
        slow.get(1)
    assert [fast.get(1) for _ in range(3)] == [event] * 3
    assert fast.get(0.05) is None
    hub.interrupt("connection lost")
    with pytest.raises(WatchInterrupted):
        fast.get(1)
    assert hub.watchers() == 0
    again = hub.subscribe("s")
    hub.close()
    with pytest.raises(WatchClosed):
        again.get(1)
    with pytest.raises(WatchClosed):
        hub.subscribe("s")
