"""The engine's errors: one base class, specific subclasses.

Every message says what went wrong, where (file, field) and, where it helps, what to do.
The CLI prints ``str(error)`` as one line; the TUI shows it as a notification.
"""

from __future__ import annotations


class TermnistError(Exception):
    """Base class of every error the engine raises on purpose."""


class IDXFormatError(TermnistError):
    """An IDX file is malformed: bad magic, bad sizes, truncated payload, bad gzip."""


class DatasetError(TermnistError):
    """A dataset cannot be found or its files disagree (e.g. image and label counts)."""


class DatasetNotFoundError(DatasetError):
    """No copy of the dataset was found; ``searched`` lists the places tried."""

    def __init__(self, message: str, searched: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.searched = tuple(searched)


class CheckpointError(TermnistError):
    """A checkpoint file cannot be read or does not describe a valid model."""


class ConfigError(TermnistError):
    """A training setting is invalid. ``field`` names the offending setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class DownloadError(TermnistError):
    """A download failed on every mirror, or a file did not verify."""
