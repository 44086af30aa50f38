"""Faults: the server killed with SIGKILL mid-commit, PostgreSQL restarted under a server."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from dsxir.errors import Conflict
from dsxir.optimizer_session import checkpoint
from dsxir.store.grpc import GrpcStore, Unavailable
from service_fixtures import (
    new_schema,
    shared_cluster,
    start_server_process,
    wait_until,
)
from store_util import check_generation_cp, generation_cp, make_cp

KILLS = 6
SESSIONS = 3


class Writer:
    """Commits generation after generation of one session until the server goes away."""

    def __init__(self, address: str, session_id: str, generation: int) -> None:
        self.session_id = session_id
        self.acked = generation  # the last generation the server confirmed
        self.client = GrpcStore(address, timeout=10)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                following = self.acked + 1
                cp = generation_cp(self.session_id, following)
                expected = self.acked or None
                assert self.client.put(cp, expected_generation=expected) == following
                self.acked = following
        except Unavailable:
            return  # the server died mid-call: that commit may or may not be in
        finally:
            self.client.close()


@pytest.mark.parametrize("kind", ["file", "postgres"])
def test_sigkill_mid_commit_then_restart(kind: str, tmp_path: Path) -> None:
    if kind == "file":
        url = f"file:{tmp_path / 'store'}"
    else:
        url = shared_cluster().url(schema=new_schema(), pool_timeout="3")
    rng = random.Random(5)
    server = start_server_process(url)
    address = server.address
    acked = dict.fromkeys((f"k{i}" for i in range(SESSIONS)), 0)
    total = 0
    for _ in range(KILLS):
        writers = [Writer(address, sid, generation) for sid, generation in acked.items()]
        time.sleep(rng.uniform(0.3, 0.8))
        server.kill()  # SIGKILL while the writers are committing
        for writer in writers:
            writer.thread.join(30)
            assert not writer.thread.is_alive()
        server = start_server_process(url, listen=address)
        reader = GrpcStore(address, timeout=30)
        for writer in writers:
            stored = reader.get(writer.session_id)
            # A complete committed generation: the last confirmed one, or the one
            # in flight when the server died; never anything torn or older.
            assert writer.acked <= stored.generation <= writer.acked + 1
            check_generation_cp(stored.checkpoint, stored.generation)
            total += stored.generation - acked[writer.session_id]
            acked[writer.session_id] = stored.generation
        reader.close()
    assert total > 3 * KILLS  # the writers did commit between the kills
    code, _ = server.terminate()
    assert code == 0


def test_postgres_restart_under_a_running_server() -> None:
    cluster = shared_cluster()
    server = start_server_process(cluster.url(schema=new_schema(), pool_timeout="2"))
    client = GrpcStore(server.address, timeout=20)
    cp = make_cp("pg")
    generation = client.put(cp)
    confirmed: list[str] = []

    def commit(name: str) -> None:
        nonlocal generation
        checkpoint.record_trial(cp, score=1.0, candidate_id=name)
        generation = client.put(cp, expected_generation=generation)
        confirmed.append(name)

    for i in range(5):
        commit(f"before-{i}")
    watch = client.watch("pg")
    events = iter(watch)
    assert next(events).kind == "initial"
    cluster.stop("fast")
    try:
        with pytest.raises(Unavailable):
            commit("during")
        with pytest.raises(Unavailable):
            client.get("pg")
        with pytest.raises(Unavailable):
            next(events)  # the commit feed was cut: the watcher is told, not left waiting
    finally:
        cluster.start()
    cp.progress.trial_log.pop()  # the refused trial: take it back and resume
    cp.progress.attempts -= 1
    cp.progress.completed -= 1
    deadline = time.monotonic() + 60
    while True:
        try:
            commit("after-0")
            break
        except Unavailable:
            assert time.monotonic() < deadline, "the server did not recover"
            cp.progress.trial_log.pop()
            cp.progress.attempts -= 1
            cp.progress.completed -= 1
            time.sleep(0.2)
        except Conflict:  # a commit sent just as the database came back went through
            raise AssertionError("a commit reported as failed was stored") from None
    for i in range(1, 5):
        commit(f"after-{i}")
    stored = client.get("pg")
    assert stored.generation == 1 + len(confirmed)
    log = [entry.candidate_id for entry in stored.checkpoint.progress.trial_log]
    assert log == confirmed  # every confirmed commit, once, in order; nothing else
    wait_until(lambda: bool(client.list()), 10, "listing after the restart")
    client.close()
    code, _ = server.terminate()
    assert code == 0
