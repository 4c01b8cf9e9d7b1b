"""Confusion matrix views: counts, row-normalised shares, per-class accuracy, the most confused
pairs, and the test images behind one cell. Built on :mod:`engine.metrics`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.metrics import confusion_matrix, per_class_accuracy_from_confusion


@dataclass(frozen=True)
class ConfusedPair:
    """``count`` images of class ``true`` predicted as ``pred``; ``share`` of class ``true``."""

    true: int
    pred: int
    count: int
    share: float


@dataclass(frozen=True)
class ConfusionView:
    counts: np.ndarray          # (C, C) int64, [true, predicted]
    normalised: np.ndarray      # (C, C) float64, rows sum to 1 (NaN rows for absent classes)
    per_class: np.ndarray       # (C,) float64 recall per true class (NaN when absent)
    accuracy: float             # overall (NaN when empty)
    pairs: tuple[ConfusedPair, ...]   # most confused off-diagonal cells, largest count first
    class_names: tuple[str, ...]


def class_names_for(dataset: str | None, n_classes: int) -> tuple[str, ...]:
    """Display names of the classes of a registered dataset (Fashion-MNIST: "T-shirt/top" ...);
    "0".."C-1" for an unknown dataset or one whose class count differs."""
    from engine.datasets import DATASETS

    spec = DATASETS.get(dataset or "")
    names = tuple(spec.class_names) if spec is not None else ()
    if len(names) == n_classes:
        return names
    return tuple(str(i) for i in range(n_classes))


def row_normalised(counts: np.ndarray) -> np.ndarray:
    """(C, C) float64: each row divided by its sum (NaN rows where a class has no examples)."""
    counts = np.asarray(counts)
    totals = counts.sum(axis=1, keepdims=True).astype(np.float64)
    out = np.full(counts.shape, np.nan)
    np.divide(counts, totals, out=out, where=totals > 0)
    return out


def most_confused(counts: np.ndarray, top: int = 5) -> tuple[ConfusedPair, ...]:
    """The ``top`` off-diagonal cells with the largest counts (zero cells left out); ties in
    (true, pred) order."""
    counts = np.asarray(counts)
    off = counts.astype(np.int64, copy=True)
    np.fill_diagonal(off, 0)
    flat = off.ravel()
    order = np.argsort(-flat, kind="stable")[: max(int(top), 0)]
    totals = counts.sum(axis=1)
    n = counts.shape[1]
    pairs = []
    for k in order:
        if flat[k] <= 0:
            break
        t, p = divmod(int(k), n)
        pairs.append(ConfusedPair(t, p, int(flat[k]), float(flat[k]) / float(totals[t])))
    return tuple(pairs)


def confusion(y_true: Any, y_pred: Any, n_classes: int, class_names: Sequence[str] | None = None,
              top: int = 5) -> ConfusionView:
    """Every confusion view of predictions ``y_pred`` against labels ``y_true`` ((N,) ints)."""
    counts = confusion_matrix(y_true, y_pred, n_classes)
    total = int(counts.sum())
    acc = float(np.trace(counts)) / total if total else float("nan")
    names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(n_classes))
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names for {n_classes} classes")
    return ConfusionView(counts, row_normalised(counts), per_class_accuracy_from_confusion(counts), acc,
                         most_confused(counts, top), names)


def cell_indices(y_true: Any, y_pred: Any, true: int, pred: int) -> np.ndarray:
    """Indices (ascending, intp) of the images of class ``true`` predicted as ``pred``."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    return np.flatnonzero((t == true) & (p == pred))
