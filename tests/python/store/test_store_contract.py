"""The store contract: CAS rule, get/list/delete, filters — on every backend of conftest.py."""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
from pathlib import Path

import pytest

from dsxir.errors import Conflict, InvalidCheckpoint, NotFound
from dsxir.optimizer_session import checkpoint
from dsxir.store import (
    DEFAULT_STORE_PATH,
    FileStore,
    Listing,
    MemoryStore,
    Store,
    framing,
    open_store,
)
from store_util import make_cp


def test_every_backend_implements_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_the_contract_runs_on_every_backend() -> None:
    # conftest.py's store fixture is the one place that lists the backends.
    from conftest import STORE_BACKENDS

    assert {"file", "memory", "postgres", "grpc-file", "toy-sqlite"} <= set(STORE_BACKENDS)


def test_create_then_update_counts_generations(store: Store) -> None:
    cp = make_cp()
    assert store.put(cp) == 1
    checkpoint.record_trial(cp, score=0.5)
    assert store.put(cp, expected_generation=1) == 2
    checkpoint.record_trial(cp, score=0.7)
    assert store.put(cp, expected_generation=2) == 3
    stored = store.get("s1")
    assert stored.generation == 3
    assert checkpoint.encode(stored.checkpoint) == checkpoint.encode(cp)


def test_creating_never_overwrites(store: Store) -> None:
    store.put(make_cp(trials=2))
    with pytest.raises(Conflict) as info:
        store.put(make_cp(trials=0))
    assert (info.value.expected, info.value.actual) == (None, 1)
    assert len(store.get("s1").checkpoint.progress.trial_log) == 2


def test_stale_generation_conflicts_and_changes_nothing(store: Store) -> None:
    cp = make_cp()
    store.put(cp)
    store.put(cp, expected_generation=1)
    checkpoint.record_trial(cp, score=9.0)
    with pytest.raises(Conflict) as info:
        store.put(cp, expected_generation=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert "expected=1 stored=2" in str(info.value)
    assert len(store.get("s1").checkpoint.progress.trial_log) == 0


def test_update_of_a_missing_session_conflicts(store: Store) -> None:
    with pytest.raises(Conflict) as info:
        store.put(make_cp(), expected_generation=1)
    assert (info.value.expected, info.value.actual) == (1, None)
    with pytest.raises(NotFound):
        store.get("s1")


@pytest.mark.parametrize("bad", [0, -1])
def test_expected_generation_below_one_is_refused(store: Store, bad: int) -> None:
    with pytest.raises(ValueError):
        store.put(make_cp(), expected_generation=bad)


@pytest.mark.parametrize("bad", [True, 1.0, "1"])
def test_expected_generation_of_another_type_is_refused(store: Store, bad: object) -> None:
    with pytest.raises(TypeError):
        store.put(make_cp(), expected_generation=bad)  # type: ignore[arg-type]


def test_invalid_checkpoint_is_refused_and_nothing_is_written(store: Store, tmp_path: Path) -> None:
    cp = make_cp()
    cp.trainset_hash = b"short"
    with pytest.raises(InvalidCheckpoint):
        store.put(cp)
    with pytest.raises(NotFound):
        store.get("s1")
    assert store.list() == []


def test_a_checkpoint_over_the_size_limit_is_refused_and_nothing_is_stored(store: Store) -> None:
    # Every backend refuses it before storing anything (checkpoint.encode, on
    # the client's side for the service), so none acknowledges a checkpoint
    # that it could not give back.
    big = make_cp("big")
    big.sampler_blob = bytes(checkpoint.MAX_CHECKPOINT_BYTES + 1)
    with pytest.raises(InvalidCheckpoint, match="over the limit") as info:
        store.put(big)
    assert info.value.path == "<input>"
    with pytest.raises(NotFound):
        store.get("big")
    store.put(make_cp("big", trials=1))
    with pytest.raises(InvalidCheckpoint, match="over the limit"):
        store.put(big, expected_generation=1)
    del big
    stored = store.get("big")
    assert (stored.generation, len(stored.checkpoint.progress.trial_log)) == (1, 1)
    assert [(item.session_id, item.generation) for item in store.list()] == [("big", 1)]


def test_a_nul_in_the_optimizer_name_is_kept_or_refused_clearly(store: Store) -> None:
    # FORMAT.md allows it; a store that cannot hold it (PostgreSQL text)
    # refuses it as an invalid checkpoint naming the field, storing nothing.
    try:
        store.put(make_cp("n1", optimizer="a\x00b"))
    except InvalidCheckpoint as exc:
        assert exc.path == "optimizer" and "NUL" in exc.detail
        with pytest.raises(NotFound):
            store.get("n1")
        assert store.list() == []
    else:
        assert store.get("n1").checkpoint.optimizer == "a\x00b"
        assert [item.optimizer for item in store.list()] == ["a\x00b"]


def test_list_pages_where_a_store_offers_them(store: Store) -> None:
    list_page = getattr(store, "list_page", None)
    if not callable(list_page):
        pytest.skip(f"{type(store).__name__} has no list_page")
    ids = ["b", "a", "é", "c", "\U0001f600", "a b"]
    for session_id in ids:
        store.put(make_cp(session_id, optimizer="odd.Opt" if len(session_id) % 2 else "x.Opt"))
    by_bytes = sorted(ids, key=lambda s: s.encode())
    assert [item.session_id for item in store.list()] == by_bytes
    assert [item.session_id for item in list_page()] == by_bytes
    assert [item.session_id for item in list_page(limit=2)] == by_bytes[:2]
    assert [item.session_id for item in list_page(after="a", limit=3)] == by_bytes[1:4]
    assert [item.session_id for item in list_page(after="c")] == ["é", "\U0001f600"]
    assert list_page(after="\U0001f600") == [] and list_page(limit=0) == []
    odd = [item.session_id for item in store.list(optimizer="odd.Opt")]
    assert [x.session_id for x in list_page(optimizer="odd.Opt", after="a", limit=2)] == [
        x for x in odd if x.encode() > b"a"
    ][:2]
    assert list_page(status="completed") == []
    with pytest.raises(ValueError, match="limit"):
        list_page(limit=-1)


def test_get_returns_a_fresh_copy(store: Store) -> None:
    store.put(make_cp(trials=1))
    first = store.get("s1").checkpoint
    checkpoint.record_trial(first, score=5.0)
    assert len(store.get("s1").checkpoint.progress.trial_log) == 1


def test_missing_session_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound) as info:
        store.get("nobody")
    assert 'no checkpoint stored for session "nobody"' in str(info.value)


def test_delete_is_idempotent_and_forgets_the_generation(store: Store) -> None:
    store.delete("s1")
    cp = make_cp()
    store.put(cp)
    store.put(cp, expected_generation=1)
    store.delete("s1")
    store.delete("s1")
    with pytest.raises(NotFound):
        store.get("s1")
    assert store.list() == []
    assert store.put(cp) == 1


def test_list_reports_summaries(store: Store) -> None:
    a = make_cp("a", trials=3)
    checkpoint.record_trial(a, score=None, status="error", error=ValueError("x"))
    store.put(a)
    b = make_cp("b", optimizer="other.Opt")
    checkpoint.pause(b)
    store.put(b)
    store.put(b, expected_generation=1)
    listing = store.list()
    assert [item.session_id for item in listing] == ["a", "b"]
    first, second = listing
    assert first == Listing(
        session_id="a",
        status="running",
        optimizer="test.Opt",
        updated_at=first.updated_at,
        best_score=0.2,
        completed=3,
        errors=1,
        attempts=4,
        trials=4,
        generation=1,
    )
    assert first.updated_at.tzinfo is not None
    assert abs(first.updated_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    assert (second.status, second.best_score, second.trials, second.generation) == (
        "paused",
        None,
        0,
        2,
    )


def test_list_filters(store: Store) -> None:
    store.put(make_cp("r1"))
    store.put(make_cp("r2", optimizer="x.Opt"))
    done = make_cp("c1")
    checkpoint.complete(done)
    store.put(done)
    assert [i.session_id for i in store.list(status="running")] == ["r1", "r2"]
    assert [i.session_id for i in store.list(status="completed")] == ["c1"]
    assert [i.session_id for i in store.list(optimizer="x.Opt")] == ["r2"]
    assert store.list(status="completed", optimizer="x.Opt") == []
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert len(store.list(updated_since=past)) == 3
    assert store.list(updated_since=future) == []


def test_list_refuses_filters_that_cannot_match(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown status"):
        store.list(status="done")
    with pytest.raises(ValueError, match="timezone-aware"):
        store.list(updated_since=dt.datetime(2020, 1, 1))


@pytest.mark.parametrize("score", [math.inf, -math.inf, -0.0, 0.0, 1e-300])
def test_listing_keeps_best_score_bits(store: Store, score: float) -> None:
    cp = make_cp()
    checkpoint.record_trial(cp, score=score)
    store.put(cp)
    listed = store.list()[0].best_score
    assert listed is not None
    assert math.copysign(1, listed) == math.copysign(1, score) and listed == score


def test_threads_racing_on_one_generation_commit_once(store: Store) -> None:
    cp = make_cp()
    store.put(cp)
    wins: list[int] = []
    conflicts: list[int] = []
    barrier = threading.Barrier(6)

    def race(i: int) -> None:
        mine = checkpoint.decode(checkpoint.encode(cp))
        for trial in range(i):
            checkpoint.record_trial(mine, score=trial / 10)
        barrier.wait()
        try:
            store.put(mine, expected_generation=1)
            wins.append(i)
        except Conflict:
            conflicts.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(conflicts) == 5
    assert len(store.get("s1").checkpoint.progress.trial_log) == wins[0]


# --- file store specifics ---------------------------------------------------------


def test_file_layout_and_lock_files_live_with_their_session(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "nested" / "store")
    assert not (tmp_path / "nested").exists()  # created on the first commit only
    store.put(make_cp("s1"))
    assert sorted(os.listdir(tmp_path / "nested" / "store")) == [
        ".lock.s1",
        "s1.dsxckpt",
    ]
    data = (tmp_path / "nested" / "store" / "s1.dsxckpt").read_bytes()
    assert data.startswith(framing.MAGIC)
    store.delete("s1")
    assert os.listdir(tmp_path / "nested" / "store") == []


def test_failed_cas_leaves_no_lock_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    with pytest.raises(Conflict):
        store.put(make_cp(), expected_generation=3)
    assert os.listdir(tmp_path) == []


def test_list_reads_only_the_summary(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put(make_cp("s1", trials=5))
    path = tmp_path / "s1.dsxckpt"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside the trial log
    path.write_bytes(bytes(data))
    assert [item.trials for item in store.list()] == [5]


def test_list_ignores_foreign_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put(make_cp("s1"))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".hidden.dsxckpt").write_text("x")
    assert [item.session_id for item in store.list()] == ["s1"]


def test_stale_temporary_files_are_cleaned(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put(make_cp("s1"))
    (tmp_path / ".tmp.s1").write_bytes(b"half a commit")
    (tmp_path / ".tmp.gone").write_bytes(b"half a commit")
    assert store.clean_stale_files() == 2
    assert sorted(os.listdir(tmp_path)) == [".lock.s1", "s1.dsxckpt"]
    (tmp_path / ".tmp.s1").write_bytes(b"again")
    FileStore(tmp_path)  # opening a store cleans too
    assert not (tmp_path / ".tmp.s1").exists()
    assert store.get("s1").generation == 1


def test_a_commit_replaces_a_stale_temporary_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    cp = make_cp("s1")
    store.put(cp)
    (tmp_path / ".tmp.s1").write_bytes(b"left by a killed writer")
    assert store.put(cp, expected_generation=1) == 2
    assert not (tmp_path / ".tmp.s1").exists()


def test_a_locked_session_keeps_its_temporary_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put(make_cp("s1"))
    (tmp_path / ".tmp.s1").write_bytes(b"commit in progress")
    with store._locked("s1"):  # another writer is committing
        assert FileStore(tmp_path).clean_stale_files() == 0
        assert (tmp_path / ".tmp.s1").exists()


# --- open_store -------------------------------------------------------------------


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    default = open_store()
    assert isinstance(default, FileStore)
    assert default.path == str(tmp_path / DEFAULT_STORE_PATH)
    relative = open_store("file:rel/dir")
    assert isinstance(relative, FileStore) and relative.path == str(tmp_path / "rel" / "dir")
    absolute = open_store(f"file://{tmp_path}/a%20b")
    assert isinstance(absolute, FileStore) and absolute.path == str(tmp_path / "a b")
    assert isinstance(open_store("memory:"), MemoryStore)
    assert open_store("memory:") is not open_store("memory:")
    assert open_store("memory:shared") is open_store("memory:shared")


@pytest.mark.parametrize("url", ["s3://bucket", "file:", "file://host/x", "/abs/path", "", "mem"])
def test_open_store_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)
