"""``make bench``: what committing one trial costs as a session grows, beside Optuna's storages.

A commit is ``record_trial`` (one trial: a score, its number as candidate id,
one float parameter in ``stats``, a duration) followed by a compare-and-swap
commit that returns once it is durable, on three stores, at each session
size (default 100, 10,000 and 100,000 trials): the file store; PostgreSQL
15, a throwaway local cluster (tests/python/pg_cluster.py) with its default
synchronous commit; the gRPC service (``python -m dsxir.cli serve``, a
separate process on loopback) over a file store. Each store is measured
twice:

- committing deltas, as a session does (``put_delta`` of ``Baseline.delta``:
  the file store appends one synced record, PostgreSQL inserts one row, the
  service passes the delta to its file store; a new snapshot now and then,
  docs/store-file.md §9). The figures cover one whole compaction cycle of
  the file store (the commits from just after one compaction to the next
  one included) and as many commits on the others, so the bytes per commit
  are the amortized cost and the time the median;
- committing the whole checkpoint (``put``: the history check compares the
  stored trial log with the new one before anything is written).

For ``put``, each session is built once in memory and committed once
(untimed), two more commits warm up, then ``DSXIR_BENCH_COMMIT_REPEATS``
commits (default 20) are timed one by one; the figure is their median. Bytes per commit are what
a commit writes, counted as the goal's anchors count them (the issue's
figures for Optuna's journal are its file's size, PostgreSQL's are WAL
bytes): for the file store, the bytes the writing process passed to
``write`` (``wchar`` of ``/proc/<pid>/io``: this process for the file
store, the server for the service, whose replies on its socket count too);
for PostgreSQL, the WAL it wrote (``pg_current_wal_lsn()`` before and
after). Beside them, ``pages``: what the kernel wrote to storage for the
process (``write_bytes``), whole 4 KiB pages, so that every synced append
costs at least one page whatever its length (PostgreSQL's WAL is flushed in
whole 8 KiB blocks the same way; that is not counted here).

Beside them, Optuna's own durable storages in the same run:
``JournalStorage`` on ``JournalFileBackend`` (an append and ``fsync`` per
write) and ``RDBStorage`` on SQLite (a transaction per write), with a
``RandomSampler`` so that the sampler adds nothing that grows with the
study. One Optuna trial is ``ask`` (a new trial), ``suggest_float`` (its
parameter) and ``tell`` (its value and state): three durable writes, all
timed; ``tell`` alone is shown too. Studies of the large sizes are built
without a write per trial: the journal's log lines by ``add_trials`` on a
journal in memory, written out once; the SQLite rows (``trials``,
``trial_params``, ``trial_values``, as ``add_trials`` writes them) in one
transaction.

Goals: a commit at the largest size costs at most 1.5x one at the smallest
(``growth``), and writes at most 4 KiB plus the fields that changed (the
new trial's entry, the counters, ``updated_at``), in bytes written (not
pages); ``get`` of the largest session with the most records a file holds
takes at most twice a ``get`` of the same session from a file without
records (a whole checkpoint, as every file was before deltas), the two
timed in turn. Nothing here asserts; it prints figures beside the goals.
``DSXIR_BENCH_COMMIT_SIZES`` (for example ``100,2000``) sets the sizes for
a quick run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

import optuna
from optuna.distributions import FloatDistribution, distribution_to_json
from optuna.storages import RDBStorage
from optuna.storages.journal import (
    BaseJournalBackend,
    JournalFileBackend,
    JournalStorage,
)
from optuna.trial import create_trial
from sessions import add_trial, param, trial_session

from dsxir.optimizer_session import accel
from dsxir.optimizer_session.delta import Baseline
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import FileStore, Store, close_store, open_store
from dsxir.store.grpc import GrpcStore

__all__ = ["main"]

DEFAULT_SIZES = (100, 10_000, 100_000)
DEFAULT_REPEATS = 20
MAX_CYCLE = 5000
WARM_UP = 2
GOAL_GROWTH = 1.5
GOAL_FIXED_BYTES = 4096
GOAL_GET_RATIO = 2.0
"""``get`` of a session with the most records a file holds, against the same session in a file
without records (a whole checkpoint, as files were before deltas), timed in turn."""
REFERENCE_GET_MS = 58.0
"""Twice the 29 ms of ``get`` at 100,000 trials that whole-checkpoint files took when deltas were
planned (before the byte grammar and the trailer): shown beside the figures, on a quiet machine."""
GET_REPEATS = 7
DISTRIBUTION = FloatDistribution(-10.0, 10.0)
Row = dict[str, Any]


def _sizes() -> tuple[int, ...]:
    text = os.environ.get("DSXIR_BENCH_COMMIT_SIZES", "")
    if not text.strip():
        return DEFAULT_SIZES
    return tuple(sorted({int(part) for part in text.split(",") if part.strip()}))


def _repeats() -> int:
    return int(os.environ.get("DSXIR_BENCH_COMMIT_REPEATS", "") or DEFAULT_REPEATS)


def _changed_bytes(cp: Checkpoint) -> int:
    """Encoded bytes of what one more trial changes: its entry, the counters, ``updated_at``."""
    entry = cp.progress.trial_log[-1].ByteSize()
    progress = cp.progress
    counters = sum(1 + len(_varint(value)) for value in (progress.attempts, progress.completed))
    return 1 + len(_varint(entry)) + entry + counters + 2 + cp.updated_at.ByteSize()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


Counts = tuple[int, int | None]
"""Bytes written so far, and pages written to storage so far (``None`` when not counted)."""


def _process_io(pid: int | str = "self") -> Counts:
    """``wchar`` and ``write_bytes`` of ``/proc/<pid>/io``."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/io", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            found[key] = int(value)
    return found["wchar"], found["write_bytes"]


def _per(before: Counts, after: Counts, count: int) -> tuple[float, float | None]:
    """Mean bytes and pages' bytes per operation between two readings."""
    pages = None
    if before[1] is not None and after[1] is not None:
        pages = (after[1] - before[1]) / count
    return (after[0] - before[0]) / count, pages


def _time_deltas(
    store: Store, base: Checkpoint, written: Callable[[], Counts], cycle: int | None
) -> tuple[float, tuple[float, float | None], int, tuple[float, float] | None]:
    """Median seconds and mean bytes per delta commit over one compaction cycle, and its length.

    On the file store (``cycle`` None) a compaction shows as the file getting
    shorter: commits run until one has happened (at most ``MAX_CYCLE``),
    then are measured until the next one, included. Other stores compact at
    the same sizes; they are measured over ``cycle`` commits (the file
    store's cycle at this size), after as many untimed ones. On the file
    store, the last item is the time of a ``get`` by a new ``FileStore``
    (a resume in a new process) of a copy of the file made right after the
    compaction (a whole checkpoint, no record), and of the file after one
    commit less than a cycle (the most records a file holds), the two timed
    in turn (:func:`_time_gets`).
    """
    cp = Checkpoint()
    cp.CopyFrom(base)
    generation = store.put(cp)
    baseline = Baseline.of(cp)
    path = store.file_path(cp.session_id) if isinstance(store, FileStore) else None
    trial = len(cp.progress.trial_log)

    def commit() -> bool:
        """One trial committed; whether it compacted the file (False off the file store)."""
        nonlocal generation, baseline, trial
        size = os.path.getsize(path) if path else 0
        add_trial(cp, trial)
        trial += 1
        generation = store.put_delta(baseline.delta(cp, base_generation=generation))
        baseline = Baseline.of(cp)
        return bool(path) and os.path.getsize(path) < size

    for _ in range(MAX_CYCLE if cycle is None else cycle):
        if commit():
            break
    seconds: list[float] = []
    before = written()
    for _ in range(MAX_CYCLE if cycle is None else cycle):
        start = time.perf_counter()
        compacted = commit()
        seconds.append(time.perf_counter() - start)
        if compacted:
            break
    bytes_per_commit = _per(before, written(), len(seconds))
    reads = None
    if path is not None:
        whole = f"{store.path}-whole-{trial}"
        os.makedirs(whole, mode=0o700)
        shutil.copy(path, whole)
        for _ in range(len(seconds) - 1):
            commit()
        reads = _time_gets(whole, store.path, cp.session_id)
    return statistics.median(seconds), bytes_per_commit, len(seconds), reads


def _time_gets(whole: str, recorded: str, session_id: str) -> tuple[float, float]:
    """Median seconds of ``get`` by a new ``FileStore`` on each root, timed in turn.

    As a resuming process reads; taking turns gives both the same moments
    of a machine whose speed varies.
    """
    seconds: tuple[list[float], list[float]] = ([], [])
    for _ in range(GET_REPEATS):
        for root, times in zip((whole, recorded), seconds, strict=True):
            start = time.perf_counter()
            FileStore(root).get(session_id)
            times.append(time.perf_counter() - start)
    return statistics.median(seconds[0]), statistics.median(seconds[1])


def _time_dsxir(
    store: Store, base: Checkpoint, repeats: int, written: Callable[[], Counts]
) -> tuple[float, tuple[float, float | None]]:
    """Median seconds and mean bytes written per timed commit of one trial."""
    cp = Checkpoint()
    cp.CopyFrom(base)
    generation = store.put(cp)
    trial = len(cp.progress.trial_log)
    for _ in range(WARM_UP):
        add_trial(cp, trial)
        trial += 1
        generation = store.put(cp, expected_generation=generation)
    seconds: list[float] = []
    before = written()
    for _ in range(repeats):
        start = time.perf_counter()
        add_trial(cp, trial)
        generation = store.put(cp, expected_generation=generation)
        seconds.append(time.perf_counter() - start)
        trial += 1
    return statistics.median(seconds), _per(before, written(), repeats)


# --- Optuna ------------------------------------------------------------------------------------


class _MemoryJournal(BaseJournalBackend):
    """A journal backend in memory, to build a large study's log without an fsync per line."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        return self.logs[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.logs.extend(logs)


def _frozen_trials(count: int) -> Iterator[optuna.trial.FrozenTrial]:
    for i in range(count):
        x = param(i)
        yield create_trial(params={"x": x}, distributions={"x": DISTRIBUTION}, value=(x - 2) ** 2)


def _journal_study(path: str, trials: int) -> JournalStorage:
    memory = _MemoryJournal()
    study = optuna.create_study(
        storage=JournalStorage(memory), study_name="commits", direction="minimize"
    )
    study.add_trials(_frozen_trials(trials))
    with open(path, "wb") as handle:  # what JournalFileBackend.append_logs writes, line by line
        for log in memory.logs:
            handle.write(json.dumps(log, separators=(",", ":")).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return JournalStorage(JournalFileBackend(path))


def _sqlite_study(path: str, trials: int) -> RDBStorage:
    url = f"sqlite:///{path}"
    maker = RDBStorage(url)
    optuna.create_study(storage=maker, study_name="commits", direction="minimize")
    maker.engine.dispose()
    distribution = distribution_to_json(DISTRIBUTION)
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(path) as db:
        (study_id,) = db.execute("SELECT study_id FROM studies").fetchone()
        db.executemany(
            "INSERT INTO trials (trial_id, number, study_id, state, datetime_start, "
            "datetime_complete) VALUES (?, ?, ?, 'COMPLETE', ?, ?)",
            ((i + 1, i, study_id, stamp, stamp) for i in range(trials)),
        )
        db.executemany(
            "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
            "VALUES (?, 'x', ?, ?)",
            ((i + 1, param(i), distribution) for i in range(trials)),
        )
        db.executemany(
            "INSERT INTO trial_values (trial_id, objective, value, value_type) "
            "VALUES (?, 0, ?, 'FINITE')",
            ((i + 1, (param(i) - 2) ** 2) for i in range(trials)),
        )
    db.close()
    storage = RDBStorage(url)
    counted = storage.get_n_trials(storage.get_study_id_from_name("commits"))
    if counted != trials:
        raise RuntimeError(f"the SQLite study holds {counted} trials, not {trials}")
    return storage


def _time_optuna(storage: Any, repeats: int) -> tuple[float, float, tuple[float, float | None]]:
    """Median seconds of a whole trial and of ``tell``; mean bytes written per trial."""
    study = optuna.load_study(
        study_name="commits", storage=storage, sampler=optuna.samplers.RandomSampler(seed=7)
    )

    def one() -> tuple[float, float]:
        start = time.perf_counter()
        trial = study.ask()
        x = trial.suggest_float("x", DISTRIBUTION.low, DISTRIBUTION.high)
        middle = time.perf_counter()
        study.tell(trial, (x - 2) ** 2)
        end = time.perf_counter()
        return end - start, end - middle

    for _ in range(WARM_UP):
        one()
    before = _process_io()
    runs = [one() for _ in range(repeats)]
    per_trial = _per(before, _process_io(), repeats)
    return (
        statistics.median(run[0] for run in runs),
        statistics.median(run[1] for run in runs),
        per_trial,
    )


# --- servers -----------------------------------------------------------------------------------


@contextmanager
def _server(store_url: str) -> Iterator[tuple[int, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "dsxir.cli", "serve", "--store", store_url,
         "--listen", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("serving on "):
            raise RuntimeError(f"the server did not start: {line!r}")
        yield process.pid, line.split()[-1]
    finally:
        process.terminate()
        process.wait(60)


def _wal_reader(url: str) -> tuple[Callable[[], Counts], Callable[[], None]]:
    import psycopg

    connection = psycopg.connect(url, autocommit=True)

    def position() -> Counts:
        row = connection.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')").fetchone()
        assert row is not None
        return int(row[0]), None

    return position, connection.close


# --- the run -----------------------------------------------------------------------------------


def _label(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


def _print_table(rows: list[Row], sizes: tuple[int, ...], goal_bytes: int) -> None:
    top = _label(sizes[-1])
    head = f"{'store':<32}" + "".join(f"{_label(s) + ' ms':>10}" for s in sizes)
    head += f"{'growth':>9}{'B/commit@' + top:>16}{'pages@' + top:>12}  goals (growth, bytes)"
    print(head)
    for row in rows:
        times = [row["ms"].get(size) for size in sizes]
        line = f"{row['store']:<32}" + "".join(
            f"{t:>10.2f}" if t is not None else f"{'-':>10}" for t in times
        )
        growth = times[-1] / times[0] if times[0] and times[-1] is not None else None
        written, pages = row["bytes"] or (None, None)
        line += f"{growth:>8.2f}x" if growth is not None else f"{'-':>9}"
        line += f"{written:>16,.0f}" if written is not None else f"{'-':>16}"
        line += f"{pages:>12,.0f}" if pages is not None else f"{'-':>12}"
        verdicts = [
            "-" if growth is None else ("met" if growth <= GOAL_GROWTH else "missed"),
            "-" if written is None else ("met" if written <= goal_bytes else "missed"),
        ]
        print(line + "  " + ", ".join(verdicts), flush=True)


def main() -> int:
    """Measure every store at every size and print the table."""
    from pg_cluster import LocalCluster

    optuna.logging.set_verbosity(logging.WARNING)
    sizes, repeats = _sizes(), _repeats()
    load = os.getloadavg()
    print(
        f"commit one trial: {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"dsxir accelerator {'on' if accel.ACCELERATED else 'off'}; optuna {optuna.__version__}; "
        f"median of {repeats} commits per size",
        flush=True,
    )
    dsxir_rows: list[Row] = [
        {"store": "dsxir file put_delta", "ms": {}, "bytes": None},
        {"store": "dsxir postgres put_delta", "ms": {}, "bytes": None},
        {"store": "dsxir grpc (file) put_delta", "ms": {}, "bytes": None},
        {"store": "dsxir file put", "ms": {}, "bytes": None},
        {"store": "dsxir postgres put", "ms": {}, "bytes": None},
        {"store": "dsxir grpc (file) put", "ms": {}, "bytes": None},
    ]
    optuna_rows: list[Row] = [
        {"store": "optuna journal file (trial)", "ms": {}, "bytes": None},
        {"store": "optuna journal file (tell)", "ms": {}, "bytes": None},
        {"store": "optuna rdb sqlite (trial)", "ms": {}, "bytes": None},
        {"store": "optuna rdb sqlite (tell)", "ms": {}, "bytes": None},
    ]
    changed = 0
    cycles: dict[int, int] = {}
    reads: dict[int, tuple[float, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="dsxir-bench-commits-") as folder,
        LocalCluster() as cluster,
        _server(f"file:{folder}/served") as (server_pid, address),
    ):
        file_store = FileStore(f"{folder}/file")
        pg_store = open_store(cluster.url(schema="bench"))
        grpc_store = GrpcStore(address, timeout=300)
        wal, close_wal = _wal_reader(cluster.url())
        try:
            for size in sizes:
                began = time.perf_counter()
                base = trial_session(size, "commits")
                measured: tuple[tuple[Store, Callable[[], Counts]], ...] = (
                    (file_store, _process_io),
                    (pg_store, wal),
                    (grpc_store, lambda: _process_io(server_pid)),
                )
                cycle: int | None = None
                for row, (store, written) in zip(dsxir_rows[:3], measured, strict=True):
                    base.session_id = f"deltas-{size}"
                    seconds, per_commit, length, read = _time_deltas(store, base, written, cycle)
                    row["ms"][size] = seconds * 1e3
                    row["bytes"] = per_commit
                    cycle = cycles[size] = cycle or length
                    if read is not None:
                        reads[size] = read
                for row, (store, written) in zip(dsxir_rows[3:], measured, strict=True):
                    base.session_id = f"commits-{size}"
                    seconds, per_commit = _time_dsxir(store, base, repeats, written)
                    row["ms"][size] = seconds * 1e3
                    row["bytes"] = per_commit
                add_trial(base, size)
                changed = _changed_bytes(base)
                del base
                journal = _journal_study(f"{folder}/journal-{size}.log", size)
                whole, tell, per_trial = _time_optuna(journal, repeats)
                optuna_rows[0]["ms"][size], optuna_rows[1]["ms"][size] = whole * 1e3, tell * 1e3
                optuna_rows[0]["bytes"] = per_trial
                del journal
                rdb = _sqlite_study(f"{folder}/optuna-{size}.db", size)
                whole, tell, per_trial = _time_optuna(rdb, repeats)
                optuna_rows[2]["ms"][size], optuna_rows[3]["ms"][size] = whole * 1e3, tell * 1e3
                optuna_rows[2]["bytes"] = per_trial
                rdb.engine.dispose()
                print(f"  {size:,} trials measured in {time.perf_counter() - began:.1f} s",
                      flush=True)  # fmt: skip
        finally:
            close_wal()
            grpc_store.close()
            close_store(pg_store)
    goal_bytes = GOAL_FIXED_BYTES + changed
    print()
    _print_table(dsxir_rows + optuna_rows, sizes, goal_bytes)
    print(
        f"goals: growth ({_label(sizes[-1])} / {_label(sizes[0])}) <= {GOAL_GROWTH}x; bytes per "
        f"commit at {_label(sizes[-1])} <= 4 KiB + changed fields ({changed} B) = {goal_bytes:,} B"
    )
    print(
        "bytes: wchar of /proc/<pid>/io, what was passed to write (file: this process; grpc: "
        "the server, its replies included; optuna: this process, per whole trial); postgres: "
        "WAL bytes. pages: write_bytes, whole 4 KiB pages written to storage (at least one per "
        "synced append)"
    )
    top = sizes[-1]
    whole, full = reads[top]
    print(
        "get (file store, a new FileStore, median of "
        f"{GET_REPEATS}, in turn): "
        + ", ".join(
            f"{_label(size)}: {after * 1e3:.1f} ms without records, "
            f"{most * 1e3:.1f} ms with {cycles[size] - 1} records"
            for size, (after, most) in reads.items()
        )
        + f"; at {_label(top)}: {full / whole:.2f}x the file without records, goal <= "
        + f"{GOAL_GET_RATIO:.1f}x: "
        + ("met" if full <= GOAL_GET_RATIO * whole else "missed")
        + f"; {full * 1e3:.1f} ms against the {REFERENCE_GET_MS:.0f} ms reference: "
        + ("within" if full * 1e3 <= REFERENCE_GET_MS else "over")
    )
    print(
        "put_delta: one compaction cycle of the file store per size ("
        + ", ".join(f"{_label(size)}: {count} commits" for size, count in cycles.items())
        + "), as many commits on the other stores; time: median, bytes: mean"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
