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
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from engine import events as ev
from engine.augment import random_shift
from engine.checkpoint import Checkpoint
from engine.config import (  # noqa: F401 - CHOICES, parse_layers: re-exported (their old home)
    CHOICES,
    LIVE_FIELDS,
    MAX_MODEL_BYTES,
    TrainConfig,
    check_change,
    check_fits,
    estimate_memory_bytes,
    parse_layers,
)
from engine.datasets import Dataset, split_train_val, to_features
from engine.errors import CheckpointError, ConfigError, TermnistError
from engine.metrics import per_class_accuracy
from engine.mlp import MLP
from engine.optim import SGD, make_optimizer, make_schedule

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

    Live changes: ``change(lr=..., momentum=..., weight_decay=..., batch_size=...)`` from any
    thread validates at once (ConfigError, nothing changes) and takes effect at the next step
    boundary (never mid-step), where the run yields a HyperparamsChanged per field and records
    it in ``changes`` (and its checkpoints' metadata). ``replay`` (a run's recorded changes,
    ``{"epoch", "step", "field", "new"}``) applies each at the same boundary again.

    * lr and the schedule: the new value replaces the schedule's *base*; the schedule's factor
      (warm-up ramp, step decay, cosine) at the current position still applies. Doubling lr
      during a cosine schedule doubles every later lr of it.
    * batch size: the rows of the epoch's permutation not yet trained are cut into batches of
      the new size, in the same order; later epochs use it throughout. The schedule's clock
      counts training rows, in units of the run's first batch size (``schedule_batch``), so a
      batch size change neither advances nor rewinds the schedule.
    * while paused, ``step_once()`` runs exactly one step and ``epoch_once()`` the rest of the
      current epoch (a whole epoch when paused at an epoch's start); the run stays paused.
    """

    EVAL_CHUNK = 2000

    def __init__(
        self,
        config: TrainConfig,
        dataset: Dataset,
        *,
        progress_every: int = 20,
        resume: Checkpoint | None = None,
        replay: Iterable[Mapping[str, Any]] = (),
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
        # The schedule's clock counts steps of this batch size (the run's first): see _schedule_step.
        self.schedule_batch = config.batch_size
        self.schedule = self._make_schedule(config.lr)
        self.changes: list[dict[str, Any]] = []          # live changes applied, in order
        self._change_lock = threading.Lock()
        self._pending: list[tuple[str, Any]] = []        # asked, not applied yet (next boundary)
        self._pending_config: TrainConfig | None = None  # self.config with the pending changes
        self._replay = sorted((_replay_entry(c) for c in replay), key=lambda c: (c["epoch"], c["step"]))
        self._advance_steps = 0          # steps to run while paused (step_once)
        self._advance_epoch = False      # epoch_once asked, not started yet
        self._allow_epoch: int | None = None   # the epoch epoch_once runs to its end
        self._wake = threading.Event()   # a paused run looks at its requests again now
        self._batches: _Batches | None = None
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
        with self._change_lock:
            self._advance_steps, self._advance_epoch, self._allow_epoch = 0, False, None
        self._unpaused.clear()

    def resume(self) -> None:
        with self._change_lock:
            self._advance_steps, self._advance_epoch, self._allow_epoch = 0, False, None
        self._unpaused.set()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._unpaused.set()
        self._wake.set()

    def step_once(self) -> bool:
        """Paused: run exactly one more step, then stay paused. False when not paused."""
        if not self.paused:
            return False
        with self._change_lock:
            self._advance_steps += 1
        self._wake.set()
        return True

    def epoch_once(self) -> bool:
        """Paused: run to the end of the current epoch (a whole epoch when paused at an
        epoch's start), evaluate it, then stay paused. False when not paused."""
        if not self.paused:
            return False
        with self._change_lock:
            self._advance_epoch = True
        self._wake.set()
        return True

    def change(self, **values: Any) -> TrainConfig:
        """Change live settings (LIVE_FIELDS) from the next step boundary on. Validated now
        against the settings in effect after earlier pending changes (TrainConfig's rules,
        check_fits for the batch's memory): ConfigError(field, reason), and nothing changes.
        Returns those settings with this change (``live_config``)."""
        with self._change_lock:
            base = self._pending_config or self.config
            new = check_change(base, values, len(self.dataset.y_train), self.dataset.n_features,
                               self.dataset.n_classes)
            self._pending.extend((name, getattr(new, name)) for name in values)
            self._pending_config = new
        self._wake.set()
        return new

    @property
    def live_config(self) -> TrainConfig:
        """The settings in effect once the changes asked so far have taken effect."""
        return self._pending_config or self.config

    @property
    def unapplied_replay(self) -> list[dict[str, Any]]:
        """Replayed changes whose position the run never reached."""
        return list(self._replay)

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
            config = self.config
            if good is not None:
                config = good["config"]
                if good["n_changes"] != len(self.changes):
                    meta["changes"] = list(self.changes[: good["n_changes"]])
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
        if not meta.get("changes"):
            meta.pop("changes", None)
        return Checkpoint(model=model, config=config, metadata=meta, optimizer_state=opt_state)

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
        if self.changes:    # the settings (config) are those in effect; these are how they came
            meta["changes"] = [dict(c) for c in self.changes]
        if self.schedule_batch != self.config.batch_size:
            meta["schedule_batch_size"] = self.schedule_batch
        return meta

    def _make_schedule(self, base_lr: float) -> Callable[[int], float]:
        config = self.config
        per_epoch = -(-len(self.y_train) // self.schedule_batch)
        try:
            return make_schedule(
                config.schedule,
                base_lr,
                total_steps=per_epoch * config.epochs,
                steps_per_epoch=per_epoch,
                step_epochs=config.step_epochs,
                gamma=config.gamma,
                warmup_steps=int(round(config.warmup_epochs * per_epoch)),
            )
        except ConfigError as exc:      # name the setting the user typed, not the step count
            if exc.field != "warmup_steps":
                raise
            raise ConfigError("warmup_epochs", f"{config.warmup_epochs:g} epochs of warm-up leave no"
                                               " steps for the cosine schedule") from None

    def _schedule_step(self, rows: int) -> int:
        """The schedule's clock before a step that starts ``rows`` rows into the current epoch:
        completed epochs and this epoch's rows, counted in steps of ``schedule_batch``. Without a
        batch size change this is the global step (rows = k x batch after k steps)."""
        per_epoch = -(-len(self.y_train) // self.schedule_batch)
        return self.epochs_done * per_epoch + rows // self.schedule_batch

    def _restore(self, ckpt: Checkpoint) -> None:
        if ckpt.model.sizes != self.model.sizes:
            raise ConfigError("hidden", f"checkpoint has layers {ckpt.model.sizes}, config has {self.model.sizes}")
        self.model.set_weights(ckpt.model.get_weights())
        if ckpt.optimizer_state:
            if isinstance(self.optimizer, SGD) and any(k.startswith("velocity/") for k in ckpt.optimizer_state):
                self.optimizer.add_velocity()       # momentum was changed live (from or to 0)
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
        self.changes = [dict(c) for c in meta.get("changes") or [] if isinstance(c, dict)]
        sched = meta.get("schedule_batch_size")
        if isinstance(sched, int) and not isinstance(sched, bool) and sched >= 1 and sched != self.schedule_batch:
            self.schedule_batch = sched          # the schedule's clock of the run before a batch change
            self.schedule = self._make_schedule(self.config.lr)
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
            yield self._progress(epoch, tally.step, tally.lr, tally.window, tally.steps)
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
        n = len(tally.order)
        rows = step = 0                  # rows of the epoch's order trained; steps done
        tally.steps = self.steps_per_epoch
        while rows < n:
            step += 1
            tally.step = step
            if self._stop.is_set():
                break
            yield from self._boundary(epoch, step - 1, tally)
            if self._stop.is_set():
                break
            bs = self.config.batch_size           # the rest of the epoch, in batches of bs
            tally.steps = step - 1 + -(-(n - rows) // bs)
            xb, yb = batches.load(tally.order[rows : rows + bs])
            lr = tally.lr = self.schedule(self._schedule_step(rows))
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
            rows += m
            tally.sum_loss += loss * m
            tally.sum_correct += correct
            tally.seen += m
            tally.window.append((self.global_step, loss))
            if len(tally.window) >= self.progress_every:
                yield self._progress(epoch, step, lr, tally.window, tally.steps)
                tally.window = []
        return None

    def _boundary(self, epoch: int, done: int, tally: _Tally) -> Generator[ev.Event, None, None]:
        """The step boundary before step ``done + 1`` of ``epoch``: live changes take effect
        here; a paused run waits here (applying changes, running single steps or an epoch
        when asked) until resumed or stopped."""
        yield from self._apply_changes(epoch, done)
        if self._unpaused.is_set() or self._may_advance(epoch):
            return
        tally.train_time += time.perf_counter() - tally.t0
        if tally.window:             # the steps so far reach the chart before the pause
            yield self._progress(epoch, done, tally.lr, tally.window, tally.steps)
            tally.window = []
        yield ev.Paused(epoch=epoch, step=done)
        while True:
            self._wake.clear()
            yield from self._apply_changes(epoch, done)
            if self._unpaused.is_set() or self._stop.is_set():
                tally.t0 = time.perf_counter()
                if not self._stop.is_set():
                    yield ev.Resumed(epoch=epoch, step=done)
                return
            if self._may_advance(epoch):
                tally.t0 = time.perf_counter()
                return
            self._wake.wait(0.1)

    def _may_advance(self, epoch: int) -> bool:
        """Paused: whether step_once / epoch_once lets the next step of ``epoch`` run."""
        if not (self._advance_steps or self._advance_epoch or self._allow_epoch is not None):
            return False
        with self._change_lock:
            if self._advance_epoch:
                self._advance_epoch, self._allow_epoch = False, epoch
            if self._allow_epoch == epoch:
                return True
            self._allow_epoch = None
            if self._advance_steps > 0:
                self._advance_steps -= 1
                return True
        return False

    def _apply_changes(self, epoch: int, done: int) -> Generator[ev.Event, None, None]:
        """Apply the replayed changes due at this boundary, then the pending live ones."""
        while self._replay and (self._replay[0]["epoch"], self._replay[0]["step"]) == (epoch, done):
            entry = self._replay.pop(0)
            check_change(self.config, {entry["field"]: entry["new"]})    # as the live one was
            yield from self._apply(entry["field"], entry["new"], epoch, done)
        if not self._pending:
            return
        with self._change_lock:
            pending, self._pending = self._pending, []
            self._pending_config = None
            applied = [e for name, value in pending for e in self._apply(name, value, epoch, done)]
        yield from applied

    def _apply(self, name: str, value: Any, epoch: int, done: int) -> list[ev.HyperparamsChanged]:
        old = getattr(self.config, name)
        if value == old:
            return []
        with self._lock:
            self.config = self.config.replace(**{name: value})
            self._set_live(name, value)
        record = {"epoch": epoch, "step_in_epoch": done, "global_step": self.global_step,
                  "field": name, "old": old, "new": value}
        self.changes.append(record)
        return [ev.HyperparamsChanged(**record)]

    def _set_live(self, name: str, value: Any) -> None:
        """Make the optimizer, the schedule and the batches use ``self.config``'s ``name``."""
        if name == "lr":
            self.schedule = self._make_schedule(float(value))
            self.optimizer.lr = float(value)
        elif name == "momentum":
            self.optimizer.set_momentum(float(value))      # type: ignore[attr-defined]
        elif name == "weight_decay":
            self.optimizer.set_weight_decay(float(value))
        elif name == "batch_size":
            self.steps_per_epoch = -(-len(self.y_train) // int(value))
            if self._batches is not None:
                self._batches.reserve(int(value))

    def _stopped(self) -> ev.Stopped:
        return ev.Stopped(epoch=self.epochs_done, step=self.global_step, steps_into_epoch=self.steps_into_epoch)

    def _progress(self, epoch: int, step: int, lr: float, window: list[tuple[int, float]],
                  steps: int) -> ev.BatchProgress:
        return ev.BatchProgress(
            epoch=epoch,
            step=step,
            steps_per_epoch=steps,
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
                "config": self.config,            # the live settings at that boundary
                "n_changes": len(self.changes),
            }

    def _diverge(self, epoch: int, step: int, loss: float) -> ev.Diverged:
        """Go back to the last good state (the last epoch end); the event that says so."""
        assert self._last_good is not None
        good = self._last_good
        msg = (
            f"diverged at epoch {epoch} step {step} (loss {loss:.4g}): try a smaller learning rate"
            f" (lr={self.config.lr:g}); kept the weights of epoch {self.epochs_done}"
        )
        with self._lock:
            if good["config"] != self.config:         # live changes since: back to that state
                changed = [f for f in LIVE_FIELDS if getattr(good["config"], f) != getattr(self.config, f)]
                self.config = good["config"]
                for name in changed:
                    self._set_live(name, getattr(self.config, name))
                del self.changes[good["n_changes"]:]
            self.model.set_weights(good["weights"])
            self.optimizer.load_state_dict(good["optimizer"])
            self.global_step = good["global_step"]
            self.steps_into_epoch = 0
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
    steps: int = 0                   # the epoch's steps (it changes with a batch size change)
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
        session._batches = self
        self._img_shape = self._x.shape[1:]
        self._max_shift = cfg.max_shift if cfg.augment == "shift" and len(self._img_shape) == 2 else None

    def reserve(self, batch_size: int) -> None:
        """Room for batches of ``batch_size`` rows (a live batch size change)."""
        if batch_size > len(self._f):
            self._u8 = np.empty((batch_size, self._u8.shape[1]), dtype=self._u8.dtype)
            self._f = np.empty((batch_size, self._f.shape[1]), dtype=self._f.dtype)

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


def _replay_entry(change: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded change (the run store's {"epoch", "step", "field", "new"}, or a
    HyperparamsChanged's fields) as the session replays it."""
    try:
        step = change["step"] if "step" in change else change["step_in_epoch"]
        return {"epoch": int(change["epoch"]), "step": int(step), "field": str(change["field"]),
                "new": change["new"]}
    except (KeyError, TypeError, ValueError):
        raise ConfigError("replay", f"not a recorded change: {dict(change)!r}") from None


def _jsonable_rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A copy of the generator's state (PCG64: nested dict of str/int, JSON-serialisable)."""
    return copy.deepcopy(dict(rng.bit_generator.state))
