"""Textual messages: what the workers tell the app.

One vocabulary from the engine to the screen: ``TrainingEvent`` carries the engine's own
frozen event (engine.events) as the session yielded it; the other training messages carry
only what the runner adds (tui.runner: loss points, progress with an ETA, the preview's
predictions, its own log lines, a failure). ``wrap()`` picks the message for an update by
its type. Only ``ProgressChanged`` may collapse (a newer position supersedes an older one);
messages carrying loss points or events never do -- that would lose data.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from engine import events as ev
from tui import runner as r


class TrainingEvent(Message):
    """An engine event from the run in progress (RunStarted, EpochEnded, Finished ...)."""

    def __init__(self, event: ev.Event) -> None:
        super().__init__()
        self.event = event


class LossPoints(Message):
    def __init__(self, update: r.Points) -> None:
        super().__init__()
        self.update = update


class ProgressChanged(Message):
    def __init__(self, update: r.Progress) -> None:
        super().__init__()
        self.update = update

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProgressChanged)


class PredictionsReady(Message):
    def __init__(self, update: r.Predictions) -> None:
        super().__init__()
        self.update = update


class RunLog(Message):
    def __init__(self, update: r.LogLine) -> None:
        super().__init__()
        self.update = update


class TrainingFailed(Message):
    def __init__(self, update: r.Failure) -> None:
        super().__init__()
        self.update = update


def wrap(update: Any) -> Message:
    """The message carrying runner update ``update`` (an engine event or a runner value)."""
    match update:
        case ev.Event():
            return TrainingEvent(update)
        case r.Points():
            return LossPoints(update)
        case r.Progress():
            return ProgressChanged(update)
        case r.Predictions():
            return PredictionsReady(update)
        case r.LogLine():
            return RunLog(update)
        case r.Failure():
            return TrainingFailed(update)
    raise TypeError(f"not a training update: {type(update).__name__}")


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
    """A checkpoint was read and evaluated in a worker (tui.controllers.models.LoadedModel)."""

    def __init__(self, loaded: Any) -> None:
        super().__init__()
        self.loaded = loaded


class ResumeReady(Message):
    """The autosave of an interrupted run was read; its dataset is loaded."""

    def __init__(self, path: str, recovery: Any) -> None:
        super().__init__()
        self.path = path
        self.recovery = recovery          # engine.recovery.Recovery


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
class DownloadUpdate(Message):
    """What the download thread reported (tui.controllers.downloads: progress, a log line,
    finished, failed). Progress may collapse into a newer one; the others never do."""

    def __init__(self, update: Any) -> None:
        super().__init__()
        self.update = update

    def can_replace(self, message: Message) -> bool:
        from tui.controllers.downloads import DownloadProgress

        return (isinstance(message, DownloadUpdate) and isinstance(message.update, DownloadProgress)
                and isinstance(self.update, DownloadProgress))
