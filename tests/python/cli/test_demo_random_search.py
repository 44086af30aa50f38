"""The demo's random-search optimizer: its sampler blob, its resume, its gate."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dsxir.errors import AlreadyTerminal, ResumeMismatch
from dsxir.optimizer_session import checkpoint
from dsxir.store import FileStore, MemoryStore, Stored

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "demo"))

import random_search as rs

SEED = 99
TRIALS = 30


class Crash(Exception):
    """Stands in for a process dying right after a commit."""


def test_blob_round_trips_and_refuses_other_layouts() -> None:
    rng = rs.SplitMix64(42)
    for _ in range(5):
        rng.next_u64()
    blob = rs.encode_blob(rng)
    assert len(blob) == 24 and blob[:4] == b"DRS1"
    again = rs.decode_blob(blob)
    assert again == rng and again.next_u64() == rng.next_u64()
    with pytest.raises(ValueError):
        rs.decode_blob(blob[:-1])
    with pytest.raises(ValueError):
        rs.decode_blob(b"XXXX" + blob[4:])


def test_splitmix64_matches_the_reference_sequence() -> None:
    rng = rs.SplitMix64(0)
    assert [rng.next_u64() for _ in range(3)] == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
    ]


def test_same_seed_same_run() -> None:
    first = rs.run(MemoryStore(), "s", seed=SEED, trials=TRIALS)
    second = rs.run(MemoryStore(), "s", seed=SEED, trials=TRIALS)
    assert _log(first) == _log(second)
    assert checkpoint.status_name(first.checkpoint) == "completed"
    assert first.checkpoint.progress.errors > 0  # the objective has error trials
    other = rs.run(MemoryStore(), "s", seed=SEED + 1, trials=TRIALS)
    assert _log(other) != _log(first)


@pytest.mark.parametrize("crash_after", [1, 7, 18, 29])
def test_a_run_crashed_after_any_commit_resumes_to_the_same_result(
    tmp_path: Path, crash_after: int
) -> None:
    store = FileStore(tmp_path)
    commits = 0

    def crash(_: Stored) -> None:
        nonlocal commits
        commits += 1
        if commits == crash_after:
            raise Crash

    with pytest.raises(Crash):
        rs.run(store, "s", seed=SEED, trials=TRIALS, on_commit=crash)
    assert len(store.get("s").checkpoint.progress.trial_log) == crash_after
    resumed = rs.run(store, "s", seed=SEED, trials=TRIALS)
    reference = rs.run(MemoryStore(), "s", seed=SEED, trials=TRIALS)
    assert _log(resumed) == _log(reference)
    assert resumed.checkpoint.sampler_blob == reference.checkpoint.sampler_blob
    assert resumed.checkpoint.progress.best_score == reference.checkpoint.progress.best_score
    assert resumed.checkpoint.best_program_artifact == reference.checkpoint.best_program_artifact


def test_pause_and_the_gate() -> None:
    store = MemoryStore()
    paused = rs.run(store, "g", seed=SEED, trials=TRIALS, stop_after=3)
    assert checkpoint.status_name(paused.checkpoint) == "paused"
    with pytest.raises(ResumeMismatch) as changed:
        rs.run(store, "g", seed=SEED, trials=TRIALS, trainset_variant="changed")
    assert changed.value.reason == "trainset_hash"
    with pytest.raises(ResumeMismatch) as bumped:
        rs.run(store, "g", seed=SEED, trials=TRIALS, accept_versions=2)
    assert "holds sampler state version 1; this run accepts 2." in str(bumped.value)
    done = rs.run(store, "g", seed=SEED, trials=TRIALS)
    assert _log(done) == _log(rs.run(MemoryStore(), "g", seed=SEED, trials=TRIALS))
    with pytest.raises(AlreadyTerminal):
        rs.run(store, "g", seed=SEED, trials=TRIALS)


def _log(stored: Stored) -> list[bytes]:
    return [e.SerializeToString(deterministic=True) for e in stored.checkpoint.progress.trial_log]
