"""The messages between the app and its training process, in one place.

Every message is a frozen dataclass; both sides dispatch with ``match`` on the class, never
on a name. They travel pickled over a ``multiprocessing.connection.Connection`` on a
socketpair that only the app and the child it started hold: two processes of the same
program. Nothing a user loads from disk or the network goes through pickle. Image arrays
travel as raw bytes after a :class:`SendDataset` (``send_bytes``/``recv_bytes_into``).

  app -> child   Ping | SendDataset (+ 4 raw arrays) | Open | Control | Change | CheckpointRequest | Exit
  child -> app   Reply | ErrorReply (answers, by ``req``) ;
                 RunEvent | Good | Final | Crash | End (the run ``run``'s stream, in order)

Requests carry ``req`` (the answer carries it back); run messages carry ``run`` (a late
message of an earlier run is dropped). "Good" (the state at the last completed epoch)
precedes the RunStarted and EpochEnded events it belongs to; "Final" precedes Finished.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from enum import Enum
from typing import Any

from engine import errors
from engine.events import Event

# Flow control: the child runs at most this many epochs ahead of the consumer of run()
# (the app acknowledges each EpochEnded it has handled with Control(run, ACK)).
EPOCHS_AHEAD = 2

#: Image arrays of a dataset, in the order they follow a SendDataset.
DATASET_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


class TrainerProcessError(errors.TermnistError):
    """The training process could not start, stopped answering, or ended unexpectedly."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


# ----------------------------------------------------------------------- app -> child
@dataclass(frozen=True)
class Ping:
    req: int


@dataclass(frozen=True)
class ArraySpec:
    shape: tuple[int, ...]
    dtype: str                      # numpy dtype string, e.g. "|u1"


@dataclass(frozen=True)
class SendDataset:
    """A dataset's description; its DATASET_ARRAYS follow as raw bytes, in that order."""

    req: int
    name: str
    title: str
    class_names: tuple[str, ...]
    source: str
    is_sample: bool
    max_value: int
    arrays: dict[str, ArraySpec]


@dataclass(frozen=True)
class Open:
    """Create a TrainingSession for run ``run`` on the dataset held, and start it."""

    req: int
    run: int
    config: Any                     # TrainConfig
    progress_every: int
    resume: Any = None              # Checkpoint | None


class Action(Enum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    ACK = "ack"                     # the app has handled an EpochEnded (flow control)
    STEP = "step"                   # paused: run exactly one step (TrainingSession.step_once)
    EPOCH = "epoch"                 # paused: run to the end of the epoch (epoch_once)


@dataclass(frozen=True)
class Control:
    """No answer: pause/resume/stop run ``run``, or acknowledge one of its epochs."""

    run: int
    action: Action


@dataclass(frozen=True)
class Change:
    """No answer: a live change of run ``run`` (TrainingSession.change), already validated by
    the app against the same rules (engine.config.check_change); its HyperparamsChanged event
    comes back in the run's stream once it took effect."""

    run: int
    values: dict[str, float | int]


@dataclass(frozen=True)
class CheckpointRequest:
    req: int
    run: int
    last_completed_epoch: bool


@dataclass(frozen=True)
class Exit:
    """Stop the run (if any) and exit at once."""


Request = Ping | SendDataset | Open | CheckpointRequest
ToChild = Ping | SendDataset | Open | Control | Change | CheckpointRequest | Exit


# ----------------------------------------------------------------------- child -> app
@dataclass(frozen=True)
class ErrorInfo:
    """An exception, as plain values: rebuilt on the other side by :func:`rebuild_error`."""

    kind: str                       # the exception's class name (looked up in _REBUILDABLE)
    message: str
    field: str | None = None        # ConfigError.field
    details: str = ""               # traceback, for errors that are not the engine's own

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        if isinstance(exc, errors.ConfigError):
            return cls("ConfigError", exc.reason, exc.field)
        return cls(type(exc).__name__, str(exc), None, "".join(traceback.format_exception(exc)))


@dataclass(frozen=True)
class Reply:
    req: int
    value: Any


@dataclass(frozen=True)
class ErrorReply:
    req: int
    error: ErrorInfo


@dataclass(frozen=True)
class RunEvent:
    run: int
    event: Event


@dataclass(frozen=True)
class Good:
    """The checkpoint of the last completed epoch (precedes RunStarted / EpochEnded)."""

    run: int
    checkpoint: Any                 # Checkpoint


@dataclass(frozen=True)
class Final:
    """The run's last weights and its last completed epoch's (precedes Finished)."""

    run: int
    now: Any                        # Checkpoint
    good: Any                       # Checkpoint


@dataclass(frozen=True)
class Crash:
    run: int
    error: ErrorInfo


@dataclass(frozen=True)
class End:
    """The run's thread in the child has ended: nothing more comes for ``run``."""

    run: int


Answer = Reply | ErrorReply
RunMessage = RunEvent | Good | Final | Crash | End
ToApp = Reply | ErrorReply | RunEvent | Good | Final | Crash | End


# ---------------------------------------------------------------- errors across the wire
def _error_classes() -> dict[str, type[errors.TermnistError]]:
    out: dict[str, type[errors.TermnistError]] = {"TrainerProcessError": TrainerProcessError}
    todo: list[type[errors.TermnistError]] = [errors.TermnistError]
    while todo:
        cls = todo.pop()
        if cls.__module__ == errors.__name__:
            out[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return out


def rebuild_error(info: ErrorInfo) -> BaseException:
    """The exception ``info`` describes: the engine's own errors (ConfigError with its field)
    and MemoryError as themselves; anything else as a TrainerProcessError quoting it."""
    if info.kind == "ConfigError":
        return errors.ConfigError(info.field or "config", info.message)
    if info.kind == "MemoryError":
        return MemoryError(info.message)
    cls = _error_classes().get(info.kind)
    if cls is not None:
        try:
            return cls(info.message)
        except TypeError:
            pass
    return TrainerProcessError(f"internal error in the training process: {info.kind}: {info.message}",
                               info.details)
