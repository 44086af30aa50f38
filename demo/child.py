"""The optimizer process of the demo: start or resume one session in a store.

    python demo/child.py --store URL --session ID --seed N --trials N
        [--delay SECONDS] [--stop-after N] [--trainset original|changed]
        [--sampler-version N] [--ttl SECONDS]

``--sampler-version`` is the blob layout this optimizer build reads (a build
that only reads version 2 must refuse a version-1 session); ``--ttl`` is the
lease's length in seconds. Exit codes: 0 the session completed (or paused
with ``--stop-after``), 3 the resume gate refused the session
(ResumeMismatch), 4 the session has already ended (AlreadyTerminal), 5
another live worker holds the session (LeaseHeld), 2 bad usage, 128 + the
signal number after SIGINT/SIGTERM paused the session. A refusal is one
line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from random_search import run

from dsxir.errors import AlreadyTerminal, LeaseHeld, ResumeMismatch
from dsxir.optimizer_session import checkpoint
from dsxir.session import Interrupted


def main(argv: list[str] | None = None) -> int:
    """Run the optimizer; return the exit code."""
    parser = argparse.ArgumentParser(prog="demo/child.py")
    parser.add_argument("--store", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--stop-after", type=int, default=None)
    parser.add_argument("--trainset", default="original", choices=("original", "changed"))
    parser.add_argument("--sampler-version", type=int, default=1)
    parser.add_argument("--ttl", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        stored = run(
            args.store,
            args.session,
            seed=args.seed,
            trials=args.trials,
            trainset_variant=args.trainset,
            accept_versions=args.sampler_version,
            delay=args.delay,
            stop_after=args.stop_after,
            lease_ttl=args.ttl,
        )
    except ResumeMismatch as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 3
    except AlreadyTerminal as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 4
    except LeaseHeld as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 5
    except Interrupted as exc:
        print(f"interrupted by signal {exc.signum}; the session is paused", file=sys.stderr)
        return 128 + exc.signum
    cp = stored.checkpoint
    print(
        f"session {cp.session_id}: {checkpoint.status_name(cp)} after "
        f"{len(cp.progress.trial_log)} trials (generation {stored.generation})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
