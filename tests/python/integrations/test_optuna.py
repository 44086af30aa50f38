"""dsxir.integrations.optuna with the real Optuna package and real worker processes.

A TPE (and a random-sampler) study minimising a quadratic, SIGKILLed in the
middle of a trial and resumed by a new process, commits the very trials of
an uninterrupted run, none repeated or lost; with ``allow_pickle`` the
resumed study makes the trials of a plain Optuna run with the same sampler.
Without it nothing is ever unpickled. The resume gate refuses another
sampler or direction; finished, pruned and failed trials, interrupted
trials, values without a Term form and hostile trial logs are each handled
as the module says; the example of docs/integrations/optuna.md runs.
"""

from __future__ import annotations

import functools
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import optuna_worker as worker
import pytest

from dsxir.errors import AlreadyTerminal, ResumeMismatch
from dsxir.integrations.optuna import PICKLED, SEEDED, create_study, trial_seed
from dsxir.optimizer_session.terms import from_term, map_body, term_bytes
from dsxir.store import FileStore, MemoryStore, Store

WORKER = Path(worker.__file__).resolve()
DOC = Path(__file__).resolve().parents[3] / "docs" / "integrations" / "optuna.md"
SESSION = "tune"
TRIALS = 16
HOLD_AT = 9
SEED = 7


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def committed(store: Store, session_id: str = SESSION) -> list[dict[str, Any]]:
    """The trial log as plain data, without what differs between runs (times)."""
    log = []
    for entry in store.get(session_id).checkpoint.progress.trial_log:
        stats = from_term(entry.stats)
        del stats["datetime_start"]
        log.append(
            {
                "idx": entry.trial_idx,
                "candidate_id": entry.candidate_id,
                "status": entry.status,
                "score": entry.score if entry.HasField("score") else None,
                "stats": stats,
                "error": from_term(entry.error) if entry.HasField("error") else None,
            }
        )
    return log


def of_study(study: optuna.Study) -> list[tuple[Any, ...]]:
    """What a run decided, trial by trial: number, state, params, value, user attributes."""
    return [
        (t.number, t.state.name, t.params, t.value, t.user_attrs, t.intermediate_values)
        for t in study.trials
    ]


def of_log(log: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The same, read from a committed trial log."""
    return [
        (
            e["idx"],
            e["stats"]["state"],
            e["stats"]["params"],
            e["stats"]["value"],
            e["stats"]["user_attrs"],
            {step: value for step, value in e["stats"]["intermediate_values"]},
        )
        for e in log
    ]


def worker_command(url: str, kind: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(WORKER),
        "--store",
        url,
        "--session",
        SESSION,
        "--trials",
        str(TRIALS),
        "--sampler",
        kind,
        "--seed",
        str(SEED),
        *extra,
    ]


def kill_mid_trial(url: str, kind: str, marker: Path, *extra: str) -> None:
    """Start a worker, SIGKILL it while trial HOLD_AT runs."""
    process = subprocess.Popen(
        worker_command(url, kind, "--hold-at", str(HOLD_AT), "--marker", str(marker), *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if process.poll() is not None:
                raise AssertionError(f"the worker ended early: {process.communicate()}")
            assert time.monotonic() < deadline, "the worker never reached the held trial"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def resume(url: str, kind: str, *extra: str) -> None:
    done = subprocess.run(
        worker_command(url, kind, *extra), capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"done {TRIALS}")


# --- SIGKILL mid-run, then resume ---------------------------------------------------


@pytest.mark.parametrize("kind", ["tpe", "random"])
def test_killed_study_resumes_to_the_trials_of_an_uninterrupted_run(
    kind: str, tmp_path: Path
) -> None:
    reference = FileStore(tmp_path / "reference")
    worker.run(reference, SESSION, kind, TRIALS, seed=SEED)
    expected = committed(reference)

    url = f"file:{tmp_path / 'store'}"
    store = FileStore(tmp_path / "store")
    kill_mid_trial(url, kind, tmp_path / "holding")
    killed = store.get(SESSION).checkpoint
    assert len(killed.progress.trial_log) == HOLD_AT  # trials 0..8 committed, 9 was running
    assert committed(store) == expected[:HOLD_AT]

    resume(url, kind)
    got = committed(store)
    assert got == expected
    assert [e["candidate_id"] for e in got] == [str(i) for i in range(TRIALS)]
    states = [e["stats"]["state"] for e in got]
    assert states.count("PRUNED") == 2 and states.count("FAIL") == 2  # 4, 10 and 5, 12
    cp = store.get(SESSION).checkpoint
    ref = reference.get(SESSION).checkpoint
    assert cp.progress.best_trial_idx == ref.progress.best_trial_idx
    assert cp.progress.best_score == min(e["score"] for e in got if e["score"] is not None)
    assert (cp.progress.attempts, cp.progress.completed, cp.progress.errors) == (TRIALS, 14, 2)
    assert cp.direction == 1  # lower, as the study minimises
    assert cp.sampler_blob == term_bytes({"seed": SEED})  # the seed, not a pickle

    with worker.open_study(store, SESSION, kind, seed=SEED) as study:
        assert of_study(study.study) == of_log(expected)
        assert study.study.best_trial.number == ref.progress.best_trial_idx


def test_pickled_sampler_resumes_as_a_plain_optuna_run(tmp_path: Path) -> None:
    plain = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=SEED, n_startup_trials=worker.STARTUP_TRIALS),
    )
    plain.optimize(worker.objective, n_trials=TRIALS, catch=(ValueError,))

    url = f"file:{tmp_path / 'store'}"
    store = FileStore(tmp_path / "store")
    kill_mid_trial(url, "tpe", tmp_path / "holding", "--pickle")
    cp = store.get(SESSION).checkpoint
    assert (cp.sampler_format.module, cp.sampler_format.version) == (
        "optuna.samplers.TPESampler",
        PICKLED,
    )
    assert cp.sampler_blob.startswith(b"\x80")  # a pickle, as asked for
    with pytest.raises(ResumeMismatch) as refused:  # not unpickled without the opt-in
        worker.open_study(store, SESSION, "tpe", seed=SEED)
    assert (refused.value.reason, refused.value.expected, refused.value.got) == (
        "sampler_version",
        SEEDED,
        PICKLED,
    )

    resume(url, "tpe", "--pickle")
    assert of_log(committed(store)) == of_study(plain)


# --- the sampler: seeded, never unpickled by default --------------------------------


class _Tripwire:
    """Unpickling it creates the file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10.0, 10.0)
    return (x - 2.0) ** 2


def test_default_sampler_state_is_the_seed_and_a_planted_pickle_never_runs(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    with create_study(store, "s", seed=123) as study:
        study.optimize(quadratic, 3)
        assert study.seed == 123
    cp = store.get("s").checkpoint
    assert (cp.sampler_format.module, cp.sampler_format.version) == (
        "optuna.samplers.TPESampler",
        SEEDED,
    )
    assert cp.sampler_blob == term_bytes({"seed": 123})
    assert not cp.sampler_blob.startswith(b"\x80")

    tripwire = tmp_path / "unpickled"
    cp.sampler_blob = pickle.dumps(_Tripwire(tripwire))
    cp.session_id = "planted"
    store.put(cp)  # a session whose blob is a pickle that would run code
    with pytest.raises(ResumeMismatch) as refused:
        create_study(store, "planted")
    assert (refused.value.reason, refused.value.field) == ("checkpoint_shape", "sampler_blob")
    with pytest.raises(ResumeMismatch) as gated:
        create_study(store, "planted", sampler=optuna.samplers.TPESampler(), allow_pickle=True)
    assert gated.value.reason == "sampler_version"
    assert not tripwire.exists()
    assert store.get_lease("planted") is None  # each refusal released the lease


def test_each_trial_sampler_is_seeded_from_the_seed_and_its_number() -> None:
    seen: list[int] = []

    def factory(*, seed: int) -> optuna.samplers.BaseSampler:
        seen.append(seed)
        return optuna.samplers.RandomSampler(seed=seed)

    with create_study(MemoryStore(), "s", sampler=factory, seed=5) as study:
        study.optimize(quadratic, 3)
        params = [t.params["x"] for t in study.study.trials]
    assert seen[1:] == [trial_seed(5, n) for n in range(3)]  # seen[0]: the class probe
    assert len(set(seen[1:])) == 3
    assert params == [
        optuna.samplers.RandomSampler(seed=trial_seed(5, n)).sample_independent(
            optuna.create_study(),
            optuna.trial.create_trial(value=0.0),
            "x",
            optuna.distributions.FloatDistribution(-10.0, 10.0),
        )
        for n in range(3)
    ]


def test_resume_is_refused_for_another_sampler_or_direction() -> None:
    store = MemoryStore()
    with create_study(store, "s", seed=1) as study:
        study.optimize(quadratic, 2)
    with pytest.raises(ResumeMismatch) as other:
        create_study(store, "s", sampler=optuna.samplers.RandomSampler)
    assert (other.value.reason, other.value.expected, other.value.got) == (
        "sampler_format",
        "optuna.samplers.RandomSampler",
        "optuna.samplers.TPESampler",
    )
    with pytest.raises(ResumeMismatch) as flipped:
        create_study(store, "s", direction="maximize")
    assert flipped.value.reason == "direction"
    with pytest.raises(ResumeMismatch) as other_data:
        create_study(store, "s", trainset=[{"x": 1}])
    assert other_data.value.reason == "trainset_hash"
    with pytest.raises(TypeError, match="allow_pickle"):
        create_study(store, "s", sampler=optuna.samplers.TPESampler())
    with create_study(store, "s", seed=999) as study:  # a resumed session keeps its seed
        assert (study.seed, study.trials) == (1, 2)
        study.complete()
    with pytest.raises(AlreadyTerminal):
        create_study(store, "s")


# --- trials and their records --------------------------------------------------------


def test_complete_pruned_and_failed_trials_are_recorded_and_rebuilt() -> None:
    def objective(trial: optuna.Trial) -> Any:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(0.25, 0)
        trial.report(float("nan"), 1)
        if trial.number == 1:
            trial.report(0.75, 2)
            raise optuna.TrialPruned()
        if trial.number == 2:
            raise RuntimeError("diverged")
        if trial.number == 3:
            return None
        return -x

    store = MemoryStore()
    with create_study(store, "s", direction="maximize", seed=3) as study:
        study.optimize(objective, 2)
        with pytest.raises(RuntimeError, match="diverged"):
            study.optimize(objective, 5)
        assert study.trials == 3  # the failure was committed before it was raised
        with pytest.warns(UserWarning, match="None"):
            study.optimize(objective, 5)
        before = of_study(study.study)
        best = study.study.best_trial.number
    log = committed(store, "s")
    assert [e["stats"]["state"] for e in log] == ["COMPLETE", "PRUNED", "FAIL", "FAIL", "COMPLETE"]
    assert [e["status"] for e in log] == [1, 1, 2, 2, 1]  # ok, ok, error, error, ok
    assert [e["score"] is None for e in log] == [False, True, True, True, False]
    assert log[1]["stats"]["value"] == 0.75  # Optuna's value of a pruned trial, in stats
    assert log[0]["stats"]["intermediate_values"] == [[0, 0.25], [1, None]]  # NaN as null
    assert log[2]["error"] == {"class": "RuntimeError", "message": "diverged"}
    assert "None" in log[3]["error"]["message"]
    cp = store.get("s").checkpoint
    assert cp.direction == 0 and cp.progress.best_trial_idx == best
    assert (cp.progress.completed, cp.progress.errors) == (3, 2)

    with create_study(store, "s", direction="maximize") as study:
        rebuilt = of_study(study.study)
        assert [r[:4] for r in rebuilt] == [b[:4] for b in before]
        assert rebuilt[0][5][0] == 0.25 and rebuilt[0][5][1] != rebuilt[0][5][1]  # NaN back
        assert [t.duration is not None for t in study.study.trials] == [True] * 5


def test_n_trials_counts_committed_trials_and_constraints_survive() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        trial.set_constraint("c", x - 0.5)
        return x * x

    store = MemoryStore()
    with create_study(store, "s", seed=2) as study:
        study.optimize(objective, 3)
        study.optimize(objective, 3)
        assert study.trials == 3
        constraints = [t.constraints for t in study.study.trials]
    with create_study(store, "s") as study:
        assert [t.constraints for t in study.study.trials] == constraints
        study.optimize(objective, 5)
        assert [t.number for t in study.study.trials] == [0, 1, 2, 3, 4]


def test_interrupted_trial_is_not_committed_and_runs_again() -> None:
    first: dict[str, float] = {}

    def interrupted(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10.0, 10.0)
        if trial.number == 2:
            first.update(trial.params)
            raise KeyboardInterrupt
        return x

    store = MemoryStore()
    with create_study(store, "s", seed=4) as study:
        with pytest.raises(KeyboardInterrupt):
            study.optimize(interrupted, 4)
        with pytest.raises(RuntimeError, match="trial 2 did not finish"):
            study.optimize(interrupted, 4)
    cp = store.get("s").checkpoint
    assert len(cp.progress.trial_log) == 2 and cp.status == 2  # paused
    with create_study(store, "s") as study:
        study.optimize(quadratic, 4)
        assert study.study.trials[2].params == first


def test_a_user_attribute_without_a_term_form_is_refused_and_the_trial_reruns() -> None:
    def bad(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10.0, 10.0)
        trial.set_user_attr("model", object())
        return x

    store = MemoryStore()
    with create_study(store, "s", seed=8) as study:
        with pytest.raises(TypeError, match=r"stats\['user_attrs'\]\['model'\]"):
            study.optimize(bad, 2)
        tried = study.study.trials[0].params
    assert store.get("s").checkpoint.progress.trial_log == []
    with create_study(store, "s") as study:
        study.optimize(quadratic, 1)
        assert study.study.trials[0].params == tried


def test_multi_objective_is_refused() -> None:
    with pytest.raises(ValueError, match="single-objective"):
        create_study(MemoryStore(), "s", direction=["minimize", "maximize"])  # type: ignore[arg-type]
    store = MemoryStore()
    with (
        create_study(store, "s", seed=1) as study,
        pytest.raises(ValueError, match="single-objective"),
    ):
        study.optimize(lambda trial: (trial.suggest_float("x", 0, 1), 1.0), 1, catch=ValueError)
    (entry,) = committed(store, "s")
    assert entry["stats"]["state"] == "FAIL" and "single-objective" in entry["error"]["message"]


# --- hostile trial logs -----------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        ("distributions", {"x": "[" * 100_000}),
        ("distributions", {"x": '{"name": "Nonsense", "attributes": {}}'}),
        ("params", {"x": 99.0}),
        ("state", "RUNNING"),
        ("intermediate_values", [[0]]),
        ("constraints", {"tpe:relative_params:0": "{}"}),
        ("datetime_start", "yesterday"),
    ],
    ids=lambda d: d[0],
)
def test_a_trial_log_this_module_did_not_write_is_refused(damage: tuple[str, Any]) -> None:
    store = MemoryStore()
    with create_study(store, "s", seed=1) as study:
        study.optimize(quadratic, 2)
    cp = store.get("s").checkpoint
    entry = cp.progress.trial_log[1]
    stats = from_term(entry.stats)
    key, value = damage
    stats[key] = value
    entry.ClearField("stats")
    entry.stats.MergeFromString(map_body(stats))
    cp.session_id = "damaged"
    store.put(cp)  # a new session whose log holds the damaged trial
    with pytest.raises(ResumeMismatch) as refused:
        create_study(store, "damaged")
    assert refused.value.reason == "checkpoint_shape"
    assert refused.value.field == "progress.trial_log[1].stats"
    assert store.get_lease("damaged") is None


# --- the documented example ---------------------------------------------------------------


def test_the_documented_example_runs_and_resumes(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]  # the second run resumes a finished study: same result
    assert "trials: 30" in outputs[0]
    with create_study(FileStore(tmp_path / ".dsxir" / "sessions"), "quadratic") as study:
        assert study.trials == 30
        assert abs(study.study.best_params["x"] - 2.0) < 1.0


def test_sampler_factories_are_called_with_a_seed_keyword() -> None:
    partial = functools.partial(optuna.samplers.TPESampler, n_startup_trials=2)
    with create_study(MemoryStore(), "s", sampler=partial, seed=0) as study:
        study.optimize(quadratic, 3)
        assert study.trials == 3
