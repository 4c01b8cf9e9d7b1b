"""The termnist app: tune hyperparameters, train, watch the loss, inspect the digits.

The app composes four panels and routes data between them (attributes down, messages
up); a panel never reaches into a sibling. Training, loading and saving run in thread
workers; the training worker talks back only through messages (tui.runner + tui.messages).
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable, Iterable
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
from tui.app_data import DataPanelMixin
from tui.data_status import MNIST_CREDIT
from tui.forms import FIELDS_BY_NAME, describe_errors
from tui.guard import guarded
from tui.runner import LogLine, Predictions, TrainingRunner, evaluate_checkpoint
from tui.screens.dialogs import ConfirmScreen, PathScreen
from tui.screens.digit_detail import DigitScreen
from tui.screens.help import HelpScreen
from tui.terminal import ASCII_CLASS, ascii_key
from tui.widgets.digit_preview import DigitPreview
from tui.widgets.epoch_log import EpochLog, format_duration, format_epoch_row
from tui.widgets.hyperparameter_form import HyperparameterForm
from tui.widgets.loss_chart import LossChart

PANELS = ("form", "train", "digits")
PANEL_TITLES = {"form": "Settings", "train": "Training", "digits": "Digits"}
MIN_SIZE = (60, 20)
# After SIGHUP/SIGTERM: how long the normal shutdown may take before os._exit (a vanished
# terminal can leave Textual's output thread dead and its queue blocking).
EXIT_GRACE_S = 3.0
_ROW_EPOCH = re.compile(r"^\s*(\d+)/\d+\s")     # "  3/10   0.1234 ..." -> 3 (an epoch row)


class TermnistApp(DataPanelMixin, App[int]):
    """Train an MLP on handwritten digits, in the terminal, by keyboard."""

    CSS_PATH = "app.tcss"
    TRAINER_BLAS_THREADS = 1           # see README "Performance": 1 beats 2 beside a UI on 2 cores
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
        # Data: where the dataset was found, download it, or choose a directory. Priority:
        # a focused Input would take ctrl+d as "delete right" (Delete does that too).
        Binding("ctrl+d,f4", "data", "Data", key_display="^d", priority=True),
        Binding("f1,question_mark", "help", "Help", key_display="F1"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        # Ctrl+C quits too (Textual's default only tells you to press ctrl+q; inputs would
        # take it as "copy"): the reflex of every terminal user, with the same confirmation.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
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
        state_dir: str | os.PathLike[str] | None = None,
        handle_signals: bool = False,
        trainer: str = "process",
        ascii_only: bool = False,
    ) -> None:
        super().__init__()
        # ASCII-only terminal (tui.terminal.unicode_ok): app.tcss and the widgets draw ASCII
        self.ascii_only = ascii_only
        self.set_class(ascii_only, ASCII_CLASS)
        if trainer not in ("process", "thread"):
            raise ValueError(f"trainer must be 'process' or 'thread', not {trainer!r}")
        self.data_dir = data_dir
        self.start_dataset = dataset
        self.start_preset = preset
        self.start_load = load
        self.start_resume = resume
        self.config_dir = config_dir
        self.preview_limit = preview_limit
        self.progress_every = progress_every
        self.remember = remember
        # The recovery slot (engine.recovery, in the user data dir or ``state_dir``): written
        # at each epoch end, on SIGHUP/SIGTERM and on quitting mid-run; offered at start.
        self.autosave = autosave and remember
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.handle_signals = handle_signals        # run_app: install SIGHUP/SIGTERM handlers
        # Where runs train: "process" (default) -- a child process (engine.trainer_process),
        # so the UI thread never holds the training thread's GIL; "thread" -- a thread of this
        # process (the fallback when the child cannot start; tests that patch the engine).
        self.trainer_mode = trainer
        self.trainer_process: Any = None             # engine.trainer_process.TrainerProcess
        self._slot_lock = threading.Lock()           # one slot write at a time (worker, signal, UI)
        self._settings_lock = threading.Lock()       # one settings write at a time
        self._settings_pending: dict[str, Any] | None = None
        self._exit_reason: str | None = None         # set when the app closes mid-run: keep the slot
        self._slot_saved_on_exit = False
        self._run_anchor: str | None = None          # last log line before the current run
        self._log_lines: list[str] = []              # the EpochLog's own list (bounded by it)
        self._resumed_run = False
        self._pending_recovery: Any = None
        self._slot_claim: Any = None                 # engine.recovery.SlotClaim, held while running
        self._signalled = False
        self._old_handlers: dict[int, Any] = {}
        self._tty_fds: tuple[int, ...] = ()
        self._load_dataset_fn = load_dataset_fn
        self._datasets: dict[str, Any] = {}          # name -> engine Dataset (read-only)
        self._datasets_lock = threading.Lock()
        self._loading_lock = threading.Lock()
        self.dataset: Any = None                     # dataset shown in the preview
        self.runner: TrainingRunner | None = None    # the run in progress
        self.paused = False
        self.model: Any = None                       # a TrainingSession or a loaded Checkpoint
        self.model_dataset: str | None = None
        self.last_test_acc: float | None = None
        self.last_val_acc: float | None = None
        self.predictions: Predictions | None = None
        self.busy: set[str] = set()                  # "save", "load" while their workers run
        self.last_saved: str | None = None
        self._told_next_run = False
        self._run_done = False                       # the running run reported its end
        self.run_count = 0
        self.panel = "form"
        self.progress_text = ""
        self.errors_seen: list[str] = []             # messages of reported errors (tests)

    def get_key_display(self, binding: Binding) -> str:
        display = super().get_key_display(binding)
        return ascii_key(display) if self.ascii_only else display     # "⏎" -> "Enter"

    # ------------------------------------------------------------------ composition
    def compose(self) -> ComposeResult:
        from tui.data_status import selectable_datasets
        from engine.presets import PRESETS

        presets = {name: (p.summary, p.config) for name, p in PRESETS.items()}
        yield Static("", id="panel-bar", markup=False)
        with Container(id="body", classes="-show-form"):
            form = HyperparameterForm(presets, selectable_datasets(), id="form")
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
        self.apply_data_settings(ui)          # a remembered data directory (tui.app_data)
        self.refresh_dataset_states()         # mark which datasets are here
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
        self._log_lines = self.epoch_log.lines
        if self.handle_signals:
            self._install_signal_handlers()
        self.epoch_log.write_event("termnist ready: F5 trains with the settings, F1 shows all keys.")
        self._claim_slot()
        if self.start_resume:
            self._resume_worker(offer=False)
        elif self.start_load:
            self._load_model(self.start_load)
        else:
            self._load_dataset(self.form_dataset())
            if self.autosave:
                self._resume_worker(offer=True)     # a run cut short last time? offer it

    # ------------------------------------------------------------------ layout
    def set_panel(self, panel: str, focus: bool | None = None) -> None:
        """Which panel a small terminal shows (a wide one shows them all).

        ``focus``: move the focus into the panel; by default only when the panel changes
        in a small terminal (a hidden Input must not keep the keyboard).
        """
        changed = panel != self.panel
        self.panel = panel
        # one batch: each class change alone would restyle every widget in the body (~30 ms)
        self.query_one("#body").update_classes({f"-show-{p}": p == panel for p in PANELS})
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
        self._prune_footer_watchers()
        self.refresh_bindings()
        self.update_status()

    def _prune_footer_watchers(self) -> None:
        """Workaround (Textual 8.2): each Footer recompose data-binds its new keys to the
        Footer's ``compact`` reactive, whose watcher list drops removed keys only when
        ``compact`` changes -- never, here. Every binding refresh would keep ~8 dead widgets
        alive: a long session grew by ~0.6 MB per run. Drop the closed ones."""
        try:
            for footer in self.query(Footer):
                for watchers in getattr(footer, "__watchers", {}).values():
                    watchers[:] = [(node, cb) for node, cb in watchers if not getattr(node, "_closing", False)]
        except Exception:  # noqa: BLE001 - a private detail of Textual: never let it break the app
            pass

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
        data = self.data_status_text()       # sample or full set, a download (tui.app_data)
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
    def _load_dataset(self, name: str | None, drop_cached: bool = False) -> None:
        """Load ``name`` and show it. ``drop_cached``: first forget every loaded dataset (after
        any load in flight, so the cache never keeps a set from an old place); ``name`` None
        then only drops."""
        if drop_cached:
            with self._loading_lock:
                with self._datasets_lock:
                    self._datasets = {}
        if name is None:
            return
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
            self.data_dataset_ready(ds)
            return
        self.dataset = ds
        self.preview.set_images(ds.x_test, ds.y_test, ds.class_names, ds.max_value)
        self.form.n_train = len(ds.y_train)
        if ds.is_sample:
            self.epoch_log.write_event(
                f"Using the bundled MNIST sample ({len(ds.y_train):,} train / {len(ds.y_test):,} "
                f"test images), not the full set: Ctrl+D downloads it (or `termnist download mnist`). "
                f"{MNIST_CREDIT}.")
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
        self.data_dataset_ready(ds)      # the data panel: close it, train, or offer the full set
        if self.trainer_mode == "process" and not self.training:
            self._prepare_trainer(ds)    # F5 then starts at once

    # ------------------------------------------------------------------ the training process
    def _get_trainer_process(self) -> Any:
        if self.trainer_process is None:
            from engine.trainer_process import TrainerProcess

            self.trainer_process = TrainerProcess(blas_threads=self.TRAINER_BLAS_THREADS)
        return self.trainer_process

    @work(thread=True, exclusive=True, group="trainer", exit_on_error=False)
    def _prepare_trainer(self, ds: Any) -> None:
        """Start the training process and hand it the dataset, ahead of F5 (~0.3 s for MNIST).
        A failure here is not reported: F5 tries again, and says why if it has to fall back."""
        try:
            self._get_trainer_process().prepare(ds)
        except Exception as exc:  # noqa: BLE001
            self.log.warning(f"training process not prepared: {exc}")

    def _close_trainer_process(self) -> None:
        proc, self.trainer_process = self.trainer_process, None
        if proc is not None:
            try:
                proc.close(timeout=1.0)
            except Exception as exc:  # noqa: BLE001 - closing must go on
                self.log.warning(f"closing the training process: {exc}")

    @guarded
    def on_dataset_missing(self, message: msg.DatasetMissing) -> None:
        self.preview.clear(f"No {message.name} data found.")
        lines = [f"{message.name}: {message.message}"]
        if message.searched:
            lines.append("Looked in: " + "; ".join(message.searched))
            lines.append(f"To fix: Ctrl+D (download, or choose a directory), or run `termnist download "
                         f"{message.name}`, or start with --data DIR, or set TERMNIST_DATA.")
        for line in lines:
            self.epoch_log.write_event(line, "error")
        self.data_dataset_missing(message)   # the data panel says where it looked, offers ways on
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

    def start_training(self, config: Any, resume: Any = None, restored_log: Iterable[str] = ()) -> None:
        # First of all, when the training process is idle and holds the data: tell it to start
        # (one small message, no waiting), so training runs while the screen switches panels.
        early = None
        if self.trainer_mode == "process" and resume is None and self.trainer_process is not None:
            ds = self._datasets.get(config.dataset)
            if ds is not None:
                early = self.trainer_process.try_open_session(config, ds, progress_every=self.progress_every)
        self.paused = False
        self.progress_text = "starting..."
        self.run_count += 1
        self._told_next_run = False
        self._run_done = False
        self.save_settings()
        runner = TrainingRunner(post=self._post_update, preview_limit=self.preview_limit,
                                after_epoch=self._autosave if self.autosave else None)
        self.runner = runner
        self.chart.clear()
        # Everything logged from here on is this run's log (what the recovery slot keeps).
        self._run_anchor = self._log_lines[-1] if self._log_lines else None
        self._resumed_run = resume is not None
        if resume is not None:
            restored_log = list(restored_log)
            for line in restored_log:         # the cut run's own log, as it was
                self.epoch_log.write_row(line)
            self._replay_history(resume, logged=restored_log)
        self.epoch_log.set_progress("starting...", 0, 1)
        self._state_changed()
        if self.panel == "form":
            self.set_panel("train")
        self._train(runner, config, resume, [early] if early is not None else [])

    # ------------------------------------------------------------------ the recovery slot
    def _claim_slot(self) -> None:
        """Hold a recovery slot of our own while the app runs: a second termnist (another SSH
        session) gets the next one, so neither overwrites the other's interrupted run."""
        if not self.autosave:
            return
        from engine.recovery import claim_slot

        try:
            claim = claim_slot(self.state_dir)
        except Exception as exc:  # noqa: BLE001 - saving will report its own error
            self.log.warning(f"no recovery slot claimed: {exc}")
            return
        self._slot_claim = claim
        self.state_dir = claim.directory
        if claim.directory != claim.base:
            self.epoch_log.write_event(f"another termnist is running: this one keeps an interrupted run "
                                       f"in {claim.directory}")

    def _release_slot(self) -> None:
        claim, self._slot_claim = self._slot_claim, None
        if claim is not None:
            claim.release()

    def _autosave(self, session: Any, row: Any) -> None:
        """Worker thread, after each epoch: the slot gets the exact end-of-epoch state (cheap;
        it survives even SIGKILL)."""
        self._save_slot(session, f"saved at the end of epoch {row.epoch}")

    def save_interrupted_run(self, reason: str) -> bool:
        """Keep the run in progress in the recovery slot: a checkpoint of its last completed
        epoch, its log and data directory. Safe from any thread. False when there is no
        session to save (none started yet, or autosave is off)."""
        runner = self.runner
        session = runner.session if runner is not None else None
        if session is None or not self.autosave:
            return False
        return self._save_slot(session, reason)

    def _save_slot(self, session: Any, reason: str) -> bool:
        if not hasattr(session, "checkpoint"):
            return False
        from engine.recovery import save_recovery

        with self._slot_lock:
            ckpt = session.checkpoint(last_completed_epoch=True)
            ds = getattr(session, "dataset", None)
            data_dir = self.data_dir
            if data_dir is None and ds is not None and not ds.is_sample:
                data_dir = str(ds.source)           # where it was found: resume uses the same data
            save_recovery(ckpt, log=self._slot_log(ckpt), data_dir=data_dir,
                          reason=self._exit_reason or reason, directory=self.state_dir)
        return True

    def _run_lines(self) -> list[str]:
        """This run's log lines (any thread: a copy of the log's list is atomic)."""
        lines = list(self._log_lines)
        anchor = self._run_anchor
        if anchor is not None:
            for i in range(len(lines) - 1, -1, -1):
                if lines[i] is anchor:
                    return lines[i + 1:]
        return lines        # no anchor, or it scrolled out of the bounded log: all is this run's

    def _slot_log(self, ckpt: Any) -> list[str]:
        """The run's log for the slot, with a row for every epoch of the checkpoint (the UI
        may not have logged the newest row yet when the worker saves)."""
        lines = self._run_lines()
        return lines + _missing_rows(ckpt, lines)

    def _clear_slot(self) -> None:
        if not self.autosave:
            return
        from engine.recovery import clear_recovery

        try:
            with self._slot_lock:
                clear_recovery(self.state_dir)
        except OSError as exc:
            self.log.warning(f"cannot clear the recovery slot: {exc}")

    def _post_update(self, update: Any) -> None:
        """Called in the worker thread: hand one runner update to the UI (non-blocking)."""
        self.post_message(msg.wrap(update))

    @work(thread=True, exclusive=True, group="training", exit_on_error=False, name="training")
    def _train(self, runner: TrainingRunner, config: Any, resume: Any, early_box: list[Any]) -> None:
        from threadpoolctl import threadpool_limits

        def open_session() -> tuple[Any, np.ndarray, np.ndarray]:
            from engine.trainer_process import TrainerProcessError
            from engine.training import TrainingSession

            ds = self.get_dataset(config.dataset)
            self.post_message(msg.DatasetReady(ds))     # the preview shows what is trained on
            # popped, not kept: a pool thread keeps its last worker's arguments alive
            early = early_box.pop() if early_box else None
            if early is not None and early.dataset is not ds:     # the data changed meanwhile
                early.stop()
                try:
                    for _ in early.run():     # to its end, so the child is free for this run
                        pass
                except TrainerProcessError:
                    pass
                early = None
            if self.trainer_mode == "process":
                try:
                    if early is not None:
                        early.wait_opened()                 # started by start_training already
                        return early, ds.x_test, ds.y_test
                    session = self._get_trainer_process().open_session(
                        config, ds, progress_every=self.progress_every, resume=resume)
                    return session, ds.x_test, ds.y_test
                except TrainerProcessError as exc:
                    self._post_update(LogLine(f"training in the app's own process instead of a "
                                              f"separate one (slower): {exc}", "warning"))
            session = TrainingSession(config, ds, progress_every=self.progress_every, resume=resume)
            return session, ds.x_test, ds.y_test

        worker = get_current_worker()
        runner.cancelled = lambda: worker.is_cancelled
        with threadpool_limits(limits=self.TRAINER_BLAS_THREADS):   # a fallback run; predictions
            runner.run(open_session)

    @guarded
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "training" or worker.state not in (
                WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.state == WorkerState.ERROR:
            self.report_error(f"training worker failed: {worker.error}")
        runner = self.runner
        if runner is not None and runner.session is not None:
            self.model = runner.session      # what Save writes until the next run or load
            # Textual's executor thread keeps its last worker (and so this runner) in its
            # context: without this, finished runs' sessions (weights, optimizer state,
            # buffers) would stay in memory, one per pool thread.
            runner.session = None
        self.runner = None                   # not training any more (see `training`)
        self.paused = False
        self.progress_text = ""
        self.epoch_log.set_progress("idle")
        self._state_changed()

    @property
    def training(self) -> bool:
        """A run is in progress: from F5 until its worker has ended."""
        return self.runner is not None

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
        if not self._resumed_run:
            self._clear_slot()   # a new run takes the slot over (a declined old run goes now)
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
        self._run_done = True
        u = message.update
        self.last_test_acc = u.test_acc
        text = (f"run {self.run_count} {u.reason} after {u.epochs_done} epoch(s) in "
                f"{format_duration(u.seconds)}: test accuracy {u.test_acc * 100:.2f}% "
                f"(loss {u.test_loss:.4f})")
        self.epoch_log.write_event(text)
        self.notify(text, title="Training finished")
        if self._exit_reason is None:
            self._clear_slot()   # completed, stopped or diverged on purpose: nothing to resume
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

    @work(thread=True, exclusive=True, group="resume", exit_on_error=False)
    def _resume_worker(self, offer: bool, recovery: Any = None) -> None:
        """Read the recovery slot; ``offer``: ask whether to resume it (if there is one),
        else resume it now (``termnist --resume``, or the offer accepted: ``recovery``)."""
        from engine.recovery import adopt_orphan, load_recovery, state_dir

        rec = recovery
        if rec is None:
            try:
                if self._slot_claim is not None:
                    adopted = adopt_orphan(self._slot_claim)     # a run no running app holds
                    if adopted is not None and adopted != self._slot_claim.directory:
                        self.call_from_thread(self.epoch_log.write_event,
                                              f"picked up the interrupted run kept in {adopted}")
                rec = load_recovery(self.state_dir)
            except Exception as exc:  # noqa: BLE001 - a damaged slot is reported, not fatal
                self.post_message(msg.WorkFailed("resume", f"cannot resume the interrupted run: {exc}"))
                if not offer:
                    self.call_from_thread(lambda: self._load_dataset(self.form_dataset()))
                return
        if rec is None:
            if not offer:
                where = self.state_dir or state_dir()
                self.post_message(msg.WorkFailed(
                    "resume", f"nothing to resume: no interrupted run is saved in {where} (a run is "
                              "kept there when the connection drops or you quit while training)"))
                self.call_from_thread(lambda: self._load_dataset(self.form_dataset()))
            return
        if offer:
            self.call_from_thread(self._offer_resume, rec)
            return
        ckpt = rec.checkpoint
        name = ckpt.config.dataset
        try:
            self._use_data_of(rec)
            self.get_dataset(name)
        except DatasetNotFoundError as exc:
            self.post_message(msg.DatasetMissing(name, str(exc), exc.searched))
            return
        except Exception as exc:  # noqa: BLE001
            self.post_message(msg.WorkFailed("resume", f"cannot resume the interrupted run: {exc}"))
            return
        self._pending_recovery = rec
        self.post_message(msg.ResumeReady(str(self.state_dir or state_dir()), ckpt))

    def _use_data_of(self, rec: Any) -> None:
        """Worker: train the resumed run on the data it was trained on (unless --data says
        otherwise): its recorded directory, or the bundled sample if it used that."""
        if self.data_dir is not None:
            return
        wanted = rec.data_dir
        if wanted is None and rec.checkpoint.metadata.get("is_sample"):
            from engine.datasets import SAMPLE_DIR

            wanted = str(SAMPLE_DIR)
        if wanted is None or not Path(wanted).exists():
            return
        with self._loading_lock:          # after any load in flight, so the cache stays right
            self.data_dir = wanted
            with self._datasets_lock:
                self._datasets = {}

    def _offer_resume(self, rec: Any) -> None:
        """Main thread: a run was cut short last time; ask whether to continue it."""
        if self.training:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._resume_worker(offer=False, recovery=rec)
            else:
                self.epoch_log.write_event(
                    "the interrupted run stays saved: `termnist --resume` continues it; "
                    "starting another run replaces it")

        self.push_screen(ConfirmScreen(
            f"An interrupted run was saved:\n{rec.describe()}\n\nResume it where it left off?\n"
            "(No keeps it for `termnist --resume` until you start another run.)",
            yes="Resume", no="Not now"), answered)

    @guarded
    def on_resume_ready(self, message: msg.ResumeReady) -> None:
        ckpt = message.checkpoint
        rec = self._pending_recovery
        self._pending_recovery = None
        if rec is not None and rec.checkpoint is not ckpt:
            rec = None
        done = int(ckpt.metadata.get("epochs_done", 0))
        if self.training:
            self.notify("A run is in progress; the interrupted run stays saved.", severity="warning")
            return
        self.form.set_config(ckpt.config)
        why = f" ({rec.reason})" if rec is not None and rec.reason else ""
        self.epoch_log.write_event(
            f"resuming the interrupted run from {message.path}{why}: {done} of {ckpt.config.epochs} epochs done")
        if done >= ckpt.config.epochs:
            self.epoch_log.write_event("that run had already finished; nothing left to train")
            self._clear_slot()
            return
        self.start_training(ckpt.config, resume=ckpt, restored_log=rec.log if rec is not None else ())

    def form_dataset(self) -> str:
        return self.form.values().get("dataset") or "mnist"

    @guarded
    def on_hyperparameter_form_dataset_changed(self, message: HyperparameterForm.DatasetChanged) -> None:
        # Show the chosen dataset's test images now (unless a run is using the current one).
        if not self.training and (self.dataset is None or self.dataset.name != message.name):
            self._load_dataset(message.name)

    def _replay_history(self, ckpt: Any, logged: Iterable[str] = ()) -> None:
        """Show a checkpoint's recorded epochs in the chart (the loss curve continues from
        each epoch's mean training loss) and, unless ``logged`` has them, as log rows."""
        for line in _missing_rows(ckpt, logged):    # rows the saved log does not have yet
            self.epoch_log.write_row(line)
        for row in ckpt.metadata.get("history") or []:
            try:
                epoch = int(row["epoch"])
                self.chart.add_epoch(epoch, float(row["train_acc"]), row.get("val_loss"), row.get("val_acc"))
                step = int(row.get("global_step") or 0)
                if step > 0 and epoch > 0:
                    per_epoch = max(1, step // epoch)
                    self.chart.add_steps([(step - per_epoch // 2, float(row["train_loss"]))], per_epoch)
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
            kept = ("\nThe run is kept: the next start offers to resume it from its last "
                    "completed epoch (or `termnist --resume`).") if self.autosave else ""
            self.push_screen(ConfirmScreen(f"Training is running. Stop it and quit?{kept}", yes="Quit"),
                             answered)

    def exit(self, result: int | None = None, return_code: int = 0, message: Any = None) -> None:
        # Whatever the path out (quit key, confirm dialog, signal, test harness): keep a run in
        # progress in the recovery slot, and end the training thread (a thread worker is not
        # cancellable and would keep the process alive).
        self._close_run("quit while training")
        self.cancel_download()      # its thread stops at the next chunk; the .part stays
        try:
            self.save_settings(now=True)
        except Exception:  # noqa: BLE001
            pass
        super().exit(result, return_code, message)

    def on_unmount(self) -> None:
        # Shutdown without exit() (e.g. a test harness, an exception): still end the thread.
        self._close_run("closed while training")
        self.cancel_download()
        self._close_trainer_process()    # after the run was kept: its weights are here already
        self._release_slot()
        self._restore_signal_handlers()

    def _close_run(self, reason: str) -> None:
        """The app is closing: a run in progress goes to the recovery slot (the last completed
        epoch and the log), then its thread is told to end."""
        runner = self.runner
        if runner is None:
            return
        self._keep_run(reason)
        runner.abandon()

    def _run_in_progress(self) -> bool:
        """Training, and the run has not ended yet (its worker may still be finishing up:
        a run that completed must not be kept as interrupted)."""
        return self.training and not self._run_done

    def _keep_run(self, reason: str) -> None:
        """The app is closing mid-run (any thread): the recovery slot keeps the run's last
        completed epoch and its log, once."""
        if not self._run_in_progress():
            return
        if self._exit_reason is None:
            self._exit_reason = reason            # from now on the slot is kept, not cleared
        if not self._slot_saved_on_exit:
            self._slot_saved_on_exit = True
            try:
                self.save_interrupted_run(reason)
            except Exception as exc:  # noqa: BLE001 - closing must go on
                self.log.warning(f"cannot keep the interrupted run: {exc}")

    # ------------------------------------------------------------------ signals
    def _install_signal_handlers(self) -> None:
        """SIGHUP (the SSH connection or terminal went away) and SIGTERM: keep the run, exit.

        Textual installs no handler for them: by default the process would die on the spot,
        with nothing saved (beyond the last epoch's autosave) and a live terminal left raw.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        self._tty_fds = tuple(fd for fd in (0, 1, 2) if _isatty(fd))
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
            except (ValueError, OSError):
                pass

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        while self._old_handlers:
            sig, handler = self._old_handlers.popitem()
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError, TypeError):
                pass

    def _on_signal(self, signum: int, frame: Any) -> None:
        """The signal handler: runs in the main thread between any two bytecodes (even while
        it is blocked), so it only hands the work to a thread."""
        if self._signalled:
            return
        self._signalled = True
        threading.Thread(target=self._shutdown_for_signal, args=(signum,), name="termnist-signal",
                         daemon=True).start()

    def _shutdown_for_signal(self, signum: int, watchdog: bool = True) -> None:
        """Thread: save the run, stop the worker, detach from a vanished terminal, then ask the
        app to exit (status 128 + signal); if that has not ended the process within
        EXIT_GRACE_S seconds, end it anyway (the slot and settings are on disk by then)."""
        name = signal.Signals(signum).name
        reason = {"SIGHUP": "connection lost (SIGHUP)", "SIGTERM": "terminated (SIGTERM)"}.get(name, name)
        code = 128 + int(signum)
        if watchdog:
            timer = threading.Timer(EXIT_GRACE_S, os._exit, (code,))
            timer.daemon = True
            timer.start()
        self._keep_run(reason)
        runner = self.runner
        if runner is not None:
            runner.abandon()
        if any(not _isatty(fd) for fd in self._tty_fds):
            _detach_from_terminal()
        try:
            self.call_from_thread(self.exit, None, code)
        except Exception:  # noqa: BLE001 - the app is already closing
            pass

    def save_settings(self, now: bool = False) -> None:
        """Remember the form and the UI choices. The file is written (atomically, fsynced) by
        a worker, off the event loop; ``now``: before returning (when the app exits)."""
        if not self.remember:
            return
        try:
            self._settings_pending = {
                "form": self.form.values(),
                "base": self.form.base.to_dict(),
                "ui": {"chart": self.chart.mode, "shading": self.preview.mode,
                       **self.data_settings()},    # data directory chosen in the data panel
            }
        except Exception as exc:  # noqa: BLE001 - settings are a convenience
            self.log.warning(f"cannot save settings: {exc}")
            return
        if now:
            self._write_settings()
        else:
            self._settings_worker()

    @work(thread=True, group="settings", exit_on_error=False)
    def _settings_worker(self) -> None:
        self._write_settings()

    def _write_settings(self) -> None:
        """Write the newest settings not written yet (any thread; one writer at a time, so
        an older snapshot never lands after a newer one)."""
        with self._settings_lock:
            data, self._settings_pending = self._settings_pending, None
            if data is None:
                return
            try:
                settings_store.save_settings(data, self.config_dir)
            except Exception as exc:  # noqa: BLE001 - settings are a convenience
                self.log.warning(f"cannot save settings: {exc}")


def _row_epoch(line: str) -> int | None:
    """The epoch of a log row ("  3/10  0.1234 ..."), None for other lines."""
    m = _ROW_EPOCH.match(line)
    return int(m.group(1)) if m else None


def _missing_rows(ckpt: Any, lines: Iterable[str]) -> list[str]:
    """Log rows for the checkpoint's recorded epochs after the newest row in ``lines``."""
    newest = max((e for e in map(_row_epoch, lines) if e is not None), default=0)
    epochs = int(ckpt.config.epochs)
    rows = []
    for row in ckpt.metadata.get("history") or []:
        try:
            if int(row["epoch"]) > newest:
                rows.append(_history_row(row, epochs))
        except (KeyError, TypeError, ValueError):
            continue
    return rows


def _history_row(row: dict[str, Any], epochs: int) -> str:
    """A checkpoint history entry as a log row."""
    return format_epoch_row(int(row["epoch"]), epochs, float(row["train_loss"]), float(row["train_acc"]),
                            row.get("val_loss"), row.get("val_acc"), float(row.get("seconds") or 0.0),
                            float(row.get("samples_per_s") or 0.0))


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _detach_from_terminal() -> None:
    """The terminal is gone (a hung-up tty fails every write with EIO): point stdin, stdout
    and stderr at /dev/null so the shutdown's writes succeed and input reads end."""
    try:
        fd = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    for target in (0, 1, 2):
        try:
            os.dup2(fd, target)
        except OSError:
            pass
    if fd > 2:
        os.close(fd)


def _newest_npz(directory: Path) -> str | None:
    try:
        files = sorted(directory.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    return files[0].name if files else None


def run_app(data_dir: str | None = None, dataset: str | None = None, preset: str | None = None,
            load: str | None = None, resume: bool = False, ascii_only: bool = False, **_: Any) -> int:
    """Run the app in this terminal; returns the exit status (the CLI checks for a TTY)."""
    app = TermnistApp(data_dir=data_dir, dataset=dataset, preset=preset, load=load, resume=resume,
                      handle_signals=True, ascii_only=ascii_only)
    app.run()
    return int(app.return_code or 0)
