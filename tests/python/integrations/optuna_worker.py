"""A worker process for test_optuna: one Optuna study run to its end on a store.

    python optuna_worker.py --store URL --session ID --trials N --sampler tpe|random
        [--seed S] [--pickle] [--hold-at K --marker PATH]

The objective is a quadratic to minimise over a float, an int and a
categorical parameter; it reports intermediate values, sets user attributes,
prunes every trial numbered 4 mod 6 and fails (``ValueError``, caught) every
trial numbered 5 mod 7. With ``--hold-at K`` it creates ``--marker`` when
trial K starts and then sleeps, so that a test can kill it mid-trial. The
worker waits out the lease of a killed predecessor, prints ``done N`` when
the session holds N trials, and exits 0.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from dsxir.errors import LeaseHeld
from dsxir.integrations.optuna import ResumableStudy, create_study
from dsxir.store import Store

LEASE_TTL = 1.0
STARTUP_TRIALS = 5


def objective(trial: optuna.Trial, hold_at: int | None = None, marker: Path | None = None) -> float:
    """``(x - 2)^2 + (y + 1)^2``, plus 0.5 for kind "shifted"; prunes and fails some trials."""
    x = trial.suggest_float("x", -10.0, 10.0)
    y = trial.suggest_int("y", -5, 5)
    kind = trial.suggest_categorical("kind", ["plain", "shifted", None])
    trial.set_user_attr("half_x", x / 2)
    trial.set_user_attr("seen", [trial.number, ("kind", kind)])
    value = (x - 2.0) ** 2 + (y + 1.0) ** 2 + (0.5 if kind == "shifted" else 0.0)
    for step in range(3):
        trial.report(value * (3 - step), step)
    if trial.number == hold_at and marker is not None:
        marker.write_text(str(trial.number))
        time.sleep(120)
    if trial.number % 6 == 4:
        raise optuna.TrialPruned()
    if trial.number % 7 == 5:
        raise ValueError(f"no value for trial {trial.number}")
    return value


def sampler(kind: str, *, pickle: bool, seed: int) -> Any:
    """The sampler argument of ``create_study`` for a sampler kind."""
    factory: Callable[..., optuna.samplers.BaseSampler] = optuna.samplers.RandomSampler
    if kind == "tpe":
        factory = functools.partial(optuna.samplers.TPESampler, n_startup_trials=STARTUP_TRIALS)
    return factory(seed=seed) if pickle else factory


def open_study(
    store: Store | str, session: str, kind: str, *, seed: int, pickle: bool = False
) -> ResumableStudy:
    """Open the study, waiting out (a few times) the lease of a killed worker."""
    for _ in range(5):
        try:
            return create_study(
                store,
                session,
                direction="minimize",
                sampler=sampler(kind, pickle=pickle, seed=seed),
                seed=seed,
                allow_pickle=pickle,
                lease_ttl=LEASE_TTL,
            )
        except LeaseHeld as held:
            time.sleep(max(0.0, held.expires_at.timestamp() - time.time()) + 0.1)
    raise AssertionError("the lease of the killed worker never expired")


def run(
    store: Store | str,
    session: str,
    kind: str,
    trials: int,
    *,
    seed: int,
    pickle: bool = False,
    hold_at: int | None = None,
    marker: Path | None = None,
) -> None:
    """Run the study until the session holds ``trials`` trials."""
    with open_study(store, session, kind, seed=seed, pickle=pickle) as study:
        study.optimize(
            functools.partial(objective, hold_at=hold_at, marker=marker),
            trials,
            catch=(ValueError,),
        )
        print(f"done {study.trials}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--sampler", choices=["tpe", "random"], required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pickle", action="store_true")
    parser.add_argument("--hold-at", type=int)
    parser.add_argument("--marker", type=Path)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run(
        args.store,
        args.session,
        args.sampler,
        args.trials,
        seed=args.seed,
        pickle=args.pickle,
        hold_at=args.hold_at,
        marker=args.marker,
    )


if __name__ == "__main__":
    main()
