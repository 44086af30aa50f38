"""The history plot's best-so-far line follows the session's direction."""

from __future__ import annotations

from typing import Any

import pytest

from dsxir.cli.plot import MAX_POINTS, history_figure
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint

pytest.importorskip("matplotlib")


def _session(direction: str, scores: list[float | None]) -> Checkpoint:
    cp = ck.new(
        session_id="plot",
        optimizer="demo.Opt",
        trainset_hash=b"\x01" * 32,
        sampler_blob=b"",
        sampler_format=("demo.Sampler", 1),
        direction=direction,  # type: ignore[arg-type]
    )
    for score in scores:
        ck.record_trial(cp, score=score)
    return cp


def _best_line(figure: Any) -> tuple[list[float], list[float]]:
    (line,) = [line for line in figure.axes[0].lines if line.get_gid() == "best"]
    return list(map(float, line.get_xdata())), list(map(float, line.get_ydata()))


@pytest.mark.parametrize(
    ("direction", "xs", "ys", "label", "best"),
    [
        ("lower", [0, 1, 4, 5], [0.9, 0.4, 0.2, 0.2], "score (lower is better)", (0.2, 4)),
        ("higher", [0, 5], [0.9, 0.9], "score", (0.9, 0)),
    ],
)
def test_best_so_far_follows_the_direction(
    direction: str, xs: list[float], ys: list[float], label: str, best: tuple[float, int]
) -> None:
    cp = _session(direction, [0.9, 0.4, 0.4, None, 0.2, 0.7])
    figure, _ = history_figure(cp)
    assert _best_line(figure) == (xs, ys)  # the equal 0.4 of trial 2 is no step
    axes = figure.axes[0]
    assert axes.get_ylabel() == label
    assert f"best {best[0]} at trial {best[1]}" in axes.get_title()


def test_bucketed_best_of_a_lower_session_only_falls() -> None:
    count = MAX_POINTS * 2
    cp = _session("lower", [float((i * 7919) % 1009) - i / 10 for i in range(count)])
    figure, summary = history_figure(cp)
    assert summary.bucket_size > 1
    _, ys = _best_line(figure)
    assert ys == sorted(ys, reverse=True)
    assert ys[-1] == cp.progress.best_score
