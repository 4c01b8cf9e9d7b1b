"""Drawing the LR range test on a plotext figure: shared by ``termnist lr-find`` (text) and
the LR finder screen (a PlotextPlot's ``plt``). No Textual here."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def decade_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Powers of ten from lo to hi, labelled 1e-6 ... 1e1 (plotext's own labels are 0.000001)."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ks = list(range(a, b + 1))
    if len(ks) > 9:                       # at most ~9 labels on 80 columns
        ks = ks[:: math.ceil(len(ks) / 9)]
    return [10.0 ** k for k in ks], [f"1e{k}" for k in ks]


def draw_lr_curve(plt: Any, lrs: Sequence[float], losses: Sequence[float], suggestion: float | None,
                  *, ascii_only: bool = False, colour: bool = True, x_range: tuple[float, float] | None = None,
                  ) -> None:
    """Smoothed loss against lr on a log x axis, the suggestion as a vertical line + marker."""
    plt.clear_figure()
    if not colour:
        plt.clc()
    marker = "+" if ascii_only else "braille"
    lo, hi = x_range or (min(lrs), max(lrs))
    lrs, losses = shown_points(lrs, losses)
    plt.plot(lrs, losses, label="smoothed loss", marker=marker, color="cyan")
    if suggestion is not None:
        plt.vline(suggestion, "red")
        y = _loss_at(lrs, losses, suggestion)
        plt.scatter([suggestion], [y], marker="x" if ascii_only else "●", color="red",
                    label=f"suggested lr {suggestion:.3g}")
    plt.xscale("log")
    ticks, labels = decade_ticks(lo, hi)
    plt.xticks(ticks, labels)
    plt.xlabel("learning rate (log scale)")
    plt.ylabel("loss")


def shown_points(lrs: Sequence[float], losses: Sequence[float]) -> tuple[list[float], list[float]]:
    """The points up to the explosion: the last one (above 4 x the best, which stopped the
    test) would stretch the y axis so far that the useful dip became a flat line."""
    if not losses:
        return [], []
    cap = 4.0 * min(losses)
    keep = [i for i, v in enumerate(losses) if v <= cap]
    return [float(lrs[i]) for i in keep], [float(losses[i]) for i in keep]


def _loss_at(lrs: Sequence[float], losses: Sequence[float], lr: float) -> float:
    best = min(range(len(lrs)), key=lambda i: abs(math.log(lrs[i]) - math.log(lr)))
    return float(losses[best])


def render_text(lrs: Sequence[float], losses: Sequence[float], suggestion: float | None, width: int = 80,
                height: int = 20, colour: bool = False, ascii_only: bool = False,
                x_range: tuple[float, float] | None = None) -> str:
    """The chart as text (``termnist lr-find``); ANSI colour codes only with ``colour``."""
    import plotext as plt

    draw_lr_curve(plt, lrs, losses, suggestion, ascii_only=ascii_only, colour=colour, x_range=x_range)
    plt.plotsize(width, height)
    plt.title("LR range test")
    out = plt.build()
    plt.clear_figure()
    return out if colour else ANSI.sub("", out)
