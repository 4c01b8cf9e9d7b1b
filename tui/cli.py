"""The ``termnist`` command: the app with no subcommand, or a headless subcommand.

Imports are lazy so that ``termnist --help`` stays fast and ``train`` never loads Textual.
Exit status: 0 success, 1 data/model error, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from tui.commands import UsageError

COMMAND_MODULES: tuple[str, ...] = ("tui.commands.train", "tui.commands.data", "tui.commands.insight",
                   "tui.commands.runs")  # insight extends eval
COMMAND_MODULES += ("tui.commands.race", "tui.commands.lr_find")   # optimizer race, LR range test
COMMAND_MODULES += ("tui.commands.sweep",)   # Optuna sweeps
LOG_FILE_HELP = "write the log here (default: termnist.log in the user log directory, or $TERMNIST_LOG_DIR)"
# TERM values whose terminal cannot draw the app (no cursor addressing, no alternate screen)
DUMB_TERMS = ("", "dumb", "unknown")

EPILOG = """\
commands:
  (none)      open the terminal app (needs a terminal; over SSH use `ssh -t`)
  train       train headless, one line per epoch (or JSON lines)
  eval        test accuracy, per-class accuracy and confusion matrix of a saved model
              (--mistakes N: the N most confident mistakes, as ASCII art)
  predict     classify image files (PGM, PNG, ASCII art) with a saved model
  download    fetch and verify MNIST, Fashion-MNIST or KMNIST
  datasets    list datasets and where they were found
  runs        the run history: list, show, compare, export, rm
  race        race optimizers from the same initial weights and batch order
  lr-find     LR range test: loss against a growing lr, and a suggested lr
  sweep       search hyperparameters with Optuna (pruning, parallel trials, a Dask cluster)

MNIST: Yann LeCun, Corinna Cortes, Christopher J.C. Burges (CC BY-SA 3.0).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="termnist",
        description="Train a neural network on handwritten digits, in your terminal.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", metavar="DIR", help="directory holding the dataset's IDX files")
    parser.add_argument("--dataset", metavar="NAME",
                        help="mnist (default), fashion-mnist, kmnist, digits, mnist-sample, "
                                                             "or idx (any IDX set, from --data DIR)")
    parser.add_argument("--preset", metavar="P", help="settings to start from (default, best, nielsen, ...)")
    parser.add_argument("--load", metavar="MODEL.npz", help="open the app with a saved model")
    parser.add_argument("--low-bandwidth", action="store_true",
                        help="redraw the chart and progress once a second (slow links; also $TERMNIST_LOW_BANDWIDTH=1)")
    parser.add_argument("--resume", action="store_true", help="resume the run cut by a lost connection")
    parser.add_argument("--log-file", metavar="PATH", help=LOG_FILE_HELP)
    parser.add_argument("--version", action="version", version=f"termnist {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in sub.choices.values():
        # also after the subcommand (`termnist train --log-file X`); SUPPRESS keeps a value
        # given before it (`termnist --log-file X train`)
        command.add_argument("--log-file", metavar="PATH", default=argparse.SUPPRESS, help=LOG_FILE_HELP)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("termnist")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from tui.logfile import setup_logging

    setup_logging(args.log_file)
    log = logging.getLogger("tui.cli")
    log.info("termnist %s started: %s", args.command or "app", " ".join(sys.argv[1:] if argv is None else argv))
    try:
        if getattr(args, "func", None) is None:
            return run_app(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("termnist: interrupted", file=sys.stderr)
        return 130
    except UsageError as exc:
        print(f"termnist: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except Exception:
        log.exception("termnist %s failed", args.command or "app")
        raise


def run_app(args: argparse.Namespace) -> int:
    if args.low_bandwidth:
        os.environ["TERMNIST_LOW_BANDWIDTH"] = "1"
    if args.resume:
        from engine.errors import TermnistError, os_errors
        from engine.recovery import resumable, state_dir

        try:
            with os_errors(state_dir(), TermnistError, "cannot read the saved run"):
                saved = resumable()
        except TermnistError as exc:
            print(f"termnist: error: {exc}", file=sys.stderr)
            return 1
        if saved is None:
            print(f"termnist: nothing to resume: no interrupted run is saved in {state_dir()}"
                  " (a run is kept there when the connection drops or you quit while training)",
                  file=sys.stderr)
            return 1
    problem = check_app_args(args)
    if problem is not None:
        message, code = problem
        print(f"termnist: error: {message}", file=sys.stderr)
        return code
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(
            "termnist: no terminal here (stdin/stdout are not a TTY): the app needs one"
            " (over SSH use `ssh -t`); to train headless use `termnist train`",
            file=sys.stderr,
        )
        return 2
    term = os.environ.get("TERM", "")
    if term.strip().lower() in DUMB_TERMS:
        print(f"termnist: this terminal (TERM={term or 'unset'}) cannot draw the app (no cursor movement,"
              " colours or alternate screen); set TERM to your terminal's type, e.g. TERM=xterm-256color;"
              " to train headless use `termnist train`", file=sys.stderr)
        return 2
    from tui.app import run_app as run_textual_app
    from tui.terminal import unicode_ok

    return int(
        run_textual_app(
            data_dir=args.data,
            dataset=args.dataset,
            preset=args.preset,
            load=args.load,
            resume=args.resume,
            ascii_only=not unicode_ok(),       # LANG=C: ASCII borders, chart and shading
        )
        or 0
    )


def check_app_args(args: argparse.Namespace) -> tuple[str, int] | None:
    """The app's --dataset, --data and --load, checked before it starts (and before the
    terminal check): (message, exit status) for the first that cannot work, else None."""
    from engine.datasets import DATASETS, check_data_path
    from engine.errors import CheckpointError, TermnistError, user_path

    if args.dataset is not None and args.dataset not in DATASETS:
        return f"--dataset: unknown dataset {args.dataset!r}; choose one of {', '.join(DATASETS)}", 2
    if args.data is not None and args.dataset in ("digits", "mnist-sample"):
        return f"--data {args.data}: does not apply to --dataset {args.dataset}", 2
    try:
        if args.data is not None:
            check_data_path(args.data)
        if args.load is not None:
            user_path(args.load, "file", CheckpointError, "model file")
    except TermnistError as exc:
        return str(exc), 1
    return None


if __name__ == "__main__":
    sys.exit(main())
