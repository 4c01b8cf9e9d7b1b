"""SIGHUP (the SSH connection or terminal went away) and SIGTERM: keep the run, then exit.

Textual installs no handler for them: by default the process would die on the spot, with
nothing saved (beyond the last epoch's autosave) and a live terminal left raw. No Textual
here: the app passes what to do as callables.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: After the signal: how long the normal shutdown may take before os._exit (a vanished
#: terminal can leave Textual's output thread dead and its queue blocking).
EXIT_GRACE_S = 3.0
SIGNALS = (signal.SIGHUP, signal.SIGTERM)
REASONS = {"SIGHUP": "connection lost (SIGHUP)", "SIGTERM": "terminated (SIGTERM)"}


class HangupHandler:
    """``keep(reason)`` saves the run (any thread), ``abandon()`` ends it, ``exit(code)``
    asks the app to exit (it is called from a thread: it must hand over to the UI thread)."""

    def __init__(self, keep: Callable[[str], None], abandon: Callable[[], None],
                 exit: Callable[[int], None], grace_s: float = EXIT_GRACE_S) -> None:  # noqa: A002
        self._keep = keep
        self._abandon = abandon
        self._exit = exit
        self.grace_s = grace_s
        self._signalled = False
        self._old: dict[int, Any] = {}
        self._tty_fds: tuple[int, ...] = ()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._tty_fds = tuple(fd for fd in (0, 1, 2) if _isatty(fd))
        for sig in SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._on_signal)
            except (ValueError, OSError):
                pass

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        while self._old:
            sig, handler = self._old.popitem()
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError, TypeError):
                pass

    def _on_signal(self, signum: int, frame: Any) -> None:
        """The handler runs in the main thread between any two bytecodes (even while it is
        blocked), so it only hands the work to a thread."""
        if self._signalled:
            return
        self._signalled = True
        threading.Thread(target=self.shutdown, args=(signum,), name="termnist-signal", daemon=True).start()

    def shutdown(self, signum: int, watchdog: bool = True) -> None:
        """Save the run, stop it, detach from a vanished terminal, then ask the app to exit
        (status 128 + signal); if that has not ended the process within ``grace_s``, end it
        anyway (the slot and settings are on disk by then)."""
        name = signal.Signals(signum).name
        code = 128 + int(signum)
        log.warning("%s: keeping the run and exiting", name)
        if watchdog:
            timer = threading.Timer(self.grace_s, os._exit, (code,))
            timer.daemon = True
            timer.start()
        self._keep(REASONS.get(name, name))
        self._abandon()
        if any(not _isatty(fd) for fd in self._tty_fds):
            detach_from_terminal()
        try:
            self._exit(code)
        except Exception:  # noqa: BLE001 - the app is already closing
            pass


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def detach_from_terminal() -> None:
    """The terminal is gone (a hung-up tty fails every write with EIO): point stdin, stdout
    and stderr at /dev/null so the shutdown's writes succeed and input reads end."""
    try:
        fd = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    for target in (0, 1, 2):
        try:
            os.dup2(fd, target)
        except OSError:
            pass
    if fd > 2:
        os.close(fd)
