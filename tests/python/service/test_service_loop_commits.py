"""Commits on the server's event loop (dsxir.service.inline), over a real server.

A delta the file store can append at once is committed on the loop; one
that would wait (a busy lock, a session the store must read, a compaction)
goes to a worker thread; slow commits on the loop send the next ones to the
workers for a pause that doubles while they stay slow.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta
from dsxir.service import CheckpointServer
from dsxir.service.inline import (
    FIRST_PAUSE_SECONDS,
    LAST_PAUSE_SECONDS,
    MEAN_COMMIT_SECONDS,
    SLOW_COMMIT_SECONDS,
    LoopCommits,
)
from dsxir.service.servicer import MAX_LOOP_COMMIT_BYTES
from dsxir.store import FileStore
from dsxir.store.grpc import GrpcStore
from service_fixtures import serve_in_thread
from store_util import make_cp, one_more

LOOP_THREAD = "dsxir-grpc"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_commit_pauses_commits_on_the_loop_and_the_pause_doubles_while_slow() -> None:
    clock = _Clock()
    gate = LoopCommits(clock)
    for _ in range(100):
        gate.took(SLOW_COMMIT_SECONDS / 10)
    assert gate.allowed() and gate.pause == 0
    gate.took(SLOW_COMMIT_SECONDS * 1.5)
    assert not gate.allowed() and gate.pause == FIRST_PAUSE_SECONDS
    clock.now += FIRST_PAUSE_SECONDS
    assert gate.allowed()
    pauses = []
    for _ in range(8):  # slow again as soon as each pause ends
        gate.took(SLOW_COMMIT_SECONDS * 1.5)
        pauses.append(gate.pause)
        clock.now += gate.pause
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert LAST_PAUSE_SECONDS == 8.0
    clock.now += 2 * LAST_PAUSE_SECONDS  # long after the last pause: a short one again
    gate.took(SLOW_COMMIT_SECONDS * 1.5)
    assert gate.pause == FIRST_PAUSE_SECONDS


def test_commits_slow_on_average_pause_too() -> None:
    gate = LoopCommits(_Clock())
    took = (MEAN_COMMIT_SECONDS + SLOW_COMMIT_SECONDS) / 2  # each under the slow limit
    commits = 0
    while gate.allowed() and commits < 200:
        gate.took(took)
        commits += 1
    assert not gate.allowed() and gate.pause == FIRST_PAUSE_SECONDS
    assert commits > 1  # the mean, not one commit


class _Watched(FileStore):
    """A file store noting on which thread each commit ran, and how."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.calls: list[tuple[str, str, int | None]] = []
        self.delay = 0.0

    def try_put_delta(self, delta: CheckpointDelta) -> int | None:
        done = super().try_put_delta(delta)
        if done is not None and self.delay:
            time.sleep(self.delay)
            self.delay = 0.0
        self.calls.append(("at once", threading.current_thread().name, done))
        return done

    def put_delta(self, delta: CheckpointDelta) -> int:
        done = super().put_delta(delta)
        self.calls.append(("waiting", threading.current_thread().name, done))
        return done


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[CheckpointServer, GrpcStore, _Watched]]:
    store = _Watched(tmp_path / "store")
    server = serve_in_thread(store)
    client = GrpcStore(server.address, timeout=60)
    yield server, client, store
    client.close()
    server.stop(1)


def _commit(client: GrpcStore, cp: Checkpoint, generation: int) -> tuple[Checkpoint, int]:
    new = one_more(cp)
    return new, client.put_delta(dl.diff(cp, new, base_generation=generation))


def test_a_delta_the_store_appends_at_once_is_committed_on_the_loop(served: Any) -> None:
    _, client, store = served
    cp = make_cp("s1", trials=2)
    generation = client.put(cp)
    for _ in range(6):
        cp, generation = _commit(client, cp, generation)
    assert generation == 7
    # The first delta after the create: the store must read the file, on a worker.
    assert store.calls[:2] == [
        ("at once", LOOP_THREAD, None),
        ("waiting", store.calls[1][1], 2),
    ]
    assert store.calls[1][1].startswith("dsxir-rpc")
    committed = [call for call in store.calls if call[2] is not None]
    assert [call[2] for call in committed] == [2, 3, 4, 5, 6, 7]
    on_loop = [call for call in committed if call[0] == "at once"]
    assert on_loop and all(call[1] == LOOP_THREAD for call in on_loop)
    assert all(call[1].startswith("dsxir-rpc") for call in committed if call[0] == "waiting")
    assert FileStore(store.path).get("s1").generation == 7


def test_a_busy_session_lock_never_holds_the_loop(served: Any) -> None:
    _, client, store = served
    cp = make_cp("s1", trials=2)
    generation = client.put(cp)
    cp, generation = _commit(client, cp, generation)  # remembered now
    client.put(make_cp("s2"))
    holder = os.open(os.path.join(store.path, ".lock.s1"), os.O_RDWR)
    outcome: list[object] = []
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another process's commit, say
        worker = threading.Thread(target=lambda: outcome.append(_commit(client, cp, generation)))
        worker.start()
        time.sleep(0.3)
        assert not outcome  # waiting for the lock, on a worker thread
        began = time.monotonic()
        for _ in range(5):
            assert client.get("s2").generation == 1  # the loop answers meanwhile
        assert time.monotonic() - began < 5
    finally:
        os.close(holder)
    worker.join(30)
    assert not worker.is_alive()
    [(_, committed)] = outcome  # type: ignore[misc]
    assert committed == generation + 1
    assert store.calls[-2:] == [
        ("at once", LOOP_THREAD, None),
        ("waiting", store.calls[-1][1], generation + 1),
    ]


def test_after_a_slow_commit_on_the_loop_commits_go_to_the_workers_for_a_pause(
    served: Any,
) -> None:
    server, client, store = served
    cp = make_cp("s1", trials=2)
    generation = client.put(cp)
    cp, generation = _commit(client, cp, generation)
    store.delay = SLOW_COMMIT_SECONDS * 1.5
    began = time.monotonic()
    cp, generation = _commit(client, cp, generation)  # on the loop, slow
    cp, generation = _commit(client, cp, generation)
    assert time.monotonic() - began < FIRST_PAUSE_SECONDS + SLOW_COMMIT_SECONDS * 1.5
    assert server.servicer.loop_commits.pause == FIRST_PAUSE_SECONDS
    slow, during = store.calls[-2:]
    assert slow == ("at once", LOOP_THREAD, generation - 1)
    assert during[0] == "waiting" and during[1].startswith("dsxir-rpc")
    time.sleep(FIRST_PAUSE_SECONDS)
    cp, generation = _commit(client, cp, generation)
    assert store.calls[-1] == ("at once", LOOP_THREAD, generation)


def test_a_delta_over_the_loop_limit_is_committed_on_a_worker(served: Any) -> None:
    _, client, store = served
    cp = make_cp("s1", trials=2, blob=os.urandom(200_000))  # records may reach 33 KB
    generation = client.put(cp)
    cp, generation = _commit(client, cp, generation)
    big = one_more(cp, sampler_blob=os.urandom(MAX_LOOP_COMMIT_BYTES))
    del store.calls[:]
    generation = client.put_delta(dl.diff(cp, big, base_generation=generation))
    [(how, thread, done)] = store.calls  # no try on the loop first
    assert (how, done) == ("waiting", generation) and thread.startswith("dsxir-rpc")
    cp, generation = _commit(client, big, generation)
    assert store.calls[-1] == ("at once", LOOP_THREAD, generation)
