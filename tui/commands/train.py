"""``termnist train`` and ``termnist eval``: headless training and evaluation.

Human output: one line per epoch on stdout (a live progress line on stderr when it is a
terminal). ``--json``: one JSON object per line per event. Ctrl+C stops after the current
batch (exit 130); a second Ctrl+C aborts at once.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from engine import events as ev   # frozen dataclasses only: no NumPy (the parser stays light)

# Choice names are repeated in the help texts (the parser must not import NumPy, so it
# cannot ask the registries); tests/test_cli.py checks them against engine.config.CHOICES.
TRAIN_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    # (flag, config field, type, help)
    ("--layers", "hidden", str, "hidden layer sizes, e.g. 128,64 (empty for none)"),
    ("--activation", "activation", str, "relu, leaky_relu, sigmoid or tanh"),
    ("--loss", "loss", str, "cross-entropy or mse"),
    ("--init", "init", str, "auto, he, xavier or normal"),
    ("--init-std", "init_std", float, "std of the 'normal' initialisation"),
    ("--optimizer", "optimizer", str, "sgd, momentum, nesterov, adagrad, rmsprop or adam"),
    ("--lr", "lr", float, "learning rate"),
    ("--momentum", "momentum", float, "momentum (momentum/nesterov)"),
    ("--batch-size", "batch_size", int, "mini-batch size"),
    ("--epochs", "epochs", int, "number of epochs"),
    ("--weight-decay", "weight_decay", float, "L2 weight decay"),
    ("--schedule", "schedule", str, "learning-rate schedule: constant, step or cosine"),
    ("--step-epochs", "step_epochs", int, "step schedule: epochs between decays"),
    ("--gamma", "gamma", float, "step schedule: decay factor"),
    ("--warmup-epochs", "warmup_epochs", float, "linear warm-up length in epochs"),
    ("--val-size", "val_size", int, "validation images taken from the end of the training set (0 for none)"),
    ("--seed", "seed", int, "random seed (same seed and settings give identical weights)"),
    ("--dtype", "dtype", str, "float32 or float64"),
    ("--augment", "augment", str, "none, or shift (random translation by up to --max-shift pixels)"),
    ("--max-shift", "max_shift", int, "largest shift of --augment shift, in pixels"),
)


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train headless", description="Train headless; flags override the preset.")
    p.add_argument("--preset", default="default", help="recipe to start from (default: %(default)s)")
    p.add_argument("--dataset", help="dataset name: mnist, fashion-mnist, kmnist, digits, mnist-sample, "
                                     "or idx (any IDX set of any image size, from --data DIR)")
    p.add_argument("--data", metavar="DIR", help="directory holding the dataset files")
    for flag, _field, typ, help_text in TRAIN_FLAGS:
        p.add_argument(flag, type=str, default=None, help=help_text, metavar=typ.__name__.upper())
    p.add_argument("--save", metavar="PATH", help="save the trained model (.npz) here (checked before "
                   "training; a run that does not complete is saved beside it, as PATH.interrupted.npz)")
    p.add_argument("--json", action="store_true", help="one JSON object per line per event")
    p.add_argument("--replay", metavar="RUN_ID", help="train again with a recorded run's settings and its live "
                   "changes, each at the same step (bit-identical weights on the same machine and --threads)")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (default: %(default)s)")
    p.add_argument("--progress-every", type=int, default=50, help=argparse.SUPPRESS)
    p.set_defaults(func=run_train)

    e = sub.add_parser("eval", help="evaluate a saved model", description="Test accuracy of a saved model.")
    e.add_argument("model", metavar="MODEL.npz")
    e.add_argument("--dataset", help="dataset name (default: the one the model was trained on)")
    e.add_argument("--data", metavar="DIR", help="directory holding the dataset files")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=run_eval)


#: Fields that no TRAIN_FLAGS entry sets directly, and the flag a user typed for them.
OTHER_FLAGS = {"preset": "--preset", "dataset": "--dataset", "val_size": "--val-size",
               "warmup_steps": "--warmup-epochs", "total_steps": "--epochs",
               "steps_per_epoch": "--batch-size"}
MAX_THREADS = 1024


def flag_for(field: str) -> str:
    """The command-line flag that sets a TrainConfig field ('hidden' -> '--layers')."""
    return next((flag for flag, fld, _, _ in TRAIN_FLAGS if fld == field), OTHER_FLAGS.get(field, field))


def config_usage_error(exc: Any, config: Any = None) -> Exception:
    """A ConfigError as the user sees it: named by the flag typed, in the flags' words."""
    from tui.commands import UsageError

    if exc.field == "warmup_steps" and config is not None:
        return UsageError(f"--warmup-epochs: a warm-up of {config.warmup_epochs:g} epoch(s) leaves no "
                          f"steps for the cosine schedule: use fewer than --epochs ({config.epochs})")
    return UsageError(f"{flag_for(exc.field)}: {exc.reason}")


def check_dataset_args(name: str, data: str | None, via: str = "") -> None:
    """Refuse a --dataset that does not exist, and a --data that cannot apply (exit 2).

    ``via`` says where ``name`` came from when the user did not type it ("--preset digits",
    "the model"); by default it is "--dataset NAME".
    """
    from engine.datasets import DATASETS
    from tui.commands import UsageError

    if name not in DATASETS:
        raise UsageError(f"--dataset: unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    given = f"--dataset {name}" if not via else f"dataset {name} (from {via})"
    if data is None and name == "idx":
        raise UsageError(f"{given}: needs --data DIR (a directory of the four IDX files, any image size)")
    if data is not None and name in ("digits", "mnist-sample"):
        what = "scikit-learn's 8x8 digits come with scikit-learn" if name == "digits" else \
            "the bundled sample ships with termnist"
        raise UsageError(f"--data {data}: does not apply to {given} ({what}, not from a "
                         "directory); use --dataset mnist or --dataset idx to read a directory")


def build_config(args: argparse.Namespace):
    """Preset + flags -> TrainConfig. Raises UsageError naming the bad flag."""
    from engine.errors import ConfigError
    from engine.presets import get_preset
    from engine.config import parse_layers
    from tui.commands import UsageError

    try:
        config = get_preset(args.preset)
    except ConfigError as exc:
        raise config_usage_error(exc) from None
    changes: dict[str, Any] = {}
    if args.dataset is not None:
        changes["dataset"] = args.dataset
    for flag, field, typ, _ in TRAIN_FLAGS:
        raw = getattr(args, flag[2:].replace("-", "_"))
        if raw is None:
            continue
        try:
            if field == "hidden":
                changes[field] = parse_layers(raw)
            elif typ is int:
                changes[field] = int(raw)
            elif typ is float:
                changes[field] = float(raw)
            else:
                changes[field] = raw
        except ValueError:
            kind = "a whole number" if typ is int else "a number"
            raise UsageError(f"{flag}: expected {kind}, got {raw!r}") from None
        except ConfigError as exc:
            raise UsageError(f"{flag}: {exc.reason}") from None
    try:
        config = config.replace(**changes)
    except ConfigError as exc:
        raise config_usage_error(exc) from None
    check_dataset_args(config.dataset, args.data, "" if args.dataset else f"--preset {args.preset}")
    return config


#: Flags that only act with a setting: (flag, attribute of args, config field, values it acts with).
DEPENDENT_FLAGS = (
    ("--momentum", "momentum", "optimizer", ("momentum", "nesterov")),
    ("--step-epochs", "step_epochs", "schedule", ("step",)),
    ("--gamma", "gamma", "schedule", ("step",)),
    ("--init-std", "init_std", "init", ("normal",)),
    ("--max-shift", "max_shift", "augment", ("shift",)),
)


def ignored_flags(args: argparse.Namespace, config: Any) -> list[str]:
    """Warnings for flags given that the settings make meaningless (--momentum with adam)."""
    notes = []
    for flag, attr, field, values in DEPENDENT_FLAGS:
        if getattr(args, attr, None) is not None and getattr(config, field) not in values:
            notes.append(f"{flag} has no effect with {flag_for(field)} {getattr(config, field)} (it applies to "
                         f"{' or '.join(values)}): ignored")
    return notes


def fit_val_size(config: Any, n_train: int, explicit: bool) -> tuple[Any, int | None]:
    """A preset's validation size that does not fit the training set (the default 10,000 on
    the 10,000-image bundled sample) becomes 1/5 of it. Returns (config, the old size when it
    was capped, else None). A size given with --val-size is left alone: the engine refuses
    it with a message naming the flag. The rule is engine.datasets.fit_val_size."""
    from engine.datasets import fit_val_size as fit

    size = config.val_size if explicit else fit(config.val_size, n_train)
    if size == config.val_size:
        return config, None
    return config.replace(val_size=size), config.val_size


def replay_source(args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]], str, str | None, Any]:
    """``--replay RUN_ID``: (settings, recorded changes, dataset name, data directory, run) of a
    run in the store. Settings flags cannot be combined with it (UsageError); --data can (the
    data may have moved)."""
    from engine.config import TrainConfig
    from engine.errors import ConfigError
    from engine.runs import RunStore, StoreError, UnknownRunError
    from tui.commands import UsageError

    given = [flag for flag, _f, _t, _h in TRAIN_FLAGS if getattr(args, flag[2:].replace("-", "_")) is not None]
    given += ["--dataset"] * (args.dataset is not None) + ["--preset"] * (args.preset != "default")
    if given:
        raise UsageError(f"--replay: takes the run's own settings; do not combine it with {', '.join(given)}")
    try:
        run = RunStore().get(args.replay)
    except (StoreError, UnknownRunError) as exc:
        raise UsageError(f"--replay: {exc}") from None
    try:
        config = TrainConfig.from_dict(run.settings)
    except (ConfigError, TypeError) as exc:
        raise UsageError(f"--replay: run {run.id} has settings this termnist cannot use: {exc}") from None
    name = "mnist-sample" if run.sample else run.dataset or config.dataset
    return config, list(run.changes), name, None if run.sample else run.data_dir, run


def run_train(args: argparse.Namespace) -> int:
    replay: list[dict[str, Any]] = []
    dataset_name, data_dir, source = None, args.data, None
    if args.replay is not None:
        config, replay, dataset_name, recorded_dir, source = replay_source(args)
        data_dir = args.data or recorded_dir
    else:
        config = build_config(args)
    from engine.checkpoint import save_path
    from engine.datasets import load_dataset
    from engine.errors import ConfigError, TermnistError
    from engine.events import Finished
    from engine.training import TrainingSession
    from tui.commands import UsageError

    if not 1 <= args.threads <= MAX_THREADS:
        raise UsageError(f"--threads: {args.threads} is out of range 1..{MAX_THREADS}")
    if args.save is not None:   # a target that cannot be written is found now, not after training
        try:
            save_path(args.save)
        except TermnistError as exc:
            raise UsageError(f"--save: {exc}") from None
    out = _Output(json_mode=args.json)
    for note in ignored_flags(args, config):
        out.note(note)
    try:
        dataset = load_dataset(dataset_name or config.dataset, data_dir=data_dir)
        config, capped = fit_val_size(config, len(dataset.y_train),
                                      explicit=args.val_size is not None or source is not None)
        session = TrainingSession(config, dataset, progress_every=max(1, args.progress_every), replay=replay)
    except ConfigError as exc:   # e.g. a network too large for memory, refused before training
        raise config_usage_error(exc, config) from None
    except TermnistError as exc:
        return out.error(str(exc))
    if dataset.is_sample:
        out.note(
            f"using the bundled MNIST sample ({len(dataset.y_train):,} train / {len(dataset.y_test):,} test images);"
            " for the full set run `termnist download` or pass --data DIR"
        )
    if source is not None:
        threads = (source.machine or {}).get("threads")
        out.note(f"replaying run {source.id}: its settings and {len(replay)} recorded live change(s)"
                 + (f" (it trained with {threads} BLAS thread(s), this replay with {args.threads}: the"
                    " weights may differ in the last bits)" if threads and threads != args.threads else ""))
    if capped is not None:
        out.note(
            f"validation size {capped:,} leaves no training data in {dataset.title} ({len(dataset.y_train):,}"
            f" training images): using {config.val_size:,} (1/5 of it) instead; --val-size N sets it"
        )

    interrupted = {"count": 0}

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted["count"] += 1
        if interrupted["count"] > 1:
            raise KeyboardInterrupt
        session.stop()
        out.note("stopping after the current batch (Ctrl+C again to abort)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    from threadpoolctl import threadpool_limits

    from engine.runs import RunRecorder

    # the run history (engine.runs); a store that cannot be used is one note, never a failure
    recorder = RunRecorder.open(dataset=dataset, source="cli", threads=args.threads, on_error=out.note)
    try:
        with threadpool_limits(limits=args.threads, user_api="blas"), recorder:
            finished: Finished | None = None
            for event in session.run():
                recorder.feed(event)
                out.run_id = recorder.last_run_id
                out.event(event)
                if isinstance(event, Finished):
                    finished = event
    finally:
        signal.signal(signal.SIGINT, previous)
    status = 0
    if finished is None:
        return 1
    if session.unapplied_replay:
        out.note(f"{len(session.unapplied_replay)} recorded change(s) were never reached: the replay"
                 " ended before their step")
    incomplete = ("interrupted" if interrupted["count"] else
                  "diverged" if finished.reason == "diverged" else
                  "stopped" if finished.reason != "completed" else "")
    if args.save is not None and not save_model(out, session.checkpoint(), args.save, incomplete,
                                                record=recorder.set_checkpoint):
        status = 1
    if interrupted["count"]:
        if finished.steps_into_epoch:
            out.note(f"interrupted: stopped at {ev.describe_position(finished.epochs_done, finished.steps_into_epoch)}"
                     " (weights at that step; a checkpoint of them cannot be resumed)")
        else:
            out.note(f"interrupted: stopped after {finished.epochs_done} epoch(s)")
        return 130
    if finished.reason == "diverged":
        return 1
    return status


def save_model(out: _Output, ckpt: Any, wanted: str, incomplete: str = "",
               record: Callable[[str], None] | None = None) -> bool:
    """Save the run's model for ``--save wanted``; True when it went where asked.

    A run that did not complete (``incomplete``: "interrupted", "diverged", "stopped") never
    replaces a file: it is saved beside it (``good.interrupted.npz``), and says so. When the
    write fails (disk full, ...) the weights are kept in the user data directory (or the
    temporary directory) and the error says where.
    """
    import tempfile

    from engine.checkpoint import beside, keep_checkpoint, save_checkpoint
    from engine.errors import TermnistError
    from engine.recovery import state_dir

    target: Any = wanted
    try:
        if incomplete:
            target = beside(wanted, incomplete)
        path = save_checkpoint(target, ckpt)
    except TermnistError as exc:
        kept, reasons = keep_checkpoint(ckpt, target, [state_dir() / "unsaved", tempfile.gettempdir()])
        if kept is None:
            out.error(f"{exc}; the weights could not be kept anywhere else either ({'; '.join(reasons)})")
        else:
            out.error(f"{exc}; the weights are kept in {kept} instead")
            out.saved(str(kept))
            if record is not None:
                record(str(kept))
        return False
    out.saved(str(path))
    if record is not None:
        record(str(path))               # the run history knows where its model is
    if incomplete:
        out.note(f"the run {'was ' if incomplete == 'interrupted' else ''}{incomplete}: its model is saved as "
                 f"{path}, not over {wanted}")
    return not incomplete


def run_eval(args: argparse.Namespace) -> int:
    from engine.checkpoint import load_checkpoint
    from engine.datasets import DATASETS, load_dataset
    from engine.errors import TermnistError
    from engine.metrics import confusion_matrix, per_class_accuracy
    from engine.training import evaluate_model

    if args.dataset is not None:
        check_dataset_args(args.dataset, args.data)
    out = _Output(json_mode=args.json)
    try:
        ckpt = load_checkpoint(args.model)
        name = args.dataset or ckpt.metadata.get("dataset") or ckpt.config.dataset
        if not isinstance(name, str) or name not in DATASETS:
            raise TermnistError(f"{args.model}: trained on an unknown dataset {name!r}: give --dataset")
        check_dataset_args(name, args.data, "" if args.dataset else f"the model {args.model}")
        dataset = load_dataset(name, data_dir=args.data)
        if dataset.n_features != ckpt.model.sizes[0] or dataset.n_classes != ckpt.model.sizes[-1]:
            raise TermnistError(
                f"{args.model}: the model takes {ckpt.model.sizes[0]} inputs and {ckpt.model.sizes[-1]} classes,"
                f" but {dataset.title} has {dataset.n_features} and {dataset.n_classes}"
            )
        t0 = time.perf_counter()
        loss, acc, preds = evaluate_model(ckpt.model, dataset.x_test, dataset.y_test, dataset.max_value)
        seconds = time.perf_counter() - t0
    except TermnistError as exc:
        return out.error(str(exc))
    per_class = per_class_accuracy(dataset.y_test, preds, dataset.n_classes)
    cm = confusion_matrix(dataset.y_test, preds, dataset.n_classes)
    if args.json:
        print(json.dumps({
            "event": "eval", "model": args.model, "dataset": dataset.name, "sample": dataset.is_sample,
            "n_test": int(len(dataset.y_test)), "test_acc": acc, "test_loss": loss,
            "per_class_acc": [float(a) for a in per_class], "confusion_matrix": cm.tolist(),
            "seconds": seconds,
        }), flush=True)
        return 0
    src = "bundled sample" if dataset.is_sample else dataset.source
    print(f"{args.model}: {dataset.title} test set ({len(dataset.y_test):,} images, {src})")
    print(f"test accuracy {acc:.2%}  loss {loss:.4f}")
    print("per-class accuracy:")
    for name_, a in zip(dataset.class_names, per_class):
        print(f"  {name_:>12}  {a:7.2%}")
    print("confusion matrix (rows: true, columns: predicted):")
    width = max(5, len(str(int(cm.max()))) + 1)
    print(" " * 6 + "".join(f"{i:>{width}}" for i in range(dataset.n_classes)))
    for i, row in enumerate(cm):
        print(f"{i:>5} " + "".join(f"{int(v):>{width}}" for v in row))
    return 0


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "    -  "
    return f"{value:7.2%}" if pct else f"{value:.4f}"


class _Output:
    """Renders session events as human lines or JSON lines."""

    def __init__(self, json_mode: bool) -> None:
        self.json = json_mode
        self.live = (not json_mode) and sys.stderr.isatty()
        self._progress_shown = False
        self.run_id: str | None = None     # the run store's id of this run, once recorded

    def _emit(self, obj: dict[str, Any]) -> None:
        print(json.dumps(obj, default=_json_default), flush=True)

    def _clear_progress(self) -> None:
        if self._progress_shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._progress_shown = False

    def note(self, text: str) -> None:
        if self.json:
            self._emit({"event": "note", "message": text})
        else:
            self._clear_progress()
            print(f"termnist: {text}", file=sys.stderr, flush=True)

    def error(self, text: str) -> int:
        self._clear_progress()
        if self.json:
            self._emit({"event": "error", "message": text})
        print(f"termnist: error: {text}", file=sys.stderr, flush=True)
        return 1

    def saved(self, path: str) -> None:
        if self.json:
            self._emit({"event": "saved", "path": path})
        else:
            print(f"saved model to {path}", flush=True)

    def event(self, e: ev.Event) -> None:
        if self.json:
            self._json_event(e)
            return
        match e:
            case ev.RunStarted():
                if self.run_id:
                    print(f"run id: {self.run_id}", flush=True)
                print(f"training on {e.dataset}: {e.n_train:,} train, {e.n_val:,} validation, {e.n_test:,} test",
                      flush=True)
                print("settings: " + " ".join(f"{k}={v}" for k, v in e.config.items()), flush=True)
            case ev.BatchProgress():
                if self.live:
                    frac = e.step / e.steps_per_epoch
                    bar = "#" * int(frac * 20)
                    sys.stderr.write(f"\repoch {e.epoch} [{bar:<20}] {frac:4.0%} loss {e.loss:.4f}")
                    sys.stderr.flush()
                    self._progress_shown = True
            case ev.EpochEnded():
                self._clear_progress()
                print(
                    f"epoch {e.epoch:>3}/{e.epochs}  train loss {e.train_loss:.4f} acc {e.train_acc:7.2%}"
                    f"  val loss {_fmt(e.val_loss)} acc {_fmt(e.val_acc, pct=True)}"
                    f"  {e.seconds:6.2f}s  {e.samples_per_s:,.0f} img/s",
                    flush=True,
                )
            case ev.Diverged():
                self._clear_progress()
                print(f"termnist: {e.message}", file=sys.stderr, flush=True)
            case ev.Stopped():
                self._clear_progress()
                if e.steps_into_epoch:
                    print(f"stopped at {ev.describe_position(e.epoch, e.steps_into_epoch)} (weights at that step,"
                          f" after {e.epoch} completed epoch(s))", flush=True)
                else:
                    print(f"stopped after {e.epoch} completed epoch(s)", flush=True)
            case ev.Finished():
                self._clear_progress()
                where = (f"of the weights at {ev.describe_position(e.epochs_done, e.steps_into_epoch)}"
                         if e.steps_into_epoch
                         else f"after {e.epochs_done} epoch(s)")
                print(f"test accuracy {e.test_acc:.2%} (loss {e.test_loss:.4f}) {where} in {e.seconds:.1f}s",
                      flush=True)
            case ev.Failed():
                self.error(e.message)
            case ev.HyperparamsChanged():
                self._clear_progress()
                print(e.describe(), flush=True)

    def _json_event(self, e: ev.Event) -> None:
        from dataclasses import asdict

        d = asdict(e)
        if isinstance(e, ev.BatchProgress):
            d.pop("points", None)
        name = _JSON_NAMES[type(e)]
        if name in ("start", "done"):
            d = {"run_id": self.run_id, **d}        # the run history's id (termnist runs show ID)
        self._emit({"event": name, **d})


#: The "event" field of each event's JSON line.
_JSON_NAMES: dict[type[ev.Event], str] = {
    ev.RunStarted: "start", ev.BatchProgress: "progress", ev.EpochEnded: "epoch", ev.Paused: "paused",
    ev.Resumed: "resumed", ev.Diverged: "diverged", ev.Stopped: "stopped", ev.Finished: "done",
    ev.Failed: "failed", ev.HyperparamsChanged: "changed",
}


def _json_default(obj: Any) -> Any:
    try:
        return obj.item()
    except AttributeError:
        return str(obj)
