"""A run cut short (SSH dropped, terminal closed) saved so the next start can resume it.

One slot in the user data directory (``$TERMNIST_STATE_DIR`` overrides it):
  ``interrupted.npz`` / ``interrupted-b.npz``
                        checkpoint of the last completed epoch (weights, optimizer state,
                        RNG state, config, history) -- engine.checkpoint's atomic format.
                        Saves alternate between the two names (both stay on disk).
  ``interrupted.json``  what the UI needs besides: its log lines, the data directory,
                        why and when it was saved, and which of the two checkpoints is
                        current. Replaced atomically after its checkpoint is complete, so a
                        crash (even SIGKILL) at any moment of a save leaves the previous
                        slot or the new one, never none.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
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
    log: list[str] = field(default_factory=list)
    data_dir: str | None = None
    reason: str = ""
    saved_at: float = 0.0

    def describe(self) -> str:
        meta = self.checkpoint.metadata
        cfg = self.checkpoint.config
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at)) if self.saved_at else "?"
        return (f"{meta.get('dataset_title', cfg.dataset)}: {meta.get('epochs_done', 0)}/{cfg.epochs} epochs of"
                f" {cfg.describe()} (saved {when}, {self.reason or 'interrupted'})")


def state_dir() -> Path:
    env = os.environ.get("TERMNIST_STATE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("termnist"))


def save_recovery(ckpt: Checkpoint, *, log: list[str] | None = None, data_dir: str | None = None,
                  reason: str = "", directory: Path | None = None) -> Path:
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
    info = {"log": list(log or [])[-2000:], "data_dir": data_dir, "reason": reason,
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
            raise CheckpointError(f"damaged recovery slot: {exc}; remove {d / 'interrupted'}.* to start afresh") from None
        return Recovery(checkpoint=ckpt, log=[str(x) for x in info.get("log", [])],
                        data_dir=info.get("data_dir"), reason=str(info.get("reason", "")),
                        saved_at=float(info.get("saved_at", 0.0)))
    return None  # unreachable: the last attempt returns or raises


def clear_recovery(directory: Path | None = None) -> None:
    d = directory or state_dir()
    for name in (INFO_NAME, *CHECKPOINT_NAMES):   # the marker first: never a marker without its file
        try:
            (d / name).unlink()
        except FileNotFoundError:
            pass
