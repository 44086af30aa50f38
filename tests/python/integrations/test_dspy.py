"""ResumableRandomSearch: DSPy's random search, one committed trial per candidate, resumable.

Offline throughout: the model is ``DummyLM`` (``dspy_task``), dspy's cache
directory is a temporary one, and the worker processes refuse any network
connection. Crash tests kill real worker processes with SIGKILL.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("DSPY_CACHEDIR", str(Path(tempfile.gettempdir()) / "dsxir-tests-dspy-cache"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy
import dspy_task
from dspy.teleprompt import BootstrapFewShotWithRandomSearch

from dsxir.errors import AlreadyTerminal, InvalidCheckpoint, LeaseHeld, ResumeMismatch
from dsxir.integrations.dspy import (
    ARTIFACT_FORMAT,
    OPTIMIZER,
    SAMPLER_FORMAT,
    ResumableRandomSearch,
    load_best_program,
    program_artifact,
    restore_program,
)
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.session import Interrupted
from dsxir.store import FileStore, MemoryStore, Store

WORKER = Path(__file__).with_name("dspy_task.py")
DOC = Path(__file__).resolve().parents[3] / "docs" / "integrations" / "dspy.md"
LOGGER = "dsxir.integrations.dspy"


@pytest.fixture(autouse=True)
def dummy_lm() -> Iterator[None]:
    with dspy.context(lm=dspy_task.make_lm()):
        yield


def search(**changes: Any) -> ResumableRandomSearch:
    return ResumableRandomSearch(**{**dspy_task.KNOBS, **changes})


def compile_in(store: Store, session_id: str = "s", **options: Any) -> Any:
    trainset = options.pop("trainset") if "trainset" in options else dspy_task.trainset()
    knobs = options.pop("knobs", {})
    return search(**knobs).compile(
        dspy_task.Lookup(), trainset=trainset, store=store, session_id=session_id, **options
    )


def trial_rows(cp: Checkpoint) -> list[tuple[str, float, Any]]:
    return [(t.candidate_id, t.score, checkpoint.from_term(t.stats)) for t in cp.progress.trial_log]


def interrupt_after(lm_calls: int) -> Any:
    """A dspy context that sends this process SIGINT at model call number ``lm_calls``."""
    count = 0

    def on_lm() -> None:
        nonlocal count
        count += 1
        if count == lm_calls:
            os.kill(os.getpid(), signal.SIGINT)

    return dspy.context(callbacks=[dspy_task.LMCalls(on_lm)])


@pytest.fixture(scope="module")
def reference() -> Any:
    """The program DSPy's own BootstrapFewShotWithRandomSearch returns on the task."""
    with dspy.context(lm=dspy_task.make_lm()):
        return BootstrapFewShotWithRandomSearch(**dspy_task.KNOBS).compile(
            dspy_task.Lookup(), trainset=dspy_task.trainset()
        )


# --- an uninterrupted run ---------------------------------------------------


def test_an_uninterrupted_run_returns_what_dspy_returns(reference: Any) -> None:
    store = MemoryStore()
    best = compile_in(store)
    assert best.dump_state() == reference.dump_state()
    assert best.dump_state()["answer"]["demos"]  # the best has demos: seed 3, not zero-shot
    ours = [(c["seed"], c["score"], c["subscores"]) for c in best.candidate_programs]
    theirs = [(c["seed"], c["score"], c["subscores"]) for c in reference.candidate_programs]
    assert ours == theirs

    stored = store.get("s").checkpoint
    assert checkpoint.status_name(stored) == "completed"
    assert stored.optimizer == OPTIMIZER
    assert (stored.sampler_format.module, stored.sampler_format.version) == SAMPLER_FORMAT
    assert stored.trainset_hash == checkpoint.hash_trainset(dspy_task.trainset())
    assert [(t.candidate_id, t.score) for t in stored.progress.trial_log] == [
        (str(seed), dspy_task.SCORES[seed]) for seed in dspy_task.SEEDS
    ]
    assert stored.progress.best_trial_idx == dspy_task.SEEDS.index(3)
    by_seed = {c["seed"]: c for c in reference.candidate_programs}
    for trial in stored.progress.trial_log:
        stats = checkpoint.from_term(trial.stats)
        program = by_seed[int(trial.candidate_id)]["program"]
        assert stats == {
            "seed": int(trial.candidate_id),
            "subscores": by_seed[int(trial.candidate_id)]["subscores"],
            "demos": {"answer": len(program.answer.demos)},
        }
    artifact = checkpoint.from_term(stored.best_program_artifact)
    assert artifact["format"] == ARTIFACT_FORMAT
    assert (artifact["seed"], artifact["compiled"]) == (3, True)
    assert artifact["state"] == reference.dump_state()
    options = {e.key: checkpoint.from_term(e.value) for e in stored.optimizer_opts}
    assert options["metric"] == "dspy_task.exact_match"
    assert options["max_labeled_demos"] == 2
    assert options["valset_hash"] == checkpoint.hash_trainset(dspy_task.trainset())


@pytest.mark.parametrize("stop_at_score", [62.5, 70.0])
def test_stop_at_score_stops_where_dspy_stops(stop_at_score: float) -> None:
    with dspy.context(lm=dspy_task.make_lm()):
        theirs = BootstrapFewShotWithRandomSearch(
            **dspy_task.KNOBS, stop_at_score=stop_at_score
        ).compile(dspy_task.Lookup(), trainset=dspy_task.trainset())
    store = MemoryStore()
    ours = compile_in(store, knobs={"stop_at_score": stop_at_score})
    assert ours.dump_state() == theirs.dump_state()
    assert [c["seed"] for c in ours.candidate_programs] == [
        c["seed"] for c in theirs.candidate_programs
    ]
    stored = store.get("s").checkpoint
    assert checkpoint.status_name(stored) == "completed"
    assert checkpoint.from_term(stored.terminal_reason) == "stop_at_score"
    assert len(stored.progress.trial_log) == len(theirs.candidate_programs) < len(dspy_task.SEEDS)


# --- stopping and resuming in one process ------------------------------------


class SigintAtCommit(MemoryStore):
    """A memory store that sends this process SIGINT while committing trial ``n``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def put(self, cp: Checkpoint, *, expected_generation: int | None = None) -> int:
        generation = super().put(cp, expected_generation=expected_generation)
        if len(cp.progress.trial_log) == self.n and checkpoint.status_name(cp) == "running":
            self.n = -1
            os.kill(os.getpid(), signal.SIGINT)
        return generation


def test_a_resumed_run_that_had_reached_stop_at_score_evaluates_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with dspy.context(lm=dspy_task.make_lm()):
        theirs = BootstrapFewShotWithRandomSearch(**dspy_task.KNOBS, stop_at_score=70.0).compile(
            dspy_task.Lookup(), trainset=dspy_task.trainset()
        )
    store = SigintAtCommit(7)  # seed 3 scores 75.0: dspy stops after it
    with pytest.raises(Interrupted):  # raised once the commit of trial 7 has returned
        compile_in(store, knobs={"stop_at_score": 70.0})
    paused = store.get("s").checkpoint
    assert checkpoint.status_name(paused) == "paused"
    assert len(paused.progress.trial_log) == 7
    caplog.set_level(logging.INFO, logger=LOGGER)
    best = compile_in(store, knobs={"stop_at_score": 70.0})
    assert not [r for r in caplog.records if getattr(r, "event", None) == "evaluating"]
    assert best.dump_state() == theirs.dump_state()
    done = store.get("s").checkpoint
    assert checkpoint.status_name(done) == "completed"
    assert checkpoint.from_term(done.terminal_reason) == "stop_at_score"


def test_sigint_pauses_and_the_resumed_run_skips_committed_candidates(
    reference: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    with pytest.raises(Interrupted), interrupt_after(20):  # in candidate -1 (calls 15 to 22)
        compile_in(store)
    paused = store.get("s").checkpoint
    assert checkpoint.status_name(paused) == "paused"
    assert [t.candidate_id for t in paused.progress.trial_log] == ["-3", "-2"]

    caplog.set_level(logging.INFO, logger=LOGGER)
    best = compile_in(store)
    events = [(r.event, r.seed) for r in caplog.records if hasattr(r, "event")]
    assert [seed for event, seed in events if event == "skipped"] == [-3, -2]
    assert [seed for event, seed in events if event == "evaluating"] == dspy_task.SEEDS[2:]
    assert best.dump_state() == reference.dump_state()
    done = store.get("s").checkpoint
    assert checkpoint.status_name(done) == "completed"
    full = MemoryStore()
    compile_in(full)
    assert trial_rows(done) == trial_rows(full.get("s").checkpoint)
    assert done.best_program_artifact == full.get("s").checkpoint.best_program_artifact


def test_the_best_program_of_an_earlier_run_is_restored_from_its_artifact(
    reference: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    with pytest.raises(Interrupted), interrupt_after(58):  # in candidate 4, after 3 was best
        compile_in(store)
    assert store.get("s").checkpoint.progress.best_trial_idx == 6
    caplog.set_level(logging.INFO, logger=LOGGER)
    best = compile_in(store)
    assert [r.seed for r in caplog.records if getattr(r, "event", None) == "evaluating"] == [4]
    assert best.dump_state() == reference.dump_state()
    assert best._compiled is True
    assert all(isinstance(demo, dict) for demo in best.answer.demos)  # as dspy's JSON load
    assert best(question=dspy_task.QUESTIONS[3][0]).answer == "13"  # a demo the model gets wrong
    assert [c["seed"] for c in best.candidate_programs] == [
        c["seed"] for c in reference.candidate_programs
    ]


def test_resume_with_another_trainset_is_refused() -> None:
    store = MemoryStore()
    with pytest.raises(Interrupted), interrupt_after(20):
        compile_in(store)
    before = store.get("s")
    with pytest.raises(ResumeMismatch) as refused:
        compile_in(store, trainset=dspy_task.trainset(other=True))
    assert refused.value.reason == "trainset_hash"
    after = store.get("s")
    assert after.generation == before.generation
    assert after.checkpoint == before.checkpoint
    assert store.get_lease("s") is None


def test_resume_with_other_options_is_refused_and_the_session_stays_paused() -> None:
    store = MemoryStore()
    with pytest.raises(Interrupted), interrupt_after(20):
        compile_in(store)
    for changes, shown in (
        ({"knobs": {"max_labeled_demos": 3}}, "max_labeled_demos=3"),
        ({"valset": dspy_task.trainset()[:4]}, "valset_hash="),
        ({"restrict": [0, 1]}, "restrict=[0, 1]"),
    ):
        with pytest.raises(ResumeMismatch) as refused:
            compile_in(store, **changes)
        assert refused.value.reason == "optimizer_opts"
        assert shown in str(refused.value)
        stored = store.get("s").checkpoint
        assert checkpoint.status_name(stored) == "paused"
        assert [t.candidate_id for t in stored.progress.trial_log] == ["-3", "-2"]
    compile_in(store)  # the same options still resume
    assert checkpoint.status_name(store.get("s").checkpoint) == "completed"


def test_a_trial_of_no_candidate_is_refused() -> None:
    store = MemoryStore()
    with pytest.raises(Interrupted), interrupt_after(20):
        compile_in(store)
    stored = store.get("s")
    cp = stored.checkpoint
    checkpoint.resume(cp)
    checkpoint.record_trial(cp, score=1.0, candidate_id="07")
    checkpoint.pause(cp)
    store.put(cp, expected_generation=stored.generation)
    with pytest.raises(ResumeMismatch) as refused:
        compile_in(store)
    assert refused.value.reason == "checkpoint_shape"
    assert refused.value.field == "progress.trial_log[2].candidate_id"
    assert checkpoint.status_name(store.get("s").checkpoint) == "paused"


def test_a_completed_session_is_read_back_not_run_again(reference: Any) -> None:
    store = MemoryStore()
    compile_in(store)
    generation = store.get("s").generation
    with pytest.raises(AlreadyTerminal):
        compile_in(store)
    again = load_best_program(store, "s", dspy_task.Lookup())
    assert again.dump_state() == reference.dump_state()
    assert store.get("s").generation == generation


def test_load_best_program_before_any_trial_and_of_another_optimizer() -> None:
    store = MemoryStore()
    with pytest.raises(Interrupted), interrupt_after(1):
        compile_in(store)
    assert len(store.get("s").checkpoint.progress.trial_log) == 0
    assert load_best_program(store, "s", dspy_task.Lookup()) is None
    other = checkpoint.new(
        session_id="o",
        optimizer="optuna.TPESampler",
        trainset_hash=bytes(32),
        sampler_blob=b"",
        sampler_format=SAMPLER_FORMAT,
    )
    store.put(other)
    with pytest.raises(ResumeMismatch) as refused:
        load_best_program(store, "o", dspy_task.Lookup())
    assert refused.value.reason == "optimizer"


def test_a_session_held_by_a_live_worker_is_not_touched() -> None:
    store = MemoryStore()
    store.acquire_lease("s", "other-worker", ttl=60)
    calls = []
    with (
        pytest.raises(LeaseHeld) as held,
        dspy.context(callbacks=[dspy_task.LMCalls(lambda: calls.append(1))]),
    ):
        compile_in(store)
    assert held.value.holder == "other-worker"
    assert store.list() == [] and calls == []


def test_bad_knobs_and_an_empty_valset_are_refused_before_anything_runs() -> None:
    with pytest.raises(TypeError, match="max_labeled_demos must be an int"):
        search(max_labeled_demos=2.0)
    with pytest.raises(ValueError, match="num_candidate_programs must be >= 0"):
        search(num_candidate_programs=-1)
    with pytest.raises(ValueError, match="max_bootstrapped_demos must be >= 1"):
        search(max_bootstrapped_demos=0)
    search(max_bootstrapped_demos=0, num_candidate_programs=0)  # no seed draws from 1 … 0
    store = MemoryStore()
    with pytest.raises(ValueError, match="is empty"):
        compile_in(store, trainset=[])
    with pytest.raises(TypeError, match="stop_at_score must be a number"):
        compile_in(store, knobs={"stop_at_score": "high"})
    assert store.list() == []


def test_restrict_naming_no_candidate_stores_nothing() -> None:
    store = MemoryStore()
    with pytest.raises(ValueError, match="does not match any candidate seed"):
        compile_in(store, restrict=[99])
    assert store.list() == []


def test_restrict_walks_only_the_seeds_named(reference: Any) -> None:
    store = MemoryStore()
    best = compile_in(store, restrict=[3, -3])
    assert [t.candidate_id for t in store.get("s").checkpoint.progress.trial_log] == ["-3", "3"]
    assert best.dump_state() == reference.dump_state()


# --- the artifact ------------------------------------------------------------


def test_the_artifact_rule() -> None:
    program = dspy_task.Lookup()
    program.answer.demos = [dspy.Example(question="q", answer="a").with_inputs("question")]
    program.answer.train = [dspy.Example(question="q", answer=("a", 1))]
    artifact = program_artifact(program, seed=-2)
    assert artifact["state"]["answer"]["demos"] == [{"question": "q", "answer": "a"}]
    assert artifact["state"]["answer"]["train"] == [{"question": "q", "answer": ("a", 1)}]
    cp = checkpoint.new(
        session_id="a",
        optimizer=OPTIMIZER,
        trainset_hash=bytes(32),
        sampler_blob=b"",
        sampler_format=SAMPLER_FORMAT,
    )
    checkpoint.record_trial(cp, score=1.0, candidate_id="-2", best_program_artifact=artifact)
    stored = checkpoint.from_term(checkpoint.decode(checkpoint.encode(cp)).best_program_artifact)
    assert stored == artifact  # the Term round trip keeps tuples, ints and strings
    restored = restore_program(dspy_task.Lookup(), stored)
    assert program_artifact(restored, seed=-2) == artifact
    assert restored.answer.train == [{"question": "q", "answer": ("a", 1)}]

    program.answer.train = [object()]
    with pytest.raises(TypeError, match=re.escape("state['answer']['train'][0]: builtins.object")):
        program_artifact(program)


def test_a_demo_holding_a_credential_is_refused_or_redacted() -> None:
    secret = "sk-" + "a1B2" * 6
    trainset = [
        dspy.Example(question=q, answer=a, note=f"key {secret}").with_inputs("question")
        for q, a in dspy_task.QUESTIONS
    ]
    store = MemoryStore()
    with pytest.raises(InvalidCheckpoint) as refused:
        compile_in(store, trainset=trainset, restrict=[-2])
    assert refused.value.path.startswith("best_program_artifact")
    assert secret not in str(refused.value)
    stored = store.get("s").checkpoint
    assert checkpoint.status_name(stored) == "paused" and not stored.progress.trial_log

    compile_in(store, session_id="r", trainset=trainset, restrict=[-2], redact_secrets=True)
    stored = store.get("r").checkpoint
    artifact = checkpoint.from_term(stored.best_program_artifact)
    notes = [demo["note"] for demo in artifact["state"]["answer"]["demos"]]
    assert notes == ["key [redacted]"] * 2
    assert secret.encode() not in checkpoint.encode(stored)


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.update(format="pickle"),
        lambda a: a.update(state=[1, 2]),
        lambda a: a["state"].pop("answer"),
        lambda a: a["state"]["answer"].update(
            lm={"_dspy_lm_class": "os.system", "model": "x"}
        ),  # a class other than dspy's own is not imported
    ],
)
def test_restore_refuses_a_bad_artifact(change: Any) -> None:
    artifact = program_artifact(dspy_task.Lookup(), seed=-3)
    change(artifact)
    student = dspy_task.Lookup()
    with pytest.raises(ResumeMismatch) as refused:
        restore_program(student, artifact)
    assert (refused.value.reason, refused.value.field) == (
        "checkpoint_shape",
        "best_program_artifact",
    )
    assert student.dump_state() == dspy_task.Lookup().dump_state()  # left as it was


# --- killed worker processes ---------------------------------------------------


def run_worker(
    tmp_path: Path, session_id: str, name: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], list[str], dict[str, Any] | None]:
    """Run dspy_task.py; its result, its event lines and its output (None when it died)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    events, out = tmp_path / f"{name}.events", tmp_path / f"{name}.json"
    env = {
        **os.environ,
        "HOME": str(home),
        "DSPY_CACHEDIR": str(tmp_path / "dspy-cache"),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    args = [str(tmp_path / "store"), session_id, str(events), str(out), *extra]
    result = subprocess.run(
        [sys.executable, str(WORKER), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = events.read_text().splitlines() if events.exists() else []
    return result, lines, json.loads(out.read_text()) if out.exists() else None


def lm_calls_by_seed(lines: list[str]) -> dict[int, int]:
    """Model calls per candidate built in one run, from its event lines."""
    calls: dict[int, int] = {}
    seed = None
    for line in lines:
        if line.startswith("evaluating "):
            seed = int(line.split()[1])
            calls[seed] = 0
        elif line == "lm":
            assert seed is not None
            calls[seed] += 1
    return calls


def seeds_of(lines: list[str], event: str) -> list[int]:
    return [int(line.split()[1]) for line in lines if line.startswith(event + " ")]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Any, Checkpoint]:
    """One worker running the whole search, never interrupted."""
    tmp_path = tmp_path_factory.mktemp("full")
    result, lines, out = run_worker(tmp_path, "full", "full")
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((tmp_path / "home").iterdir()) == []  # nothing written to $HOME
    return lines, out, FileStore(tmp_path / "store").get("full").checkpoint


def wait_for_lease_end(store: Store, session_id: str) -> None:
    lease = store.get_lease(session_id)
    assert lease is not None
    while dt.datetime.now(dt.timezone.utc) <= lease.expires_at:
        time.sleep(0.1)


@pytest.mark.parametrize("kill_after", [2, 7])
def test_a_killed_worker_resumes_without_evaluating_committed_candidates(
    tmp_path: Path, full_run: tuple[list[str], Any, Checkpoint], kill_after: int
) -> None:
    full_lines, full_out, full_cp = full_run
    killed, killed_lines, killed_out = run_worker(
        tmp_path, "k", "killed", "--kill-after", str(kill_after), "--lease-ttl", "1"
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert killed_out is None
    committed = dspy_task.SEEDS[:kill_after]
    assert seeds_of(killed_lines, "committed") == committed
    assert seeds_of(killed_lines, "evaluating") == dspy_task.SEEDS[: kill_after + 1]
    store = FileStore(tmp_path / "store")
    dead = store.get("k").checkpoint
    assert checkpoint.status_name(dead) == "running"  # its worker died; nothing paused it
    assert [t.candidate_id for t in dead.progress.trial_log] == [str(s) for s in committed]

    wait_for_lease_end(store, "k")
    resumed, resumed_lines, resumed_out = run_worker(tmp_path, "k", "resumed", "--lease-ttl", "1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert seeds_of(resumed_lines, "skipped") == committed
    assert seeds_of(resumed_lines, "evaluating") == dspy_task.SEEDS[kill_after:]
    full_calls = lm_calls_by_seed(full_lines)
    assert lm_calls_by_seed(resumed_lines) == {
        seed: full_calls[seed] for seed in dspy_task.SEEDS[kill_after:]
    }

    done = store.get("k").checkpoint
    assert checkpoint.status_name(done) == "completed"
    assert trial_rows(done) == trial_rows(full_cp)
    assert done.progress.best_trial_idx == full_cp.progress.best_trial_idx
    assert done.progress.best_score == full_cp.progress.best_score
    assert done.best_program_artifact == full_cp.best_program_artifact
    assert resumed_out is not None
    assert resumed_out["state"] == full_out["state"]
    assert resumed_out["candidates"] == full_out["candidates"]
    assert resumed_out["litellm_imported"] is False
    assert list((tmp_path / "home").iterdir()) == []


def test_a_killed_worker_does_not_resume_on_another_trainset(
    tmp_path: Path,
) -> None:
    killed, _, _ = run_worker(tmp_path, "t", "killed", "--kill-after", "1", "--lease-ttl", "1")
    assert killed.returncode == -signal.SIGKILL
    store = FileStore(tmp_path / "store")
    before = store.get("t")
    wait_for_lease_end(store, "t")
    other, lines, out = run_worker(tmp_path, "t", "other", "--other-trainset", "--lease-ttl", "1")
    assert other.returncode != 0 and out is None
    assert "ResumeMismatch" in other.stderr and "trainset_hash" in other.stderr
    assert lines == []  # no candidate built, no model called
    after = store.get("t")
    assert (after.generation, after.checkpoint) == (before.generation, before.checkpoint)


# --- the documentation ---------------------------------------------------------


def test_the_documented_example_runs_as_documented(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "DSPY_CACHEDIR": str(tmp_path / "dspy-cache"),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    first = run()
    assert first.returncode == 0, first.stderr[-3000:]
    wanted = ["Lima", "completed 5", *(f"{s} 100.0" for s in range(-3, 2)), "True"]
    printed = [line for line in first.stdout.splitlines() if line in wanted]
    assert printed == wanted
    second = run()
    assert second.returncode != 0
    assert 'AlreadyTerminal: session "capitals" is already terminal' in second.stderr
