"""The termnist app: tune hyperparameters, train, watch the loss, inspect the digits.

The app is thin: it composes the panels, binds keys, runs workers and routes messages. The
work lives in Textual-free controllers (tui/controllers/: datasets, the run and its process,
the recovery slot, downloads, hang-ups, settings) and in two presenters with explicit host
contracts (tui/run_view.py: what a run shows; tui/data_panel.py: the data panel). Attributes
go down, messages come up; a panel never reaches into a sibling. New screens register in
tui/screens/__init__.py (SCREENS) and need no code here.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import Footer, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from engine.errors import DatasetNotFoundError
from tui import messages as msg
from tui.controllers.datasets import DatasetCache, Loader
from tui.controllers.downloads import DownloadController
from tui.controllers.hangup import HangupHandler
from tui.controllers.recovery import RecoveryController
from tui.controllers.run import TRAINER_BLAS_THREADS, RunController
from tui.controllers.settings import SettingsController
from tui.data_panel import DataPanel
from tui.footer_fix import prune_footer_watchers
from tui.forms import describe_errors
from tui.guard import guarded
from tui.model_files import ModelFiles
from tui.panels import Panels
from tui.run_view import RunView
from tui.screens import SCREENS, ScreenSpec
from tui.screens.data_screen import DataScreen
from tui.screens.dialogs import ConfirmScreen
from tui.screens.digit_detail import DigitScreen
from tui.terminal import ASCII_CLASS, ascii_key
from tui.widgets.digit_preview import DigitPreview
from tui.widgets.epoch_log import EpochLog
from tui.widgets.hyperparameter_form import HyperparameterForm
from tui.widgets.loss_chart import LossChart

log = logging.getLogger(__name__)

MIN_SIZE = (60, 20)


class TermnistApp(App[int]):
    """Train an MLP on handwritten digits, in the terminal, by keyboard."""

    CSS_PATH = "app.tcss"
    TRAINER_BLAS_THREADS = TRAINER_BLAS_THREADS
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
        *(spec.binding() for spec in SCREENS),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        # Ctrl+C quits too (Textual's default only tells you to press ctrl+q; inputs would
        # take it as "copy"): the reflex of every terminal user, with the same confirmation.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, data_dir: str | None = None, dataset: str | None = None, preset: str | None = None,
                 load: str | None = None, resume: bool = False, *,
                 config_dir: str | os.PathLike[str] | None = None, load_dataset_fn: Loader | None = None,
                 preview_limit: int = 10_000, progress_every: int = 20, remember: bool = True,
                 autosave: bool = True, state_dir: str | os.PathLike[str] | None = None,
                 handle_signals: bool = False, trainer: str = "process", ascii_only: bool = False) -> None:
        super().__init__()
        # ASCII-only terminal (tui.terminal.unicode_ok): app.tcss and the widgets draw ASCII
        self.ascii_only = ascii_only
        self.set_class(ascii_only, ASCII_CLASS)
        self.startup: dict[str, Any] = {"dataset": dataset, "preset": preset, "load": load, "resume": resume}
        self.data_given = data_dir is not None
        self.preview_limit = preview_limit
        self.datasets = DatasetCache(data_dir, load_dataset_fn)
        self.trainer = RunController(mode=trainer, progress_every=progress_every, preview_limit=preview_limit,
                                 blas_threads=self.TRAINER_BLAS_THREADS)
        self.recovery = RecoveryController(enabled=autosave and remember, directory=state_dir,
                                           on_error=lambda text: self.call_from_thread(self.report_error, text))
        self.settings = SettingsController(enabled=remember, directory=config_dir)
        self.downloads = DownloadController(lambda u: self.post_message(msg.DownloadUpdate(u)))
        self.hangup = HangupHandler(keep=self.keep_run, abandon=self.trainer.abandon,
                                    exit=lambda code: self.call_from_thread(self.exit, None, code))
        self.handle_signals = handle_signals
        self.view = RunView(self)
        self.panels = Panels(self)
        self.data_panel = DataPanel(self)
        self.files = ModelFiles(self)
        self.dataset: Any = None                     # dataset shown in the preview
        self.model: Any = None                       # the last run's session or a loaded Checkpoint
        self.busy: set[str] = set()                  # "save", "load" while their workers run
        self._told_next_run = False
        self.errors_seen: list[str] = []             # messages of reported errors (tests)

    def get_key_display(self, binding: Binding) -> str:
        display = super().get_key_display(binding)
        return ascii_key(display) if self.ascii_only else display     # "⏎" -> "Enter"

    # ------------------------------------------------------------------ composition
    def compose(self) -> ComposeResult:
        from engine.presets import PRESETS
        from tui.data_status import selectable_datasets

        presets = {name: (p.summary, p.config) for name, p in PRESETS.items()}
        yield Static("", id="panel-bar", markup=False)
        with Container(id="body", classes="-show-form"):
            yield _titled(HyperparameterForm(presets, selectable_datasets(), id="form"), "Settings")
            yield _titled(LossChart(id="chart"), "Loss (F2: accuracy)")
            yield _titled(EpochLog(id="epoch-log"), "Epoch log")
            yield _titled(DigitPreview(id="preview"), "Test digits")
        yield Static("", id="status", markup=False)
        yield Static(f"Terminal too small: termnist needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}.\n"
                     "Enlarge the window (or reduce the font size).", id="too-small", markup=False)
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

    @property
    def training(self) -> bool:
        return self.trainer.training

    def on_mount(self) -> None:
        self.apply_settings(self.settings.load())
        self._command_line_wins()
        for what, choices in (("preset", self.form.presets), ("dataset", self.form.datasets)):
            wanted = self.startup[what]
            if wanted and wanted not in choices:
                self.report_error(f"unknown {what} {wanted!r}; choose one of {', '.join(choices)}")
            elif wanted and what == "preset":
                self.form.apply_preset(wanted)
            elif wanted:
                self.form.set_values({"dataset": wanted})
        self.set_panel("form", focus=True)
        self.update_status()
        if self.handle_signals:
            self.hangup.install()
        self.epoch_log.write_event("termnist ready: F5 trains with the settings, F1 shows all keys.")
        note = self.recovery.claim()
        if note:
            self.epoch_log.write_event(note)
        if self.startup["resume"]:
            self._resume_worker(offer=False)
        elif self.startup["load"]:
            self.files.load_from(str(self.startup["load"]))
        else:
            self.load_dataset(self.form_dataset())
            if self.recovery.enabled:
                self._resume_worker(offer=True)     # a run cut short last time? offer it

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.data_panel.keys_seen = True     # no panel pops up over what the user types
        await super().on_event(event)

    # ------------------------------------------------------------------ layout
    @property
    def panel(self) -> str:
        return self.panels.current

    def set_panel(self, panel: str, focus: bool | None = None) -> None:
        self.panels.show(panel, focus)

    def wide(self) -> bool:
        return self.panels.wide()

    def action_next_panel(self) -> None:
        self.panels.next()

    def focus_field(self, name: str) -> None:
        self.panels.focus_field(name)

    def action_open_screen(self, name: str) -> None:
        spec: ScreenSpec = next(s for s in SCREENS if s.name == name)
        spec.open(self)

    # ------------------------------------------------------------------ bindings / status
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        run = self.trainer
        enabled = {
            "train": not run.training and "load" not in self.busy,
            "pause": run.session is not None and not run.paused,
            "resume": run.training and run.paused,
            "stop": run.training,
            "save": self.current_model() is not None and "save" not in self.busy,
            "load": not run.training and "load" not in self.busy,
        }
        return enabled.get(action, True)

    def state_changed(self) -> None:
        prune_footer_watchers(self)
        self.refresh_bindings()
        self.update_status()

    def update_status(self) -> None:
        if self.training:
            state = "PAUSED" if self.trainer.paused else "training"
            if self.view.progress_text:
                state += f" {self.view.progress_text}"
        elif "load" in self.busy:
            state = "loading..."
        elif self.view.last_test_acc is not None:
            state = f"idle, test accuracy {self.view.last_test_acc * 100:.2f}%"
        else:
            state = "idle"
        self.query_one("#status", Static).update(f" {state} | {self.data_panel.status_text()}")

    def report_error(self, message: str, details: str = "") -> None:
        """Show an error as a notification and a log line (and in the log file); never raises."""
        self.errors_seen.append(message)
        log.error("%s%s", message, f"\n{details}" if details else "")
        try:
            # Only the newest error as a toast (the log keeps them all): a burst of errors
            # must not stack over half of an 80x24 screen.
            self.clear_notifications()
            self.notify(message, title="Error", severity="error", timeout=8)
            self.epoch_log.write_event(message, "error")
        except Exception:
            log.warning("cannot show an error", exc_info=True)

    # ------------------------------------------------------------------ datasets
    def form_dataset(self) -> str:
        return self.form.values().get("dataset") or "mnist"

    def set_form_dataset(self, name: str) -> None:
        """Show ``name`` in the form's dataset field without the field asking for a load."""
        if self.form_dataset() != name:
            with self.prevent(Select.Changed):
                self.form.set_values({"dataset": name})

    @work(thread=True, exclusive=True, group="data", exit_on_error=False)
    def load_dataset(self, name: str | None, drop_cached: bool = False) -> None:
        """Load ``name`` and show it; ``drop_cached``: first forget what is loaded (``name``
        None: only that)."""
        if drop_cached:
            self.datasets.drop()
        if name is None:
            return
        try:
            ds = self.datasets.get(name)
            if not get_current_worker().is_cancelled:     # a newer request superseded this one
                self.post_message(msg.DatasetReady(ds))
        except DatasetNotFoundError as exc:
            self.post_message(msg.DatasetMissing(name, str(exc), exc.searched))
        except Exception as exc:  # noqa: BLE001
            self.post_message(msg.DatasetMissing(name, str(exc)))

    @guarded
    def on_dataset_ready(self, message: msg.DatasetReady) -> None:
        self.show_dataset(message.dataset)

    def show_dataset(self, ds: Any) -> None:
        """Show ``ds`` (its test images in the preview) and have the training process take it."""
        if ds is not self.dataset:
            self.dataset = ds
            self.preview.set_images(ds.x_test, ds.y_test, ds.class_names, ds.max_value)
            self.epoch_log.write_event(_dataset_line(ds))
            self.update_status()
            if not self.training:
                self._prepare_trainer(ds)    # F5 then starts at once
        self.data_panel.dataset_ready(ds)      # close the panel, train, or offer the full set

    @work(thread=True, exclusive=True, group="trainer", exit_on_error=False)
    def _prepare_trainer(self, ds: Any) -> None:
        self.trainer.prepare(ds)

    @guarded
    def on_dataset_missing(self, message: msg.DatasetMissing) -> None:
        self.preview.clear(f"No {message.name} data found.")
        self.data_panel.dataset_missing(message.name, message.message, message.searched)
        self.update_status()

    @guarded
    def on_hyperparameter_form_dataset_changed(self, message: HyperparameterForm.DatasetChanged) -> None:
        if not self.training and (self.dataset is None or self.dataset.name != message.name):
            self.load_dataset(message.name)

    @guarded
    def on_data_screen_download_requested(self, message: DataScreen.DownloadRequested) -> None:
        message.stop()
        self.data_panel.start_download(message.name)

    @guarded
    def on_data_screen_cancel_requested(self, message: DataScreen.CancelRequested) -> None:
        message.stop()
        self.data_panel.cancel_download(message.name)

    @guarded
    def on_download_update(self, message: msg.DownloadUpdate) -> None:
        self.data_panel.download_update(message.update)

    # ------------------------------------------------------------------ training
    def action_train(self) -> None:
        if self.training or "load" in self.busy:
            self.notify("Already training: F7 stops the current run." if self.training else
                        "A model is still loading; try again in a moment.", severity="warning")
            return
        config, errors = self.form.get_config()
        if config is None:
            reason = describe_errors(errors)
            self.notify(f"Cannot train: {reason}", title="Check the settings", severity="error")
            self.epoch_log.write_event(f"cannot train: {reason}", "error")
            self.focus_field(next(iter(errors)))
            return
        self.start_training(config)

    def start_training(self, config: Any, resume: Any = None) -> None:
        runner, early = self.trainer.begin(self._post_update, config,
                                       self.datasets.cached(config.dataset) if resume is None else None)
        self._told_next_run = False
        self.save_settings()
        self.view.starting(resume)
        self.state_changed()
        if self.panel == "form":
            self.set_panel("train")
        self._train(runner, config, resume, [early] if early is not None else [])

    def _post_update(self, update: Any) -> None:
        """Called in the worker thread: hand one runner update to the UI (non-blocking)."""
        self.post_message(msg.wrap(update))

    @work(thread=True, exclusive=True, group="training", exit_on_error=False, name="training")
    def _train(self, runner: Any, config: Any, resume: Any, early_box: list[Any]) -> None:
        worker = get_current_worker()
        # popped, not kept: a pool thread keeps its last worker's arguments alive
        early = early_box.pop() if early_box else None
        self.trainer.run(runner, config, resume, early, self.datasets.get,
                     lambda ds: self.post_message(msg.DatasetReady(ds)), lambda: worker.is_cancelled)

    @guarded
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "training" or worker.state not in (
                WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.state == WorkerState.ERROR:
            self.report_error(f"training worker failed: {worker.error}")
        session = self.trainer.ended()
        if session is not None:
            self.model = session             # what Save writes until the next run or load
        self.view.ended()
        self.state_changed()

    def action_pause(self) -> None:
        if self.trainer.pause():
            self.epoch_log.write_event("pausing...")
            self.state_changed()

    def action_resume(self) -> None:
        if self.trainer.resume():
            self.state_changed()

    def action_stop(self) -> None:
        if self.trainer.stop():
            self.epoch_log.write_event("stopping: the run ends after the current batch")
            self.view.progress_text = "stopping..."
            self.update_status()

    def data_dir_of_run(self) -> str | None:
        """Where the run's data came from: a resumed run uses the same data."""
        if self.datasets.data_dir is not None:
            return self.datasets.data_dir
        ds = getattr(self.trainer.session, "dataset", None)
        return str(ds.source) if ds is not None and not ds.is_sample else None

    # --- messages from the training worker: the run view shows them ---
    @guarded
    def on_training_event(self, message: msg.TrainingEvent) -> None:
        self.view.event(message.event)

    @guarded
    def on_loss_points(self, message: msg.LossPoints) -> None:
        self.view.points(message.update)

    @guarded
    def on_progress_changed(self, message: msg.ProgressChanged) -> None:
        self.view.progress(message.update)

    @guarded
    def on_predictions_ready(self, message: msg.PredictionsReady) -> None:
        self.view.predictions_ready(message.update)

    @guarded
    def on_run_log(self, message: msg.RunLog) -> None:
        self.view.note(message.update)

    @guarded
    def on_training_failed(self, message: msg.TrainingFailed) -> None:
        self.view.failure(message.update)

    # ------------------------------------------------------------------ chart / preview
    def action_toggle_chart(self) -> None:
        self.chart.toggle_mode()
        self._chart_title()

    def _chart_title(self) -> None:
        other = "accuracy" if self.chart.mode == "loss" else "loss"
        self.chart.border_title = f"{self.chart.mode.capitalize()} (F2: {other})"

    @guarded
    def on_hyperparameter_form_changed(self, message: HyperparameterForm.Changed) -> None:
        if self.training and not self._told_next_run and self.form.get_config()[0] != self.trainer.config:
            self._told_next_run = True
            self.epoch_log.write_event("settings changed: they apply to the next run, not this one")

    @guarded
    def on_digit_preview_zoom_requested(self, message: DigitPreview.ZoomRequested) -> None:
        ds, i, p = self.dataset, message.index, self.view.predictions
        if ds is not None:
            proba = p.probabilities[i] if p is not None and i < len(p.probabilities) else None
            self.push_screen(DigitScreen(i, ds.x_test[i], ds.max_value, int(ds.y_test[i]),
                                         tuple(ds.class_names), proba, self.preview.mode))

    @guarded
    def on_digit_preview_shading_changed(self, message: DigitPreview.ShadingChanged) -> None:
        self.save_settings()

    # ------------------------------------------------------------------ save / load / resume
    def current_model(self) -> Any:
        """What Save writes: the running session (a consistent snapshot), else the last model."""
        return self.trainer.session if self.trainer.session is not None else self.model

    def action_save(self) -> None:
        self.files.save()

    def action_load(self) -> None:
        self.files.load()

    @guarded
    def on_model_saved(self, message: msg.ModelSaved) -> None:
        self.files.saved(message)

    @guarded
    def on_model_loaded(self, message: msg.ModelLoaded) -> None:
        self.files.loaded(message)

    @work(thread=True, exclusive=True, group="resume", exit_on_error=False)
    def _resume_worker(self, offer: bool, recovery: Any = None) -> None:
        """Read the recovery slot; ``offer``: ask whether to resume it (if there is one), else
        resume it now (``termnist --resume``, or the offer accepted: ``recovery``)."""
        from tui.resume import prepare_resume

        prepare_resume(self, offer, recovery)

    @guarded
    def on_resume_ready(self, message: msg.ResumeReady) -> None:
        from tui.resume import resume_ready

        resume_ready(self, message)

    @guarded
    def on_work_failed(self, message: msg.WorkFailed) -> None:
        self.busy.discard(message.what)
        self.report_error(message.message)
        self.state_changed()

    # ------------------------------------------------------------------ settings / quit
    def apply_settings(self, saved: dict[str, Any]) -> None:
        """The remembered form and UI choices (tui.settings); the command line comes after."""
        from engine.presets import get_preset
        from engine.training import TrainConfig

        self.form.set_config(get_preset("default"))
        if saved.get("base"):
            try:
                self.form.base = TrainConfig.from_dict(saved["base"])
            except Exception:
                log.info("remembered base settings ignored", exc_info=True)
        if saved.get("form"):
            self.form.set_values(saved["form"])
        ui = saved.get("ui", {})
        if ui.get("chart") in ("loss", "accuracy"):
            self.chart.set_mode(ui["chart"])
            self._chart_title()
        if ui.get("shading") in ("ascii", "blocks"):
            self.preview.set_mode(ui["shading"])
        self.data_panel.apply_settings(ui, data_given=self.data_given)
        self.data_panel.refresh_states()

    def _command_line_wins(self) -> None:
        """--data DIR says where the data is: a remembered choice that ignores it (the bundled
        sample) gives way; a --dataset that cannot use it says so."""
        from engine.datasets import ignores_data_dir

        wanted = self.startup["dataset"]
        if not self.data_given:
            return
        if wanted and ignores_data_dir(wanted):
            self.report_error(f"--data does not apply to --dataset {wanted} (it has its own data)")
        elif not wanted and ignores_data_dir(self.form_dataset()):
            self.epoch_log.write_event(f"--data given: training on mnist from {self.datasets.data_dir}, "
                                       f"not the remembered {self.form_dataset()}")
            self.form.set_values({"dataset": "mnist"})

    def save_settings(self, now: bool = False) -> None:
        """Remember the form and the UI choices (written off the event loop unless ``now``)."""
        try:
            data = {"form": self.form.values(), "base": self.form.base.to_dict(),
                    "ui": {"chart": self.chart.mode, "shading": self.preview.mode, **self.data_panel.settings()}}
        except Exception:
            log.warning("cannot save settings", exc_info=True)
            return
        self.settings.save(data, now=now)

    async def action_quit(self) -> None:
        if not self.trainer.in_progress:
            self.exit(0)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.trainer.stop()
                self.exit(0)

        if not isinstance(self.screen, ConfirmScreen):
            kept = ("\nThe run is kept: the next start offers to resume it from its last completed epoch "
                    "(or `termnist --resume`).") if self.recovery.enabled else ""
            self.push_screen(ConfirmScreen(f"Training is running. Stop it and quit?{kept}", yes="Quit"), answered)

    def keep_run(self, reason: str) -> None:
        """The app is closing mid-run (any thread): the slot keeps the last completed epoch."""
        if self.trainer.in_progress:
            session = self.trainer.session
            self.recovery.keep_on_exit(
                reason, lambda: session.checkpoint(last_completed_epoch=True) if session is not None else None,
                self.data_dir_of_run())

    def exit(self, result: int | None = None, return_code: int = 0, message: Any = None) -> None:
        # Whatever the path out (quit key, confirm dialog, signal, test harness): keep a run in
        # progress in the recovery slot, and end the training thread (a thread worker is not
        # cancellable and would keep the process alive).
        self._close("quit while training")
        self.save_settings(now=True)
        super().exit(result, return_code, message)

    def on_unmount(self) -> None:
        # Shutdown without exit() (e.g. a test harness, an exception): still end the thread.
        self._close("closed while training")
        self.trainer.close()                 # after the run was kept: its weights are here already
        self.recovery.writer.flush()
        self.recovery.release()
        self.hangup.restore()

    def _close(self, reason: str) -> None:
        self.keep_run(reason)
        self.trainer.abandon()
        self.downloads.cancel()          # its thread stops at the next chunk; the .part stays


def _titled(widget: Any, title: str) -> Any:
    widget.border_title = title
    return widget


def _dataset_line(ds: Any) -> str:
    if ds.is_sample:
        from tui.data_status import MNIST_CREDIT

        return (f"Using the bundled MNIST sample ({len(ds.y_train):,} train / {len(ds.y_test):,} test images), "
                f"not the full set: Ctrl+D downloads it (or `termnist download mnist`). {MNIST_CREDIT}.")
    return f"Dataset {ds.title}: {len(ds.y_train):,} train / {len(ds.y_test):,} test images from {ds.source}"


def run_app(data_dir: str | None = None, dataset: str | None = None, preset: str | None = None,
            load: str | None = None, resume: bool = False, ascii_only: bool = False, **_: Any) -> int:
    """Run the app in this terminal; returns the exit status (the CLI checks for a TTY)."""
    app = TermnistApp(data_dir=data_dir, dataset=dataset, preset=preset, load=load, resume=resume,
                      handle_signals=True, ascii_only=ascii_only)
    app.run()
    return int(app.return_code or 0)
