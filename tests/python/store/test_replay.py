"""``replay``: many deltas merged at once give what merging them one by one gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dsxir.errors import InvalidDelta
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta
from dsxir.store import FileStore, records
from dsxir.store.replay import replay
from store_util import make_cp


def _chain(seed: int, commits: int) -> tuple[Checkpoint, list[CheckpointDelta], list[Checkpoint]]:
    """A base, the deltas of ``commits`` random commits after it, and each commit's checkpoint."""
    rng = random.Random(seed)
    base = make_cp()
    cp = checkpoint.decode(checkpoint.encode(base))
    deltas: list[CheckpointDelta] = []
    states: list[Checkpoint] = []
    before = cp
    for generation in range(1, commits + 1):
        cp = checkpoint.decode(checkpoint.encode(before))
        for _ in range(rng.randrange(3)):
            checkpoint.record_trial(cp, score=rng.random(), stats={"x": rng.random()})
        if rng.random() < 0.3:
            cp.sampler_blob = rng.randbytes(rng.randrange(1, 40))
        if rng.random() < 0.2:
            cp.program_module = f"module_{generation}"
        if rng.random() < 0.1:
            cp.ClearField("program_module")
        deltas.append(dl.diff(before, cp, base_generation=generation))
        states.append(cp)
        before = cp
    return base, deltas, states


def _merged_both_ways(
    base: Checkpoint, deltas: list[CheckpointDelta], *, earlier: int
) -> tuple[Checkpoint, bool]:
    """``merge_many`` of ``deltas`` into a copy of ``base``, checked against one by one."""
    merged = Checkpoint()
    merged.CopyFrom(base)
    kept_earlier = dl.merge_many(merged, iter(deltas), earlier=earlier)
    one_by_one = Checkpoint()
    one_by_one.CopyFrom(base)
    for delta in deltas:
        dl.merge(one_by_one, delta.head, delta.kept)
    assert merged.SerializeToString(deterministic=True) == one_by_one.SerializeToString(
        deterministic=True
    )
    return merged, kept_earlier


@pytest.mark.parametrize("seed", range(12))
def test_replay_ends_where_applying_each_delta_ends(seed: int) -> None:
    base, deltas, states = _chain(seed, 25)
    result = replay(checkpoint.decode(checkpoint.encode(base)), iter(deltas))
    assert checkpoint.encode(result) == checkpoint.encode(states[-1])
    one_by_one = checkpoint.decode(checkpoint.encode(base))
    for delta in deltas:
        dl.merge(one_by_one, delta.head, delta.kept)
    assert checkpoint.encode(one_by_one) == checkpoint.encode(result)


def test_a_head_with_unknown_fields_is_merged_as_merge_does() -> None:
    base, deltas, states = _chain(3, 6)
    unknown = b"\xf8\x07\x01"  # field 127, varint 1: a field of a newer minor
    marked = CheckpointDelta()
    marked.CopyFrom(deltas[2])
    head = Checkpoint()
    head.ParseFromString(marked.head.SerializeToString() + unknown)
    marked.head.CopyFrom(head)
    deltas[2] = marked
    merged, kept_earlier = _merged_both_ways(base, deltas, earlier=0)
    assert kept_earlier
    assert checkpoint.encode(merged) == checkpoint.encode(states[-1])


def test_a_head_without_progress_drops_the_entries_before_it() -> None:
    base, deltas, _ = _chain(5, 4)
    cut = CheckpointDelta()
    cut.CopyFrom(deltas[1])
    cut.head.ClearField("progress")
    deltas[1] = cut
    for later in deltas[2:]:
        later.base_trials -= len(base.progress.trial_log) + len(deltas[0].head.progress.trial_log)
    _, kept_earlier = _merged_both_ways(base, deltas, earlier=0)
    assert not kept_earlier


def test_a_delta_of_another_trial_count_is_refused_where_it_stands() -> None:
    base, deltas, _ = _chain(7, 5)
    deltas[3].base_trials += 1
    with pytest.raises(InvalidDelta) as refused:
        replay(checkpoint.decode(checkpoint.encode(base)), iter(deltas))
    assert refused.value.rule == dl.DELTA_BASE_TRIALS


def test_deltas_past_what_a_reader_keeps_are_read_again_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, deltas, states = _chain(9, 12)
    store = FileStore(tmp_path)
    generation = store.put(base)
    for delta in deltas:
        delta.base_generation = generation
        generation = store.put_delta(delta)
    monkeypatch.setattr(records, "KEPT_DELTA_BYTES", 0)  # keep none: every delta read again
    stored = FileStore(tmp_path).get(base.session_id)
    assert stored.generation == generation
    assert checkpoint.encode(stored.checkpoint) == checkpoint.encode(states[-1])
