"""A run cut short (SSH dropped, terminal closed) saved so the next start can resume it.

Slots live in the user data directory (``$TERMNIST_STATE_DIR`` overrides it): the directory
itself is slot 0, ``slot-1``, ``slot-2``... are for more termnist apps running at the same
time. A running app holds its slot (``claim_slot``: an flock on ``slot.lock``, released when
the process ends, however it ends), so two apps never overwrite each other's run; a run left
in a slot that no app holds is moved into the next app's slot (``adopt_orphan``) and offered.

Each slot holds:
  ``interrupted.npz`` / ``interrupted-b.npz``
                        checkpoint of the last completed epoch (weights, optimizer state,
                        RNG state, config, history) -- engine.checkpoint's atomic format.
                        Saves alternate between the two names (both stay on disk).
  ``interrupted.json``  what the UI needs besides: the data directory, why and when it
                        was saved, and which of the two checkpoints is current. The run's
                        log is not kept as text: the UI renders it from the checkpoint's
                        structured history (metadata["history"], one entry per epoch).
                        Replaced atomically after its checkpoint is complete, so a
                        crash (even SIGKILL) at any moment of a save leaves the previous
                        slot or the new one, never none.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write
from engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from engine.errors import CheckpointError

CHECKPOINT_NAME = "interrupted.npz"
ALT_CHECKPOINT_NAME = "interrupted-b.npz"
CHECKPOINT_NAMES = (CHECKPOINT_NAME, ALT_CHECKPOINT_NAME)
INFO_NAME = "interrupted.json"


@dataclass
class Recovery:
    checkpoint: Checkpoint
    data_dir: str | None = None
    reason: str = ""
    saved_at: float = 0.0

    def describe(self) -> str:
        meta = self.checkpoint.metadata
        cfg = self.checkpoint.config
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at)) if self.saved_at else "?"
        return (f"{meta.get('dataset_title', cfg.dataset)}: {meta.get('epochs_done', 0)}/{cfg.epochs} epochs of"
                f" {cfg.describe()} (saved {when}, {self.reason or 'interrupted'})")


SLOT_LOCK = "slot.lock"
MAX_SLOTS = 16


class SlotClaim:
    """This process's slot, held until ``release()`` or the end of the process."""

    def __init__(self, directory: Path, base: Path, fd: int | None) -> None:
        self.directory = directory
        self.base = base
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)          # closing the descriptor drops the flock


def slot_dirs(base: Path) -> list[Path]:
    """Slot 0 (the base directory itself), then slot-1 ... slot-(MAX_SLOTS-1)."""
    return [base, *(base / f"slot-{i}" for i in range(1, MAX_SLOTS))]


def _try_lock(d: Path) -> int | None:
    """An flock on ``d``'s slot.lock (creating it), or None when another process holds it."""
    import fcntl

    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / SLOT_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def claim_slot(base: Path | None = None) -> SlotClaim:
    """The first slot under ``base`` that no other running termnist holds, held by this
    process from now on. Without flock (not POSIX) or a writable directory: slot 0, unheld
    (saving there reports its own error if the directory is not writable)."""
    base = base or state_dir()
    if importlib.util.find_spec("fcntl") is None:        # not POSIX: no locks, slot 0
        return SlotClaim(base, base, None)
    try:
        for d in slot_dirs(base):
            fd = _try_lock(d)
            if fd is not None:
                return SlotClaim(d, base, fd)
    except OSError:
        return SlotClaim(base, base, None)
    return SlotClaim(base / f"slot-pid{os.getpid()}", base, None)    # MAX_SLOTS apps at once


def _unheld_runs(base: Path, skip: Path | None = None) -> list[tuple[float, Path, int | None]]:
    """(saved_at, slot, fd) of every run saved under ``base`` that no running app holds,
    oldest first, each slot now locked by us (fd None where there are no locks). The caller
    closes the fds."""
    runs: list[tuple[float, Path, int | None]] = []
    for d in slot_dirs(base):
        if d == skip or not has_recovery(d):
            continue
        try:
            fd = _try_lock(d)
        except (OSError, ImportError):
            fd = None                         # no locks here: nobody can be holding it
        else:
            if fd is None:
                continue                      # another running app's slot: not ours to take
        try:
            saved_at = float(json.loads((d / INFO_NAME).read_text(encoding="utf-8")).get("saved_at", 0))
        except (OSError, ValueError, AttributeError, TypeError):
            saved_at = 0.0
        runs.append((saved_at, d, fd))
    runs.sort(key=lambda run: run[0])
    return runs


def _close(runs: list[tuple[float, Path, int | None]]) -> None:
    for _, _, fd in runs:
        if fd is not None:
            os.close(fd)


def adopt_orphan(claim: SlotClaim) -> Path | None:
    """If ``claim``'s slot is empty: move the newest run saved in a slot no running app holds
    into it (its app ended without resuming it). Returns the slot it came from, or None.

    Crash-safe: the checkpoint files are hard-linked in first, then the marker is moved
    (the step that hands the run over), then the old files go. At every moment one of the
    two slots holds the whole run.
    """
    if not claim.held or has_recovery(claim.directory):
        return None
    runs = _unheld_runs(claim.base, skip=claim.directory)
    try:
        if not runs:
            return None
        source = runs[-1][1]
        for name in CHECKPOINT_NAMES:
            src, dst = source / name, claim.directory / name
            if src.exists():
                dst.unlink(missing_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    import shutil

                    shutil.copy2(src, dst)
        os.replace(source / INFO_NAME, claim.directory / INFO_NAME)
        for name in CHECKPOINT_NAMES:
            (source / name).unlink(missing_ok=True)
        return source
    except OSError:
        return None
    finally:
        _close(runs)


def resumable(base: Path | None = None) -> Path | None:
    """The newest slot under ``base`` holding a run that no running app holds (what
    ``termnist --resume`` will find), or None."""
    runs = _unheld_runs(base or state_dir())
    _close(runs)
    return runs[-1][1] if runs else None


def state_dir() -> Path:
    env = os.environ.get("TERMNIST_STATE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("termnist"))


def save_recovery(ckpt: Checkpoint, *, data_dir: str | None = None, reason: str = "",
                  directory: Path | None = None) -> Path:
    """Save the slot atomically. Returns the dir.

    The checkpoint goes to whichever of the two names the marker does not point at, then
    the marker is replaced (``os.replace``) to point at it: at every instant the marker
    names a complete checkpoint.
    """
    d = directory or state_dir()
    d.mkdir(parents=True, exist_ok=True)
    info_path = d / INFO_NAME
    current = _current_checkpoint_name(info_path)
    name = ALT_CHECKPOINT_NAME if current == CHECKPOINT_NAME else CHECKPOINT_NAME
    save_checkpoint(d / name, ckpt)
    info = {"data_dir": data_dir, "reason": reason,
            "saved_at": time.time(), "checkpoint": name}
    with atomic_write(info_path, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    # The other checkpoint stays (the next save replaces it): a reader that has just read
    # the old marker still finds a complete file under the name it points at.
    return d


def _current_checkpoint_name(info_path: Path) -> str | None:
    """The checkpoint file the marker points at (None without a readable marker)."""
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = info.get("checkpoint", CHECKPOINT_NAME) if isinstance(info, dict) else None
    return name if name in CHECKPOINT_NAMES else None


def has_recovery(directory: Path | None = None) -> bool:
    """Cheap check: is a slot saved (its marker present)? Does not validate it."""
    return ((directory or state_dir()) / INFO_NAME).exists()


def load_recovery(directory: Path | None = None) -> Recovery | None:
    """The saved run, or None when there is none. A damaged slot raises CheckpointError.

    Safe while another process (or thread) saves the slot: a save that switches checkpoint
    files between our reading the marker and the file is noticed, and read again.
    """
    d = directory or state_dir()
    info_path = d / INFO_NAME
    for attempt in range(3):
        try:
            info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{info_path}: damaged recovery file ({exc}); remove it to start afresh") from None
        if not isinstance(info, dict):
            raise CheckpointError(f"{info_path}: damaged recovery file (not a JSON object); remove it to start afresh")
        name = info.get("checkpoint", CHECKPOINT_NAME)
        if name not in CHECKPOINT_NAMES:
            raise CheckpointError(f"{info_path}: damaged recovery file (names {name!r}); remove it to start afresh")
        try:
            ckpt = load_checkpoint(d / name)
        except CheckpointError as exc:
            if attempt < 2 and _current_checkpoint_name(info_path) != name:
                continue                     # saved (or cleared) meanwhile: read the new marker
            raise CheckpointError(f"damaged recovery slot: {exc}; remove {d / 'interrupted'}.* "
                                  "to start afresh") from None
        data_dir = info.get("data_dir")
        return Recovery(checkpoint=ckpt, data_dir=data_dir if isinstance(data_dir, str) else None,
                        reason=str(info.get("reason", "")), saved_at=float(info.get("saved_at", 0.0)))
    return None  # unreachable: the last attempt returns or raises


def clear_recovery(directory: Path | None = None) -> None:
    d = directory or state_dir()
    for name in (INFO_NAME, *CHECKPOINT_NAMES):   # the marker first: never a marker without its file
        try:
            (d / name).unlink()
        except FileNotFoundError:
            pass
