"""Network health: gradient strength per layer, dead and saturated units, the train/validation
gap, and plain-language hints for known patterns, each with a one-key fix where one exists.

The hints come from measured signals, with every threshold a named constant below, and are
tested on short real runs made to show each pattern (tests/engine/test_insight_health.py).

Inputs:
  history      the run's epoch rows (TrainingSession.history, checkpoint metadata "history", or
               EpochEnded events as dicts): "epoch", "train_loss", "val_loss" (None without a
               validation set), "train_acc", "val_acc"
  RunSignals   what else was measured: step losses (BatchProgress.points), whether the run
               diverged, dead/saturated unit shares (:func:`measure_signals`), the activation
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.insight.units import forward_layers
from engine.mlp import MLP

# ---- thresholds (each hint's test runs show the pattern on a real run) -------------------------
#: step losses are averaged over chunks of about this many images (10 steps of 64) before
#: looking for patterns, so that small batches' noise does not read as oscillation
CHUNK_IMAGES = 640
#: exploding: a chunk's mean loss above this multiple of the first chunk's (or a NaN/inf loss)
EXPLODE_FACTOR = 3.0
#: oscillating: over the last OSC_WINDOW chunk means, the mean rise between consecutive chunks
#: (rises only) is at least OSC_SCORE of the first chunk's loss, while the loss is still at least
#: OSC_LEVEL of where it started (a too-high learning rate stalls high; a healthy run's noise is
#: small next to its start: 0.001-0.014 on the test runs, against 0.020-0.051 at lr 10x too high)
OSC_WINDOW = 20
OSC_SCORE = 0.017
OSC_LEVEL = 0.2
#: losses below this are "solved": relative jumps are measured against it at least
LOSS_FLOOR = 0.1
#: overfitting: validation loss at least OVERFIT_RISE above its minimum, reached at least
#: OVERFIT_EPOCHS epochs before the last, while the training loss kept falling since then
OVERFIT_RISE = 0.05
OVERFIT_EPOCHS = 2
#: dead units: a ReLU unit never active on the measured batch; hint when at least this share
#: of a hidden layer is dead
DEAD_SHARE = 0.25
#: saturated: a sigmoid/tanh activation within SATURATION_MARGIN (a share of the range) of its
#: bounds; hint when at least SATURATED_SHARE of a layer's activations on the batch are, and the
#: loss barely moves (Nielsen's healthy sigmoid net has 78% saturated and learns fine)
SATURATION_MARGIN = 0.02
SATURATED_SHARE = 0.5
#: barely moves: the training loss fell by less than FLAT_DROP (relative) from the first
#: observation to the last, over at least FLAT_MIN_STEPS steps (or two epochs)
FLAT_DROP = 0.05
FLAT_MIN_STEPS = 50

#: Fix codes a UI binds to one key (None: no one-key fix).
FIX_HALVE_LR = "halve_lr"                 # live, on the running session
FIX_WEIGHT_DECAY = "add_weight_decay"     # next run
FIX_AUGMENT = "augment_shift"             # next run
FIX_LEAKY_RELU = "leaky_relu"             # next run
FIX_RAISE_LR = "double_lr"                # next run


@dataclass(frozen=True)
class Hint:
    code: str                 # "exploding", "oscillating", "overfitting", "dead_units", "saturated", "flat"
    text: str                 # plain language, one or two sentences
    fix: str | None = None    # a FIX_* code, or None
    fixes: tuple[str, ...] = ()   # every fix that applies (``fix`` is the first)


@dataclass(frozen=True)
class LayerGradient:
    name: str                 # "dense0" ...
    grad_rms: float           # root mean square of dL/dW on the batch
    weight_rms: float
    ratio: float              # grad_rms / weight_rms (NaN when the weights are all zero)


@dataclass(frozen=True)
class RunSignals:
    step_losses: tuple[float, ...] = ()
    batch_size: int = 64                      # of the steps in step_losses
    diverged: bool = False
    activation: str = "relu"
    dead_share: tuple[float, ...] = ()        # per hidden layer
    saturated_share: tuple[float, ...] = ()   # per hidden layer (sigmoid/tanh)
    gradients: tuple[LayerGradient, ...] = ()


def gradient_strength(model: MLP, x: np.ndarray, y: np.ndarray) -> list[LayerGradient]:
    """Per-layer gradient strength on one batch (features x (B, D), labels y (B,)).

    Runs ``model.loss_and_grads``, which overwrites ``model.grads``: never call it on a model a
    session is training (use ``MLP.from_weights(model.architecture(), model.params)`` or a checkpoint's model)."""
    model.loss_and_grads(np.asarray(x, dtype=model.dtype), np.asarray(y))
    out = []
    for i in range(len(model.sizes) - 1):
        g = model.grads[f"dense{i}.W"].astype(np.float64)
        w = model.params[f"dense{i}.W"].astype(np.float64)
        g_rms = float(np.sqrt(np.mean(g * g)))
        w_rms = float(np.sqrt(np.mean(w * w)))
        out.append(LayerGradient(f"dense{i}", g_rms, w_rms, g_rms / w_rms if w_rms > 0 else float("nan")))
    return out


def dead_units(model: MLP, x: np.ndarray) -> list[float]:
    """Share of each hidden layer's units never active (activation <= 0) on features x (B, D).
    Meaningful for relu; leaky relu and tanh units are never "dead" this way (share 0 or near)."""
    layers = forward_layers(model, x)[:-1]
    return [float(np.mean(~(a > 0).any(axis=0))) for a in layers]


def saturated_units(model: MLP, x: np.ndarray) -> list[float]:
    """Share of each hidden layer's activations on x (B, D) that are saturated: within
    SATURATION_MARGIN of the bounds of sigmoid (0, 1) or tanh (-1, 1); zeros for other activations."""
    layers = forward_layers(model, x)[:-1]
    if model.activation == "sigmoid":
        lo, hi = 0.0, 1.0
    elif model.activation == "tanh":
        lo, hi = -1.0, 1.0
    else:
        return [0.0 for _ in layers]
    m = SATURATION_MARGIN * (hi - lo)
    return [float(np.mean((a <= lo + m) | (a >= hi - m))) for a in layers]


def measure_signals(model: MLP, x: np.ndarray, y: np.ndarray, step_losses: Sequence[float] = (),
                    diverged: bool = False, batch_size: int = 64) -> RunSignals:
    """Every model signal on one batch (x (B, D) features, y (B,) labels); ``model`` is used by
    :func:`gradient_strength` (pass a copy of a model being trained)."""
    return RunSignals(tuple(float(v) for v in step_losses), batch_size, diverged, model.activation,
                      tuple(dead_units(model, x)), tuple(saturated_units(model, x)),
                      tuple(gradient_strength(model, x, y)))


def train_val_gap(history: Sequence[Mapping[str, Any]]) -> list[tuple[int, float, float]]:
    """(epoch, val_loss - train_loss, train_acc - val_acc) for each epoch with validation."""
    out: list[tuple[int, float, float]] = []
    for row in history:
        if row.get("val_loss") is None or row.get("train_loss") is None:
            continue
        gap_acc = float(row["train_acc"]) - float(row["val_acc"]) if row.get("val_acc") is not None else math.nan
        out.append((int(row.get("epoch", len(out) + 1)), float(row["val_loss"]) - float(row["train_loss"]), gap_acc))
    return out


def _chunks(losses: Sequence[float], batch_size: int = 64) -> np.ndarray:
    a = np.asarray(losses, dtype=np.float64)
    steps = max(1, round(CHUNK_IMAGES / max(int(batch_size), 1)))
    n = len(a) // steps
    if n == 0:
        return a[:0]
    return a[: n * steps].reshape(n, steps).mean(axis=1)


def oscillation_score(losses: Sequence[float], batch_size: int = 64) -> tuple[float, float]:
    """(score, level) over the last OSC_WINDOW chunk means: score = mean rise between consecutive
    chunks (rises only) / the first chunk's mean, level = the window's mean / the first chunk's
    (the first chunk's mean taken as LOSS_FLOOR at least).
    (NaN, NaN) with fewer than 4 chunks or a non-finite loss."""
    c = _chunks(losses, batch_size)
    w = c[-OSC_WINDOW:]
    if len(w) < 4 or not np.isfinite(c).all() or c[0] <= 0:
        return float("nan"), float("nan")
    # a solved loss (0.01 +- 0.005) is not oscillating: jumps are measured against LOSS_FLOOR at least
    start = max(float(c[0]), LOSS_FLOOR)
    return float(np.maximum(np.diff(w), 0.0).mean() / start), float(w.mean() / start)


def _exploding(history: Sequence[Mapping[str, Any]], s: RunSignals) -> bool:
    if s.diverged:
        return True
    train = [float(r["train_loss"]) for r in history if r.get("train_loss") is not None]
    if any(not math.isfinite(v) for v in train) or any(not math.isfinite(v) for v in s.step_losses):
        return True
    c = _chunks(s.step_losses, s.batch_size)
    if len(c) >= 2 and c.max() > EXPLODE_FACTOR * max(c[0], LOSS_FLOOR):
        return True
    return len(train) >= 2 and train[-1] > EXPLODE_FACTOR * max(train[0], LOSS_FLOOR)


def _overfitting(history: Sequence[Mapping[str, Any]]) -> bool:
    rows = [r for r in history if r.get("val_loss") is not None and r.get("train_loss") is not None]
    if len(rows) < OVERFIT_EPOCHS + 1:
        return False
    val = np.array([float(r["val_loss"]) for r in rows])
    train = np.array([float(r["train_loss"]) for r in rows])
    best = int(np.argmin(val))
    return (len(rows) - 1 - best >= OVERFIT_EPOCHS and val[-1] >= (1 + OVERFIT_RISE) * val[best]
            and train[-1] < train[best])


def _flat(history: Sequence[Mapping[str, Any]], s: RunSignals) -> bool:
    c = _chunks(s.step_losses, s.batch_size)
    if len(s.step_losses) >= FLAT_MIN_STEPS and len(c) >= 2:
        first, last = c[0], c[-1]
    else:
        train = [float(r["train_loss"]) for r in history if r.get("train_loss") is not None]
        if len(train) < 2:
            return False
        first, last = train[0], train[-1]
    return bool(first > LOSS_FLOOR and (first - last) / first < FLAT_DROP)


def hints(history: Sequence[Mapping[str, Any]], signals: RunSignals | None = None) -> list[Hint]:
    """Plain-language hints for the patterns the run shows, most urgent first."""
    s = signals or RunSignals()
    out: list[Hint] = []
    exploding = _exploding(history, s)
    if exploding:
        out.append(Hint("exploding", "The loss is exploding (it grew past "
                        f"{EXPLODE_FACTOR:g}x its start, or became NaN): the learning rate is too high.",
                        FIX_HALVE_LR, (FIX_HALVE_LR,)))
    else:
        score, level = oscillation_score(s.step_losses, s.batch_size)
        if score >= OSC_SCORE and level >= OSC_LEVEL:
            out.append(Hint("oscillating", f"The loss jumps up and down and stays at {level:.0%} of where it"
                            " started: the learning rate is probably too high.",
                            FIX_HALVE_LR, (FIX_HALVE_LR,)))
    if _overfitting(history):
        out.append(Hint("overfitting", "Validation loss is rising while training loss falls: the network is"
                        " memorising the training images. Add weight decay or augmentation to the next run"
                        " (or stop earlier).", FIX_WEIGHT_DECAY, (FIX_WEIGHT_DECAY, FIX_AUGMENT)))
    for i, share in enumerate(s.dead_share):
        if share >= DEAD_SHARE and s.activation == "relu":
            out.append(Hint("dead_units", f"{share:.0%} of hidden layer {i + 1}'s units are dead (never active):"
                            " they no longer learn. Use leaky ReLU, or a smaller learning rate.",
                            FIX_LEAKY_RELU, (FIX_LEAKY_RELU,)))
            break
    saturated = [v for v in s.saturated_share if v >= SATURATED_SHARE]
    if not exploding and _flat(history, s):
        if saturated:
            out.append(Hint("saturated", f"The loss barely moves and {max(saturated):.0%} of a layer's"
                            f" {s.activation} units are saturated (stuck near their limits, so their gradients"
                            " vanish): use ReLU or leaky ReLU, or a smaller initialisation.",
                            FIX_LEAKY_RELU, (FIX_LEAKY_RELU,)))
        else:
            out.append(Hint("flat", f"The loss barely moves (it fell less than {FLAT_DROP:.0%}): the learning rate"
                            " is probably too low.", FIX_RAISE_LR, (FIX_RAISE_LR,)))
    return out
