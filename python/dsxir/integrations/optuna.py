"""An Optuna study whose every finished trial is committed to a dsxir session.

::

    from dsxir.integrations.optuna import create_study

    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        return (x - 2) ** 2

    with create_study("file:.dsxir/sessions", "tune", direction="minimize", seed=7) as study:
        study.optimize(objective, n_trials=50)   # 50 in total, counting committed trials
        print(study.study.best_params)

:func:`create_study` opens the session (:func:`dsxir.session.open_session`:
lease, resume gate) and rebuilds an in-memory Optuna study from the trials
it holds; :meth:`ResumableStudy.optimize` runs trials until the session holds
``n_trials`` and commits each one as it finishes, before the next starts. A
process killed at any moment loses only the trial it was running, which runs
again (the same trial number, the same parameters) when the script is run
once more; a committed trial is never run again nor lost.

The record of a trial (``docs/integrations/optuna.md`` gives the whole
rule): the trial number is the trial index and ``candidate_id``; a COMPLETE
trial is ok with its value as score, a PRUNED one ok without a score, a FAIL
one an error (with the exception, when there was one); ``stats`` hold the
Optuna state, value, params, each distribution's Optuna JSON, user
attributes, intermediate values, constraint values and start time;
``duration_ms`` its duration. A value with no Term form (a user attribute
holding an object, a NaN) is not converted: the commit is refused, the study
is closed, and the trial runs again on the next run.

The sampler (``sampler_format``): by default the sampler is rebuilt for every
trial from a seed stored in the session and the trial number
(:func:`trial_seed`), so an interrupted and resumed study makes the same
trials as one that ran without interruption, and ``sampler_blob`` holds only
the seed (a Term, never a pickle); version :data:`SEEDED`. With
``allow_pickle=True`` one sampler object lives through the study and is
pickled into ``sampler_blob`` with every trial; resuming unpickles it, which
runs code of whoever wrote the checkpoint, so it is off unless asked for;
version :data:`PICKLED`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import logging
import math
import numbers
import pickle
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Literal

try:
    import optuna
    from optuna.distributions import distribution_to_json, json_to_distribution
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler
    from optuna.study import Study, StudyDirection
    from optuna.trial import FrozenTrial, Trial, TrialState
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "dsxir.integrations.optuna needs the [optuna] extra: pip install 'dsxir-checkpoint[optuna]'"
    ) from exc

from dsxir.errors import ResumeMismatch
from dsxir.optimizer_session.terms import from_term, term_bytes
from dsxir.optimizer_session.v1.checkpoint_pb2 import (
    TRIAL_STATUS_ERROR,
    TRIAL_STATUS_OK,
    TrialLogEntry,
)
from dsxir.optimizer_session.v1.term_pb2 import Term
from dsxir.session import Session, open_session
from dsxir.store.interface import Store

__all__ = [
    "OPTIMIZER",
    "PICKLED",
    "SEEDED",
    "ResumableStudy",
    "create_study",
    "sampler_module",
    "trial_seed",
]

OPTIMIZER = "optuna"
"""The ``optimizer`` of every session this module writes."""

SEEDED = 1
"""Sampler state version 1: ``sampler_blob`` is the Term ``{"seed": s}``; trial
``n``'s sampler is built with ``seed=trial_seed(s, n)``."""

PICKLED = 2
"""Sampler state version 2 (``allow_pickle=True``): ``sampler_blob`` is the
pickled sampler as it was after the last committed trial."""

MAX_SEED = 2**32
"""Seeds are in ``[0, MAX_SEED)``, what NumPy's generators take."""

_SEED_DOMAIN = b"dsxir.integrations.optuna.trial_seed/v1\n"
_FINISHED = {
    TrialState.COMPLETE.name: TrialState.COMPLETE,
    TrialState.PRUNED.name: TrialState.PRUNED,
    TrialState.FAIL.name: TrialState.FAIL,
}
_CONSTRAINTS = "constraints"

_logger = logging.getLogger(__name__)

SamplerFactory = Callable[..., BaseSampler]
"""Builds a sampler when called with ``seed=<int>``: a sampler class, a
``functools.partial`` of one, or a function."""


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number``'s sampler in a study seeded with ``seed``.

    The first four bytes, big-endian, of SHA-256 over
    ``b"dsxir.integrations.optuna.trial_seed/v1\\n"``, ``seed`` and ``number``
    (each 8 bytes, big-endian): a number in ``[0, 2**32)``.
    """
    data = _SEED_DOMAIN + seed.to_bytes(8, "big") + number.to_bytes(8, "big")
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big")


def sampler_module(sampler: BaseSampler) -> str:
    """The ``sampler_format`` module of a sampler: its class's public path.

    ``optuna.samplers.TPESampler`` for the samplers Optuna exports there,
    ``<module>.<qualname>`` of the class otherwise.
    """
    cls = type(sampler)
    if getattr(optuna.samplers, cls.__name__, None) is cls:
        return f"optuna.samplers.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


class ResumableStudy:
    """An Optuna study held as a dsxir session; made by :func:`create_study`.

    ``study`` is the in-memory ``optuna.Study``: read it (``best_trial``,
    ``trials``, ``trials_dataframe()``), but run trials only through
    :meth:`optimize`, since trials told to ``study`` directly are not
    committed. ``session`` is the :class:`~dsxir.session.Session`; ``seed``
    the study's seed (``None`` with a pickled sampler). A context manager:
    leaving the ``with`` block calls :meth:`close`.
    """

    def __init__(
        self,
        session: Session,
        study: Study,
        *,
        factory: SamplerFactory | None,
        seed: int | None,
    ) -> None:
        """Take over an open session and the study rebuilt from it."""
        self.session = session
        self.study = study
        self.seed = seed
        self._factory = factory
        self._broken: str | None = None

    def __repr__(self) -> str:
        return f"ResumableStudy({self.session.session_id!r}, trials={self.trials})"

    @property
    def trials(self) -> int:
        """The number of committed trials, which is the number of the next trial."""
        return self.session.trials

    def optimize(
        self,
        objective: Callable[[Trial], Any],
        n_trials: int,
        *,
        timeout: float | None = None,
        catch: type[Exception] | Iterable[type[Exception]] = (),
        callbacks: Iterable[Callable[[Study, FrozenTrial], None]] = (),
    ) -> None:
        """Run trials until the session holds ``n_trials`` of them, committing each.

        ``n_trials`` counts every committed trial, those of earlier runs
        included (unlike ``optuna.Study.optimize``, which runs that many
        more): running the same script again after an interruption finishes
        the study, and after it finished runs nothing. Each trial is
        committed as soon as it is finished, then ``callbacks`` are called
        with the study and the trial, as Optuna's are. With ``timeout`` (a
        number of seconds ≥ 0), as in Optuna, no trial is started once that
        long has passed since the call; a running trial is not cut short.

        The objective's outcome, as in ``optuna.Study.optimize``: a value
        completes the trial; ``optuna.TrialPruned`` prunes it; an
        ``Exception`` fails it and, once the failure is committed, is raised
        unless it is one of ``catch``; a value Optuna does not accept (None,
        NaN, not a number) fails the trial with a warning. A sequence of
        values fails the trial and raises ``ValueError``, even when ``catch``
        names it: the study is single-objective. ``catch`` is an exception
        class or an iterable of them, as in Optuna; anything else is refused
        with ``TypeError`` before a trial runs. A ``BaseException`` that is not an ``Exception``
        (``KeyboardInterrupt``, :class:`~dsxir.session.Interrupted`) leaves
        the trial unfinished and uncommitted; it propagates and the study
        is closed: open it again to resume, and that trial runs again.

        Any failure to commit (a value with no Term form, a lost lease, the
        store) closes the study the same way and is raised.
        """
        if not isinstance(n_trials, numbers.Integral) or isinstance(n_trials, bool):
            raise TypeError(f"n_trials must be an int, not {type(n_trials).__name__}")
        if n_trials < 0:
            raise ValueError(f"n_trials must be >= 0, got {n_trials}")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout >= 0
        ):
            raise ValueError(
                f"timeout must be a number of seconds >= 0 or None, got {timeout!r:.80}"
            )
        caught = _catch(catch)
        callbacks = list(callbacks)
        started = time.monotonic()
        while self.session.trials < n_trials:
            if timeout is not None and time.monotonic() - started >= timeout:
                break
            frozen = self._run_trial(objective, caught)
            for callback in callbacks:
                callback(self.study, frozen)

    def complete(self, reason: Any = None) -> None:
        """Commit the session as completed (terminal: it can no longer resume) and close."""
        self._check_usable()
        self.session.complete(reason)
        self._broken = "the session is completed"

    def close(self) -> None:
        """Close the session: a running one is paused and committed, the lease released.

        Idempotent; the study can then only be read.
        """
        if self._broken is None:
            self._broken = "the study is closed"
        self.session.close()

    def __enter__(self) -> ResumableStudy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- one trial ------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise RuntimeError(
                f'study of session "{self.session.session_id}" cannot go on: {self._broken}; '
                "open it again with create_study to resume"
            )

    def _run_trial(
        self, objective: Callable[[Trial], Any], catch: tuple[type[Exception], ...]
    ) -> FrozenTrial:
        self._check_usable()
        number = self.session.trials
        self._broken = f"trial {number} did not finish"
        try:
            if self._factory is not None:
                assert self.seed is not None
                self.study.sampler = _build(self._factory, trial_seed(self.seed, number))
            trial = self.study.ask()
            if trial.number != number:
                raise RuntimeError(
                    f"the study gave trial number {trial.number} where the session expects "
                    f"{number}: run trials only through ResumableStudy.optimize"
                )
            frozen, error, always = self._finish(objective, trial)
            record = _record(frozen, error)
            if self._factory is None:
                record["sampler_blob"] = _pickled(self.study.sampler)
            self.session.record_trial(**record)
        except BaseException:
            with contextlib.suppress(Exception):  # the trial's error matters more
                self.close()
            raise
        self._broken = None
        _logger.info(
            "trial %d %s (value %r) committed to session %s",
            number,
            frozen.state.name,
            frozen.value,
            self.session.session_id,
        )
        if isinstance(error, Exception) and (always or not isinstance(error, catch)):
            raise error
        return frozen

    def _finish(
        self, objective: Callable[[Trial], Any], trial: Trial
    ) -> tuple[FrozenTrial, BaseException | dict[str, str] | None, bool]:
        """Run the objective and tell its outcome to the study.

        The finished trial, its error, and whether that error is raised even
        when ``catch`` names its class (a multi-objective value is).
        """
        try:
            returned = objective(trial)
        except optuna.TrialPruned:
            return self.study.tell(trial, state=TrialState.PRUNED), None, False
        except Exception as exc:  # the objective's failure is the trial's outcome
            return self.study.tell(trial, state=TrialState.FAIL), exc, False
        if isinstance(returned, (str, bytes, bytearray)):  # Optuna's check of a value fails on text
            frozen = self.study.tell(trial, state=TrialState.FAIL)
            return (
                frozen,
                {"message": f"Optuna did not accept the objective's value {_shown(returned)}"},
                False,
            )
        if isinstance(returned, Sequence):
            frozen = self.study.tell(trial, state=TrialState.FAIL)
            return (
                frozen,
                ValueError(
                    f"the objective returned {len(returned)} values; dsxir.integrations.optuna "
                    "runs single-objective studies only (one score per trial)"
                ),
                True,
            )
        frozen = self.study.tell(trial, returned)
        if frozen.state == TrialState.FAIL:
            return (
                frozen,
                {"message": f"Optuna did not accept the objective's value {_shown(returned)}"},
                False,
            )
        return frozen, None, False


def _shown(value: object) -> str:
    shown = repr(value)
    return shown[:200] + "..." if len(shown) > 200 else shown


def _catch(catch: object) -> tuple[type[Exception], ...]:
    """``catch`` of ``optimize`` as a tuple of exception classes; ``TypeError`` otherwise."""
    items = (catch,) if isinstance(catch, type) else catch
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(
            f"catch must be an exception class or an iterable of them, not {items!r:.80}"
        )
    caught = tuple(items)
    for item in caught:
        if not (isinstance(item, type) and issubclass(item, Exception)):
            raise TypeError(f"catch must name Exception subclasses, got {item!r:.80}")
    return caught


def create_study(
    store: Store | str,
    session_id: str,
    *,
    direction: Literal["minimize", "maximize"] | StudyDirection = "minimize",
    sampler: SamplerFactory | BaseSampler | None = None,
    seed: int | None = None,
    pruner: BasePruner | None = None,
    study_name: str | None = None,
    trainset: Iterable[Any] | None = None,
    trainset_hash: bytes | None = None,
    allow_pickle: bool = False,
    lease_ttl: float = 30.0,
    holder: str | None = None,
    handle_signals: bool = True,
    redact_secrets: bool = False,
) -> ResumableStudy:
    """Create the study's session, or resume it: the study holds every committed trial.

    ``store`` and the lease arguments are those of
    :func:`dsxir.session.open_session`, which this calls with optimizer
    :data:`OPTIMIZER` and ``sampler_format`` ``(sampler_module(sampler),
    SEEDED or PICKLED)``; its refusals (``LeaseHeld``, ``AlreadyTerminal``,
    ``ResumeMismatch`` for another sampler class, sampler version, direction
    or trainset) are raised before any trial runs. ``direction`` is
    ``"minimize"`` (the session's ``"lower"``) or ``"maximize"``
    (``"higher"``); multi-objective studies are refused. ``trainset`` (or
    ``trainset_hash``) names the data the objective evaluates on, when it
    matters; neither means the empty trainset.

    ``sampler`` is a factory called with ``seed=<int>`` (default
    ``optuna.samplers.TPESampler``; ``functools.partial(TPESampler,
    n_startup_trials=5)`` sets options), called once per trial with
    :func:`trial_seed`. ``seed`` in ``[0, 2**32)`` seeds a new session
    (default: a random one); a resumed session keeps its stored seed. The
    factory's other options are not stored: give the same ones on resume.

    ``allow_pickle=True`` keeps one sampler object instead (``sampler`` may
    then be an instance, or a factory called once with ``seed``), pickles
    it into ``sampler_blob`` with each trial, and on resume unpickles the
    stored one in its place: only for checkpoints from a trusted source.

    A committed trial that this module cannot read back raises
    ``ResumeMismatch`` (reason ``checkpoint_shape``, ``field`` naming it).
    """
    word = _direction(direction)
    if not isinstance(allow_pickle, bool):
        raise TypeError(f"allow_pickle must be a bool, not {type(allow_pickle).__name__}")
    if seed is not None and (
        not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= seed < MAX_SEED
    ):
        raise ValueError(f"seed must be an int in [0, 2**32) or None, got {seed!r}")
    if study_name is not None and not isinstance(study_name, str):
        raise TypeError(f"study_name must be a str, not {type(study_name).__name__}")
    if pruner is not None and not isinstance(pruner, BasePruner):
        raise TypeError(f"pruner must be an optuna pruner, not {type(pruner).__name__}")
    new_seed = secrets.randbelow(MAX_SEED) if seed is None else int(seed)
    factory, instance = _sampler(sampler, allow_pickle, new_seed)
    module = sampler_module(instance)
    if trainset is None and trainset_hash is None:
        trainset = ()
    session = open_session(
        store,
        session_id,
        optimizer=OPTIMIZER,
        sampler_format=(module, PICKLED if allow_pickle else SEEDED),
        trainset=trainset,
        trainset_hash=trainset_hash,
        optimizer_opts={"study_name": study_name or session_id},
        direction="lower" if word == "minimize" else "higher",
        sampler_blob=_pickled(instance) if allow_pickle else term_bytes({"seed": new_seed}),
        lease_ttl=lease_ttl,
        holder=holder,
        handle_signals=handle_signals,
        redact_secrets=redact_secrets,
    )
    try:
        study_seed: int | None = None if allow_pickle else new_seed
        if not session.created:
            if allow_pickle:
                instance = _unpickled(session, module)
            else:
                study_seed = _stored_seed(session)
        study = optuna.create_study(
            study_name=study_name or session_id, direction=word, sampler=instance, pruner=pruner
        )
        for i, entry in enumerate(session.checkpoint.progress.trial_log):
            _restore(session.session_id, i, entry, study)
    except BaseException:
        with contextlib.suppress(Exception):  # the refusal matters more
            session.close()
        raise
    return ResumableStudy(session, study, factory=factory, seed=study_seed)


# --- arguments ------------------------------------------------------------------


def _direction(direction: object) -> Literal["minimize", "maximize"]:
    if isinstance(direction, (str, StudyDirection)):
        if direction in (StudyDirection.MINIMIZE, "minimize"):
            return "minimize"
        if direction in (StudyDirection.MAXIMIZE, "maximize"):
            return "maximize"
    if isinstance(direction, (list, tuple)):
        raise ValueError(
            "dsxir.integrations.optuna runs single-objective studies only "
            "(a session ranks trials by one score); give one direction"
        )
    raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r:.80}")


def _sampler(
    sampler: object, allow_pickle: bool, seed: int
) -> tuple[SamplerFactory | None, BaseSampler]:
    """The per-trial factory (None when pickling) and a sampler instance."""
    if sampler is None:
        sampler = optuna.samplers.TPESampler
    if isinstance(sampler, BaseSampler):
        if not allow_pickle:
            raise TypeError(
                "sampler must be a factory called with seed=<int> (a sampler class or a "
                "functools.partial of one), so that every trial's sampler can be rebuilt "
                "without pickling; pass an instance only with allow_pickle=True"
            )
        return None, sampler
    if not callable(sampler):
        raise TypeError(f"sampler must be a sampler factory, not {type(sampler).__name__}")
    instance = _build(sampler, seed)
    return (None if allow_pickle else sampler), instance


def _build(factory: SamplerFactory, seed: int) -> BaseSampler:
    sampler = factory(seed=seed)
    if not isinstance(sampler, BaseSampler):
        raise TypeError(
            f"the sampler factory returned {type(sampler).__name__}, not an optuna sampler"
        )
    return sampler


# --- the sampler blob -------------------------------------------------------------


def _pickled(sampler: BaseSampler) -> bytes:
    try:
        return pickle.dumps(sampler, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # any pickling failure means the same to the caller
        raise TypeError(f"allow_pickle: the sampler cannot be pickled ({exc})") from None


def _unpickled(session: Session, module: str) -> BaseSampler:
    """The stored sampler; runs the stored bytes' code: only with allow_pickle."""
    try:
        sampler = pickle.loads(session.sampler_blob)  # the caller opted in
    except Exception as exc:  # any unpickling failure is a refusal of the blob
        raise _shape(session.session_id, "sampler_blob", f"not a pickled sampler ({exc})") from None
    if not isinstance(sampler, BaseSampler):
        raise _shape(session.session_id, "sampler_blob", f"holds {type(sampler).__name__}")
    if sampler_module(sampler) != module:
        raise ResumeMismatch(session.session_id, "sampler_format", module, sampler_module(sampler))
    return sampler


def _stored_seed(session: Session) -> int:
    """The seed in a version-1 ``sampler_blob`` (a Term, read without running code)."""
    try:
        term = Term.FromString(session.sampler_blob)
        value = from_term(term, root="sampler_blob")
        seed = value["seed"]
        if type(seed) is not int or not 0 <= seed < MAX_SEED or len(value) != 1:
            raise ValueError(f"not {{'seed': <int in [0, 2**32)>}}: {value!r:.80}")
    except Exception as exc:  # hostile bytes: any failure is a refusal
        raise _shape(session.session_id, "sampler_blob", str(exc)) from None
    return seed


def _shape(session_id: str, field: str, detail: str) -> ResumeMismatch:
    return ResumeMismatch(session_id, "checkpoint_shape", field=field, detail=detail)


# --- trials as log entries -------------------------------------------------------------


def _record(frozen: FrozenTrial, error: BaseException | dict[str, str] | None) -> dict[str, Any]:
    """The ``record_trial`` arguments of a finished trial."""
    assert frozen.datetime_start is not None and frozen.datetime_complete is not None
    state = frozen.state
    duration = (frozen.datetime_complete - frozen.datetime_start) // _dt.timedelta(milliseconds=1)
    stats = {
        "state": state.name,
        "value": frozen.value,
        "params": frozen.params,
        "distributions": {
            name: distribution_to_json(dist) for name, dist in frozen.distributions.items()
        },
        "user_attrs": frozen.user_attrs,
        "intermediate_values": [
            [step, None if math.isnan(value) else value]
            for step, value in sorted(frozen.intermediate_values.items())
        ],
        "constraints": {
            key: value
            for key, value in frozen.system_attrs.items()
            if key == _CONSTRAINTS or key.startswith(_CONSTRAINTS + ":")
        },
        "datetime_start": frozen.datetime_start.isoformat(),
    }
    return {
        "score": frozen.value if state == TrialState.COMPLETE else None,
        "status": "error" if state == TrialState.FAIL else "ok",
        "candidate_id": str(frozen.number),
        "stats": stats,
        "duration_ms": max(duration, 0),
        "error": error,
    }


def _restore(session_id: str, idx: int, entry: TrialLogEntry, study: Study) -> None:
    """Add committed trial ``idx`` to ``study``; ``ResumeMismatch`` if it is not one of ours."""
    where = f"progress.trial_log[{idx}]"
    try:
        if entry.candidate_id != str(idx):
            raise ValueError(f"candidate_id {entry.candidate_id!r} is not the trial number {idx}")
        if not entry.HasField("stats"):
            raise ValueError("no stats")
        stats = from_term(entry.stats, root=f"{where}.stats")
        state = _FINISHED[stats["state"]]
        expected = TRIAL_STATUS_ERROR if state == TrialState.FAIL else TRIAL_STATUS_OK
        if entry.status != expected:
            raise ValueError(f"status {entry.status} does not fit state {state.name}")
        value = stats["value"]
        if value is not None and type(value) is not float:
            raise ValueError(f"value {value!r:.80} is not a float")
        if state == TrialState.COMPLETE and not (entry.HasField("score") and entry.score == value):
            raise ValueError("a COMPLETE trial's score is not its value")
        params = _str_map(stats["params"], "params")
        texts = _str_map(stats["distributions"], "distributions")
        distributions = {name: json_to_distribution(_text(text)) for name, text in texts.items()}
        intermediate = {}
        for pair in stats["intermediate_values"]:
            if not (
                type(pair) is list
                and len(pair) == 2
                and type(pair[0]) is int
                and (pair[1] is None or type(pair[1]) is float)
            ):
                raise ValueError(f"intermediate value {pair!r:.80} is not [step, float | null]")
            intermediate[pair[0]] = math.nan if pair[1] is None else pair[1]
        constraints = _str_map(stats["constraints"], "constraints")
        for key, constraint in constraints.items():
            if key == _CONSTRAINTS:
                if not (
                    isinstance(constraint, (list, tuple))
                    and all(type(value) in (int, float) for value in constraint)
                ):
                    raise ValueError("constraints['constraints'] is not a list of numbers")
            elif not key.startswith(_CONSTRAINTS + ":"):
                raise ValueError("constraints holds a key that is not a constraint")
            elif type(constraint) not in (int, float):
                raise ValueError(f"constraints[{key[:40]!r}] is not a number")
        start = _dt.datetime.fromisoformat(_text(stats["datetime_start"]))
        study.add_trial(
            FrozenTrial(
                number=idx,
                state=state,
                value=value,
                datetime_start=start,
                datetime_complete=start + _dt.timedelta(milliseconds=entry.duration_ms),
                params=params,
                distributions=distributions,
                user_attrs=_str_map(stats["user_attrs"], "user_attrs"),
                system_attrs=constraints,
                intermediate_values=intermediate,
                trial_id=idx,
            )
        )
    except Exception as exc:  # Optuna's checks of stored data may fail in any way: a refusal
        detail = f"not a trial of {OPTIMIZER} sessions ({type(exc).__name__}: {exc})"
        raise _shape(session_id, f"{where}.stats", detail[:500]) from None


def _str_map(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise ValueError(f"{name} is not a map with string keys")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r:.80} is not a string")
    return value
