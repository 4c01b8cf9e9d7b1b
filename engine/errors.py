"""The engine's errors: one base class, specific subclasses.

Every message says what went wrong, where (file, field) and, where it helps, what to do.
The CLI prints ``str(error)`` as one line; the TUI shows it as a notification.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


# --- paths a user gives ---------------------------------------------------------------------
# Every path from a user (a --data directory, a model file, a --save target, a --to or
# --verify directory, the app's "use a directory") is looked at through these helpers, so an
# OSError (a name too long, a file used as a directory, a directory the user may not read)
# becomes the engine's own error, naming the path and the reason, never a traceback.

_REASONS = {
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a component of the path is not a directory",
    errno.ENAMETOOLONG: "the name is too long for the file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EISDIR: "is a directory",
}
if hasattr(errno, "EDQUOT"):
    _REASONS[errno.EDQUOT] = "disk quota exceeded"


def os_reason(exc: OSError) -> str:
    """A short, lower-case reason for ``exc`` ("permission denied", "the name is too long ...")."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def path_error(path: str | os.PathLike[str], exc: OSError, error: type[TermnistError] = DatasetError,
               doing: str = "") -> TermnistError:
    """``error("<path>: [<doing>: ]<reason>")`` for an OSError met on a user's path."""
    return error(f"{os.fspath(path)}: {doing + ': ' if doing else ''}{os_reason(exc)}")


@contextmanager
def os_errors(path: str | os.PathLike[str], error: type[TermnistError] = DatasetError,
              doing: str = "") -> Iterator[None]:
    """``with os_errors(p, CheckpointError, "cannot save"): ...`` -- an OSError in the block
    becomes ``error`` naming ``p`` and the reason."""
    try:
        yield
    except OSError as exc:
        raise path_error(path, exc, error, doing) from None


def stat_path(path: str | os.PathLike[str]) -> tuple[os.stat_result | None, OSError | None]:
    """``(stat, None)`` when ``path`` is there (symlinks followed), else ``(None, the OSError)``."""
    try:
        return os.stat(path), None
    except OSError as exc:
        return None, exc
    except ValueError as exc:  # an embedded NUL byte
        return None, OSError(errno.EINVAL, f"invalid path ({exc})")


def user_path(path: str | os.PathLike[str], expect: str = "any",
              error: type[TermnistError] = DatasetError, what: str = "") -> Path:
    """A path a user gave, ``~`` expanded, checked before use.

    ``expect``: "dir" (must be an existing directory), "file" (an existing regular file),
    "exists" (either), or "any" (may be missing, but the OS must not refuse the name).
    Raises ``error`` naming the path and the reason; ``what`` ("model", "data directory")
    is said when the path is of the wrong kind.
    """
    text = os.fspath(path)
    if text == "":
        raise error(f"{what or 'path'}: empty path")
    p = Path(text).expanduser()
    st, exc = stat_path(p)
    if exc is not None:
        if exc.errno == errno.ENOENT:
            if expect == "any":
                return p
            if expect in ("dir", "file"):
                raise error(f"{text}: no such {'directory' if expect == 'dir' else 'file'}")
        raise path_error(text, exc, error)
    assert st is not None
    if expect == "dir" and not stat.S_ISDIR(st.st_mode):
        raise error(f"{text}: not a directory{' (the ' + what + ')' if what else ''}")
    if expect == "file" and stat.S_ISDIR(st.st_mode):
        raise error(f"{text}: is a directory, not a {what or 'file'}")
    return p


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def require_zip(path: str | os.PathLike[str], error: type[TermnistError], what: str) -> None:
    """Refuse, naming ``path``, a file that is not a zip archive (what an ``.npz`` is),
    saying what it looks like instead -- before NumPy reads it (whose message would be
    about pickled data). ``what`` is what the file should be ("a termnist checkpoint")."""
    st, exc = stat_path(path)
    if exc is not None:
        raise path_error(path, exc, error)
    assert st is not None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{os.fspath(path)}: not {what}: not an .npz archive (not a regular file)")
    with os_errors(path, error), open(path, "rb") as fh:
        head = fh.read(8)
    if head[:4] in _ZIP_MAGIC:
        return
    if not head:
        looks = "an empty file"
    elif head[:2] == b"\x1f\x8b":
        looks = "a gzip file"
    elif head[:6] == b"\x93NUMPY":
        looks = "a single NumPy .npy array"
    elif head.startswith(b"\x80") or head[:1] in (b"(", b"]", b"}"):
        looks = "apparently a Python pickle, which termnist never loads"
    elif all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        looks = "a text file"
    else:
        looks = f"unknown content starting {head[:4].hex()}"
    raise error(f"{os.fspath(path)}: not {what}: not an .npz archive ({looks})")
