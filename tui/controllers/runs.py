"""The Runs panel's work, without Textual: reading the run store, the table's columns, sorting,
filtering, the legend of overlaid curves and the settings diff of two runs.

``RunHistory`` opens the store lazily (in the panel's worker thread, never on the event loop)
and keeps one ``StoreError`` line when the store cannot be used (locked, read-only, corrupt,
newer): the panel shows that line and the app goes on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    sort: Callable[[Any], Any]           # RunSummary -> a sortable value (None sorts last)
    cell: Callable[[Any], str]           # RunSummary -> the cell's text


def _settings(run: Any, name: str, default: Any = None) -> Any:
    return run.settings.get(name, default) if isinstance(run.settings, dict) else default


def network(run: Any) -> str:
    hidden = _settings(run, "hidden")
    if isinstance(hidden, (list, tuple)):
        return "-".join(str(h) for h in hidden) or "linear"
    return str(hidden) if hidden is not None else "?"


def fmt_num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def fmt_acc(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    s = int(round(value))
    if s < 100:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}"
    return f"{s // 3600}h{(s % 3600) // 60:02d}"


def fmt_date(t: float) -> str:
    return time.strftime("%m-%d %H:%M", time.localtime(t))


STATUS_SHOWN = {"completed": "done"}      # 80 columns: the one long status that is also the usual one
SHORT_DATASETS = {"fashion-mnist": "fashion"}
SHORT_OPTIMIZERS = {"momentum": "mom", "nesterov": "nest"}


def dataset_label(run: Any) -> str:
    """"sample" (the bundled MNIST sample), else the dataset's name, shortened."""
    return "sample" if run.sample else SHORT_DATASETS.get(run.dataset, run.dataset or "?")


def optimizer_label(run: Any) -> str:
    name = str(_settings(run, "optimizer", "?"))
    return SHORT_OPTIMIZERS.get(name, name)


def _epochs(run: Any) -> str:
    total = _settings(run, "epochs")
    return f"{run.epochs_done}/{total}" if total is not None else str(run.epochs_done)


def _key(value: Any) -> tuple[int, Any]:
    """None sorts after every value (either direction reverses the whole key: None first then)."""
    return (1, 0) if value is None else (0, value)


COLUMNS: tuple[Column, ...] = (
    Column("date", "date", lambda r: (r.started, r.id), lambda r: fmt_date(r.started)),
    Column("dataset", "data", lambda r: dataset_label(r), dataset_label),
    Column("network", "net", lambda r: (len(network(r)), network(r)), network),
    Column("optimizer", "opt", lambda r: str(_settings(r, "optimizer", "")), optimizer_label),
    Column("lr", "lr", lambda r: _key(_settings(r, "lr")), lambda r: fmt_num(_settings(r, "lr"))),
    Column("batch", "batch", lambda r: _key(_settings(r, "batch_size")), lambda r: fmt_num(_settings(r, "batch_size"))),
    Column("epochs", "ep", lambda r: (r.epochs_done, _settings(r, "epochs") or 0), _epochs),
    Column("best_val_acc", "val%", lambda r: _key(r.best_val_acc), lambda r: fmt_acc(r.best_val_acc)),
    Column("test_acc", "test%", lambda r: _key(r.test_acc), lambda r: fmt_acc(r.test_acc)),
    Column("status", "status", lambda r: r.status, lambda r: STATUS_SHOWN.get(r.status, r.status)),
    Column("time", "time", lambda r: _key(r.seconds), lambda r: fmt_seconds(r.seconds)),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


def sort_runs(runs: Sequence[Any], column: str, descending: bool) -> list[Any]:
    col = next(c for c in COLUMNS if c.key == column)
    if column == "date":
        return sorted(runs, key=col.sort, reverse=descending)
    present = [r for r in runs if col.sort(r) != (1, 0)]
    missing = [r for r in runs if col.sort(r) == (1, 0)]          # no figure: always last
    by_date = sorted(present, key=lambda r: (r.started, r.id), reverse=True)   # ties: newest first
    return sorted(by_date, key=col.sort, reverse=descending) + sorted(missing, key=lambda r: -r.started)


def search_text(run: Any) -> str:
    """What the filter searches: the id, every cell, the settings and the note (lower case)."""
    return " ".join([run.id, run.status, *(c.cell(run) for c in COLUMNS), run.dataset, run.dataset_title or "",
                     json.dumps(run.settings, sort_keys=True), run.note or ""]).lower()


def filter_runs(runs: Iterable[Any], text: str, index: dict[str, str] | None = None) -> list[Any]:
    """Runs whose search text holds every word of ``text`` (case-insensitive)."""
    words = text.lower().split()
    if not words:
        return list(runs)
    out = []
    for r in runs:
        hay = index[r.id] if index is not None and r.id in index else search_text(r)
        if all(w in hay for w in words):
            out.append(r)
    return out


# -- what differs between runs ---------------------------------------------------------------
SHORT = {"batch_size": "batch", "weight_decay": "wd", "optimizer": "opt", "activation": "act",
         "schedule": "sched", "momentum": "mom", "val_size": "val", "warmup_epochs": "warmup"}
LEGEND_ORDER = ("data", "lr", "batch_size", "optimizer", "hidden", "epochs", "momentum",
                "weight_decay", "schedule", "activation", "loss", "init", "augment", "seed")


def _value_text(value: Any, short: bool = False) -> str:
    if short and isinstance(value, str) and value.endswith(" (sample)"):
        return "sample"
    if short and isinstance(value, str):
        return SHORT_DATASETS.get(value, SHORT_OPTIMIZERS.get(value, value))
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value) or "[]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def differing(runs: Sequence[Any]) -> dict[str, list[Any]]:
    """{field: [value per run]} for the settings (and dataset, sample) that differ, in a readable order."""
    values: dict[str, list[Any]] = {}
    keys = sorted({k for r in runs for k in (r.settings or {})})
    for k in keys:
        vals = [(r.settings or {}).get(k) for r in runs]
        if len({json.dumps(v, sort_keys=True) for v in vals}) > 1:
            values[k] = vals
    data = [r.dataset + (" (sample)" if r.sample else "") for r in runs]
    if len(set(data)) > 1:
        values["data"] = data
    order = {k: i for i, k in enumerate(LEGEND_ORDER)}
    return dict(sorted(values.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def legend_labels(runs: Sequence[Any], max_fields: int = 3, width: int = 34) -> list[str]:
    """One label per run naming what differs between them ("lr=0.1 batch=32"); the run's id when
    nothing differs (or one run alone). Labels that would still be equal get their id."""
    diff = differing(runs) if len(runs) > 1 else {}
    labels = []
    for i, r in enumerate(runs):
        parts = [f"{SHORT.get(k, k)}={_value_text(v[i], short=True)}" for k, v in list(diff.items())[:max_fields]]
        if len(diff) > max_fields:
            parts.append(f"+{len(diff) - max_fields}")
        text = " ".join(parts) or r.id[:8]
        labels.append(text if len(text) <= width else text[: width - 1] + "~")
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({r.id[-4:]})" for label, r in zip(labels, runs)]
    return labels


def diff_rows(a: Any, b: Any) -> list[tuple[str, str, str]]:
    """(field, value of a, value of b) for each setting that differs between two runs."""
    return [(k, _value_text(v[0]), _value_text(v[1])) for k, v in differing([a, b]).items()]


def curve(epochs: Sequence[dict[str, Any]], mode: str) -> tuple[list[int], list[float]]:
    """The validation curve of a run: (epochs, val loss) or (epochs, val accuracy in %)."""
    field = "val_loss" if mode == "loss" else "val_acc"
    xs, ys = [], []
    for e in epochs:
        v = e.get(field)
        if v is not None:
            xs.append(int(e["epoch"]))
            ys.append(float(v) * (100.0 if mode == "accuracy" else 1.0))
    return xs, ys


def checkpoint_state(run: Any) -> str:
    """"ok", "none" (never saved) or "missing" (recorded, but the file is gone)."""
    if not run.checkpoint:
        return "none"
    try:
        return "ok" if Path(run.checkpoint).is_file() else "missing"
    except OSError:
        return "missing"


def checkpoint_problem(run: Any) -> str | None:
    """One line saying why the run's model cannot be loaded, or None when it can."""
    state = checkpoint_state(run)
    if state == "none":
        return f"run {run.id} has no checkpoint (a run keeps one when it ends after at least one epoch)"
    if state == "missing":
        return f"run {run.id}: its checkpoint {run.checkpoint} is missing (moved or deleted)"
    return None


class RunHistory:
    """The run store as the Runs panel uses it. Every method may block (SQLite): call them from a
    worker thread. A store that cannot be used leaves ``error`` (one line naming the file)."""

    def __init__(self, path: str | Path | None = None, retry_seconds: float = 5.0) -> None:
        self.path = path
        self.retry_seconds = retry_seconds
        self.store: Any = None
        self.error: str | None = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        from engine.runs import RunStore, StoreError

        with self._lock:
            if self.store is None:
                try:
                    self.store = RunStore(self.path, retry_seconds=self.retry_seconds)
                except StoreError as first:
                    if "cannot be written" not in str(first) and "read-only" not in str(first):
                        self.error = str(first)
                        raise
                    try:            # a read-only store still lists (its writes say why not)
                        self.store = RunStore(self.path, readonly=True, retry_seconds=self.retry_seconds)
                        self.error = (f"run store {self.store.path}: read-only, so notes, stars and deletes"
                                      " cannot be saved (and runs are not recorded)")
                    except StoreError as exc:
                        self.error = str(exc)
                        raise
                else:
                    self.error = None
            return self.store

    def read(self) -> list[Any]:
        """Every run, newest first. Raises StoreError (``error`` says it too)."""
        from engine.runs import StoreError

        store = self._open()
        try:
            return list(store.list())
        except StoreError as exc:
            self.error = str(exc)
            raise

    def epochs(self, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        store = self._open()
        return {rid: store.get(rid).epochs for rid in run_ids}

    def get(self, run_id: str) -> Any:
        return self._open().get(run_id)

    def set_note(self, run_id: str, note: str) -> None:
        self._open().set_note(run_id, note)

    def set_star(self, run_id: str, star: bool) -> None:
        self._open().set_star(run_id, star)

    def delete(self, run_id: str) -> None:
        self._open().delete([run_id], delete_checkpoints=True)

    def close(self) -> None:
        with self._lock:
            if self.store is not None:
                self.store.close()
                self.store = None
