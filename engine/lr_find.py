"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates"; fastai's ``lr_find``).

A short run from the config's initial weights (its seed, network, optimizer, batch size)
whose lr grows exponentially, step by step, from ``start_lr`` (1e-6) to ``end_lr`` (10):
``lr_i = start_lr * (end_lr / start_lr) ** (i / (steps - 1))``. Each step's training loss
is recorded and smoothed as fastai does (exponential moving average, beta 0.98, debiased by
``1 - beta ** (i + 1)``). The run stops early when the smoothed loss exceeds 4 x the best
smoothed loss so far, or is not finite (the loss exploded); else at ``end_lr``. The test
drives the lr itself: the config's schedule and warm-up are not used, nor is augmentation.

**The suggestion: the lr of the smoothed loss's minimum, divided by 10** (fastai's
``lr_min``). The steepest descent of the smoothed loss (fastai's ``lr_steep``, first 10%
of points skipped) is reported too, but not suggested: it has no safety margin. Measured on
the bundled sample (784-128-64-10, batch 64, seeds 0-5): the two rules vary about as much
between seeds (a factor 1.6-6 each), but the steepest point can sit at the minimum itself
(plain SGD, seed 4: both 0.87, where the loss stops falling and soon explodes), while
minimum / 10 is by construction a decade below the point where the loss stops improving.

Pure NumPy; one BLAS thread (threadpoolctl) while it runs.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.blas import blas_limits
from engine.config import TrainConfig, check_fits
from engine.datasets import Dataset, split_train_val
from engine.errors import ConfigError
from engine.mlp import MLP
from engine.optim import make_optimizer

START_LR = 1e-6
END_LR = 10.0
STEPS = 100
BETA = 0.98                 # smoothing of the loss (fastai)
EXPLODE_FACTOR = 4.0        # stop when smoothed loss > 4 x the best so far (fastai)
MIN_POINTS = 10             # fewer points than this before the explosion: no suggestion
SKIP_START = 5              # the steepest-descent figure ignores the first points


@dataclass(frozen=True)
class LRPoint:
    """One step of the range test (the finder yields these as it goes)."""

    step: int                # 0-based
    lr: float
    loss: float              # the batch's raw loss
    smoothed: float


@dataclass(frozen=True)
class LRFindResult:
    lrs: tuple[float, ...]
    losses: tuple[float, ...]        # smoothed (what is plotted and what the rule reads)
    raw_losses: tuple[float, ...]
    suggestion: float | None         # min_lr / 10; None when too few points
    min_lr: float | None             # lr at the smoothed loss's minimum
    steepest_lr: float | None        # lr of the steepest descent of the smoothed loss
    stopped: str                     # "exploded" | "end" | "stopped"
    optimizer: str
    message: str                     # one line for a user

    def to_json(self) -> dict[str, Any]:
        return {
            "lrs": list(self.lrs), "losses": list(self.losses), "raw_losses": list(self.raw_losses),
            "suggestion": self.suggestion, "min_lr": self.min_lr, "steepest_lr": self.steepest_lr,
            "stopped": self.stopped, "optimizer": self.optimizer, "message": self.message,
        }


@dataclass
class LRFinder:
    """Run the range test for ``config`` on ``dataset``; ``run()`` yields LRPoint, then
    ``result`` holds the LRFindResult. ``stop()`` (any thread) ends it after the current step."""

    config: TrainConfig
    dataset: Dataset
    start_lr: float = START_LR
    end_lr: float = END_LR
    steps: int = STEPS
    blas_threads: int | None = 1
    result: LRFindResult | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        for name in ("start_lr", "end_lr"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(name, f"must be a positive number, got {v!r}")
        if self.end_lr <= self.start_lr:
            raise ConfigError("end_lr", f"{self.end_lr:g} must be above start_lr ({self.start_lr:g})")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 2 <= self.steps <= 100_000:
            raise ConfigError("steps", f"must be an integer in 2..100000, got {self.steps!r}")
        ds = self.dataset
        check_fits(self.config, len(ds.y_train), ds.n_features, ds.n_classes, ds.title)

    def stop(self) -> None:
        self._stop.set()

    def lr_at(self, i: int) -> float:
        return float(self.start_lr * (self.end_lr / self.start_lr) ** (i / (self.steps - 1)))

    def run(self) -> Iterator[LRPoint]:
        with blas_limits(self.blas_threads):
            yield from self._run()

    def _run(self) -> Iterator[LRPoint]:
        cfg, ds = self.config, self.dataset
        x, y, _, _ = split_train_val(ds.x_train, ds.y_train, cfg.val_size)
        x_flat = x.reshape(len(x), -1)
        rng = np.random.default_rng(cfg.seed)          # the same start as a run of this config
        model = MLP(sizes=(ds.n_features, *cfg.hidden, ds.n_classes), activation=cfg.activation,
                    loss=cfg.loss, init=cfg.init, init_std=cfg.init_std if cfg.init == "normal" else None,
                    dtype=cfg.dtype, rng=rng)
        opt = make_optimizer(cfg.optimizer, model.params, lr=self.start_lr, momentum=cfg.momentum,
                             weight_decay=cfg.weight_decay)
        scale = np.asarray(1.0 / ds.max_value, dtype=cfg.dtype)
        bs = min(cfg.batch_size, len(y))
        order = rng.permutation(len(y))
        pos = 0
        lrs: list[float] = []
        raw: list[float] = []
        smooth: list[float] = []
        avg, best = 0.0, math.inf
        stopped = "end"
        for i in range(self.steps):
            if self._stop.is_set():
                stopped = "stopped"
                break
            if pos + bs > len(order):                    # next pass over the data
                order, pos = rng.permutation(len(y)), 0
            idx = order[pos : pos + bs]
            pos += bs
            xb = np.multiply(x_flat[idx], scale, dtype=cfg.dtype)
            lr = self.lr_at(i)
            loss, _ = model.loss_and_grads(xb, y[idx])
            if not math.isfinite(loss):
                stopped = "exploded"
                break
            avg = BETA * avg + (1.0 - BETA) * loss
            sm = avg / (1.0 - BETA ** (i + 1))
            lrs.append(lr)
            raw.append(float(loss))
            smooth.append(float(sm))
            yield LRPoint(step=i, lr=lr, loss=float(loss), smoothed=float(sm))
            if sm > EXPLODE_FACTOR * best:
                stopped = "exploded"
                break
            best = min(best, sm)
            opt.step(model.grads, lr=lr)
        self.result = summarise(lrs, smooth, raw, stopped, cfg.optimizer)


def summarise(lrs: list[float], smooth: list[float], raw: list[float], stopped: str,
              optimizer: str) -> LRFindResult:
    """The suggestion rule (module docstring) applied to a finished range test."""
    # points after the minimum that rose past 4x are the explosion: the rule reads the rest
    n = len(smooth)
    suggestion = min_lr = steepest = None
    if n >= MIN_POINTS:
        i_min = int(np.argmin(smooth))
        min_lr = lrs[i_min]
        suggestion = min_lr / 10.0
        skip = max(SKIP_START, n // 10)        # the debiased average's first steps are noise
        if i_min - skip >= 2:
            part = slice(skip, i_min + 1)
            slope = np.gradient(np.asarray(smooth[part]), np.log10(np.asarray(lrs[part])))
            steepest = lrs[skip + int(np.argmin(slope))]
        message = (f"suggested lr {suggestion:.3g} (the smoothed loss is lowest at lr {min_lr:.3g};"
                   f" one tenth of that)")
    else:
        message = (f"no suggestion: the loss exploded after {n} step(s); lower --start-lr or check the"
                   " data")
    return LRFindResult(lrs=tuple(lrs), losses=tuple(smooth), raw_losses=tuple(raw), suggestion=suggestion,
                        min_lr=min_lr, steepest_lr=steepest, stopped=stopped, optimizer=optimizer,
                        message=message)


def lr_find(config: TrainConfig, dataset: Dataset, **kwargs: Any) -> LRFindResult:
    """Run the whole range test; kwargs as :class:`LRFinder` (start_lr, end_lr, steps)."""
    finder = LRFinder(config, dataset, **kwargs)
    for _ in finder.run():
        pass
    assert finder.result is not None
    return finder.result


__all__ = ["LRFindResult", "LRFinder", "LRPoint", "lr_find", "summarise"]
