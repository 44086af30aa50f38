"""dsxir.integrations.optuna attacked: odd catch and timeout values, text values, hostile trials."""

from __future__ import annotations

import math
import time
from typing import Any

import optuna
import pytest

from dsxir.errors import ResumeMismatch
from dsxir.integrations.optuna import create_study
from dsxir.optimizer_session.terms import from_term, map_body
from dsxir.store import MemoryStore, Store


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def quadratic(trial: optuna.Trial) -> float:
    return (trial.suggest_float("x", -10.0, 10.0) - 2.0) ** 2


def failing(trial: optuna.Trial) -> float:
    trial.suggest_float("x", 0.0, 1.0)
    raise ValueError("the objective failed")


def log_states(store: Store, session_id: str = "s") -> list[str]:
    return [
        from_term(entry.stats)["state"]
        for entry in store.get(session_id).checkpoint.progress.trial_log
    ]


@pytest.mark.parametrize(
    "catch",
    [ValueError, (ValueError,), [ValueError], {ValueError}, (e for e in [LookupError, ValueError])],
    ids=["class", "tuple", "list", "set", "generator"],
)
def test_catch_takes_what_optuna_takes(catch: Any) -> None:
    store = MemoryStore()
    with create_study(store, "s", seed=1, handle_signals=False) as study:
        study.optimize(failing, 3, catch=catch)
    assert log_states(store) == ["FAIL"] * 3


@pytest.mark.parametrize("catch", ["ValueError", [ValueError, "x"], [KeyboardInterrupt], 3])
def test_a_catch_that_names_no_exception_classes_is_refused_before_a_trial(catch: Any) -> None:
    store = MemoryStore()
    with create_study(store, "s", seed=1, handle_signals=False) as study:
        with pytest.raises(TypeError, match="catch"):
            study.optimize(failing, 3, catch=catch)
        assert study.trials == 0
        study.optimize(quadratic, 1)  # the study is still usable
    assert log_states(store) == ["COMPLETE"]


@pytest.mark.parametrize("value", ["1.5", b"1.5", bytearray(b"2")])
def test_a_text_value_fails_its_trial_like_any_value_optuna_refuses(value: Any) -> None:
    store = MemoryStore()
    with create_study(store, "s", seed=1, handle_signals=False) as study:
        study.optimize(lambda trial: (trial.suggest_float("x", 0.0, 1.0), value)[1], 2)
    log = store.get("s").checkpoint.progress.trial_log
    assert log_states(store) == ["FAIL", "FAIL"]
    assert "did not accept the objective's value" in from_term(log[0].error)["message"]


def planted(store: Store, key: str, value: Any) -> None:
    """Session "d": a copy of "s" whose trial 1 has ``stats[key] = value``."""
    cp = store.get("s").checkpoint
    entry = cp.progress.trial_log[1]
    stats = from_term(entry.stats)
    stats[key] = value
    entry.ClearField("stats")
    entry.stats.MergeFromString(map_body(stats))
    cp.session_id = "d"
    store.put(cp)


FLOAT = (
    '{"name": "FloatDistribution", "attributes": {"low": %s, "high": %s, "log": false, "step": %s}}'
)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("distributions", {"x": FLOAT % ("-1e308", "1e308", "1e-300")}),  # decimal error
        ("distributions", {"x": FLOAT % ("-1", "1", "1e-320")}),
        ("distributions", {"x": '{"type": "int", "low": 0, "high": 10, "step": 1e-300}'}),
        ("constraints", {"constraints": "x"}),
        ("constraints", {"constraints": [True]}),
        ("constraints", {"constraints:c": [1.0]}),
        ("constraints", {"constraints:c": "x"}),
    ],
)
def test_a_hostile_stored_trial_is_refused_not_raised_through(key: str, value: Any) -> None:
    store = MemoryStore()
    with create_study(store, "s", seed=1, handle_signals=False) as study:
        study.optimize(quadratic, 2)
    planted(store, key, value)
    with pytest.raises(ResumeMismatch) as refused:
        create_study(store, "d", handle_signals=False)
    assert (refused.value.reason, refused.value.field) == (
        "checkpoint_shape",
        "progress.trial_log[1].stats",
    )
    assert store.get_lease("d") is None


def test_stored_constraints_of_both_forms_resume() -> None:
    store = MemoryStore()
    with create_study(store, "s", seed=1, handle_signals=False) as study:
        study.optimize(quadratic, 2)
    planted(store, "constraints", {"constraints": [1.0, -2], "constraints:c": 0.5})
    with create_study(store, "d", handle_signals=False) as resumed:
        assert resumed.study.trials[1].system_attrs == {
            "constraints": [1.0, -2],
            "constraints:c": 0.5,
        }


def test_timeout_stops_starting_trials_as_in_optuna() -> None:
    store = MemoryStore()

    def slow(trial: optuna.Trial) -> float:
        time.sleep(0.3)
        return quadratic(trial)

    with create_study(store, "s", seed=1, handle_signals=False) as study:
        study.optimize(slow, 100, timeout=0.1)  # the first trial starts; none after it
        assert study.trials == 1
        study.optimize(quadratic, 100, timeout=0)
        assert study.trials == 1
        study.optimize(quadratic, 5, timeout=math.inf)
        assert study.trials == 5
    assert len(store.get("s").checkpoint.progress.trial_log) == 5


@pytest.mark.parametrize("timeout", [-1, math.nan, True, "10"])
def test_a_bad_timeout_is_refused_before_a_trial(timeout: Any) -> None:
    with create_study(MemoryStore(), "s", seed=1, handle_signals=False) as study:
        with pytest.raises(ValueError, match="timeout"):
            study.optimize(quadratic, 3, timeout=timeout)
        assert study.trials == 0
