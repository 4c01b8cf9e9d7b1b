"""Writing a confusion matrix to a file: CSV (a header row of predicted classes, one row per
true class, then its accuracy) or JSON (counts, names, per-class accuracy, pairs), chosen by
the file's suffix, written atomically (engine.atomic: nothing half-written on an error)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from engine.errors import TermnistError, os_errors

FORMATS = (".csv", ".json")


class ExportError(TermnistError):
    """A file cannot be written (bad suffix, missing directory, permissions ...)."""


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def confusion_csv(view: Any) -> str:
    """``view`` (engine.insight.confusion.ConfusionView) as CSV text: ``true\\pred`` header
    with the class names, one row of counts per true class, its total and its accuracy."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = list(view.class_names)
    w.writerow(["true\\pred", *names, "total", "accuracy"])
    for i, name in enumerate(names):
        row = [int(v) for v in view.counts[i]]
        acc = view.per_class[i]
        w.writerow([name, *row, sum(row), "" if math.isnan(acc) else f"{acc:.6f}"])
    return buf.getvalue()


def confusion_json(view: Any, **extra: Any) -> dict[str, Any]:
    """``view`` as a JSON-serialisable object (``extra`` keys added, e.g. model, dataset)."""
    return {
        **extra,
        "class_names": list(view.class_names),
        "counts": [[int(v) for v in row] for row in view.counts],
        "per_class_accuracy": [_num(v) for v in view.per_class],
        "accuracy": _num(view.accuracy),
        "total": int(view.counts.sum()),
        "most_confused": [{"true": p.true, "pred": p.pred, "count": p.count, "share": p.share}
                          for p in view.pairs],
    }


def check_path(path: str | os.PathLike[str]) -> Path:
    """The target of a confusion export; ExportError unless it ends .csv or .json."""
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise ExportError(f"{os.fspath(path)}: give a file ending .csv or .json")
    return target


def write_confusion(path: str | os.PathLike[str], view: Any, **extra: Any) -> Path:
    """Write ``view`` to ``path`` (.csv or .json), atomically. Returns the path written."""
    from engine.atomic import atomic_write

    target = check_path(path)
    if target.suffix.lower() == ".csv":
        text = confusion_csv(view)
    else:
        text = json.dumps(confusion_json(view, **extra)) + "\n"
    with os_errors(target, ExportError, "cannot write"), atomic_write(target, "w", encoding="utf-8") as fh:
        fh.write(text)
    return target


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (an SVG screenshot, say)."""
    from engine.atomic import atomic_write

    target = Path(path)
    with os_errors(target, ExportError, "cannot write"), atomic_write(target, "w", encoding="utf-8") as fh:
        fh.write(text)
    return target
