"""Atomic file writes: the target holds the old content or the new, never a mix.

Write to a temporary file in the target's directory, flush and fsync it, ``os.replace``
it over the target, then fsync the directory so the rename itself survives a power cut.

Like ``cp``: a new file gets the mode the umask allows (0666 & ~umask), a file replaced
keeps its mode, and a symbolic link is written through (the file it points to is replaced,
atomically, in that file's directory; the link stays a link).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """``with atomic_write(p) as fh: fh.write(...)`` -- replaces ``p`` only if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed and the
    target is untouched. OSError from the file system propagates to the caller.
    """
    target = write_target(path)
    directory = target.parent
    perms = _mode_for(target)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".tmp", dir=directory)
    try:
        if hasattr(os, "fchmod"):   # (not on Windows before Python 3.13)
            os.fchmod(fd, perms)
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def temp_prefix(target: Path) -> str:
    """A temporary file's name prefix beside ``target``: short enough that a target name of
    the file system's full length (255 bytes) still leaves room for the random part."""
    return f".{target.name[:64]}."


def write_target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or, when it is a symbolic link
    (even a dangling one), the file the link points to."""
    p = Path(path)
    if p.is_symlink():
        return Path(os.path.realpath(p))
    return p


def _mode_for(target: Path) -> int:
    """Permission bits for the new content of ``target``: its own when it exists, else what
    the umask lets a new file have."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask (read without changing it where /proc tells it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # not thread-safe for that instant, hence /proc first
    os.umask(mask)
    return mask


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable (best effort: not every OS/file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
