"""Messages that say what to do: type errors name what is accepted and what came; numpy scalars
are numbers wherever Python numbers are."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint


def _cp(**kw: Any) -> Checkpoint:
    args: dict[str, Any] = {
        "session_id": "s1",
        "optimizer": "demo.Opt",
        "trainset_hash": bytes(32),
        "sampler_blob": b"",
        "sampler_format": ("demo.Sampler", 1),
    }
    args.update(kw)
    return ck.new(**args)


def test_numpy_scalars_are_numbers_in_a_trial() -> None:
    cp = _cp(sampler_format=("demo.Sampler", np.int64(2)))
    ck.record_trial(cp, score=np.float32(0.25), duration_ms=np.int64(12), stats={"n": np.int64(3)})
    ck.record_trial(cp, score=np.float64(0.5), duration_ms=np.uint32(7))
    entry = cp.progress.trial_log[0]
    assert (entry.score, entry.duration_ms) == (0.25, 12)
    assert cp.sampler_format.version == 2
    assert cp.progress.best_score == 0.5 and cp.progress.trial_log[1].duration_ms == 7
    assert ck.from_term(entry.stats) == {"n": 3}


SCORE = "score must be a real number (int, float or a numpy scalar) or None, not "
DURATION = "duration_ms must be an int (or a numpy integer), not "


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"score": "0.5"}, SCORE + "str"),
        ({"score": True}, SCORE + "bool"),
        ({"score": 0.5, "duration_ms": 1.5}, DURATION + "float"),
        ({"score": 0.5, "duration_ms": np.float64(2)}, DURATION + "numpy.float64"),
        ({"score": 0.5, "candidate_id": 7}, "candidate_id must be a str or None, not int"),
    ],
)
def test_record_trial_type_errors_name_the_accepted_and_the_received(
    kw: dict[str, Any], message: str
) -> None:
    cp = _cp()
    with pytest.raises(TypeError) as info:
        ck.record_trial(cp, **kw)
    assert str(info.value) == message
    assert len(cp.progress.trial_log) == 0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"session_id": b"s1"}, "session_id must be a str, not bytes"),
        ({"trainset_hash": "00" * 32}, "trainset_hash must be bytes, not str"),
        ({"sampler_format": ["m", 1]}, "sampler_format must be a (module, version) pair, not list"),
        ({"sampler_format": ("m", 1.0)}, "sampler_format version must be an int, not float"),
        ({"program_module": 3}, "program_module must be a str or None, not int"),
    ],
)  # fmt: skip
def test_new_type_errors_name_the_accepted_and_the_received(
    kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError) as info:
        _cp(**kw)
    assert str(info.value) == message
