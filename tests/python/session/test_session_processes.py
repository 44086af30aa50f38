"""The session runner with real worker processes (``session_worker.py``) on a shared store.

A second worker is refused while the first holds the lease; a SIGKILLed
worker's session is taken over once its lease has expired and finishes with
the same trial log as an uninterrupted run; a stopped worker whose session
was taken over meanwhile commits nothing when it wakes; SIGTERM and SIGINT
commit a pause; an ended session is refused.
"""

from __future__ import annotations

import datetime as _dt
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import session_worker as worker

from dsxir.errors import LeaseHeld
from dsxir.store import MemoryStore, Store, close_store, open_store

WORKER = Path(worker.__file__).resolve()
TRIALS = 30
SESSION = "w1"


@pytest.fixture(params=["file", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty store that worker processes share."""
    if request.param == "file":
        return f"file:{tmp_path / 'store'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def reader(url: str) -> Iterator[Store]:
    """The test's own handle on the workers' store."""
    store = open_store(url)
    yield store
    close_store(store)


def command(url: str, *extra: str) -> list[str]:
    return [sys.executable, str(WORKER), "--store", url, "--session", SESSION, *extra]


def start(url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(url, "--trials", str(TRIALS), *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_trial(process: subprocess.Popen[str], index: int) -> None:
    """Read the worker's output until it has committed trial ``index``."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == f"trial {index}":
            return
    _, err = process.communicate(timeout=10)
    pytest.fail(f"worker ended (exit {process.returncode}) before trial {index}: {err}")


def finish(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(url, "--trials", str(TRIALS), *extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def log_of(store: Store) -> list[bytes]:
    log = store.get(SESSION).checkpoint.progress.trial_log
    return [entry.SerializeToString(deterministic=True) for entry in log]


def reference_log() -> list[bytes]:
    """The trial log of an uninterrupted run of the same seeded loop, in memory."""
    store = MemoryStore()
    with worker.open_it(store, SESSION, handle_signals=False) as session:
        worker.run(session, TRIALS)
    return log_of(store)


def holder_of(process: subprocess.Popen[str]) -> str:
    return f"{socket.gethostname()}:{process.pid}"


def test_a_second_worker_is_refused_before_its_first_trial(url: str, reader: Store) -> None:
    first = start(url, "--delay", "0.2")
    try:
        wait_for_trial(first, 0)
        before = reader.get_lease(SESSION)
        second = finish(url)
        after = reader.get_lease(SESSION)
        assert before is not None and after is not None
        assert before.holder == after.holder == holder_of(first)
        assert second.returncode == 5, second.stderr
        assert second.stdout == ""  # refused before it opened the session
        named = re.search(r"is held by '([^']*)' until (\S+);", second.stderr)
        assert named is not None, second.stderr
        assert named.group(1) == holder_of(first)
        until = _dt.datetime.fromisoformat(named.group(2))
        slack = _dt.timedelta(milliseconds=1)  # the message shows milliseconds
        assert before.expires_at - slack <= until <= after.expires_at
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
    stored = reader.get(SESSION).checkpoint
    assert first.returncode == 128 + signal.SIGTERM
    assert reader.get_lease(SESSION) is None
    assert len(stored.progress.trial_log) < TRIALS


def test_a_killed_workers_session_is_taken_over_and_finished(url: str, reader: Store) -> None:
    first = start(url, "--delay", "0.03", "--ttl", "1")
    wait_for_trial(first, 9)
    first.kill()
    first.wait(10)
    committed = log_of(reader)
    assert len(committed) >= 10
    held = reader.get_lease(SESSION)
    assert held is not None and held.holder == holder_of(first)
    left = held.expires_at.timestamp() - time.time()
    if left > 0.3:  # the dead worker's lease still runs (for long enough to try): a worker waits
        with pytest.raises(LeaseHeld) as refused:
            worker.open_it(reader, SESSION, handle_signals=False)
        assert refused.value.holder == holder_of(first)
    while not held.expired():
        time.sleep(held.expires_at.timestamp() - time.time() + 0.01)
    second = finish(url, "--ttl", "1")
    assert second.returncode == 0, second.stderr
    assert f"open created=False resumed=True trials={len(committed)}" in second.stdout
    final = log_of(reader)
    assert final[: len(committed)] == committed  # nothing committed was lost or rewritten
    assert final == reference_log()  # nothing repeated, nothing skipped
    assert reader.get_lease(SESSION) is None


def test_a_worker_woken_after_a_takeover_commits_nothing(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'store'}"
    store = open_store(url)
    first = start(url, "--delay", "0.3", "--ttl", "1")
    try:
        wait_for_trial(first, 1)
        first.send_signal(signal.SIGSTOP)  # frozen: its heartbeat stops too
        held = store.get_lease(SESSION)
        assert held is not None
        while not held.expired():
            time.sleep(held.expires_at.timestamp() - time.time() + 0.01)
        second = finish(url, "--ttl", "1")
        assert second.returncode == 0, second.stderr
        finished = store.get(SESSION)
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=30)
    assert first.returncode in (6, 7), err  # LeaseLost, or Conflict when it committed first
    after = store.get(SESSION)
    assert after.generation == finished.generation
    assert log_of(store) == reference_log()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_commits_a_pause_before_the_worker_exits(tmp_path: Path, signum: int) -> None:
    url = f"file:{tmp_path / 'store'}"
    process = start(url, "--delay", "0.05")
    wait_for_trial(process, 4)
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 128 + signum, err
    assert f"interrupted {signum}" in out
    store = open_store(url)
    stored = store.get(SESSION)
    assert stored.checkpoint.status == 2  # paused
    later = [int(line.split()[1]) for line in out.splitlines() if line.startswith("trial ")]
    last_trial = max([4, *later])
    assert len(stored.checkpoint.progress.trial_log) == last_trial + 1
    assert store.get_lease(SESSION) is None
    again = finish(url)  # a paused session resumes and finishes like an uninterrupted run
    assert again.returncode == 0, again.stderr
    assert log_of(store) == reference_log()


def test_an_ended_session_is_refused_and_its_lease_released(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'store'}"
    assert finish(url).returncode == 0
    again = finish(url)
    assert again.returncode == 4
    assert 'session "w1" is already terminal: status=completed' in again.stderr
    store = open_store(url)
    assert store.get_lease(SESSION) is None
    mismatch = finish(url, "--optimizer", "tests.Other")
    assert mismatch.returncode == 4  # the terminal status is checked first
    assert store.get_lease(SESSION) is None
