"""Classification metrics on integer label arrays (y_true, y_pred: (N,) ints in [0, C)).

Empty inputs and empty classes give NaN rather than warnings or errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _labels(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 1 or t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got {t.shape}, {p.shape}")
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.size and a.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer labels, got {a.dtype}")
    return t.astype(np.intp, copy=False), p.astype(np.intp, copy=False)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of positions where y_pred == y_true; NaN for empty input."""
    t, p = _labels(y_true, y_pred)
    if t.size == 0:
        return float("nan")
    return float(np.count_nonzero(t == p)) / t.size


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """(C, C) int64 counts: entry [i, j] = number of examples of true class i predicted as j.

    ``n_classes`` defaults to 1 + the largest label seen (0 for empty input).
    """
    t, p = _labels(y_true, y_pred)
    if n_classes is None:
        n_classes = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    n_classes = int(n_classes)
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    counts = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return counts.astype(np.int64).reshape(n_classes, n_classes)


def per_class_accuracy_from_confusion(cm: np.ndarray) -> np.ndarray:
    """(C,) float: diagonal / row sums (recall per true class); NaN for classes with no examples."""
    cm = np.asarray(cm)
    totals = cm.sum(axis=1).astype(np.float64)
    out = np.full(cm.shape[0], np.nan)
    np.divide(np.diag(cm).astype(np.float64), totals, out=out, where=totals > 0)
    return out


def per_class_accuracy(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """(C,) float: for each true class, the fraction predicted correctly; NaN if it has none."""
    return per_class_accuracy_from_confusion(confusion_matrix(y_true, y_pred, n_classes))
