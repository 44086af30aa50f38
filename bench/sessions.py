"""The sessions the commit benchmarks build: one float parameter per trial, like Optuna's.

Shared by ``commits.py`` and ``service.py`` so that both time commits on the
same trials; it imports only the library, so client processes stay light.
"""

from __future__ import annotations

from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint


def param(i: int) -> float:
    """Trial ``i``'s parameter, spread over [-10, 10)."""
    return (i * 7919 % 20_000) / 1000 - 10


def add_trial(cp: Checkpoint, i: int) -> None:
    """Record trial ``i``: a quadratic loss of its parameter, the parameter as its one stat."""
    x = param(i)
    ck.record_trial(
        cp, score=(x - 2) ** 2, candidate_id=str(i), stats={"x": x}, duration_ms=1000 + i % 97
    )


def trial_session(trials: int, session_id: str) -> Checkpoint:
    """A running, lower-is-better session of ``trials`` trials."""
    cp = ck.new(
        session_id=session_id,
        optimizer="optuna.samplers.RandomSampler",
        trainset_hash=bytes(32),
        sampler_blob=b"",
        sampler_format=("bench.Sampler", 1),
        direction="lower",
    )
    for i in range(trials):
        add_trial(cp, i)
    return cp
