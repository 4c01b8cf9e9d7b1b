"""The app's recovery slot (engine.recovery): claimed while the app runs, saved at every
epoch end and when the app closes mid-run, cleared when a run ends on purpose. No Textual.

Saves and clears go through one writer thread, in the order they were asked for (a
``clear`` after a run completed never loses to an older autosave still queued); the UI
thread only hands it an immutable snapshot (a Checkpoint copy) and returns. ``save_now``
(quit, hang-up: any thread) first drains what is queued, then writes, before it returns.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class SlotWriter:
    """Runs slot operations one at a time, in order, in a thread of its own; consecutive
    saves collapse into the newest (only the newest state is worth writing)."""

    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self._on_error = on_error
        self._queue: deque[tuple[str, Callable[[], None]]] = deque()
        self._mutex = threading.Lock()        # the queue and the thread handle
        self._io = threading.Lock()           # held while an operation runs
        self._thread: threading.Thread | None = None

    def submit(self, kind: str, op: Callable[[], None]) -> None:
        with self._mutex:
            if kind == "save" and self._queue and self._queue[-1][0] == "save":
                self._queue[-1] = (kind, op)
            else:
                self._queue.append((kind, op))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="termnist-slot", daemon=True)
                self._thread.start()

    def run_now(self, op: Callable[[], None]) -> None:
        """Drain the queue, then run ``op``, in the calling thread."""
        with self._io:
            with self._mutex:
                queued = [q for _, q in self._queue]
                self._queue.clear()
            for q in queued:
                self._run(q)
            op()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far is written (tests, exit)."""
        with self._mutex:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._io:
                with self._mutex:
                    if not self._queue:
                        self._thread = None
                        return
                    _, op = self._queue.popleft()
                self._run(op)

    def _run(self, op: Callable[[], None]) -> None:
        try:
            op()
        except Exception as exc:
            log.warning("recovery slot: %s", exc, exc_info=True)
            if self._on_error is not None:
                self._on_error(f"cannot keep the run for resuming: {exc}")


class RecoveryController:
    """The slot of this app (``enabled`` False: no slot at all, e.g. tests and --no-save)."""

    def __init__(self, *, enabled: bool, directory: str | os.PathLike[str] | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.enabled = enabled
        self.directory: Path | None = Path(directory) if directory is not None else None
        self.exit_reason: str | None = None     # set when the app closes mid-run: keep the slot
        self._saved_on_exit = False
        self._claim: Any = None                 # engine.recovery.SlotClaim
        self.writer = SlotWriter(on_error)

    # -- the slot of this app ---------------------------------------------------------------
    def claim(self) -> str | None:
        """Hold a slot of our own while the app runs: a second termnist (another SSH session)
        gets the next one, so neither overwrites the other's run. Returns a line to log when
        this app got another slot than the first."""
        if not self.enabled:
            return None
        from engine.recovery import claim_slot

        try:
            claim = claim_slot(self.directory)
        except Exception as exc:  # noqa: BLE001 - saving will report its own error
            log.warning("no recovery slot claimed: %s", exc)
            return None
        self._claim = claim
        self.directory = claim.directory
        if claim.directory != claim.base:
            return f"another termnist is running: this one keeps an interrupted run in {claim.directory}"
        return None

    def release(self) -> None:
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.release()

    @property
    def where(self) -> Path:
        from engine.recovery import state_dir

        return self.directory or state_dir()

    # -- reading -------------------------------------------------------------------------
    def load(self) -> tuple[Any, str | None]:
        """Worker: the saved run (engine.recovery.Recovery) or None, and a line to log when it
        was picked up from a slot no running app holds. A damaged slot raises."""
        from engine.recovery import adopt_orphan, load_recovery

        note = None
        if self._claim is not None:
            adopted = adopt_orphan(self._claim)
            if adopted is not None and adopted != self._claim.directory:
                note = f"picked up the interrupted run kept in {adopted}"
        return load_recovery(self.directory), note

    # -- writing -------------------------------------------------------------------------
    def autosave(self, checkpoint: Any, data_dir: str | None, reason: str) -> None:
        """UI thread, at an epoch end: queue a save of ``checkpoint`` (an immutable copy)."""
        if self.enabled:
            self.writer.submit("save", lambda: self._write(checkpoint, data_dir, reason))

    def clear(self) -> None:
        """The run ended on purpose (completed, stopped, diverged) or another run begins."""
        if self.enabled and self.exit_reason is None:
            self.writer.submit("clear", self._clear)

    def keep_on_exit(self, reason: str, snapshot: Callable[[], Any], data_dir: str | None) -> None:
        """The app is closing mid-run (any thread): save the run's last completed epoch once,
        now. ``snapshot()`` gives the checkpoint (None: nothing to keep)."""
        if not self.enabled:
            return
        if self.exit_reason is None:
            self.exit_reason = reason           # from now on the slot is kept, not cleared
        if self._saved_on_exit:
            return
        self._saved_on_exit = True
        try:
            ckpt = snapshot()
            if ckpt is not None:
                self.writer.run_now(lambda: self._write(ckpt, data_dir, reason))
        except Exception as exc:
            log.warning("cannot keep the interrupted run: %s", exc, exc_info=True)

    def _write(self, checkpoint: Any, data_dir: str | None, reason: str) -> None:
        from engine.recovery import save_recovery

        save_recovery(checkpoint, data_dir=data_dir, reason=self.exit_reason or reason,
                      directory=self.directory)

    def _clear(self) -> None:
        from engine.recovery import clear_recovery

        clear_recovery(self.directory)
