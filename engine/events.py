"""Events a training session yields. Frozen, small, safe to hand to another thread.

The UI (or CLI) learns everything about a run from these; it never reads the session's
internals. Arrays never travel in events: ask the session for predictions instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def describe_position(epochs_done: int, steps_into_epoch: int = 0) -> str:
    """Where a run's weights are: 'epoch 2 step 172' (172 steps into epoch 2, after one
    completed epoch), 'end of epoch 3', or 'initial weights'."""
    if steps_into_epoch > 0:
        return f"epoch {epochs_done + 1} step {steps_into_epoch}"
    return f"end of epoch {epochs_done}" if epochs_done else "initial weights"


@dataclass(frozen=True)
class Event:
    """Base class of all session events."""


@dataclass(frozen=True)
class RunStarted(Event):
    config: dict            # TrainConfig.to_dict()
    n_train: int
    n_val: int
    n_test: int
    steps_per_epoch: int
    dataset: str            # human description, e.g. "MNIST (full, /path)" or "MNIST sample"
    start_epoch: int = 0    # > 0 when continuing a resumed run


@dataclass(frozen=True)
class BatchProgress(Event):
    epoch: int              # 1-based
    step: int               # 1-based step within the epoch
    steps_per_epoch: int
    global_step: int        # 1-based over the whole run
    loss: float             # mean training loss over the steps since the last BatchProgress
    lr: float
    # (global_step, loss) of every step since the last BatchProgress, for charts.
    points: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class EpochEnded(Event):
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float | None  # None when val_size == 0
    val_acc: float | None
    seconds: float          # wall time of the epoch's training (excludes evaluation)
    samples_per_s: float
    lr: float
    global_step: int


@dataclass(frozen=True)
class Paused(Event):
    epoch: int
    step: int


@dataclass(frozen=True)
class Resumed(Event):
    epoch: int
    step: int


@dataclass(frozen=True)
class HyperparamsChanged(Event):
    """A live change (TrainingSession.change) took effect at a step boundary: ``new`` applies
    from step ``step_in_epoch + 1`` of epoch ``epoch`` on (global step ``global_step + 1``);
    the steps before it used ``old``. Position and values are what a replay applies."""

    epoch: int              # 1-based epoch in progress
    step_in_epoch: int      # steps of that epoch done before the change (0: at its start)
    global_step: int        # steps of the run done before the change
    field: str              # "lr" | "momentum" | "weight_decay" | "batch_size"
    old: float | int
    new: float | int

    def describe(self) -> str:
        """'epoch 3 step 120: lr 0.05 -> 0.1' (the epoch log's line)."""
        return f"epoch {self.epoch} step {self.step_in_epoch}: {self.field} {self.old:g} -> {self.new:g}"


@dataclass(frozen=True)
class Diverged(Event):
    epoch: int
    step: int
    loss: float
    message: str            # "diverged at epoch E step S (loss nan): try a smaller learning rate"
    restored_epoch: int     # weights are those at the end of this epoch (0 = initial weights)


@dataclass(frozen=True)
class Stopped(Event):
    epoch: int              # epochs fully completed
    step: int               # global step (1-based over the run) of the weights kept
    # Steps of epoch ``epoch + 1`` done before the stop: the weights are that far into it
    # (0: stopped at an epoch end). A checkpoint of them says so (metadata "mid_epoch").
    steps_into_epoch: int = 0


@dataclass(frozen=True)
class Finished(Event):
    epochs_done: int
    test_loss: float
    test_acc: float
    seconds: float          # whole run
    reason: str = "completed"   # "completed" | "stopped" | "diverged"
    per_class_acc: tuple[float, ...] = field(default=())
    # The test figures are of the weights at the end: ``steps_into_epoch`` steps into epoch
    # ``epochs_done + 1`` when a stop came mid-epoch (else 0, the end of epoch epochs_done).
    steps_into_epoch: int = 0


@dataclass(frozen=True)
class Failed(Event):
    message: str            # one line, for a notification / stderr
