"""``make bench``: the trial log as columns, beside a pickle round trip of the same trials.

A 10,000-trial checkpoint (bench.py's ``session``: 5 float stats per ok
trial, every tenth trial an error without stats) is read by
:func:`~dsxir.optimizer_session.columns.trial_columns` (lists),
``trials_dataframe`` (pandas) and ``trials_arrow`` (pyarrow). The reference
is ``pickle.loads(pickle.dumps(trials))`` of the same trials as a list of
dicts (bench.py's ``as_python``): the cost of handing the trials to another
Python process. Target: ``trial_columns`` and the DataFrame at no more than
1.0x that. The pure-Python reader (``DSXIR_PURE_PYTHON=1``) is shown too.
Each timing is the best of several repeats; nothing here is a test.
"""

from __future__ import annotations

import pickle
import sys

from bench import as_python, best_of, session
from dsxir.optimizer_session import accel, columns

TRIALS = 10_000


def main() -> int:
    cp = session(TRIALS, stats_size=5)
    trials = as_python(cp)["progress"]["trial_log"]

    def round_trip() -> object:
        return pickle.loads(pickle.dumps(trials, protocol=pickle.HIGHEST_PROTOCOL))

    reference = best_of(round_trip)
    timings = {
        "trial_columns": best_of(lambda: columns.trial_columns(cp)),
        "trials_dataframe": best_of(lambda: columns.trials_dataframe(cp)),
        "trials_arrow": best_of(lambda: columns.trials_arrow(cp)),
        "trial_columns, pure Python": best_of(lambda: columns._read(cp), repeat=3),
    }
    print(f"the trial log as columns, {TRIALS:,} trials with 5 float stats")
    print(f"   accelerator in use: {accel.ACCELERATED}")
    print(f"   pickle round trip of the trials as dicts {reference * 1e3:.1f} ms")
    for label, seconds in timings.items():
        target = " (target <= 1.0x)" if label in ("trial_columns", "trials_dataframe") else ""
        print(f"   {label} {seconds * 1e3:.1f} ms | ratio {seconds / reference:.2f}x{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
