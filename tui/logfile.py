"""The log file: where errors go when nobody is watching the terminal (an SSH session that
dropped, a run under tmux).

``setup_logging()`` sends the ``engine`` and ``tui`` loggers (every module's
``logging.getLogger(__name__)``) to a rotating file: 1 MB, then ``termnist.log.1`` ..
``.3``. Each record has a timestamp, the level, the logger name, the process id and the
message, with the traceback when there is one. Where:

1. ``path`` (``termnist --log-file PATH``, also after a subcommand),
2. else ``$TERMNIST_LOG_DIR/termnist.log`` (tests point it at a temporary directory),
3. else ``platformdirs.user_log_dir("termnist")/termnist.log``
   (``~/.local/state/termnist/log/termnist.log`` on Linux).

A log file that cannot be opened never stops termnist: one warning line on stderr, and the
records are dropped (never written over the app's screen).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import TextIO

ENV_DIR = "TERMNIST_LOG_DIR"
FILENAME = "termnist.log"
MAX_BYTES = 1_000_000
BACKUP_COUNT = 3
LOGGERS = ("engine", "tui", "termnist")   # termnist.internal: exceptions the app caught (tui.guard)
FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(process)d]: %(message)s"

_MARK = "_termnist_handler"      # set on the handlers this module installs (replaced on a re-setup)


def log_dir() -> Path:
    """The directory of the default log file: $TERMNIST_LOG_DIR, else the platform's."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_log_dir("termnist", appauthor=False))


def default_log_path() -> Path:
    return log_dir() / FILENAME


def setup_logging(path: str | os.PathLike[str] | None = None, *, level: int = logging.INFO,
                  stderr: TextIO | None = None) -> Path | None:
    """Send the ``engine`` and ``tui`` loggers to the log file; returns its path, or None when
    it cannot be opened (after one warning line on ``stderr``). Calling it again replaces the
    handler it installed before (so tests can point it elsewhere)."""
    target = Path(path).expanduser() if path is not None else default_log_path()
    handler: logging.Handler
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8")
    except (OSError, ValueError) as exc:
        err = stderr if stderr is not None else sys.stderr
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        try:
            print(f"termnist: warning: cannot open the log file {target}: {reason}; not logging",
                  file=err, flush=True)
        except (OSError, ValueError):
            pass
        # Records still need a handler: without one, logging's last resort prints warnings
        # and errors to stderr -- over the app's screen.
        handler = logging.NullHandler()
        target_or_none: Path | None = None
    else:
        handler.setFormatter(logging.Formatter(FORMAT))
        target_or_none = target
    setattr(handler, _MARK, True)
    handler.setLevel(level)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        _remove_ours(logger)
        logger.addHandler(handler)
        logger.setLevel(level)
    return target_or_none


def teardown_logging() -> None:
    """Remove (and close) the handlers ``setup_logging`` installed."""
    for name in LOGGERS:
        _remove_ours(logging.getLogger(name))


def _remove_ours(logger: logging.Logger) -> None:
    for old in list(logger.handlers):
        if getattr(old, _MARK, False):
            logger.removeHandler(old)
            old.close()
