"""The file store against other local users, stuck locks, planted files and big folders."""

from __future__ import annotations

import fcntl
import inspect
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dsxir.errors import CorruptStore, NotFound, StoreUnavailable
from dsxir.optimizer_session import checkpoint
from dsxir.store import FileStore, framing, open_store
from dsxir.store import file as file_store
from dsxir.store.file import (
    DEFAULT_LOCK_TIMEOUT,
    FolderModeWarning,
    LockTimeout,
)
from dsxir.store.summary import encode_summary
from store_util import make_cp

_T = TypeVar("_T")


def _within(seconds: float, action: Callable[[], _T]) -> _T:
    """Run ``action`` in a thread; fail (never hang) when it takes longer than ``seconds``."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", action()))
        except BaseException as exc:  # handed back to the test
            outcome.append(("raised", exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"blocked for more than {seconds} s")
    kind, value = outcome[0]
    if kind == "raised":
        raise value
    result: _T = value
    return result


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """No umask, so that every mode seen is the one the store asked for."""
    old = os.umask(0)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- file modes -------------------------------------------------------------------


def test_folder_is_0700_and_every_file_0600(tmp_path: Path, umask_zero: None) -> None:
    folder = tmp_path / "store"
    store = FileStore(folder)
    seen: dict[str, int] = {}
    real_commit = store._commit

    def commit(session_id: str, data: bytes) -> None:
        # While committing, the lock file exists; the temp file is made inside.
        seen["lock"] = _mode(folder / f".lock.{session_id}")
        real_replace = os.replace

        def spy(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            seen["temp"] = _mode(Path(src))
            real_replace(src, dst, *args, **kwargs)

        os.replace = spy  # type: ignore[assignment]
        try:
            real_commit(session_id, data)
        finally:
            os.replace = real_replace  # type: ignore[assignment]

    store._commit = commit  # type: ignore[method-assign]
    store.put(make_cp("s1"))
    assert _mode(folder) == 0o700
    assert seen == {"lock": 0o600, "temp": 0o600}
    assert _mode(folder / "s1.dsxckpt") == 0o600
    assert _mode(folder / ".lock.s1") == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another local user")
def test_another_local_user_can_neither_read_nor_lock() -> None:
    # Outside pytest's folders (0700), which would keep others out on their own.
    base = Path(tempfile.mkdtemp(prefix="dsxir-modes-"))
    try:
        os.chmod(base, 0o755)
        _probe_as_nobody(base / "store")
    finally:
        shutil.rmtree(base)


def _probe_as_nobody(folder: Path) -> None:
    FileStore(folder).put(make_cp("s1"))
    probe = (
        "import os, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        os.close(os.open(name, os.O_RDONLY | os.O_NONBLOCK))\n"
        "    except PermissionError:\n"
        "        continue\n"
        "    print('opened', name)\n"
    )
    targets = [str(folder / "s1.dsxckpt"), str(folder / ".lock.s1"), str(folder)]
    done = subprocess.run(
        [sys.executable, "-c", probe, *targets], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_an_existing_open_folder_works_and_warns_once(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o755)
    with pytest.warns(FolderModeWarning) as caught:
        store = FileStore(folder)
    (warning,) = caught
    text = str(warning.message)
    assert str(folder) in text and "0755" in text and f"chmod 700 {folder}" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process and folder: never again
        FileStore(folder)
        store.put(make_cp("s1"))
        assert store.get("s1").generation == 1
        assert _mode(folder) == 0o755  # left as it is: the owner decides
        assert _mode(folder / "s1.dsxckpt") == 0o600


def test_a_folder_that_opens_up_later_is_reported_on_commit(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    store = FileStore(folder)  # not there yet: nothing to say
    folder.mkdir()
    os.chmod(folder, 0o750)
    with pytest.warns(FolderModeWarning, match="0750"):
        store.put(make_cp("s1"))


def test_a_lock_file_of_an_older_version_is_narrowed(tmp_path: Path, umask_zero: None) -> None:
    store = FileStore(tmp_path)
    cp = make_cp("s1")
    store.put(cp)
    os.chmod(tmp_path / ".lock.s1", 0o644)
    os.chmod(tmp_path / "s1.dsxckpt", 0o644)
    store.put(cp, expected_generation=1)
    assert _mode(tmp_path / ".lock.s1") == 0o600
    assert _mode(tmp_path / "s1.dsxckpt") == 0o600


# --- lock timeout -----------------------------------------------------------------


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A session ``s1`` whose lock another process holds, opened read-only, until the end."""
    FileStore(tmp_path).put(make_cp("s1"))
    lock = tmp_path / ".lock.s1"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(600)\n",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    yield lock, holder
    holder.kill()
    holder.wait()


def test_a_lock_held_forever_times_out_with_a_clear_error(
    tmp_path: Path, held_lock: tuple[Path, subprocess.Popen[str]]
) -> None:
    lock, holder = held_lock
    store = FileStore(tmp_path, lock_timeout=0.5)
    cp = store.get("s1").checkpoint
    checkpoint.record_trial(cp, score=1.0)
    started = time.monotonic()
    with pytest.raises(LockTimeout) as info:
        _within(20, lambda: store.put(cp, expected_generation=1))
    assert 0.4 < time.monotonic() - started < 10
    error = info.value
    assert isinstance(error, StoreUnavailable)
    assert error.path == str(lock) and error.timeout == 0.5
    assert str(lock) in str(error) and "0.5 s" in str(error) and "nothing was changed" in str(error)
    if os.path.exists("/proc/locks"):
        assert error.holder == holder.pid and f"held by process {holder.pid}" in str(error)
    with pytest.raises(LockTimeout):
        _within(20, lambda: store.delete("s1"))
    assert store.get("s1").generation == 1  # nothing changed
    holder.kill()
    holder.wait()
    assert store.put(cp, expected_generation=1) == 2  # the lock is free again


def test_the_lock_timeout_is_configurable_and_checked(tmp_path: Path) -> None:
    assert DEFAULT_LOCK_TIMEOUT == 30.0
    assert FileStore(tmp_path).lock_timeout == 30.0
    assert FileStore(tmp_path, lock_timeout=2).lock_timeout == 2.0
    assert FileStore(tmp_path, lock_timeout=0).lock_timeout == 0.0
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lock_timeout"):
            FileStore(tmp_path, lock_timeout=bad)
    for wrong in ("5", True, None):
        with pytest.raises(TypeError, match="lock_timeout"):
            FileStore(tmp_path, lock_timeout=wrong)  # type: ignore[arg-type]


def test_the_lock_timeout_in_a_store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("file:rel/dir?lock_timeout=2.5")
    assert isinstance(relative, FileStore)
    assert (relative.path, relative.lock_timeout) == (str(tmp_path / "rel" / "dir"), 2.5)
    absolute = open_store(f"file://{tmp_path}/a%20b?lock_timeout=0")
    assert isinstance(absolute, FileStore)
    assert (absolute.path, absolute.lock_timeout) == (str(tmp_path / "a b"), 0.0)
    question = open_store(f"file://{tmp_path}/what%3F")
    assert isinstance(question, FileStore) and question.path == str(tmp_path / "what?")
    for url in (
        "file:x?lock_timeout=-1",
        "file:x?lock_timeout=nan",
        "file:x?lock_timeout=soon",
        "file:x?lock_timeout=1&lock_timeout=2",
        "file:x?other=1",
        "file:x?junk",
        "file:?lock_timeout=1",
        f"file://{tmp_path}/x?mode=777",
    ):
        with pytest.raises(ValueError, match="store URL"):
            open_store(url)


def test_a_waiting_commit_gets_the_lock_when_it_is_released(tmp_path: Path) -> None:
    store = FileStore(tmp_path, lock_timeout=20)
    cp = make_cp("s1")
    store.put(cp)
    fd = os.open(tmp_path / ".lock.s1", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.3, os.close, args=(fd,)).start()
    started = time.monotonic()
    assert _within(20, lambda: store.put(cp, expected_generation=1)) == 2
    assert 0.25 < time.monotonic() - started < 5


# --- planted files ----------------------------------------------------------------


def test_a_fifo_in_place_of_a_session_file_never_blocks(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put(make_cp("good"))
    fifo = tmp_path / "s1.dsxckpt"
    os.mkfifo(fifo)
    try:
        for action in (
            lambda: store.get("s1"),
            lambda: store.put(make_cp("s1")),
            lambda: store.put(make_cp("s1"), expected_generation=1),
            lambda: store.list(),
            lambda: store.list_page(limit=5),
        ):
            with pytest.raises(CorruptStore) as info:
                _within(10, action)
            assert info.value.path == str(fifo)
            assert "not a regular file (a FIFO)" in str(info.value)
        damaged: list[CorruptStore] = []
        listed = _within(10, lambda: store.list(on_damage=damaged.append))
        assert [item.session_id for item in listed] == ["good"]
        assert [exc.path for exc in damaged] == [str(fifo)]
        _within(10, lambda: store.delete("s1"))
        assert not os.path.lexists(fifo)
        assert store.put(make_cp("s1")) == 1
    finally:
        _release_fifo_readers(fifo)


def test_a_fifo_swapped_in_after_the_check_never_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name is a regular file when looked at, a FIFO when opened.
    store = FileStore(tmp_path)
    store.put(make_cp("s1"))
    fifo = tmp_path / "s1.dsxckpt"
    real_lstat = os.lstat

    def swapping_lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        found = real_lstat(path, *args, **kwargs)
        if str(path) == str(fifo) and stat.S_ISREG(found.st_mode):
            os.unlink(fifo)
            os.mkfifo(fifo)
        return found

    monkeypatch.setattr(file_store.os, "lstat", swapping_lstat)
    try:
        with pytest.raises(CorruptStore, match="not a regular file"):
            _within(10, lambda: store.get("s1"))
    finally:
        monkeypatch.undo()
        _release_fifo_readers(fifo)


def _release_fifo_readers(fifo: Path) -> None:
    """Unblock a reader stuck on ``fifo`` (only a regression leaves one)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader is waiting, or the FIFO is gone
    os.close(fd)


@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "fifo", "empty folder"])
def test_a_planted_lock_file_never_stops_delete_or_put(tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"not the store's")
    folder = tmp_path / "store"
    store = FileStore(folder, lock_timeout=5)
    store.put(make_cp("s1"))
    lock = folder / ".lock.s1"
    lock.unlink()
    if kind == "symlink":
        lock.symlink_to(outside)
    elif kind == "dangling symlink":
        lock.symlink_to(tmp_path / "nowhere")
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    _within(20, lambda: store.delete("s1"))
    with pytest.raises(NotFound):
        store.get("s1")
    assert not os.path.lexists(lock)
    assert outside.read_bytes() == b"not the store's"  # never followed
    assert not (tmp_path / "nowhere").exists()
    # and a commit works over a planted lock as well
    os.symlink(outside, lock)
    assert _within(20, lambda: store.put(make_cp("s1"))) == 1
    assert stat.S_ISREG(os.lstat(lock).st_mode) and _mode(lock) == 0o600
    assert outside.read_bytes() == b"not the store's"


def test_a_planted_lock_folder_that_is_not_empty_is_reported(tmp_path: Path) -> None:
    store = FileStore(tmp_path, lock_timeout=5)
    lock = tmp_path / ".lock.s1"
    lock.mkdir()
    (lock / "x").write_text("x")
    with pytest.raises(CorruptStore) as info:
        _within(20, lambda: store.put(make_cp("s1")))
    assert info.value.path == str(lock) and "a folder" in str(info.value)


def test_opening_a_store_cleans_around_planted_lock_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put(make_cp("s1"))
    (tmp_path / ".tmp.gone").write_bytes(b"half a commit")
    os.symlink(tmp_path / "nowhere", tmp_path / ".lock.gone")
    assert _within(20, store.clean_stale_files) == 1
    assert sorted(os.listdir(tmp_path)) == [".lock.s1", "s1.dsxckpt"]


# --- list_page --------------------------------------------------------------------


def _fill(folder: Path, count: int, *, optimizer: Callable[[int], str] | None = None) -> list[str]:
    """``count`` committed sessions written straight into ``folder`` (fast: no fsync)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    cp = make_cp("x", trials=2)
    ids = []
    for i in range(count):
        cp.session_id = f"s{i:05d}"
        cp.optimizer = optimizer(i) if optimizer else "test.Opt"
        data = framing.frame(1, encode_summary(cp), checkpoint.encode(cp))
        (folder / f"{cp.session_id}.dsxckpt").write_bytes(data)
        ids.append(cp.session_id)
    return ids


@pytest.fixture
def read_count(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of every store file opened from now on."""
    opened: list[str] = []
    real = file_store._open_store_file

    def counting(path: str) -> Any:
        opened.append(path)
        return real(path)

    monkeypatch.setattr(file_store, "_open_store_file", counting)
    return opened


def test_a_page_reads_about_limit_summaries_not_all(tmp_path: Path, read_count: list[str]) -> None:
    ids = _fill(tmp_path, 2000)
    store = FileStore(tmp_path)
    read_count.clear()
    first = store.list_page(limit=50)
    assert [item.session_id for item in first] == ids[:50]
    assert len(read_count) == 50
    read_count.clear()
    middle = store.list_page(after=ids[999], limit=100)
    assert [item.session_id for item in middle] == ids[1000:1100]
    assert len(read_count) == 100
    read_count.clear()
    last = store.list_page(after=ids[-3], limit=100)
    assert [item.session_id for item in last] == ids[-2:]
    assert len(read_count) == 2
    read_count.clear()
    assert store.list_page(after=ids[-1], limit=100) == []
    assert store.list_page(limit=0) == []
    assert read_count == []


def test_pages_add_up_to_the_listing(tmp_path: Path) -> None:
    _fill(tmp_path, 257, optimizer=lambda i: "even.Opt" if i % 2 == 0 else "odd.Opt")
    store = FileStore(tmp_path)
    for filters in ({}, {"optimizer": "odd.Opt"}, {"status": "running", "optimizer": "even.Opt"}):
        pages: list[str] = []
        after = None
        while True:
            page = store.list_page(**filters, after=after, limit=20)  # type: ignore[arg-type]
            pages.extend(item.session_id for item in page)
            if len(page) < 20:
                break
            after = page[-1].session_id
        assert pages == [item.session_id for item in store.list(**filters)]  # type: ignore[arg-type]
    assert store.list_page(status="completed", limit=5) == []


def test_a_filtered_page_stops_at_limit_matches(tmp_path: Path, read_count: list[str]) -> None:
    _fill(tmp_path, 1000, optimizer=lambda i: "rare.Opt" if i % 100 == 0 else "test.Opt")
    store = FileStore(tmp_path)
    read_count.clear()
    page = store.list_page(optimizer="rare.Opt", limit=3)
    assert [item.session_id for item in page] == ["s00000", "s00100", "s00200"]
    assert len(read_count) == 201  # up to the third match, not the whole folder


def test_pages_follow_utf8_byte_order(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    ids = ["z", "é", "a", "\U0001f600", "\uffe0", "A b"]
    for session_id in ids:
        store.put(make_cp(session_id))
    by_bytes = sorted(ids, key=lambda s: s.encode())
    assert [item.session_id for item in store.list()] == by_bytes
    for i, after in enumerate(by_bytes):
        assert [x.session_id for x in store.list_page(after=after)] == by_bytes[i + 1 :]
    # ``after`` need not be a stored id, nor a valid one
    assert [x.session_id for x in store.list_page(after="b", limit=2)] == by_bytes[2:4]
    assert [x.session_id for x in store.list_page(after="\x00", limit=1)] == by_bytes[:1]


def test_a_damaged_file_in_a_page_is_reported_or_raised(tmp_path: Path) -> None:
    _fill(tmp_path, 30)
    store = FileStore(tmp_path)
    (tmp_path / "s00012.dsxckpt").write_bytes(b"torn")
    with pytest.raises(CorruptStore, match="s00012"):
        store.list_page(after="s00010", limit=5)
    assert len(store.list_page(limit=10)) == 10  # the damage lies beyond this page
    damaged: list[CorruptStore] = []
    page = store.list_page(after="s00010", limit=5, on_damage=damaged.append)
    assert [item.session_id for item in page] == ["s00011", "s00013", "s00014", "s00015", "s00016"]
    assert [exc.path for exc in damaged] == [str(tmp_path / "s00012.dsxckpt")]


def test_list_page_refuses_bad_arguments(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    with pytest.raises(ValueError, match="limit"):
        store.list_page(limit=-1)
    with pytest.raises(TypeError, match="limit"):
        store.list_page(limit=True)
    with pytest.raises(TypeError, match="after"):
        store.list_page(after=b"s1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown status"):
        store.list_page(status="done")


def test_list_page_takes_what_the_service_passes() -> None:
    # python/dsxir/service/servicer.py calls list_page with these keywords.
    params = inspect.signature(FileStore.list_page).parameters
    for name in ("status", "optimizer", "updated_since", "after", "limit", "on_damage"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[name].default is None
