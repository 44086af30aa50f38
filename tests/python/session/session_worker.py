"""A worker process for the session runner's tests: a seeded search loop on ``open_session``.

    python session_worker.py --store URL --session ID --trials N
        [--seed N] [--delay S] [--ttl S] [--optimizer NAME]

It prints ``open created=… resumed=… trials=…`` once it holds the session and
``trial I`` after each commit, then runs to ``--trials`` trials and completes
the session. Exit codes: 0 completed, 3 ResumeMismatch, 4 AlreadyTerminal,
5 LeaseHeld, 6 LeaseLost, 7 Conflict, 128 + the signal number when
SIGINT/SIGTERM interrupted it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from dsxir.errors import AlreadyTerminal, Conflict, LeaseHeld, LeaseLost, ResumeMismatch
from dsxir.session import Interrupted, Session, open_session
from dsxir.store import Store

OPTIMIZER = "tests.SeededSearch"
SAMPLER = ("tests.SplitMix64", 1)
TRAINSET = [{"x": i, "y": 2 * i + 1} for i in range(8)]
_MASK = (1 << 64) - 1


def draw(state: int) -> tuple[int, float]:
    """One SplitMix64 step: the next state and a float in [0, 1)."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return state, ((z ^ (z >> 31)) >> 11) / float(1 << 53)


def run(
    session: Session,
    trials: int,
    *,
    delay: float = 0.0,
    on_trial: Callable[[int], None] | None = None,
) -> None:
    """Run the loop from where the session is to ``trials`` trials, then complete it.

    Everything the loop needs lives in the session: its generator state is
    the sampler blob, committed with each trial.
    """
    state = int.from_bytes(session.sampler_blob, "big")
    while session.trials < trials:
        state, x = draw(state)
        if delay:
            time.sleep(delay)
        blob = state.to_bytes(8, "big")
        if x > 0.9:
            idx = session.record_trial(
                score=None,
                status="error",
                error={"message": f"diverged at {x:.6f}"},
                candidate_id=f"x={x:.6f}",
                duration_ms=7,
                sampler_blob=blob,
            )
        else:
            idx = session.record_trial(
                score=-((x - 0.3) ** 2),
                candidate_id=f"x={x:.6f}",
                stats={"x": x},
                duration_ms=int(x * 1000),
                sampler_blob=blob,
            )
        if on_trial is not None:
            on_trial(idx)
    session.complete({"trials": trials})


def open_it(
    store: Store | str,
    session_id: str,
    *,
    seed: int = 7,
    ttl: float = 30.0,
    optimizer: str = OPTIMIZER,
    handle_signals: bool = True,
) -> Session:
    """The worker's ``open_session`` call."""
    return open_session(
        store,
        session_id,
        optimizer=optimizer,
        sampler_format=SAMPLER,
        trainset=TRAINSET,
        sampler_blob=seed.to_bytes(8, "big"),
        lease_ttl=ttl,
        handle_signals=handle_signals,
    )


def main() -> int:
    """Run the worker; return its exit code."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--ttl", type=float, default=30.0)
    parser.add_argument("--optimizer", default=OPTIMIZER)
    args = parser.parse_args()
    try:
        with open_it(
            args.store, args.session, seed=args.seed, ttl=args.ttl, optimizer=args.optimizer
        ) as session:
            print(
                f"open created={session.created} resumed={session.resumed} trials={session.trials}",
                flush=True,
            )
            run(
                session,
                args.trials,
                delay=args.delay,
                on_trial=lambda idx: print(f"trial {idx}", flush=True),
            )
    except LeaseHeld as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 5
    except ResumeMismatch as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 3
    except AlreadyTerminal as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 4
    except LeaseLost as exc:
        print(f"lost: {exc}", file=sys.stderr)
        return 6
    except Conflict as exc:
        print(f"conflict: {exc}", file=sys.stderr)
        return 7
    except Interrupted as exc:
        print(f"interrupted {exc.signum}", flush=True)
        return 128 + exc.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
