"""Compare-and-swap across processes, on every store that processes can share.

Worker processes open the same store by URL and race to commit on one
generation, many rounds: exactly one wins each round, and under contention
no trial is lost and none is recorded twice. The file store races on one
machine; PostgreSQL and the service (over a file and a PostgreSQL store)
across connections, as separate machines would.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from dsxir.errors import Conflict
from dsxir.optimizer_session import checkpoint
from dsxir.store import close_store, open_store
from store_util import make_cp

WORKERS = 6
ROUNDS = 40
INCREMENTS = 10
_context = multiprocessing.get_context("spawn")


@pytest.fixture(params=["file", "postgres", "grpc-file", "grpc-postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    kind: str = request.param
    if kind == "file":
        yield f"file:{tmp_path / 'store'}"
        return
    from service_fixtures import backend, pg_url_of_new_schema, serve_in_thread

    if kind == "postgres":
        yield pg_url_of_new_schema(pool_max="2")
        return
    server = serve_in_thread(backend(kind.removeprefix("grpc-"), tmp_path))
    yield f"grpc://{server.address}"
    server.stop(1)


def _racer(url: str, worker: int, barrier: Barrier, results: Any) -> None:
    store = open_store(url)
    for round_no in range(ROUNDS):
        barrier.wait(60)
        stored = store.get("race")  # every racer resumes from the same generation
        barrier.wait(60)
        cp = stored.checkpoint
        checkpoint.record_trial(cp, score=float(worker), candidate_id=f"r{round_no}-w{worker}")
        try:
            generation = store.put(cp, expected_generation=stored.generation)
        except Conflict as exc:
            results.put((round_no, worker, False, exc.actual))
        else:
            results.put((round_no, worker, True, generation))
        barrier.wait(60)
    close_store(store)


def test_exactly_one_worker_wins_each_generation(store_url: str) -> None:
    store = open_store(store_url)
    store.put(make_cp("race"))
    barrier = _context.Barrier(WORKERS)
    results = _context.Queue()
    workers = [
        _context.Process(target=_racer, args=(store_url, w, barrier, results))
        for w in range(WORKERS)
    ]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=120) for _ in range(WORKERS * ROUNDS)]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    winners: dict[int, int] = {}
    for round_no, worker, won, generation in outcomes:
        assert generation == round_no + 2  # the winner made it; losers saw it
        if won:
            assert round_no not in winners, f"two winners in round {round_no}"
            winners[round_no] = worker
    assert sorted(winners) == list(range(ROUNDS))
    final = store.get("race")
    assert final.generation == ROUNDS + 1
    assert [entry.candidate_id for entry in final.checkpoint.progress.trial_log] == [
        f"r{r}-w{winners[r]}" for r in range(ROUNDS)
    ]
    close_store(store)


def _incrementer(url: str, worker: int, barrier: Barrier) -> None:
    store = open_store(url)
    barrier.wait(60)
    done = 0
    while done < INCREMENTS:
        stored = store.get("counter")
        cp = stored.checkpoint
        checkpoint.record_trial(cp, score=None, candidate_id=f"w{worker}-{done}")
        try:
            store.put(cp, expected_generation=stored.generation)
        except Conflict:
            continue  # another worker committed first: resume from it
        done += 1
    close_store(store)


def test_no_trial_is_lost_or_recorded_twice(store_url: str) -> None:
    store = open_store(store_url)
    store.put(make_cp("counter"))
    barrier = _context.Barrier(WORKERS)
    workers = [
        _context.Process(target=_incrementer, args=(store_url, w, barrier)) for w in range(WORKERS)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=180)
        assert process.exitcode == 0
    final = store.get("counter")
    ids = [entry.candidate_id for entry in final.checkpoint.progress.trial_log]
    assert Counter(ids) == Counter(f"w{w}-{k}" for w in range(WORKERS) for k in range(INCREMENTS))
    assert final.generation == WORKERS * INCREMENTS + 1
    for w in range(WORKERS):  # each worker's own trials stay in order
        assert [i for i in ids if i.startswith(f"w{w}-")] == [
            f"w{w}-{k}" for k in range(INCREMENTS)
        ]
    close_store(store)
