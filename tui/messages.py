"""Textual messages: what the workers tell the app.

The training worker's `TrainingRunner` produces plain updates (tui.runner); `wrap()`
turns each into one of the messages below so the app has one handler per kind. Only
`ProgressChanged` may collapse (a newer position supersedes an older one); messages
carrying loss points or log rows never do -- that would lose data.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from tui import runner as r


class TrainingMessage(Message):
    """Base: carries one runner update in ``.update``."""

    def __init__(self, update: Any) -> None:
        super().__init__()
        self.update = update


class RunStarted(TrainingMessage):
    update: r.Started


class LossPoints(TrainingMessage):
    update: r.Points


class ProgressChanged(TrainingMessage):
    update: r.Progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProgressChanged)


class EpochCompleted(TrainingMessage):
    update: r.EpochRow


class PredictionsReady(TrainingMessage):
    update: r.Predictions


class RunStateChanged(TrainingMessage):
    update: r.StateChanged


class RunLog(TrainingMessage):
    update: r.LogLine


class RunFinished(TrainingMessage):
    update: r.Done


class TrainingFailed(TrainingMessage):
    update: r.Failure


_WRAPPERS: dict[type, type[TrainingMessage]] = {
    r.Started: RunStarted,
    r.Points: LossPoints,
    r.Progress: ProgressChanged,
    r.EpochRow: EpochCompleted,
    r.Predictions: PredictionsReady,
    r.StateChanged: RunStateChanged,
    r.LogLine: RunLog,
    r.Done: RunFinished,
    r.Failure: TrainingFailed,
}


def wrap(update: Any) -> TrainingMessage:
    """The message carrying runner update ``update``."""
    return _WRAPPERS[type(update)](update)


# --------------------------------------------------------------- other workers' results
class DatasetReady(Message):
    """A dataset finished loading (engine.datasets.Dataset, read-only from here on)."""

    def __init__(self, dataset: Any) -> None:
        super().__init__()
        self.dataset = dataset


class DatasetMissing(Message):
    """No copy of a dataset was found (or it failed to load)."""

    def __init__(self, name: str, message: str, searched: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.name = name
        self.message = message
        self.searched = searched


class ModelLoaded(Message):
    """A checkpoint was read and evaluated in a worker."""

    def __init__(self, path: str, checkpoint: Any, dataset: Any, predictions: r.Predictions | None,
                 test_acc: float | None) -> None:
        super().__init__()
        self.path = path
        self.checkpoint = checkpoint
        self.dataset = dataset
        self.predictions = predictions
        self.test_acc = test_acc


class ResumeReady(Message):
    """The autosave of an interrupted run was read; its dataset is loaded."""

    def __init__(self, path: str, checkpoint: Any) -> None:
        super().__init__()
        self.path = path
        self.checkpoint = checkpoint


class ModelSaved(Message):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path


class WorkFailed(Message):
    """A load/save/evaluation worker failed; ``message`` is one line for the user."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__()
        self.what = what
        self.message = message


# --------------------------------------------------------------- dataset downloads
class DownloadProgress(Message):
    """How far a dataset download is (a tui.data_status.DownloadProgressInfo). Only the
    latest position matters, so a newer one replaces an older one still queued."""

    def __init__(self, info: Any) -> None:
        super().__init__()
        self.info = info

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadProgress)


class DownloadLog(Message):
    """One line from a download worth telling (a mirror failed and why, a resume ...)."""

    def __init__(self, name: str, line: str) -> None:
        super().__init__()
        self.name = name
        self.line = line


class DownloadFinished(Message):
    """Every file of dataset ``name`` is downloaded and verified in ``path``."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__()
        self.name = name
        self.path = path


class DownloadFailed(Message):
    """A download ended without the dataset: ``cancelled`` when the user (or quitting)
    stopped it; the partial file is kept for resuming either way."""

    def __init__(self, name: str, message: str, cancelled: bool = False) -> None:
        super().__init__()
        self.name = name
        self.message = message
        self.cancelled = cancelled
