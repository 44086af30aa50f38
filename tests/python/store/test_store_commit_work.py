"""What a commit does once, what a listing reads, when a file is compacted, what a store remembers.

docs/stores.md (FileStore, PostgresStore) and docs/store-file.md §5, §9.3.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dsxir.errors import Conflict, CorruptStore, IllegalHistory
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import FileStore, framing, records
from dsxir.store import file as file_store
from dsxir.store.summary import encode_summary
from store_util import make_cp, session_on


def _copy(cp: Checkpoint) -> Checkpoint:
    return ck.decode(ck.encode(cp))


def _grown(cp: Checkpoint, pad: int = 0, blob: bytes | None = None) -> Checkpoint:
    new = Checkpoint()
    new.CopyFrom(cp)  # not encoded again: the 128 MiB session would take minutes in pure Python
    ck.record_trial(new, score=0.5, stats={"pad": "x" * pad}, sampler_blob=blob)
    return new


# --- A: the runner's baseline ------------------------------------------------------------------


def test_the_runner_keeps_the_baseline_of_what_it_committed(tmp_path: Path) -> None:
    with session_on(FileStore(tmp_path / "s")) as session:
        for i in range(5):
            session.record_trial(score=i / 5, sampler_blob=b"b%d" % (i // 2))
            assert session._baseline == dl.Baseline.of(session.checkpoint)
            stored = session.store.get("s1")
            assert ck.encode(stored.checkpoint) == ck.encode(session.checkpoint)


# --- B: put compares trial logs on bytes it holds --------------------------------------------


def _rewritten(cp: Checkpoint, index: int) -> Checkpoint:
    new = _grown(cp)
    new.progress.trial_log[index].duration_ms += 1
    return new


@pytest.mark.parametrize("kind", ["file", "postgres"])
def test_put_refuses_a_rewritten_trial_log_after_its_own_put(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "file":
        store: Any = FileStore(tmp_path / "file")
    else:
        from dsxir.store.postgres import PostgresStore

        store = PostgresStore.from_url(request.getfixturevalue("pg_url"))
    cp = make_cp("s1", trials=30)
    generation = store.put(cp)
    for _ in range(3):  # the second and third compare with the bytes of the put before
        for index in (0, 17, 29):
            with pytest.raises(IllegalHistory) as refused:
                store.put(_rewritten(cp, index), expected_generation=generation)
            assert refused.value.rule == "history.trial_log_rewritten"
            assert f"trial_log[{index}]" in str(refused.value)
        shorter = _copy(cp)
        del shorter.progress.trial_log[-1]
        shorter.progress.best_trial_idx = len(shorter.progress.trial_log) - 1
        shorter.progress.best_score = shorter.progress.trial_log[-1].score
        shorter.progress.completed -= 1
        shorter.progress.attempts -= 1
        with pytest.raises(IllegalHistory, match=r"trial_log_shortened: the trial log"):
            store.put(shorter, expected_generation=generation)
        cp = _grown(cp, pad=3)
        generation = store.put(cp, expected_generation=generation)
        assert ck.encode(store.get("s1").checkpoint) == ck.encode(cp)
    if kind == "postgres":
        store.close()


def test_put_after_put_delta_compares_the_whole_log_again(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s")
    cp = make_cp("s1", trials=4)
    generation = store.put(cp)
    cp = _grown(cp)
    generation = store.put(cp, expected_generation=generation)  # leaves its bytes in memory
    new = _grown(cp)
    generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
    with pytest.raises(IllegalHistory, match=r"trial_log\[4\]"):  # the entry the delta added
        store.put(_rewritten(new, 4), expected_generation=generation)
    assert store.put(_grown(new), expected_generation=generation) == generation + 1


def test_a_put_with_unknown_fields_in_its_progress_still_checks_its_log(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s")
    cp = make_cp("s1", trials=3)
    odd = _copy(cp)
    odd.progress.MergeFromString(b"\xa8\x06\x01")  # field 101 of Progress, unknown
    generation = store.put(odd)
    new = _grown(odd)
    generation = store.put(new, expected_generation=generation)
    with pytest.raises(IllegalHistory, match=r"trial_log\[1\]"):
        store.put(_rewritten(new, 1), expected_generation=generation)
    last = _grown(new)
    assert store.put(last, expected_generation=generation) == generation + 1
    assert ck.encode(store.get("s1").checkpoint) == ck.encode(last)


# --- C: a listing reads the record headers and the last record ---------------------------------


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the bytes the file store reads through its read callback."""
    read: list[int] = []
    make = file_store._reader

    def reader(handle: Any) -> Callable[[int, int], bytes]:
        read_at = make(handle)

        def counted(offset: int, size: int) -> bytes:
            data = read_at(offset, size)
            read.append(len(data))
            return data

        return counted

    monkeypatch.setattr(file_store, "_reader", reader)
    return read


def _with_records(folder: Path, count: int, pad: int) -> tuple[FileStore, Checkpoint, int]:
    store = FileStore(folder)
    cp = make_cp("s1", blob=os.urandom(600_000))  # a large snapshot: room for many records
    generation = store.put(cp)
    for _ in range(count):
        new = _grown(cp, pad=pad)
        generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
        cp = new
    return store, cp, generation


def _records_of(path: Path) -> list[records.Record]:
    data = path.read_bytes()
    header = framing.parse_header(data[: framing.HEADER_SIZE], str(path), file_size=len(data))
    found, _ = records.scan(lambda at, n: data[at : at + n], header.total_length, len(data), "")
    return found


def test_a_listing_reads_the_record_headers_and_the_last_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, generation = _with_records(tmp_path / "s", 40, 2000)
    path = tmp_path / "s" / "s1.dsxckpt"
    found = _records_of(path)
    assert len(found) == 40
    other = FileStore(tmp_path / "s")  # remembers nothing: reads the file
    read = _counting(monkeypatch)
    listing = other.listing("s1")
    assert (listing.generation, listing.trials) == (generation, 40)
    record_bytes = found[-1].end - found[-2].end
    summary_bytes = len(encode_summary(make_cp("s1")))
    assert sum(read) <= framing.HEADER_SIZE + summary_bytes + 40 * 28 + record_bytes
    assert sum(read) < (found[-1].end - found[0].end) // 20  # not the payloads
    read.clear()
    assert [item.generation for item in other.list_page()] == [generation]
    assert sum(read) < (found[-1].end - found[0].end) // 20
    read.clear()
    other.get("s1")  # a whole read reads everything
    assert sum(read) >= path.stat().st_size


@pytest.mark.parametrize("where", ["last payload", "last header", "middle payload"])
def test_a_listing_refuses_a_damaged_last_record(tmp_path: Path, where: str) -> None:
    _with_records(tmp_path / "s", 6, 10)
    path = tmp_path / "s" / "s1.dsxckpt"
    found = _records_of(path)
    data = bytearray(path.read_bytes())
    last_start = found[-2].end
    at = {
        "last payload": found[-1].end - 3,
        "last header": last_start + 6,
        "middle payload": found[2].end - 3,
    }[where]
    data[at] ^= 0x10
    path.write_bytes(bytes(data))
    store = FileStore(tmp_path / "s")
    with pytest.raises(CorruptStore) as whole:
        store.get("s1")
    assert whole.value.kind == "record_checksum"
    if where == "middle payload":  # docs/store-file.md §5: found by the next whole read
        assert store.listing("s1").generation == found[-1].generation
        return
    with pytest.raises(CorruptStore) as listed:
        store.listing("s1")
    assert listed.value.kind == "record_checksum"
    damaged: list[CorruptStore] = []
    assert store.list(on_damage=damaged.append) == []
    assert [exc.kind for exc in damaged] == ["record_checksum"]


def test_a_listing_skips_a_torn_tail(tmp_path: Path) -> None:
    _, _, generation = _with_records(tmp_path / "s", 5, 10)
    path = tmp_path / "s" / "s1.dsxckpt"
    data = path.read_bytes()
    for cut in (1, 27, 29, 60):
        path.write_bytes(data[:-cut])
        assert FileStore(tmp_path / "s").listing("s1").generation == generation - 1


# --- D: when a commit compacts -----------------------------------------------------------------


def _state_of(path: Path) -> tuple[int, int, int]:
    """(snapshot body length, bytes of records, records) of a store file."""
    data = path.read_bytes()
    header = framing.parse_header(data[: framing.HEADER_SIZE], str(path), file_size=len(data))
    found, end = records.scan(lambda at, n: data[at : at + n], header.total_length, len(data), "")
    assert end == len(data)
    return header.body_length, end - header.total_length, len(found)


def _record_size(cp: Checkpoint, new: Checkpoint, generation: int) -> int:
    data = dl.encode_delta(dl.diff(cp, new, base_generation=generation))
    return len(records.record(generation + 1, encode_summary(new), data))


def _exactly(cp: Checkpoint, generation: int, size: int) -> Checkpoint:
    """The next checkpoint, padded so that its record is ``size`` bytes."""
    pad = size // 2
    for _ in range(50):  # the clock's digits and the varints vary the size a little
        new = _grown(cp, pad=pad)
        got = _record_size(cp, new, generation)
        if got == size:
            return new
        pad = max(0, pad + size - got + random.choice((-1, 0, 1)) * (abs(size - got) < 3))
    raise AssertionError(f"no padding makes a record of {size} bytes")


@pytest.mark.parametrize("blob", [1000, 200_000], ids=["8 KiB floor", "snapshot / 6"])
def test_a_commit_compacts_exactly_past_the_threshold(tmp_path: Path, blob: int) -> None:
    store = FileStore(tmp_path / "s")
    path = tmp_path / "s" / "s1.dsxckpt"
    cp = make_cp("s1", blob=os.urandom(blob))
    generation = store.put(cp)
    snapshot, spent, count = _state_of(path)
    assert (spent, count) == (0, 0)
    limit = max(snapshot // file_store.COMPACT_SHARE, file_store.COMPACT_MIN_BYTES)
    assert limit == (8192 if blob == 1000 else snapshot // 6) and limit > 8192 * (blob > 1000)
    while limit - spent > 3000:  # records of about 1 KiB
        new = _grown(cp, pad=800)
        size = _record_size(cp, new, generation)
        generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
        cp = new
        assert _state_of(path) == (snapshot, spent + size, count + 1)
        spent, count = spent + size, count + 1
    for size in (1000, limit - spent - 1000):  # the last one fills the records up to the limit
        new = _exactly(cp, generation, size)
        generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
        cp = new
        assert _state_of(path) == (snapshot, spent + size, count + 1)
        spent, count = spent + size, count + 1
    assert spent == limit
    before = path.stat().st_size
    new = _grown(cp)  # one byte more would do: this record passes the limit
    generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
    compacted = _state_of(path)
    assert compacted[1:] == (0, 0) and compacted[0] > snapshot
    assert path.stat().st_size < before
    assert ck.encode(store.get("s1").checkpoint) == ck.encode(new)
    assert FileStore(tmp_path / "s").get("s1").generation == generation


def test_a_commit_compacts_when_the_file_would_pass_128_mib(tmp_path: Path) -> None:
    cap = file_store.MAX_APPENDED_BYTES
    assert cap == 128 * 1024 * 1024
    store = FileStore(tmp_path / "s")
    path = tmp_path / "s" / "s1.dsxckpt"
    cp = make_cp("s1", blob=b"")
    empty = len(ck.encode(cp))
    cp = make_cp("s1", blob=b"\x01" * (cap - 3000 - empty - 4))  # a 4-byte blob length
    generation = store.put(cp)
    snapshot = _state_of(path)[0]
    assert cap - 3100 < snapshot <= cap - 2900  # far below snapshot / 6 of records
    new = _exactly(cp, generation, cap - snapshot - 1000)
    generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
    cp = new
    assert _state_of(path) == (snapshot, cap - snapshot - 1000, 1)
    new = _exactly(cp, generation, 1000)  # snapshot + records == 128 MiB: still appended
    generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
    cp = new
    assert _state_of(path) == (snapshot, cap - snapshot, 2)
    new = _grown(cp)
    generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
    compacted = _state_of(path)
    assert compacted[1:] == (0, 0) and compacted[0] > snapshot
    assert FileStore(tmp_path / "s").get("s1").generation == generation


# --- D: what a store remembers ----------------------------------------------------------------


def test_a_ninth_session_evicts_the_one_committed_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert file_store.REMEMBERED_SESSIONS == 8
    store = FileStore(tmp_path / "s")
    held: dict[str, tuple[Checkpoint, int]] = {}
    for i in range(9):
        cp = make_cp(f"s{i}", trials=50)
        generation = store.put(cp)
        new = _grown(cp)
        held[f"s{i}"] = (new, store.put_delta(dl.diff(cp, new, base_generation=generation)))
    read = _counting(monkeypatch)

    def commit(session_id: str) -> int:
        cp, generation = held[session_id]
        new = _grown(cp)
        held[session_id] = (new, store.put_delta(dl.diff(cp, new, base_generation=generation)))
        return sum(read)

    for i in range(8, 0, -1):  # s1 to s8 are remembered: nothing is read
        assert commit(f"s{i}") == 0
    size = (tmp_path / "s" / "s0.dsxckpt").stat().st_size
    assert commit("s0") >= size  # evicted: read whole again, and now remembered...
    read.clear()
    assert commit("s8") >= (tmp_path / "s" / "s8.dsxckpt").stat().st_size  # ...in s8's place
    read.clear()
    assert commit("s0") == 0


_OTHER_WRITER = """
import sys
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.store import FileStore
store = FileStore(sys.argv[1])
stored = store.get("s1")
new = ck.decode(ck.encode(stored.checkpoint))
ck.record_trial(new, score=0.25, stats={"by": "other"})
print(store.put_delta(dl.diff(stored.checkpoint, new, base_generation=stored.generation)))
"""


@pytest.mark.parametrize("writer", ["another store", "another process"])
def test_a_file_another_writer_changed_is_read_again(tmp_path: Path, writer: str) -> None:
    store = FileStore(tmp_path / "s")
    cp = make_cp("s1", trials=3)
    generation = store.put(cp)
    new = _grown(cp)
    generation = store.put_delta(dl.diff(cp, new, base_generation=generation))
    assert store.listing("s1").generation == generation  # remembered
    for _ in range(2):
        if writer == "another store":
            other = FileStore(tmp_path / "s")
            stored = other.get("s1")
            theirs = _grown(stored.checkpoint, pad=1)
            other.put_delta(dl.diff(stored.checkpoint, theirs, base_generation=stored.generation))
        else:
            done = subprocess.run(
                [sys.executable, "-c", _OTHER_WRITER, str(tmp_path / "s")],
                capture_output=True,
                text=True,
                check=True,
            )
            assert int(done.stdout) == generation + 1
        listing = store.listing("s1")
        assert listing.generation == generation + 1
        assert listing.trials == len(new.progress.trial_log) + 1
        mine = _grown(new)
        with pytest.raises(Conflict):  # the remembered generation is stale
            store.put_delta(dl.diff(new, mine, base_generation=generation))
        stored = store.get("s1")
        assert stored.generation == generation + 1
        new, generation = _grown(stored.checkpoint), stored.generation
        generation = store.put_delta(dl.diff(stored.checkpoint, new, base_generation=generation))
        assert ck.encode(FileStore(tmp_path / "s").get("s1").checkpoint) == ck.encode(new)
