"""``termnist race``: optimizers trained side by side from the same start (engine.race).

Every optimizer gets the same network, the same initial weights and the same batch order
(one seed: see engine/race.py). Human output: one line per optimizer per epoch, then a
table ranking them (highest validation accuracy first; diverged ones last). ``--json``: one
object a line: ``start``, ``epoch`` (per optimizer), ``diverged``, ``done`` (the ranking).
Ctrl+C ends the race after the current step (the ranking so far, exit 130).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from tui.commands.train import TRAIN_FLAGS

# The registry (engine.optim.OPTIMIZERS) cannot be imported by the parser (no NumPy there):
# tests/test_cli_race.py checks these against it.
RACE_DEFAULT = "sgd,momentum,nesterov,adagrad,rmsprop,adam"
LR_HELP = ("learning rates: NAME=LR pairs (adam=0.001,sgd=0.1), or one number for all; "
           "defaults: sgd 0.1, momentum 0.05, nesterov 0.05, adagrad 0.05, rmsprop 0.001, adam 0.001")
#: TRAIN_FLAGS the race does not take (each racer has its own optimizer and lr).
NOT_RACE_FLAGS = ("--optimizer", "--lr")


def add_config_flags(p: argparse.ArgumentParser, skip: tuple[str, ...] = NOT_RACE_FLAGS) -> None:
    """--preset, --dataset, --data and train's settings flags (train.build_config reads them)."""
    p.add_argument("--preset", default="default", help="recipe to start from (default: %(default)s)")
    p.add_argument("--dataset", help="dataset name: mnist, fashion-mnist, kmnist, digits, mnist-sample, or idx")
    p.add_argument("--data", metavar="DIR", help="directory holding the dataset files")
    for flag, _field, typ, help_text in TRAIN_FLAGS:
        if flag not in skip:
            p.add_argument(flag, type=str, default=None, help=help_text, metavar=typ.__name__.upper())
    p.set_defaults(**{flag[2:].replace("-", "_"): None for flag in skip})


def register(sub: Any) -> None:
    p = sub.add_parser("race", help="race optimizers from the same start",
                       description="Train several optimizers on the same network, from the same initial "
                                   "weights, on the same batch order; rank them.")
    p.add_argument("--optimizers", default=RACE_DEFAULT, metavar="LIST",
                   help="comma-separated optimizers (default: %(default)s)")
    p.add_argument("--lr", dest="race_lr", default=None, metavar="LRS", help=LR_HELP)
    add_config_flags(p)
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=run_race)


def build_race(args: argparse.Namespace) -> tuple[Any, tuple[str, ...], dict[str, float]]:
    """(config, optimizers, lrs) from the flags; UsageError naming the flag."""
    from engine.errors import ConfigError
    from engine.race import parse_lrs, parse_optimizers
    from tui.commands import UsageError
    from tui.commands.train import build_config

    try:
        optimizers = parse_optimizers(args.optimizers)
    except ConfigError as exc:
        raise UsageError(f"--optimizers: {exc.reason}") from None
    lrs: dict[str, float] = {}
    if args.race_lr is not None:
        try:
            lrs = parse_lrs(args.race_lr, optimizers)
        except ConfigError as exc:
            raise UsageError(f"--lr: {exc.reason}") from None
    return build_config(args), optimizers, lrs


def load_for(args: argparse.Namespace, config: Any, emit: Any) -> tuple[Any, Any] | None:
    """The dataset, and config with a validation size that fits it (notes through ``emit``);
    None (after an error line) when it cannot be loaded."""
    from engine.datasets import load_dataset
    from engine.errors import TermnistError
    from tui.commands.train import fit_val_size

    try:
        dataset = load_dataset(config.dataset, data_dir=args.data)
    except TermnistError as exc:
        print(f"termnist: error: {exc}", file=sys.stderr)
        return None
    config, capped = fit_val_size(config, len(dataset.y_train), explicit=args.val_size is not None)
    if dataset.is_sample:
        emit(f"using the bundled MNIST sample ({len(dataset.y_train):,} train / {len(dataset.y_test):,} test"
             " images); for the full set run `termnist download` or pass --data DIR")
    if capped is not None:
        emit(f"validation size {capped:,} does not fit {len(dataset.y_train):,} training images: using "
             f"{config.val_size:,} (1/5); --val-size N sets it")
    return dataset, config


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def ranking_table(results: Any) -> list[str]:
    """The final table: rank, optimizer, lr, epochs, val acc, val loss, test acc, train loss."""
    head = f"{'#':>2}  {'optimizer':<9} {'lr':>8} {'epochs':>6} {'val acc':>8} {'val loss':>8} " \
           f"{'test acc':>8} {'train loss':>10}"
    lines = [head, "-" * len(head)]
    for r in results:
        note = "  diverged" if r.diverged else ""
        lines.append(f"{r.rank:>2}  {r.optimizer:<9} {r.lr:>8.3g} {r.epochs_done:>6} {_pct(r.val_acc):>8} "
                     f"{_num(r.val_loss):>8} {_pct(r.test_acc):>8} {_num(r.train_loss):>10}{note}")
    return lines


def run_race(args: argparse.Namespace) -> int:
    config, optimizers, lrs = build_race(args)
    from engine.errors import ConfigError
    from engine.race import Race, RaceDiverged, RaceEpoch, RaceFailed, RaceFinished, RaceStarted
    from tui.commands.train import config_usage_error

    emit = note_printer(args.json)
    loaded = load_for(args, config, emit)
    if loaded is None:
        return 1
    dataset, config = loaded
    try:
        race = Race(config, dataset, optimizers, lrs)
    except ConfigError as exc:
        raise config_usage_error(exc, config) from None

    interrupted = {"count": 0}

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted["count"] += 1
        if interrupted["count"] > 1:
            raise KeyboardInterrupt
        race.stop()
        emit("stopping the race after the current step (Ctrl+C again to abort)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    status = 0
    try:
        for e in race.run():
            match e:
                case RaceStarted():
                    if args.json:
                        print(json.dumps({"event": "start", "optimizers": list(e.optimizers), "lrs": list(e.lrs),
                                          "epochs": e.epochs, "steps_per_epoch": e.steps_per_epoch,
                                          "n_train": e.n_train, "n_val": e.n_val, "seed": e.seed,
                                          "dataset": e.dataset, "config": e.config}), flush=True)
                    else:
                        pairs = ", ".join(f"{n} {lr:g}" for n, lr in zip(e.optimizers, e.lrs))
                        print(f"race on {e.dataset}: {pairs}; {e.epochs} epoch(s) of {e.steps_per_epoch} steps,"
                              f" one initialisation and batch order (seed {e.seed})", flush=True)
                case RaceEpoch():
                    if args.json:
                        print(json.dumps({"event": "epoch", **e.__dict__}), flush=True)
                    else:
                        print(f"epoch {e.epoch:>3}/{e.epochs}  {e.optimizer:<9} train loss {e.train_loss:.4f}"
                              f" acc {_pct(e.train_acc):>7}  val loss {_num(e.val_loss)} acc {_pct(e.val_acc):>7}",
                              flush=True)
                case RaceDiverged():
                    if args.json:
                        print(json.dumps({"event": "diverged", **e.__dict__}), flush=True)
                    else:
                        print(f"             {e.optimizer:<9} {e.message}", flush=True)
                case RaceFinished():
                    if args.json:
                        print(json.dumps({"event": "done", "reason": e.reason, "seconds": e.seconds,
                                          "batch_order": e.batch_order,
                                          "ranking": [r.to_json() for r in e.results]}), flush=True)
                    else:
                        print()
                        print("\n".join(ranking_table(e.results)))
                        print(f"{e.reason} in {e.seconds:.1f} s; every optimizer saw batch order {e.batch_order}")
                    if all(r.diverged for r in e.results):
                        status = 1
                case RaceFailed():
                    print(f"termnist: error: {e.message}", file=sys.stderr)
                    return 1
    finally:
        signal.signal(signal.SIGINT, previous)
    return 130 if interrupted["count"] else status


def note_printer(as_json: bool) -> Any:
    """How the race and LR-finder commands print a note: a JSON "note" object on stdout with
    --json, else a line on stderr."""
    def emit(note: str) -> None:
        if as_json:
            print(json.dumps({"event": "note", "message": note}), flush=True)
        else:
            print(note, file=sys.stderr, flush=True)
    return emit
