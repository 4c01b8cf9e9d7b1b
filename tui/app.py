"""The termnist app: tune hyperparameters, train, watch the loss, inspect the digits.

The app is thin: it composes the panels, binds keys and routes messages. The work lives in
Textual-free controllers (tui/controllers/: datasets, the run and its process, the recovery
slot, downloads, hang-ups, settings, model files) and in presenters with explicit host
Protocols (run_view: starting a run and what it shows; data_panel: datasets and the data
panel; model_files: Save/Load; resume; panels; preferences). Attributes go down, messages
come up; a panel never reaches into a sibling. A screen a key opens registers in
tui/screens/__init__.py (SCREENS) and needs no code here.
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
from textual.worker import Worker, get_current_worker

from tui import messages as msg
from tui.controllers.datasets import DatasetCache, Loader
from tui.controllers.downloads import DownloadController
from tui.controllers.hangup import HangupHandler
from tui.controllers.recovery import RecoveryController
from tui.controllers.run import TRAINER_BLAS_THREADS, RunController
from tui.controllers.settings import SettingsController
from tui.data_panel import DataPanel
from tui.footer_fix import prune_footer_watchers
from tui.guard import guarded
from tui.live import LR_FACTOR, LiveChanges
from tui.model_files import ModelFiles
from tui import heap, keys, preferences
from tui.panels import PANELS, Panels
from tui.run_actions import RunActions, TrainOnReady
from tui.run_view import RunView
from tui.screens import SCREENS, ScreenSpec, forward, warm_modules
from tui.sweep_view import SweepView
from tui.screens.data_screen import DataScreen
from tui.screens.dialogs import ConfirmScreen
from tui.screens.digit_detail import DigitScreen
from tui.terminal import ASCII_CLASS, ascii_key
from tui.widgets.digit_preview import DigitPreview
from tui.widgets.epoch_log import EpochLog
from tui.widgets.hyperparameter_form import HyperparameterForm
from tui.widgets.loss_chart import LossChart
from tui.widgets.runs_panel import RunsPanel
from tui.widgets.sweep_panel import SweepPanel

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

    BINDINGS = keys.BINDINGS

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
        self.live = LiveChanges(self)
        self.run_actions = RunActions(self)          # what the Runs panel asks for a run
        self.sweep = SweepView(self)                 # the Sweep panel's sweep (F3 sweep)
        self.dataset: Any = None                     # dataset shown in the preview
        self.model: Any = None                       # the last run's session or a loaded Checkpoint
        self.busy: set[str] = set()                  # "save", "load" while their workers run
        self.errors_seen: list[str] = []             # messages of reported errors (tests)
        self.frozen = 0                              # objects frozen after startup (tui.heap)
        self._closed_heap = False                    # unmounted: the heap thawed, never frozen again
        self._toast_errors: list[str] = []           # errors waiting for their toast

    def get_key_display(self, binding: Binding) -> str:
        display = super().get_key_display(binding)
        return ascii_key(display) if self.ascii_only else display     # "⏎" -> "Enter"

    # ------------------------------------------------------------------ composition
    def compose(self) -> ComposeResult:
        yield Static("", id="panel-bar", markup=False)
        with Container(id="body", classes="-show-form"):
            for panel in PANELS:
                yield from panel.widgets()
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
    def runs_panel(self) -> RunsPanel:
        return self.query_one("#runs", RunsPanel)

    @property
    def training(self) -> bool:
        return self.trainer.training

    def on_mount(self) -> None:
        preferences.restore(self, self.settings.load())
        self.set_panel("form", focus=True)
        self.update_status()
        if self.handle_signals:
            self.hangup.install()
        self.epoch_log.write_event("termnist ready: F5 trains with the settings, F1 shows all keys.")
        self.set_timer(heap.WARM_AFTER_S, self._warm_up)
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

    def _warm_up(self) -> None:
        """Import what the screens import on their first open (a worker), then freeze the heap
        (tui.heap) on the UI thread, where it cannot come after the thaw at unmount."""
        def work() -> None:
            heap.warm(warm_modules())
            heap.warm_text()
            if not get_current_worker().is_cancelled:
                self.call_from_thread(self._freeze)

        self.run_worker(work, name="warm-up", group="warm-up", thread=True, exit_on_error=False)

    def _freeze(self) -> None:
        if not self._closed_heap:
            self.frozen = heap.freeze()

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

    def action_next_panel(self) -> None:
        self.panels.next()

    def action_open_screen(self, name: str) -> None:
        spec: ScreenSpec = next(s for s in SCREENS if s.name == name)
        spec.open(self)

    # ------------------------------------------------------------------ bindings / status
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return keys.can_act(self, action)

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
            self.epoch_log.write_event(message, "error")
            if not self._toast_errors:
                self.call_after_refresh(self._toast_newest_error)
            self._toast_errors.append(message)
        except Exception:
            log.warning("cannot show an error", exc_info=True)

    def _toast_newest_error(self) -> None:
        """One toast for the errors of a burst, the newest (the log keeps them all): toasts
        stacked over half of an 80x24 screen."""
        errors, self._toast_errors = self._toast_errors, []
        if errors:
            more = f"\n(+{len(errors) - 1} more in the epoch log)" if len(errors) > 1 else ""
            self.clear_notifications()
            self.notify(errors[-1] + more, title="Error", severity="error", timeout=8, markup=False)

    # ------------------------------------------------------------------ datasets
    def form_dataset(self) -> str:
        return self.form.values().get("dataset") or "mnist"

    def set_form_dataset(self, name: str) -> None:
        """Show ``name`` in the form's dataset field without the field asking for a load."""
        if self.form_dataset() != name:
            with self.prevent(Select.Changed):
                self.form.set_values({"dataset": name})

    def load_dataset(self, name: str | None, drop_cached: bool = False) -> None:
        self.data_panel.load(name, drop_cached)

    @guarded
    def on_dataset_ready(self, message: msg.DatasetReady) -> None:
        self.data_panel.show(message.dataset)

    @guarded
    def on_dataset_missing(self, message: msg.DatasetMissing) -> None:
        self.data_panel.dataset_missing(message.name, message.message, message.searched)

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
        self.view.train()

    @guarded
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "training":
            self.view.worker_changed(event.worker)

    @guarded
    def on_sweep_panel_requested(self, message: SweepPanel.Requested) -> None:
        self.sweep.request(message.what, message.number)

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

    # --- live changes (tui/live.py) ---
    def action_lr_up(self) -> None:
        self.live.scale_lr(LR_FACTOR)

    def action_lr_down(self) -> None:
        self.live.scale_lr(1 / LR_FACTOR)

    def action_step_once(self) -> None:
        self.live.step(whole_epoch=False)

    def action_epoch_once(self) -> None:
        self.live.step(whole_epoch=True)

    @guarded
    def on_hyperparameter_form_submitted(self, message: HyperparameterForm.Submitted) -> None:
        self.live.typed(message.field, message.text)

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
        forward(self, message)          # screens that follow the model (Insight, F9)
        self.runs_panel.run_event(message.event)      # the run store changed: the Runs panel reads it

    @guarded
    def on_runs_panel_requested(self, message: RunsPanel.Requested) -> None:
        self.run_actions.request(message.what, message.run)

    @guarded
    def on_train_on_ready(self, message: TrainOnReady) -> None:
        self.run_actions.ready(message)

    @guarded
    def on_loss_points(self, message: msg.LossPoints) -> None:
        self.view.points(message.update)

    @guarded
    def on_progress_changed(self, message: msg.ProgressChanged) -> None:
        self.view.progress(message.update)

    @guarded
    def on_predictions_ready(self, message: msg.PredictionsReady) -> None:
        self.view.predictions_ready(message.update)
        forward(self, message)

    @guarded
    def on_run_log(self, message: msg.RunLog) -> None:
        self.view.note(message.update)

    @guarded
    def on_training_failed(self, message: msg.TrainingFailed) -> None:
        self.view.failure(message.update)

    # ------------------------------------------------------------------ chart / preview
    def action_toggle_chart(self) -> None:
        self.chart.toggle_mode()
        self.chart_title()

    def chart_title(self) -> None:
        other = "accuracy" if self.chart.mode == "loss" else "loss"
        self.chart.border_title = (f"{self.chart.mode.capitalize()} (F2: {other})  "
                                   f"{self.chart.legend(self.ascii_only)}")

    @guarded
    def on_hyperparameter_form_changed(self, message: HyperparameterForm.Changed) -> None:
        self.view.form_changed(message.field)

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
        forward(self, message)

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
    def save_settings(self, now: bool = False) -> None:
        """Remember the form and the UI choices (written off the event loop unless ``now``)."""
        data = preferences.snapshot(self)
        if data is not None:
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
        self._closed_heap = True
        heap.thaw()

    def _close(self, reason: str) -> None:
        self.keep_run(reason)
        self.trainer.abandon()
        self.sweep.close()               # the sweep's thread ends after its trials' batch
        self.downloads.cancel()          # its thread stops at the next chunk; the .part stays


def run_app(data_dir: str | None = None, dataset: str | None = None, preset: str | None = None,
            load: str | None = None, resume: bool = False, ascii_only: bool = False, **_: Any) -> int:
    """Run the app in this terminal; returns the exit status (the CLI checks for a TTY)."""
    app = TermnistApp(data_dir=data_dir, dataset=dataset, preset=preset, load=load, resume=resume,
                      handle_signals=True, ascii_only=ascii_only)
    app.run()
    return int(app.return_code or 0)
