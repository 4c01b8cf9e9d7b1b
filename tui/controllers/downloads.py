"""Dataset downloads for the app, in a thread of their own (no Textual).

engine.download does the work (mirrors, resuming ``.part`` files, verification); this runs
it in a daemon thread and reports through ``post`` -- a callable the app turns into a
message -- with the plain values below. ``cancel()`` stops it at the next chunk, keeping the
``.part`` for resuming; a stalled connection (a socket read blocked until its timeout) never
holds up the app's exit, because nothing waits for the thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CANCELLED = "download cancelled; the partial file is kept, so Download resumes it"


@dataclass(frozen=True)
class DownloadProgress:
    info: Any                     # tui.data_status.DownloadProgressInfo


@dataclass(frozen=True)
class DownloadLog:
    name: str
    line: str                     # a mirror failed and why, a resume ...


@dataclass(frozen=True)
class DownloadFinished:
    name: str
    path: str                     # every file downloaded and verified there


@dataclass(frozen=True)
class DownloadFailed:
    name: str
    message: str
    cancelled: bool = False


DownloadUpdate = DownloadProgress | DownloadLog | DownloadFinished | DownloadFailed


class DownloadController:
    """One download at a time. State (``name``, ``info``, ``lines``) is the UI thread's:
    it changes in ``start``/``cancel``/``over`` and ``noted``, which the app calls there."""

    def __init__(self, post: Callable[[DownloadUpdate], object], *, mirrors: tuple[str, ...] = (),
                 timeout: float = 30.0) -> None:
        self.post = post
        self.mirrors = mirrors
        self.timeout = timeout
        self.name: str | None = None
        self.info: Any = None                 # latest DownloadProgressInfo
        self.lines: list[str] = []
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def downloading(self) -> bool:
        return self._cancel is not None

    def start(self, name: str, to: Path | None) -> None:
        cancel = threading.Event()
        self.name, self._cancel, self.info, self.lines = name, cancel, None, []
        previous = self._thread
        self._thread = threading.Thread(target=self._run, args=(name, to, cancel, previous),
                                        name=f"termnist-download-{name}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop the running download (any thread); the app hears DownloadFailed(cancelled)."""
        cancel = self._cancel
        if cancel is not None and not cancel.is_set():
            cancel.set()
            self.post(DownloadFailed(self.name or "", CANCELLED, cancelled=True))

    def over(self) -> None:
        self.name, self._cancel, self.info = None, None, None

    def _run(self, name: str, to: Path | None, cancel: threading.Event,
             previous: threading.Thread | None) -> None:
        from engine.datasets import IDX_FILES
        from engine.download import DownloadCancelled, download
        from tui.data_status import DownloadMeter

        def post(update: DownloadUpdate) -> None:
            if not cancel.is_set():
                self.post(update)

        # A cancelled download's thread may still be finishing its last read: never let two
        # threads write the same .part file.
        while previous is not None and previous.is_alive() and not cancel.is_set():
            previous.join(0.1)
        if cancel.is_set():
            return
        meter = DownloadMeter(name, IDX_FILES)

        def progress(file: str, done: int, total: int | None) -> None:
            info = meter.update(file, done, total)
            if info is not None:
                post(DownloadProgress(info))

        try:
            path = download(name, to=to, mirrors=self.mirrors, progress=progress, cancel=cancel,
                            timeout=self.timeout, log=lambda line: post(DownloadLog(name, line)))
        except DownloadCancelled:
            return                              # cancel() has told the app already
        except Exception as exc:
            log.warning("download of %s failed: %s", name, exc, exc_info=True)
            post(DownloadFailed(name, f"download failed: {exc}"))
            return
        if meter.latest is not None:
            post(DownloadProgress(meter.latest))     # the final position
        post(DownloadFinished(name, str(path)))
