"""The history plot: score per trial, best so far, every trial marked.

Needs matplotlib, the optional ``[plot]`` extra; without it
:func:`write_history_plot` raises :class:`CliError` with exit code 7. The plot
is drawn on a figure of its own (no pyplot state, no display needed).

What it shows, from 3 to hundreds of thousands of trials:

- every trial has a mark, and the x axis spans every trial index: ok trials
  with a finite score as dots, error trials as ``x`` in a band below the
  scores, ok trials without a score as ``|`` in the same band;
- scores of ``+inf`` as ``^`` on the top edge and of ``-inf`` as ``v`` on the
  bottom edge (the y axis is fitted to the finite scores), counted in the
  legend and in a note under the title;
- the best score so far as a step line (at the edge while it is infinite),
  following the session's direction: the highest score so far, or the
  lowest when lower is better (then the y axis says so), with the rule of
  FORMAT.md §9 (strictly better; the first of equal scores stays best);
- the legend outside the data area, to the right of the axes.

Beyond :data:`MAX_POINTS` trials the trials are grouped in :data:`BUCKETS`
buckets of consecutive indices, and each bucket keeps its lowest, highest
and last finite score (at their own trial index), its first and last error,
its first infinite score of each sign, and the last improvement of the best
score; nothing is dropped that would change the picture, and the note says
so. Stored text (the session id) is drawn as plain text: ``$`` never starts
math, control characters are escaped, and matplotlib's warnings stay off
the terminal.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dsxir.cli.exits import CliError, Exit
from dsxir.cli.views import printable, render_score
from dsxir.optimizer_session.v1.checkpoint_pb2 import DIRECTION_LOWER, Checkpoint

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["BUCKETS", "MAX_POINTS", "PlotSummary", "history_figure", "write_history_plot"]

MAX_POINTS = 2000
"""Up to this many trials, every trial is drawn as it is."""
BUCKETS = 1000
"""Beyond :data:`MAX_POINTS` trials, the number of buckets they are grouped in."""

_MISSING_EXTRA = "plotting needs matplotlib: pip install 'dsxir-checkpoint[plot]'"


@dataclass
class PlotSummary:
    """What the plot holds (for the command's message and for tests)."""

    trials: int = 0
    errors: int = 0
    unscored: int = 0
    positive_infinite: int = 0
    negative_infinite: int = 0
    bucket_size: int = 1
    notes: list[str] = field(default_factory=list)


@dataclass
class _Series:
    """The points of one kind, already downsampled."""

    x: list[int] = field(default_factory=list)
    y: list[float] = field(default_factory=list)


def _import_matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise CliError(Exit.MISSING_EXTRA, _MISSING_EXTRA) from None
    return matplotlib


def write_history_plot(cp: Checkpoint, out: str) -> PlotSummary:
    """Write the PNG history plot of ``cp`` to ``out`` (replaced atomically)."""
    _import_matplotlib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure, summary = history_figure(cp)
        temp = f"{out}.tmp-{os.getpid()}.png"
        try:
            figure.savefig(temp, format="png")
            os.replace(temp, out)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise CliError(Exit.IO_ERROR, f"{out}: {exc.strerror or exc}") from None
    return summary


def history_figure(cp: Checkpoint) -> tuple[Figure, PlotSummary]:
    """The history plot of ``cp`` as a matplotlib figure (not yet drawn), and its summary."""
    _import_matplotlib()
    from matplotlib.figure import Figure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        series, summary = _series(cp)
        figure = Figure(figsize=(10, 4.8), dpi=100, layout="constrained")
        _draw(figure, cp, series, summary)
    return figure, summary


# --- the data ----------------------------------------------------------------------------


def _series(cp: Checkpoint) -> tuple[dict[str, _Series], PlotSummary]:
    trials = cp.progress.trial_log
    summary = PlotSummary(trials=len(trials))
    count = len(trials)
    size = 1 if count <= MAX_POINTS else math.ceil(count / BUCKETS)
    summary.bucket_size = size
    names = ("score", "error", "unscored", "+inf", "-inf", "best")
    series = {name: _Series() for name in names}
    best: float | None = None
    lower = cp.direction == DIRECTION_LOWER
    for start in range(0, count, size):
        bucket = trials[start : start + size]
        low = high = last = None  # (x, y) of the finite scores
        errors: list[int] = []
        unscored: list[int] = []
        plus: int | None = None
        minus: int | None = None
        improved: tuple[int, float] | None = None
        for entry in bucket:
            x = entry.trial_idx
            if entry.status != 1:
                summary.errors += 1
                _keep_ends(errors, x)
                continue
            if not entry.HasField("score"):
                summary.unscored += 1
                _keep_ends(unscored, x)
                continue
            y = entry.score
            if best is None or (y < best if lower else y > best):
                best = y
                improved = (x, y)
            if math.isinf(y):
                if y > 0:
                    summary.positive_infinite += 1
                    plus = x if plus is None else plus
                else:
                    summary.negative_infinite += 1
                    minus = x if minus is None else minus
                continue
            point = (x, y)
            if low is None or y < low[1]:
                low = point
            if high is None or y > high[1]:
                high = point
            last = point
        kept = sorted({p for p in (low, high, last) if p is not None})
        for x, y in kept:
            series["score"].x.append(x)
            series["score"].y.append(y)
        series["error"].x.extend(errors)
        series["unscored"].x.extend(unscored)
        if plus is not None:
            series["+inf"].x.append(plus)
        if minus is not None:
            series["-inf"].x.append(minus)
        if improved is not None:
            series["best"].x.append(improved[0])
            series["best"].y.append(improved[1])
    if size > 1:
        summary.notes.append(
            f"{count} trials in buckets of {size}: each keeps its lowest, highest and last "
            "score, its first and last error"
        )
    if summary.positive_infinite or summary.negative_infinite:
        parts = []
        if summary.positive_infinite:
            parts.append(f"{summary.positive_infinite} scored +inf (^ on the top edge)")
        if summary.negative_infinite:
            parts.append(f"{summary.negative_infinite} scored -inf (v on the bottom edge)")
        summary.notes.append("; ".join(parts))
    return series, summary


# --- the drawing -------------------------------------------------------------------------


def _draw(figure: Figure, cp: Checkpoint, series: dict[str, _Series], summary: PlotSummary) -> None:
    trials = cp.progress.trial_log
    axes = figure.add_subplot(1, 1, 1)
    finite = [*series["score"].y, *(y for y in series["best"].y if math.isfinite(y))]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = high - low or (abs(high) or 1.0)
    bottom, top = low - 0.16 * span, high + 0.08 * span
    band = low - 0.09 * span  # errors and unscored trials, below every score
    axes.set_ylim(bottom, top)
    if len(trials):
        first, final = trials[0].trial_idx, trials[-1].trial_idx
        pad = max(0.5, 0.015 * (final - first))
        axes.set_xlim(first - pad, final + pad)
    many = summary.bucket_size > 1 or len(series["score"].x) > 500
    dot = 6 if many else 18

    score = series["score"]
    axes.scatter(
        score.x, score.y, s=dot, color="#4C72B0", label="score (ok trial)", zorder=3, gid="score"
    )
    best = series["best"]
    if best.x:
        best_x = [*best.x, trials[-1].trial_idx]
        best_y = [_clip(y, bottom, top) for y in (*best.y, best.y[-1])]
        axes.step(
            best_x,
            best_y,
            where="post",
            color="#DD8452",
            linewidth=2,
            label="best so far",
            zorder=5,
            gid="best",
        )
    marks = (
        ("error", band, "x", "#C44E52", f"error trial ({summary.errors})"),
        ("unscored", band, "|", "#7F7F7F", f"ok, no score ({summary.unscored})"),
        ("+inf", top, "^", "#8172B3", f"score +inf ({summary.positive_infinite}, top edge)"),
        ("-inf", bottom, "v", "#8172B3", f"score -inf ({summary.negative_infinite}, bottom edge)"),
    )
    for name, y, marker, color, label in marks:
        xs = series[name].x
        if not xs:
            continue
        axes.scatter(
            xs,
            [y] * len(xs),
            marker=marker,
            s=dot * 2.2,
            color=color,
            label=label,
            zorder=4,
            clip_on=False,
            gid=name,
        )
    best_note = ""
    if cp.progress.HasField("best_score"):
        best_note = (
            f" - best {render_score(cp.progress.best_score)} at trial {cp.progress.best_trial_idx}"
        )
    title = f"session {printable(cp.session_id)}: {len(trials)} trials{best_note}"
    if summary.notes:
        title += "\n" + "\n".join(summary.notes)
    axes.set_title(title, parse_math=False, fontsize="medium")
    axes.set_xlabel("trial")
    axes.set_ylabel("score (lower is better)" if cp.direction == DIRECTION_LOWER else "score")
    axes.grid(True, alpha=0.3)
    if len(trials):
        axes.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
            fontsize="small",
            markerscale=1.5 if many else 1.0,
        )


def _keep_ends(kept: list[int], x: int) -> None:
    """Keep the first and the latest ``x`` of a bucket."""
    if len(kept) < 2:
        kept.append(x)
    else:
        kept[1] = x


def _clip(value: float, bottom: float, top: float) -> float:
    if math.isinf(value):
        return top if value > 0 else bottom
    return value
