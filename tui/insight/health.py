"""Health: is the network learning well? Per-layer gradient strength, dead (ReLU) or saturated
(sigmoid/tanh) units, the gap between the training and validation curves, and plain-language
hints (engine.insight.health.hints), each with its one-key fix where one exists.

A fix is only asked for: the view posts ``ApplyFix(code)`` (a FIX_* code of
engine.insight.health) and the host applies it: halving the learning rate live on a running
session, or changing the settings form for the next run (tui.insight.fixes.apply_fix_to_form).

What the host gives in ``ModelInput``:
  history  the run's epoch rows (train_loss, val_loss, train_acc, val_acc); () for a loaded model
  extra    "step_losses": the run's training losses from its start, one per step (BatchProgress.points'
           losses, oldest first; a few hundred are plenty), "batch_size": of those steps (default
           64), "diverged": True when the run stopped on a NaN/inf loss. All optional: without
           them the hints use the epoch rows alone.
The signals are measured on HEALTH_IMAGES test images (a fixed sample, seed 0) with a private
copy of the model (the gradients overwrite a model's buffers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from engine.datasets import to_features
from engine.insight import health as eh
from engine.mlp import MLP
from tui.insight import ModelInput, ViewSpec
from tui.insight.fixes import FIX_LABELS
from tui.insight.shading import strip
from tui.terminal import ascii_only

#: test images the signals are measured on (dead units: "never active on this batch")
HEALTH_IMAGES = 512
MAX_FIXES = 5


class ApplyFix(Message):
    """The user asked for a hint's fix (``code``: a FIX_* code of engine.insight.health)."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code


@dataclass
class HealthResult:
    signals: eh.RunSignals
    hints: list[eh.Hint]
    gaps: list[tuple[int, float, float]]          # (epoch, val - train loss, train - val accuracy)
    last: dict[str, Any]                          # the last epoch row ({} without history)
    n_images: int
    label: str = ""
    fixes: list[str] = field(default_factory=list)   # distinct fix codes, in key order (1, 2, ...)


def sample_indices(n: int, k: int, seed: int = 0) -> np.ndarray:
    """``k`` of ``n`` indices (all when k >= n), a fixed seeded sample, in order."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def measure(inp: ModelInput, n_images: int = HEALTH_IMAGES) -> HealthResult:
    """Every health figure for ``inp`` (pure NumPy; the view's compute)."""
    model = inp.model
    copy = MLP.from_weights(model.architecture(), model.params)
    ds = inp.dataset
    idx = sample_indices(len(ds.y_test), n_images)
    x = to_features(ds.x_test[idx], ds.max_value, dtype=copy.dtype)
    y = np.asarray(ds.y_test[idx]).astype(np.int64)
    extra = inp.extra or {}
    losses = [float(v) for v in extra.get("step_losses", ())]
    signals = eh.measure_signals(copy, x, y, losses, bool(extra.get("diverged", False)),
                                 int(extra.get("batch_size", 64)))
    history = list(inp.history)
    hints = eh.hints(history, signals)
    fixes: list[str] = []
    for h in hints:
        for code in h.fixes or ((h.fix,) if h.fix else ()):
            if code not in fixes:
                fixes.append(code)
    return HealthResult(signals, hints, eh.train_val_gap(history), dict(history[-1]) if history else {},
                        len(idx), inp.label, fixes[:MAX_FIXES])


def _num(v: float) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.2e}"


def _pct(v: Any) -> str:
    return "-" if v is None or not math.isfinite(float(v)) else f"{float(v):.1%}"


def render(r: HealthResult, width: int = 80, ascii_mode: bool = False) -> Text:
    """The view's text (also what the tests read)."""
    s = r.signals
    kind = "saturated" if s.activation in ("sigmoid", "tanh") else "dead"
    shares = s.saturated_share if kind == "saturated" else s.dead_share
    out = Text()
    out.append(f"{r.label + ': ' if r.label else ''}measured on {r.n_images} test images", style="bold")
    out.append(f"\n{'layer':<8}{'grad RMS':>10}{'weight RMS':>12}{'grad/weight':>13}{kind:>11}  strength")
    top = max((g.grad_rms for g in s.gradients if math.isfinite(g.grad_rms)), default=0.0)
    bar_w = max(4, min(20, width - 58))
    for i, g in enumerate(s.gradients):
        share = _pct(shares[i]) if i < len(shares) else "output"
        if s.activation == "leaky_relu" and i < len(shares):
            share = "-"                  # a leaky unit always passes a gradient: never dead
        frac = g.grad_rms / top if top > 0 and math.isfinite(g.grad_rms) else 0.0
        bar = ("#" if ascii_mode else "\u2588") * max(1 if frac > 0 else 0, round(frac * bar_w))
        out.append(f"\n{g.name:<8}{_num(g.grad_rms):>10}{_num(g.weight_rms):>12}{_num(g.ratio):>13}{share:>11}  ")
        out.append(bar, style="cyan")
    out.append("\n")
    last = r.last
    if last.get("val_loss") is not None and last.get("train_loss") is not None:
        gap_loss = float(last["val_loss"]) - float(last["train_loss"])
        line = (f"\nepoch {last.get('epoch', len(r.gaps))}: loss train {float(last['train_loss']):.4f}"
                f" / val {float(last['val_loss']):.4f} (gap {gap_loss:+.4f})")
        if last.get("val_acc") is not None and last.get("train_acc") is not None:
            line += (f", accuracy {float(last['train_acc']):.1%} / {float(last['val_acc']):.1%}"
                     f" (gap {100 * (float(last['train_acc']) - float(last['val_acc'])):+.1f} pts)")
        out.append(line)
        if len(r.gaps) >= 2:
            gaps = [g[1] for g in r.gaps]
            shifted = np.asarray(gaps) - min(gaps)
            out.append(f"\nloss gap by epoch {min(gaps):+.3f}..{max(gaps):+.3f} ")
            out.append(strip(shifted + 1e-12 * (shifted.max() <= 0), min(len(gaps), max(8, width - 40)),
                             ascii_mode), style="magenta")
    elif last:
        out.append(f"\nepoch {last.get('epoch', '?')}: loss train {float(last.get('train_loss', math.nan)):.4f}"
                   " (no validation set: no train/validation gap)")
    else:
        out.append("\nno training history (a loaded model): hints from the measured signals only")
    out.append("\n")
    if not r.hints:
        out.append("\nNo hints: nothing in these signals looks wrong.", style="green")
    for h in r.hints:
        out.append("\n! ", style="bold yellow")
        out.append(h.text)
    if r.fixes:
        out.append("\n")
        for i, code in enumerate(r.fixes, 1):
            out.append(f"\n[{i}] ", style="bold reverse")
            out.append(f" {FIX_LABELS.get(code, code)}")
    return out


class HealthView(VerticalScroll, can_focus=True):
    """The Health insight view (tui.insight contract: unavailable / compute / show)."""

    DEFAULT_CSS = "HealthView { height: 1fr; } HealthView #health-body { width: 1fr; }"
    BINDINGS = [Binding(str(i), f"fix({i})", "Fix" if i == 1 else f"Fix {i}", show=i == 1)
                for i in range(1, MAX_FIXES + 1)]

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.result: HealthResult | None = None

    def compose(self) -> Any:
        yield Static(Text("waiting for a model...", style="dim"), id="health-body")

    def unavailable(self, inp: ModelInput) -> str | None:
        n_pixels = int(np.prod(inp.dataset.x_test.shape[1:]))
        if n_pixels != inp.model.sizes[0]:
            return f"The model takes {inp.model.sizes[0]} inputs but the dataset's images have {n_pixels} pixels."
        if len(inp.dataset.y_test) == 0:
            return "The dataset has no test images to measure the network on."
        return None

    def compute(self, inp: ModelInput) -> HealthResult:
        return measure(inp)

    def show(self, result: HealthResult) -> None:
        self.result = result
        width = self.size.width or 80
        self.query_one("#health-body", Static).update(render(result, width, ascii_only(self)))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The Fix key (1) is offered only while a hint offers a fix: without one it is
        disabled (the Insight screen's key line leaves it out)."""
        if action == "fix" and parameters == (1,) and (self.result is None or not self.result.fixes):
            return None
        return True

    def on_resize(self) -> None:
        if self.result is not None:      # the gradient bars follow the width
            self.show(self.result)

    def action_fix(self, n: int) -> None:
        r = self.result
        if r is None or not 1 <= n <= len(r.fixes):
            self.notify("No fix for that key: no hint offers one." if r is None or not r.fixes
                        else f"Fixes are 1-{len(r.fixes)}.", severity="warning")
            return
        self.post_message(ApplyFix(r.fixes[n - 1]))


VIEW = ViewSpec("health", "Health", HealthView)
