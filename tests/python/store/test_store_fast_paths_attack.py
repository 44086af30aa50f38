"""Attacks on the stores' fast paths: PostgreSQL delta commits over a remembered row, and
reads that decode deltas while a second thread checks a large snapshot.

Every commit race checks what a fresh client reads afterwards: exactly one
winner per generation, contiguous generations, no stray delta row, and the
checkpoint the winner committed. Every hostile file is read with the second
thread and without it, with the first deltas decoded ahead or not, and in
pure-Python mode: the verdicts must be the same, no ``dsxir-check`` thread
may outlive a read, and nothing may be printed on stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dsxir.errors import (
    CheckpointError,
    Conflict,
    IllegalHistory,
    InvalidCheckpoint,
    InvalidDelta,
)
from dsxir.optimizer_session import accel, checkpoint, grammar
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import framing, records, replay
from dsxir.store.file import FileStore
from dsxir.store.postgres import PostgresStore
from dsxir.store.postgres import store as pg_module
from dsxir.store.summary import encode_summary
from service_fixtures import sql
from store_util import counting_checks, counting_statements, make_cp, one_more

REPO = Path(__file__).resolve().parents[3]
BIG_BLOB = bytes(range(256)) * 5000  # a snapshot over grammar.ALONGSIDE_BYTES


# --- PostgreSQL: put_delta over a remembered row ----------------------------------------


def _check_rows(url: str, store: PostgresStore, session_id: str = "s1") -> int:
    """Assert the session's rows agree (no stray or missing delta row); its generation."""
    schema = store.schema
    ((generation, count),) = sql(
        url,
        f"SELECT generation, delta_count FROM {schema}.dsxir_checkpoints"
        f" WHERE session_id = '{session_id}'",
    )
    rows = [
        int(row[0])  # type: ignore[call-overload]
        for row in sql(
            url,
            f"SELECT generation FROM {schema}.dsxir_deltas WHERE session_id = '{session_id}'"
            " ORDER BY generation",
        )
    ]
    top = int(generation)  # type: ignore[call-overload]
    assert rows == list(range(top - int(count) + 1, top + 1))  # type: ignore[call-overload]
    return top


def _stray_rows(url: str, store: PostgresStore) -> list[tuple[object, ...]]:
    """Delta rows of no session."""
    schema = store.schema
    return sql(
        url,
        f"SELECT session_id, generation FROM {schema}.dsxir_deltas d WHERE NOT EXISTS"
        f" (SELECT 1 FROM {schema}.dsxir_checkpoints c WHERE c.session_id = d.session_id)",
    )


def _conninfo(url: str) -> str:
    """The libpq URL of a store URL (the store's own parameters removed)."""
    return re.sub(r"[?&](schema|pool_timeout|pool_min|pool_max)=[^&]*", "", url)


def _encoded(store: PostgresStore, session_id: str = "s1") -> bytes:
    return checkpoint.encode(store.get(session_id).checkpoint)


def _race(
    stores: list[PostgresStore], cp: Checkpoint, generation: int, round_: int, rng: random.Random
) -> tuple[list[Checkpoint], list[Conflict]]:
    """Six threads, two per client, commit a delta over ``cp`` at ``generation`` at once."""
    won: list[Checkpoint] = []
    lost: list[Conflict] = []
    barrier = threading.Barrier(6)

    def commit(store: PostgresStore, index: int) -> None:
        new = one_more(cp, trials=rng.randint(0, 2), sampler_blob=bytes([index, round_]))
        delta = dl.diff(cp, new, base_generation=generation)
        barrier.wait()
        try:
            store.put_delta(delta)
            won.append(new)
        except Conflict as exc:
            lost.append(exc)

    threads = [threading.Thread(target=commit, args=(stores[i % 3], i)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return won, lost


@pytest.mark.parametrize("compact_at", [8192, 300], ids=["rows", "compacting"])
def test_clients_and_threads_racing_from_remembered_states_make_one_winner_per_generation(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, compact_at: int
) -> None:
    """Three clients, two threads each, on one generation per round: one commits, the
    rest conflict; the winner goes on from its remembered row, the others read."""
    monkeypatch.setattr(pg_module, "COMPACT_MIN_BYTES", compact_at)
    monkeypatch.setattr(pg_module, "COMPACT_SHARE", 10**9)
    stores = [PostgresStore.from_url(pg_url) for _ in range(3)]
    fresh = PostgresStore.from_url(pg_url)
    try:
        cp = make_cp("s1", trials=2)
        generation = stores[0].put(cp)
        rng = random.Random(7)
        for round_ in range(12):
            won, lost = _race(stores, cp, generation, round_, rng)
            assert len(won) == 1 and len(lost) == 5, (won, lost)
            assert all((c.expected, c.actual) == (generation, generation + 1) for c in lost)
            generation += 1
            assert _check_rows(pg_url, fresh) == generation
            assert fresh.get("s1").generation == generation
            assert _encoded(fresh) == checkpoint.encode(won[0])
            cp = won[0]
        assert _stray_rows(pg_url, fresh) == []
    finally:
        for store in (*stores, fresh):
            store.close()


def _history(store: PostgresStore, cp: Checkpoint, commits: int, **change: Any) -> Checkpoint:
    """``cp`` put as generation 1, then ``commits`` delta commits of one trial each."""
    generation = store.put(cp)
    for step in range(commits):
        new = one_more(cp, sampler_blob=bytes([step]), **change)
        generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
        cp = new
    return cp


def test_recreated_at_the_same_generation_a_delta_judged_on_the_stored_row(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str
) -> None:
    """A client remembers generation 3; another deletes the session and brings a new one
    with other content to generation 3. Deltas accepted by the stale memory but not by
    the row are refused, and the reverse is committed, over the row as it is."""
    mine = _history(pg_store, make_cp("s1", trials=1), 2)  # remembered at 3, 3 trials
    pg_other.delete("s1")
    theirs = _history(pg_other, make_cp("s1", trials=4, blob=b"theirs"), 2)  # 3, 6 trials
    assert _check_rows(pg_url, pg_other) == 3
    # Accepted over the remembered checkpoint, refused over the stored one (trial count).
    with pytest.raises(InvalidDelta):
        pg_store.put_delta(dl.diff(mine, one_more(mine), base_generation=3))
    assert _check_rows(pg_url, pg_other) == 3 and _encoded(pg_other) == checkpoint.encode(theirs)
    # Keeps every field but adds a trial: over the stale memory it would make another result.
    kept = one_more(theirs)
    assert pg_store.put_delta(dl.diff(theirs, kept, base_generation=3)) == 4
    assert _check_rows(pg_url, pg_other) == 4 and _encoded(pg_other) == checkpoint.encode(kept)
    # Refused over the remembered checkpoint (now the stored one), both clients agree.
    pg_other.delete("s1")
    again = _history(pg_other, make_cp("s1", trials=1, blob=b"again"), 3)  # 4, 4 trials
    accepted = one_more(again)
    assert pg_store.put_delta(dl.diff(again, accepted, base_generation=4)) == 5
    assert _encoded(pg_other) == checkpoint.encode(accepted) and _check_rows(pg_url, pg_other) == 5
    assert _stray_rows(pg_url, pg_other) == []


def test_recreated_with_another_trainset_deltas_are_judged_on_the_row(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str
) -> None:
    """Same generation, same trial count, another trainset hash. Deltas that keep no
    field: one legal over the memory only is refused, one legal over the row only commits."""
    mine = _history(pg_store, make_cp("s1", trials=2), 1)  # remembered at 2, 3 trials
    pg_other.delete("s1")
    moved = make_cp("s1", trials=2)
    moved.trainset_hash = bytes(32)
    theirs = _history(pg_other, moved, 1)  # 2, 3 trials
    explicit = dl.Baseline(3, {})  # a delta that keeps nothing: every field is its own
    with pytest.raises(IllegalHistory):
        pg_store.put_delta(explicit.delta(one_more(mine), base_generation=2))
    assert _encoded(pg_other) == checkpoint.encode(theirs) and _check_rows(pg_url, pg_other) == 2
    new = one_more(theirs)
    assert pg_store.put_delta(explicit.delta(new, base_generation=2)) == 3
    assert _encoded(pg_other) == checkpoint.encode(new) and _check_rows(pg_url, pg_other) == 3
    assert _stray_rows(pg_url, pg_other) == []


def test_a_refused_delta_on_the_fast_path_leaves_the_memory_usable(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp = _history(pg_store, make_cp("s1", trials=2), 2)
    broken = one_more(cp)
    broken.progress.trial_log[-1].score = float("nan")
    renamed = one_more(cp)
    renamed.optimizer = "other.Opt"
    refused: list[tuple[type[CheckpointError], Any]] = [
        (InvalidDelta, dl.diff(one_more(cp), one_more(cp, trials=2), base_generation=3)),
        (IllegalHistory, dl.diff(cp, renamed, base_generation=3)),
        (InvalidCheckpoint, dl.diff(cp, broken, base_generation=3)),
    ]
    for kind, delta in refused:
        with pytest.raises(kind):
            pg_store.put_delta(delta)
        assert _check_rows(pg_url, pg_other) == 3 and _encoded(pg_other) == _encoded(pg_store)
    executed = counting_statements(monkeypatch)
    new = one_more(cp, trials=2)
    assert pg_store.put_delta(dl.diff(cp, new, base_generation=3)) == 4
    assert executed == [pg_store._queries.append_unlocked]  # still remembered, unchanged
    assert _encoded(pg_other) == checkpoint.encode(new) and _check_rows(pg_url, pg_other) == 4


def test_the_compaction_boundary_reached_from_a_remembered_row(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delta that would pass the bound takes the locked path and writes a snapshot;
    the next one is fast again, over the new snapshot."""
    monkeypatch.setattr(pg_module, "COMPACT_MIN_BYTES", 600)
    monkeypatch.setattr(pg_module, "COMPACT_SHARE", 10**9)
    cp = make_cp("s1", trials=1)
    generation = pg_store.put(cp)
    executed = counting_statements(monkeypatch)
    compactions = 0
    for step in range(40):
        new = one_more(cp, sampler_blob=bytes([step]) * 40)
        executed.clear()
        generation = pg_store.put_delta(dl.diff(cp, new, base_generation=generation))
        spent = list(executed)
        cp = new
        top = _check_rows(pg_url, pg_other)
        assert top == generation and _encoded(pg_other) == checkpoint.encode(cp)
        (count,) = sql(
            pg_url,
            f"SELECT delta_count FROM {pg_store.schema}.dsxir_checkpoints WHERE session_id = 's1'",
        )[0]
        if count == 0:
            compactions += 1
            assert pg_store._queries.update in spent
            assert pg_store._queries.append_unlocked not in spent  # it never compacts there
        elif step > 0:
            assert spent == [pg_store._queries.append_unlocked]
    assert compactions >= 3


def test_a_vacuum_freeze_between_commits_changes_nothing_read(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str
) -> None:
    cp = _history(pg_store, make_cp("s1", trials=1), 2)
    for table in ("dsxir_checkpoints", "dsxir_deltas"):
        sql(pg_url, f"VACUUM (FREEZE) {pg_store.schema}.{table}")
    new = one_more(cp)
    assert pg_store.put_delta(dl.diff(cp, new, base_generation=3)) == 4
    assert _encoded(pg_other) == checkpoint.encode(new) and _check_rows(pg_url, pg_other) == 4


def test_a_row_rewritten_by_hand_at_its_generation_is_not_the_remembered_one(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str
) -> None:
    """A statement outside the store puts another snapshot at the same generation: the
    remembered row's xmin no longer matches, so deltas are judged on the new snapshot."""
    mine = _history(pg_store, make_cp("s1", trials=1), 1)  # 2, one delta row, 2 trials
    theirs = make_cp("s1", trials=3, blob=b"by hand")
    body = checkpoint.encode(theirs)
    schema = pg_store.schema
    sql(
        pg_url,
        f"WITH gone AS (DELETE FROM {schema}.dsxir_deltas WHERE session_id = 's1')"
        f" UPDATE {schema}.dsxir_checkpoints SET body = '\\x{body.hex()}'::bytea,"
        f" crc32c = {framing.crc32c(body)}, delta_count = 0, delta_bytes = 0"
        " WHERE session_id = 's1'",
    )
    assert _encoded(pg_other) == body
    with pytest.raises(InvalidDelta):  # legal over the memory (two trials), not the row
        pg_store.put_delta(dl.diff(mine, one_more(mine), base_generation=2))
    new = one_more(theirs)
    assert pg_store.put_delta(dl.diff(theirs, new, base_generation=2)) == 3
    assert _encoded(pg_other) == checkpoint.encode(new) and _check_rows(pg_url, pg_other) == 3


def _waiting(url: str, schema: str) -> int:
    """How many statements on ``schema`` wait for a lock."""
    (row,) = sql(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        f" AND query LIKE '%{schema}%dsxir_%' AND pid <> pg_backend_pid()",
    )
    return int(row[0])  # type: ignore[call-overload]


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.mark.parametrize("remembered", [True, False], ids=["fast", "locked"])
def test_a_delete_racing_a_delta_commit_leaves_no_delta_row_behind(
    pg_store: PostgresStore, pg_other: PostgresStore, pg_url: str, remembered: bool
) -> None:
    """The commit waits for a third client's row lock, then the delete starts; the lock
    goes, the commit goes first, then the delete: nothing of the session may remain."""
    cp = _history(pg_store, make_cp("s1", trials=1), 2)  # pg_store remembers generation 3
    writer = pg_store if remembered else PostgresStore.from_url(pg_url)
    schema = pg_store.schema
    outcomes: list[object] = []
    try:
        with psycopg.connect(_conninfo(pg_url)) as holder:
            holder.execute(
                f"SELECT 1 FROM {schema}.dsxir_checkpoints WHERE session_id = 's1' FOR UPDATE"
            )
            new = one_more(cp)
            committing = threading.Thread(
                target=lambda: outcomes.append(
                    writer.put_delta(dl.diff(cp, new, base_generation=3))
                )
            )
            committing.start()
            _until(lambda: _waiting(pg_url, schema) == 1, "the commit waits for the lock")
            deleting = threading.Thread(target=pg_other.delete, args=("s1",))
            deleting.start()
            _until(lambda: _waiting(pg_url, schema) == 2, "the delete waits too")
            holder.commit()
        committing.join(30)
        deleting.join(30)
    finally:
        if not remembered:
            writer.close()
    assert outcomes == [4]  # the commit was first in line for the row
    assert sql(pg_url, f"SELECT count(*) FROM {schema}.dsxir_checkpoints") == [(0,)]
    # The same id again: a new session, read and committed to as any other.
    again = make_cp("s1", trials=1, blob=b"again")
    assert pg_other.put(again) == 1
    assert _encoded(pg_other) == checkpoint.encode(again)
    newer = one_more(again)
    assert pg_other.put_delta(dl.diff(again, newer, base_generation=1)) == 2
    assert _encoded(pg_store) == checkpoint.encode(newer) and _check_rows(pg_url, pg_other) == 2
    pg_other.delete("s1")
    assert _stray_rows(pg_url, pg_other) == []


# --- Store files: deltas decoded while a large snapshot is checked ----------------------


def _grown(cp: Checkpoint, tag: int) -> Checkpoint:
    new = Checkpoint()
    new.CopyFrom(cp)
    checkpoint.record_trial(new, score=0.25, candidate_id=f"c{tag}")
    return new


def _record(cp: Checkpoint, generation: int, **lie: Any) -> tuple[bytes, Checkpoint]:
    """The record committing one more trial over ``cp`` (at ``generation``), and its result.

    ``lie`` changes the record: ``commits`` (the generation it says it commits), ``base``
    (its delta's base generation), ``base_trials``, ``body`` (its delta bytes).
    """
    new = _grown(cp, generation)
    delta = dl.diff(cp, new, base_generation=lie.get("base", generation))
    if "base_trials" in lie:
        delta.base_trials = lie["base_trials"]
    body = lie.get("body", dl.encode_delta(delta))
    commits = lie.get("commits", generation + 1)
    return records.record(commits, encode_summary(new), body), new


def _foreign(cp: Checkpoint, generation: int) -> bytes:
    """A record whose delta is one of another session's."""
    stranger = make_cp("s2", trials=len(cp.progress.trial_log))
    delta = dl.diff(stranger, _grown(stranger, 0), base_generation=generation)
    return records.record(generation + 1, encode_summary(_grown(cp, 0)), dl.encode_delta(delta))


def _damaged(kind: str, cp: Checkpoint, generation: int) -> bytes:
    """A record after ``cp`` at ``generation`` damaged in the way ``kind`` names."""
    if kind == "payload-checksum":
        raw = bytearray(_record(cp, generation)[0])
        raw[-3] ^= 0x20
        return bytes(raw)
    if kind == "header-checksum":
        raw = bytearray(_record(cp, generation)[0])
        raw[9] ^= 0x01
        return bytes(raw)
    if kind == "skipped-generation":
        return _record(cp, generation, commits=generation + 2)[0]
    if kind == "repeated-generation":
        return _record(cp, generation, commits=generation)[0]
    if kind == "wrong-base":
        return _record(cp, generation, base=generation + 5)[0]
    if kind == "wrong-trial-count":
        return _record(cp, generation, base_trials=len(cp.progress.trial_log) + 1)[0]
    if kind == "unreadable-delta":
        return _record(cp, generation, body=b"\x0a\x03abc")[0]
    if kind == "unsealed-delta":
        delta = dl.diff(cp, _grown(cp, 0), base_generation=generation)
        return _record(cp, generation, body=delta.SerializeToString(deterministic=True))[0]
    if kind == "another-session":
        return _foreign(cp, generation)
    if kind == "torn-tail":
        return _record(cp, generation)[0][:-5]
    raise AssertionError(kind)


DAMAGE = [
    "payload-checksum",
    "header-checksum",
    "skipped-generation",
    "repeated-generation",
    "wrong-base",
    "wrong-trial-count",
    "unreadable-delta",
    "unsealed-delta",
    "another-session",
    "torn-tail",
]
GOOD_BEFORE = (0, 2)


def _hostile_session(folder: Path, kind: str, good: int) -> None:
    """A session of a large snapshot, ``good`` intact records, a damaged one, one more."""
    cp = make_cp("s1", trials=2, blob=BIG_BLOB)
    generation = FileStore(folder).put(cp)
    tail = b""
    for _ in range(good):
        raw, cp = _record(cp, generation)
        tail += raw
        generation += 1
    tail += _damaged(kind, cp, generation)
    if kind != "torn-tail":
        tail += _record(_grown(cp, generation), generation + 1)[0]
    path = Path(FileStore(folder).file_path("s1"))
    with open(path, "r+b") as handle:  # an appendable file: records go after the body
        head = framing.parse_header(handle.read(framing.HEADER_SIZE), str(path))
        assert head.appendable and head.body_length > grammar.ALONGSIDE_BYTES
        handle.seek(0, os.SEEK_END)
        handle.write(tail)


def _verdict(folder: Path) -> list[object]:
    """What a new reader of the session makes of the folder: its commit, or its refusal."""
    try:
        got = FileStore(folder).get("s1")
    except CheckpointError as exc:
        return [type(exc).__name__, getattr(exc, "kind", None), str(exc)]
    encoded = checkpoint.encode(got.checkpoint)
    return ["ok", got.generation, hashlib.sha256(encoded).hexdigest()]


def _accel_off() -> bool:
    """Whether checkpoints are read without the C accelerator (no second thread then)."""
    return accel.read_checkpoint is None


def _checkers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dsxir-check"]


@pytest.mark.parametrize("good", GOOD_BEFORE)
@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_records_after_a_large_snapshot_whatever_was_decoded_ahead(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    kind: str,
    good: int,
) -> None:
    """The one-thread verdict (no second thread, nothing decoded ahead) is the verdict of
    every read that decodes ahead up to, onto or past the damaged record."""
    _hostile_session(tmp_path, kind, good)
    with monkeypatch.context() as one_thread:
        one_thread.setattr(grammar, "ALONGSIDE_BYTES", 1 << 40)
        one_thread.setattr(replay, "DECODED_AHEAD", 0)
        expected = _verdict(tmp_path)
    if kind == "torn-tail":
        assert expected[:2] == ["ok", 1 + good]
    else:
        assert expected[0] != "ok"
    started = counting_checks(monkeypatch)
    for ahead in sorted({0, good, good + 1, good + 2, 4096}):
        monkeypatch.setattr(replay, "DECODED_AHEAD", ahead)
        for ahead_bytes in (1, 4 << 20):
            monkeypatch.setattr(replay, "DECODED_AHEAD_BYTES", ahead_bytes)
            assert _verdict(tmp_path) == expected, (ahead, ahead_bytes)
            assert _checkers() == []
    assert started or _accel_off()
    assert capfd.readouterr().err == ""


_PURE_READER = """
import hashlib, json, sys
from pathlib import Path
from dsxir.errors import CheckpointError
from dsxir.optimizer_session import accel, checkpoint
from dsxir.store.file import FileStore

assert accel.read_checkpoint is None
verdicts = {}
for name, folder in json.loads(sys.argv[1]).items():
    try:
        got = FileStore(Path(folder)).get("s1")
        encoded = checkpoint.encode(got.checkpoint)
        verdicts[name] = ["ok", got.generation, hashlib.sha256(encoded).hexdigest()]
    except CheckpointError as exc:
        verdicts[name] = [type(exc).__name__, getattr(exc, "kind", None), str(exc)]
print(json.dumps(verdicts))
"""


@pytest.mark.skipif(_accel_off(), reason="compares with the accelerated reader")
def test_pure_python_readers_give_the_same_verdicts_on_hostile_files(tmp_path: Path) -> None:
    folders = {}
    for kind in DAMAGE:
        for good in GOOD_BEFORE:
            folders[f"{kind}-{good}"] = folder = tmp_path / f"{kind}-{good}"
            _hostile_session(folder, kind, good)
    accelerated = {name: _verdict(folder) for name, folder in folders.items()}
    done = subprocess.run(
        [sys.executable, "-c", _PURE_READER, json.dumps({k: str(v) for k, v in folders.items()})],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DSXIR_PURE_PYTHON": "1"},
        cwd=REPO,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout) == accelerated


_WRITER = """
import hashlib, sys
from pathlib import Path
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.store.file import FileStore
from store_util import make_cp

folder, log, commits = Path(sys.argv[1]), open(sys.argv[2], "a"), int(sys.argv[3])
store = FileStore(folder)
cp = make_cp("s1", trials=2, blob=bytes(range(256)) * 5000)

def intend(generation, cp):
    digest = hashlib.sha256(checkpoint.encode(cp)).hexdigest()
    log.write(f"{generation} {digest}\\n")
    log.flush()

intend(1, cp)
generation = store.put(cp)
for step in range(commits):
    new = checkpoint.decode(checkpoint.encode(cp))
    checkpoint.record_trial(new, score=0.5, candidate_id=f"c{step}")
    if step % 5 == 4:  # a delta carrying the whole blob: the file is compacted
        new.sampler_blob = bytes([step % 256]) + new.sampler_blob[1:]
    intend(generation + 1, new)
    if step % 11 == 10:
        generation = store.put(new, expected_generation=generation)
    else:
        generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
    cp = new
print(generation)
"""

_READER = """
import hashlib, json, os, sys, threading
from pathlib import Path
from dsxir.optimizer_session import checkpoint
from dsxir.store.file import FileStore

folder, stop = Path(sys.argv[1]), Path(sys.argv[2])
seen, errors = [], []
while not stop.exists():
    try:
        got = FileStore(folder).get("s1")
    except Exception as exc:
        errors.append(repr(exc))
        continue
    seen.append([got.generation, hashlib.sha256(checkpoint.encode(got.checkpoint)).hexdigest()])
    if any(t.name == "dsxir-check" for t in threading.enumerate()):
        errors.append("a dsxir-check thread outlived the read")
print(json.dumps({"seen": seen, "errors": errors}))
"""


def test_readers_of_a_large_session_see_only_committed_checkpoints_while_it_changes(
    tmp_path: Path,
) -> None:
    """A writer process commits deltas, compactions and snapshots to a session of a
    1.28 MB snapshot; two reader processes read it in a loop meanwhile."""
    folder, log, stop = tmp_path / "store", tmp_path / "intended", tmp_path / "stop"
    # The second thread exists with the C extension only: the children use it in either mode.
    env = {k: v for k, v in os.environ.items() if k != "DSXIR_PURE_PYTHON"}
    env["PYTHONPATH"] = str(REPO / "tests" / "python")
    commits = 150
    FileStore(folder)  # the folder exists before the readers look
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(folder), str(log), str(commits)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _until(lambda: log.exists() and log.read_text().count("\n") >= 2, "the writer starts")
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", _READER, str(folder), str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        out, err = writer.communicate(timeout=120)
    finally:
        stop.touch()
        read = [reader.communicate(timeout=60) for reader in readers]
        for process in (writer, *readers):
            process.kill()
    assert writer.returncode == 0 and err == "", err
    assert int(out) == commits + 1
    intended = {
        (int(generation), digest)
        for generation, digest in (line.split() for line in log.read_text().splitlines())
    }
    assert len(intended) == commits + 1
    final = FileStore(folder).get("s1")
    assert (final.generation, hashlib.sha256(checkpoint.encode(final.checkpoint)).hexdigest()) in (
        intended
    )
    distinct = set()
    for (stdout, stderr), reader in zip(read, readers, strict=True):
        assert reader.returncode == 0 and stderr == "", stderr
        result = json.loads(stdout)
        assert result["errors"] == []
        seen = [(int(g), d) for g, d in result["seen"]]
        assert set(seen) <= intended
        assert [g for g, _ in seen] == sorted(g for g, _ in seen)  # never back in time
        distinct |= set(seen)
    assert len(distinct) >= 2  # the readers read while the writer wrote
