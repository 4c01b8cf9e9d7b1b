"""The Sweep panel's work, no Textual: the panel's text -> a SweepSpec, the trials as the panel
shows them (table rows, the chart's series, the best trial), importances computed off the UI
thread, and the sweep's thread (``run_in_thread``: engine.sweep.run_sweep with a stop Event).

Unit-tested without Textual; the widget (tui/widgets/sweep_panel.py) draws what this keeps and
the presenter (tui/sweep_view.py) wires it to the app.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.sweep.events import SweepDone, SweepEvent, SweepStarted, TrialEpoch, TrialFinished, TrialStarted

log = logging.getLogger(__name__)

SPACE_FIELDS = 3                       # --param text fields in the panel
DEFAULT_SPACE = ("lr=0.001:0.5:log", "batch_size=32,64,128", "")
DEFAULTS = {"trials": "8", "epochs": "2", "sampler": "tpe", "pruner": "median", "workers": "1"}
LIMITS = {"trials": (1, 10_000), "epochs": (1, 1_000), "workers": (1, 64)}
SPARK = "▁▂▃▄▅▆▇█"
SPARK_ASCII = "_.-~=*#@"
#: short names for the table's parameter column (80 columns are few)
SHORT = {"batch_size": "bs", "weight_decay": "wd", "momentum": "mom", "activation": "act", "optimizer": "opt",
         "warmup_epochs": "warmup", "step_epochs": "step_ep", "max_shift": "shift", "init_std": "std"}


class SweepFormError(Exception):
    """A field of the sweep form is wrong: ``field`` ("param-0".."param-2", "trials", "epochs",
    "workers", "space", "settings") and the one-line ``reason`` shown next to it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def whole(name: str, text: str) -> int:
    low, high = LIMITS[name]
    try:
        value = int(text.strip())
    except ValueError:
        raise SweepFormError(name, f"expected a whole number, got {text.strip()!r}") from None
    if not low <= value <= high:
        raise SweepFormError(name, f"{value} is out of range {low}..{high}")
    return value


def build_spec(space_texts: list[str], values: dict[str, str], base: Any, *, name: str | None = None,
               data_dir: str | None = None, checkpoints: str | None = None) -> Any:
    """The panel's fields over ``base`` (the main form's TrainConfig) -> a SweepSpec. Raises
    SweepFormError naming the field (a space field's reason is the parser's SpaceError text)."""
    from engine.sweep.runner import SweepSpec
    from engine.sweep.space import SpaceError, check_against, parse_param
    from engine.sweep.study import PRUNERS, SAMPLERS

    specs: list[Any] = []
    for i, text in enumerate(space_texts):
        if not text.strip():
            continue
        try:
            spec = parse_param(text)
            if any(s.name == spec.name for s in specs):
                raise SpaceError(spec.name, "given twice")
            check_against([spec], base)
            if values.get("sampler") == "grid":
                spec.grid_values()
        except SpaceError as exc:
            raise SweepFormError(f"param-{i}", str(exc)) from None
        specs.append(spec)
    if not specs:
        raise SweepFormError("param-0", "give at least one searched hyperparameter, e.g. lr=0.001:0.5:log")
    trials = whole("trials", values.get("trials", DEFAULTS["trials"]))
    epochs = whole("epochs", values.get("epochs", DEFAULTS["epochs"]))
    workers = whole("workers", values.get("workers", DEFAULTS["workers"]))
    sampler = values.get("sampler") or DEFAULTS["sampler"]
    pruner = values.get("pruner") or DEFAULTS["pruner"]
    if sampler not in SAMPLERS:
        raise SweepFormError("sampler", f"unknown sampler {sampler!r}")
    if pruner not in PRUNERS:
        raise SweepFormError("pruner", f"unknown pruner {pruner!r}")
    if base.val_size == 0:
        raise SweepFormError("settings", "a sweep ranks trials by validation accuracy: set Val size > 0 in the form")
    baseline = form_point(specs, base)
    return SweepSpec(name=name or time.strftime("sweep-%Y%m%d-%H%M%S"), space=tuple(specs), base=base,
                     epochs=epochs, trials=trials, sampler=sampler, pruner=pruner, workers=workers,
                     seed=base.seed, data_dir=data_dir, checkpoints=checkpoints,
                     enqueue=(baseline,) if baseline is not None and sampler != "grid" else ())


def form_point(specs: list[Any], base: Any) -> dict[str, Any] | None:
    """The form's own values of the searched parameters, as Optuna stores them, when every one
    lies inside the space (the sweep tries it first: a baseline); else None."""
    point: dict[str, Any] = {}
    for p in specs:
        value = getattr(base, p.name)
        if p.name == "hidden":
            value = "-".join(str(h) for h in value) or "none"
        if p.kind == "categorical":
            if value not in p.choices:
                return None
            point[p.name] = p.choices[p.choices.index(value)]
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and p.low <= value <= p.high:
            if p.kind == "int" and value != int(value):
                return None
            point[p.name] = int(value) if p.kind == "int" else float(value)
        else:
            return None
    return point


def fit_base(spec: Any, dataset: Any) -> tuple[Any, str | None]:
    """``spec`` with a validation size that fits ``dataset`` (the engine's one rule, as a run
    in the app gets), checked to fit; and a note when the size changed. Raises ConfigError."""
    from dataclasses import replace

    from engine.datasets import fit_val_size
    from engine.training import check_fits

    n_train = len(dataset.y_train)
    base, note = spec.base, None
    fitted = fit_val_size(base.val_size, n_train)
    if fitted != base.val_size:
        note = (f"validation size {base.val_size:,} leaves no training data in {dataset.title}: the sweep"
                f" validates on {fitted:,}")
        base = base.replace(val_size=fitted)
    check_fits(base.replace(epochs=spec.epochs), n_train, dataset.n_features, dataset.n_classes, dataset.title)
    return replace(spec, base=base), note


# -- the trials as the panel shows them ---------------------------------------------------------------
@dataclass
class TrialRow:
    number: int
    params: dict[str, Any]
    state: str = "running"                   # running, complete, pruned, failed
    accs: list[float] = field(default_factory=list)
    value: float | None = None
    run_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class ChartSeries:
    """Final val acc (%) against one parameter: complete trials, and pruned ones (their last)."""

    param: str
    log: bool                                # a log range: the x axis is logarithmic
    labels: tuple[str, ...]                  # categorical: the x ticks (x = index + 1); else ()
    complete: tuple[tuple[float, ...], tuple[float, ...]]
    pruned: tuple[tuple[float, ...], tuple[float, ...]]


class SweepTrials:
    """What a sweep's events have said so far (the panel's model)."""

    def __init__(self) -> None:
        self.started: SweepStarted | None = None
        self.rows: dict[int, TrialRow] = {}
        self.done: SweepDone | None = None
        self.importances: dict[str, float] = {}
        self.version = 0                      # bumped by every change

    def clear(self) -> None:
        self.started, self.done = None, None
        self.rows = {}
        self.importances = {}
        self.version += 1

    def apply(self, e: SweepEvent) -> TrialRow | None:
        """Take one event; returns the row it changed (None for the sweep's own events)."""
        self.version += 1
        row: TrialRow | None = None
        match e:
            case SweepStarted():
                if not (e.resumed and self.started is not None and self.started.name == e.name):
                    self.clear()             # a resumed sweep keeps the rows of its earlier sessions
                self.started, self.done = e, None
            case TrialStarted():
                row = self.rows[e.number] = TrialRow(e.number, dict(e.params))
            case TrialEpoch():
                row = self.rows.setdefault(e.number, TrialRow(e.number, {}))
                del row.accs[e.epoch - 1:]
                row.accs.extend([math.nan] * (e.epoch - 1 - len(row.accs)))
                row.accs.append(e.val_acc)
                row.run_id = e.run_id or row.run_id
            case TrialFinished():
                row = self.rows.setdefault(e.number, TrialRow(e.number, dict(e.params)))
                row.params = dict(e.params)
                row.state, row.value, row.reason = e.state, e.value, e.reason
                row.run_id = e.run_id or row.run_id
                if e.val_accs:
                    row.accs = list(e.val_accs)
            case SweepDone():
                self.done = e
                if e.importances:
                    self.importances = dict(e.importances)
        return row

    @property
    def resumable(self) -> bool:
        """A sweep is shown, not running, and has trials left to run: stopped, ended early, or an
        earlier one opened (a finished trial budget has none left; a time budget always has)."""
        s = self.started
        if s is None or (self.done is None and s.workers > 0):
            return False                     # nothing shown, or this one is running
        if self.done is not None and not (self.done.interrupted or self.done.error):
            return False                     # ran to its budget
        finished = sum(1 for r in self.rows.values() if r.state in ("complete", "pruned", "failed")
                       and r.reason != "interrupted")
        return s.trials is None or finished < s.trials

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p["name"] for p in self.started.space) if self.started is not None else ()

    def space_of(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.started.space if p["name"] == name), None) if self.started else None

    def complete(self) -> list[TrialRow]:
        return [r for r in self.rows.values() if r.state == "complete" and r.value is not None]

    def counts(self) -> dict[str, int]:
        out = {"running": 0, "complete": 0, "pruned": 0, "failed": 0}
        for r in self.rows.values():
            out[r.state] = out.get(r.state, 0) + 1
        return out

    def best(self) -> TrialRow | None:
        """The complete trial with the highest val acc (the earliest of equals), as Optuna picks."""
        done = self.complete()
        return max(done, key=lambda r: (r.value, -r.number)) if done else None

    def series(self, param: str) -> ChartSeries:
        spec = self.space_of(param) or {"kind": "float", "log": False}
        labels: tuple[str, ...] = ()
        if spec["kind"] == "categorical":
            labels = tuple(str(c) for c in spec["choices"])
        points: dict[str, tuple[list[float], list[float]]] = {"complete": ([], []), "pruned": ([], [])}
        for r in sorted(self.rows.values(), key=lambda r: r.number):
            if r.state not in points or r.value is None or param not in r.params:
                continue
            v = r.params[param]
            if labels:
                if str(v) not in labels:
                    continue
                x = float(labels.index(str(v)) + 1)
            else:
                x = float(v)
            points[r.state][0].append(x)
            points[r.state][1].append(round(float(r.value) * 100, 4))
        return ChartSeries(param, bool(spec.get("log")), labels,
                           (tuple(points["complete"][0]), tuple(points["complete"][1])),
                           (tuple(points["pruned"][0]), tuple(points["pruned"][1])))

    def config_of(self, row: TrialRow) -> Any:
        """The TrainConfig trial ``row`` trained with (the sweep's settings + its parameters)."""
        from engine.config import TrainConfig
        from engine.sweep.space import config_value

        if self.started is None:
            raise ValueError("no sweep has started")
        base = TrainConfig.from_dict(self.started.base)
        return base.replace(**{k: config_value(k, v) for k, v in row.params.items()})


# -- formatting for the table -------------------------------------------------------------------------
def format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{SHORT.get(k, k)}={format_value(v)}" for k, v in params.items())


def format_accs(accs: list[float], ascii_only: bool = False, width: int = 8) -> str:
    """Val acc per epoch, compact: a sparkline of the epochs (scaled to their own range) and the
    last value, e.g. "▂▅▇ 91.2"."""
    good = [a for a in accs if not math.isnan(a)]
    if not good:
        return "-"
    ramp = SPARK_ASCII if ascii_only else SPARK
    lo, hi = min(good), max(good)
    shown = accs[-width:]
    spark = "".join(" " if math.isnan(a) else ramp[0 if hi - lo < 1e-9 else
                                                    round((a - lo) / (hi - lo) * (len(ramp) - 1))]
                    for a in shown)
    return f"{spark} {good[-1] * 100:.1f}"


def importance_bars(importances: dict[str, float], width: int = 28, ascii_only: bool = False) -> list[str]:
    """Optuna's importances as bars, largest first: "lr        ██████▋ 0.78"."""
    if not importances:
        return []
    items = sorted(importances.items(), key=lambda kv: -kv[1])
    name_w = min(12, max(len(k) for k, _ in items))
    bar_w = max(4, width - name_w - 7)
    out = []
    for name, v in items:
        cells = max(0.0, min(1.0, v)) * bar_w
        if ascii_only:
            bar = "#" * round(cells)
        else:
            full = int(cells)
            part = " ▏▎▍▌▋▊▉"[int((cells - full) * 8)]
            bar = "█" * full + (part if part != " " else "")
        out.append(f"{name[:name_w]:<{name_w}} {bar:<{bar_w}} {v:4.2f}")
    return out


def importances_of(space: tuple[dict[str, Any], ...], rows: list[TrialRow]) -> dict[str, float]:
    """Optuna's parameter importances (its default evaluator) over the complete trials given
    (>= 2), in a study in memory: a worker thread calls this while the sweep runs; {} when it
    cannot tell."""
    import optuna

    from engine.sweep.space import ParamSpec
    from engine.sweep.study import importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {p["name"]: ParamSpec.from_json(p).distribution() for p in space}
    trials = []
    for r in rows:
        if r.state != "complete" or r.value is None or set(r.params) != set(dists):
            continue
        try:
            trials.append(optuna.trial.create_trial(params=r.params, distributions=dists, value=float(r.value)))
        except ValueError:                  # a value outside its distribution (an edited space)
            continue
    if len(trials) < 2:
        return {}
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    with warnings.catch_warnings():          # "importances will be equal" and the like: not for a TUI
        warnings.simplefilter("ignore")
        return importances(study)


# -- the sweep's thread -------------------------------------------------------------------------------
class SweepRun:
    """The sweep in progress: its stop Event (the stop key, quitting the app) and whether it runs."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.running = False

    def begin(self) -> threading.Event:
        self.stop_event = threading.Event()
        self.running = True
        return self.stop_event

    def stop(self) -> bool:
        """Ask the sweep to end (running trials stop after their batch; the study stays resumable)."""
        if not self.running or self.stop_event.is_set():
            return False
        self.stop_event.set()
        return True

    def ended(self) -> None:
        self.running = False


def ensure_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, with a real stderr (devnull). The sweep's
    local workers are "spawn" processes, and the first spawn starts the tracker handing it
    ``sys.stderr.fileno()``: inside the app that is Textual's capture, whose fileno is -1, and
    the spawn fails ("bad value(s) in fds_to_keep"). Call it on the UI thread before a sweep."""
    import os
    import sys
    from multiprocessing import resource_tracker

    saved = sys.stderr
    with open(os.devnull, "w") as null:
        sys.stderr = null
        try:
            resource_tracker.ensure_running()
        finally:
            sys.stderr = saved


def run_in_thread(spec: Any, stop: threading.Event, get_dataset: Callable[[str], Any],
                  on_event: Callable[[SweepEvent], None], on_note: Callable[[str, str], None]) -> str | None:
    """Worker thread: load the dataset (the app's cache), fit the settings to it, run the sweep
    to its end. Returns None, or the one-line reason it could not run or ended early."""
    from engine.errors import ConfigError, TermnistError
    from engine.sweep.runner import run_sweep
    from engine.sweep.study import SweepError

    try:
        dataset = get_dataset(spec.base.dataset)
        spec, note = fit_base(spec, dataset)
    except ConfigError as exc:
        return f"cannot sweep: {exc}"
    except TermnistError as exc:
        return f"cannot sweep: {exc}"
    if note:
        on_note(note, "warning")
    if stop.is_set():
        return None
    try:
        done = run_sweep(spec, on_event, stop=stop, dataset=dataset, on_note=lambda s: on_note(s, "warning"))
    except (SweepError, TermnistError) as exc:
        return f"sweep {spec.name}: {exc}"
    if done.error:
        return f"sweep {spec.name}: {done.error}; the finished trials are kept (termnist sweep --resume {spec.name})"
    return None


__all__ = ["DEFAULTS", "DEFAULT_SPACE", "SPACE_FIELDS", "ChartSeries", "SweepFormError", "SweepRun", "SweepTrials",
           "TrialRow", "build_spec", "ensure_resource_tracker", "fit_base", "form_point", "format_accs",
           "format_params", "importance_bars", "importances_of", "run_in_thread", "whole"]
