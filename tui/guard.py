"""Message handlers that cannot kill the app.

An exception escaping a Textual message handler ends the app, even with a worker's
exit_on_error=False; ``@guarded`` turns it into the app's error report (a notification and
a log line) instead.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import Any


def guarded(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Make a message handler (of the app or of a widget) exception-safe: an error becomes
    the app's error report (a notification + log line).

    (An exception escaping a handler would end the app, worker or not.)
    """

    @functools.wraps(handler)
    def wrapper(self: Any, message: Any) -> Any:
        try:
            return handler(self, message)
        except Exception as exc:  # noqa: BLE001
            _report(self, f"{handler.__name__}: {type(exc).__name__}: {exc}",
                    "".join(traceback.format_exception(exc)))
            return None

    return wrapper


def _report(owner: Any, text: str, details: str) -> None:
    """The app's ``report_error`` (a widget's owner app's, or its own), else a notification."""
    targets: tuple[Any, ...]
    try:
        targets = (owner, getattr(owner, "app", None))
    except Exception:  # noqa: BLE001 - no active app
        targets = (owner,)
    for target in targets:
        report = getattr(target, "report_error", None)
        if callable(report):
            report(text, details=details)
            return
    try:
        owner.notify(text, severity="error")
    except Exception:  # noqa: BLE001 - reporting must not fail
        pass
