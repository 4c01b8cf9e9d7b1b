"""The worst mistakes: wrong predictions ranked by the confidence of the (wrong) guess."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Mistake:
    index: int                              # position in the test set
    true: int
    pred: int
    confidence: float                       # probability of ``pred``
    top3: tuple[tuple[int, float], ...]     # (class, probability), most probable first
    probs: tuple[float, ...]                # all C probabilities

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "true": self.true, "pred": self.pred, "confidence": self.confidence,
                "top3": [[c, p] for c, p in self.top3], "probs": list(self.probs)}


def worst_mistakes(probs: Any, y_true: Any, n: int = 10, true_class: int | None = None,
                   pred_class: int | None = None) -> list[Mistake]:
    """The ``n`` wrong predictions with the highest confidence, optionally only those of true class
    ``true_class`` and/or predicted class ``pred_class``. ``probs`` (N, C), rows summing to 1
    (``MLP.predict_proba``); ``y_true`` (N,) ints. Ties keep the lower index first."""
    p = np.asarray(probs)
    y = np.asarray(y_true).astype(np.intp, copy=False)
    if p.ndim != 2 or y.shape != (p.shape[0],):
        raise ValueError(f"probs must be (N, C) and y_true (N,), got {p.shape} and {y.shape}")
    pred = p.argmax(axis=1)
    keep = pred != y
    if true_class is not None:
        keep &= y == true_class
    if pred_class is not None:
        keep &= pred == pred_class
    idx = np.flatnonzero(keep)
    conf = p[idx, pred[idx]]
    order = idx[np.argsort(-conf, kind="stable")][: max(int(n), 0)]
    out = []
    for i in order:
        row = p[i].astype(np.float64)
        top = np.argsort(-row, kind="stable")[:3]
        out.append(Mistake(int(i), int(y[i]), int(pred[i]), float(row[pred[i]]),
                           tuple((int(c), float(row[c])) for c in top), tuple(float(v) for v in row)))
    return out
