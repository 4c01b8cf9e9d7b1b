"""What a run shows: the engine's events and the runner's values, onto the chart, the epoch
log, the preview and the status line.

``RunView`` is owned by the app and uses it only through ``tui.hosts.AppHost`` (the explicit,
type-checked contract of the presenters). The app's message handlers hand it the messages'
payloads; it dispatches engine events by type. It also keeps what the screen knows of the run (progress text, the last
accuracies, the preview's predictions), which the status line and Save's default name read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from textual.worker import WorkerState, get_current_worker

from engine import events as ev
from tui import messages as msg
from tui.forms import FIELDS_BY_NAME, describe_errors
from tui.hosts import AppHost
from tui.runner import Failure, LogLine, Points, Predictions, Progress
from tui.widgets.epoch_log import format_duration, format_epoch_row

log = logging.getLogger(__name__)


RunHost = AppHost      # what it uses of the app: the common host contract (tui/hosts.py)


class RunView:
    def __init__(self, host: RunHost) -> None:
        self.host = host
        self.progress_text = ""
        self.last_test_acc: float | None = None
        self.last_val_acc: float | None = None
        self.model_dataset: str | None = None        # the dataset of the model Save writes
        self.predictions: Predictions | None = None
        self.resumed = False                         # the run in progress continues a cut one
        self._told_next_run = False                  # "settings changed" said for this run
        self._form_at_start: Any = None              # the form's settings when the run began

    # ------------------------------------------------------------------ F5, and a run's worker
    def train(self) -> None:
        """F5: train with the form's settings (refused, with the reason, while a field is bad)."""
        host = self.host
        if host.training or "load" in host.busy:
            host.notify("Already training: F7 stops the current run." if host.training else
                        "A model is still loading; try again in a moment.", severity="warning")
            return
        config, errors = host.form.get_config()
        if config is None:
            reason = describe_errors(errors)
            host.notify(f"Cannot train: {reason}", title="Check the settings", severity="error")
            host.epoch_log.write_event(f"cannot train: {reason}", "error")
            host.panels.focus_field(next(iter(errors)))
            return
        self.start(config)

    def start(self, config: Any, resume: Any = None) -> None:
        """Start a run (``resume``: a checkpoint to continue) in the training worker thread."""
        host = self.host
        def post(update: Any) -> None:          # the worker's outlet (any thread)
            host.post_message(msg.wrap(update))

        runner, early = host.trainer.begin(post, config,
                                           host.datasets.cached(config.dataset) if resume is None else None)
        self._told_next_run = False
        self._form_at_start = host.form.get_config()[0]     # what "changed" is measured against
        host.save_settings()
        self.starting(resume)
        host.state_changed()
        if host.panel == "form":
            host.set_panel("train")
        box = [early] if early is not None else []

        def work() -> None:
            worker = get_current_worker()
            # popped, not kept: a pool thread keeps its last worker's arguments alive
            first = box.pop() if box else None
            host.trainer.run(runner, config, resume, first, host.datasets.get,
                             lambda ds: host.post_message(msg.DatasetReady(ds)), lambda: worker.is_cancelled)

        host.run_worker(work, name="training", group="training", exclusive=True, exit_on_error=False,
                        thread=True)

    def worker_changed(self, worker: Any) -> None:
        """The training worker's state changed: once it is over, the run is."""
        if worker.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        host = self.host
        if worker.state == WorkerState.ERROR:
            host.report_error(f"training worker failed: {worker.error}")
        session = host.trainer.ended()
        if session is not None:
            host.model = session             # what Save writes until the next run or load
        self.ended()
        host.state_changed()

    def form_changed(self, field: str | None = None) -> None:
        """The form changed during a run: if it really differs from what the form said when
        the run began (a resume setting the form to the run's settings is no change), say
        whether Enter applies the field live (tui.live) or it applies to the next run."""
        host = self.host
        if not host.training:
            return
        now, start = host.form.get_config()[0], self._form_at_start
        if now is not None and start is not None and (
                now == start if field is None else getattr(now, field, None) == getattr(start, field, None)):
            return
        if host.live.form_edited(field):
            return
        if not self._told_next_run and now != start:
            self._told_next_run = True
            host.epoch_log.write_event("settings changed: they apply to the next run, not this one")

    def live_changed(self, field: str, value: Any) -> None:
        """A live change took effect: the form shows it, and it is no edit of the form."""
        if self._form_at_start is not None:
            self._form_at_start = self._form_at_start.replace(**{field: value})

    # ------------------------------------------------------------------ a run begins / ends
    def starting(self, resume: Any = None) -> None:
        """UI thread, F5 (or a resume) accepted: clear the chart, show the resumed history."""
        host = self.host
        self.progress_text = "starting..."
        self.resumed = resume is not None
        host.chart.clear()
        host.live.reset()
        if resume is not None:
            self.replay_history(resume)
        host.epoch_log.set_progress("starting...", 0, 1)

    def ended(self) -> None:
        """The training worker is over."""
        self.progress_text = ""
        self.host.epoch_log.set_progress("idle")

    def replay_history(self, ckpt: Any) -> None:
        """A checkpoint's recorded epochs as log rows and in the chart (the loss curve goes on
        from each epoch's mean training loss). The structured history is the one record of a
        run's epochs: the recovery slot keeps no screen text."""
        host = self.host
        epochs = int(ckpt.config.epochs)
        changes = list(_changes(ckpt))
        for row in _history(ckpt):
            for change in [c for c in changes if c.epoch <= row["epoch"]]:   # live changes before it
                changes.remove(change)
                host.live.changed(change, replayed=True)
            host.epoch_log.write_row(format_epoch_row(
                row["epoch"], epochs, row["train_loss"], row["train_acc"], row["val_loss"],
                row["val_acc"], row["seconds"], row["samples_per_s"]))
            host.chart.add_epoch(row["epoch"], row["train_acc"], row["val_loss"], row["val_acc"])
            step, epoch = row["global_step"], row["epoch"]
            if step > 0:
                per_epoch = max(1, step // epoch)
                host.chart.add_steps([(step - per_epoch // 2, row["train_loss"])], per_epoch)

    def show_loaded(self, loaded: Any) -> None:
        """A model was loaded (tui.controllers.models.LoadedModel): it is what the screen shows."""
        self.model_dataset = loaded.dataset.name
        self.last_test_acc = loaded.test_acc
        self.predictions = loaded.predictions
        self.host.preview.set_predictions(loaded.predictions)

    # ------------------------------------------------------------------ runner values
    def points(self, update: Points) -> None:
        self.host.chart.add_steps(update.points, update.steps_per_epoch)

    def progress(self, update: Progress) -> None:
        e = update.event
        self.progress_text = (f"epoch {e.epoch}/{update.epochs} step {e.step}/{e.steps_per_epoch} "
                              f"loss {e.loss:.4f} ETA {format_duration(update.eta_s)}")
        self.host.epoch_log.set_progress(self.progress_text, e.step, e.steps_per_epoch)
        self.host.update_status()

    def predictions_ready(self, update: Predictions) -> None:
        self.predictions = update
        self.host.preview.set_predictions(update)

    def note(self, update: LogLine) -> None:
        self.host.epoch_log.write_event(update.text, update.severity)

    def failure(self, update: Failure) -> None:
        host = self.host
        host.report_error(update.message, details=update.details)
        if update.field in FIELDS_BY_NAME:
            host.form.show_error(update.field, update.message.split(": ", 1)[-1])
            host.panels.focus_field(update.field)

    # ------------------------------------------------------------------ engine events
    def event(self, event: ev.Event) -> None:
        match event:
            case ev.RunStarted():
                self._started(event)
            case ev.EpochEnded():
                self._epoch_ended(event)
            case ev.Paused() | ev.Resumed():
                self._paused(event)
            case ev.HyperparamsChanged():
                self.host.live.changed(event)
            case ev.Diverged():
                self.host.epoch_log.write_event(event.message, "warning")
                self.host.notify(event.message, severity="warning")
            case ev.Stopped():
                self.host.epoch_log.write_event(f"stopped after {event.epoch} full epoch(s)")
            case ev.Finished():
                self._finished(event)
            case ev.Failed():
                self.host.report_error(event.message)
            case _:
                log.debug("event not shown: %r", event)

    def _started(self, e: ev.RunStarted) -> None:
        from engine.training import TrainConfig

        host = self.host
        try:
            desc = TrainConfig.from_dict(e.config).describe()
        except Exception:  # noqa: BLE001 - a description is not worth failing over
            desc = str(e.config)
        resumed = f", resuming after epoch {e.start_epoch}" if e.start_epoch else ""
        host.epoch_log.write_event(
            f"run {host.trainer.run_count}: {e.n_train:,} train / {e.n_val:,} val / {e.n_test:,} test, "
            f"{e.steps_per_epoch} steps/epoch{resumed}; {desc}")
        self.last_test_acc = None
        self.last_val_acc = None
        self.model_dataset = e.config.get("dataset", self.model_dataset)
        if not self.resumed:
            host.recovery.clear()   # a new run takes the slot over (a declined old run goes now)
        host.state_changed()

    def _epoch_ended(self, e: ev.EpochEnded) -> None:
        host = self.host
        host.epoch_log.write_row(format_epoch_row(e.epoch, e.epochs, e.train_loss, e.train_acc, e.val_loss,
                                                  e.val_acc, e.seconds, e.samples_per_s))
        host.chart.add_epoch(e.epoch, e.train_acc, e.val_loss, e.val_acc)
        self.last_val_acc = e.val_acc
        session = host.trainer.session
        if session is not None and host.recovery.enabled:
            # The slot gets the exact end-of-epoch state (it survives even SIGKILL): an
            # immutable copy taken here, written by the slot's writer thread.
            host.recovery.autosave(session.checkpoint(last_completed_epoch=True), host.data_dir_of_run(),
                                   f"saved at the end of epoch {e.epoch}")

    def _paused(self, e: ev.Paused | ev.Resumed) -> None:
        paused = isinstance(e, ev.Paused)
        self.host.trainer.paused = paused
        text = self.host.live.paused_text(e) if isinstance(e, ev.Paused) else None
        self.host.epoch_log.write_event(text or f"{'paused' if paused else 'resumed'} at epoch {e.epoch} step {e.step}")
        self.host.state_changed()

    def _finished(self, e: ev.Finished) -> None:
        host = self.host
        host.trainer.finished = True
        self.last_test_acc = e.test_acc
        text = (f"run {host.trainer.run_count} {e.reason} after {e.epochs_done} epoch(s) in "
                f"{format_duration(e.seconds)}: test accuracy {e.test_acc * 100:.2f}% "
                f"(loss {e.test_loss:.4f})")
        host.epoch_log.write_event(text)
        host.notify(text, title="Training finished")
        host.recovery.clear()   # completed, stopped or diverged on purpose: nothing to resume
        host.update_status()


def _changes(ckpt: Any) -> Iterable[ev.HyperparamsChanged]:
    """A checkpoint's live changes (metadata "changes") as the events they were (damaged ones
    skipped)."""
    for c in ckpt.metadata.get("changes") or []:
        try:
            yield ev.HyperparamsChanged(epoch=int(c["epoch"]), step_in_epoch=int(c["step_in_epoch"]),
                                        global_step=int(c["global_step"]), field=str(c["field"]),
                                        old=float(c["old"]), new=float(c["new"]))
        except (KeyError, TypeError, ValueError):
            continue


def _history(ckpt: Any) -> Iterable[dict[str, Any]]:
    """A checkpoint's history entries with their types checked (damaged ones skipped)."""
    for row in ckpt.metadata.get("history") or []:
        try:
            epoch = int(row["epoch"])
            yield {
                "epoch": epoch, "train_loss": float(row["train_loss"]), "train_acc": float(row["train_acc"]),
                "val_loss": None if row.get("val_loss") is None else float(row["val_loss"]),
                "val_acc": None if row.get("val_acc") is None else float(row["val_acc"]),
                "seconds": float(row.get("seconds") or 0.0), "samples_per_s": float(row.get("samples_per_s") or 0.0),
                "global_step": int(row.get("global_step") or 0),
            }
        except (KeyError, TypeError, ValueError):
            continue
