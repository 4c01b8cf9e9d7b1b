"""Saving and loading models for the app (no Textual): the work its save/load workers do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.runner import Predictions, evaluate_checkpoint


@dataclass(frozen=True)
class LoadedModel:
    path: str
    checkpoint: Any               # engine.checkpoint.Checkpoint
    dataset: Any                  # the dataset it was trained on (its test set evaluated it)
    predictions: Predictions | None
    test_acc: float | None


class ModelDataMissing(Exception):
    """The model loaded, but the dataset it names was not found (``error`` says where
    termnist looked)."""

    def __init__(self, name: str, error: Any) -> None:
        super().__init__(str(error))
        self.name = name
        self.error = error


def save_model(path: str, model: Any) -> str:
    """Write ``model`` (a session -- a consistent snapshot of it -- or a Checkpoint)."""
    from engine.checkpoint import save_checkpoint

    ckpt = model.checkpoint() if hasattr(model, "checkpoint") else model
    return str(save_checkpoint(path, ckpt))


def load_model(path: str, get_dataset: Callable[[str], Any], preview_limit: int) -> LoadedModel:
    """Read a checkpoint and evaluate it on its dataset's test set (a worker thread). Raises
    the engine's errors (DatasetNotFoundError when its dataset is missing)."""
    from threadpoolctl import threadpool_limits

    from engine.checkpoint import load_checkpoint

    from engine.errors import DatasetNotFoundError

    ckpt = load_checkpoint(path)
    try:
        ds = get_dataset(ckpt.config.dataset)
    except DatasetNotFoundError as exc:
        raise ModelDataMissing(ckpt.config.dataset, exc) from exc
    with threadpool_limits(limits=1):
        preds, test_acc = evaluate_checkpoint(ckpt, ds, preview_limit, path)
    return LoadedModel(path, ckpt, ds, preds, test_acc)


def save_path_for(dataset: str | None, accuracy: float | None) -> str:
    """Save's suggested file name: dataset and accuracy, e.g. termnist-mnist-98.1.npz."""
    tag = f"{accuracy * 100:.1f}" if accuracy is not None else "untested"
    return f"termnist-{dataset or 'model'}-{tag}.npz"


def newest_npz(directory: Path) -> str | None:
    """Load's suggestion: the newest .npz in ``directory``."""
    try:
        files = sorted(directory.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    return files[0].name if files else None
