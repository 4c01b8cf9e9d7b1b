"""The optimizer race: several optimizers train the same network from the same start.

Fairness, by construction (not by coincidence of seeds):

* **One seed, one generator.** ``np.random.default_rng(config.seed)`` initialises ONE network;
  every racer gets a copy of those weights (``MLP.from_weights``), so all start equal.
* **One batch order.** The same generator then draws each epoch's permutation (and, with
  ``augment=shift``, each batch's shifts) ONCE; every step's batch is formed once and fed to
  every racer in turn (step-interleaved: racer 1 takes step k, racer 2 takes step k, ...,
  then all take step k+1). So the curves grow together, live, and every racer sees exactly
  the same batches in the same order.
* The generator is consumed exactly as ``TrainingSession`` consumes it (init, then per epoch
  a permutation, then per batch the shifts), so a racer's weights are bit-identical to a
  plain ``termnist train`` run with that optimizer and lr (tests/engine/test_race.py).

Each racer has its own optimizer, lr and schedule (``make_schedule`` from the config);
momentum and weight decay come from the config. A racer whose loss diverges (NaN/inf, or
above max(20 x its first loss, 50), the training session's rule) drops out of the race; the
others go on. ``Race.stop()`` (any thread) ends the race after the current step.

``Race.run()`` yields the frozen events below; it never prints. Pure NumPy; one BLAS thread
(threadpoolctl) while it runs.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.blas import blas_limits
from engine.augment import random_shift
from engine.config import TrainConfig, check_fits
from engine.datasets import Dataset, split_train_val
from engine.errors import ConfigError, TermnistError
from engine.mlp import MLP
from engine.optim import OPTIMIZER_NAMES, OPTIMIZERS, Optimizer, make_optimizer, make_schedule
from engine.training import DIVERGED_FACTOR, DIVERGED_FLOOR, evaluate_model

#: The race's default field, in the order the charts list them.
DEFAULT_OPTIMIZERS: tuple[str, ...] = OPTIMIZER_NAMES


def default_lr(name: str) -> float:
    """The lr a racer gets unless told otherwise: the registry's ``race_lr`` (0.1 for sgd,
    0.05 for momentum/nesterov/adagrad, 0.001 for rmsprop/adam)."""
    return OPTIMIZERS[name].race_lr


def parse_optimizers(text: str) -> tuple[str, ...]:
    """'sgd,adam' -> ('sgd', 'adam'). ConfigError('optimizers', ...) for an unknown or repeated
    name, or an empty list."""
    names = tuple(n.strip().lower() for n in text.split(","))
    if not text.strip() or any(not n for n in names):
        raise ConfigError("optimizers", f"expected names separated by commas (e.g. sgd,adam), got {text!r}")
    for n in names:
        if n not in OPTIMIZERS:
            raise ConfigError("optimizers", f"unknown optimizer {n!r}; choose from {', '.join(OPTIMIZER_NAMES)}")
    seen = [n for i, n in enumerate(names) if n in names[:i]]
    if seen:
        raise ConfigError("optimizers", f"{seen[0]} is listed twice")
    return names


def parse_lrs(text: str, optimizers: Sequence[str]) -> dict[str, float]:
    """'adam=0.001,sgd=0.1' -> {'adam': 0.001, 'sgd': 0.1}; a bare number ('0.01') applies to
    every racer. Names must be among ``optimizers``. ConfigError('lr', ...) on bad input."""
    out: dict[str, float] = {}
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ConfigError("lr", f"expected NAME=LR pairs separated by commas (e.g. adam=0.001,sgd=0.1), got {text!r}")
    for part in parts:
        name, eq, value = part.partition("=")
        if not eq:
            if len(parts) != 1:
                raise ConfigError("lr", f"{part!r}: write NAME=LR (a bare number sets every optimizer's lr)")
            return {n: _positive_lr(part) for n in optimizers}
        name = name.strip().lower()
        if name not in optimizers:
            raise ConfigError("lr", f"{name!r} is not in the race ({', '.join(optimizers)})")
        if name in out:
            raise ConfigError("lr", f"{name} is given twice")
        out[name] = _positive_lr(value.strip())
    return out


def _positive_lr(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError("lr", f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0 or value > 1e6:
        raise ConfigError("lr", f"{text} must be a positive number (at most 1e6)")
    return value


# ---- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaceEvent:
    """Base class of the race's events."""


@dataclass(frozen=True)
class RaceStarted(RaceEvent):
    optimizers: tuple[str, ...]
    lrs: tuple[float, ...]          # per optimizer, same order
    epochs: int
    steps_per_epoch: int
    n_train: int
    n_val: int
    seed: int                       # the one seed of the shared init and batch order
    config: dict                    # the base TrainConfig.to_dict() (its optimizer/lr unused)
    dataset: str


@dataclass(frozen=True)
class RaceSteps(RaceEvent):
    """One racer's step losses since its last RaceSteps."""

    optimizer: str
    epoch: int                      # 1-based
    step: int                       # 1-based within the epoch
    global_step: int
    loss: float                     # mean of ``points``' losses
    points: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class RaceEpoch(RaceEvent):
    optimizer: str
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float | None          # None when val_size == 0
    val_acc: float | None
    seconds: float                  # this racer's training time in the epoch


@dataclass(frozen=True)
class RaceDiverged(RaceEvent):
    optimizer: str
    epoch: int
    step: int
    loss: float
    message: str


@dataclass(frozen=True)
class RaceResult:
    rank: int                       # 1 = best
    optimizer: str
    lr: float
    epochs_done: int
    train_loss: float | None
    train_acc: float | None
    val_loss: float | None
    val_acc: float | None
    test_loss: float | None         # None for a racer that diverged
    test_acc: float | None
    diverged: bool
    seconds: float                  # its training time

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class RaceFinished(RaceEvent):
    results: tuple[RaceResult, ...]  # ranked
    seconds: float
    reason: str                      # "completed" | "stopped" | "diverged" (every racer did)
    batch_order: str                 # digest of the batch index sequence every racer saw


@dataclass(frozen=True)
class RaceFailed(RaceEvent):
    message: str


# ---- the race ----------------------------------------------------------------------------------


class Racer:
    """One optimizer's network, optimizer and running figures."""

    def __init__(self, name: str, lr: float, model: MLP, optimizer: Optimizer, schedule: Any) -> None:
        self.name = name
        self.lr = lr
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.global_step = 0
        self.first_loss: float | None = None
        self.last_loss = math.nan
        self.diverged = False
        self.history: list[dict[str, Any]] = []
        self.window: list[tuple[int, float]] = []
        self.seconds = 0.0
        self._digest = hashlib.blake2b(digest_size=8)
        self.kept_order: list[np.ndarray] | None = None
        self.reset_tally()

    def reset_tally(self) -> None:
        self.sum_loss = 0.0
        self.sum_correct = 0
        self.seen = 0
        self.epoch_seconds = 0.0

    @property
    def order_digest(self) -> str:
        """Hex digest of every batch's row indices this racer trained on, in order."""
        return self._digest.hexdigest()

    def train_step(self, xb: np.ndarray, yb: np.ndarray, idx: np.ndarray) -> float | None:
        """One optimizer step on the batch; returns the loss, or None when it diverged."""
        t0 = time.perf_counter()
        loss, correct = self.model.loss_and_grads(xb, yb)
        self.last_loss = float(loss)
        if self.first_loss is None:
            self.first_loss = loss
        if not math.isfinite(loss) or loss > max(DIVERGED_FACTOR * self.first_loss, DIVERGED_FLOOR):
            self.diverged = True
            return None
        self.optimizer.step(self.model.grads, lr=self.schedule(self.global_step))
        self.global_step += 1
        self._digest.update(np.ascontiguousarray(idx, dtype=np.int64).tobytes())
        if self.kept_order is not None:
            self.kept_order.append(idx.copy())
        m = len(yb)
        self.sum_loss += loss * m
        self.sum_correct += correct
        self.seen += m
        self.window.append((self.global_step, loss))
        self.epoch_seconds += time.perf_counter() - t0
        return loss


class Race:
    """Race ``optimizers`` on ``config``'s network and ``dataset``; see the module docstring.

    ``lrs`` maps optimizer -> lr (missing ones: :func:`default_lr`). ``keep_order`` keeps every
    racer's batch index arrays in ``racer.kept_order`` (tests).
    """

    EVAL_CHUNK = 2000

    def __init__(
        self,
        config: TrainConfig,
        dataset: Dataset,
        optimizers: Sequence[str] = DEFAULT_OPTIMIZERS,
        lrs: Mapping[str, float] | None = None,
        *,
        progress_every: int = 20,
        blas_threads: int | None = 1,
        keep_order: bool = False,
    ) -> None:
        optimizers = parse_optimizers(",".join(optimizers)) if optimizers else ()
        if not optimizers:
            raise ConfigError("optimizers", "the race needs at least one optimizer")
        lrs = dict(lrs or {})
        for name in lrs:
            if name not in optimizers:
                raise ConfigError("lr", f"{name!r} is not in the race ({', '.join(optimizers)})")
        self.config = config
        self.dataset = dataset
        self.progress_every = max(1, int(progress_every))
        self.blas_threads = blas_threads
        # the memory rule for the most demanding racer (adam keeps two state arrays)
        worst = max(optimizers, key=lambda n: OPTIMIZERS[n].state_slots)
        check_fits(config.replace(optimizer=worst), len(dataset.y_train), dataset.n_features,
                   dataset.n_classes, dataset.title)
        self.x_train, self.y_train, self.x_val, self.y_val = split_train_val(
            dataset.x_train, dataset.y_train, config.val_size)
        self._x_flat = self.x_train.reshape(len(self.x_train), -1)
        n = len(self.y_train)
        self.steps_per_epoch = -(-n // config.batch_size)
        self.rng = np.random.default_rng(config.seed)          # THE generator: init, then order
        base = MLP(
            sizes=(dataset.n_features, *config.hidden, dataset.n_classes),
            activation=config.activation, loss=config.loss, init=config.init,
            init_std=config.init_std if config.init == "normal" else None,
            dtype=config.dtype, rng=self.rng,
        )
        self.initial_weights = base.get_weights()
        self.racers: list[Racer] = []
        for name in optimizers:
            lr = float(lrs.get(name, default_lr(name)))
            model = MLP.from_weights(base.architecture(), self.initial_weights)   # a copy each
            opt = make_optimizer(name, model.params, lr=lr, momentum=config.momentum,
                                 weight_decay=config.weight_decay)
            schedule = make_schedule(config.schedule, lr, total_steps=self.steps_per_epoch * config.epochs,
                                     steps_per_epoch=self.steps_per_epoch, step_epochs=config.step_epochs,
                                     gamma=config.gamma,
                                     warmup_steps=int(round(config.warmup_epochs * self.steps_per_epoch)))
            racer = Racer(name, lr, model, opt, schedule)
            if keep_order:
                racer.kept_order = []
            self.racers.append(racer)
        self._stop = threading.Event()
        self._running = False
        dim = dataset.n_features
        self._scale = np.asarray(1.0 / dataset.max_value, dtype=config.dtype)
        self._u8 = np.empty((config.batch_size, dim), dtype=self._x_flat.dtype)
        self._f = np.empty((config.batch_size, dim), dtype=config.dtype)
        shape = self.x_train.shape[1:]
        self._max_shift = config.max_shift if config.augment == "shift" and len(shape) == 2 else None

    def stop(self) -> None:
        """End the race after the current step (thread-safe)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def _batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = len(idx)
        u8, xb = self._u8[:m], self._f[:m]
        if self._max_shift is not None:
            random_shift(self.x_train[idx], self._max_shift, self.rng, out=u8.reshape(m, *self.x_train.shape[1:]))
        else:
            np.take(self._x_flat, idx, axis=0, out=u8)
        np.multiply(u8, self._scale, out=xb, casting="unsafe")
        return xb, self.y_train[idx]

    def run(self) -> Iterator[RaceEvent]:
        """Race, yielding events; ends with exactly one RaceFinished (or RaceFailed)."""
        if self._running:
            raise RuntimeError("this race is already running")
        self._running = True
        try:
            with blas_limits(self.blas_threads):
                yield from self._run()
        except TermnistError as exc:
            yield RaceFailed(message=str(exc))
        except MemoryError:
            yield RaceFailed(message="out of memory: use smaller layers or a smaller batch size")
        finally:
            self._running = False

    def _run(self) -> Iterator[RaceEvent]:
        t_run = time.perf_counter()
        cfg = self.config
        yield RaceStarted(
            optimizers=tuple(r.name for r in self.racers), lrs=tuple(r.lr for r in self.racers),
            epochs=cfg.epochs, steps_per_epoch=self.steps_per_epoch, n_train=len(self.y_train),
            n_val=len(self.y_val), seed=cfg.seed, config=cfg.to_dict(), dataset=self.dataset.title)
        bs = cfg.batch_size
        reason = "completed"
        for epoch in range(1, cfg.epochs + 1):
            if self._stop.is_set():
                reason = "stopped"
                break
            if all(r.diverged for r in self.racers):
                reason = "diverged"
                break
            order = self.rng.permutation(len(self.y_train))
            for r in self.racers:
                r.reset_tally()
            for step in range(1, self.steps_per_epoch + 1):
                if self._stop.is_set():
                    break
                idx = order[(step - 1) * bs : step * bs]
                xb, yb = self._batch(idx)
                for r in self.racers:
                    if r.diverged:
                        continue
                    loss = r.train_step(xb, yb, idx)
                    if loss is None:
                        yield RaceDiverged(r.name, epoch, step, r.last_loss,
                                           f"{r.name} (lr={r.lr:g}) diverged at epoch {epoch} step {step}:"
                                           " try a smaller learning rate")
                    elif len(r.window) >= self.progress_every:
                        yield self._steps_event(r, epoch, step)
            for r in self.racers:
                if r.window and not r.diverged:
                    yield self._steps_event(r, epoch, min(step, self.steps_per_epoch))
            if self._stop.is_set():
                reason = "stopped"
                break
            for r in self.racers:
                if r.diverged:
                    continue
                if not all(np.isfinite(p).all() for p in r.model.params.values()):
                    r.diverged = True
                    yield RaceDiverged(r.name, epoch, self.steps_per_epoch, float("nan"),
                                       f"{r.name} (lr={r.lr:g}) diverged in epoch {epoch}: try a smaller learning rate")
                    continue
                yield self._epoch_end(r, epoch)
        results = self._results()
        yield RaceFinished(results=results, seconds=time.perf_counter() - t_run, reason=reason,
                           batch_order=self.racers[0].order_digest)

    def _steps_event(self, r: Racer, epoch: int, step: int) -> RaceSteps:
        points = tuple((s, float(v)) for s, v in r.window)
        r.window = []
        return RaceSteps(optimizer=r.name, epoch=epoch, step=step, global_step=r.global_step,
                         loss=float(np.mean([v for _, v in points])), points=points)

    def _epoch_end(self, r: Racer, epoch: int) -> RaceEpoch:
        val_loss = val_acc = None
        if len(self.y_val):
            val_loss, val_acc, _ = evaluate_model(r.model, self.x_val, self.y_val, self.dataset.max_value,
                                                  chunk=self.EVAL_CHUNK)
        row: dict[str, Any] = {"epoch": epoch, "train_loss": r.sum_loss / max(r.seen, 1),
               "train_acc": r.sum_correct / max(r.seen, 1), "val_loss": val_loss, "val_acc": val_acc,
               "seconds": r.epoch_seconds}
        r.history.append(row)
        r.seconds += r.epoch_seconds
        return RaceEpoch(optimizer=r.name, epochs=self.config.epochs, **row)

    def _results(self) -> tuple[RaceResult, ...]:
        rows: list[dict[str, Any]] = []
        for r in self.racers:
            last = r.history[-1] if r.history else {}
            test_loss = test_acc = None
            if not r.diverged and r.history:
                test_loss, test_acc, _ = evaluate_model(r.model, self.dataset.x_test, self.dataset.y_test,
                                                        self.dataset.max_value, chunk=self.EVAL_CHUNK)
            rows.append(dict(optimizer=r.name, lr=r.lr, epochs_done=len(r.history),
                             train_loss=last.get("train_loss"), train_acc=last.get("train_acc"),
                             val_loss=last.get("val_loss"), val_acc=last.get("val_acc"),
                             test_loss=test_loss, test_acc=test_acc, diverged=r.diverged, seconds=r.seconds))
        rows.sort(key=rank_key)
        return tuple(RaceResult(rank=i + 1, **row) for i, row in enumerate(rows))


def rank_key(row: Mapping[str, Any]) -> tuple:
    """The ranking: racers that diverged last; then the highest validation accuracy (the
    training accuracy when there is no validation set); ties by the lower loss."""
    acc = row.get("val_acc") if row.get("val_acc") is not None else row.get("train_acc")
    loss = row.get("val_loss") if row.get("val_loss") is not None else row.get("train_loss")
    return (bool(row.get("diverged")), -(acc if acc is not None else -1.0),
            loss if loss is not None and math.isfinite(loss) else math.inf)
