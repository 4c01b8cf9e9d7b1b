"""The app's remembered settings (tui.settings' file), written off the event loop. No Textual."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from tui import settings as store

log = logging.getLogger(__name__)


class SettingsController:
    """``save(data)`` hands a snapshot to a writer thread (the newest wins; one writer at a
    time, so an older snapshot never lands after a newer one); ``now=True`` writes before it
    returns (the app is exiting). ``enabled`` False: nothing is read or written."""

    def __init__(self, *, enabled: bool, directory: str | os.PathLike[str] | None = None) -> None:
        self.enabled = enabled
        self.directory = directory
        self._pending: dict[str, Any] | None = None
        self._lock = threading.Lock()        # one write at a time
        self._mutex = threading.Lock()       # the pending snapshot

    def load(self) -> dict[str, Any]:
        return store.load_settings(self.directory) if self.enabled else {}

    def save(self, data: dict[str, Any], now: bool = False) -> None:
        if not self.enabled:
            return
        with self._mutex:
            self._pending = data
        if now:
            self.write_pending()
        else:
            threading.Thread(target=self.write_pending, name="termnist-settings", daemon=True).start()

    def write_pending(self) -> None:
        """Write the newest snapshot not written yet (any thread)."""
        with self._lock:
            with self._mutex:
                data, self._pending = self._pending, None
            if data is None:
                return
            try:
                store.save_settings(data, self.directory)
            except Exception as exc:  # noqa: BLE001 - settings are a convenience
                log.warning("cannot save settings: %s", exc)
