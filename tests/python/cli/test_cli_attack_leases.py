"""Attacks on ``ls``, ``show``, ``delete`` and ``fork`` through planted lease files.

A file store folder gets, beside real sessions, everything a hostile or
broken neighbour could leave at the lease names: a FIFO, links to
``/dev/zero`` and to another session's lease, a folder holding files, a
huge garbage file, a lease whose holder is made of format characters, and a
folder at a lease's temporary name. Every command answers (no hang, no
traceback), escapes the holder, and ``delete`` works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dsxir.cli.exits import Exit
from dsxir.store import FileStore
from store_util import make_cp

SCRIPT = Path(sys.executable).parent / "dsxir-checkpoint"
HOSTILE_HOLDER = "\u202eevil\u2028x\u200b" + "é" * 100


def run(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: run make setup"
    done = subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in {int(code) for code in Exit} and done.returncode != 70, done.stderr
    return done


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A store folder of sessions s0..s6, each with something hostile at its lease name."""
    folder = tmp_path / "store"
    store = FileStore(folder)
    for i in range(7):
        store.put(make_cp(f"s{i}"))
    os.mkfifo(folder / ".lease.s0")
    os.symlink("/dev/zero", folder / ".lease.s1")
    (folder / ".lease.s2").mkdir()
    (folder / ".lease.s2" / "x").write_bytes(b"")
    (folder / ".lease.s3").write_bytes(b"\x00\xff" * 100_000)
    store.acquire_lease("s4", "h", ttl=30)
    os.symlink(folder / ".lease.s4", folder / ".lease.s5")  # another session's lease
    store.acquire_lease("s6", "h", ttl=1)
    held = json.loads((folder / ".lease.s6").read_bytes())
    held["holder"] = HOSTILE_HOLDER
    held["expires_at_us"] = 1  # expired in 1970: stale
    (folder / ".lease.s6").write_text(json.dumps(held))
    (folder / ".lease-tmp.s0").mkdir()
    return folder


def _raw_unsafe(text: str) -> bool:
    return any(char in text for char in "\u202e\u2028\u200b\x1b")


def test_ls_and_show_answer_over_planted_lease_files(planted: Path) -> None:
    url = f"file:{planted}"
    table = run("ls", "--store", url)
    assert table.returncode == Exit.OK, table.stderr
    assert not _raw_unsafe(table.stdout)
    assert "\\u202e" in table.stdout and "stale" in table.stdout
    listing = run("ls", "--json", "--store", url)
    assert listing.returncode == Exit.OK
    rows = {row["session_id"]: row for row in json.loads(listing.stdout)}
    assert set(rows) == {f"s{i}" for i in range(7)}
    for damaged in ("s0", "s1", "s2", "s3", "s5"):  # no lease: the status stands
        assert rows[damaged]["lease"] is None and rows[damaged]["status"] == "running"
    assert rows["s4"]["lease"]["holder"] == "h" and not rows["s4"]["stale"]
    assert rows["s6"]["stale"] and rows["s6"]["lease"]["holder"] == HOSTILE_HOLDER
    assert not _raw_unsafe(listing.stdout)
    shown = run("show", "--store", url, "s6")
    assert shown.returncode == Exit.OK
    assert "stale" in shown.stdout and "\\u2028" in shown.stdout
    assert not _raw_unsafe(shown.stdout)


def test_delete_works_past_a_folder_at_the_lease_temporary_name(planted: Path) -> None:
    done = run("delete", "--store", f"file:{planted}", "--yes", "s0")
    assert done.returncode == Exit.OK, done.stderr  # was exit 6: "Is a directory"
    names = set(os.listdir(planted))
    assert "s0.dsxckpt" not in names and ".lease-tmp.s0" not in names


def test_delete_of_a_folder_at_the_session_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir(mode=0o700)
    (folder / "s1.dsxckpt").mkdir()
    (folder / "s1.dsxckpt" / "x").write_bytes(b"")
    full = run("delete", "--store", f"file:{folder}", "--yes", "s1")
    assert full.returncode == Exit.CORRUPT_STORE, full.stderr  # was 6, an I/O error
    assert "is a folder holding files" in full.stderr
    (folder / "s1.dsxckpt" / "x").unlink()
    empty = run("delete", "--store", f"file:{folder}", "--yes", "s1")
    assert empty.returncode == Exit.OK, empty.stderr  # was 6: "Is a directory"
    assert os.listdir(folder) == []


@pytest.mark.parametrize(
    "target",
    ["", ".lease.s4", "../x", "a\x1b[2Jb", "\u202ex", "x" * 201, "a\u2028b", "s4"],
)
def test_fork_with_hostile_targets_is_one_line(planted: Path, target: str) -> None:
    done = run("fork", f"file:{planted}", "s6", target)
    expected = Exit.CONFLICT if target == "s4" else Exit.USAGE
    assert done.returncode == expected, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dsxir-checkpoint: error: ")
    assert not _raw_unsafe(done.stderr)
    assert sorted(p.name for p in planted.iterdir() if p.name.endswith(".dsxckpt")) == [
        f"s{i}.dsxckpt" for i in range(7)
    ]
