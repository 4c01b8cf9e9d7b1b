"""The termnist app: tune hyperparameters, train, watch the loss, inspect the digits.

The app composes four panels and routes data between them (attributes down, messages
up); a panel never reaches into a sibling. Training, loading and saving run in thread
workers; the training worker talks back only through messages (tui.runner + tui.messages).
"""

from __future__ import annotations

import functools
import os
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState, get_current_worker

from engine.errors import DatasetNotFoundError
from tui import messages as msg
from tui import settings as settings_store
from tui.forms import FIELDS_BY_NAME, describe_errors
from tui.runner import Predictions, TrainingRunner, evaluate_checkpoint
from tui.screens.dialogs import ConfirmScreen, PathScreen
from tui.screens.digit_detail import DigitScreen
from tui.screens.help import HelpScreen
from tui.widgets.digit_preview import DigitPreview
from tui.widgets.epoch_log import EpochLog, format_duration, format_epoch_row
from tui.widgets.hyperparameter_form import HyperparameterForm
from tui.widgets.loss_chart import LossChart

PANELS = ("form", "train", "digits")
PANEL_TITLES = {"form": "Settings", "train": "Training", "digits": "Digits"}
MIN_SIZE = (60, 20)
AUTOSAVE_NAME = "autosave.npz"
MNIST_CREDIT = "MNIST: Yann LeCun, Corinna Cortes, Christopher J.C. Burges (CC BY-SA 3.0)"


def guarded(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Make a message handler exception-safe: an error becomes a notification + log line.

    (An exception escaping a handler would end the app, worker or not.)
    """

    @functools.wraps(handler)
    def wrapper(self: TermnistApp, message: Any) -> Any:
        try:
            return handler(self, message)
        except Exception as exc:  # noqa: BLE001
            self.report_error(f"{handler.__name__}: {type(exc).__name__}: {exc}",
                              details="".join(traceback.format_exception(exc)))
            return None

    return wrapper


class TermnistApp(App[int]):
    """Train an MLP on handwritten digits, in the terminal, by keyboard."""

    CSS_PATH = "app.tcss"
    TITLE = "termnist"
    ENABLE_COMMAND_PALETTE = False     # ctrl+p belongs to readline habits; F1 is the help
    HORIZONTAL_BREAKPOINTS = [(0, "-w-tiny"), (MIN_SIZE[0], "-w-narrow"), (120, "-w-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-h-tiny"), (MIN_SIZE[1], "-h-short"), (40, "-h-tall"), (56, "-h-huge")]

    BINDINGS = [
        Binding("f5", "train", "Train"),
        Binding("f6", "pause", "Pause"),
        Binding("f6", "resume", "Resume"),
        Binding("f7", "stop", "Stop"),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+o", "load", "Load", priority=True),
        Binding("f2", "toggle_chart", "Chart"),
        Binding("f3", "next_panel", "Panel"),
        Binding("f1,question_mark", "help", "Help", key_display="F1"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        data_dir: str | None = None,
        dataset: str | None = None,
        preset: str | None = None,
        load: str | None = None,
        resume: bool = False,
        *,
        config_dir: str | os.PathLike[str] | None = None,
        load_dataset_fn: Callable[[str, str | None], Any] | None = None,
        preview_limit: int = 10_000,
        progress_every: int = 20,
        remember: bool = True,
        autosave: bool = True,
    ) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.start_dataset = dataset
        self.start_preset = preset
        self.start_load = load
        self.start_resume = resume
        self.config_dir = config_dir
        self.preview_limit = preview_limit
        self.progress_every = progress_every
        self.remember = remember
        self.autosave = autosave and remember
        self._load_dataset_fn = load_dataset_fn
        self._datasets: dict[str, Any] = {}          # name -> engine Dataset (read-only)
        self._datasets_lock = threading.Lock()
        self._loading_lock = threading.Lock()
        self.dataset: Any = None                     # dataset shown in the preview
        self.runner: TrainingRunner | None = None    # the run in progress
        self.training = False
        self.paused = False
        self.model: Any = None                       # a TrainingSession or a loaded Checkpoint
        self.model_dataset: str | None = None
        self.last_test_acc: float | None = None
        self.last_val_acc: float | None = None
        self.predictions: Predictions | None = None
        self.busy: set[str] = set()                  # "save", "load" while their workers run
        self.last_saved: str | None = None
        self._told_next_run = False
        self.run_count = 0
        self.panel = "form"
        self.progress_text = ""
        self.errors_seen: list[str] = []             # messages of reported errors (tests)

    # ------------------------------------------------------------------ composition
    def compose(self) -> ComposeResult:
        from engine.datasets import available_datasets
        from engine.presets import PRESETS

        presets = {name: (p.summary, p.config) for name, p in PRESETS.items()}
        yield Static("", id="panel-bar", markup=False)
        with Container(id="body", classes="-show-form"):
            form = HyperparameterForm(presets, available_datasets(), id="form")
            form.border_title = "Settings"
            yield form
            chart = LossChart(id="chart")
            chart.border_title = "Loss (F2: accuracy)"
            yield chart
            log = EpochLog(id="epoch-log")
            log.border_title = "Epoch log"
            yield log
            preview = DigitPreview(id="preview")
            preview.border_title = "Test digits"
            yield preview
        yield Static("", id="status", markup=False)
        yield Static(
            f"Terminal too small: termnist needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}.\n"
            "Enlarge the window (or reduce the font size).",
            id="too-small", markup=False,
        )
        yield Footer(compact=True)

    @property
    def form(self) -> HyperparameterForm:
        return self.query_one("#form", HyperparameterForm)

    @property
    def chart(self) -> LossChart:
        return self.query_one("#chart", LossChart)

    @property
    def epoch_log(self) -> EpochLog:
        return self.query_one("#epoch-log", EpochLog)

    @property
    def preview(self) -> DigitPreview:
        return self.query_one("#preview", DigitPreview)

    def on_mount(self) -> None:
        from engine.presets import get_preset

        saved = settings_store.load_settings(self.config_dir) if self.remember else {}
        self.form.set_config(get_preset("default"))
        if saved.get("base"):
            try:
                from engine.training import TrainConfig

                self.form.base = TrainConfig.from_dict(saved["base"])
            except Exception:  # noqa: BLE001 - a stale settings file must not stop the app
                pass
        if saved.get("form"):
            self.form.set_values(saved["form"])
        ui = saved.get("ui", {})
        if ui.get("chart") in ("loss", "accuracy"):
            self.chart.set_mode(ui["chart"])
            self._chart_title()
        if ui.get("shading") in ("ascii", "blocks"):
            self.preview.set_mode(ui["shading"])
        if self.start_preset:
            if self.start_preset in self.form.presets:
                self.form.apply_preset(self.start_preset)
            else:
                self.report_error(f"unknown preset {self.start_preset!r}; choose one of "
                                  f"{', '.join(self.form.presets)}")
        if self.start_dataset:
            if self.start_dataset in self.form.datasets:
                self.form.set_values({"dataset": self.start_dataset})
            else:
                self.report_error(f"unknown dataset {self.start_dataset!r}; choose one of "
                                  f"{', '.join(self.form.datasets)}")
        self.set_panel("form", focus=True)
        self.update_status()
        self.epoch_log.write_event("termnist ready: F5 trains with the settings, F1 shows all keys.")
        if self.start_resume and self.autosave_path.exists():
            self._resume_worker(str(self.autosave_path))
        elif self.start_resume:
            self.report_error("nothing to resume: no interrupted run was saved (runs are "
                              f"checkpointed after each epoch to {self.autosave_path})")
            self._load_dataset(self.form_dataset())
        elif self.start_load:
            self._load_model(self.start_load)
        else:
            self._load_dataset(self.form_dataset())

    # ------------------------------------------------------------------ layout
    def set_panel(self, panel: str, focus: bool | None = None) -> None:
        """Which panel a small terminal shows (a wide one shows them all).

        ``focus``: move the focus into the panel; by default only when the panel changes
        in a small terminal (a hidden Input must not keep the keyboard).
        """
        changed = panel != self.panel
        self.panel = panel
        body = self.query_one("#body")
        for p in PANELS:
            body.set_class(p == panel, f"-show-{p}")
        parts = [f"[{PANEL_TITLES[p]}]" if p == panel else f" {PANEL_TITLES[p]} " for p in PANELS]
        self.query_one("#panel-bar", Static).update(" ".join(parts) + "   F3: next panel")
        if focus is None:
            focus = changed and self.is_mounted and not self._wide()
        if focus:
            target = {"form": self.form, "train": self.epoch_log.log_widget, "digits": self.preview}[panel]
            self.call_after_refresh(self._focus_panel, target)

    def _wide(self) -> bool:
        screen = self.screen
        return screen.has_class("-w-wide") and (screen.has_class("-h-tall") or screen.has_class("-h-huge"))

    def action_next_panel(self) -> None:
        self.set_panel(PANELS[(PANELS.index(self.panel) + 1) % len(PANELS)], focus=True)

    def _focus_panel(self, target: Any) -> None:
        if target is self.form:
            fields = [w for w in self.form.query("Input, Select") if w.focusable]
            if fields:
                fields[0].focus()
                return
        if target.focusable:
            target.focus()

    # ------------------------------------------------------------------ bindings
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "train":
            return not self.training and "load" not in self.busy
        if action == "pause":
            return self._session_open() and not self.paused
        if action == "resume":
            return self.training and self.paused
        if action == "stop":
            return self.training
        if action == "save":
            return self.current_model() is not None and "save" not in self.busy
        if action == "load":
            return not self.training and "load" not in self.busy
        return True

    def _state_changed(self) -> None:
        self.refresh_bindings()
        self.update_status()
        self.query_one("#body").set_class(self.training, "-running")

    # ------------------------------------------------------------------ status
    def update_status(self) -> None:
        if self.training:
            state = "PAUSED" if self.paused else "training"
            if self.progress_text:
                state += f" {self.progress_text}"
        elif "load" in self.busy:
            state = "loading..."
        elif self.last_test_acc is not None:
            state = f"idle, test accuracy {self.last_test_acc * 100:.2f}%"
        else:
            state = "idle"
        ds = self.dataset
        if ds is None:
            data = "no dataset loaded"
        elif ds.is_sample:
            data = "bundled MNIST sample; MNIST: LeCun, Cortes, Burges (CC BY-SA 3.0)"
        else:
            data = f"{ds.title} ({len(ds.y_train):,} train images)"
        self.query_one("#status", Static).update(f" {state} | {data}")

    def report_error(self, message: str, details: str = "") -> None:
        """Show an error as a notification and a log line; never raises."""
        self.errors_seen.append(message)
        try:
            self.notify(message, title="Error", severity="error", timeout=8)
            self.epoch_log.write_event(message, "error")
            if details:
                self.log.error(details)
        except Exception:  # noqa: BLE001 - reporting must not fail
            pass

    # ------------------------------------------------------------------ datasets
    def get_dataset(self, name: str) -> Any:
        """The loaded dataset ``name``, loading it now if needed (call from a worker)."""
        with self._datasets_lock:
            cached = self._datasets.get(name)
        if cached is not None:
            return cached
        with self._loading_lock:          # one load at a time: a second request waits, then hits the cache
            with self._datasets_lock:
                cached = self._datasets.get(name)
            if cached is not None:
                return cached
            if self._load_dataset_fn is not None:
                ds = self._load_dataset_fn(name, self.data_dir)
            else:
                from engine.datasets import load_dataset

                ds = load_dataset(name, self.data_dir)
            with self._datasets_lock:
                self._datasets = {name: ds}   # keep one: datasets can be large
        return ds

    @work(thread=True, exclusive=True, group="data", exit_on_error=False)
    def _load_dataset(self, name: str) -> None:
        worker = get_current_worker()
        try:
            ds = self.get_dataset(name)
            if not worker.is_cancelled:     # a newer request superseded this one
                self.post_message(msg.DatasetReady(ds))
        except DatasetNotFoundError as exc:
            self.post_message(msg.DatasetMissing(name, str(exc), exc.searched))
        except Exception as exc:  # noqa: BLE001
            self.post_message(msg.DatasetMissing(name, str(exc)))

    @guarded
    def on_dataset_ready(self, message: msg.DatasetReady) -> None:
        ds = message.dataset
        if ds is self.dataset:
            return
        self.dataset = ds
        self.preview.set_images(ds.x_test, ds.y_test, ds.class_names, ds.max_value)
        self.form.n_train = len(ds.y_train)
        if ds.is_sample:
            self.epoch_log.write_event(
                f"Using the bundled MNIST sample ({len(ds.y_train):,} train / {len(ds.y_test):,} "
                f"test images), not the full set: `termnist download mnist` fetches it. {MNIST_CREDIT}.")
        else:
            self.epoch_log.write_event(
                f"Dataset {ds.title}: {len(ds.y_train):,} train / {len(ds.y_test):,} test images from {ds.source}")
        try:
            too_big = int(self.form.values().get("val_size", "0")) >= len(ds.y_train)
        except ValueError:
            too_big = False
        if too_big and not self.training:
            val = len(ds.y_train) // 5
            self.form.set_values({"val_size": str(val)})
            self.epoch_log.write_event(f"validation size set to {val} to fit {ds.title}")
        self.update_status()

    @guarded
    def on_dataset_missing(self, message: msg.DatasetMissing) -> None:
        self.preview.clear(f"No {message.name} data found.")
        lines = [f"{message.name}: {message.message}"]
        if message.searched:
            lines.append("Looked in: " + "; ".join(message.searched))
            lines.append(f"To fix: run `termnist download {message.name}`, or start with --data DIR "
                         "(a directory with the four IDX files), or set TERMNIST_DATA.")
        for line in lines:
            self.epoch_log.write_event(line, "error")
        self.notify("\n".join(lines[:1] + lines[2:]), title="No data", severity="error", timeout=15)
        self.update_status()

    # ------------------------------------------------------------------ training
    def action_train(self) -> None:
        if self.training:
            self.notify("Already training: F7 stops the current run.", severity="warning")
            return
        if "load" in self.busy:
            self.notify("A model is still loading; try again in a moment.", severity="warning")
            return
        config, errors = self.form.get_config()
        if config is None:
            reason = describe_errors(errors)
            self.notify(f"Cannot train: {reason}", title="Check the settings", severity="error")
            self.epoch_log.write_event(f"cannot train: {reason}", "error")
            self.set_panel("form", focus=False)
            first = next(iter(errors))
            try:
                self.form.query_one(f"#field-{first}").focus()
            except Exception:  # noqa: BLE001
                pass
            return
        self.start_training(config)

    def start_training(self, config: Any, resume: Any = None) -> None:
        self.training = True
        self.paused = False
        self.progress_text = "starting..."
        self.run_count += 1
        self._told_next_run = False
        self.save_settings()
        runner = TrainingRunner(post=self._post_update, preview_limit=self.preview_limit,
                                after_epoch=self._autosave if self.autosave else None)
        self.runner = runner
        self.chart.clear()
        if resume is not None:
            self._replay_history(resume)
        self.epoch_log.set_progress("starting...", 0, 1)
        self._state_changed()
        if self.panel == "form":
            self.set_panel("train")
        self._train(runner, config, resume)

    @property
    def autosave_path(self) -> Path:
        """Where each finished epoch is checkpointed, for `termnist --resume` after a lost
        connection; removed when a run ends normally."""
        return settings_store.config_dir(self.config_dir) / AUTOSAVE_NAME

    def _autosave(self, session: Any, row: Any) -> None:
        """Worker thread, after each epoch: write the exact end-of-epoch state atomically."""
        from engine.checkpoint import save_checkpoint

        path = self.autosave_path
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, session.checkpoint(last_completed_epoch=True))

    def _discard_autosave(self) -> None:
        try:
            self.autosave_path.unlink(missing_ok=True)
        except OSError:
            pass

    def _post_update(self, update: Any) -> None:
        """Called in the worker thread: hand one runner update to the UI (non-blocking)."""
        self.post_message(msg.wrap(update))

    @work(thread=True, exclusive=True, group="training", exit_on_error=False, name="training")
    def _train(self, runner: TrainingRunner, config: Any, resume: Any) -> None:
        from threadpoolctl import threadpool_limits

        def open_session() -> tuple[Any, np.ndarray, np.ndarray]:
            from engine.training import TrainingSession

            ds = self.get_dataset(config.dataset)
            self.post_message(msg.DatasetReady(ds))     # the preview shows what is trained on
            session = TrainingSession(config, ds, progress_every=self.progress_every, resume=resume)
            return session, ds.x_test, ds.y_test

        worker = get_current_worker()
        runner.cancelled = lambda: worker.is_cancelled
        with threadpool_limits(limits=1):
            runner.run(open_session)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        try:
            worker = event.worker
            if worker.group != "training" or worker.state not in (
                    WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
                return
            if worker.state == WorkerState.ERROR:
                self.report_error(f"training worker failed: {worker.error}")
            runner = self.runner
            if runner is not None and runner.session is not None:
                self.model = runner.session      # what Save writes until the next run or load
            self.runner = None
            self.training = False
            self.paused = False
            self.progress_text = ""
            self.epoch_log.set_progress("idle")
            self._state_changed()
        except Exception as exc:  # noqa: BLE001
            self.report_error(f"worker state: {exc}")

    def _session_open(self) -> bool:
        return self.runner is not None and self.runner.session is not None

    def action_pause(self) -> None:
        if self._session_open() and not self.paused:
            self.runner.pause()
            self.paused = True
            self.epoch_log.write_event("pausing...")
            self._state_changed()

    def action_resume(self) -> None:
        if self.runner is not None and self.paused:
            self.runner.resume()
            self.paused = False
            self._state_changed()

    def action_stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.epoch_log.write_event("stopping: the run ends after the current batch")
            self.progress_text = "stopping..."
            self.update_status()

    def stop_training(self) -> None:
        """Ask the run to end (the worker thread ends at its next batch)."""
        if self.runner is not None:
            self.runner.stop()

    # --- messages from the training worker ---
    @guarded
    def on_run_started(self, message: msg.RunStarted) -> None:
        u = message.update
        from engine.training import TrainConfig

        try:
            desc = TrainConfig.from_dict(u.config).describe()
        except Exception:  # noqa: BLE001
            desc = str(u.config)
        resumed = f", resuming after epoch {u.start_epoch}" if u.start_epoch else ""
        self.epoch_log.write_event(
            f"run {self.run_count}: {u.n_train:,} train / {u.n_val:,} val / {u.n_test:,} test, "
            f"{u.steps_per_epoch} steps/epoch{resumed}; {desc}")
        self.last_test_acc = None
        self.last_val_acc = None
        self.model_dataset = u.config.get("dataset", self.model_dataset)
        self._state_changed()

    @guarded
    def on_loss_points(self, message: msg.LossPoints) -> None:
        self.chart.add_steps(message.update.points, message.update.steps_per_epoch)

    @guarded
    def on_progress_changed(self, message: msg.ProgressChanged) -> None:
        u = message.update
        self.progress_text = (f"epoch {u.epoch}/{u.epochs} step {u.step}/{u.steps_per_epoch} "
                              f"loss {u.loss:.4f} ETA {format_duration(u.eta_s)}")
        self.epoch_log.set_progress(self.progress_text, u.step, u.steps_per_epoch)
        self.update_status()

    @guarded
    def on_epoch_completed(self, message: msg.EpochCompleted) -> None:
        u = message.update
        self.epoch_log.write_row(format_epoch_row(u.epoch, u.epochs, u.train_loss, u.train_acc,
                                                  u.val_loss, u.val_acc, u.seconds, u.samples_per_s))
        self.chart.add_epoch(u.epoch, u.train_acc, u.val_loss, u.val_acc)
        self.last_val_acc = u.val_acc

    @guarded
    def on_predictions_ready(self, message: msg.PredictionsReady) -> None:
        self.predictions = message.update
        self.preview.set_predictions(message.update)

    @guarded
    def on_run_state_changed(self, message: msg.RunStateChanged) -> None:
        u = message.update
        self.paused = u.paused
        what = "paused" if u.paused else "resumed"
        self.epoch_log.write_event(f"{what} at epoch {u.epoch} step {u.step}")
        self._state_changed()

    @guarded
    def on_run_log(self, message: msg.RunLog) -> None:
        u = message.update
        self.epoch_log.write_event(u.text, u.severity)
        if u.notify:
            self.notify(u.text, severity="warning" if u.severity == "warning" else "information")

    @guarded
    def on_run_finished(self, message: msg.RunFinished) -> None:
        u = message.update
        self.last_test_acc = u.test_acc
        text = (f"run {self.run_count} {u.reason} after {u.epochs_done} epoch(s) in "
                f"{format_duration(u.seconds)}: test accuracy {u.test_acc * 100:.2f}% "
                f"(loss {u.test_loss:.4f})")
        self.epoch_log.write_event(text)
        self.notify(text, title="Training finished")
        self._discard_autosave()   # the run ended on purpose: nothing to resume
        self.update_status()

    @guarded
    def on_training_failed(self, message: msg.TrainingFailed) -> None:
        u = message.update
        self.report_error(u.message, details=u.details)
        if u.field in FIELDS_BY_NAME:
            self.form.show_error(u.field, u.message.split(": ", 1)[-1])
            if not self._wide():
                self.set_panel("form", focus=False)
            self.form.query_one(f"#field-{u.field}").focus()

    # ------------------------------------------------------------------ chart / preview
    def action_toggle_chart(self) -> None:
        self.chart.toggle_mode()
        self._chart_title()

    def _chart_title(self) -> None:
        other = "accuracy" if self.chart.mode == "loss" else "loss"
        self.chart.border_title = f"{self.chart.mode.capitalize()} (F2: {other})"

    @guarded
    def on_hyperparameter_form_changed(self, message: HyperparameterForm.Changed) -> None:
        if self.training and not self._told_next_run:
            self._told_next_run = True
            self.epoch_log.write_event("settings changed: they apply to the next run, not this one")

    @guarded
    def on_digit_preview_zoom_requested(self, message: DigitPreview.ZoomRequested) -> None:
        ds = self.dataset
        if ds is None:
            return
        i = message.index
        p = self.predictions
        proba = p.probabilities[i] if p is not None and i < len(p.probabilities) else None
        self.push_screen(DigitScreen(i, ds.x_test[i], ds.max_value, int(ds.y_test[i]),
                                     tuple(ds.class_names), proba, self.preview.mode))

    @guarded
    def on_digit_preview_shading_changed(self, message: DigitPreview.ShadingChanged) -> None:
        self.save_settings()

    # ------------------------------------------------------------------ save / load
    def default_save_path(self) -> str:
        name = self.model_dataset or (self.dataset.name if self.dataset is not None else "model")
        acc = self.last_test_acc if self.last_test_acc is not None else self.last_val_acc
        tag = f"{acc * 100:.1f}" if acc is not None else "untested"
        return f"termnist-{name}-{tag}.npz"

    def current_model(self) -> Any:
        """What Save writes: the running session (a consistent snapshot), else the last model."""
        if self.runner is not None and self.runner.session is not None:
            return self.runner.session
        return self.model

    def action_save(self) -> None:
        if self.current_model() is None:
            self.notify("Nothing to save yet: train or load a model first.", severity="warning")
            return

        def chosen(path: str | None) -> None:
            if not path:
                return
            target = Path(path).expanduser()
            if target.suffix == "":
                target = target.with_suffix(".npz")
            if target.exists():
                self.push_screen(ConfirmScreen(f"{target} exists. Overwrite it?", yes="Overwrite"),
                                 lambda ok: self._save(str(target)) if ok else None)
            else:
                self._save(str(target))

        self.push_screen(PathScreen("Save the model to", self.default_save_path(),
                                    "Enter = save (written atomically), Escape = cancel"), chosen)

    def _save(self, path: str) -> None:
        self.busy.add("save")
        self.refresh_bindings()
        self._save_worker(path, self.current_model())

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def _save_worker(self, path: str, model: Any) -> None:
        from engine.checkpoint import save_checkpoint

        try:
            ckpt = model.checkpoint() if hasattr(model, "checkpoint") else model
            final = save_checkpoint(path, ckpt)
            self.post_message(msg.ModelSaved(str(final)))
        except Exception as exc:  # noqa: BLE001
            self.post_message(msg.WorkFailed("save", f"cannot save: {exc}"))

    @guarded
    def on_model_saved(self, message: msg.ModelSaved) -> None:
        self.busy.discard("save")
        self.last_saved = message.path
        self.epoch_log.write_event(f"saved model to {message.path}")
        self.notify(f"Saved {message.path}", title="Model saved")
        self._state_changed()

    def action_load(self) -> None:
        if self.training:
            self.notify("Stop training before loading a model.", severity="warning")
            return
        default = self.last_saved or _newest_npz(Path.cwd()) or "model.npz"
        self.push_screen(PathScreen("Load a model from", default,
                                    "Enter = load (.npz saved by termnist), Escape = cancel"),
                         lambda path: self._load_model(path) if path else None)

    def _load_model(self, path: str) -> None:
        self.busy.add("load")
        self._state_changed()
        self._load_worker(path)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_worker(self, path: str) -> None:
        from threadpoolctl import threadpool_limits

        from engine.checkpoint import load_checkpoint

        name = "dataset"
        try:
            ckpt = load_checkpoint(path)
            name = ckpt.config.dataset
            ds = self.get_dataset(name)
            with threadpool_limits(limits=1):
                preds, test_acc = evaluate_checkpoint(ckpt, ds, self.preview_limit, path)
            self.post_message(msg.ModelLoaded(path, ckpt, ds, preds, test_acc))
        except DatasetNotFoundError as exc:
            self.post_message(msg.DatasetMissing(name, str(exc), exc.searched))
            self.post_message(msg.WorkFailed("load", f"cannot evaluate {path}: its dataset is missing"))
        except Exception as exc:  # noqa: BLE001
            self.post_message(msg.WorkFailed("load", f"cannot load: {exc}"))

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _resume_worker(self, path: str) -> None:
        from engine.checkpoint import load_checkpoint

        name = "dataset"
        try:
            ckpt = load_checkpoint(path)
            name = ckpt.config.dataset
            self.get_dataset(name)
            self.post_message(msg.ResumeReady(path, ckpt))
        except DatasetNotFoundError as exc:
            self.post_message(msg.DatasetMissing(name, str(exc), exc.searched))
        except Exception as exc:  # noqa: BLE001
            self.post_message(msg.WorkFailed("resume", f"cannot resume from {path}: {exc}"))

    @guarded
    def on_resume_ready(self, message: msg.ResumeReady) -> None:
        ckpt = message.checkpoint
        done = int(ckpt.metadata.get("epochs_done", 0))
        self.form.set_config(ckpt.config)
        self.epoch_log.write_event(
            f"resuming the interrupted run from {message.path}: {done} of {ckpt.config.epochs} epochs done")
        if done >= ckpt.config.epochs:
            self.epoch_log.write_event("that run had already finished; nothing left to train")
            return
        self.start_training(ckpt.config, resume=ckpt)

    def form_dataset(self) -> str:
        return self.form.values().get("dataset") or "mnist"

    @guarded
    def on_hyperparameter_form_dataset_changed(self, message: HyperparameterForm.DatasetChanged) -> None:
        # Show the chosen dataset's test images now (unless a run is using the current one).
        if not self.training and (self.dataset is None or self.dataset.name != message.name):
            self._load_dataset(message.name)

    def _replay_history(self, ckpt: Any) -> None:
        """Show a checkpoint's recorded epochs in the log and the (per-epoch) chart."""
        for row in ckpt.metadata.get("history") or []:
            try:
                self.epoch_log.write_row(format_epoch_row(
                    int(row["epoch"]), int(ckpt.config.epochs), float(row["train_loss"]),
                    float(row["train_acc"]), row.get("val_loss"), row.get("val_acc"),
                    float(row.get("seconds") or 0.0), float(row.get("samples_per_s") or 0.0)))
                self.chart.add_epoch(int(row["epoch"]), float(row["train_acc"]),
                                     row.get("val_loss"), row.get("val_acc"))
            except (KeyError, TypeError, ValueError):
                continue

    @guarded
    def on_model_loaded(self, message: msg.ModelLoaded) -> None:
        self.busy.discard("load")
        ckpt = message.checkpoint
        self.model = ckpt
        self.model_dataset = message.dataset.name
        self.last_test_acc = message.test_acc
        self.form.set_config(ckpt.config)
        self.chart.clear()
        self._replay_history(ckpt)
        if message.dataset is not self.dataset:
            self.on_dataset_ready(msg.DatasetReady(message.dataset))
        self.predictions = message.predictions
        self.preview.set_predictions(message.predictions)
        acc = f"{message.test_acc * 100:.2f}%" if message.test_acc is not None else "n/a"
        text = f"loaded {message.path}: test accuracy {acc}; its settings are in the form"
        self.epoch_log.write_event(text)
        self.notify(text, title="Model loaded")
        self._state_changed()

    @guarded
    def on_work_failed(self, message: msg.WorkFailed) -> None:
        self.busy.discard(message.what)
        self.report_error(message.message)
        self._state_changed()

    # ------------------------------------------------------------------ help / quit
    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        ds = self.dataset
        extra = ""
        if ds is not None:
            extra = f"Dataset now: {ds.title}, {'bundled sample' if ds.is_sample else ds.source}."
        self.push_screen(HelpScreen(extra))

    async def action_quit(self) -> None:
        if not self.training:
            self.exit(0)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.stop_training()
                self.exit(0)

        if not isinstance(self.screen, ConfirmScreen):
            self.push_screen(ConfirmScreen("Training is running. Stop it and quit?", yes="Quit"), answered)

    def exit(self, result: int | None = None, return_code: int = 0, message: Any = None) -> None:
        # Whatever the path out (quit key, confirm dialog, test harness), end the training
        # thread: a thread worker is not cancellable and would keep the process alive.
        self.stop_training()
        try:
            self.save_settings()
        except Exception:  # noqa: BLE001
            pass
        super().exit(result, return_code, message)

    def on_unmount(self) -> None:
        # Shutdown without exit() (e.g. a test harness, an exception): still end the thread.
        self.stop_training()

    def save_settings(self) -> None:
        if not self.remember:
            return
        try:
            data = {
                "form": self.form.values(),
                "base": self.form.base.to_dict(),
                "ui": {"chart": self.chart.mode, "shading": self.preview.mode},
            }
            settings_store.save_settings(data, self.config_dir)
        except Exception as exc:  # noqa: BLE001 - settings are a convenience
            self.log.warning(f"cannot save settings: {exc}")


def _newest_npz(directory: Path) -> str | None:
    try:
        files = sorted(directory.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    return files[0].name if files else None


def run_app(data_dir: str | None = None, dataset: str | None = None, preset: str | None = None,
            load: str | None = None, resume: bool = False, **_: Any) -> int:
    """Run the app in this terminal; returns the exit status (the CLI checks for a TTY)."""
    app = TermnistApp(data_dir=data_dir, dataset=dataset, preset=preset, load=load, resume=resume)
    app.run()
    return int(app.return_code or 0)
