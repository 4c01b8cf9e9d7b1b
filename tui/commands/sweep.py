"""``termnist sweep``: a hyperparameter search with Optuna, from the terminal, no server.

    termnist sweep --param lr=0.001:0.5:log --param batch_size=32,64,128 --trials 16 --epochs 3

Human output: one line per finished trial, then the best trial (its run id: ``termnist runs
show ID``) and the parameter importances. ``--json``: one object a line (start, trial, done).
Ctrl+C stops the running trials (exit 130); ``termnist sweep --resume NAME`` continues.
Exit status: 0 done, 1 storage/cluster/data error, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from tui.commands.train import TRAIN_FLAGS

DEFAULT_EPOCHS = 3
DEFAULT_TRIALS = 16
MAX_WORKERS = 64


def default_workers() -> int:
    """One worker process: on the 2-core machines measured (README, "Sweeps") two
    single-threaded trials at once gave no more trials per minute than one. More cores: half of them."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else max(1, cores // 2)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sweep", help="search hyperparameters (Optuna): trials, pruning, parallel workers, a Dask cluster",
        description="Search hyperparameters with Optuna. Each trial is a run in the run history.",
        epilog="--param forms: lr=0.001:0.5:log (log-uniform), momentum=0.8:0.99 (uniform), "
               "epochs=1:5:int (integers), batch_size=32,64,128 (a list), hidden=64,128-64,256-128 (layer stacks).")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUES",
                   help="a searched hyperparameter (repeat for several)")
    p.add_argument("--preset", default="default", help="settings of everything not searched (default: %(default)s)")
    p.add_argument("--dataset", help="dataset name (default: the preset's)")
    p.add_argument("--data", metavar="DIR", help="directory holding the dataset files")
    p.add_argument("--trials", type=str, default=None, metavar="N",
                   help=f"trials to run (default {DEFAULT_TRIALS}, or until --time-budget)")
    p.add_argument("--time-budget", type=str, default=None, metavar="SECONDS",
                   help="start no new trial after this many seconds (running ones finish)")
    p.add_argument("--sampler", default="tpe", help="grid, random or tpe (default: %(default)s, seeded)")
    p.add_argument("--pruner", default="median", help="none, median or hyperband (default: %(default)s)")
    p.add_argument("--workers", type=str, default=None, metavar="N",
                   help=f"trials at once (default: {default_workers()} local process(es) here; with --cluster,"
                        " every worker thread of the cluster)")
    p.add_argument("--name", help="the sweep's name (default: sweep-DATE-TIME)")
    p.add_argument("--resume", metavar="NAME", help="continue the sweep NAME with its own settings")
    p.add_argument("--storage", metavar="URL",
                   help="an Optuna storage URL or a journal file path (default: sweeps.journal in the user data dir)")
    p.add_argument("--cluster", metavar="tcp://HOST:PORT", help="run the trials on this Dask scheduler's workers")
    p.add_argument("--json", action="store_true", help="one JSON object a line: start, trial, done")
    own_help = {"--epochs": f"epochs per trial (default {DEFAULT_EPOCHS})",
                "--seed": "seed of the sampler and of every trial's training (default: the preset's)"}
    for flag, _field, typ, help_text in TRAIN_FLAGS:
        p.add_argument(flag, type=str, default=None, help=own_help.get(flag, help_text), metavar=typ.__name__.upper())
    p.set_defaults(func=run_sweep_command)


def _int(args: argparse.Namespace, attr: str, flag: str, low: int, high: int) -> int | None:
    from tui.commands import UsageError

    raw = getattr(args, attr)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{flag}: expected a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise UsageError(f"{flag}: {value} is out of range {low}..{high}")
    return value


def _workers(given: int | None, cluster: str | None) -> int | None:
    """--workers, else: on a cluster all its worker threads (None), locally default_workers()."""
    if given is not None:
        return given
    return None if cluster else default_workers()


def build_spec(args: argparse.Namespace) -> tuple[Any, Any]:
    """(SweepSpec, the dataset loaded here). Raises UsageError naming the bad flag; returns
    None as the dataset when it cannot be loaded (the caller reports it)."""
    from engine.sweep.runner import SweepSpec
    from engine.sweep.space import SpaceError, check_against, parse_space
    from engine.sweep.study import PRUNERS, SAMPLERS
    from tui.commands import UsageError
    from tui.commands.train import build_config

    trials = _int(args, "trials", "--trials", 1, 100_000)
    workers = _int(args, "workers", "--workers", 1, MAX_WORKERS)
    budget = None
    if args.time_budget is not None:
        try:
            budget = float(args.time_budget)
        except ValueError:
            raise UsageError(f"--time-budget: expected a number of seconds, got {args.time_budget!r}") from None
        if not 0 < budget < float("inf"):
            raise UsageError(f"--time-budget: expected a positive number of seconds, got {args.time_budget!r}")
    if args.sampler not in SAMPLERS:
        raise UsageError(f"--sampler: unknown sampler {args.sampler!r}; choose from {', '.join(SAMPLERS)}")
    if args.pruner not in PRUNERS:
        raise UsageError(f"--pruner: unknown pruner {args.pruner!r}; choose from {', '.join(PRUNERS)}")
    if args.cluster is not None and not args.cluster.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        raise UsageError(f"--cluster: expected a scheduler address like tcp://HOST:8786, got {args.cluster!r}")
    if args.resume is not None:
        if args.name is not None:
            raise UsageError("--resume NAME continues a sweep: drop --name")
        # the stored settings win; the budget and where to run may change
        from engine.config import TrainConfig

        spec = SweepSpec(name=args.resume, space=(), base=TrainConfig(), trials=trials, time_budget=budget,
                         workers=_workers(workers, args.cluster), data_dir=args.data, storage=args.storage,
                         cluster=args.cluster, resume=True, checkpoints=_checkpoints())
        return spec, None
    try:
        space = parse_space(args.param)
    except SpaceError as exc:
        raise UsageError(str(exc)) from None
    if not space:
        raise UsageError("--param: give at least one searched hyperparameter, e.g. --param lr=0.001:0.5:log")
    epochs = _int(args, "epochs", "--epochs", 1, 10_000) or DEFAULT_EPOCHS
    args.epochs = str(epochs)
    base = build_config(args)
    try:
        check_against(space, base)
        if args.sampler == "grid":
            for p in space:
                p.grid_values()
    except SpaceError as exc:
        raise UsageError(str(exc)) from None
    if base.val_size == 0 or args.val_size == "0":
        raise UsageError("--val-size: a sweep ranks trials by validation accuracy: it needs a validation set (> 0)")
    name = args.name or time.strftime("sweep-%Y%m%d-%H%M%S")
    spec = SweepSpec(name=name, space=space, base=base, epochs=epochs,
                     trials=trials if trials is not None or budget is not None else DEFAULT_TRIALS,
                     time_budget=budget, sampler=args.sampler, pruner=args.pruner,
                     workers=_workers(workers, args.cluster), seed=base.seed, data_dir=args.data,
                     storage=args.storage, cluster=args.cluster, checkpoints=_checkpoints())
    return spec, None


def _checkpoints() -> str:
    """Where each trial keeps its model (as the app's sweeps and runs do), so the Runs panel and
    `termnist eval` can open any trial: <state dir>/checkpoints (not on a cluster: the worker's
    disk is not this one). `termnist runs rm ID --checkpoint` deletes one."""
    from engine.recovery import state_dir

    return str(state_dir() / "checkpoints")


def run_sweep_command(args: argparse.Namespace) -> int:
    spec, _ = build_spec(args)
    from engine.datasets import load_dataset
    from engine.errors import ConfigError, TermnistError
    from engine.sweep.runner import run_sweep
    from engine.sweep.study import SweepError
    from engine.training import check_fits
    from tui.commands import UsageError
    from tui.commands.train import config_usage_error, fit_val_size

    out = _SweepOutput(args.json)
    dataset = None
    if not spec.resume:
        try:
            dataset = load_dataset(spec.base.dataset, data_dir=spec.data_dir)
            base, capped = fit_val_size(spec.base, len(dataset.y_train), explicit=args.val_size is not None)
            check_fits(base.replace(epochs=spec.epochs), len(dataset.y_train), dataset.n_features,
                       dataset.n_classes, dataset.title)
        except ConfigError as exc:
            raise config_usage_error(exc, spec.base) from None
        except TermnistError as exc:
            return out.error(str(exc))
        if capped is not None:
            out.note(f"validation size {capped:,} leaves no training data in {dataset.title}: using"
                     f" {base.val_size:,} (1/5 of it); --val-size N sets it")
            from dataclasses import replace

            spec = replace(spec, base=base)
        if dataset.is_sample:
            out.note(f"using the bundled MNIST sample ({len(dataset.y_train):,} training images);"
                     " for the full set run `termnist download` or pass --data DIR")

    stop = threading.Event()
    presses = {"n": 0}

    def on_sigint(signum: int, frame: Any) -> None:
        presses["n"] += 1
        if presses["n"] > 1:
            raise KeyboardInterrupt
        stop.set()
        out.note("stopping the running trials (Ctrl+C again to abort)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        done = run_sweep(spec, out.event, stop=stop, dataset=dataset, on_note=out.note)
    except SweepError as exc:
        return out.error(str(exc))
    except TermnistError as exc:       # e.g. a malformed stored space
        raise UsageError(str(exc)) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if done.error:
        out.error(f"{done.error}; the finished trials are kept: continue with termnist sweep --resume {done.name}")
        return 1
    if done.interrupted:
        out.note(f"interrupted: continue with termnist sweep --resume {done.name}")
        return 130
    return 0


def _fmt_params(params: dict[str, Any] | None) -> str:
    if not params:
        return "-"
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


class _SweepOutput:
    """Sweep events as human lines or JSON lines (stdout); notes and errors on stderr."""

    def __init__(self, json_mode: bool) -> None:
        self.json = json_mode

    def note(self, text: str) -> None:
        print(f"termnist: {text}", file=sys.stderr, flush=True)

    def error(self, text: str) -> int:
        if self.json:
            print(json.dumps({"event": "error", "message": text}), flush=True)
        print(f"termnist: error: {text}", file=sys.stderr, flush=True)
        return 1

    def event(self, e: Any) -> None:
        from engine.sweep import events as sev

        if self.json:
            if isinstance(e, (sev.SweepStarted, sev.TrialFinished, sev.SweepDone)):
                print(json.dumps(e.to_json(), default=str), flush=True)
            return
        if isinstance(e, sev.SweepStarted):
            budget = " and ".join(s for s in (f"{e.trials} trials" if e.trials is not None else "",
                                              f"{e.time_budget:g}s" if e.time_budget is not None else "") if s)
            print(f"sweep {e.name}{' (resumed, ' + str(e.done_before) + ' trials done)' if e.resumed else ''}:"
                  f" {budget}, {e.epochs} epoch(s) each, {e.sampler} sampler, {e.pruner} pruner,"
                  f" {e.workers} {'cluster slot(s) on ' + e.cluster if e.cluster else 'worker(s)'}", flush=True)
            print("space: " + "  ".join(_space_text(p) for p in e.space), flush=True)
            print(f"study: {e.storage}", flush=True)
        elif isinstance(e, sev.TrialFinished):
            value = f"{e.value:7.2%}" if e.value is not None else "     - "
            why = f" ({e.reason})" if e.reason and e.state != "complete" else ""
            print(f"trial {e.number:>3}  {e.state:<8} val acc {value}  {_fmt_params(e.params)}  {e.epochs} ep"
                  f"  {e.seconds:6.1f}s  run {e.run_id or '-'}{why}", flush=True)
        elif isinstance(e, sev.SweepDone):
            print(f"done in {e.seconds:.1f}s: {e.n_complete} complete, {e.n_pruned} pruned, {e.n_failed} failed"
                  " (whole study)", flush=True)
            if e.best_params is not None and e.best_value is not None:
                print(f"best: trial {e.best_number}  val acc {e.best_value:.2%}  {_fmt_params(e.best_params)}",
                      flush=True)
                if e.best_run_id:
                    print(f"best run: {e.best_run_id}  (termnist runs show {e.best_run_id})", flush=True)
            if e.importances:
                print("importance: " + "  ".join(f"{k} {v:.2f}" for k, v in e.importances.items()), flush=True)


def _space_text(p: dict[str, Any]) -> str:
    if p["kind"] == "categorical":
        return f"{p['name']}={','.join(str(c) for c in p['choices'])}"
    return f"{p['name']}={p['low']:g}:{p['high']:g}{':int' if p['kind'] == 'int' else ''}{':log' if p['log'] else ''}"
