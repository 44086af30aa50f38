"""Commit records and compaction as docs/store-file.md §9 and docs/stores.md describe them."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import google_crc32c
import pytest

from dsxir.errors import Conflict, CorruptStore
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session import grammar
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import FileStore, MemoryStore, framing, records
from dsxir.store.postgres import PostgresStore
from dsxir.store.summary import encode_summary
from service_fixtures import sql
from store_util import make_cp, one_more, session_on

FILE_HEADER = struct.Struct(">8sHHQIQIII")
RECORD_HEADER = struct.Struct(">4sQIIII")


def _crc(data: bytes) -> int:
    return int(google_crc32c.value(data))


def _commits(store: Any, cp: Checkpoint, count: int, pad: int = 0) -> list[tuple[Any, ...]]:
    """``count`` delta commits of one trial each after ``cp`` (stored as generation 1).

    Returns, per commit, the new checkpoint, its generation and the delta's bytes.
    """
    done = []
    generation = 1
    for step in range(count):
        new = one_more(cp, stats={"pad": "x" * pad, "step": step})
        delta = dl.diff(cp, new, base_generation=generation)
        generation = store.put_delta(delta)
        done.append((new, generation, dl.encode_delta(delta)))
        cp = new
    return done


def _with_records(tmp_path: Path, count: int) -> tuple[Path, FileStore, Checkpoint, list[Any]]:
    """Session s1 in a new folder: a 2-trial snapshot, then ``count`` records.

    Returns the folder, its store, the snapshot's checkpoint and :func:`_commits`' list.
    """
    folder = tmp_path / "s"
    store = FileStore(folder)
    cp = make_cp("s1", trials=2)
    store.put(cp)
    return folder, store, cp, _commits(store, cp, count)


def _parsed(data: bytes) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], int]:
    """The file header's fields, each record's (header fields, summary, delta), the end read."""
    header = FILE_HEADER.unpack_from(data)
    _, _, _, _, s, b, _, _, _ = header
    at = 44 + s + b
    found = []
    while at < len(data):
        head = RECORD_HEADER.unpack_from(data, at)
        _, _, s2, d, _, _ = head
        body = at + 28
        found.append(
            (head, data[at : at + 24], data[body : body + s2], data[body + s2 : body + s2 + d])
        )
        at = body + s2 + d
    return header, found, at


def test_records_are_laid_out_as_the_table_says(tmp_path: Path) -> None:
    """docs/store-file.md §9.1 (layout) and §9.3 (appending); docs/stores.md FileStore, Commit."""
    store = FileStore(tmp_path / "s")
    cp = make_cp("s1", trials=1000)
    assert store.put(cp) == 1
    path = tmp_path / "s" / "s1.dsxckpt"
    created = path.read_bytes()
    header, found, _ = _parsed(created)
    assert header[:4] == (framing.MAGIC, 1, 1, 1) and found == []  # a create: flags 1, no record
    assert len(created) == 44 + header[4] + header[5]
    commits = _commits(store, cp, 3)
    data = path.read_bytes()
    assert data.startswith(created)  # appended, the snapshot untouched
    _, found, end = _parsed(data)
    assert end == len(data) and len(found) == 3
    for (new, generation, delta), (head, raw_head, summary, written) in zip(
        commits, found, strict=True
    ):
        magic, record_generation, s2, d, payload_crc, head_crc = head
        assert magic == b"\x89dlt" and record_generation == generation
        assert (s2, d) == (len(summary), len(written))
        assert payload_crc == _crc(summary + written) and head_crc == _crc(raw_head)
        assert summary == encode_summary(new)
        assert written == delta and dl.decode_delta(written).base_generation == generation - 1
        body = dl.decode_delta(written).SerializeToString(deterministic=True)
        assert (
            written[: len(body)] == body and len(written) - len(body) == grammar.TRAILER_SIZE == 9
        )
        # docs/stores.md: a few hundred bytes for one trial, in a 1,000-trial session
        assert 100 < 28 + s2 + d < 1000 and len(ck.encode(new)) > 30_000


def _rewrite(path: Path, index: int, **change: Any) -> None:
    """Rebuild record ``index`` of a store file with its CRCs right, changing generation, summary
    or delta."""
    data = path.read_bytes()
    header, found, _ = _parsed(data)
    at = 44 + header[4] + header[5]
    out = [data[:at]]
    for i, (head, _, summary, delta) in enumerate(found):
        parts = {"generation": head[1], "summary": summary, "delta": delta}
        if i == index:
            parts.update(change)
        out.append(records.record(parts["generation"], parts["summary"], parts["delta"]))
    path.write_bytes(b"".join(out))


def _flip_last_payload(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-12] ^= 0x01
    path.write_bytes(bytes(data))


def _kind(folder: Path) -> str | None:
    with pytest.raises(CorruptStore) as refused:
        FileStore(folder).get("s1")
    return refused.value.kind


def test_a_damaged_record_is_reported_before_any_record_is_applied(tmp_path: Path) -> None:
    """docs/store-file.md §9.2: every record is framed (steps 1-5) before any is applied (6-9)."""
    folder = tmp_path / "s"
    store = FileStore(folder)
    cp = make_cp("s1", trials=2)
    store.put(cp)
    _commits(store, cp, 3)
    path = folder / "s1.dsxckpt"
    good = path.read_bytes()
    _rewrite(path, 0, generation=9)
    assert _kind(folder) == "record_generation"  # alone, the first record's sequence
    _flip_last_payload(path)
    assert _kind(folder) == "record_checksum"  # the last record's damage comes first
    path.write_bytes(good)
    _, found, _ = _parsed(good)
    refused = dl.decode_delta(found[0][3])
    refused.format = "dsxir.optimizer_session.delta/v2.0"
    _rewrite(path, 0, delta=grammar.seal(refused.SerializeToString(deterministic=True)))
    with pytest.raises(CorruptStore) as unreadable:
        FileStore(folder).get("s1")
    assert "(rule delta.format)" in str(unreadable.value)
    _flip_last_payload(path)
    assert _kind(folder) == "record_checksum"


def test_only_the_last_records_summary_is_compared(tmp_path: Path) -> None:
    """docs/store-file.md §9.2 step 11: the other records' summaries are covered by CRCs only."""
    folder, _, cp, commits = _with_records(tmp_path, 3)
    path = folder / "s1.dsxckpt"
    good = path.read_bytes()
    stale = encode_summary(cp)  # the summary of generation 1, in the first record
    _rewrite(path, 0, summary=stale)
    stored = FileStore(folder).get("s1")
    assert (stored.generation, ck.encode(stored.checkpoint)) == (4, ck.encode(commits[-1][0]))
    path.write_bytes(good)
    _rewrite(path, 2, summary=encode_summary(commits[1][0]))
    assert _kind(folder) == "summary_mismatch"


def test_the_next_writer_cuts_a_torn_tail_off(tmp_path: Path) -> None:
    """docs/store-file.md §9.2 (a torn tail is ignored), §9.3 step 2 (the next writer cuts it)."""
    folder, _, _, commits = _with_records(tmp_path, 2)
    path = folder / "s1.dsxckpt"
    good = path.read_bytes()
    last, generation, _ = commits[-1]
    new = one_more(last)
    delta = dl.diff(last, new, base_generation=generation)
    torn = records.record(generation + 1, encode_summary(new), dl.encode_delta(delta))
    for cut in (10, 27, 28, len(torn) - 1):
        path.write_bytes(good + torn[:cut])
        other = FileStore(folder)  # remembers nothing: reads the file
        assert other.get("s1").generation == generation
        assert other.put_delta(delta) == generation + 1
        assert path.read_bytes() == good + torn  # the torn bytes are gone, the record whole
        assert ck.encode(FileStore(folder).get("s1").checkpoint) == ck.encode(new)


def test_a_compaction_writes_a_snapshot_of_the_next_generation(tmp_path: Path) -> None:
    """docs/store-file.md §9.3 and docs/stores.md Commit: a new snapshot, flags 1, no record."""
    folder, store, _, commits = _with_records(tmp_path, 2)
    last, generation, _ = commits[-1]
    big = one_more(last, stats={"pad": "y" * 9000})  # its record alone passes 8 KiB
    assert store.put_delta(dl.diff(last, big, base_generation=generation)) == generation + 1
    data = (folder / "s1.dsxckpt").read_bytes()
    header, found, _ = _parsed(data)
    magic, version, flags, stored_generation, s, b, s_crc, b_crc, h_crc = header
    assert (magic, version, flags, stored_generation) == (framing.MAGIC, 1, 1, generation + 1)
    assert found == [] and len(data) == 44 + s + b
    assert data[44 : 44 + s] == encode_summary(big) and data[44 + s :] == ck.encode(big)
    assert (s_crc, b_crc, h_crc) == (_crc(data[44 : 44 + s]), _crc(data[44 + s :]), _crc(data[:40]))
    assert sorted(p.name for p in folder.iterdir()) == [".lock.s1", "s1.dsxckpt"]


def _session_run(store: Any) -> None:
    with session_on(store) as session:
        for i in range(4):
            session.record_trial(score=i / 5)
        session.complete()


def test_the_session_runner_commits_through_put_delta(tmp_path: Path, pg_url: str) -> None:
    """docs/stores.md, Delta commits: ``put_delta`` when the store has it, ``put`` otherwise."""
    folder = tmp_path / "s"
    _session_run(FileStore(folder))
    data = (folder / "s1.dsxckpt").read_bytes()
    header, found, _ = _parsed(data)
    assert header[3] == 1  # the snapshot of the create...
    assert [head[1] for head, *_ in found] == [2, 3, 4, 5, 6]  # ...then one record per commit
    assert ck.status_name(FileStore(folder).get("s1").checkpoint) == "completed"
    pg = PostgresStore.from_url(pg_url)
    try:
        _session_run(pg)
        rows = sql(
            pg_url,
            f"SELECT generation FROM {pg.schema}.dsxir_deltas WHERE session_id = 's1'"
            " ORDER BY generation",
        )
        assert [int(str(row[0])) for row in rows] == [2, 3, 4, 5, 6]
    finally:
        pg.close()
    memory = MemoryStore()
    assert not hasattr(memory, "put_delta")
    _session_run(memory)
    assert memory.get("s1").generation == 6


@pytest.mark.parametrize("blob", [1000, 120_000], ids=["8 KiB floor", "snapshot / 6"])
def test_postgres_compacts_past_its_threshold(
    pg_store: PostgresStore, pg_url: str, blob: int
) -> None:
    """docs/stores.md, Delta commits: PostgreSQL writes a snapshot once the delta rows would pass
    ``max(snapshot / 6, 8 KiB)`` (the default constants)."""
    cp = make_cp("s1", trials=2, blob=bytes(range(256)) * (blob // 256))
    pg_store.put(cp)
    snapshot = len(ck.encode(cp))
    limit = max(snapshot // 6, 8192)
    assert limit == (8192 if blob == 1000 else snapshot // 6) and limit > 8192 * (blob > 1000)
    spent = 0
    generation = 1
    while True:
        new = one_more(cp, stats={"pad": "z" * 700})
        delta = dl.diff(cp, new, base_generation=generation)
        size = len(dl.encode_delta(delta))
        generation = pg_store.put_delta(delta)
        cp = new
        rows = sql(
            pg_url,
            f"SELECT generation FROM {pg_store.schema}.dsxir_deltas WHERE session_id = 's1'",
        )
        (body,) = sql(
            pg_url, f"SELECT body FROM {pg_store.schema}.dsxir_checkpoints WHERE session_id = 's1'"
        )[0]
        if spent + size > limit:
            assert rows == [] and bytes(body) == ck.encode(new)  # type: ignore[arg-type]
            break
        spent += size
        assert len(rows) == generation - 1
    assert spent > limit - 1000  # the rows came within one delta of the limit


def test_put_delta_finds_the_session_its_head_names(
    tmp_path: Path, pg_store: PostgresStore
) -> None:
    """docs/stores.md, Delta commits: the session is the one ``head.session_id`` names, so
    ``put_delta`` never refuses ``delta.session``: a delta naming a session that does not
    exist is a ``Conflict``, and the named session is left as it was."""
    for store in (FileStore(tmp_path / "s"), pg_store):
        cp = make_cp("s1", trials=2)
        store.put(cp)
        delta = dl.diff(cp, one_more(cp), base_generation=1)
        delta.head.session_id = "s2"
        with pytest.raises(Conflict):
            store.put_delta(delta)
        assert store.get("s1").generation == 1
        assert [listing.session_id for listing in store.list()] == ["s1"]
