"""The history plot: score per trial, best so far, error trials marked.

Needs matplotlib, the optional ``[plot]`` extra; without it
:func:`write_history_plot` raises :class:`CliError` with exit code 7. The plot
is drawn with the non-interactive Agg backend, so it works without a display.
Stored text (the session id) is drawn as plain text: ``$`` never starts
math, control characters are escaped, and matplotlib's warnings (a glyph
missing from the font) stay off the terminal. Infinite scores are left out
of the plot.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from typing import Any

from dsxir.cli.exits import CliError, Exit
from dsxir.cli.views import best_so_far, printable
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint

__all__ = ["write_history_plot"]


def write_history_plot(cp: Checkpoint, out: str) -> None:
    """Write the PNG history plot of ``cp`` to ``out`` (replaced atomically)."""
    try:
        import matplotlib
    except ImportError:
        raise CliError(
            Exit.MISSING_EXTRA,
            "plotting needs matplotlib: pip install 'dsxir-checkpoint[plot]'",
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _draw(matplotlib, cp, out)


def _draw(matplotlib: Any, cp: Checkpoint, out: str) -> None:
    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    trials = list(cp.progress.trial_log)
    scored = [e for e in trials if e.status == 1 and e.HasField("score") and math.isfinite(e.score)]
    ok_x = [e.trial_idx for e in scored]
    ok_y = [e.score for e in scored]
    error_x = [e.trial_idx for e in trials if e.status != 1]
    best = best_so_far(cp)
    best_x = [i for i, b in enumerate(best) if b is not None and math.isfinite(b)]
    best_y = [b for b in best if b is not None and math.isfinite(b)]

    figure: Figure = pyplot.figure(figsize=(8, 4.5), dpi=100)
    try:
        axes = figure.add_subplot(1, 1, 1)
        axes.scatter(ok_x, ok_y, s=18, color="#4C72B0", label="score (ok trial)", zorder=3)
        if best_x:
            axes.step(
                best_x, best_y, where="post", color="#DD8452", linewidth=2, label="best so far"
            )
        if error_x:
            axes.scatter(
                error_x,
                [0.02] * len(error_x),
                transform=axes.get_xaxis_transform(),
                marker="x",
                s=40,
                color="#C44E52",
                label="error trial",
                zorder=4,
            )
        best_note = ""
        if cp.progress.HasField("best_score"):
            best_note = (
                f" - best {cp.progress.best_score:.6g} at trial {cp.progress.best_trial_idx}"
            )
        title = f"session {printable(cp.session_id)}: {len(trials)} trials{best_note}"
        axes.set_title(title, parse_math=False)
        axes.set_xlabel("trial")
        axes.set_ylabel("score")
        axes.grid(True, alpha=0.3)
        if trials:
            axes.legend(loc="lower right")
        figure.tight_layout()
        temp = f"{out}.tmp-{os.getpid()}.png"
        try:
            figure.savefig(temp, format="png")
            os.replace(temp, out)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise CliError(Exit.IO_ERROR, f"{out}: {exc.strerror or exc}") from None
    finally:
        pyplot.close(figure)
