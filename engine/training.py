"""The training session: the one object a UI drives (its settings: :mod:`engine.config`).

``TrainingSession.run()`` is a generator of :mod:`engine.events`; a caller iterates it in
a worker thread. ``pause()``, ``resume()``, ``stop()``, ``predict_proba()`` and
``checkpoint()`` are safe to call from any other thread. The session never prints.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from engine import events as ev
from engine.augment import random_shift
from engine.checkpoint import Checkpoint
from engine.config import (  # noqa: F401 - CHOICES, parse_layers: re-exported (their old home)
    CHOICES,
    MAX_MODEL_BYTES,
    TrainConfig,
    check_fits,
    estimate_memory_bytes,
    parse_layers,
)
from engine.datasets import Dataset, split_train_val, to_features
from engine.errors import CheckpointError, ConfigError, TermnistError
from engine.metrics import per_class_accuracy
from engine.mlp import MLP
from engine.optim import make_optimizer, make_schedule

# A loss above max(FACTOR x the run's first loss, FLOOR) counts as divergence, like NaN/inf:
# softmax cross-entropy stays finite while weights explode (ln(10) = 2.3 at the start; a
# mean of 50 means the true class gets probability e^-50).
DIVERGED_FACTOR = 20.0
DIVERGED_FLOOR = 50.0


class TrainingSession:
    """Trains one model on one dataset with one config; yields events from ``run()``.

    Thread model: ``run()`` executes in the caller's (worker) thread. Other threads may
    call ``pause/resume/stop`` (flags) and ``predict_proba/checkpoint`` (take the step lock,
    so they see weights between two optimizer steps, never mid-update).
    """

    EVAL_CHUNK = 2000

    def __init__(
        self,
        config: TrainConfig,
        dataset: Dataset,
        *,
        progress_every: int = 20,
        resume: Checkpoint | None = None,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.progress_every = max(1, int(progress_every))
        check_fits(config, len(dataset.y_train), dataset.n_features, dataset.n_classes, dataset.title)
        self.x_train, self.y_train, self.x_val, self.y_val = split_train_val(
            dataset.x_train, dataset.y_train, config.val_size
        )
        self._x_train_flat = self.x_train.reshape(len(self.x_train), -1)
        self._rng = np.random.default_rng(config.seed)
        self.model = MLP(
            sizes=(dataset.n_features, *config.hidden, dataset.n_classes),
            activation=config.activation,
            loss=config.loss,
            init=config.init,
            init_std=config.init_std if config.init == "normal" else None,
            dtype=config.dtype,
            rng=self._rng,
        )
        self.optimizer = make_optimizer(
            config.optimizer,
            self.model.params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        n = len(self.y_train)
        self.steps_per_epoch = -(-n // config.batch_size)
        try:
            self.schedule = make_schedule(
                config.schedule,
                config.lr,
                total_steps=self.steps_per_epoch * config.epochs,
                steps_per_epoch=self.steps_per_epoch,
                step_epochs=config.step_epochs,
                gamma=config.gamma,
                warmup_steps=int(round(config.warmup_epochs * self.steps_per_epoch)),
            )
        except ConfigError as exc:      # name the setting the user typed, not the step count
            if exc.field != "warmup_steps":
                raise
            raise ConfigError("warmup_epochs", f"{config.warmup_epochs:g} epochs of warm-up leave no"
                                               " steps for the cosine schedule") from None
        self.epochs_done = 0
        self.global_step = 0
        self.steps_into_epoch = 0      # optimizer steps taken in epoch epochs_done + 1 so far
        self.history: list[dict[str, Any]] = []
        self._last_good: dict[str, Any] | None = None
        self._first_loss: float | None = None      # the run's first batch loss (divergence test)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._running = False
        self.last_test: tuple[float, float] | None = None
        if resume is not None:
            self._restore(resume)

    # -- control, from any thread ------------------------------------------------------
    def pause(self) -> None:
        self._unpaused.clear()

    def resume(self) -> None:
        self._unpaused.set()

    def stop(self) -> None:
        self._stop.set()
        self._unpaused.set()

    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # -- queries, from any thread ------------------------------------------------------
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (n, C) for raw images ``x`` (uint8, (n, H, W) or (n, D))."""
        with self._lock:
            return predict_images(self.model, x, self.dataset.max_value, self.config.dtype,
                                  chunk=self.EVAL_CHUNK)

    def predictor(self) -> Callable[[np.ndarray], np.ndarray]:
        """``predict_proba`` frozen at the current weights (a copy): for a thread that
        predicts while this session trains on."""
        with self._lock:
            model = MLP.from_weights(self.model.architecture(), self.model.params)  # a copy
        max_value, dtype = self.dataset.max_value, self.config.dtype
        return lambda x: predict_images(model, x, max_value, dtype, chunk=self.EVAL_CHUNK)

    def checkpoint(self, last_completed_epoch: bool = False) -> Checkpoint:
        """A consistent copy of weights, optimizer state and metadata (between two steps).

        With ``last_completed_epoch`` the copy is of the state at the end of the last
        completed epoch (what a resume continues from exactly), not the current weights.
        """
        with self._lock:
            meta = self._metadata()
            good = self._last_good if last_completed_epoch else None
            if good is not None:
                weights = good["weights"]
                opt_state = {k: v.copy() for k, v in good["optimizer"].items()}
                if good["global_step"] != self.global_step:     # tested weights are not these
                    meta.pop("test_loss", None)
                    meta.pop("test_acc", None)
                meta.update(epochs_done=good["epochs_done"], global_step=good["global_step"],
                            steps_into_epoch=0, mid_epoch=False,
                            rng_state=good["rng_state"], history=list(self.history[: good["epochs_done"]]))
            else:
                weights = self.model.params
                opt_state = self.optimizer.state_dict()          # copies already
            model = MLP.from_weights(self.model.architecture(), weights)   # copies the weights
        return Checkpoint(model=model, config=self.config, metadata=meta, optimizer_state=opt_state)

    def _metadata(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        meta: dict[str, Any] = {
            "dataset": self.dataset.name,
            "dataset_title": self.dataset.title,
            "dataset_source": self.dataset.source,
            "is_sample": bool(self.dataset.is_sample),
            "class_names": list(self.dataset.class_names),
            "epochs_done": self.epochs_done,
            "global_step": self.global_step,
            # Weights saved mid-epoch (a stop, a save while training) are steps_into_epoch
            # steps into epoch epochs_done + 1; such a checkpoint cannot be resumed exactly.
            "steps_into_epoch": self.steps_into_epoch,
            "mid_epoch": self.steps_into_epoch > 0,
            "val_acc": last.get("val_acc"),
            "train_acc": last.get("train_acc"),
            "history": list(self.history),
            "rng_state": _jsonable_rng_state(self._rng),
        }
        if self.last_test is not None:
            meta["test_loss"], meta["test_acc"] = self.last_test
        return meta

    def _restore(self, ckpt: Checkpoint) -> None:
        if ckpt.model.sizes != self.model.sizes:
            raise ConfigError("hidden", f"checkpoint has layers {ckpt.model.sizes}, config has {self.model.sizes}")
        self.model.set_weights(ckpt.model.get_weights())
        if ckpt.optimizer_state:
            self.optimizer.load_state_dict(ckpt.optimizer_state)
        meta = ckpt.metadata
        if meta.get("mid_epoch"):
            raise CheckpointError(
                "this checkpoint was saved mid-epoch (at "
                + ev.describe_position(int(meta.get("epochs_done") or 0), int(meta.get("steps_into_epoch") or 0))
                + "): a run resumes only"
                " from the end of an epoch; start a new run with its settings, or resume from a"
                " checkpoint saved at an epoch end")
        self.epochs_done = int(meta.get("epochs_done", 0))
        self.global_step = int(meta.get("global_step", self.epochs_done * self.steps_per_epoch))
        self.history = list(meta.get("history", []))
        state = meta.get("rng_state")
        if state:
            self._rng.bit_generator.state = state

    # -- evaluation ----------------------------------------------------------------------
    def _evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray]:
        with self._lock:
            return evaluate_model(self.model, x, y, self.dataset.max_value, chunk=self.EVAL_CHUNK)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> Iterator[ev.Event]:
        """Train, yielding events. Ends with exactly one Finished (or Failed) event."""
        if self._running:
            raise RuntimeError("this session is already running")
        self._running = True
        try:
            yield from self._run()
        except TermnistError as exc:
            yield ev.Failed(message=str(exc))
        except MemoryError:
            yield ev.Failed(message="out of memory: use smaller layers or a smaller batch size")
        finally:
            self._running = False

    def _run(self) -> Generator[ev.Event, None, None]:
        t_run = time.perf_counter()
        yield ev.RunStarted(
            config=self.config.to_dict(),
            n_train=len(self.y_train),
            n_val=len(self.y_val),
            n_test=len(self.dataset.y_test),
            steps_per_epoch=self.steps_per_epoch,
            dataset=_describe_dataset(self.dataset),
            start_epoch=self.epochs_done,
        )
        self._last_good = self._snapshot_state()
        self._first_loss = None
        batches = _Batches(self)
        end = EpochEnd.COMPLETED
        while self.epochs_done < self.config.epochs:
            end = yield from self._epoch(self.epochs_done + 1, batches)
            if end is not EpochEnd.COMPLETED:
                break
        test_loss, test_acc, preds = self._evaluate(self.dataset.x_test, self.dataset.y_test)
        self.last_test = (test_loss, test_acc)
        per_class = per_class_accuracy(self.dataset.y_test, preds, self.dataset.n_classes)
        yield ev.Finished(
            epochs_done=self.epochs_done,
            test_loss=test_loss,
            test_acc=test_acc,
            seconds=time.perf_counter() - t_run,
            reason=end.value,
            per_class_acc=tuple(float(a) for a in per_class),
            steps_into_epoch=self.steps_into_epoch,
        )

    def _epoch(self, epoch: int, batches: _Batches) -> Generator[ev.Event, None, EpochEnd]:
        """Train epoch ``epoch`` (1-based), yielding its events; returns how it ended.

        Completed: the epoch's EpochEnded was yielded and the state is saved as the last good
        one. Stopped: a Stopped was yielded. Diverged: the last good state is back and a
        Diverged was yielded. The step lock is never held across a ``yield``.
        """
        if self._stop.is_set():  # before drawing the epoch's order: a resume stays exact
            yield self._stopped()
            return EpochEnd.STOPPED
        tally = _Tally(order=self._rng.permutation(len(self.y_train)), t0=time.perf_counter())
        diverged = yield from self._steps(epoch, batches, tally)
        if diverged is not None:
            yield diverged
            return EpochEnd.DIVERGED
        tally.train_time += time.perf_counter() - tally.t0
        if tally.window:
            yield self._progress(epoch, tally.step, tally.lr, tally.window)
        if self._stop.is_set():
            yield self._stopped()
            return EpochEnd.STOPPED
        if not all(np.isfinite(p).all() for p in self.model.params.values()):
            yield self._diverge(epoch, self.steps_per_epoch, float("nan"))
            return EpochEnd.DIVERGED
        val_loss = val_acc = None
        if len(self.y_val):
            val_loss, val_acc, _ = self._evaluate(self.x_val, self.y_val)
        if val_loss is not None and not math.isfinite(val_loss):
            yield self._diverge(epoch, self.steps_per_epoch, val_loss)
            return EpochEnd.DIVERGED
        with self._lock:                 # a checkpoint sees both or neither
            self.epochs_done = epoch
            self.steps_into_epoch = 0
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": tally.sum_loss / max(tally.seen, 1),
            "train_acc": tally.sum_correct / max(tally.seen, 1),
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": tally.train_time,
            "samples_per_s": tally.seen / tally.train_time if tally.train_time > 0 else float("inf"),
            "lr": tally.lr,
            "global_step": self.global_step,
        }
        self.history.append(row)
        self._last_good = self._snapshot_state()
        yield ev.EpochEnded(epochs=self.config.epochs, **row)
        return EpochEnd.COMPLETED

    def _steps(self, epoch: int, batches: _Batches, tally: _Tally
               ) -> Generator[ev.Event, None, ev.Diverged | None]:
        """The optimizer steps of one epoch (until its end or a stop request), yielding
        progress and pause events; returns the Diverged event (not yet yielded, the last
        good state already back) when a loss diverged."""
        bs = self.config.batch_size
        for step in range(1, self.steps_per_epoch + 1):
            tally.step = step
            if self._stop.is_set():
                break
            if not self._unpaused.is_set():
                tally.train_time += time.perf_counter() - tally.t0
                yield ev.Paused(epoch=epoch, step=step - 1)
                while not self._unpaused.wait(0.1):
                    pass
                tally.t0 = time.perf_counter()
                if self._stop.is_set():
                    break
                yield ev.Resumed(epoch=epoch, step=step - 1)
            xb, yb = batches.load(tally.order[(step - 1) * bs : step * bs])
            lr = tally.lr = self.schedule(self.global_step)
            with self._lock:
                loss, correct = self.model.loss_and_grads(xb, yb)
                if self._first_loss is None:
                    self._first_loss = loss
                if not math.isfinite(loss) or loss > max(DIVERGED_FACTOR * self._first_loss, DIVERGED_FLOOR):
                    return self._diverge(epoch, step, loss)
                self.optimizer.step(self.model.grads, lr=lr)
                self.global_step += 1
                self.steps_into_epoch = step
            m = len(yb)
            tally.sum_loss += loss * m
            tally.sum_correct += correct
            tally.seen += m
            tally.window.append((self.global_step, loss))
            if len(tally.window) >= self.progress_every:
                yield self._progress(epoch, step, lr, tally.window)
                tally.window = []
        return None

    def _stopped(self) -> ev.Stopped:
        return ev.Stopped(epoch=self.epochs_done, step=self.global_step, steps_into_epoch=self.steps_into_epoch)

    def _progress(self, epoch: int, step: int, lr: float, window: list[tuple[int, float]]) -> ev.BatchProgress:
        return ev.BatchProgress(
            epoch=epoch,
            step=step,
            steps_per_epoch=self.steps_per_epoch,
            global_step=self.global_step,
            loss=float(np.mean([l for _, l in window])),
            lr=float(lr),
            points=tuple((s, float(l)) for s, l in window),
        )

    def _snapshot_state(self) -> dict[str, Any]:
        """Everything needed to return to (or resume exactly from) the current epoch boundary."""
        with self._lock:
            return {
                "weights": self.model.get_weights(),
                "optimizer": self.optimizer.state_dict(),          # copies already
                "global_step": self.global_step,
                "epochs_done": self.epochs_done,
                "rng_state": _jsonable_rng_state(self._rng),
            }

    def _diverge(self, epoch: int, step: int, loss: float) -> ev.Diverged:
        """Go back to the last good state (the last epoch end); the event that says so."""
        assert self._last_good is not None
        good = self._last_good
        with self._lock:
            self.model.set_weights(good["weights"])
            self.optimizer.load_state_dict(good["optimizer"])
            self.global_step = good["global_step"]
            self.steps_into_epoch = 0
        msg = (
            f"diverged at epoch {epoch} step {step} (loss {loss:.4g}): try a smaller learning rate"
            f" (lr={self.config.lr:g}); kept the weights of epoch {self.epochs_done}"
        )
        return ev.Diverged(epoch=epoch, step=step, loss=float(loss), message=msg, restored_epoch=self.epochs_done)


class EpochEnd(Enum):
    """How an epoch ended (the run's Finished.reason is the last one's value)."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    DIVERGED = "diverged"


@dataclass
class _Tally:
    """One epoch's running totals (TrainingSession._epoch and _steps)."""

    order: np.ndarray                # the epoch's permutation of the training rows
    t0: float                        # when the current stretch of training began
    train_time: float = 0.0          # seconds trained (pauses excluded)
    step: int = 0                    # the step (1-based) being done, or the last one
    lr: float = 0.0                  # the last step's learning rate
    sum_loss: float = 0.0
    sum_correct: int = 0
    seen: int = 0
    window: list[tuple[int, float]] = field(default_factory=list)   # since the last BatchProgress


class _Batches:
    """Reused buffers that turn a batch's row indices into scaled features and labels."""

    def __init__(self, session: TrainingSession) -> None:
        cfg = session.config
        self._x = session.x_train
        self._x_flat = session._x_train_flat
        self._y = session.y_train
        self._rng = session._rng
        dim = session.dataset.n_features
        self._scale = np.asarray(1.0 / session.dataset.max_value, dtype=cfg.dtype)
        self._u8 = np.empty((cfg.batch_size, dim), dtype=self._x_flat.dtype)
        self._f = np.empty((cfg.batch_size, dim), dtype=cfg.dtype)
        self._img_shape = self._x.shape[1:]
        self._max_shift = cfg.max_shift if cfg.augment == "shift" and len(self._img_shape) == 2 else None

    def load(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = len(idx)
        u8 = self._u8[:m]
        xb = self._f[:m]
        if self._max_shift is not None:
            random_shift(self._x[idx], self._max_shift, self._rng, out=u8.reshape(m, *self._img_shape))
        else:
            np.take(self._x_flat, idx, axis=0, out=u8)
        np.multiply(u8, self._scale, out=xb, casting="unsafe")
        return xb, self._y[idx]


def predict_images(model: MLP, x: np.ndarray, max_value: int, dtype: Any = "float32",
                   chunk: int = 2000) -> np.ndarray:
    """Class probabilities (n, C) of ``model`` for raw images ``x`` (uint8, (n, H, W) or
    (n, D)), scaled by ``max_value`` a chunk at a time (bounded memory)."""
    out = [model.predict_proba(to_features(x[start : start + chunk], max_value, dtype=np.dtype(dtype)))
           for start in range(0, len(x), chunk)]
    if not out:
        return np.zeros((0, model.sizes[-1]), dtype=model.dtype)
    return np.concatenate(out)


def evaluate_model(
    model: MLP, x: np.ndarray, y: np.ndarray, max_value: float, chunk: int = 2000
) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and predicted labels of ``model`` on raw images ``x`` (uint8).

    Works in chunks of ``chunk`` images so memory stays bounded on any dataset size.
    """
    n = len(y)
    preds = np.empty(n, dtype=np.int64)
    if n == 0:
        return float("nan"), float("nan"), preds
    x_flat = x.reshape(n, -1)
    buf = np.empty((min(chunk, n), x_flat.shape[1]), dtype=model.dtype)
    total_loss = 0.0
    for start in range(0, n, chunk):
        yb = y[start : start + chunk]
        feats = to_features(x_flat[start : start + chunk], max_value, out=buf[: len(yb)])
        loss, _ = model.evaluate(feats, yb, batch_size=chunk, predictions=preds[start : start + len(yb)])
        total_loss += loss * len(yb)
    return total_loss / n, float(np.mean(preds == y)), preds


def _describe_dataset(ds: Dataset) -> str:
    if ds.is_sample:
        return f"{ds.title} bundled sample ({len(ds.y_train)} train / {len(ds.y_test)} test images)"
    return f"{ds.title} ({len(ds.y_train)} train / {len(ds.y_test)} test images, {ds.source})"


def _jsonable_rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A copy of the generator's state (PCG64: nested dict of str/int, JSON-serialisable)."""
    return copy.deepcopy(dict(rng.bit_generator.state))
