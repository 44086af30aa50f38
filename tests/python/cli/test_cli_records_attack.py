"""``dsxir-checkpoint`` on hostile appendable store files, as a user runs it.

Every command runs in a child process with a timeout: a clear one-line error
and a documented non-zero exit for damage, never a traceback, never a hang.
The files are made with the store and then changed by hand, as an outsider
with access to the folder would.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from dsxir.cli.exits import Exit
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.grammar import sealed
from dsxir.optimizer_session.v1.checkpoint_pb2 import SESSION_STATUS_PAUSED, Checkpoint
from dsxir.store import framing, records
from dsxir.store.file import FileStore
from dsxir.store.summary import encode_summary
from store_util import append_empty_records, make_cp

SESSION = "s1"
PREFIX = "dsxir-checkpoint: error: "


def _cli(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    """Run the command line; its exit code, stdout and stderr (a hang fails at ``timeout``)."""
    done = subprocess.run(
        [sys.executable, "-m", "dsxir.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def _refused(code: int, err: str, expected: int, *names: str) -> None:
    """A refusal: the expected exit and one line per damaged session, each naming it."""
    assert code == expected, (code, err)
    lines = err.strip().splitlines()
    assert lines and all(line.startswith(PREFIX) for line in lines), err
    for name in names:
        assert any(name in line for line in lines), (name, err)


def _next(cp: Checkpoint) -> Checkpoint:
    new = Checkpoint()
    new.CopyFrom(cp)
    checkpoint.record_trial(new, score=0.5)
    return new


def _store(folder: Path) -> tuple[FileStore, Checkpoint, int]:
    """A session with a snapshot and two records: the store, its checkpoint, its generation."""
    store = FileStore(folder)
    cp = make_cp(SESSION, trials=1)
    generation = store.put(cp)
    for _ in range(2):
        new = _next(cp)
        generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
        cp = new
    return store, cp, generation


def _head(generation: int, summary_length: int, delta_length: int, payload_crc: int) -> bytes:
    head = struct.pack(
        ">4sQIII", records.RECORD_MAGIC, generation, summary_length, delta_length, payload_crc
    )
    return head + struct.pack(">I", framing.crc32c(head))


def _url(folder: Path) -> str:
    return f"file:{folder}"


# --- planted things at a session file's name --------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "folder", "folder-with-file", "symlink"])
def test_a_thing_at_the_session_file_name(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "store"
    store, _, _ = _store(folder)
    path = Path(store.file_path(SESSION))
    outside = tmp_path / "elsewhere.dsxckpt"
    os.replace(path, outside)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        path.symlink_to(outside)
    else:
        path.mkdir()
        if kind == "folder-with-file":
            (path / "inside").write_bytes(b"x")
    url = _url(folder)
    for args in (("show", "--store", url, SESSION), ("pause", "--store", url, SESSION)):
        code, _, err = _cli(*args)
        _refused(code, err, Exit.CORRUPT_STORE, str(path))
    code, _, err = _cli("ls", "--store", url)
    _refused(code, err, Exit.CORRUPT_STORE, str(path))
    assert path.is_symlink() or kind != "symlink"  # refused, never removed or followed


# --- damaged records -------------------------------------------------------------------------


def _lying(cp: Checkpoint, generation: int, lie: str) -> bytes:
    """A record after ``cp`` at ``generation`` whose checksums hold but whose content lies."""
    new = _next(cp)
    delta = dl.diff(cp, new, base_generation=generation)
    summary = encode_summary(new)
    record_generation = generation + 1
    if lie == "delta-on-another-base":
        delta.base_generation = generation - 1
    elif lie == "another-session":
        delta.head.session_id = "s2"
    elif lie == "trial-count-regresses":
        delta.base_trials -= 1
    elif lie == "summary-lies":
        summary = encode_summary(_next(new))
    elif lie == "record-generation-skips":
        record_generation += 1
    else:  # pragma: no cover - the parameters below
        raise AssertionError(lie)
    data = sealed(delta.SerializeToString(deterministic=True), delta=True)
    return records.record(record_generation, summary, data)


LIES = [
    "another-session",
    "delta-on-another-base",
    "record-generation-skips",
    "summary-lies",
    "trial-count-regresses",
]


@pytest.mark.parametrize("lie", LIES)
def test_a_record_that_lies_is_refused_by_every_command(tmp_path: Path, lie: str) -> None:
    folder = tmp_path / "store"
    store, cp, generation = _store(folder)
    path = Path(store.file_path(SESSION))
    with open(path, "ab") as handle:
        handle.write(_lying(cp, generation, lie))
    before = path.read_bytes()
    url = _url(folder)
    for args in (
        ("show", "--store", url, SESSION),
        ("json", "--store", url, SESSION),
        ("history", "--store", url, SESSION),
        ("export", "--store", url, SESSION),
        ("pause", "--store", url, SESSION),
        ("cancel", "--store", url, SESSION),
    ):
        code, _, err = _cli(*args)
        _refused(code, err, Exit.CORRUPT_STORE, str(path))
    # the file given as a TARGET: damage (5) or a refused delta (3), never a checkpoint
    for args in (("show", str(path)), ("json", str(path)), ("diff", str(path), str(path))):
        code, _, err = _cli(*args)
        assert code in (Exit.CORRUPT_STORE, Exit.INVALID_CHECKPOINT), (args, code, err)
        _refused(code, err, code, str(path))
    code, out, err = _cli("validate", str(path))
    assert code == Exit.FOUND_PROBLEMS and str(path) in out + err
    assert path.read_bytes() == before  # pause and cancel wrote nothing


@pytest.mark.parametrize(
    ("summary_length", "delta_length", "torn"),
    [
        (framing.MAX_SUMMARY_BYTES, framing.MAX_BODY_BYTES, True),
        (0xFFFFFFFF, 0xFFFFFFFF, False),
    ],
)
def test_a_record_header_at_the_limits(
    tmp_path: Path, summary_length: int, delta_length: int, torn: bool
) -> None:
    folder = tmp_path / "store"
    store, _, generation = _store(folder)
    path = Path(store.file_path(SESSION))
    with open(path, "ab") as handle:
        handle.write(_head(generation + 1, summary_length, delta_length, 0) + b"\0" * 64)
    url = _url(folder)
    code, out, err = _cli("show", "--json", "--store", url, SESSION)
    if torn:  # never acknowledged: the session reads as the records before it
        assert code == 0, err
        assert json.loads(out)["generation"] == generation
        code, out, err = _cli("pause", "--store", url, SESSION)
        assert code == 0, err  # the next commit cuts the torn tail off
        assert FileStore(folder).get(SESSION).generation == generation + 1
    else:
        _refused(code, err, Exit.CORRUPT_STORE, "over_limits")
        code, _, err = _cli("show", str(path))
        _refused(code, err, Exit.CORRUPT_STORE, "over_limits")


def test_gigabytes_of_sparse_zeros_after_a_store_file(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store, _, _ = _store(folder)
    path = store.file_path(SESSION)
    os.truncate(path, os.path.getsize(path) + (4 << 30))
    url = _url(folder)
    for args in (("show", "--store", url, SESSION), ("ls", "--store", url)):
        code, _, err = _cli(*args, timeout=20)
        _refused(code, err, Exit.CORRUPT_STORE, path, "header damaged")
    code, _, err = _cli("show", path, timeout=20)  # refused by its size, nothing read
    _refused(code, err, Exit.INVALID_CHECKPOINT, "over the limit")


def test_many_tiny_records_are_read_and_listed(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store = FileStore(folder)
    cp = make_cp(SESSION, trials=2)
    store.put(cp)
    count = 50_000
    append_empty_records(store.file_path(SESSION), cp, count)
    url = _url(folder)
    code, out, err = _cli("ls", "--json", "--store", url)
    assert code == 0, err
    assert [row["generation"] for row in json.loads(out)] == [count + 1]
    code, out, err = _cli("show", "--json", "--store", url, SESSION)
    assert code == 0, err
    assert json.loads(out)["generation"] == count + 1
    code, _, err = _cli("pause", "--store", url, SESSION)
    assert code == 0, err
    paused = FileStore(folder).get(SESSION)
    assert paused.generation == count + 2 and paused.checkpoint.status == SESSION_STATUS_PAUSED


# --- generations at the edges of the frame's range ----------------------------------------------


@pytest.mark.parametrize("generation", [0, (1 << 64) - 1])
def test_pause_of_a_session_at_an_edge_generation_is_a_clear_refusal(
    tmp_path: Path, generation: int
) -> None:
    folder = tmp_path / "store"
    store = FileStore(folder)
    cp = make_cp(SESSION, trials=1)
    store.put(cp)
    Path(store.file_path(SESSION)).write_bytes(
        framing.frame(generation, encode_summary(cp), checkpoint.encode(cp), appendable=True)
    )
    code, out, err = _cli("show", "--json", "--store", _url(folder), SESSION)
    assert code == 0 and json.loads(out)["generation"] == generation
    code, _, err = _cli("pause", "--store", _url(folder), SESSION)
    assert code not in (0, Exit.INTERNAL_ERROR), err
    _refused(code, err, code, SESSION)


# --- a reader while a writer commits deltas and compacts ----------------------------------------

_WRITER = """
import sys
from dsxir.optimizer_session import checkpoint, delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import SESSION_STATUS_PAUSED, Checkpoint
from dsxir.store.file import FileStore

store = FileStore(sys.argv[1])
for i in range(int(sys.argv[2])):
    stored = store.get("s1")
    new = Checkpoint()
    new.CopyFrom(stored.checkpoint)
    checkpoint.record_trial(new, score=0.5, candidate_id=f"c{i}")
    new.sampler_blob = str(i).encode() * 700  # records of a few KiB: compactions now and then
    store.put_delta(dl.diff(stored.checkpoint, new, base_generation=stored.generation))
"""


def test_show_while_a_writer_commits_and_compacts(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    FileStore(folder).put(make_cp(SESSION, trials=1))
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    commits = 400
    writer = subprocess.Popen([sys.executable, str(script), str(folder), str(commits)])
    seen = []
    try:
        while writer.poll() is None:
            code, out, err = _cli("show", "--json", "--store", _url(folder), SESSION)
            assert code == 0, err
            shown = json.loads(out)
            seen.append(shown["generation"])
        assert writer.wait(timeout=60) == 0
    finally:
        writer.kill()
    assert seen == sorted(seen) and len(seen) > 1
    code, out, err = _cli("show", "--json", "--store", _url(folder), SESSION)
    assert code == 0 and json.loads(out)["generation"] == commits + 1
