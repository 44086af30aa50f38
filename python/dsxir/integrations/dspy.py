"""DSPy's BootstrapFewShotWithRandomSearch as a resumable dsxir session (extra ``[dspy]``).

:class:`ResumableRandomSearch` takes the knobs of
``dspy.teleprompt.BootstrapFewShotWithRandomSearch`` and walks the same
seeded candidates, built by dspy's own classes: seed -3 the zero-shot
program (``student.reset_copy()``), -2 ``LabeledFewShot``, -1
``BootstrapFewShot`` on the trainset as given, and 0 … N-1
``BootstrapFewShot`` on the trainset shuffled by ``random.Random(seed)``
with a demo budget drawn by ``random.Random(seed)``. Each candidate is
evaluated with ``dspy.Evaluate`` on the valset and committed as one trial of
a session (:func:`dsxir.session.open_session`) before the next is built:

- ``candidate_id`` is the seed as decimal text, ``score`` the evaluation
  score (``EvaluationResult.score``, a percentage), ``stats`` a map
  ``{"seed", "subscores", "demos"}``: the metric's value for each valset
  example in valset order (a bool or int metric value is kept as it is, any
  other as ``float(value)``; a failed example has dspy's failure score 0.0)
  and the number of demos of each predictor by name;
- a candidate that scores strictly higher than every earlier one (dspy's
  rule, and the session's with direction ``"higher"``) is stored with its
  trial as ``best_program_artifact`` (:func:`program_artifact`).

A run killed at any point resumes with the same call: committed candidates
are skipped (their seeds are read from the trial log), the candidate that
was being built when the run died is built again, and the result equals an
uninterrupted run's. The best program, when an earlier run found it, is
restored from the artifact with ``load_state``. A resumed run must be given
the same options (``optimizer_opts``: the knobs, the metric's name, the
valset's hash, ``restrict`` and ``labeled_sample``) and trainset; a
difference is refused with :class:`~dsxir.errors.ResumeMismatch`, reason
``trainset_hash`` (the resume gate's; the session is not touched) or
``optimizer_opts`` (checked after the gate; the session is left paused),
before any candidate is built.

An exception raised while a candidate is built or evaluated (a metric bug,
dspy's ``max_errors``, SIGINT or SIGTERM as
:class:`~dsxir.session.Interrupted`) leaves the session paused with every
finished candidate committed, and propagates.

Progress is logged on the logger ``dsxir.integrations.dspy`` at INFO; each
record about a candidate carries the attributes ``seed`` and ``event``
(``"evaluating"``, ``"committed"`` or ``"skipped"``).
"""

from __future__ import annotations

import logging
import numbers
import random
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dsxir.errors import InvalidCheckpoint, ResumeMismatch
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.session import Session, open_session
from dsxir.store.interface import Store
from dsxir.store.registry import close_store, open_store

try:
    import dspy
    from dspy.evaluate import Evaluate
    from dspy.teleprompt import BootstrapFewShot, LabeledFewShot
    from dspy.teleprompt.teleprompt import Teleprompter
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"dsxir.integrations.dspy needs dspy ({exc.name or 'dspy'} is not installed): "
        "pip install 'dsxir-checkpoint[dspy]'"
    ) from exc

__all__ = [
    "ARTIFACT_FORMAT",
    "OPTIMIZER",
    "SAMPLER_FORMAT",
    "ResumableRandomSearch",
    "load_best_program",
    "program_artifact",
    "restore_program",
]

OPTIMIZER = "dspy.teleprompt.BootstrapFewShotWithRandomSearch"
"""The ``optimizer`` of the sessions this module writes."""

SAMPLER_FORMAT = ("dsxir.integrations.dspy", 1)
"""The ``sampler_format`` of the sessions this module writes; their ``sampler_blob`` is empty."""

ARTIFACT_FORMAT = "dspy.Module.dump_state"
"""The ``format`` entry of every artifact :func:`program_artifact` makes."""

_ZERO_SHOT, _LABELED, _UNSHUFFLED = -3, -2, -1

logger = logging.getLogger(__name__)


# --- the artifact ------------------------------------------------------------


def program_artifact(program: Any, *, seed: int | None = None) -> dict[str, Any]:
    """The Term map that stores ``program``: its ``dump_state()`` and how to load it back.

    ``{"format": ARTIFACT_FORMAT, "dspy_version", "seed", "compiled", "state"}``
    where ``state`` is ``program.dump_state()`` (dspy's JSON mode) written by
    this rule: maps, lists, tuples, ``None``, bools, ints, floats, strings
    and bytes as they are; other numbers (numpy scalars) as ints or floats;
    a ``dspy.Example`` as its ``toDict()`` (as dspy's
    JSON mode writes demos); a pydantic model as ``model_dump(mode="json")``
    (as dspy writes demo fields). Anything else is refused with ``TypeError``
    naming its path (``state['answer']['demos'][0]``). ``compiled`` records
    the program's ``_compiled`` flag, which ``dump_state`` leaves out.
    """
    return {
        "format": ARTIFACT_FORMAT,
        "dspy_version": str(getattr(dspy, "__version__", "")),
        "seed": seed,
        "compiled": bool(getattr(program, "_compiled", False)),
        "state": _term_value(program.dump_state(), "state"),
    }


def _term_value(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {key: _term_value(item, f"{path}[{key!r}]") for key, item in value.items()}
    if isinstance(value, list):
        return [_term_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_term_value(item, f"{path}[{i}]") for i, item in enumerate(value))
    if isinstance(value, dspy.Example):
        return _term_value(value.toDict(), path)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _term_value(dump(mode="json"), path)
    raise TypeError(
        f"{path}: {type(value).__module__}.{type(value).__qualname__} has no Term form; "
        "a program's state may hold maps, lists, tuples, None, bools, numbers, strings, "
        "bytes, dspy.Example and pydantic models"
    )


def restore_program(student: Any, artifact: Mapping[str, Any]) -> Any:
    """A copy of ``student`` in the state that ``artifact`` (:func:`program_artifact`) holds.

    The copy is ``student.reset_copy()`` given ``load_state(artifact["state"])``
    and the artifact's ``compiled`` flag. Demos come back as dicts, as with
    dspy's JSON ``load``; ``student`` is not changed. The state is stored
    data, so it may hold only what ``dump_state`` writes for the copy: one
    entry per predictor of the program, each with no other keys than the
    copy's own ``dump_state()`` has (and ``fields``), and no language model
    (``lm`` null, as every candidate of the search has): a predictor's
    ``load_state`` would otherwise set any attribute it names, such as the
    ``config`` whose keys are passed to the model (an ``api_base`` would
    send the caller's API key elsewhere), or build the model it names. An
    artifact of another shape, or a state the program cannot load, is
    refused with ``ResumeMismatch`` (reason ``checkpoint_shape``, field
    ``best_program_artifact``).
    """
    if not isinstance(artifact, Mapping) or artifact.get("format") != ARTIFACT_FORMAT:
        raise _bad_artifact(f"not a {ARTIFACT_FORMAT} artifact")
    state = artifact.get("state")
    compiled = artifact.get("compiled", False)
    if not isinstance(state, dict) or not isinstance(compiled, bool):
        raise _bad_artifact("'state' must be a map and 'compiled' a bool")
    program = student.reset_copy()
    _check_state(state, program)
    try:
        program.load_state(state)
    except Exception as exc:  # any failure of load_state on stored data is a refusal
        detail = f"the program cannot load this state ({type(exc).__name__}: {exc})"
        raise _bad_artifact(detail) from None
    if compiled:
        program._compiled = True
    return program


_PREDICTOR_KEYS = frozenset({"fields"})
"""Keys a predictor's state may hold besides those of a fresh predictor's ``dump_state()``."""


def _check_state(state: dict[str, Any], program: Any) -> None:
    """Refuse a stored state holding more than ``dump_state`` writes for ``program`` (fresh)."""
    fresh = program.dump_state()
    if isinstance(program, dspy.Predict):  # a lone predictor: its own state, not a map of them
        _check_predictor("the program's predictor", state, fresh)
        return
    if set(state) != set(fresh):
        names = sorted(str(name)[:40] for name in set(state) ^ set(fresh))[:5]
        raise _bad_artifact(f"the state's predictors are not the program's (differing: {names})")
    for name, entry in state.items():
        _check_predictor(f"predictor {name!r}", entry, fresh[name])


def _check_predictor(what: str, entry: object, fresh: object) -> None:
    if not isinstance(entry, dict) or not isinstance(fresh, dict):
        raise _bad_artifact(f"the state of {what} is not a map")
    extra = sorted(str(key)[:40] for key in set(entry) - _PREDICTOR_KEYS - set(fresh))[:5]
    if extra:
        raise _bad_artifact(f"the state of {what} holds keys dump_state does not write: {extra}")
    if entry.get("lm") is not None:
        raise _bad_artifact(
            f"the state of {what} names a language model ('lm'); a stored program "
            "is restored without one and calls the model the caller configures"
        )


def _bad_artifact(detail: str, session_id: str | None = None) -> ResumeMismatch:
    return ResumeMismatch(
        session_id, "checkpoint_shape", field="best_program_artifact", detail=detail
    )


def load_best_program(store: Store | str, session_id: str, student: Any) -> Any | None:
    """The best program of a stored session (any status), or ``None`` before its first trial.

    ``store`` is a store or a URL for :func:`dsxir.store.open_store`; no
    lease is taken and nothing is written. The program is restored into a
    copy of ``student`` (:func:`restore_program`). A session written by
    another optimizer or sampler is refused with ``ResumeMismatch`` (reason
    ``optimizer`` or ``sampler_format``); ``NotFound`` when none is stored.
    """
    held = open_store(store) if isinstance(store, str) else store
    try:
        cp = held.get(session_id).checkpoint
    finally:
        if isinstance(store, str):
            close_store(held)
    if cp.optimizer != OPTIMIZER:
        raise ResumeMismatch(session_id, "optimizer", OPTIMIZER, cp.optimizer)
    if cp.sampler_format.module != SAMPLER_FORMAT[0]:
        raise ResumeMismatch(
            session_id, "sampler_format", SAMPLER_FORMAT[0], cp.sampler_format.module
        )
    if not cp.progress.HasField("best_trial_idx"):
        return None
    return _restore_best(cp, student)


def _restore_best(cp: Checkpoint, student: Any) -> Any:
    if not cp.HasField("best_program_artifact"):
        raise _bad_artifact("the session has a best trial but no artifact", cp.session_id)
    try:
        artifact = checkpoint.from_term(cp.best_program_artifact, root="best_program_artifact")
    except InvalidCheckpoint as exc:
        raise _bad_artifact(str(exc), cp.session_id) from None
    best = cp.progress.trial_log[cp.progress.best_trial_idx]
    if str(artifact.get("seed")) != best.candidate_id:
        raise _bad_artifact(
            f"the artifact is of seed {artifact.get('seed')!r}, the best trial of "
            f"candidate {best.candidate_id!r}",
            cp.session_id,
        )
    try:
        return restore_program(student, artifact)
    except ResumeMismatch as exc:
        raise _bad_artifact(exc.detail or "", cp.session_id) from None


# --- the search --------------------------------------------------------------


class ResumableRandomSearch(Teleprompter):  # type: ignore[misc]
    """``BootstrapFewShotWithRandomSearch`` committing each candidate as a dsxir trial.

    The knobs are dspy's, with the same defaults and meaning.
    ``num_threads`` and ``max_errors`` only say how candidates are run; they
    are not part of the session's options.
    """

    def __init__(
        self,
        metric: Any,
        teacher_settings: dict[str, Any] | None = None,
        max_bootstrapped_demos: int = 4,
        max_labeled_demos: int = 16,
        max_rounds: int = 1,
        num_candidate_programs: int = 16,
        num_threads: int | None = None,
        max_errors: int | None = None,
        stop_at_score: float | None = None,
        metric_threshold: float | None = None,
    ) -> None:
        """Keep the knobs; ``TypeError``/``ValueError`` for counts that are not ints ≥ 0.

        Also ``ValueError`` for ``max_bootstrapped_demos`` 0 with candidates
        0 … N-1 to build, which dspy refuses only when it reaches them.
        """
        super().__init__()
        for name, count in (
            ("max_bootstrapped_demos", max_bootstrapped_demos),
            ("max_labeled_demos", max_labeled_demos),
            ("max_rounds", max_rounds),
            ("num_candidate_programs", num_candidate_programs),
        ):
            if not isinstance(count, int) or isinstance(count, bool):
                raise TypeError(f"{name} must be an int, not {type(count).__name__}")
            if count < 0:
                raise ValueError(f"{name} must be >= 0, got {count}")
        if num_candidate_programs > 0 and max_bootstrapped_demos < 1:
            raise ValueError(
                "max_bootstrapped_demos must be >= 1 when num_candidate_programs > 0: "
                "candidates 0 … N-1 draw between 1 and max_bootstrapped_demos demos"
            )
        self.metric = metric
        self.teacher_settings = teacher_settings or {}
        self.max_rounds = max_rounds
        self.num_threads = num_threads
        self.stop_at_score = stop_at_score
        self.metric_threshold = metric_threshold
        self.min_num_samples = 1
        self.max_num_samples = max_bootstrapped_demos
        self.max_errors = max_errors
        self.num_candidate_sets = num_candidate_programs
        self.max_labeled_demos = max_labeled_demos

    def compile(
        self,
        student: Any,
        *,
        trainset: Sequence[Any],
        store: Store | str,
        session_id: str,
        teacher: Any = None,
        valset: Sequence[Any] | None = None,
        restrict: Iterable[int] | None = None,
        labeled_sample: bool = True,
        lease_ttl: float = 30.0,
        holder: str | None = None,
        handle_signals: bool = True,
        redact_secrets: bool = False,
    ) -> Any:
        """Run (or resume) the search as session ``session_id`` of ``store``; the best program.

        ``store`` is a store or a URL (:func:`dsxir.session.open_session`
        takes it, with ``lease_ttl``, ``holder``, ``handle_signals`` and
        ``redact_secrets``). ``valset`` defaults to the trainset, as in dspy
        (an empty valset too). Candidates are evaluated in seed order and
        each is committed; when all are (or a score reaches
        ``stop_at_score``) the session is completed. Returns the best
        program: the candidate itself when this run built it, else the copy
        of ``student`` restored from the stored artifact. It carries
        ``candidate_programs``: ``{"seed", "score", "subscores"}`` of every
        committed candidate, best score first (dspy's list also holds each
        program; here only the best one is kept).

        Raises, before anything is stored, ``TypeError`` when ``restrict``
        holds anything but ints, ``ValueError`` when it names no candidate
        seed or when the trainset is empty and a candidate from -1 on is to
        be built (dspy's bootstrapping fails on it); then the errors of ``open_session``
        (``LeaseHeld``, ``AlreadyTerminal`` for a completed session,
        ``ResumeMismatch``), ``ResumeMismatch`` with reason
        ``optimizer_opts`` when the options differ from the session's, and
        whatever building or evaluating a candidate raises.
        """
        seeds = range(-3, self.num_candidate_sets)
        chosen = None if restrict is None else _seeds(restrict)
        if chosen is not None and not chosen.intersection(seeds):
            raise ValueError(
                f"`restrict` {sorted(chosen)!r} does not match any candidate seed in "
                f"range(-3, {self.num_candidate_sets}); no candidate programs would be evaluated."
            )
        trainset = list(trainset)
        evalset = list(valset or trainset)
        if not evalset:
            raise ValueError("the valset (or the trainset, when no valset is given) is empty")
        if not trainset and any(
            seed >= _UNSHUFFLED and seed in (chosen or seeds) for seed in seeds
        ):
            raise ValueError(
                "the trainset is empty: candidates -1 … N-1 bootstrap their demos from it "
                "(restrict the search to seeds -3 and -2, or give examples)"
            )
        options = self._options(evalset, chosen, labeled_sample)
        session = open_session(
            store,
            session_id,
            optimizer=OPTIMIZER,
            sampler_format=SAMPLER_FORMAT,
            trainset=trainset,
            optimizer_opts=options,
            program_module=f"{type(student).__module__}.{type(student).__qualname__}",
            lease_ttl=lease_ttl,
            holder=holder,
            handle_signals=handle_signals,
            redact_secrets=redact_secrets,
        )
        with session:
            _check_options(session.checkpoint, options)
            done = _committed_seeds(session.checkpoint, seeds)
            if done:
                logger.info("session %s: resuming; committed: %s", session_id, sorted(done))
            run = _Run(
                session,
                student,
                teacher,
                trainset,
                evalset,
                labeled_sample,
                self.max_errors if self.max_errors is not None else dspy.settings.max_errors,
            )
            best_program: Any = None
            stopped = self._reached_stop(session.checkpoint)
            for seed in seeds:
                if stopped:
                    break
                if chosen is not None and seed not in chosen:
                    continue
                if seed in done:
                    logger.info(
                        "candidate %d: committed earlier, skipped",
                        seed,
                        extra={"seed": seed, "event": "skipped"},
                    )
                    continue
                program, score, improves = self._commit_candidate(run, seed)
                if improves:
                    best_program = program
                stopped = self.stop_at_score is not None and score >= self.stop_at_score
            cp = session.checkpoint
            if best_program is None:
                best_program = _restore_best(cp, student)
            best_program.candidate_programs = _candidates(cp)
            session.complete("stop_at_score" if stopped else None)
        return best_program

    def _commit_candidate(self, run: _Run, seed: int) -> tuple[Any, float, bool]:
        """Build and evaluate candidate ``seed``, commit its trial; (program, score, is best)."""
        logger.info(
            "candidate %d: building and evaluating",
            seed,
            extra={"seed": seed, "event": "evaluating"},
        )
        started = time.monotonic()
        program = self._candidate(run, seed)
        result = Evaluate(
            devset=run.evalset,
            metric=self.metric,
            num_threads=self.num_threads,
            max_errors=run.max_errors,
            display_table=False,
            display_progress=True,
        )(program)
        score = float(result.score)
        best = run.session.best_score
        improves = best is None or score > best
        idx = run.session.record_trial(
            score=score,
            candidate_id=str(seed),
            stats={
                "seed": seed,
                "subscores": [_subscore(out[2]) for out in result.results],
                "demos": {
                    name: len(predictor.demos) for name, predictor in program.named_predictors()
                },
            },
            duration_ms=int((time.monotonic() - started) * 1000),
            best_program_artifact=program_artifact(program, seed=seed) if improves else None,
        )
        logger.info(
            "candidate %d: score %s, committed as trial %d%s",
            seed,
            score,
            idx,
            " (new best)" if improves else "",
            extra={"seed": seed, "event": "committed"},
        )
        return program, score, improves

    def _options(
        self, evalset: list[Any], chosen: set[int] | None, labeled_sample: bool
    ) -> list[tuple[str, Any]]:
        """The session's ``optimizer_opts``: what decides the candidates and their scores."""
        metric = self.metric
        metric_name = getattr(metric, "__qualname__", None) or type(metric).__qualname__
        return [
            ("metric", f"{getattr(metric, '__module__', None) or ''}.{metric_name}"),
            ("max_bootstrapped_demos", self.max_num_samples),
            ("max_labeled_demos", self.max_labeled_demos),
            ("max_rounds", self.max_rounds),
            ("num_candidate_programs", self.num_candidate_sets),
            ("metric_threshold", _number(self.metric_threshold, "metric_threshold")),
            ("stop_at_score", _number(self.stop_at_score, "stop_at_score")),
            ("labeled_sample", bool(labeled_sample)),
            ("restrict", None if chosen is None else sorted(chosen)),
            ("valset_hash", checkpoint.hash_trainset(evalset)),
        ]

    def _reached_stop(self, cp: Checkpoint) -> bool:
        """Whether a committed candidate already scored ``stop_at_score`` or more."""
        stop = self.stop_at_score
        return stop is not None and any(
            trial.HasField("score") and trial.score >= stop for trial in cp.progress.trial_log
        )

    def _candidate(self, run: _Run, seed: int) -> Any:
        """Candidate ``seed``, built exactly as ``BootstrapFewShotWithRandomSearch`` builds it."""
        trainset_copy = list(run.trainset)
        if seed == _ZERO_SHOT:
            return run.student.reset_copy()
        if seed == _LABELED:
            labeled = LabeledFewShot(k=self.max_labeled_demos)
            return labeled.compile(run.student, trainset=trainset_copy, sample=run.labeled_sample)
        size = self.max_num_samples
        if seed != _UNSHUFFLED:
            random.Random(seed).shuffle(trainset_copy)
            size = random.Random(seed).randint(self.min_num_samples, self.max_num_samples)
        bootstrap = BootstrapFewShot(
            metric=self.metric,
            metric_threshold=self.metric_threshold,
            max_bootstrapped_demos=size,
            max_labeled_demos=self.max_labeled_demos,
            teacher_settings=self.teacher_settings,
            max_rounds=self.max_rounds,
            max_errors=run.max_errors,
        )
        return bootstrap.compile(run.student, teacher=run.teacher, trainset=trainset_copy)


@dataclass(frozen=True)
class _Run:
    """What one ``compile`` call builds and evaluates candidates with."""

    session: Session
    student: Any
    teacher: Any
    trainset: list[Any]
    evalset: list[Any]
    labeled_sample: bool
    max_errors: int


def _number(value: Any, name: str) -> float | int | None:
    """``None``, an int, or any other real number as a float.

    ``TypeError`` for anything else, ``ValueError`` for NaN.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number or None, not {type(value).__name__}")
    number = value if isinstance(value, int) else float(value)
    if number != number:
        raise ValueError(f"{name} must not be NaN")
    return number


def _seeds(restrict: Iterable[Any]) -> set[int]:
    """The candidate seeds ``restrict`` names; ``TypeError`` for anything but an int."""
    chosen = set()
    for seed in restrict:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"`restrict` holds {seed!r:.40}, not a candidate seed (an int)")
        chosen.add(int(seed))
    return chosen


def _subscore(value: Any) -> bool | int | float:
    """A metric value as stored in ``stats['subscores']``: bool and int kept, else a float."""
    if isinstance(value, (bool, int)):
        return value
    return float(value)


def _check_options(cp: Checkpoint, options: list[tuple[str, Any]]) -> None:
    """Refuse (``ResumeMismatch``, reason ``optimizer_opts``) other options than the session's."""
    stored = [(entry.key, entry.value) for entry in cp.optimizer_opts]
    wanted = [(key, checkpoint.to_term(value)) for key, value in options]
    if stored == wanted:
        return
    got = _show_options(stored)
    expected = _show_options(wanted)
    differing = [
        key for key in dict.fromkeys([*got, *expected]) if got.get(key) != expected.get(key)
    ]
    raise ResumeMismatch(
        cp.session_id,
        "optimizer_opts",
        ", ".join(f"{key}={expected.get(key, 'none')}" for key in differing),
        ", ".join(f"{key}={got.get(key, 'none')}" for key in differing),
    )


def _show_options(pairs: Iterable[tuple[str, Any]]) -> dict[str, str]:
    shown: dict[str, str] = {}
    for key, term in pairs:
        value = checkpoint.from_term(term)
        shown[key] = value.hex() if isinstance(value, bytes) else repr(value)
    return shown


def _committed_seeds(cp: Checkpoint, seeds: Collection[int]) -> set[int]:
    """The seeds of the session's trials; ``ResumeMismatch`` for a trial of no candidate."""
    done = set()
    for i, trial in enumerate(cp.progress.trial_log):
        text = trial.candidate_id
        seed = int(text) if text.lstrip("-").isdigit() and text.isascii() else None
        if seed is None or seed not in seeds or str(seed) != text:
            raise ResumeMismatch(
                cp.session_id,
                "checkpoint_shape",
                field=f"progress.trial_log[{i}].candidate_id",
                detail=f"{text[:40]!r} is not a candidate seed of this search",
            )
        done.add(seed)
    return done


def _candidates(cp: Checkpoint) -> list[dict[str, Any]]:
    """``{"seed", "score", "subscores"}`` of every committed trial, best score first."""
    found = []
    for trial in cp.progress.trial_log:
        stats = checkpoint.from_term(trial.stats)
        found.append(
            {
                "seed": int(trial.candidate_id),
                "score": trial.score,
                "subscores": stats.get("subscores", []),
            }
        )
    return sorted(found, key=lambda c: c["score"], reverse=True)
