"""The Sweep panel's presenter: starts and stops the sweep, and acts on a trial.

``SweepView`` is owned by the app and uses it only through ``SweepHost`` (tui.hosts.AppHost
and the Save/Load presenter). The sweep runs engine.sweep.run_sweep in a thread worker with a
stop Event (the panel's F7, quitting the app: ``close``); its events reach the panel as
messages (post_message is thread-safe and does nothing once the app is closing). A trial's
settings go into the form; its model loads through the app's Load path (tui.model_files) from
the checkpoint recorded with the trial's run in the run store.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from tui.controllers import sweep as sw
from tui.forms import describe_errors
from tui.guard import internal
from tui.hosts import AppHost

log = logging.getLogger(__name__)


class SweepHost(AppHost, Protocol):
    @property
    def files(self) -> Any: ...        # tui.model_files.ModelFiles

    def query_one(self, selector: str) -> Any: ...


class SweepView:
    def __init__(self, host: SweepHost) -> None:
        self.host = host
        self.run = sw.SweepRun()

    @property
    def panel(self) -> Any:
        return self.host.query_one("#sweep")

    def request(self, what: str, number: int | None = None) -> None:
        if what == "start":
            self.start()
        elif what == "stop":
            self.stop()
        elif what == "settings" and number is not None:
            self.load_settings(number)
        elif what == "model" and number is not None:
            self.load_model(number)

    # -- start / stop ------------------------------------------------------------------------------
    def start(self) -> None:
        host, panel = self.host, self.panel
        if self.run.running:
            host.notify("A sweep is running: F7 (in the Sweep panel) stops it.", severity="warning")
            return
        config, errors = host.form.get_config()
        if config is None:
            reason = describe_errors(errors)
            panel.show_error("settings", f"the form's settings are invalid: {reason}")
            host.notify(f"Cannot sweep: {reason}", title="Check the settings", severity="error")
            return
        from engine.recovery import state_dir

        spec = panel.read_spec(config, data_dir=host.datasets.data_dir,
                               checkpoints=str(state_dir() / "checkpoints"))
        if spec is None:
            return
        try:
            sw.ensure_resource_tracker()
        except OSError as exc:
            host.report_error(f"cannot start the sweep's worker processes: {exc}")
            return
        stop = self.run.begin()
        panel.starting(spec)
        host.save_settings()
        run = self.run

        def post(message: Any) -> None:
            panel.post_message(message)

        def work() -> None:
            error: str | None = None
            try:
                error = sw.run_in_thread(spec, stop, host.datasets.get,
                                         lambda e: post(panel.Update(e)),
                                         lambda text, severity: post(panel.Note(text, severity)))
            except Exception as exc:  # noqa: BLE001 - a bug: logged with its traceback, shown as a line
                internal.error("the sweep failed", exc_info=exc)
                error = f"the sweep failed: {type(exc).__name__}: {exc}"
            finally:
                run.ended()
                post(panel.Ended(error))

        host.run_worker(work, name="sweep", group="sweep", thread=True, exit_on_error=False)

    def stop(self) -> None:
        if self.run.stop():
            self.panel.stopping_now()

    def close(self) -> None:
        """The app is closing: the sweep's thread ends soon (running trials stop after their batch,
        the study stays resumable), so the app exits without waiting long for it."""
        self.run.stop()

    # -- a trial's settings, its model ---------------------------------------------------------------
    def load_settings(self, number: int) -> None:
        host, trials = self.host, self.panel.trials
        row = trials.rows.get(number)
        if row is None:
            return
        try:
            config = trials.config_of(row)
        except Exception as exc:  # noqa: BLE001 - ConfigError, an edited study: one line
            host.report_error(f"cannot use trial {number}'s settings: {exc}")
            return
        host.set_form_dataset(config.dataset)
        host.form.set_config(config)
        host.form.get_config()                 # shows what (if anything) does not fit
        text = (f"trial {number}'s settings are in the form ({sw.format_params(row.params)}, "
                f"{config.epochs} epoch(s)); F5 in the Settings panel trains with them")
        host.epoch_log.write_event(text)
        host.notify(text, title="Sweep")

    def load_model(self, number: int) -> None:
        host, row = self.host, self.panel.trials.rows.get(number)
        if row is None:
            return
        if host.training or "load" in host.busy:
            host.notify("Stop training (or wait for the load) before loading a model.", severity="warning")
            return
        if row.run_id is None:
            host.notify(f"trial {number} was not recorded in the run history: no model to load",
                        severity="warning")
            return
        run_id = row.run_id

        def work() -> None:
            from engine.runs import RunStore

            path: str | None = None
            error: str | None = None
            try:
                with RunStore(readonly=True) as store:
                    path = store.get(run_id).checkpoint
            except Exception as exc:  # noqa: BLE001 - StoreError, UnknownRunError: one line
                error = f"cannot find trial {number}'s run {run_id}: {exc}"
            else:
                error = None if path else (f"trial {number}'s model was not kept (run {run_id} has no"
                                           " checkpoint): load its settings (b) and train")
            host.call_from_thread(self._load_found, path, error)

        host.run_worker(work, group="sweep-model", thread=True, exit_on_error=False)

    def _load_found(self, path: str | None, error: str | None) -> None:
        if error or path is None:
            self.host.notify(error or "no model", severity="warning", markup=False)
            return
        self.host.files.load_from(path)
