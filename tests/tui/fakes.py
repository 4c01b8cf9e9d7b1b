"""Small stand-ins for engine objects, for tests that must not depend on training speed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from engine import events as ev


class FakeSession:
    """Yields a scripted run: `epochs` epochs of `steps` steps, progress every `every` steps.

    ``predict_proba`` answers "label (i mod C)" with confidence 0.9 for image i, so tests
    know exactly which images count as mistakes.
    """

    def __init__(self, epochs: int = 2, steps: int = 10, every: int = 5, n_classes: int = 10,
                 gate: threading.Event | None = None) -> None:
        self.epochs, self.steps, self.every, self.n_classes = epochs, steps, every, n_classes
        self.gate = gate          # when given, each step waits for it (lets tests hold a run)
        self.stopped = threading.Event()
        self.unpaused = threading.Event()
        self.unpaused.set()
        self.predict_calls = 0

    def pause(self) -> None:
        self.unpaused.clear()

    def resume(self) -> None:
        self.unpaused.set()

    def stop(self) -> None:
        self.stopped.set()
        self.unpaused.set()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.predict_calls += 1
        n = len(x)
        p = np.full((n, self.n_classes), 0.1 / (self.n_classes - 1), dtype=np.float32)
        p[np.arange(n), np.arange(n) % self.n_classes] = 0.9
        return p

    def run(self) -> Iterator[ev.Event]:
        yield ev.RunStarted(config={"epochs": self.epochs}, n_train=100, n_val=10, n_test=20,
                            steps_per_epoch=self.steps, dataset="fake")
        g = 0
        for epoch in range(1, self.epochs + 1):
            window = []
            for step in range(1, self.steps + 1):
                if self.gate is not None:
                    self.gate.wait(5)
                if not self.unpaused.is_set():
                    yield ev.Paused(epoch=epoch, step=step - 1)
                    self.unpaused.wait(5)
                    if not self.stopped.is_set():
                        yield ev.Resumed(epoch=epoch, step=step - 1)
                if self.stopped.is_set():
                    yield ev.Stopped(epoch=epoch - 1, step=g)
                    yield ev.Finished(epochs_done=epoch - 1, test_loss=1.0, test_acc=0.5,
                                      seconds=0.1, reason="stopped")
                    return
                g += 1
                loss = 2.0 / g
                window.append((g, loss))
                if len(window) == self.every:
                    yield ev.BatchProgress(epoch=epoch, step=step, steps_per_epoch=self.steps,
                                           global_step=g, loss=float(np.mean([l for _, l in window])),
                                           lr=0.1, points=tuple(window))
                    window = []
            yield ev.EpochEnded(epoch=epoch, epochs=self.epochs, train_loss=1.0 / epoch,
                                train_acc=0.5 + 0.1 * epoch, val_loss=1.1 / epoch, val_acc=0.45 + 0.1 * epoch,
                                seconds=0.5, samples_per_s=1000.0, lr=0.1, global_step=g)
        yield ev.Finished(epochs_done=self.epochs, test_loss=0.5, test_acc=0.8, seconds=1.0)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t
