"""Attacks on appendable store files and the delta commit path, with real files and processes.

Planted things where a session file or its compaction file should be,
record headers at the limits, sparse gigabytes, many tiny records, records
whose checksums hold but whose content lies, and two processes committing
deltas to one session at once. Every read that could block or grow runs in
a child process with a timeout, its peak memory measured there.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import google_crc32c
import pytest

from dsxir.errors import CheckpointError, CorruptStore
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.grammar import sealed
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import framing, records
from dsxir.store.file import FileStore
from dsxir.store.summary import encode_summary
from store_util import append_empty_records, make_cp

SESSION = "s1"


def _next(cp: Checkpoint, *, blob: bytes | None = None, candidate: str = "") -> Checkpoint:
    """``cp`` with one more trial (and ``blob`` as its sampler blob when given)."""
    new = Checkpoint()
    new.CopyFrom(cp)
    checkpoint.record_trial(new, score=0.5, candidate_id=candidate)
    if blob is not None:
        new.sampler_blob = blob
    return new


def _store_with_records(folder: Path, commits: int = 2) -> tuple[FileStore, Checkpoint, int]:
    """A store whose session has a snapshot and ``commits`` records: the store, cp, generation."""
    store = FileStore(folder)
    cp = make_cp(SESSION, trials=1)
    generation = store.put(cp)
    for _ in range(commits):
        new = _next(cp)
        generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
        cp = new
    assert os.path.getsize(store.file_path(SESSION)) > _snapshot_end(store)
    return store, cp, generation


def _snapshot_end(store: FileStore) -> int:
    with open(store.file_path(SESSION), "rb") as handle:
        header = framing.parse_header(handle.read(framing.HEADER_SIZE), "x")
    return header.total_length


def _head(generation: int, summary_length: int, delta_length: int, payload_crc: int) -> bytes:
    head = struct.pack(
        ">4sQIII", records.RECORD_MAGIC, generation, summary_length, delta_length, payload_crc
    )
    return head + struct.pack(">I", framing.crc32c(head))


def _child(script: str, timeout: float = 60) -> dict[str, Any]:
    """Run ``script`` in a new interpreter; its last stdout line as JSON, with its peak RSS.

    The peak is ``VmHWM`` (of this image alone: ``ru_maxrss`` would keep the
    peak of the forked test process from before ``exec``).

    The script sets ``out`` (a dict); a hang fails the test at ``timeout``.
    """
    code = textwrap.dedent(script) + textwrap.dedent(
        """
        import json as _json
        with open("/proc/self/status", encoding="ascii") as _status:  # this image's own peak
            _peak = next(line for line in _status if line.startswith("VmHWM:"))
        out["maxrss_mib"] = int(_peak.split()[1]) / 1024
        print(_json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-"],
        input=code,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


_TRY = """
def attempt(action):
    try:
        action()
    except Exception as exc:
        return [type(exc).__name__, getattr(exc, "kind", None), str(exc)]
    return ["ok", None, ""]
"""


def _get_in_child(folder: Path, timeout: float = 60) -> dict[str, Any]:
    """``get`` and ``listing`` of the session by a new store in a child process."""
    return _child(
        _TRY
        + f"""
import hashlib, time
from dsxir.optimizer_session import checkpoint
from dsxir.store.file import FileStore
store = FileStore({str(folder)!r})
out = {{}}
began = time.monotonic()
out["get"] = attempt(lambda: out.update(got=store.get({SESSION!r})))
out["get_seconds"] = time.monotonic() - began
got = out.pop("got", None)
if got is not None:
    out["generation"] = got.generation
    out["digest"] = hashlib.sha256(checkpoint.encode(got.checkpoint)).hexdigest()
out["listing"] = attempt(lambda: store.listing({SESSION!r}))
""",
        timeout,
    )


# --- planted things -------------------------------------------------------------------------


def _plant(path: Path, kind: str, outside: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "folder-with-file":
        path.mkdir()
        (path / "inside").write_bytes(b"not the store's")
    elif kind == "symlink":
        path.symlink_to(outside)
    elif kind == "dangling-symlink":
        path.symlink_to(outside.parent / "nothing-here")
    else:  # pragma: no cover - the parameters below
        raise AssertionError(kind)


KINDS = ["fifo", "folder", "folder-with-file", "symlink", "dangling-symlink"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_thing_at_the_session_file_name_is_refused_without_blocking(
    tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "store"
    store, cp, generation = _store_with_records(folder)
    outside = tmp_path / "outside.dsxckpt"
    os.replace(store.file_path(SESSION), outside)  # a valid session file, outside the folder
    before = outside.read_bytes()
    _plant(Path(store.file_path(SESSION)), kind, outside)
    delta = dl.encode_delta(dl.diff(cp, _next(cp), base_generation=generation))
    out = _child(
        _TRY
        + f"""
from dsxir.store.file import FileStore
from dsxir.optimizer_session import delta as dl
store = FileStore({str(folder)!r})
out = {{}}
out["get"] = attempt(lambda: store.get({SESSION!r}))
out["listing"] = attempt(lambda: store.listing({SESSION!r}))
out["list"] = attempt(lambda: store.list())
out["put_delta"] = attempt(lambda: store.put_delta(dl.decode_delta({delta!r})))
""",
        timeout=30,
    )
    for name in ("get", "listing", "list", "put_delta"):
        assert out[name][0] == "CorruptStore", (name, out[name])
        assert store.file_path(SESSION) in out[name][2]
    assert outside.read_bytes() == before  # never followed, never written
    assert {p.name for p in folder.iterdir()} >= {SESSION + ".dsxckpt"}


_PLANT = {
    "fifo": "os.mkfifo(temp)",
    "folder": "os.mkdir(temp)",
    "symlink": "os.symlink(outside, temp)",
    "dangling-symlink": "os.symlink(outside + '-nothing', temp)",
}


@pytest.mark.parametrize("kind", sorted(_PLANT))
def test_a_thing_at_the_compaction_file_name_never_stops_a_commit(
    tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "store"
    store, cp, generation = _store_with_records(folder)
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    temp = folder / f".tmp.{SESSION}"
    first = _next(cp)
    second = _next(first, blob=os.urandom(64 * 1024))  # big enough to be a compaction
    steps = [
        dl.encode_delta(dl.diff(cp, first, base_generation=generation)),
        dl.encode_delta(dl.diff(first, second, base_generation=generation + 1)),
    ]
    out = _child(
        f"""
import os
from dsxir.store.file import FileStore
from dsxir.optimizer_session import delta as dl
temp, outside = {str(temp)!r}, {str(outside)!r}
store = FileStore({str(folder)!r})  # opening cleans stale files: plant after it
out = {{"gens": []}}
for step in {steps!r}:
    {_PLANT[kind]}
    out["gens"].append(store.put_delta(dl.decode_delta(step)))
""",
        timeout=30,
    )
    assert out["gens"] == [generation + 1, generation + 2]  # an append, then a compaction
    stored = FileStore(folder).get(SESSION)
    assert stored.generation == generation + 2
    assert stored.checkpoint == second
    assert _snapshot_end(store) == os.path.getsize(store.file_path(SESSION))
    assert outside.read_bytes() == b"precious"
    assert not os.path.lexists(temp)


def test_a_full_folder_at_the_compaction_file_name_is_reported_and_changes_nothing(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "store"
    store, cp, generation = _store_with_records(folder)
    before = Path(store.file_path(SESSION)).read_bytes()
    temp = folder / f".tmp.{SESSION}"
    _plant(temp, "folder-with-file", tmp_path)
    with pytest.raises(CorruptStore) as caught:
        store.put_delta(dl.diff(cp, _next(cp), base_generation=generation))
    assert str(temp) in str(caught.value)
    assert Path(store.file_path(SESSION)).read_bytes() == before
    assert (temp / "inside").read_bytes() == b"not the store's"
    assert store.get(SESSION).generation == generation


# --- records at the limits, sparse gigabytes, many records -----------------------------------


@pytest.mark.parametrize(
    ("summary_length", "delta_length", "verdict"),
    [
        (framing.MAX_SUMMARY_BYTES, framing.MAX_BODY_BYTES, "torn"),
        (0, 0xFFFFFFFF, "over_limits"),
        (framing.MAX_SUMMARY_BYTES + 1, 0, "over_limits"),
        (0xFFFFFFFF, 0xFFFFFFFF, "over_limits"),
    ],
)
def test_a_record_header_claiming_lengths_at_the_limits(
    tmp_path: Path, summary_length: int, delta_length: int, verdict: str
) -> None:
    folder = tmp_path / "store"
    store, cp, generation = _store_with_records(folder)
    path = store.file_path(SESSION)
    with open(path, "ab") as handle:
        handle.write(_head(generation + 1, summary_length, delta_length, 0) + b"\0" * 100)
    out = _get_in_child(folder, timeout=30)
    assert out["maxrss_mib"] < 200  # nothing of the claimed length was allocated
    if verdict == "torn":  # a strict prefix of a record: ignored, then cut by the next commit
        assert out["get"][0] == "ok" and out["listing"][0] == "ok"
        new = _next(cp)
        assert store.put_delta(dl.diff(cp, new, base_generation=generation)) == generation + 1
        assert FileStore(folder).get(SESSION).checkpoint == new
    else:
        assert out["get"][:2] == ["CorruptStore", "over_limits"]
        assert out["listing"][:2] == ["CorruptStore", "over_limits"]
        with pytest.raises(CorruptStore):
            store.put_delta(dl.diff(cp, _next(cp), base_generation=generation))


def test_a_record_of_the_largest_length_with_its_bytes_sparse(tmp_path: Path) -> None:
    """A header claiming the largest record, the file sparse to its end: one bounded read."""
    folder = tmp_path / "store"
    store, _, generation = _store_with_records(folder)
    path = store.file_path(SESSION)
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.seek(size)
        handle.write(_head(generation + 1, 0, framing.MAX_BODY_BYTES, 0))
        handle.truncate(size + records.RECORD_HEADER_SIZE + framing.MAX_BODY_BYTES)
    out = _get_in_child(folder, timeout=30)
    assert out["get"][:2] == ["CorruptStore", "record_checksum"]
    assert out["maxrss_mib"] < 700  # one record's bytes at most (256 MiB and a copy)


def test_gigabytes_of_sparse_zeros_after_the_records_are_refused_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store, cp, generation = _store_with_records(folder)
    path = store.file_path(SESSION)
    os.truncate(path, os.path.getsize(path) + (4 << 30))
    out = _get_in_child(folder, timeout=30)
    assert out["get"][:2] == ["CorruptStore", "record_checksum"]
    assert out["listing"][:2] == ["CorruptStore", "record_checksum"]
    assert out["get_seconds"] < 2 and out["maxrss_mib"] < 200
    with pytest.raises(CorruptStore):
        store.put_delta(dl.diff(cp, _next(cp), base_generation=generation))


def _plant_zero_records(path: str, generation: int, count: int, length: int) -> None:
    """Append ``count`` sparse records of ``length`` zero bytes with valid checksums."""
    crc = 0
    chunk = bytes(1 << 20)
    for _ in range(length >> 20):
        crc = google_crc32c.extend(crc, chunk)
    at = os.path.getsize(path)
    fd = os.open(path, os.O_WRONLY)
    try:
        for i in range(count):
            os.pwrite(fd, _head(generation + 1 + i, 0, length, crc), at)
            at += records.RECORD_HEADER_SIZE + length
        os.ftruncate(fd, at)
    finally:
        os.close(fd)


def test_many_large_records_with_valid_checksums_stay_bounded_in_memory(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store, _, generation = _store_with_records(folder)
    _plant_zero_records(store.file_path(SESSION), generation, 8, 64 << 20)  # 512 MiB sparse
    out = _get_in_child(folder, timeout=60)
    assert out["get"][0] == "CorruptStore"  # the first delta is no delta
    assert out["maxrss_mib"] < 300


@pytest.mark.parametrize(
    "blob", [b"blob", bytes(range(256)) * 4096], ids=["small-snapshot", "snapshot-of-1MiB"]
)
def test_two_hundred_thousand_tiny_records_read_in_bounded_time_and_memory(
    tmp_path: Path, blob: bytes
) -> None:
    """From a 1 MiB snapshot on, the records are framed while a second thread checks it."""
    folder = tmp_path / "store"
    store = FileStore(folder)
    cp = make_cp(SESSION, trials=3, blob=blob)
    store.put(cp)
    count = 200_000
    append_empty_records(store.file_path(SESSION), cp, count)
    out = _get_in_child(folder, timeout=60)
    assert out["get"][0] == "ok" and out["listing"][0] == "ok"
    assert out["get_seconds"] < 30 and out["maxrss_mib"] < 600
    assert out["generation"] == count + 1
    assert out["digest"] == hashlib.sha256(checkpoint.encode(cp)).hexdigest()
    new = _next(cp)
    assert store.put(new, expected_generation=count + 1) == count + 2  # compacts
    assert _snapshot_end(store) == os.path.getsize(store.file_path(SESSION))
    assert FileStore(folder).get(SESSION).checkpoint == new


def _sealed(body: bytes) -> bytes:
    """Delta body bytes with their trailer, unchecked beyond the grammar (a forger's bytes)."""
    return sealed(body, delta=True)


# --- records whose checksums hold but whose content lies ---------------------------------------


def _lying_record(cp: Checkpoint, generation: int, lie: str) -> bytes:
    """One record after generation ``generation`` of ``cp``, valid CRCs, content per ``lie``."""
    new = _next(cp)
    record_generation = generation + 1
    base_generation = generation
    if lie == "record-generation-skips":
        record_generation = generation + 2
    if lie == "record-generation-repeats":
        record_generation = generation
    if lie == "delta-on-another-base":
        base_generation = generation - 1
    delta = dl.diff(cp, new, base_generation=base_generation)
    summary = encode_summary(new)
    if lie == "another-session":
        delta.head.session_id = "s2"
    if lie == "trial-count-regresses":
        delta.base_trials = len(cp.progress.trial_log) - 1
    if lie == "trial-count-ahead":
        delta.base_trials = len(cp.progress.trial_log) + 1
    if lie == "summary-lies":
        summary = encode_summary(_next(new))
    if lie == "summary-of-another-session":
        other = Checkpoint()
        other.CopyFrom(new)
        other.session_id = "s2"
        summary = encode_summary(other)
    if lie == "summary-empty":
        summary = b""
    data = _sealed(delta.SerializeToString(deterministic=True))
    return records.record(record_generation, summary, data)


LIES = {
    "record-generation-skips": "record_generation",
    "record-generation-repeats": "record_generation",
    "delta-on-another-base": "record_generation",
    "another-session": "delta.session",
    "trial-count-regresses": "delta.base_trials",
    "trial-count-ahead": "delta.base_trials",
    "summary-lies": "summary_mismatch",
    "summary-of-another-session": "summary_mismatch",
    "summary-empty": "summary_mismatch",
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_record_with_valid_checksums_that_lies_is_refused(tmp_path: Path, lie: str) -> None:
    folder = tmp_path / "store"
    store, cp, generation = _store_with_records(folder)
    path = Path(store.file_path(SESSION))
    with open(path, "ab") as handle:
        handle.write(_lying_record(cp, generation, lie))
    planted = path.read_bytes()
    expected = LIES[lie]
    for reader in (store, FileStore(folder)):  # the writer that remembers it, and a new one
        with pytest.raises(CorruptStore) as caught:
            reader.get(SESSION)
        assert expected in (caught.value.kind or "") or f"rule {expected}" in str(caught.value)
    for expected_generation in (generation, generation + 1, generation + 2):
        delta = dl.diff(cp, _next(cp), base_generation=expected_generation)
        for writer in (store, FileStore(folder)):
            with pytest.raises(CheckpointError) as refused:  # a Conflict or the damage
                writer.put_delta(delta)
            assert type(refused.value).__name__ in ("Conflict", "CorruptStore")
    assert path.read_bytes() == planted  # nothing appended after a record that lies


# --- generations at the edges of the frame's range ---------------------------------------------


def test_a_session_at_the_last_generation_is_refused_with_a_store_error(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store = FileStore(folder)
    cp = make_cp(SESSION, trials=1)
    store.put(cp)
    last = (1 << 64) - 1
    Path(store.file_path(SESSION)).write_bytes(
        framing.frame(last, encode_summary(cp), checkpoint.encode(cp), appendable=True)
    )
    assert store.get(SESSION).generation == last
    with pytest.raises(CheckpointError) as refused:
        FileStore(folder).put_delta(dl.diff(cp, _next(cp), base_generation=last))
    assert isinstance(refused.value, CorruptStore) and refused.value.kind == "over_limits"
    with pytest.raises(CorruptStore, match="the last a store file holds"):
        FileStore(folder).put(_next(cp), expected_generation=last)
    assert FileStore(folder).get(SESSION).generation == last  # nothing was written


# --- two processes at once ---------------------------------------------------------------------

_WRITER = """
import json, os, sys
from dsxir.errors import Conflict
from dsxir.optimizer_session import checkpoint, delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store.file import FileStore

folder, name, commits = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = FileStore(folder)  # one store: its remembered state meets the other's commits
acknowledged = []
while len(acknowledged) < commits:
    stored = store.get("s1")
    new = Checkpoint()
    new.CopyFrom(stored.checkpoint)
    tag = f"{name}-{len(acknowledged)}"
    checkpoint.record_trial(new, score=0.5, candidate_id=tag)
    new.sampler_blob = tag.encode() * 300  # records of a few KiB: compactions now and then
    delta = dl.diff(stored.checkpoint, new, base_generation=stored.generation)
    try:
        generation = store.put_delta(delta)
    except Conflict:
        continue
    acknowledged.append([generation, tag])
print(json.dumps(acknowledged))
"""

_READER = """
import json, os, sys
from dsxir.store.file import FileStore
folder, stop = sys.argv[1], sys.argv[2]
store = FileStore(folder)
seen, errors = [], []
while not os.path.exists(stop):
    try:
        stored = store.get("s1")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        continue
    log = stored.checkpoint.progress.trial_log
    assert len(log) == stored.generation, (len(log), stored.generation)
    seen.append(stored.generation)
print(json.dumps({"seen": seen, "errors": errors}))
"""


def test_two_processes_committing_deltas_lose_nothing_and_readers_see_whole_commits(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "store"
    store = FileStore(folder)
    store.put(make_cp(SESSION, trials=1))
    commits = 60
    writer, reader = tmp_path / "writer.py", tmp_path / "reader.py"
    writer.write_text(_WRITER)
    reader.write_text(_READER)
    stop = tmp_path / "stop"
    reading = subprocess.Popen(
        [sys.executable, str(reader), str(folder), str(stop)], stdout=subprocess.PIPE, text=True
    )
    writers = [
        subprocess.Popen(
            [sys.executable, str(writer), str(folder), name, str(commits)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    try:
        acknowledged = [json.loads(w.communicate(timeout=60)[0]) for w in writers]
    finally:
        stop.touch()
        read_out = json.loads(reading.communicate(timeout=60)[0])
        for process in (*writers, reading):
            process.kill()
    assert all(w.returncode == 0 for w in writers) and reading.returncode == 0
    by_generation = {g: tag for part in acknowledged for g, tag in part}
    assert len(by_generation) == 2 * commits  # no generation acknowledged twice
    assert sorted(by_generation) == list(range(2, 2 * commits + 2))
    final = FileStore(folder).get(SESSION)
    assert final.generation == 2 * commits + 1
    log = final.checkpoint.progress.trial_log
    for generation, tag in by_generation.items():
        assert log[generation - 1].candidate_id == tag  # each commit at its own place
    assert read_out["errors"] == []
    assert read_out["seen"] == sorted(read_out["seen"])  # generations never go back
    assert len(set(read_out["seen"])) > 1
    with open(store.file_path(SESSION), "rb") as handle:  # compactions happened meanwhile
        assert framing.parse_header(handle.read(framing.HEADER_SIZE), "x").generation > 1
