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
    """Make a message handler exception-safe: an error becomes a notification + log line.

    (An exception escaping a handler would end the app, worker or not.)
    """

    @functools.wraps(handler)
    def wrapper(self: Any, message: Any) -> Any:
        try:
            return handler(self, message)
        except Exception as exc:  # noqa: BLE001
            self.report_error(f"{handler.__name__}: {type(exc).__name__}: {exc}",
                              details="".join(traceback.format_exception(exc)))
            return None

    return wrapper
