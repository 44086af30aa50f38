"""WatchSession with WATCH_VIEW_CHECKPOINT: the checkpoint first, then each commit's delta."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from dsxir.checkpoint_store.v1 import service_pb2 as pb
from dsxir.errors import CorruptStore
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.optimizer_session.wire import varint
from dsxir.service.watch import WatchHub, WatchOverflow
from dsxir.store import MemoryStore
from dsxir.store.events import CommitEvent
from dsxir.store.framing import crc32c
from dsxir.store.grpc import GrpcStore, WatchEvent, WatchStream
from dsxir.store.grpc.protocol import SERVICE_NAME
from dsxir.store.postgres import PostgresStore
from dsxir.store.postgres import store as pg_module
from service_fixtures import backend, serve_in_thread, sql
from store_util import make_cp

WATCH = f"/{SERVICE_NAME}/WatchSession"


class Recording:
    """A watch call whose messages are kept, as they arrive, before the client reads them."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.raw: list[bytes] = []

    def __iter__(self) -> Iterator[bytes]:
        for data in self.call:
            self.raw.append(data)
            yield data

    def cancel(self) -> None:
        cancel = getattr(self.call, "cancel", None)
        if cancel is not None:
            cancel()


class Watcher:
    """A checkpoint-view watch over a real server, read in a thread, raw bytes kept."""

    def __init__(self, address: str, session_id: str, view: int = pb.WATCH_VIEW_CHECKPOINT):
        self.channel = grpc.insecure_channel(address)
        request = pb.WatchSessionRequest(session_id=session_id, view=view)  # type: ignore[arg-type]
        self.recording = Recording(
            self.channel.unary_stream(WATCH)(request.SerializeToString(), timeout=60)
        )
        self.stream = WatchStream(
            self.recording, session_id, checkpoints=view == pb.WATCH_VIEW_CHECKPOINT
        )
        self.events: queue.Queue[WatchEvent | Exception] = queue.Queue()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            for event in self.stream:
                self.events.put(event)
        except Exception as exc:
            self.events.put(exc)

    def next(self) -> tuple[WatchEvent, pb.WatchSessionResponse, int]:
        """The next event, its message as sent and the message's size in bytes."""
        item = self.events.get(timeout=20)
        assert isinstance(item, WatchEvent), item
        raw = self.recording.raw[-1]
        return item, pb.WatchSessionResponse.FromString(raw), len(raw)

    def close(self) -> None:
        self.stream.cancel()
        self.channel.close()


def _same_as_stored(event: WatchEvent, client: GrpcStore, session_id: str) -> None:
    stored = client.get(session_id)
    assert event.checkpoint is not None
    assert checkpoint.encode(event.checkpoint) == checkpoint.encode(stored.checkpoint)
    assert event.generation == stored.generation == (event.listing and event.listing.generation)


def _next_trial(cp: Checkpoint, generation: int) -> tuple[Checkpoint, Any]:
    """``cp`` with one more trial, and the delta that commits it on ``generation``."""
    new = Checkpoint()
    new.CopyFrom(cp)
    checkpoint.record_trial(new, score=0.5 + generation / 100, candidate_id=f"n{generation}")
    return new, dl.diff(cp, new, base_generation=generation)


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_watcher_keeps_the_checkpoint_from_deltas(kind: str, tmp_path: Path) -> None:
    server = serve_in_thread(backend(kind, tmp_path))
    client = GrpcStore(server.address)
    watcher = Watcher(server.address, "w")  # before the session exists
    summary_only = Watcher(server.address, "w", view=pb.WATCH_VIEW_SUMMARY)
    plain = client.watch("w")  # no view: summaries, as before
    events = iter(plain)
    assert next(events).kind == summary_only.next()[0].kind == "initial"
    initial, message, _ = watcher.next()
    assert (initial.kind, initial.listing, initial.checkpoint, initial.generation) == (
        "initial",
        None,
        None,
        0,
    )
    assert message.WhichOneof("state") is None

    cp = make_cp("w", trials=3)
    generation = client.put(cp)
    event, message, _ = watcher.next()
    assert (event.kind, message.WhichOneof("state")) == ("committed", "checkpoint")
    _same_as_stored(event, client, "w")
    for _ in range(6):
        cp, delta = _next_trial(cp, generation)
        generation = client.put_delta(delta)
        event, message, _ = watcher.next()
        assert (event.kind, message.WhichOneof("state")) == ("committed", "delta")
        assert message.delta.base_generation == generation - 1
        _same_as_stored(event, client, "w")

    checkpoint.pause(cp)  # a whole put in the middle comes whole
    generation = client.put(cp, expected_generation=generation)
    event, message, _ = watcher.next()
    assert message.WhichOneof("state") == "checkpoint"
    assert event.listing is not None and event.listing.status == "paused"
    _same_as_stored(event, client, "w")
    checkpoint.resume(cp)
    cp, delta = _next_trial(cp, generation)
    generation = client.put_delta(delta)
    event, message, _ = watcher.next()
    assert message.WhichOneof("state") == "delta"
    _same_as_stored(event, client, "w")

    client.delete("w")
    event, message, _ = watcher.next()
    assert (event.kind, event.checkpoint, event.generation) == ("deleted", None, 0)
    assert message.WhichOneof("state") is None and not message.HasField("session")
    again = make_cp("w", trials=1)
    client.put(again)
    event, message, _ = watcher.next()
    assert message.WhichOneof("state") == "checkpoint" and event.generation == 1
    _same_as_stored(event, client, "w")

    late = Watcher(server.address, "w")  # starts on an existing session
    event, message, _ = late.next()
    assert (event.kind, message.WhichOneof("state")) == ("initial", "checkpoint")
    _same_as_stored(event, client, "w")

    # Summary view, asked for or by default: the same events, never a state.
    for _ in range(11):
        event, message, _ = summary_only.next()
        assert message.WhichOneof("state") is None and event.checkpoint is None
    assert event.kind == "committed" and event.generation == 1
    defaults = [next(events) for _ in range(11)]
    assert [e.kind for e in defaults] == ["committed"] * 9 + ["deleted", "committed"]
    assert all(e.checkpoint is None for e in defaults)
    for each in (watcher, summary_only, late):
        each.close()
    plain.cancel()
    client.close()
    server.stop(1)


@pytest.mark.parametrize("kind", ["file", "postgres"])
def test_a_commit_of_a_large_session_costs_its_delta(kind: str, tmp_path: Path) -> None:
    server = serve_in_thread(backend(kind, tmp_path))
    client = GrpcStore(server.address)
    watcher = Watcher(server.address, "big")
    watcher.next()
    cp = make_cp("big", trials=5000)
    generation = client.put(cp)
    event, message, whole = watcher.next()
    assert message.WhichOneof("state") == "checkpoint" and whole > 100_000
    _same_as_stored(event, client, "big")
    for _ in range(5):
        cp, delta = _next_trial(cp, generation)
        generation = client.put_delta(delta)
        event, message, size = watcher.next()
        assert message.WhichOneof("state") == "delta" and size < 2_000
        assert event.checkpoint is not None and len(event.checkpoint.progress.trial_log) == len(
            cp.progress.trial_log
        )
        _same_as_stored(event, client, "big")
    watcher.close()
    client.close()
    server.stop(1)


def _delta_rows(url: str, store: PostgresStore, session_id: str) -> int:
    rows = sql(
        url,
        f"SELECT count(*) FROM {store.schema}.dsxir_deltas WHERE session_id = '{session_id}'",
    )
    return int(str(rows[0][0]))


def test_postgres_commits_come_as_deltas(
    pg_store: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's feed carries no state: the server sends the delta row of the commit."""
    monkeypatch.setattr(pg_module, "COMPACT_MIN_BYTES", 600)  # a snapshot every four commits
    monkeypatch.setattr(pg_module, "COMPACT_SHARE", 10**9)
    server = serve_in_thread(pg_store)
    client = GrpcStore(server.address)
    watcher = Watcher(server.address, "shared")
    assert watcher.next()[0].checkpoint is None
    elsewhere = PostgresStore.from_url(pg_url)  # another process's store, no server
    cp = make_cp("shared", trials=2)
    generation = elsewhere.put(cp)
    event, message, _ = watcher.next()
    assert message.WhichOneof("state") == "checkpoint" and event.generation == 1
    _same_as_stored(event, client, "shared")
    states = []
    for turn in range(14):
        cp, delta = _next_trial(cp, generation)
        generation = (elsewhere if turn % 2 else client).put_delta(delta)
        compacted = _delta_rows(pg_url, pg_store, "shared") == 0
        event, message, _ = watcher.next()
        state = message.WhichOneof("state")
        assert event.generation == generation
        if compacted:  # the commit wrote a snapshot, no delta row
            assert state == "checkpoint"
        else:
            assert state == "delta" and message.delta.base_generation == generation - 1
            assert watcher.recording.raw[-1].endswith(dl.encode_delta(delta))  # as written
        _same_as_stored(event, client, "shared")
        states.append(state)
    compaction = states.index("checkpoint")
    assert states.count("checkpoint") >= 2 and "delta" in states[compaction + 1 :]

    checkpoint.pause(cp)  # a whole put comes whole
    generation = client.put(cp, expected_generation=generation)
    event, message, _ = watcher.next()
    assert message.WhichOneof("state") == "checkpoint" and event.generation == generation
    _same_as_stored(event, client, "shared")
    checkpoint.resume(cp)
    cp, delta = _next_trial(cp, generation)
    generation = elsewhere.put_delta(delta)
    event, message, _ = watcher.next()
    assert message.WhichOneof("state") == "delta" and event.generation == generation
    _same_as_stored(event, client, "shared")
    watcher.close()
    elsewhere.close()
    client.close()
    server.stop(1)


def test_postgres_sends_no_delta_of_a_session_made_again(
    pg_store: PostgresStore, pg_url: str
) -> None:
    """A commit's event read after the session was deleted and made again: no delta row fits."""
    server = serve_in_thread(pg_store)
    listings = []
    for blob in (b"first", b"again"):
        cp = make_cp("s", trials=1, blob=blob)
        pg_store.put(cp)
        _, delta = _next_trial(cp, 1)
        pg_store.put_delta(delta)
        listing = pg_store.summary("s")
        assert listing is not None and listing.generation == 2
        listings.append((listing, dl.encode_delta(delta)))
        if blob == b"first":
            pg_store.delete("s")
    (old, _), (new, written) = listings
    assert server.servicer._stored_delta(new) == written
    assert server.servicer._stored_delta(old) is None  # the row of generation 2 is the new one's
    garbage = b"\x0a\x03abc"  # bytes that are no delta, with their CRC32C
    sql(
        pg_url,
        f"UPDATE {pg_store.schema}.dsxir_deltas SET delta = '\\x{garbage.hex()}'::bytea,"
        f" crc32c = {crc32c(garbage)} WHERE session_id = 's'",
    )
    assert server.servicer._stored_delta(new) is None  # left to get to report
    with pytest.raises(CorruptStore):
        pg_store.get("s")
    server.stop(1)


def test_an_unknown_view_is_refused_naming_the_field() -> None:
    server = serve_in_thread(MemoryStore())
    channel = grpc.insecure_channel(server.address)
    request = b"\x0a\x01w" + b"\x10" + varint(7)  # session_id "w", view 7
    with pytest.raises(grpc.RpcError) as info:
        next(channel.unary_stream(WATCH)(request, timeout=30))
    error = info.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "view" in (error.details() or "")
    status = status_pb2.Status()
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status.ParseFromString(value)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [violation.field for violation in bad.field_violations]
    assert fields == ["view"]
    channel.close()
    server.stop(1)


# --- what the client refuses ------------------------------------------------------------


def _message(kind: int, cp: Checkpoint | None, generation: int, state: bytes, number: int) -> bytes:
    response = pb.WatchSessionResponse(type=kind, session_id="w")  # type: ignore[arg-type]
    if cp is not None:
        from dsxir.store.grpc import convert
        from dsxir.store.interface import listing_of

        response.session.CopyFrom(convert.summary_from_listing(listing_of(cp, generation)))
    data = response.SerializeToString()
    return data + (varint(number << 3 | 2) + varint(len(state)) + state if state else b"")


def _read(messages: list[bytes]) -> list[WatchEvent | Exception]:
    got: list[WatchEvent | Exception] = []
    try:
        for event in WatchStream(Recording(messages), "w", checkpoints=True):
            got.append(event)
    except Exception as exc:
        got.append(exc)
    return got


def test_the_client_refuses_what_it_cannot_follow() -> None:
    base = make_cp("w", trials=2)
    new, delta = _next_trial(base, 1)
    first = _message(pb.WATCH_EVENT_TYPE_INITIAL, base, 1, checkpoint.encode(base), 4)
    good = _message(pb.WATCH_EVENT_TYPE_COMMITTED, new, 2, dl.encode_delta(delta), 5)
    events = _read([first, good])
    assert [type(e) for e in events] == [WatchEvent, WatchEvent]
    last = events[1]
    assert isinstance(last, WatchEvent) and last.checkpoint is not None
    assert checkpoint.encode(last.checkpoint) == checkpoint.encode(new)

    _, other = _next_trial(base, 5)  # a delta on generation 5, after generation 1
    on_other = _message(pb.WATCH_EVENT_TYPE_COMMITTED, new, 6, dl.encode_delta(other), 5)
    flipped = bytearray(checkpoint.encode(base))
    flipped[len(flipped) // 2] ^= 1
    damaged = _message(pb.WATCH_EVENT_TYPE_INITIAL, base, 1, bytes(flipped), 4)
    no_base = _message(pb.WATCH_EVENT_TYPE_INITIAL, None, 0, b"", 0)
    missing = _message(pb.WATCH_EVENT_TYPE_COMMITTED, new, 2, b"", 0)
    lying = _message(pb.WATCH_EVENT_TYPE_INITIAL, new, 1, checkpoint.encode(base), 4)
    twice = good + varint(5 << 3 | 2) + varint(1) + b"\x00"
    for messages, said in [
        ([first, on_other], "delta on generation 5"),
        ([damaged], "invalid checkpoint"),
        ([no_base, good], "without a session"),
        ([first, missing], "without the checkpoint or a delta"),
        ([lying], "summary is not its checkpoint's"),
        ([first, twice], "more than once"),
        ([first, good, good], "delta on generation 1"),
    ]:
        got = _read(messages)
        assert all(isinstance(e, WatchEvent) for e in got[:-1]), said
        assert isinstance(got[-1], CorruptStore) and said in str(got[-1]), (said, got[-1])


def test_hub_bounds_the_state_it_holds() -> None:
    hub = WatchHub(max_pending=100, max_pending_bytes=1000)
    full = hub.subscribe("s", state=True)
    summaries = hub.subscribe("s")
    assert hub.wants_state("s") and not hub.wants_state("t")
    store = MemoryStore()
    store.put(make_cp("s"))
    listing = store.list()[0]
    big = CommitEvent("s", listing, checkpoint=b"x" * 1500)  # alone over the bound: taken
    hub.publish(big)
    assert full.get(1) is big
    assert summaries.get(1) == CommitEvent("s", listing)  # the state dropped
    for _ in range(2):
        hub.publish(CommitEvent("s", listing, delta=b"d" * 400))
    hub.publish(CommitEvent("s", listing, delta=b"d" * 400))  # 1200 bytes pending: over
    with pytest.raises(WatchOverflow, match="1000 bytes"):
        full.get(1)
    assert [summaries.get(1) for _ in range(3)] == [CommitEvent("s", listing)] * 3
    assert hub.wants_state("s")
    full.close()
    assert not hub.wants_state("s")  # a summary subscription takes no state
    summaries.close()

    hub = WatchHub()  # the server's: 64 MiB
    held = hub.subscribe("s", state=True)
    half = CommitEvent("s", listing, delta=bytes(32 << 20))
    hub.publish(half)
    hub.publish(half)
    assert held.get(1) is half
    hub.publish(half)
    hub.publish(CommitEvent("s", listing, delta=b"1"))  # one byte over
    with pytest.raises(WatchOverflow, match=f"{64 << 20} bytes"):
        held.get(1)


def test_a_watcher_behind_the_store_gets_the_stored_checkpoint() -> None:
    """An event without state, or a delta on another base, is answered with the store's state."""
    server = serve_in_thread(MemoryStore())
    client = GrpcStore(server.address)
    watcher = Watcher(server.address, "w")
    watcher.next()
    cp = make_cp("w", trials=1)
    server.store.put(cp)  # commits the server does not see: no event
    first = server.store.list()[0]
    for generation in (1, 2):
        cp, _ = _next_trial(cp, generation)
        server.store.put(cp, expected_generation=generation)
    server.hub.publish(CommitEvent("w", first))  # as a feed tells of commit 1, late
    event, message, _ = watcher.next()
    assert message.WhichOneof("state") == "checkpoint" and event.generation == 3  # the latest
    _same_as_stored(event, client, "w")
    cp, delta = _next_trial(cp, 3)
    assert client.put_delta(delta) == 4
    event, message, _ = watcher.next()  # on 3, the watcher's generation: a delta
    assert message.WhichOneof("state") == "delta" and event.generation == 4
    _same_as_stored(event, client, "w")
    cp, _ = _next_trial(cp, 4)
    server.store.put(cp, expected_generation=4)  # unseen again
    cp, delta = _next_trial(cp, 5)
    assert client.put_delta(delta) == 6
    event, message, _ = watcher.next()  # a delta on 5, the watcher at 4: the whole checkpoint
    assert message.WhichOneof("state") == "checkpoint" and event.generation == 6
    _same_as_stored(event, client, "w")
    watcher.close()
    client.close()
    server.stop(1)
