"""Delta commits (``put_delta``, FORMAT.md §13) on every store that offers them.

The file store commits a delta by appending a record, the PostgreSQL store
by inserting a row; the gRPC client sends
``PutCheckpointDelta``, which the server commits with its store's
``put_delta`` or, for a store without it, by applying the delta to the
stored checkpoint and ``put``. Every backend gives the same answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import STORE_BACKENDS
from dsxir.errors import Conflict, IllegalHistory, InvalidCheckpoint, InvalidDelta
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import close_store
from store_util import make_cp

DELTA_BACKENDS = ("file", "postgres", "grpc-memory", "grpc-file", "grpc-postgres")


@pytest.fixture(params=DELTA_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    cleanups: list[Any] = []
    made = STORE_BACKENDS[request.param](tmp_path, cleanups)
    yield made
    close_store(made)
    for cleanup in cleanups:
        cleanup()


def _next(cp: Checkpoint, trials: int = 1, **change: Any) -> Checkpoint:
    new = checkpoint.decode(checkpoint.encode(cp))
    for _ in range(trials):
        checkpoint.record_trial(new, score=0.1 * len(new.progress.trial_log), **change)
    return new


def test_deltas_commit_what_put_would(store: Any) -> None:
    cp = make_cp("s1", trials=2)
    generation = store.put(cp)
    for step in range(5):
        new = _next(cp, trials=step % 3, sampler_blob=bytes([step]))
        generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
        assert generation == step + 2
        stored = store.get("s1")
        assert stored.generation == generation
        assert checkpoint.encode(stored.checkpoint) == checkpoint.encode(new)
        [listing] = store.list()
        assert (listing.generation, listing.trials) == (generation, len(new.progress.trial_log))
        cp = new
    store.put(_next(cp), expected_generation=generation)  # a whole checkpoint after deltas
    assert store.get("s1").generation == generation + 1


def test_a_stale_or_missing_base_is_a_conflict(store: Any) -> None:
    cp = make_cp("s1")
    with pytest.raises(Conflict) as missing:
        store.put_delta(dl.diff(cp, _next(cp), base_generation=1))
    assert (missing.value.expected, missing.value.actual) == (1, None)
    store.put(cp)
    store.put_delta(dl.diff(cp, _next(cp), base_generation=1))
    with pytest.raises(Conflict) as stale:
        store.put_delta(dl.diff(cp, _next(cp), base_generation=1))
    assert (stale.value.expected, stale.value.actual) == (1, 2)


def test_refused_deltas_leave_the_store_as_it_was(store: Any) -> None:
    cp = make_cp("s1", trials=3)
    store.put(cp)
    before = checkpoint.encode(store.get("s1").checkpoint)
    wrong_count = dl.diff(make_cp("s1", trials=1), _next(cp), base_generation=1)
    with pytest.raises(InvalidDelta) as counted:
        store.put_delta(wrong_count)
    assert (counted.value.rule, counted.value.path) == ("delta.base_trials", "base_trials")
    broken = dl.diff(cp, _next(cp), base_generation=1)
    broken.head.progress.trial_log[0].trial_idx = 9
    with pytest.raises(InvalidCheckpoint) as numbered:
        store.put_delta(broken)
    assert numbered.value.rule == "trial.trial_idx"
    assert numbered.value.path.endswith("progress.trial_log[3].trial_idx")
    other = _next(cp)
    other.optimizer = "another.Optimizer"
    with pytest.raises(IllegalHistory) as history:
        store.put_delta(dl.diff(cp, other, base_generation=1))
    assert history.value.rule == "history.optimizer"
    kept = dl.diff(cp, _next(cp), base_generation=1)
    kept.kept |= 1 << 9
    with pytest.raises(InvalidDelta) as unreadable:
        store.put_delta(kept)
    assert (unreadable.value.rule, unreadable.value.path) == ("delta.kept", "kept")
    assert checkpoint.encode(store.get("s1").checkpoint) == before
    assert store.get("s1").generation == 1


def test_of_writers_on_one_generation_exactly_one_commits(store: Any) -> None:
    cp = make_cp("s1", trials=1)
    store.put(cp)
    outcomes: list[str] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        new = _next(cp, sampler_blob=bytes([i]))
        try:
            store.put_delta(dl.diff(cp, new, base_generation=1))
            result = "ok"
        except Conflict:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
    assert store.get("s1").generation == 2


@pytest.mark.parametrize("kind", ["memory", "file", "postgres"])
def test_a_delta_commit_is_a_watch_event(tmp_path: Path, kind: str) -> None:
    cleanups: list[Any] = []
    client = STORE_BACKENDS[f"grpc-{kind}"](tmp_path, cleanups)
    try:
        cp = make_cp("s1")
        client.put(cp)
        stream = client.watch("s1")
        events = iter(stream)
        assert next(events).kind == "initial"
        client.put_delta(dl.diff(cp, _next(cp, trials=2), base_generation=1))
        event = next(events)
        stream.cancel()
        assert event.kind == "committed" and event.listing is not None
        assert (event.listing.generation, event.listing.trials) == (2, 2)
    finally:
        close_store(client)
        for cleanup in cleanups:
            cleanup()


def test_file_store_listing_follows_the_file(tmp_path: Path) -> None:
    from dsxir.errors import NotFound
    from dsxir.store import FileStore

    first, second = FileStore(tmp_path), FileStore(tmp_path)
    with pytest.raises(NotFound):
        first.listing("s1")
    cp = make_cp("s1", trials=1)
    first.put(cp)
    new = _next(cp, trials=2)
    first.put_delta(dl.diff(cp, new, base_generation=1))
    assert first.listing("s1") == first.list()[0]
    assert (first.listing("s1").generation, first.listing("s1").trials) == (2, 3)
    newer = _next(new)
    second.put_delta(dl.diff(new, newer, base_generation=2))  # another writer's commit
    assert (first.listing("s1").generation, first.listing("s1").trials) == (3, 4)
