"""Worker-side glue between a TrainingSession and the UI. No Textual here.

`TrainingRunner.run()` executes in the training worker thread: it iterates the
session's events (a TrainingSession, or a ProcessSession whose session runs in the
training process), buffers loss points, throttles progress, has a preview thread predict
the test images at each epoch end, and hands plain frozen values ("updates", defined
below) to ``post`` -- a callable. The app passes a function that wraps each update in
a Textual message and calls ``post_message`` (non-blocking); tests pass ``list.append``.

What it posts is the engine's own events (one vocabulary from the engine to the screen) and
the few values it adds (Points, Progress, Predictions, LogLine, Failure). Everything posted is
immutable: tuples, frozen dataclasses, read-only array copies.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from engine import events as ev
from tui.bandwidth import progress_interval


class Session(Protocol):  # the part of engine.training.TrainingSession the runner uses
    def run(self) -> Any: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...
    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...
    # optional: predictor() -> predict_proba frozen at the current weights (for the preview
    # thread, which predicts after the session may have moved on)


# ----------------------------------------------------------------------------- updates
# The runner posts the engine's own events (engine.events: RunStarted, EpochEnded, Paused,
# Resumed, Diverged, Stopped, Finished, Failed) as they are, plus only what it adds:
@dataclass(frozen=True)
class Points:
    """Training loss of individual steps: ((global_step, loss), ...), in order."""

    points: tuple[tuple[int, float], ...]
    steps_per_epoch: int


@dataclass(frozen=True)
class Progress:
    """Latest position in the run (a newer one supersedes an older one): the engine's
    BatchProgress with what the runner adds to it."""

    event: ev.BatchProgress
    epochs: int
    eta_s: float | None      # seconds left in this epoch (None until measurable)


@dataclass(frozen=True)
class Predictions:
    """The network's answers for the first ``len(predicted)`` test images.

    Arrays are read-only copies: safe to keep on the UI thread.
    """

    predicted: np.ndarray        # (n,) int
    confidence: np.ndarray       # (n,) float, probability of the predicted class
    probabilities: np.ndarray    # (n, C) float32
    accuracy: float | None       # on those n images, when labels were given
    label: str                   # what produced them: "epoch 3", "final", "loaded model"


@dataclass(frozen=True)
class LogLine:
    """Something the runner itself has to say (the engine's events say the rest)."""

    text: str
    severity: str = "information"   # "information" | "warning" | "error"


@dataclass(frozen=True)
class Failure:
    """An exception ended the run (or kept it from starting)."""

    message: str
    field: str | None = None         # the setting at fault (ConfigError), if any
    details: str = ""                # traceback for unexpected errors


Update = ev.Event | Points | Progress | Predictions | LogLine | Failure


def make_predictions(proba: np.ndarray, labels: np.ndarray | None, label: str) -> Predictions:
    """Freeze (n, C) probabilities into a Predictions value (copies, read-only)."""
    probs = np.array(proba, dtype=np.float32, copy=True)
    if probs.ndim != 2:
        raise ValueError(f"expected (n, C) probabilities, got shape {probs.shape}")
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    confidence = probs[np.arange(len(probs)), predicted] if len(probs) else np.zeros(0, np.float32)
    accuracy = None
    if labels is not None and len(probs):
        accuracy = float(np.mean(predicted == np.asarray(labels)[: len(probs)]))
    for arr in (probs, predicted, confidence):
        arr.setflags(write=False)
    return Predictions(predicted, confidence, probs, accuracy, label)


def evaluate_checkpoint(ckpt: Any, dataset: Any, preview_limit: int, where: str = "model"
                        ) -> tuple[Predictions, float | None]:
    """A loaded model's predictions on ``dataset``'s test set (for the preview) and its test
    accuracy. Runs in a worker; uses only the engine's public API (``MLP.predict_proba``)."""
    from engine.errors import CheckpointError
    from engine.training import predict_images

    sizes = ckpt.model.sizes
    if sizes[0] != dataset.n_features or sizes[-1] != dataset.n_classes:
        raise CheckpointError(
            f"{where}: the model expects {sizes[0]} inputs and {sizes[-1]} classes but "
            f"{dataset.title} has {dataset.n_features} and {dataset.n_classes}")
    proba = predict_images(ckpt.model, dataset.x_test, dataset.max_value, ckpt.config.dtype)
    test_acc = float(np.mean(proba.argmax(axis=1) == dataset.y_test)) if len(proba) else None
    return make_predictions(proba[:preview_limit], dataset.y_test, "loaded model"), test_acc


# ------------------------------------------------------------------------------ runner
@dataclass
class TrainingRunner:
    """Runs one training session in the calling (worker) thread.

    ``open_session`` (called in the worker) returns ``(session, x_test, y_test)``:
    opening may load a dataset or fail with a ConfigError, so it happens off the UI
    thread too. ``x_test[:preview_limit]`` gets predictions at every epoch end.
    """

    post: Callable[[Any], None]
    throttle_s: float = field(default_factory=progress_interval)
    preview_limit: int = 10_000
    clock: Callable[[], float] = time.monotonic
    cancelled: Callable[[], bool] | None = None   # e.g. the worker's is_cancelled flag
    recorder: Any = None                          # engine.runs.RunRecorder: the run history
    # (session, recorder) -> None, at Finished before it is posted: keeps the run's checkpoint
    keep_checkpoint: Callable[[Any, Any], None] | None = None
    session: Session | None = field(default=None, init=False)
    abandoned: bool = field(default=False, init=False)   # set by abandon(): nobody is watching
    _stop: threading.Event = field(default_factory=threading.Event, init=False)

    # -- control (any thread) ---------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to end at the next batch (also before the session exists)."""
        self._stop.set()
        session = self.session
        if session is not None:
            session.stop()

    def abandon(self) -> None:
        """Stop because the app is closing (quit, hangup): skip the final preview
        predictions, which nobody would see, so the thread ends sooner."""
        self.abandoned = True
        self._preview.close(finish=False, wait=False)
        self.stop()

    def pause(self) -> None:
        if self.session is not None:
            self.session.pause()

    def resume(self) -> None:
        if self.session is not None:
            self.session.resume()

    def __post_init__(self) -> None:
        self._preview = _PreviewThread(self.post)
        self._x: np.ndarray = np.zeros((0,), dtype=np.uint8)
        self._y: np.ndarray | None = None
        self._pending: list[tuple[int, float]] = []
        self._last_flush = self.clock()
        self._latest: Progress | None = None
        self._epochs = 0
        self._steps_per_epoch = 1
        self._mark: tuple[float, int] | None = None   # (time, step) the ETA is measured from

    def attach(self, session: Session, x_test: np.ndarray, y_test: np.ndarray | None) -> None:
        """Use ``session``; predictions cover ``x_test[:preview_limit]``."""
        self.session = session
        self._x = x_test[: self.preview_limit]
        self._y = None if y_test is None else y_test[: self.preview_limit]

    # -- the worker's loop --------------------------------------------------------------
    def run(self, open_session: Callable[[], tuple[Session, np.ndarray, np.ndarray]]) -> None:
        """Open and run the session, posting updates. Never raises: errors become Failure."""
        try:
            session, x_test, y_test = open_session()
        except Exception as exc:  # noqa: BLE001 - becomes a notification, app keeps running
            self.post(_failure(exc))
            return
        self.attach(session, x_test, y_test)
        if self._stop.is_set():
            session.stop()
        recorder, failure = self.recorder, None
        try:
            for event in session.run():
                if recorder is not None:
                    recorder.feed(event)             # the run history (engine.runs); never raises
                    if isinstance(event, ev.Finished) and self.keep_checkpoint is not None and not self.abandoned:
                        self.keep_checkpoint(session, recorder)     # before the app hears of the end
                self.handle(event)
                if recorder is not None and isinstance(event, ev.RunStarted) and recorder.run_id:
                    self.post(LogLine(f"recorded in the run history as {recorder.run_id} "
                                      f"(termnist runs show {recorder.run_id})"))
                if self._stop.is_set() or (self.cancelled is not None and self.cancelled()):
                    self._stop.set()
                    session.stop()   # idempotent; the session ends at its next batch
        except Exception as exc:  # noqa: BLE001
            failure = exc
            session.stop()           # whatever broke here, the session must not run on unwatched
            self._flush()
            self.post(_failure(exc))
        finally:
            if recorder is not None:
                recorder.close(failure)
            # The last preview lands before the worker ends (a next run must not get this
            # run's predictions late), unless nobody is watching any more.
            self._preview.close(finish=not self.abandoned)

    def handle(self, event: ev.Event) -> None:
        """Pass one engine event on (throttling progress), adding what the UI needs."""
        if isinstance(event, ev.BatchProgress):
            self._on_progress(event)
            return
        self._flush()
        self.post(event)
        match event:
            case ev.RunStarted():
                self._epochs = int(event.config.get("epochs", 0))
                self._mark = (self.clock(), 0)
            case ev.EpochEnded():
                self._mark = (self.clock(), 0)
                self._predict(f"epoch {event.epoch}")
            case ev.Resumed():
                self._mark = (self.clock(), event.step)
            case ev.Finished() if event.reason != "completed" and not self.abandoned:
                self._predict("final")   # weights changed since the last epoch end
            case _:
                pass

    # -- helpers --------------------------------------------------------------------------
    def _on_progress(self, event: ev.BatchProgress) -> None:
        self._pending.extend(event.points or ((event.global_step, event.loss),))
        eta = None
        now = self.clock()
        if self._mark is not None:
            t0, s0 = self._mark
            done = event.step - s0
            if done > 0 and now > t0:
                eta = (event.steps_per_epoch - event.step) * (now - t0) / done
        self._latest = Progress(event, self._epochs, eta)
        self._steps_per_epoch = event.steps_per_epoch
        if now - self._last_flush >= self.throttle_s:
            self._flush()

    def _flush(self) -> None:
        self._last_flush = self.clock()
        if self._pending:
            self.post(Points(tuple(self._pending), self._steps_per_epoch))
            self._pending = []
        if self._latest is not None:
            self.post(self._latest)
            self._latest = None

    def _predict(self, label: str) -> None:
        """Predictions for the preview, made by the preview thread on the weights of now."""
        session = self.session
        if session is None or len(self._x) == 0 or self.abandoned:
            return
        try:
            frozen = getattr(session, "predictor", None)
            predict = frozen() if frozen is not None else session.predict_proba
        except Exception as exc:  # noqa: BLE001
            self.post(LogLine(f"preview predictions failed: {exc}", "warning"))
            return
        self._preview.request(predict, self._x, self._y, label)


class _PreviewThread:
    """Makes the preview's predictions off the runner's thread, so the runner goes on with
    the run's events (the log's "completed" line does not wait for 10,000 predictions).

    One job at a time; a newer request replaces one not started yet (only the newest
    weights are worth showing). On Linux the thread runs at a lower CPU priority (nice +10):
    the preview is the least urgent work in the app and must not slow training on a busy
    machine.
    """

    NICE = 10

    def __init__(self, post: Callable[[Update], None]) -> None:
        self.post = post
        self._cond = threading.Condition()
        self._job: tuple | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def request(self, predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                y: np.ndarray | None, label: str) -> None:
        with self._cond:
            if self._closed:
                return
            self._job = (predict, x, y, label)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="preview", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def close(self, finish: bool = True, wait: bool = True) -> None:
        """No more requests; ``finish``: still make the pending one. ``wait``: until done."""
        with self._cond:
            self._closed = True
            if not finish:
                self._job = None
            self._cond.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    def _loop(self) -> None:
        _lower_priority(self.NICE)
        from threadpoolctl import threadpool_limits

        while True:
            with self._cond:
                while self._job is None and not self._closed:
                    self._cond.wait()
                job, self._job = self._job, None
                if job is None:
                    return
            predict, x, y, label = job
            try:
                with threadpool_limits(limits=1):   # one core's worth, beside training
                    self.post(make_predictions(predict(x), y, label))
            except Exception as exc:  # noqa: BLE001
                self.post(LogLine(f"preview predictions failed: {exc}", "warning"))


def _lower_priority(nice: int) -> None:
    """Lower the calling *thread's* CPU priority (Linux: a thread id is a process id to
    setpriority). Elsewhere this would renice the whole process, so it does nothing."""
    import os
    import sys

    if sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (OSError, AttributeError):
        pass


def _failure(exc: BaseException) -> Failure:
    from engine.errors import ConfigError, TermnistError

    if isinstance(exc, ConfigError):
        return Failure(str(exc), field=exc.field)
    if isinstance(exc, TermnistError):
        return Failure(str(exc))
    if isinstance(exc, MemoryError):
        return Failure("out of memory: use smaller layers or a smaller batch size")
    from tui.guard import internal

    internal.error("the run failed unexpectedly", exc_info=exc)
    return Failure(f"internal error: {type(exc).__name__}: {exc}",
                   details="".join(traceback.format_exception(exc)))
