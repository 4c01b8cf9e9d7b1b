"""Robustness: test accuracy as the test images get harder -- Gaussian noise, rotation, thicker
and thinner strokes, a few levels each (engine.insight.robustness) -- as curves on a chart and
a small table that is also the chart's legend, so a user sees what augmentation buys.

compute() runs in a worker with one BLAS thread on a fixed sample of ROBUST_IMAGES test images
(seed 0; all of them when there are fewer), a private copy of the model, and says how many
images it used. Thicker/thinner strokes need images at least MIN_STROKE_SIDE pixels across: on
8x8 digits one 3x3 pass already changes the whole digit, so the view leaves them out and says so.
Rotation needs a 2-D image (a feature vector that is not one gets noise only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from engine.insight.robustness import LEVELS, Curve, robustness_curves
from engine.mlp import MLP
from tui.insight import ModelInput, ViewSpec
from tui.insight.health import sample_indices
from tui.terminal import BOX_TO_ASCII, ascii_only

#: test images the curves are computed on (a fixed sample): 0.5 s for 784-512-256-10 on one core
#: of a 2-core machine at load average 4, 16 levels (2,000 images: 2.2 s at load 7). The standard error of an
#: accuracy near 90% on 1,000 images is about 1 point, far below the drops the curves show.
ROBUST_IMAGES = 1000
#: thicker/thinner need images at least this many pixels across (MNIST's 28, not 8x8 digits)
MIN_STROKE_SIDE = 16
SEED = 0

TITLES = {"noise": "noise", "rotation": "rotation", "thicker": "thicker", "thinner": "thinner"}
UNITS = {"noise": "sigma", "rotation": "deg", "thicker": "px", "thinner": "px"}
COLOURS = {"noise": "cyan", "rotation": "orange", "thicker": "green", "thinner": "magenta"}
RICH_COLOURS = {**COLOURS, "rotation": "dark_orange"}
MARKERS = {"noise": "o", "rotation": "x", "thicker": "+", "thinner": "*"}


@dataclass
class RobustnessResult:
    curves: list[Curve]
    n_images: int
    n_total: int
    skipped: dict[str, str] = field(default_factory=dict)    # perturbation -> why it is left out
    label: str = ""
    seconds: float = 0.0                                     # compute time (not shown: benchmarks)


def levels_for(shape: tuple[int, ...]) -> tuple[dict[str, tuple[float, ...]], dict[str, str]]:
    """The perturbations that make sense for images of ``shape`` (H, W), and why the others do not."""
    levels = dict(LEVELS)
    skipped: dict[str, str] = {}
    if len(shape) != 2 or min(shape) == 1:
        for name in ("rotation", "thicker", "thinner"):
            skipped[name] = "the inputs are not an image"
    elif min(shape) < MIN_STROKE_SIDE:
        for name in ("thicker", "thinner"):
            skipped[name] = (f"{shape[0]}x{shape[1]} images are too small (one 3x3 pass changes the whole digit;"
                             f" needs {MIN_STROKE_SIDE}+ pixels across)")
    return {k: v for k, v in levels.items() if k not in skipped}, skipped


def measure(inp: ModelInput, n_images: int = ROBUST_IMAGES, seed: int = SEED) -> RobustnessResult:
    import time

    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    model = inp.model
    copy = MLP.from_weights(model.architecture(), model.params)   # the forward pass uses the model's buffers
    ds = inp.dataset
    x = np.asarray(ds.x_test)
    idx = sample_indices(len(x), n_images, seed)
    levels, skipped = levels_for(tuple(x.shape[1:]))
    with threadpool_limits(limits=1, user_api="blas"):            # one core's worth, beside training
        curves = robustness_curves(copy, x[idx], np.asarray(ds.y_test)[idx], ds.max_value, levels, seed=seed)
    return RobustnessResult(curves, len(idx), len(x), skipped, inp.label, time.perf_counter() - t0)


def _level(name: str, v: float) -> str:
    return f"{v:g}"


def table(r: RobustnessResult, ascii_mode: bool = False) -> Text:
    """The figures as lines: each perturbation's levels with the accuracy at each. Each line
    starts with its curve's key (its colour; its marker where Unicode is off): the chart's
    legend, kept out of the chart, where it covered the curves' start at 80x24."""
    out = Text()
    out.append(f"{r.label + ': ' if r.label else ''}accuracy on {r.n_images:,} of {r.n_total:,} test images"
               f"{' (a fixed sample, seed 0)' if r.n_images < r.n_total else ''}", style="bold")
    for c in r.curves:
        key = f"{MARKERS[c.name]} " if ascii_mode else "\u2501 "
        out.append(f"\n{key}{TITLES[c.name]:<9}{'(' + UNITS[c.name] + ')':<8}", style=RICH_COLOURS[c.name])
        cells = []
        for lv, acc in zip(c.levels, c.accuracy):
            cells.append(f"{_level(c.name, lv)}:{'-' if math.isnan(acc) else f'{acc:.1%}'}")
        out.append("  ".join(cells))
    for name, why in r.skipped.items():
        out.append(f"\n{TITLES[name]}: unavailable, {why}", style="dim")
    return out


class RobustnessChart(PlotextPlot):
    """Accuracy (%) against the level step (0 = clean images) of each perturbation."""

    DEFAULT_CSS = "RobustnessChart { height: 1fr; min-height: 6; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.curves: list[Curve] = []

    def plot(self, curves: list[Curve]) -> None:
        self.curves = curves
        plt = self.plt
        plt.clear_figure()
        ascii_mode = ascii_only(self)
        lo = 100.0
        for c in curves:
            xs = list(range(len(c.levels)))
            ys = [100 * a for a in c.accuracy]
            lo = min([lo, *ys])
            # no label: the legend is the table below (each line in its curve's colour/marker)
            plt.plot(xs, ys, color=COLOURS[c.name], marker=MARKERS[c.name] if ascii_mode else "braille")
        steps = max((len(c.levels) for c in curves), default=1)
        plt.xticks(list(range(steps)), ["clean", *[str(i) for i in range(1, steps)]])
        plt.xlabel("harder ->  (levels: the table below)")
        plt.ylabel("acc %")
        plt.ylim(max(0.0, math.floor(lo / 10) * 10), 100.0)
        self.refresh()

    def render(self) -> Any:
        if not self.curves:
            return Text("robustness chart\n\nwaiting for a model...", justify="center", style="dim")
        out = super().render()
        if isinstance(out, Text) and ascii_only(self):
            out.plain = out.plain.translate(BOX_TO_ASCII)
        return out


class RobustnessView(Vertical, can_focus=True):
    """The Robustness insight view (tui.insight contract: unavailable / compute / show)."""

    DEFAULT_CSS = "RobustnessView { height: 1fr; } RobustnessView #robust-table { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.result: RobustnessResult | None = None

    def compose(self) -> ComposeResult:
        yield RobustnessChart(id="robust-chart")
        yield Static("", id="robust-table", markup=False)

    def unavailable(self, inp: ModelInput) -> str | None:
        n_pixels = int(np.prod(inp.dataset.x_test.shape[1:]))
        if n_pixels != inp.model.sizes[0]:
            return f"The model takes {inp.model.sizes[0]} inputs but the dataset's images have {n_pixels} pixels."
        if len(inp.dataset.y_test) == 0:
            return "The dataset has no test images."
        return None

    def compute(self, inp: ModelInput) -> RobustnessResult:
        return measure(inp)

    def show(self, result: RobustnessResult) -> None:
        self.result = result
        self.query_one(RobustnessChart).plot(result.curves)
        self.query_one("#robust-table", Static).update(table(result, ascii_only(self)))


VIEW = ViewSpec("robustness", "Robustness", RobustnessView)
