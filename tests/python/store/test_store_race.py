"""Compare-and-swap across processes: 8 processes race on one generation, many rounds."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from dsxir.errors import Conflict
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.store import FileStore
from store_util import make_cp

PROCESSES = 8
ROUNDS = 40
INCREMENTS = 12
_context = multiprocessing.get_context("fork")


def _racer(path: str, worker: int, barrier: Barrier, results: Any) -> None:
    store = FileStore(path)
    for round_no in range(ROUNDS):
        barrier.wait()
        stored = store.get("race")  # every racer reads the same generation
        barrier.wait()
        cp = stored.checkpoint
        checkpoint.record_trial(cp, score=float(worker), candidate_id=f"r{round_no}-w{worker}")
        try:
            generation = store.put(cp, expected_generation=stored.generation)
        except Conflict as exc:
            results.put((round_no, worker, False, exc.actual))
        else:
            results.put((round_no, worker, True, generation))
        barrier.wait()


def test_exactly_one_process_wins_each_round(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put(make_cp("race"))
    barrier = _context.Barrier(PROCESSES)
    results = _context.Queue()
    workers = [
        _context.Process(target=_racer, args=(str(tmp_path), w, barrier, results))
        for w in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=60) for _ in range(PROCESSES * ROUNDS)]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    winners: dict[int, int] = {}
    for round_no, worker, won, generation in outcomes:
        assert generation == round_no + 2  # winners made it, losers saw the winner's commit
        if won:
            assert round_no not in winners, f"two winners in round {round_no}"
            winners[round_no] = worker
    assert sorted(winners) == list(range(ROUNDS))
    final = store.get("race")
    assert final.generation == ROUNDS + 1
    log = final.checkpoint.progress.trial_log
    assert [entry.candidate_id for entry in log] == [f"r{r}-w{winners[r]}" for r in range(ROUNDS)]


def _incrementer(path: str, worker: int, barrier: Barrier) -> None:
    store = FileStore(path)
    barrier.wait()
    done = 0
    while done < INCREMENTS:
        stored = store.get("counter")
        cp = stored.checkpoint
        checkpoint.record_trial(cp, score=None, candidate_id=f"w{worker}-{done}")
        try:
            store.put(cp, expected_generation=stored.generation)
        except Conflict:
            continue  # someone else committed first: read again and retry
        done += 1


def test_no_update_is_lost_under_contention(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put(make_cp("counter"))
    barrier = _context.Barrier(PROCESSES)
    workers = [
        _context.Process(target=_incrementer, args=(str(tmp_path), w, barrier))
        for w in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    final = store.get("counter")
    ids = [entry.candidate_id for entry in final.checkpoint.progress.trial_log]
    assert len(ids) == PROCESSES * INCREMENTS
    assert Counter(ids) == Counter(f"w{w}-{k}" for w in range(PROCESSES) for k in range(INCREMENTS))
    assert final.generation == PROCESSES * INCREMENTS + 1
    for w in range(PROCESSES):  # each process's own increments stay in order
        mine = [i for i in ids if i.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{k}" for k in range(INCREMENTS)]
