"""A run cut short (SSH dropped, terminal closed) saved so the next start can resume it.

One slot in the user data directory (``$TERMNIST_STATE_DIR`` overrides it):
  ``interrupted.npz``   checkpoint of the last completed epoch (weights, optimizer state,
                        RNG state, config, history) -- engine.checkpoint's atomic format
  ``interrupted.json``  what the UI needs besides: its log lines, the data directory,
                        why and when it was saved. Written last: it marks the slot complete.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from engine.errors import CheckpointError

CHECKPOINT_NAME = "interrupted.npz"
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
    """Save the slot atomically (checkpoint first, then the JSON marker). Returns the dir."""
    d = directory or state_dir()
    d.mkdir(parents=True, exist_ok=True)
    info_path = d / INFO_NAME
    if info_path.exists():
        info_path.unlink()  # the old marker must not vouch for a half-replaced checkpoint
    save_checkpoint(d / CHECKPOINT_NAME, ckpt)
    info = {"log": list(log or [])[-2000:], "data_dir": data_dir, "reason": reason, "saved_at": time.time()}
    fd, tmp = tempfile.mkstemp(prefix=f".{INFO_NAME}.", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, info_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return d


def load_recovery(directory: Path | None = None) -> Recovery | None:
    """The saved run, or None when there is none. A damaged slot raises CheckpointError."""
    d = directory or state_dir()
    info_path = d / INFO_NAME
    if not info_path.exists():
        return None
    try:
        info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{info_path}: damaged recovery file ({exc}); remove it to start afresh") from None
    ckpt = load_checkpoint(d / CHECKPOINT_NAME)
    return Recovery(checkpoint=ckpt, log=[str(x) for x in info.get("log", [])],
                    data_dir=info.get("data_dir"), reason=str(info.get("reason", "")),
                    saved_at=float(info.get("saved_at", 0.0)))


def clear_recovery(directory: Path | None = None) -> None:
    d = directory or state_dir()
    for name in (INFO_NAME, CHECKPOINT_NAME):
        try:
            (d / name).unlink()
        except FileNotFoundError:
            pass
