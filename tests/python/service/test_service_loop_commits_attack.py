"""Attacks on the commits a server makes on its event loop (dsxir.service.inline).

Another process on the store folder holds locks, plants things at the
store's names, swaps or rewrites session files; clients flood small deltas
and send ones the store refuses. The loop must keep answering, commit only
what ``put_delta`` commits, answer the stored generation, give back its call
slots and memory, and every commit must reach the watchers in order.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from dsxir.errors import Conflict, CorruptStore
from dsxir.optimizer_session import accel
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.service import CheckpointServer
from dsxir.service.inline import LAST_PAUSE_SECONDS
from dsxir.store import FileStore
from dsxir.store.grpc import GrpcStore, Unavailable, WatchEvent
from dsxir.store.grpc.protocol import SERVICE_NAME
from service_fixtures import serve_in_thread, wait_until
from store_util import make_cp, one_more

PUT_DELTA = f"/{SERVICE_NAME}/PutCheckpointDelta"
BIG_BLOB = 24_000_000 if accel.ACCELERATED else 3_000_000
"""A sampler blob that makes a session large (reading it back is slow without the C code)."""
LOOP_STALL = 2.0
"""A health check slower than this means the loop was held."""


class _Served:
    def __init__(self, folder: Path) -> None:
        self.store = FileStore(folder)
        self.server: CheckpointServer = serve_in_thread(self.store)
        self.client = GrpcStore(self.server.address, timeout=60)
        self.channel = grpc.insecure_channel(self.server.address)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def health_seconds(self, timeout: float = LOOP_STALL) -> float:
        """How long a health check takes; inf when not answered within ``timeout``."""
        began = time.monotonic()
        try:
            reply = self.health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=timeout
            )
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc
            return float("inf")
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        return time.monotonic() - began

    def remembered(self, session_id: str, **kw: object) -> tuple[Checkpoint, int]:
        """A session created and given one delta: the store holds it in memory now."""
        cp = make_cp(session_id, trials=2, **kw)  # type: ignore[arg-type]
        generation = self.client.put(cp)
        return _commit(self.client, cp, generation)

    def no_leak(self) -> None:
        """Every call slot and all the memory budget given back (waiting for stragglers)."""
        limits = self.server.limits
        wait_until(
            lambda: limits.calls.held == 0 and limits.memory.used == 0, 5, "slots given back"
        )

    def close(self) -> None:
        self.channel.close()
        self.client.close()
        self.server.stop(1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[_Served]:
    served = _Served(tmp_path / "store")
    yield served
    served.close()


def _commit(client: GrpcStore, cp: Checkpoint, generation: int) -> tuple[Checkpoint, int]:
    """``cp`` with one more trial, committed as a delta on ``generation``."""
    new = Checkpoint()
    new.CopyFrom(cp)  # not encoded and decoded again: cheap for a large session
    ck.record_trial(new, score=0.1 * len(new.progress.trial_log))
    return new, client.put_delta(dl.diff(cp, new, base_generation=generation))


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """``work`` started on a thread; its result (or exception) lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


class _Process:
    """A Python child process running ``code``; it prints one line when ready."""

    def __init__(self, code: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.first = self.process.stdout.readline().strip()

    def line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def finish(self) -> None:
        """Close its stdin (it lets go of what it holds) and reap it."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)
        assert self.process.stdout is not None
        self.process.stdout.close()


_HOLD = r"""
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | (os.O_DIRECTORY if sys.argv[2] == "dir" else 0))
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""

# Waits until some process holds the session's lock (read in /proc/locks, never
# taken), then renames a FIFO over the session's file: between the server's look
# at the file and its open for the append.
_SWAP_FOR_FIFO = r"""
import os, sys, time
folder, sid = sys.argv[1], sys.argv[2]
ino = os.stat(os.path.join(folder, ".lock." + sid)).st_ino
print("ready", flush=True)
deadline = time.monotonic() + 10
while True:
    with open("/proc/locks") as f:
        rows = [line.split() for line in f]
    if any(row[1] == "FLOCK" and row[5].endswith(":%d" % ino) for row in rows):
        break
    if time.monotonic() > deadline:  # the commit came and went between two looks
        print("missed", flush=True)
        sys.exit()
fifo = os.path.join(folder, ".fifo." + sid)
os.mkfifo(fifo, 0o600)
os.rename(fifo, os.path.join(folder, sid + ".dsxckpt"))
print("swapped", flush=True)
"""


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="needs /proc/locks")
def test_a_session_file_swapped_for_a_fifo_mid_commit_never_holds_the_loop(
    served: _Served,
) -> None:
    latencies = []
    for attempt in range(6):  # the swap races the commit: it lands in the window most times
        session_id = f"f{attempt}"
        cp, generation = served.remembered(session_id, blob=os.urandom(8_000_000))
        while not served.server.servicer.loop_commits.allowed():
            time.sleep(0.05)
        attacker = _Process(_SWAP_FOR_FIFO, served.store.path, session_id)
        assert attacker.first == "ready"
        thread, outcome = _in_thread(functools.partial(_commit, served.client, cp, generation))
        if attacker.line() == "missed":
            attacker.finish()
            thread.join(30)
            continue
        latencies.append(served.health_seconds())
        fifo = os.path.join(served.store.path, session_id + ".dsxckpt")
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets a blocked open go on
        try:
            thread.join(30)
        finally:
            os.close(reader)
        attacker.finish()
        assert not thread.is_alive()
        [failed] = outcome
        # Nothing is committed into what is not the session's file.
        assert isinstance(failed, (CorruptStore, Unavailable)), failed
        if latencies[-1] >= LOOP_STALL:
            break
    served.no_leak()
    if not latencies:
        pytest.skip("the swap never fell while a commit held the lock")
    assert max(latencies) < LOOP_STALL, latencies


def test_another_process_holding_the_session_lock_never_holds_the_loop(
    served: _Served,
) -> None:
    cp, generation = served.remembered("s1")
    holder = _Process(_HOLD, os.path.join(served.store.path, ".lock.s1"), "file")
    assert holder.first == "held"
    try:
        thread, outcome = _in_thread(lambda: _commit(served.client, cp, generation))
        time.sleep(0.3)
        assert not outcome  # waiting for the lock, not on the loop
        assert max(served.health_seconds() for _ in range(5)) < 1
        assert served.client.get("s1").generation == generation
    finally:
        holder.finish()
    thread.join(30)
    [done] = outcome
    assert isinstance(done, tuple), done
    new, committed = done
    assert committed == generation + 1
    stored = FileStore(served.store.path).get("s1")
    assert (stored.generation, ck.encode(stored.checkpoint)) == (committed, ck.encode(new))
    served.no_leak()


def test_a_fifo_at_the_lock_name_while_another_process_holds_the_folder_lock(
    served: _Served,
) -> None:
    cp, generation = served.remembered("s1")
    lock = os.path.join(served.store.path, ".lock.s1")
    os.unlink(lock)
    os.mkfifo(lock, 0o600)  # must be removed under the folder lock, which is busy
    holder = _Process(_HOLD, served.store.path, "dir")
    assert holder.first == "held"
    try:
        thread, outcome = _in_thread(lambda: _commit(served.client, cp, generation))
        time.sleep(0.3)
        assert not outcome
        assert max(served.health_seconds() for _ in range(5)) < 1
    finally:
        holder.finish()
    thread.join(30)
    [done] = outcome
    assert isinstance(done, tuple), done
    committed = done[1]
    assert committed == generation + 1
    assert Path(lock).is_file()
    cp, generation = _commit(served.client, *_latest(served, "s1"))  # and on the loop again
    assert FileStore(served.store.path).get("s1").generation == generation == committed + 1
    served.no_leak()


def _latest(served: _Served, session_id: str) -> tuple[Checkpoint, int]:
    stored = served.client.get(session_id)
    return stored.checkpoint, stored.generation


def test_things_planted_at_the_temporary_name_are_removed_never_followed(
    served: _Served, tmp_path: Path
) -> None:
    cp, generation = served.remembered("s1")
    temp = os.path.join(served.store.path, ".tmp.s1")
    outside = tmp_path / "outside"
    outside.write_bytes(b"not the store's")
    plants: list[Callable[[], None]] = [
        lambda: os.mkfifo(temp, 0o600),
        lambda: os.symlink(outside, temp),
        lambda: os.mkdir(temp),
    ]
    for plant in plants:
        plant()
        began = time.monotonic()
        cp, generation = _commit(served.client, cp, generation)
        assert time.monotonic() - began < 1
        assert not os.path.lexists(temp)
    assert outside.read_bytes() == b"not the store's"
    os.mkdir(temp)
    (Path(temp) / "kept").write_bytes(b"someone's")
    before = Path(served.store.file_path("s1")).read_bytes()
    with pytest.raises(CorruptStore):
        _commit(served.client, cp, generation)
    assert (Path(temp) / "kept").read_bytes() == b"someone's"
    assert Path(served.store.file_path("s1")).read_bytes() == before  # nothing committed
    assert served.health_seconds() < 1
    served.no_leak()


_COMMIT_ELSEWHERE = r"""
import sys
from dsxir.optimizer_session import accel
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.store import FileStore
folder, how, generation, old, new = sys.argv[1:]
store = FileStore(folder)
old_cp = ck.decode(open(old, "rb").read())
new_cp = ck.decode(open(new, "rb").read())
if how == "put":
    done = store.put(new_cp, expected_generation=int(generation))
else:
    done = store.put_delta(dl.diff(old_cp, new_cp, base_generation=int(generation)))
print(done, flush=True)
"""


@pytest.mark.parametrize("how", ["put", "put_delta"])
def test_another_process_committing_is_seen_before_any_commit_on_the_loop(
    served: _Served, tmp_path: Path, how: str
) -> None:
    cp, generation = served.remembered("s1")
    cp, generation = _commit(served.client, cp, generation)  # on the loop
    theirs = one_more(cp, candidate_id="theirs")
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(ck.encode(cp))
    new.write_bytes(ck.encode(theirs))
    other = _Process(_COMMIT_ELSEWHERE, served.store.path, how, str(generation), str(old), str(new))
    assert other.first == str(generation + 1)
    other.finish()
    with pytest.raises(Conflict) as refused:  # the remembered state is stale: never used
        _commit(served.client, cp, generation)
    assert refused.value.actual == generation + 1
    assert served.client.get("s1").generation == generation + 1
    mine, committed = _commit(served.client, theirs, generation + 1)
    assert committed == generation + 2
    mine, committed = _commit(served.client, mine, committed)  # on the loop again
    stored = FileStore(served.store.path).get("s1")
    assert (stored.generation, ck.encode(stored.checkpoint)) == (committed, ck.encode(mine))
    served.no_leak()


def test_a_session_file_rewritten_with_the_same_bytes_is_read_again(served: _Served) -> None:
    cp, generation = served.remembered("s1")
    path = served.store.file_path("s1")
    copy = path + ".copy"
    Path(copy).write_bytes(Path(path).read_bytes())
    os.rename(copy, path)  # another inode: the store reads it before committing
    cp, generation = _commit(served.client, cp, generation)
    cp, generation = _commit(served.client, cp, generation)
    stored = FileStore(served.store.path).get("s1")
    assert (stored.generation, ck.encode(stored.checkpoint)) == (generation, ck.encode(cp))
    served.no_leak()


def _refusals(served: _Served, cp: Checkpoint, generation: int) -> list[tuple[str, str]]:
    """What the server answers to deltas ``put_delta`` refuses, as (type, message)."""
    other = ck.decode(ck.encode(cp))
    other.optimizer = "another.Opt"
    newer = one_more(cp)
    deltas = [
        dl.diff(cp, newer, base_generation=generation - 1),  # stale
        dl.diff(cp, newer, base_generation=generation + 1),  # ahead
        dl.diff(cp, other, base_generation=generation),  # another optimizer
    ]
    answers = []
    for delta in deltas:
        with pytest.raises(Exception) as refused:
            served.client.put_delta(delta)
        answers.append((type(refused.value).__name__, str(refused.value)))
    raw: Any = served.channel.unary_unary(PUT_DELTA)
    for junk in (b"\xff" * 100, b"\x0a\x05abc", b"\x0a" + b"\x80" * 9 + b"\x01"):
        with pytest.raises(grpc.RpcError) as failed:
            raw(junk, timeout=10)
        answers.append((str(failed.value.code()), failed.value.details() or ""))
    return answers


def test_refusals_on_the_loop_are_the_workers_and_change_nothing(tmp_path: Path) -> None:
    on_loop, on_workers = _Served(tmp_path / "a"), _Served(tmp_path / "b")
    try:
        for _ in range(6):  # commits go to the workers for the longest pause
            on_workers.server.servicer.loop_commits.took(1.0)
        assert on_workers.server.servicer.loop_commits.pause == LAST_PAUSE_SECONDS
        answers = []
        for served in (on_loop, on_workers):
            cp, generation = served.remembered("s1")
            before = Path(served.store.file_path("s1")).read_bytes()
            answers.append(_refusals(served, cp, generation))
            assert Path(served.store.file_path("s1")).read_bytes() == before
            assert served.client.get("s1").generation == generation
            _, done = _commit(served.client, cp, generation)  # the same delta twice:
            with pytest.raises(Conflict):
                _commit(served.client, cp, generation)  # committed once
            assert FileStore(served.store.path).get("s1").generation == done == generation + 1
            served.no_leak()
        assert answers[0] == answers[1]
        assert [kind for kind, _ in answers[0]][:3] == ["Conflict", "Conflict", "IllegalHistory"]
    finally:
        on_loop.close()
        on_workers.close()


def _watch_all(served: _Served, session_id: str, last: int) -> list[WatchEvent]:
    """Every event of ``session_id`` up to generation ``last`` (a watch in a thread)."""
    events: list[WatchEvent] = []
    for event in served.client.watch(session_id, checkpoints=True):
        events.append(event)
        if event.generation >= last:
            break
    return events


def test_a_flood_of_small_deltas_keeps_the_loop_answering_and_watchers_see_every_commit(
    served: _Served,
) -> None:
    commits = 40
    sessions = [f"w{i}" for i in range(3)]
    starts = {sid: served.remembered(sid) for sid in sessions}
    watchers = {
        sid: _in_thread(functools.partial(_watch_all, served, sid, starts[sid][1] + commits))
        for sid in sessions
    }
    time.sleep(0.3)  # the watches are open

    def flood(session_id: str) -> Checkpoint:
        cp, generation = starts[session_id]
        for i in range(commits):
            if i % 5 == 4:  # a whole checkpoint now and then: on a worker, under the stripe
                new = one_more(cp)
                generation = served.client.put(new, expected_generation=generation)
                cp = new
            else:
                cp, generation = _commit(served.client, cp, generation)
        return cp

    writers = {sid: _in_thread(functools.partial(flood, sid)) for sid in sessions}
    reader, _ = _in_thread(lambda: [served.client.list() for _ in range(30)])
    latencies = []
    while any(thread.is_alive() for thread, _ in writers.values()):
        latencies.append(served.health_seconds())
        time.sleep(0.01)
    reader.join(60)
    assert max(latencies) < 1, max(latencies)
    for sid in sessions:
        thread, outcome = writers[sid]
        thread.join(60)
        [final] = outcome
        assert isinstance(final, Checkpoint), final
        first = starts[sid][1]
        watch, seen = watchers[sid]
        watch.join(60)
        [events] = seen
        assert isinstance(events, list), events
        assert events[0].kind == "initial"
        committed = [e for e in events if e.kind == "committed"]
        assert [e.generation for e in committed] == list(range(first + 1, first + commits + 1))
        assert committed[-1].checkpoint is not None
        assert ck.encode(committed[-1].checkpoint) == ck.encode(final)
        stored = FileStore(served.store.path).get(sid)
        assert stored.generation == first + commits
        assert ck.encode(stored.checkpoint) == ck.encode(final)
    served.no_leak()


def test_racing_writers_on_one_session_commit_each_generation_once(served: _Served) -> None:
    cp, generation = served.remembered("s1")
    start = generation
    won: list[int] = []
    lock = threading.Lock()

    def race() -> None:
        for _ in range(60):
            stored = served.client.get("s1")
            with contextlib.suppress(Conflict):
                _, done = _commit(served.client, stored.checkpoint, stored.generation)
                with lock:
                    won.append(done)

    threads = [_in_thread(race)[0] for _ in range(4)]
    for thread in threads:
        thread.join(120)
    assert sorted(won) == list(range(start + 1, start + len(won) + 1))  # no generation twice
    stored = FileStore(served.store.path).get("s1")
    assert stored.generation == start + len(won)
    assert len(stored.checkpoint.progress.trial_log) == len(cp.progress.trial_log) + len(won)
    served.no_leak()


def test_commits_on_a_large_session_hold_the_loop_briefly(served: _Served) -> None:
    cp, generation = served.remembered("big", blob=os.urandom(BIG_BLOB))
    thread, outcome = _in_thread(
        lambda: [cp_gen for cp_gen in _commits(served.client, cp, generation, 15)]
    )
    latencies = []
    while thread.is_alive():
        latencies.append(served.health_seconds())
    thread.join()
    [done] = outcome
    assert isinstance(done, list) and done[-1][1] == generation + 15
    assert max(latencies) < 0.5, max(latencies)
    served.no_leak()


def _commits(
    client: GrpcStore, cp: Checkpoint, generation: int, count: int
) -> Iterator[tuple[Checkpoint, int]]:
    for _ in range(count):
        cp, generation = _commit(client, cp, generation)
        yield cp, generation
