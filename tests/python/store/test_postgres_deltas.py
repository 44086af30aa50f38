"""The PostgreSQL store's delta commits: one row per delta, snapshots now and then."""

from __future__ import annotations

import queue
import statistics
import threading
from typing import Any

import pytest

from dsxir.errors import (
    Conflict,
    CorruptStore,
    IllegalHistory,
    InvalidCheckpoint,
    InvalidDelta,
    NotFound,
)
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store.events import CommitEvent
from dsxir.store.framing import crc32c
from dsxir.store.postgres import PostgresStore
from dsxir.store.postgres import store as pg_module
from service_fixtures import sql
from store_util import counting_statements, make_cp, one_more


def _rows(url: str, store: PostgresStore, session_id: str = "s1") -> list[int]:
    """The generations of the session's delta rows."""
    rows = sql(
        url,
        f"SELECT generation FROM {store.schema}.dsxir_deltas"
        f" WHERE session_id = '{session_id}' ORDER BY generation",
    )
    return [int(row[0]) for row in rows]


def _session_row(url: str, store: PostgresStore, session_id: str = "s1") -> tuple[Any, ...]:
    (row,) = sql(
        url,
        f"SELECT generation, delta_count, delta_bytes, body FROM {store.schema}.dsxir_checkpoints"
        f" WHERE session_id = '{session_id}'",
    )
    return row


def _commits(store: PostgresStore, cp: Checkpoint, count: int) -> tuple[Checkpoint, int]:
    """``count`` delta commits of one trial each after ``cp`` (committed as generation 1)."""
    generation = store.put(cp)
    for step in range(count):
        new = one_more(cp, sampler_blob=bytes([step % 256]))
        generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
        cp = new
    return cp, generation


def test_deltas_are_rows_and_get_applies_them(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str
) -> None:
    cp = make_cp("s1", trials=3)
    generation = pg_store.put(cp)
    snapshot = bytes(_session_row(pg_url, pg_store)[3])
    for step in range(6):
        new = one_more(cp, trials=step % 3, sampler_blob=bytes([step]))
        generation = pg_store.put_delta(dl.diff(cp, new, base_generation=generation))
        assert generation == step + 2
        for reader in (pg_store, pg_other):
            stored = reader.get("s1")
            assert stored.generation == generation
            assert checkpoint.encode(stored.checkpoint) == checkpoint.encode(new)
        [listing] = pg_other.list()
        assert (listing.generation, listing.trials) == (generation, len(new.progress.trial_log))
        assert pg_other.summary("s1") == listing
        cp = new
    # One row per delta; the session row keeps the snapshot of generation 1.
    assert _rows(pg_url, pg_store) == [2, 3, 4, 5, 6, 7]
    row = _session_row(pg_url, pg_store)
    assert (row[0], row[1]) == (7, 6) and bytes(row[3]) == snapshot
    assert row[2] > 0
    # A client that remembers nothing reads snapshot + deltas and goes on.
    new = one_more(cp, trials=2)
    assert pg_other.put_delta(dl.diff(cp, new, base_generation=7)) == 8
    # The first client's memory is no longer the row: it reads again and goes on.
    newer = one_more(new)
    assert pg_store.put_delta(dl.diff(new, newer, base_generation=8)) == 9
    assert checkpoint.encode(pg_other.get("s1").checkpoint) == checkpoint.encode(newer)
    assert _rows(pg_url, pg_store) == list(range(2, 10))


def test_a_stale_or_missing_base_is_a_conflict(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str
) -> None:
    cp = make_cp("s1")
    with pytest.raises(Conflict) as missing:
        pg_store.put_delta(dl.diff(cp, one_more(cp), base_generation=1))
    assert (missing.value.expected, missing.value.actual) == (1, None)
    pg_store.put(cp)
    for base in (2, 2**63, 2**64 - 1):
        with pytest.raises(Conflict) as stale:
            pg_store.put_delta(dl.diff(cp, one_more(cp), base_generation=base))
        assert (stale.value.expected, stale.value.actual) == (base, 1)
    assert _rows(pg_url, pg_store) == [] and pg_store.get("s1").generation == 1
    with pytest.raises(TypeError, match="CheckpointDelta"):
        pg_store.put_delta(cp)  # type: ignore[arg-type]


def test_of_writers_on_one_generation_exactly_one_commits(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str
) -> None:
    cp = make_cp("s1", trials=2)
    pg_store.put(cp)
    pg_store.put_delta(dl.diff(cp, one_more(cp), base_generation=1))  # remembered by pg_store
    cp = pg_store.get("s1").checkpoint
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def commit(store: PostgresStore, index: int) -> None:
        new = one_more(cp, trials=1 + index % 2, sampler_blob=bytes([index]))
        barrier.wait()
        try:
            store.put_delta(dl.diff(cp, new, base_generation=2))
            outcomes.append("ok")
        except Conflict as exc:
            assert (exc.expected, exc.actual) == (2, 3)
            outcomes.append("conflict")

    threads = [
        threading.Thread(target=commit, args=(pg_store if i % 2 else pg_other, i)) for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
    assert _rows(pg_url, pg_store) == [2, 3]
    stored = pg_other.get("s1")
    assert stored.generation == 3
    # Both clients go on from what was committed, whoever committed it.
    for store in (pg_store, pg_other):
        new = one_more(stored.checkpoint)
        generation = store.put_delta(
            dl.diff(stored.checkpoint, new, base_generation=stored.generation)
        )
        stored = store.get("s1")
        assert generation == stored.generation
        assert checkpoint.encode(stored.checkpoint) == checkpoint.encode(new)


def test_refused_deltas_leave_nothing_written(pg_store: PostgresStore, pg_url: str) -> None:
    cp = make_cp("s1", trials=2)
    pg_store.put(cp)
    good = one_more(cp)
    pg_store.put_delta(dl.diff(cp, good, base_generation=1))
    before = (_rows(pg_url, pg_store), _session_row(pg_url, pg_store)[:3])
    refused: list[tuple[type[Exception], Any]] = []
    # Another base's trial count (delta.base_trials).
    refused.append((InvalidDelta, dl.diff(cp, one_more(good), base_generation=2)))
    # Not a legal successor: another trainset hash.
    moved = one_more(good)
    moved.trainset_hash = bytes(255 - b for b in moved.trainset_hash)
    refused.append((IllegalHistory, dl.diff(good, moved, base_generation=2)))
    # Not a legal successor: another optimizer.
    renamed = one_more(good)
    renamed.optimizer = "other.Opt"
    refused.append((IllegalHistory, dl.diff(good, renamed, base_generation=2)))
    # A result that breaks a rule of FORMAT.md.
    broken = one_more(good)
    broken.progress.trial_log[-1].score = float("nan")
    refused.append((InvalidCheckpoint, dl.diff(good, broken, base_generation=2)))
    # An optimizer name holding NUL, which text cannot hold.
    nul = one_more(good)
    nul.optimizer = "test\x00Opt"
    refused.append((InvalidCheckpoint, dl.diff(good, nul, base_generation=2)))
    for kind, delta in refused:
        with pytest.raises(kind):
            pg_store.put_delta(delta)
        assert (_rows(pg_url, pg_store), _session_row(pg_url, pg_store)[:3]) == before
        assert pg_store.get("s1").generation == 2
    newer = one_more(good, trials=2)
    assert pg_store.put_delta(dl.diff(good, newer, base_generation=2)) == 3
    assert checkpoint.encode(pg_store.get("s1").checkpoint) == checkpoint.encode(newer)


def test_compaction_writes_a_snapshot_and_drops_the_rows(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_module, "COMPACT_MIN_BYTES", 400)
    monkeypatch.setattr(pg_module, "COMPACT_SHARE", 10**9)
    cp = make_cp("s1", trials=5)
    generation = pg_store.put(cp)
    seen_rows: list[int] = []
    compactions = 0
    for step in range(30):
        new = one_more(cp, sampler_blob=bytes([step]))
        generation = pg_store.put_delta(dl.diff(cp, new, base_generation=generation))
        cp = new
        rows = _rows(pg_url, pg_store)
        row = _session_row(pg_url, pg_store)
        assert row[0] == generation and row[1] == len(rows)
        assert rows == list(range(generation - len(rows) + 1, generation + 1))
        assert row[2] <= 400
        if not rows:
            compactions += 1
            # The session row holds the whole checkpoint of this generation.
            assert bytes(row[3]) == checkpoint.encode(cp)
        seen_rows.append(len(rows))
        assert checkpoint.encode(pg_other.get("s1").checkpoint) == checkpoint.encode(cp)
    assert compactions >= 3 and max(seen_rows) >= 2
    assert pg_store.get("s1").generation == generation == 31


def test_put_over_delta_rows_reads_them_and_drops_them(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str
) -> None:
    cp = make_cp("s1", trials=1)
    cp, generation = _commits(pg_store, cp, 4)
    assert _rows(pg_url, pg_store) == [2, 3, 4, 5]
    # Legal over the snapshot (one trial) but not over what the deltas made (five).
    for store in (pg_other, pg_store):
        with pytest.raises(IllegalHistory):
            store.put(make_cp("s1", trials=3), expected_generation=generation)
    assert _rows(pg_url, pg_store) == [2, 3, 4, 5]
    new = one_more(cp, trials=2)
    assert pg_other.put(new, expected_generation=generation) == 6
    assert _rows(pg_url, pg_store) == []
    row = _session_row(pg_url, pg_store)
    assert (row[0], row[1], row[2]) == (6, 0, 0) and bytes(row[3]) == checkpoint.encode(new)
    assert checkpoint.encode(pg_store.get("s1").checkpoint) == checkpoint.encode(new)
    # The first client's memory is stale: it reads the new snapshot and goes on.
    newer = one_more(new)
    assert pg_store.put_delta(dl.diff(new, newer, base_generation=6)) == 7
    assert checkpoint.encode(pg_other.get("s1").checkpoint) == checkpoint.encode(newer)


def test_delete_removes_the_delta_rows(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str
) -> None:
    _commits(pg_store, make_cp("s1"), 3)
    _commits(pg_store, make_cp("s2"), 2)
    pg_other.delete("s1")
    assert _rows(pg_url, pg_store, "s1") == [] and _rows(pg_url, pg_store, "s2") == [2, 3]
    with pytest.raises(NotFound):
        pg_store.get("s1")
    # Created again, and committed to the same generation by another client:
    # the first client does not mistake it for the session it remembers.
    cp = make_cp("s1", trials=1, blob=b"again")
    cp, generation = _commits(pg_other, cp, 3)
    assert generation == 4
    new = one_more(cp)
    assert pg_store.put_delta(dl.diff(cp, new, base_generation=4)) == 5
    assert checkpoint.encode(pg_other.get("s1").checkpoint) == checkpoint.encode(new)
    assert checkpoint.encode(pg_store.get("s2").checkpoint) == checkpoint.encode(
        pg_other.get("s2").checkpoint
    )


@pytest.mark.parametrize(
    ("damage", "where", "detail"),
    [
        # A flipped byte: the CRC32C no longer matches.
        (
            "UPDATE {d} SET delta = set_byte(delta, 5, get_byte(delta, 5) # 255)"
            " WHERE session_id = 's1' AND generation = 3",
            "3]",
            "CRC32C",
        ),
        # Bytes that are not a delta, with a matching CRC32C.
        (
            "UPDATE {d} SET delta = '\\x0a03616263'::bytea, crc32c = {garbage_crc}"
            " WHERE session_id = 's1' AND generation = 4",
            "4]",
            "delta is invalid",
        ),
        # A gap: the row of generation 3 is gone.
        ("DELETE FROM {d} WHERE session_id = 's1' AND generation = 3", "4]", "after 2"),
        # The last row is gone: the session row says 5.
        ("DELETE FROM {d} WHERE session_id = 's1' AND generation = 5", "dsxir_checkpoints", "end"),
        # A row of a generation the session has not reached.
        (
            "INSERT INTO {d} SELECT session_id, 9, delta, crc32c FROM {d}"
            " WHERE session_id = 's1' AND generation = 5",
            "9]",
            "after 5",
        ),
        # A row moved to another session: another session's delta.
        (
            "UPDATE {d} SET session_id = 's2' WHERE session_id = 's1' AND generation = 2;"
            "UPDATE {t} SET delta_count = 1, generation = 2 WHERE session_id = 's2'",
            "'s2', 2]",
            "does not apply",
        ),
    ],
)
@pytest.mark.parametrize("blob", [b"blob", bytes(range(256)) * 4096], ids=["small", "1MiB"])
def test_damaged_delta_rows_are_corrupt_store(
    pg_store: PostgresStore,
    pg_other: PostgresStore,
    pg_url: str,
    damage: str,
    where: str,
    detail: str,
    blob: bytes,
) -> None:
    """Also after a 1 MiB snapshot: its rows are decoded while a second thread checks it."""
    cp, generation = _commits(pg_store, make_cp("s1", trials=2, blob=blob), 4)
    pg_store.put(make_cp("s2"))
    assert generation == 5
    tables = {"d": f"{pg_store.schema}.dsxir_deltas", "t": f"{pg_store.schema}.dsxir_checkpoints"}
    garbage_crc = crc32c(b"\x0a\x03abc")
    for statement in damage.split(";"):
        sql(pg_url, statement.format(garbage_crc=garbage_crc, **tables))
    session = "s2" if "'s2'" in where else "s1"
    for store in (pg_store, pg_other):
        with pytest.raises(CorruptStore) as info:
            store.get(session)
        assert f"{pg_store.schema}." in info.value.path and where in info.value.path
        assert detail in info.value.detail
    # A client that must read the rows to check a commit refuses it too.
    stored = pg_other.summary("s1")
    assert stored is not None and stored.generation == 5
    with pytest.raises(CorruptStore):
        pg_other.put_delta(dl.diff(cp, one_more(cp), base_generation=5))
    assert pg_other.summary("s1") == stored
    # Listing reads the session rows only.
    assert [listing.session_id for listing in pg_other.list()] == ["s1", "s2"]


def test_delta_commits_are_notified(pg_store: PostgresStore, pg_other: PostgresStore) -> None:
    events: queue.Queue[CommitEvent] = queue.Queue()
    unsubscribe = pg_other.subscribe_commits(events.put, lambda _: None)
    try:
        cp = make_cp("s1")
        pg_store.put(cp)
        first = events.get(timeout=10)
        assert first.listing is not None and first.listing.generation == 1
        pg_store.put_delta(dl.diff(cp, one_more(cp, trials=2), base_generation=1))
        event = events.get(timeout=10)
        assert event.session_id == "s1" and event.listing is not None
        assert (event.listing.generation, event.listing.trials) == (2, 2)
    finally:
        unsubscribe()


def test_a_delta_commit_writes_far_less_wal_than_the_checkpoint(
    pg_store: PostgresStore, pg_url: str
) -> None:
    cp = make_cp("big", trials=3000)
    size = len(checkpoint.encode(cp))
    generation = pg_store.put(cp)
    new = one_more(cp)
    generation = pg_store.put_delta(dl.diff(cp, new, base_generation=generation))  # read once
    cp = new
    commits = 40

    def wal() -> int:
        (row,) = sql(pg_url, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        return int(row[0])  # type: ignore[call-overload]

    spent = []  # per commit: the WAL of the whole cluster, so the median (not the mean)
    for step in range(commits):  # leaves out a compaction and any autovacuum meanwhile
        new = one_more(cp, sampler_blob=bytes([step]))
        began = wal()
        generation = pg_store.put_delta(dl.diff(cp, new, base_generation=generation))
        spent.append(wal() - began)
        cp = new
    per_delta = statistics.median(spent)
    began = wal()
    for _ in range(5):
        new = one_more(cp)
        generation = pg_store.put(new, expected_generation=generation)
        cp = new
    per_put = (wal() - began) / 5
    print(f"checkpoint {size} B; WAL per delta commit {per_delta:.0f} B, per put {per_put:.0f} B")
    assert checkpoint.encode(pg_store.get("big").checkpoint) == checkpoint.encode(cp)
    assert per_put > size / 2  # what a whole-row rewrite costs
    assert per_delta * 20 < size


def test_rows_written_before_the_delta_table_stay_valid(pg_url: str) -> None:
    store = PostgresStore.from_url(pg_url)
    cp = make_cp("old", trials=2)
    store.put(cp)
    store.close()
    # Back to the schema of version 2, as a database written before it was.
    schema = store.schema
    sql(pg_url, f"DROP TABLE {schema}.dsxir_deltas")
    sql(
        pg_url,
        f"ALTER TABLE {schema}.dsxir_checkpoints DROP COLUMN delta_count, DROP COLUMN delta_bytes",
    )
    sql(pg_url, f"DELETE FROM {schema}.dsxir_schema_migrations WHERE version >= 3")
    store = PostgresStore.from_url(pg_url)
    try:
        assert store.get("old").generation == 1
        versions = sql(pg_url, f"SELECT max(version) FROM {schema}.dsxir_schema_migrations")
        assert versions == [(3,)]
        new = one_more(cp)
        assert store.put_delta(dl.diff(cp, new, base_generation=1)) == 2
        assert checkpoint.encode(store.get("old").checkpoint) == checkpoint.encode(new)
    finally:
        store.close()


def test_a_remembered_session_takes_a_delta_in_one_statement(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp, generation = _commits(pg_store, make_cp("s1", trials=1), 2)
    executed = counting_statements(monkeypatch)
    new = one_more(cp)
    assert pg_store.put_delta(dl.diff(cp, new, base_generation=generation)) == generation + 1
    assert executed == [pg_store._queries.append_unlocked]  # no lock, no transaction
    assert checkpoint.encode(pg_other.get("s1").checkpoint) == checkpoint.encode(new)
    assert _rows(pg_url, pg_store) == [2, 3, 4]


def test_a_remembered_session_another_client_moved_on_writes_nothing_and_conflicts(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp, generation = _commits(pg_store, make_cp("s1", trials=1), 2)
    theirs = one_more(cp, sampler_blob=b"theirs")
    assert pg_other.put_delta(dl.diff(cp, theirs, base_generation=generation)) == generation + 1
    executed = counting_statements(monkeypatch)
    with pytest.raises(Conflict):
        pg_store.put_delta(dl.diff(cp, one_more(cp), base_generation=generation))
    assert executed[0] == pg_store._queries.append_unlocked  # wrote nothing: the row moved on
    assert executed[1:] == [pg_store._queries.locked]  # then the locked path: a Conflict
    assert _rows(pg_url, pg_store) == [2, 3, 4]
    assert checkpoint.encode(pg_store.get("s1").checkpoint) == checkpoint.encode(theirs)
    ours = one_more(theirs)
    assert pg_store.put_delta(dl.diff(theirs, ours, base_generation=4)) == 5
    assert checkpoint.encode(pg_other.get("s1").checkpoint) == checkpoint.encode(ours)
