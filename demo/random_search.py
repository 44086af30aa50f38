"""A seeded random-search optimizer that checkpoints after every trial, on the session runner.

It fits a line ``y = a*x + b`` to a toy trainset by sampling ``(a, b)``
uniformly from ``[-4, 4]^2``; a trial's score is the negative mean squared
error, and a sample with ``a < -3`` "diverges" and is recorded as an error
trial. Everything it needs to go on lives in the checkpoint:

- ``sampler_blob`` in its own versioned layout, ``sampler_format =
  ("demo.RandomSearch", 1)``: version 1 is 24 bytes, the magic ``DRS1``,
  4 reserved zero bytes, then the SplitMix64 generator state and the number
  of draws so far, both unsigned 64-bit big-endian;
- the trial log, counters and best trial, kept by the checkpoint library.

The blob is committed together with each trial, so a run resumed after a
crash draws exactly the samples an uninterrupted run would have drawn. The
session runner (:mod:`dsxir.session`) holds the session's lease while the
optimizer runs, so a second optimizer process cannot run it at the same time.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from dsxir.session import Session, open_session
from dsxir.store import Store, Stored

OPTIMIZER = "demo.RandomSearch"
SAMPLER_MODULE = "demo.RandomSearch"
SAMPLER_VERSION = 1
_BLOB_V1 = struct.Struct(">4s4xQQ")
_BLOB_MAGIC = b"DRS1"
_MASK = (1 << 64) - 1


def trainset(variant: str = "original") -> list[dict[str, Any]]:
    """The toy trainset: points near ``y = 1.5 x - 0.5``; ``changed`` moves one point."""
    points = [
        {"x": x / 4, "y": round(1.5 * (x / 4) - 0.5 + 0.05 * ((x * 7) % 5 - 2), 6)}
        for x in range(-8, 9)
    ]
    if variant == "changed":
        points[3] = {"x": points[3]["x"], "y": points[3]["y"] + 1.0}
    elif variant != "original":
        raise ValueError(f"unknown trainset variant {variant!r}")
    return points


@dataclass
class SplitMix64:
    """The SplitMix64 generator: 64 bits of state, the same numbers in every language."""

    state: int
    draws: int = 0

    def next_u64(self) -> int:
        """The next 64-bit output."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        self.draws += 1
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def uniform(self, low: float, high: float) -> float:
        """A float uniformly in ``[low, high)`` (53 random bits)."""
        return low + (high - low) * ((self.next_u64() >> 11) / float(1 << 53))


def encode_blob(rng: SplitMix64) -> bytes:
    """The version-1 sampler blob of a generator."""
    return _BLOB_V1.pack(_BLOB_MAGIC, rng.state, rng.draws)


def decode_blob(blob: bytes) -> SplitMix64:
    """Read a version-1 sampler blob; ``ValueError`` for anything else."""
    if len(blob) != _BLOB_V1.size:
        raise ValueError(f"sampler blob has {len(blob)} bytes, version 1 has {_BLOB_V1.size}")
    magic, state, draws = _BLOB_V1.unpack(blob)
    if magic != _BLOB_MAGIC:
        raise ValueError("sampler blob does not start with DRS1")
    return SplitMix64(state, draws)


def evaluate(a: float, b: float, points: list[dict[str, Any]]) -> float:
    """The score of a line on the trainset: the negative mean squared error."""
    if a < -3.0:
        raise FloatingPointError(f"diverged at a={a:.3f}")
    error = sum(float(a * p["x"] + b - p["y"]) ** 2 for p in points) / len(points)
    return -error


def run(
    store: Store | str,
    session_id: str,
    *,
    seed: int,
    trials: int,
    trainset_variant: str = "original",
    accept_versions: int | Collection[int] = SAMPLER_VERSION,
    delay: float = 0.0,
    stop_after: int | None = None,
    on_commit: Callable[[Stored], None] | None = None,
    lease_ttl: float = 30.0,
) -> Stored:
    """Start or resume a session with the session runner and run it to ``trials`` trials.

    :func:`dsxir.session.open_session` holds the session's lease (``LeaseHeld``
    while another live worker has it) and sends a stored session through the
    resume gate (terminal status, optimizer, sampler format, the version or
    versions ``accept_versions``, trainset hash); its errors propagate.
    ``delay`` seconds of "work" precede each trial's commit. With
    ``stop_after``, the run pauses the session after that many trials of
    this run and returns; so does an exception or SIGINT/SIGTERM, which
    leave the session paused. The session is completed after ``trials``.
    """
    points = trainset(trainset_variant)
    with open_session(
        store,
        session_id,
        optimizer=OPTIMIZER,
        sampler_format=(SAMPLER_MODULE, SAMPLER_VERSION),
        accept_sampler_versions=accept_versions,
        trainset=points,
        optimizer_opts=[("seed", seed), ("trials", trials), ("search_box", (-4.0, 4.0))],
        program_module="demo.random_search",
        sampler_blob=encode_blob(SplitMix64(seed)),
        lease_ttl=lease_ttl,
    ) as session:
        rng = decode_blob(session.sampler_blob)
        done_here = 0
        while session.trials < trials:
            if stop_after is not None and done_here >= stop_after:
                session.pause()
                break
            _one_trial(session, rng, points, delay)
            done_here += 1
            if on_commit is not None:
                on_commit(Stored(session.checkpoint, session.generation))
        else:
            session.complete(reason={"trials": trials})
    return Stored(session.checkpoint, session.generation)


def _one_trial(
    session: Session,
    rng: SplitMix64,
    points: list[dict[str, Any]],
    delay: float,
) -> None:
    a = rng.uniform(-4.0, 4.0)
    b = rng.uniform(-4.0, 4.0)
    if delay:
        time.sleep(delay)
    candidate = f"a={a:+.4f} b={b:+.4f}"
    cost_ms = 20 + int(abs(a * b) * 10)  # simulated cost: the same in every run
    blob = encode_blob(rng)
    try:
        score = evaluate(a, b, points)
    except FloatingPointError as exc:
        session.record_trial(
            score=None,
            status="error",
            candidate_id=candidate,
            duration_ms=cost_ms,
            error=exc,
            sampler_blob=blob,
        )
    else:
        best = session.best_score
        session.record_trial(
            score=score,
            candidate_id=candidate,
            stats={"a": a, "b": b, "rmse": math.sqrt(-score)},
            duration_ms=cost_ms,
            sampler_blob=blob,
            best_program_artifact={"a": a, "b": b} if best is None or score > best else None,
        )
