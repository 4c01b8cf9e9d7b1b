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
from collections.abc import Callable
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
        elif what == "open":
            self.choose_earlier()
        elif what == "resume":
            self.resume()

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
        host.save_settings()
        self._launch(lambda: spec, lambda: panel.starting(spec))

    def resume(self) -> None:
        """Continue the sweep the panel shows (stopped here, or an earlier one opened with ``o``)
        with its stored settings, read from the journal in the worker; the panel's Workers field
        says how many trials at once."""
        host, panel = self.host, self.panel
        started = panel.trials.started
        if self.run.running or started is None or not panel.trials.resumable:
            return
        try:
            workers = sw.whole("workers", panel.values().get("workers") or sw.DEFAULTS["workers"])
        except sw.SweepFormError as exc:
            panel.show_error(exc.field, exc.reason)
            return
        from engine.recovery import state_dir

        name, data_dir, checkpoints = started.name, host.datasets.data_dir, str(state_dir() / "checkpoints")

        def make() -> Any:
            from engine.sweep.runner import resume_spec

            return resume_spec(name, workers=workers, data_dir=data_dir, checkpoints=checkpoints)

        self._launch(make, lambda: panel.resuming(name, workers))

    def _launch(self, make: Callable[[], Any], announce: Callable[[], None]) -> None:
        """Run the spec ``make()`` returns (in the worker: a resume reads the journal) in the
        sweep's thread worker, its events onto the panel; ``announce``: the panel says so."""
        host, panel = self.host, self.panel
        try:
            sw.ensure_resource_tracker()
        except OSError as exc:
            host.report_error(f"cannot start the sweep's worker processes: {exc}")
            return
        stop = self.run.begin()
        announce()
        run = self.run

        def post(message: Any) -> None:
            panel.post_message(message)

        def work() -> None:
            from engine.errors import TermnistError

            error: str | None = None
            try:
                spec = make()
                error = sw.run_in_thread(spec, stop, host.datasets.get,
                                         lambda e: post(panel.Update(e)),
                                         lambda text, severity: post(panel.Note(text, severity)))
            except TermnistError as exc:      # SweepError: the sweep to resume is gone or damaged
                error = f"cannot resume: {exc}"
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

    # -- earlier sweeps ------------------------------------------------------------------------------
    def choose_earlier(self) -> None:
        """``o``: the sweeps kept in the default study storage (read in a worker), in a chooser;
        the chosen one's trials go into the panel (``r`` then resumes it)."""
        host = self.host
        if self.run.running:
            return

        def work() -> None:
            from engine.errors import TermnistError
            from engine.sweep import default_storage, sweep_summaries

            try:
                sweeps, error = sweep_summaries(), None
            except TermnistError as exc:      # a corrupt journal, an unreadable storage: one line
                sweeps, error = [], str(exc)
            host.call_from_thread(self._chosen_from, sweeps, error, default_storage())

        host.run_worker(work, group="sweep-earlier", thread=True, exit_on_error=False)

    def _chosen_from(self, sweeps: list[Any], error: str | None, where: str) -> None:
        host = self.host
        if error or not sweeps:
            host.notify(error or f"no sweep kept yet in {where}: F5 starts one", title="Sweep",
                        severity="error" if error else "information", markup=False)
            return
        from tui.screens.sweep_dialogs import SweepChooser

        host.push_screen(SweepChooser(sweeps, where), self.open_earlier)

    def open_earlier(self, name: str | None) -> None:
        """Show the earlier sweep ``name`` in the panel (its stored settings and finished trials)."""
        if not name or self.run.running:
            return
        host = self.host

        def work() -> None:
            from engine.errors import TermnistError
            from engine.sweep import earlier_sweep

            try:
                started, finished = earlier_sweep(name)
            except TermnistError as exc:
                host.call_from_thread(host.notify, str(exc), title="Sweep", severity="error", markup=False)
                return
            host.call_from_thread(self._show_earlier, started, finished)

        host.run_worker(work, group="sweep-earlier", thread=True, exit_on_error=False)

    def _show_earlier(self, started: Any, finished: list[Any]) -> None:
        if not self.run.running:
            self.panel.show_earlier(started, finished)

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
