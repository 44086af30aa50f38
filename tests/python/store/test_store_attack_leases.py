"""Attacks on leases and legal histories in the stores, each one a fix that stays fixed.

- a folder planted at a temporary file's name (``.lease-tmp.``, ``.tmp.``)
  no longer breaks ``delete``, ``acquire_lease`` or ``put``;
- a lease that ends more than a day from now (the clock jumped back, or the
  lease was planted) no longer holds its session for that long;
- a ``Lease``'s ``repr`` never shows its token;
- PostgreSQL answers a token no store issues (NUL, lone surrogate) as every
  other store does, not with a driver error;
- a stored ``Progress`` with unknown fields (a later minor version's) keeps
  the history check at C speed, and still refuses a rewritten log.
"""

from __future__ import annotations

import datetime as _dt
import json
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from dsxir.errors import CorruptStore, IllegalHistory, InvalidCheckpoint, LeaseHeld, LeaseLost
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.history import check_successor
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import FileStore, Lease, MemoryStore, Store, close_store
from dsxir.store.leases import MAX_LEASE_TTL, holds, now_us
from store_util import make_cp

# --- folders at the file store's temporary names -------------------------------------


@pytest.mark.parametrize("prefix", [".lease-tmp.", ".tmp."])
def test_an_empty_folder_at_a_temporary_name_is_removed(tmp_path: Path, prefix: str) -> None:
    store = FileStore(tmp_path / "store")
    cp = make_cp("s1")
    store.put(cp)
    (tmp_path / "store" / f"{prefix}s1").mkdir()
    lease = store.acquire_lease("s1", "h", ttl=30)
    assert store.get_lease("s1") == Lease("s1", "h", "", lease.expires_at)
    (tmp_path / "store" / f"{prefix}s1").mkdir(exist_ok=True)
    checkpoint.record_trial(cp, score=0.5)
    assert store.put(cp, expected_generation=1) == 2
    (tmp_path / "store" / f"{prefix}s1").mkdir(exist_ok=True)
    store.delete("s1")
    assert os.listdir(tmp_path / "store") == []


@pytest.mark.parametrize("prefix", [".lease-tmp.", ".tmp.", ".lease."])
def test_delete_works_past_a_folder_holding_files(tmp_path: Path, prefix: str) -> None:
    store = FileStore(tmp_path / "store")
    store.put(make_cp("s1"))
    planted = tmp_path / "store" / f"{prefix}s1"
    planted.mkdir()
    (planted / "x").write_bytes(b"not the store's")
    store.delete("s1")  # the session goes; what is not the store's stays
    assert sorted(os.listdir(tmp_path / "store")) == [planted.name]
    assert (planted / "x").read_bytes() == b"not the store's"


def test_a_folder_holding_files_at_the_lease_temporary_name_is_corrupt_store(
    tmp_path: Path,
) -> None:
    (tmp_path / "store").mkdir(mode=0o700)
    store = FileStore(tmp_path / "store")
    planted = tmp_path / "store" / ".lease-tmp.s1"
    planted.mkdir()
    (planted / "x").write_bytes(b"")
    with pytest.raises(CorruptStore) as info:
        store.acquire_lease("s1", "h", ttl=30)
    assert info.value.path == str(planted)
    assert store.get_lease("s1") is None


# --- processes racing over planted lease files ----------------------------------------

_context = multiprocessing.get_context("spawn")
_PLANTS = ("garbage", "fifo", "zero-link", "far-future", "temp-folder", "huge")


def _plant(folder: Path, session_id: str, kind: str) -> None:
    lease = folder / f".lease.{session_id}"
    if kind == "garbage":
        lease.write_bytes(b"{\x00\xff")
    elif kind == "fifo":
        os.mkfifo(lease)
    elif kind == "zero-link":
        os.symlink("/dev/zero", lease)
    elif kind == "far-future":
        FileStore(folder).acquire_lease(session_id, "gone", ttl=30)
        held = json.loads(lease.read_bytes())
        held["expires_at_us"] = 253402300799999999
        lease.write_text(json.dumps(held))
    elif kind == "temp-folder":
        (folder / f".lease-tmp.{session_id}").mkdir()
    else:
        with open(lease, "wb") as handle:
            handle.truncate(1 << 30)  # sparse: a gigabyte never read


def _racer(folder: str, worker: int, barrier: Any, results: Any) -> None:
    store = FileStore(folder)
    for kind in _PLANTS:
        barrier.wait(60)
        try:
            lease = store.acquire_lease(kind, f"w{worker}", ttl=60)
        except LeaseHeld as exc:
            results.put((kind, exc.holder))
        except Exception as exc:  # reported, never a crash of the worker
            results.put((kind, f"error {exc!r}"))
        else:
            results.put((kind, lease.holder))


def test_processes_racing_over_planted_lease_files_one_wins(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir(mode=0o700)
    for kind in _PLANTS:
        _plant(folder, kind, kind)
    workers = 4
    barrier = _context.Barrier(workers)
    results = _context.Queue()
    processes = [
        _context.Process(target=_racer, args=(str(folder), w, barrier, results))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in range(workers * len(_PLANTS))]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    for kind in _PLANTS:
        holders = {holder for k, holder in outcomes if k == kind}
        assert len(holders) == 1, f"{kind}: {holders}"  # everyone saw the one winner
        (holder,) = holders
        assert holder.startswith("w"), f"{kind}: {holder}"


# --- leases that end too far ahead ----------------------------------------------------


def test_holds_bounds_a_lease_by_the_longest_ttl() -> None:
    now = now_us()
    day = round(MAX_LEASE_TTL * 1_000_000)
    assert holds(now + 1, now) and holds(now + day, now)
    assert not holds(now, now) and not holds(now - 1, now)
    assert not holds(now + day + 1, now)


def _store(kind: str, tmp_path: Path) -> tuple[Store, str]:
    """A new store of ``kind`` (file, memory, postgres) and its PostgreSQL URL (else "")."""
    if kind == "file":
        return FileStore(tmp_path / "store"), ""
    if kind == "memory":
        return MemoryStore(), ""
    if kind == "toy-sqlite":
        import toy_store

        return toy_store.open_url(f"toy-sqlite:{tmp_path / 'toy.sqlite'}"), ""
    from dsxir.store.postgres import PostgresStore
    from service_fixtures import pg_url_of_new_schema

    url = pg_url_of_new_schema()
    return PostgresStore.from_url(url), url


def _plant_far_lease(store: Store, tmp_path: Path, url: str) -> None:
    """Make the lease of session s1 end in the year 9999, where its store keeps it."""
    store.acquire_lease("s1", "gone", ttl=30)
    if isinstance(store, FileStore):
        path = tmp_path / "store" / ".lease.s1"
        held = json.loads(path.read_bytes())
        held["expires_at_us"] = 253402300799999999
        path.write_text(json.dumps(held))
    elif isinstance(store, MemoryStore):
        holder, token, _ = store._leases["s1"]
        store._leases["s1"] = (holder, token, 253402300799999999)
    elif not url:  # the toy backend of CONTRIBUTING.md
        with sqlite3.connect(tmp_path / "toy.sqlite") as db:
            db.execute("UPDATE leases SET expires_us = 253402300799999999")
    else:
        from service_fixtures import sql

        schema = store.schema  # type: ignore[attr-defined]
        sql(
            url,
            f"UPDATE {schema}.dsxir_leases SET expires_at = '9999-12-31 23:59:59+00'"
            " WHERE session_id = 's1'",
        )
    far = store.get_lease("s1")
    assert far is not None and far.expires_at.year == 9999


@pytest.mark.parametrize("kind", ["file", "memory", "postgres", "toy-sqlite"])
def test_a_lease_ending_more_than_a_day_ahead_is_taken_over(tmp_path: Path, kind: str) -> None:
    store, url = _store(kind, tmp_path)
    try:
        _plant_far_lease(store, tmp_path, url)
        taken = store.acquire_lease("s1", "next", ttl=30)  # was: LeaseHeld until 9999
        now = _dt.datetime.now(_dt.timezone.utc)
        assert taken.holder == "next"
        assert now < taken.expires_at < now + _dt.timedelta(seconds=120)
        with pytest.raises(LeaseHeld):  # the new lease holds as usual
            store.acquire_lease("s1", "third", ttl=30)
    finally:
        close_store(store)


# --- tokens ---------------------------------------------------------------------------


def test_a_lease_repr_never_shows_its_token() -> None:
    store = MemoryStore()
    lease = store.acquire_lease("s1", "h", ttl=30)
    assert len(lease.token) == 32
    for text in (repr(lease), str(lease), f"{lease}", repr([lease])):
        assert lease.token not in text
        assert "'h'" in text
    assert store.renew_lease(lease, ttl=30).token == lease.token  # the field is still there


@pytest.mark.parametrize("token", ["\x00" + "a" * 31, "\ud800", "A" * 32, "a" * 100_000])
@pytest.mark.parametrize("kind", ["memory", "file", "postgres"])
def test_a_token_no_store_issues_is_lost_everywhere(tmp_path: Path, kind: str, token: str) -> None:
    store, _ = _store(kind, tmp_path)
    try:
        held = store.acquire_lease("s1", "h", ttl=30)
        forged = Lease("s1", "h", token, held.expires_at)
        with pytest.raises(LeaseLost):
            store.renew_lease(forged, ttl=30)
        store.release_lease(forged)  # nothing, and no error
        assert store.get_lease("s1") == Lease("s1", "h", "", held.expires_at)
    finally:
        close_store(store)


# --- the history check with unknown fields --------------------------------------------


def _with_unknown(cp: Checkpoint, unknown: bytes) -> Checkpoint:
    cp.progress.MergeFromString(unknown)
    return checkpoint.decode(checkpoint.encode(cp))


def _best_of_three(stored: Checkpoint, new: Checkpoint) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        check_successor(stored, new)
        times.append(time.perf_counter() - start)
    return min(times)


def test_unknown_progress_fields_keep_the_history_check_fast() -> None:
    plain = make_cp()
    for i in range(50_000):
        checkpoint.record_trial(plain, score=i / 7)
    plain = checkpoint.decode(checkpoint.encode(plain))
    unknown = _with_unknown(checkpoint.decode(checkpoint.encode(plain)), b"\xc0\x3e\x01")
    timings = []
    for stored in (plain, unknown):
        new = checkpoint.decode(checkpoint.encode(stored))
        checkpoint.record_trial(new, score=0.5)
        timings.append(_best_of_three(stored, new))
    # Entry by entry, 50,000 entries take over ten times the byte comparison.
    assert timings[1] < 4 * timings[0] + 0.005, timings


def test_a_known_number_with_another_wire_type_is_never_written() -> None:
    """Field 1 of Progress as a varint: upb keeps it as an unknown field, but
    no writer writes it (FORMAT.md §2.2), so no store ever holds one."""
    cp = make_cp(trials=3)
    cp.progress.MergeFromString(b"\x08\x05")
    with pytest.raises(InvalidCheckpoint) as info:
        checkpoint.encode(cp)
    assert (info.value.rule, info.value.path) == ("wire.order", "progress")
    with pytest.raises(InvalidCheckpoint):
        MemoryStore().put(cp)


@pytest.mark.parametrize(
    "unknown",
    [b"\xc0\x3e\x01", None],
    ids=["field-1000", "holding-the-other-fields"],
)
def test_unknown_progress_fields_never_let_a_rewrite_through(unknown: bytes | None) -> None:
    stored = make_cp(trials=3)
    if unknown is None:  # unknown bytes that repeat the stored fields after the log
        rest = Checkpoint()
        rest.progress.CopyFrom(stored.progress)
        del rest.progress.trial_log[:]
        tail = rest.progress.SerializeToString(deterministic=True)
        unknown = bytes([0xC2, 0x3E, len(tail)]) + tail  # field 1000, length-delimited
    stored = _with_unknown(stored, unknown)
    legal = checkpoint.decode(checkpoint.encode(stored))
    checkpoint.record_trial(legal, score=0.5)
    check_successor(stored, legal)
    for i in range(3):
        rewritten = checkpoint.decode(checkpoint.encode(legal))
        rewritten.progress.trial_log[i].duration_ms += 1
        with pytest.raises(IllegalHistory) as info:
            check_successor(stored, rewritten)
        assert info.value.rule == "history.trial_log_rewritten"
        assert f"trial_log[{i}]" in info.value.detail
