"""Reading a store file whose snapshot is checked in a second thread while its records are framed.

From ``grammar.ALONGSIDE_BYTES`` of snapshot on, ``records.read`` frames the
records and decodes the first ``replay.DECODED_AHEAD`` deltas while the C
check of the snapshot runs: the result and every refusal must be what the
one-thread order of docs/store-file.md §5 and §9.2 gives (the snapshot's
damage first, then the records' framing, then each record in turn).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dsxir.errors import CorruptStore, InvalidDelta
from dsxir.optimizer_session import accel, checkpoint, grammar
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import framing, records, replay
from dsxir.store.file import FileStore
from dsxir.store.summary import encode_summary
from store_util import counting_checks, make_cp

SESSION = "s1"
BIG_BLOB = os.urandom(grammar.ALONGSIDE_BYTES + 4096)


def _next(cp: Checkpoint) -> Checkpoint:
    new = Checkpoint()
    new.CopyFrom(cp)
    checkpoint.record_trial(new, score=0.25, candidate_id="c")
    return new


def _large_session(folder: Path, commits: int) -> tuple[FileStore, list[Checkpoint], int]:
    """A session whose snapshot is over ALONGSIDE_BYTES, with ``commits`` records after it."""
    store = FileStore(folder)
    cp = make_cp(SESSION, trials=2, blob=BIG_BLOB)
    generation = store.put(cp)
    kept = [cp]
    for _ in range(commits):
        new = _next(kept[-1])
        generation = store.put_delta(dl.diff(kept[-1], new, base_generation=generation))
        kept.append(new)
    return store, kept, generation


def _snapshot_end(path: Path) -> int:
    with open(path, "rb") as handle:
        return framing.parse_header(handle.read(framing.HEADER_SIZE), "x").total_length


def _record(cp: Checkpoint, generation: int, *, base: int | None = None) -> bytes:
    """The record that commits one more trial over ``cp`` (at ``generation``) as the next one."""
    new = _next(cp)
    delta = dl.diff(cp, new, base_generation=generation if base is None else base)
    return records.record(generation + 1, encode_summary(new), dl.encode_delta(delta))


def _refused_delta_record(cp: Checkpoint, generation: int) -> bytes:
    """A record with intact checksums whose delta breaks §13.1 (base_generation 0)."""
    delta = dl.diff(cp, _next(cp), base_generation=generation)
    delta.base_generation = 0
    body = grammar.sealed(delta.SerializeToString(deterministic=True), delta=True)
    return records.record(generation + 1, encode_summary(_next(cp)), body)


def test_a_large_snapshot_with_records_reads_as_its_last_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, kept, generation = _large_session(tmp_path, commits=5)
    path = Path(store.file_path(SESSION))
    assert _snapshot_end(path) > grammar.ALONGSIDE_BYTES
    assert path.stat().st_size > _snapshot_end(path)  # the records are there
    threads = counting_checks(monkeypatch)
    got = FileStore(tmp_path).get(SESSION)
    assert got.generation == generation
    assert checkpoint.encode(got.checkpoint) == checkpoint.encode(kept[-1])
    assert len(threads) == (0 if accel.read_checkpoint is None else 1)


@pytest.mark.parametrize(("ahead", "ahead_bytes"), [(2, 4 << 20), (4096, 1), (4096, 700)])
def test_records_past_the_ones_decoded_ahead_are_decoded_when_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ahead: int, ahead_bytes: int
) -> None:
    monkeypatch.setattr(replay, "DECODED_AHEAD", ahead)
    monkeypatch.setattr(replay, "DECODED_AHEAD_BYTES", ahead_bytes)
    _, kept, generation = _large_session(tmp_path, commits=5)
    got = FileStore(tmp_path).get(SESSION)
    assert (got.generation, checkpoint.encode(got.checkpoint)) == (
        generation,
        checkpoint.encode(kept[-1]),
    )


def _refusal_of(tail: Callable[[Checkpoint, int], bytes], commits: int, folder: Path) -> Exception:
    """What a new reader raises for a large session of ``commits`` records, then ``tail``.

    ``tail(cp, generation)`` makes the bytes appended after the last commit.
    """
    store, kept, generation = _large_session(folder, commits=commits)
    with open(store.file_path(SESSION), "ab") as handle:
        handle.write(tail(kept[-1], generation))
    with pytest.raises((CorruptStore, InvalidDelta)) as caught:
        FileStore(folder).get(SESSION)
    return caught.value


def _skipping_then_unreadable(cp: Checkpoint, generation: int) -> bytes:
    """A record committing generation + 2, then one whose delta is unreadable."""
    return _record(cp, generation + 1) + _refused_delta_record(_next(cp), generation + 2)


REFUSALS: dict[str, tuple[Callable[[Checkpoint, int], bytes], int, str]] = {
    # §9.2 steps 6-9 run record by record: the first record's generation comes first.
    "generation-before-an-unreadable-delta": (_skipping_then_unreadable, 0, "record_generation"),
    "unreadable-delta-after-two-records": (_refused_delta_record, 2, "delta.base_generation"),
}


@pytest.mark.parametrize("ahead", [1, 4096])
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_records_are_refused_in_their_order_whatever_was_decoded_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, ahead: int
) -> None:
    monkeypatch.setattr(replay, "DECODED_AHEAD", ahead)
    tail, commits, named = REFUSALS[case]
    refused = _refusal_of(tail, commits, tmp_path)
    assert getattr(refused, "kind", None) == named or f"rule {named}" in str(refused)


def test_damage_in_the_snapshot_is_named_before_damage_in_the_records(tmp_path: Path) -> None:
    """An invalid checkpoint in an intact frame, followed by a record whose checksum fails."""
    cp = make_cp(SESSION, trials=1, blob=BIG_BLOB)
    body = bytearray(checkpoint.encode(cp))
    body[body.index(b"test.Opt")] = 0xFF  # not UTF-8: the checkpoint breaks a rule
    body = bytearray(grammar.seal(bytes(body[: -grammar.TRAILER_SIZE])))
    assert len(body) > grammar.ALONGSIDE_BYTES
    damaged = bytearray(_record(cp, 1))
    damaged[-1] ^= 0xFF  # the payload's checksum fails
    path = Path(FileStore(tmp_path).file_path(SESSION))
    path.write_bytes(framing.frame(1, encode_summary(cp), bytes(body), appendable=True) + damaged)
    with pytest.raises(CorruptStore, match="checkpoint is invalid") as caught:
        FileStore(tmp_path).get(SESSION)
    assert caught.value.kind != "record_checksum"
    path.write_bytes(
        framing.frame(1, encode_summary(cp), checkpoint.encode(cp), appendable=True) + damaged
    )
    with pytest.raises(CorruptStore) as caught:
        FileStore(tmp_path).get(SESSION)
    assert caught.value.kind == "record_checksum"


def test_the_thresholds_docs_store_file_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§9.3: a second thread from a 1 MiB body on, with records after it; 4,096 deltas, 4 MiB."""
    assert grammar.ALONGSIDE_BYTES == 1 << 20
    assert replay.DECODED_AHEAD == 4096
    assert replay.DECODED_AHEAD_BYTES == 4 << 20
    threads = counting_checks(monkeypatch)
    small = FileStore(tmp_path / "small")
    cp = make_cp(SESSION, trials=1)
    generation = small.put(cp)
    small.put_delta(dl.diff(cp, _next(cp), base_generation=generation))
    FileStore(tmp_path / "small").get(SESSION)
    _large_session(tmp_path / "large", commits=0)  # a large body without records
    FileStore(tmp_path / "large").get(SESSION)
    assert threads == []
