"""File-store leases: real processes, the lease file on disk, and hostile things at its name."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from dsxir.errors import CorruptStore, LeaseHeld, LeaseLost
from dsxir.store import FileStore, Lease
from dsxir.store.file import MAX_LEASE_FILE_BYTES, LockTimeout

_context = multiprocessing.get_context("spawn")

_HOLD = """
import sys, time
from dsxir.store import FileStore
store = FileStore(sys.argv[1])
lease = store.acquire_lease("s1", sys.argv[2], ttl=float(sys.argv[3]))
print(lease.token, lease.expires_at.isoformat(), flush=True)
time.sleep(60)
"""

_RENEW = """
import datetime, sys
from dsxir.errors import LeaseLost
from dsxir.store import FileStore, Lease
store = FileStore(sys.argv[1])
lease = Lease("s1", "x", sys.argv[2], datetime.datetime.now(datetime.timezone.utc))
try:
    print(store.renew_lease(lease, ttl=30).holder)
except LeaseLost as exc:
    print("lost:", exc)
    sys.exit(3)
"""


def _holder_process(folder: Path, holder: str, ttl: float) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(folder), holder, str(ttl)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline().split()
    assert len(line) == 2, "the child did not acquire its lease"
    return child, line[0]


def _lease_path(folder: Path) -> Path:
    return folder / ".lease.s1"


def test_a_lease_held_by_another_process_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    child, token = _holder_process(folder, "worker-a", 30)
    try:
        store = FileStore(folder)
        with pytest.raises(LeaseHeld) as info:
            store.acquire_lease("s1", "worker-b", ttl=30)
        assert info.value.holder == "worker-a"
        shown = store.get_lease("s1")
        assert shown is not None and shown.holder == "worker-a"
        renewed = subprocess.run(
            [sys.executable, "-c", _RENEW, str(folder), token],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert renewed.returncode == 0 and renewed.stdout.strip() == "worker-a"
    finally:
        child.kill()
        child.wait()


def test_a_killed_holders_lease_expires_and_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    child, token = _holder_process(folder, "doomed", 1.0)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    store = FileStore(folder)
    with pytest.raises(LeaseHeld):
        store.acquire_lease("s1", "heir", ttl=30)
    time.sleep(1.1)
    assert store.acquire_lease("s1", "heir", ttl=30).holder == "heir"
    renewed = subprocess.run(
        [sys.executable, "-c", _RENEW, str(folder), token],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert renewed.returncode == 3
    assert "heir" in renewed.stdout


def _racer(folder: str, worker: int, barrier: Barrier, results: Any) -> None:
    store = FileStore(folder)
    for round_no in range(10):
        barrier.wait(60)
        try:
            lease = store.acquire_lease(f"r{round_no}", f"w{worker}", ttl=60)
        except LeaseHeld as exc:
            results.put((round_no, worker, exc.holder))
        else:
            results.put((round_no, worker, lease.holder))


def test_processes_racing_for_a_lease_one_wins_each_time(tmp_path: Path) -> None:
    workers = 4
    barrier = _context.Barrier(workers)
    results = _context.Queue()
    processes = [
        _context.Process(target=_racer, args=(str(tmp_path / "store"), w, barrier, results))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in range(workers * 10)]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    for round_no in range(10):
        holders = {holder for r, _, holder in outcomes if r == round_no}
        assert len(holders) == 1, f"round {round_no}: {holders}"  # everyone saw the one winner


# --- the lease file ---------------------------------------------------------------


def test_the_lease_file_is_private_and_goes_with_release_and_delete(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = FileStore(tmp_path / "store")
        lease = store.acquire_lease("s1", "h", ttl=30)
    finally:
        os.umask(old)
    path = _lease_path(tmp_path / "store")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    held = json.loads(path.read_text())
    assert held == {
        "format": "dsxir.store.lease/v1",
        "session_id": "s1",
        "holder": "h",
        "token": lease.token,
        "expires_at_us": held["expires_at_us"],
    }
    assert sorted(os.listdir(tmp_path / "store")) == [".lease.s1"]  # no lock file left
    store.release_lease(lease)
    assert not path.exists()
    store.acquire_lease("s1", "h", ttl=30)
    store.delete("s1")
    assert os.listdir(tmp_path / "store") == []


def test_a_stale_lease_temporary_file_is_cleaned(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.acquire_lease("s1", "h", ttl=30)
    (tmp_path / ".lease-tmp.s1").write_bytes(b"half a lease")
    (tmp_path / ".lease-tmp.gone").write_bytes(b"")
    assert store.clean_stale_files() == 2
    assert sorted(os.listdir(tmp_path)) == [".lease.s1"]
    assert store.get_lease("s1") is not None


def _valid(path: Path, **changes: object) -> bytes:
    held = json.loads(path.read_bytes())
    held.update(changes)
    return json.dumps(held).encode()


@pytest.mark.parametrize(
    "damage",
    [
        "garbage",
        "empty",
        "not_an_object",
        "other_session",
        "bad_token",
        "bool_expiry",
        "extra_key",
        "control_in_holder",
        "deep_nesting",
        "too_big",
        "huge_sparse",
    ],
)
def test_a_damaged_lease_file_is_no_lease(tmp_path: Path, damage: str) -> None:
    store = FileStore(tmp_path)
    store.acquire_lease("s1", "h", ttl=3600)
    path = _lease_path(tmp_path)
    contents = {
        "garbage": b"\x00\xff garbage",
        "empty": b"",
        "not_an_object": b"[1, 2]",
        "other_session": _valid(path, session_id="s2"),
        "bad_token": _valid(path, token="XYZ"),
        "bool_expiry": _valid(path, expires_at_us=True),
        "extra_key": _valid(path, more=1),
        "control_in_holder": _valid(path, holder="a\nb"),
        "deep_nesting": b"[" * 4000,
        "too_big": b" " * (MAX_LEASE_FILE_BYTES + 1),
    }
    if damage == "huge_sparse":
        with open(path, "r+b") as handle:
            handle.truncate(1 << 40)  # a terabyte of nothing: never read
    else:
        path.write_bytes(contents[damage])
    assert store.get_lease("s1") is None
    lease = store.acquire_lease("s1", "new", ttl=30)  # replaced
    assert store.get_lease("s1") == Lease("s1", "new", "", lease.expires_at)
    assert path.stat().st_size < MAX_LEASE_FILE_BYTES


def test_a_renew_over_a_damaged_lease_file_is_lost(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    lease = store.acquire_lease("s1", "h", ttl=30)
    _lease_path(tmp_path).write_bytes(b"{}")
    with pytest.raises(LeaseLost):
        store.renew_lease(lease, ttl=30)
    store.release_lease(lease)  # nothing happens, no error


def test_a_fifo_at_the_lease_name_never_blocks(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    os.mkfifo(_lease_path(tmp_path), 0o600)
    done: list[object] = []

    def run() -> None:
        done.append(store.get_lease("s1"))
        done.append(store.acquire_lease("s1", "h", ttl=30).holder)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "blocked on a FIFO"
    assert done == [None, "h"]
    assert stat.S_ISREG(os.lstat(_lease_path(tmp_path)).st_mode)


def test_a_symlink_at_the_lease_name_is_never_followed(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir(mode=0o700)
    target = tmp_path / "victim"
    target.write_text("keep me")
    other = FileStore(tmp_path / "elsewhere")
    other.acquire_lease("s1", "elsewhere", ttl=3600)
    store = FileStore(folder)
    for pointee in (target, _lease_path(tmp_path / "elsewhere")):
        _lease_path(folder).unlink(missing_ok=True)
        _lease_path(folder).symlink_to(pointee)
        assert store.get_lease("s1") is None  # a link is no lease, even to a valid one
    store.acquire_lease("s1", "h", ttl=30)
    assert target.read_text() == "keep me"
    assert not _lease_path(folder).is_symlink()
    assert other.get_lease("s1") is not None


def test_a_folder_at_the_lease_name(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    _lease_path(tmp_path).mkdir()
    assert store.get_lease("s1") is None
    assert store.acquire_lease("s1", "h", ttl=30).holder == "h"  # an empty one is replaced
    store.delete("s1")
    _lease_path(tmp_path).mkdir()
    (_lease_path(tmp_path) / "inside").write_text("x")
    with pytest.raises(CorruptStore, match="folder"):
        store.acquire_lease("s1", "h", ttl=30)
    assert store.get_lease("s1") is None


def test_the_expiry_is_on_the_local_clock(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    lease = store.acquire_lease("s1", "h", ttl=10)
    held = json.loads(_lease_path(tmp_path).read_bytes())
    expires = dt.datetime.fromtimestamp(held["expires_at_us"] / 1e6, dt.timezone.utc)
    assert abs(expires - lease.expires_at) < dt.timedelta(milliseconds=1)
    now = dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(seconds=9) < lease.expires_at - now <= dt.timedelta(seconds=10)


def test_lease_methods_wait_for_the_session_lock_at_most_lock_timeout(tmp_path: Path) -> None:
    store = FileStore(tmp_path, lock_timeout=0.2)
    lease = store.acquire_lease("s1", "h", ttl=30)
    fd = os.open(tmp_path / ".lock.s1", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another open file: a conflicting lock
        for call in (
            lambda: store.acquire_lease("s2", "h", ttl=30),  # another session: no wait
            lambda: store.get_lease("s1"),  # takes no lock
        ):
            call()
        for blocked in (
            lambda: store.acquire_lease("s1", "h2", ttl=30),
            lambda: store.renew_lease(lease, ttl=30),
            lambda: store.release_lease(lease),
        ):
            started = time.monotonic()
            with pytest.raises(LockTimeout):
                blocked()
            assert time.monotonic() - started < 5
    finally:
        os.close(fd)
    assert store.renew_lease(lease, ttl=30).token == lease.token
