"""``FileStore.try_put_delta``: ``put_delta`` when it commits without waiting, else None.

It appends to a session the store remembers, while the file is the one it
wrote and the session's lock is free; otherwise it returns None and nothing
changes. Its commits are byte for byte ``put_delta``'s.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dsxir.errors import Conflict, IllegalHistory, InvalidDelta
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import FileStore
from store_util import make_cp, one_more


def _steps(cp: Checkpoint) -> list[Callable[[Checkpoint], None]]:
    """Changes of every kind a commit makes: trials, status, best, blob, artifact."""

    def trial(new: Checkpoint) -> None:
        ck.record_trial(new, score=5.0, candidate_id="best", stats={"tokens": 3})

    def blob(new: Checkpoint) -> None:
        ck.record_trial(new, score=0.0, sampler_blob=os.urandom(40))

    def pause(new: Checkpoint) -> None:
        ck.pause(new)

    def resume(new: Checkpoint) -> None:
        ck.resume(new)

    def complete(new: Checkpoint) -> None:
        ck.complete(new, "done")

    return [pause, resume, trial, blob, pause, resume, trial, complete]


def _created(folder: Path) -> tuple[FileStore, Checkpoint, int]:
    """A store holding s1 at generation 2, remembered (a delta was committed)."""
    store = FileStore(folder)
    cp = make_cp("s1", trials=3)
    generation = store.put(cp)
    new = one_more(cp)
    generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
    return store, new, generation


@pytest.mark.parametrize("trials", [0, 3])
def test_it_commits_what_put_delta_commits_byte_for_byte(tmp_path: Path, trials: int) -> None:
    cp = make_cp("s1", trials=trials)
    tried, waited = FileStore(tmp_path / "a"), FileStore(tmp_path / "b")
    generation = tried.put(cp)
    assert waited.put(cp) == generation
    for step in _steps(cp):
        new = ck.decode(ck.encode(cp))
        step(new)
        delta = dl.diff(cp, new, base_generation=generation)
        if generation == 1:  # after a create, neither store remembers the session
            assert tried.try_put_delta(delta) is None
            assert tried.put_delta(delta) == generation + 1
        else:
            assert tried.try_put_delta(delta) == generation + 1
        assert waited.put_delta(delta) == generation + 1
        generation += 1
        cp = new
        assert tried.listing("s1") == waited.listing("s1")
    mine = (tmp_path / "a" / "s1.dsxckpt").read_bytes()
    assert mine == (tmp_path / "b" / "s1.dsxckpt").read_bytes()
    fresh = FileStore(tmp_path / "a").get("s1")  # read back by another store: every check
    assert (fresh.generation, ck.encode(fresh.checkpoint)) == (generation, ck.encode(cp))


def test_a_session_the_store_does_not_remember_is_left_to_put_delta(tmp_path: Path) -> None:
    _, cp, generation = _created(tmp_path / "store")
    other = FileStore(tmp_path / "store")  # has read nothing yet
    before = (tmp_path / "store" / "s1.dsxckpt").read_bytes()
    delta = dl.diff(cp, one_more(cp), base_generation=generation)
    assert other.try_put_delta(delta) is None
    assert (tmp_path / "store" / "s1.dsxckpt").read_bytes() == before
    assert other.put_delta(delta) == generation + 1  # reads the file, then remembers it
    after = one_more(one_more(cp))
    assert other.try_put_delta(dl.diff(one_more(cp), after, base_generation=generation + 1)) == (
        generation + 2
    )


def test_a_busy_lock_is_not_waited_for(tmp_path: Path) -> None:
    store, cp, generation = _created(tmp_path / "store")
    path = tmp_path / "store" / "s1.dsxckpt"
    before = path.read_bytes()
    delta = dl.diff(cp, one_more(cp), base_generation=generation)
    holder = os.open(tmp_path / "store" / ".lock.s1", os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # as another process would hold it
        assert store.try_put_delta(delta) is None
        assert path.read_bytes() == before
    finally:
        os.close(holder)
    assert store.try_put_delta(delta) == generation + 1


def test_a_file_changed_by_another_writer_is_left_to_put_delta(tmp_path: Path) -> None:
    store, cp, generation = _created(tmp_path / "store")
    other = FileStore(tmp_path / "store")
    new = one_more(cp)
    assert other.put_delta(dl.diff(cp, new, base_generation=generation)) == generation + 1
    delta = dl.diff(new, one_more(new), base_generation=generation + 1)
    assert store.try_put_delta(delta) is None  # its memory is not the file any more
    assert store.put_delta(delta) == generation + 2


def test_a_commit_that_would_compact_is_left_to_put_delta(tmp_path: Path) -> None:
    store, cp, generation = _created(tmp_path / "store")
    path = tmp_path / "store" / "s1.dsxckpt"
    before = path.read_bytes()
    big = ck.decode(ck.encode(cp))
    ck.record_trial(big, score=1.0, sampler_blob=os.urandom(20_000))  # past 8 KiB of records
    delta = dl.diff(cp, big, base_generation=generation)
    assert store.try_put_delta(delta) is None
    assert path.read_bytes() == before
    assert store.put_delta(delta) == generation + 1
    assert path.stat().st_size < len(before) + 20_000 + 4096  # a new snapshot, no records
    small = one_more(big)
    assert store.try_put_delta(dl.diff(big, small, base_generation=generation + 1)) == (
        generation + 2
    )


def test_its_refusals_are_put_deltas(tmp_path: Path) -> None:
    store, cp, generation = _created(tmp_path / "store")
    path = tmp_path / "store" / "s1.dsxckpt"
    before = path.read_bytes()
    with pytest.raises(Conflict) as stale:
        store.try_put_delta(dl.diff(cp, one_more(cp), base_generation=generation - 1))
    assert (stale.value.expected, stale.value.actual) == (generation - 1, generation)
    wrong_count = dl.diff(make_cp("s1", trials=1), one_more(cp), base_generation=generation)
    with pytest.raises(InvalidDelta):
        store.try_put_delta(wrong_count)
    finished = ck.decode(ck.encode(cp))
    ck.complete(finished, "done")
    store.put_delta(dl.diff(cp, finished, base_generation=generation))
    before = path.read_bytes()
    with pytest.raises(IllegalHistory):
        store.try_put_delta(dl.diff(finished, one_more(cp), base_generation=generation + 1))
    with pytest.raises(TypeError):
        store.try_put_delta(cp)  # type: ignore[arg-type]
    assert path.read_bytes() == before
    assert store.get("s1").generation == generation + 1
