"""Message handlers that cannot kill the app -- and cannot hide a bug.

An exception escaping a Textual message handler ends the app, even with a worker's
exit_on_error=False; ``@guarded`` turns it into the app's error report (a notification and
a log line) instead. Every exception it catches is also logged, with its traceback, on the
``termnist.internal`` logger: the log file keeps it, and the tests fail on it unless a test
says it expects one (tests/tui/conftest.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

#: Exceptions that should never happen: a handler's, an unexpected error ending a run.
internal = logging.getLogger("termnist.internal")


def guarded(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Make a message handler (of the app, of a widget, or of a presenter with a ``host``) or a
    screen's result callback exception-safe: an error becomes the app's error report (a
    notification + log line)."""

    @functools.wraps(handler)
    def wrapper(self: Any, message: Any) -> Any:
        if _closing(self):
            return None          # the app is shutting down: its widgets are going, not worth drawing
        try:
            return handler(self, message)
        except Exception as exc:  # noqa: BLE001
            internal.error("%s failed", handler.__qualname__, exc_info=exc)
            _report(self, f"{handler.__name__}: {type(exc).__name__}: {exc}")
            return None

    return wrapper


def _closing(owner: Any) -> bool:
    """The owner's app has begun to shut down (Textual's ``is_running`` turns False before it
    removes the screens; messages still queued then would find no widgets)."""
    try:
        app = owner if hasattr(owner, "screen_stack") else getattr(owner, "host", None) or owner.app
        return not app.is_running
    except Exception:  # noqa: BLE001 - no active app: not closing, as far as we can tell
        return False


def _report(owner: Any, text: str) -> None:
    """The app's ``report_error`` (a widget's owner app's, or its own), else a notification."""
    targets: tuple[Any, ...]
    try:
        targets = (owner, getattr(owner, "host", None), getattr(owner, "app", None))
    except Exception:  # noqa: BLE001 - no active app
        targets = (owner, getattr(owner, "host", None))
    for target in targets:
        report = getattr(target, "report_error", None)
        if callable(report):
            report(text)
            return
    try:
        owner.notify(text, severity="error")
    except Exception:  # noqa: BLE001 - reporting must not fail
        pass
