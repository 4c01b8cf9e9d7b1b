"""The app's side of the data panel: opening it, downloading, choosing a directory.

``DataPanelMixin`` is mixed into ``TermnistApp`` (it keeps app.py about training). It

- opens ``DataScreen`` when a dataset is missing, when the engine's search fell back to the
  bundled MNIST sample (once per session; not again after the user chose the sample), and on
  Ctrl+D;
- runs downloads in a thread worker (group "download"): engine.download reports progress and
  log lines, which reach the UI as messages (``tui.messages.Download*``); the ``cancel``
  Event stops it, keeping the ``.part`` file for resuming;
- uses a directory the user typed as the data directory for the session, remembered in the
  settings (``ui.data_dir``);
- marks, in the form's dataset field, which sets are here and which need a download.

Quitting cancels a running download. The engine call runs in a daemon thread that the worker
watches, so a stalled connection (blocked in a socket read until its timeout) never holds up
the app's exit; a final file name only ever holds a verified file (engine.download).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from textual import work
from textual.worker import get_current_worker

from tui import messages as msg
from tui.data_status import (
    MNIST_CREDIT,
    DataReport,
    DownloadMeter,
    data_dir_hint,
    data_report,
    dataset_state,
    report_from_error,
)
from tui.guard import guarded
from tui.screens.data_screen import DataChoice, DataScreen


class DataPanelMixin:
    """Mixed into TermnistApp; relies on its form, epoch_log, dataset, data_dir, training,
    get_dataset/_load_dataset, action_train, report_error, update_status, save_settings."""

    #: Mirrors tried before the registry's (tests point this at a local server).
    download_mirrors: tuple[str, ...] = ()
    download_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.download_name: str | None = None        # the dataset being downloaded
        self.download_cancel: threading.Event | None = None
        self.download_info: Any = None               # latest DownloadProgressInfo
        self.download_lines: list[str] = []          # its log lines (mirror failures ...)
        self._download_thread: threading.Thread | None = None
        self.remembered_data_dir: str | None = None  # typed in the panel; kept in settings
        self.sample_ok = False                       # the user chose the sample: don't ask again
        self._data_prompted: set[str] = set()        # fallbacks already shown this session
        self._missing: dict[str, DataReport] = {}    # last failed load per dataset
        self._train_when_ready: str | None = None    # "sample" chosen: train once it is loaded
        self._close_panel_when_ready: str | None = None
        self._sample_val_size: str | None = None     # val_size forced by the sample, to undo

    # ------------------------------------------------------------------ state
    @property
    def uses_engine_search(self) -> bool:
        """True when datasets come from engine.datasets' search (not an injected loader), so
        "where it looked" and "found or not" can be asked of the engine."""
        return getattr(self, "_load_dataset_fn", None) is None

    @property
    def downloading(self) -> bool:
        return self.download_cancel is not None

    def apply_data_settings(self, ui: dict[str, Any]) -> None:
        """On mount: a remembered data directory (unless --data was given) and whether the
        user already chose to work on the sample."""
        self.sample_ok = bool(ui.get("sample_ok"))
        remembered = ui.get("data_dir")
        if isinstance(remembered, str) and remembered:
            self.remembered_data_dir = remembered
            if self.data_dir is None:
                if Path(remembered).exists():
                    self.data_dir = remembered
                else:
                    self.epoch_log.write_event(
                        f"the remembered data directory {remembered} is gone; searching the "
                        "usual places (Ctrl+D to choose another)", "warning")
                    self.remembered_data_dir = None

    def data_settings(self) -> dict[str, Any]:
        """What save_settings keeps under "ui"."""
        out: dict[str, Any] = {}
        if self.remembered_data_dir:
            out["data_dir"] = self.remembered_data_dir
        if self.sample_ok:
            out["sample_ok"] = True
        return out

    def refresh_dataset_states(self) -> None:
        """Mark the form's dataset choices as here / sample / to download (engine search only:
        an injected loader knows its own data)."""
        if not self.uses_engine_search:
            return
        try:
            states = {name: dataset_state(name, self.data_dir) for name in self.form.datasets}
        except Exception as exc:  # noqa: BLE001 - labels are a convenience
            self.log.warning(f"cannot check the datasets: {exc}")
            return
        self.form.set_dataset_states(states)

    def data_status_text(self) -> str:
        """The status line's data part: what is trained on, said plainly, and a download."""
        ds = self.dataset
        if ds is None:
            data = "no dataset loaded (Ctrl+D: data)"
        elif ds.is_sample:
            data = ("bundled MNIST sample, not the full set (^d); "
                    "MNIST: LeCun, Cortes, Burges (CC BY-SA 3.0)")
        elif ds.name == "mnist":
            data = f"MNIST ({len(ds.y_train):,} train images), the full set"
        else:
            data = f"{ds.title} ({len(ds.y_train):,} train images)"
        if self.downloading:
            info = self.download_info
            what = info.short() if info is not None else f"downloading {self.download_name}..."
            data = f"{what} | {data}"
        return data

    def reload_dataset(self, name: str | None) -> None:
        """The data directory changed or a download arrived: drop every loaded dataset, then
        load ``name`` (None: only drop; the next run loads what it needs)."""
        self._load_dataset(name, drop_cached=True)

    def _set_form_dataset(self, name: str) -> None:
        """Show ``name`` in the form's dataset field without the field asking for a load."""
        from textual.widgets import Select

        if self.form_dataset() != name:
            with self.prevent(Select.Changed):
                self.form.set_values({"dataset": name})

    # ------------------------------------------------------------------ the panel
    def _data_screen(self) -> DataScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, DataScreen):
                return screen
        return None

    def report_for(self, name: str) -> DataReport:
        """Where ``name`` stands now: the engine's search (unless the last load of ``name``
        failed, which says more), else what the app's own loader gave."""
        missing = self._missing.get(name)
        if self.uses_engine_search:
            report = data_report(name, self.data_dir)
            return missing if missing is not None and report.state == "found" else report
        if missing is not None:
            return missing
        ds = self.dataset
        if ds is not None and ds.name == name:
            state = "sample" if ds.is_sample and name == "mnist" else "found"
            where = "the bundled sample" if ds.is_sample else ds.source
            return DataReport(name, ds.title, state,
                              f"{ds.title} is loaded from {where} "
                              f"({len(ds.y_train):,} train / {len(ds.y_test):,} test images).",
                              (), place=str(ds.source), downloadable=state == "sample")
        return data_report(name, self.data_dir, results=[])

    def action_data(self) -> None:
        """Ctrl+D: the data panel for the dataset in the form."""
        if self._data_screen() is not None:
            return
        self.open_data_panel(self.report_for(self.form_dataset()))

    def open_data_panel(self, report: DataReport) -> None:
        screen = self._data_screen()
        if screen is not None:
            other = screen.report.name != report.name
            screen.set_report(report)
            if other:
                mine = self.download_name == report.name
                screen.set_download_state(mine, self.download_info if mine else None,
                                          self.download_lines if mine else None)
            return
        if report.name == "mnist":
            label = "Train on the bundled sample now (10,000 images)"
        else:
            label = "Train on the bundled MNIST sample instead"
        screen = DataScreen(report, downloading=self.downloading and self.download_name == report.name,
                            progress=self.download_info if self.download_name == report.name else None,
                            log=self.download_lines if self.download_name == report.name else None,
                            sample_label=label)
        self.push_screen(screen, self._data_choice)

    def _expect(self, name: str) -> None:
        """A download or a directory is about to replace what is loaded: close the panel when
        ``name`` arrives, and undo the validation size the bundled sample forced (the app
        lowers it to 1/5 of a set too small for it) if the user has not changed it since."""
        self._close_panel_when_ready = name
        ds = self.dataset
        self._sample_val_size = None
        if ds is not None and ds.is_sample:
            shown = self.form.values().get("val_size", "")
            if shown == str(len(ds.y_train) // 5) and self.form.base.val_size > int(shown):
                self._sample_val_size = shown

    def data_dataset_ready(self, ds: Any) -> None:
        """After the app took a newly loaded dataset (on_dataset_ready)."""
        self._missing.pop(ds.name, None)
        if self._close_panel_when_ready == ds.name:
            self._close_panel_when_ready = None
            forced, self._sample_val_size = self._sample_val_size, None
            wanted = self.form.base.val_size
            if (forced is not None and not ds.is_sample and not self.training
                    and self.form.values().get("val_size") == forced and wanted < len(ds.y_train)):
                self.form.set_values({"val_size": str(wanted)})
                self.epoch_log.write_event(f"validation size back to {wanted} (the settings' own) "
                                           f"for {ds.title}")
            screen = self._data_screen()
            if screen is not None and screen.report.name == ds.name:
                screen.dismiss(None)
            text = (f"{ds.title}{' full set' if ds.name == 'mnist' and not ds.is_sample else ''} "
                    f"loaded: {len(ds.y_train):,} train / {len(ds.y_test):,} test images from {ds.source}")
            self.notify(text, title="Data")
        if self._train_when_ready == ds.name:
            self._train_when_ready = None
            if not self.training:
                self.action_train()
            return
        if (self.uses_engine_search and ds.is_sample and ds.name == "mnist" and not self.training
                and not self.sample_ok and "mnist" not in self._data_prompted):
            report = data_report("mnist", self.data_dir)
            if report.state == "sample":
                self._data_prompted.add("mnist")
                self.open_data_panel(report)

    def data_dataset_missing(self, message: msg.DatasetMissing) -> None:
        """A load failed: show the panel with where it looked."""
        report = report_from_error(message.name, message.message, message.searched)
        if self.data_dir is not None and message.searched and not report.hint:
            report = DataReport(
                report.name, report.title, report.state, report.headline, report.searched,
                downloadable=report.downloadable,
                hint=data_dir_hint(self.data_dir, message.name))
        self._missing[message.name] = report
        if self._train_when_ready == message.name:
            self._train_when_ready = None
        if self._close_panel_when_ready == message.name:
            self._close_panel_when_ready = None
        self.refresh_dataset_states()
        self.open_data_panel(report)

    @guarded
    def _data_choice(self, choice: DataChoice | None) -> None:
        if choice is None:
            return
        if choice.kind == "sample":
            self._choose_sample(choice.name)
        elif choice.kind == "dir" and choice.path:
            self._choose_directory(choice.name, choice.path)
        elif choice.kind == "train":
            self.action_train()

    def _choose_sample(self, name: str) -> None:
        if name == "mnist":
            self.sample_ok = True      # don't offer the full set at every start
            self.save_settings()
        if self.training:
            self.notify("A run is in progress: F7 stops it.", severity="warning")
            return
        ds = self.dataset
        if ds is not None and ds.is_sample and ds.name == self.form_dataset():
            self.action_train()          # the sample is what this dataset choice loads
            return
        self.epoch_log.write_event("training on the bundled MNIST sample (10,000 train / 2,000 "
                                   f"test images). {MNIST_CREDIT}.")
        self._train_when_ready = "mnist-sample"
        self._set_form_dataset("mnist-sample")
        self._load_dataset("mnist-sample")

    def _choose_directory(self, name: str, path: str) -> None:
        self.data_dir = path
        self.remembered_data_dir = path
        self.save_settings()
        self._missing.pop(name, None)
        self.refresh_dataset_states()
        self.epoch_log.write_event(f"data directory: {path} (used from now on, and remembered)")
        if self.training:
            self.reload_dataset(None)
            self.notify("The new data directory is used from the next run.", title="Data")
            return
        self._expect(name)
        self._set_form_dataset(name)
        self.reload_dataset(name)
        self.update_status()

    def on_data_screen_download_requested(self, message: DataScreen.DownloadRequested) -> None:
        message.stop()
        self.start_download(message.name)

    def on_data_screen_cancel_requested(self, message: DataScreen.CancelRequested) -> None:
        message.stop()
        if self.download_name == message.name:
            self.cancel_download()

    # ------------------------------------------------------------------ downloads
    def start_download(self, name: str) -> None:
        if self.downloading:
            self.notify(f"Already downloading {self.download_name}.", severity="warning")
            return
        from engine.download import target_dir

        to = self.download_target(name)
        cancel = threading.Event()
        self.download_name = name
        self.download_cancel = cancel
        self.download_info = None
        self.download_lines = []
        screen = self._data_screen()
        if screen is not None and screen.report.name == name:
            screen.download_started()
        self.epoch_log.write_event(f"downloading {name} into {target_dir(name, to)} "
                                   "(Ctrl+D shows the progress; quitting cancels it)")
        self.update_status()
        self._download_worker(name, cancel, self._download_thread, to)

    def download_target(self, name: str) -> Path | None:
        """Where a download goes: ``<data dir>/<name>/`` when a data directory is in use and
        writable (it is then the only place searched, and finds it there), else the user
        cache (None), where the usual search looks."""
        import os

        if self.data_dir is None:
            return None
        root = Path(self.data_dir).expanduser()
        if root.is_dir() and os.access(root, os.W_OK | os.X_OK):
            return root / name
        return None

    def cancel_download(self) -> None:
        """Ask the running download to stop (safe to call any time, from any thread)."""
        cancel = self.download_cancel
        if cancel is not None:
            cancel.set()

    @work(thread=True, exclusive=True, group="download", exit_on_error=False, name="download")
    def _download_worker(self, name: str, cancel: threading.Event,
                         previous: threading.Thread | None, to: Path | None = None) -> None:
        from engine.datasets import IDX_FILES
        from engine.download import download

        worker = get_current_worker()

        def stopping() -> bool:
            if worker.is_cancelled:
                cancel.set()
            return cancel.is_set()

        def post(message: Any) -> None:
            if not cancel.is_set():
                self.post_message(message)

        # A cancelled download's thread may still be finishing its last read: never let two
        # threads write the same .part file.
        while previous is not None and previous.is_alive() and not stopping():
            previous.join(0.1)
        meter = DownloadMeter(name, IDX_FILES)
        outcome: dict[str, Any] = {}

        def progress(file: str, done: int, total: int | None) -> None:
            info = meter.update(file, done, total)
            if info is not None:
                post(msg.DownloadProgress(info))

        def run() -> None:
            try:
                outcome["path"] = download(name, to=to, mirrors=self.download_mirrors, progress=progress,
                                           cancel=cancel, timeout=self.download_timeout,
                                           log=lambda line: post(msg.DownloadLog(name, line)))
            except BaseException as exc:  # noqa: BLE001 - reported as a message
                outcome["error"] = exc

        thread = threading.Thread(target=run, name=f"termnist-download-{name}", daemon=True)
        started = False
        if not stopping():
            self._download_thread = thread
            thread.start()
            started = True
        while thread.is_alive() and not stopping():
            thread.join(0.05)
        if not started or thread.is_alive():
            # Cancelled (or quitting): don't wait for a read that may block until its timeout;
            # the thread stops at its next chunk and keeps the .part for resuming.
            self.post_message(msg.DownloadFailed(
                name, "download cancelled; the partial file is kept, so Download resumes it",
                cancelled=True))
            return
        if meter.latest is not None and not cancel.is_set():
            self.post_message(msg.DownloadProgress(meter.latest))   # the final position
        if "path" in outcome:
            self.post_message(msg.DownloadFinished(name, str(outcome["path"])))
            return
        from engine.download import DownloadCancelled

        exc = outcome.get("error")
        if isinstance(exc, DownloadCancelled):
            text = "download cancelled; the partial file is kept, so Download resumes it"
        else:
            text = f"download failed: {exc}" if exc is not None else "download failed"
        self.post_message(msg.DownloadFailed(name, text, cancelled=isinstance(exc, DownloadCancelled)))

    @guarded
    def on_download_progress(self, message: msg.DownloadProgress) -> None:
        info = message.info
        if info.name != self.download_name:
            return
        self.download_info = info
        screen = self._data_screen()
        if screen is not None and screen.report.name == info.name:
            screen.show_progress(info)
        self.update_status()

    @guarded
    def on_download_log(self, message: msg.DownloadLog) -> None:
        self.download_lines.append(message.line)
        severity = "warning" if message.line.startswith("mirror failed") else "information"
        self.epoch_log.write_event(f"download: {message.line}", severity)
        screen = self._data_screen()
        if screen is not None and screen.report.name == message.name:
            screen.add_log(message.line)

    def _download_over(self) -> None:
        self.download_name = None
        self.download_cancel = None
        self.download_info = None

    @guarded
    def on_download_finished(self, message: msg.DownloadFinished) -> None:
        name = message.name
        self._download_over()
        text = f"{name}: downloaded and verified in {message.path}"
        self.epoch_log.write_event(text)
        screen = self._data_screen()
        if screen is not None and screen.report.name == name:
            screen.download_ended(f"Downloaded and verified in {message.path}; loading it...", ok=True)
        if self.data_dir is not None:
            from engine.datasets import locate_dataset

            results = locate_dataset(name, self.data_dir)
            if not (results and results[-1].found):
                self.epoch_log.write_event(
                    f"{self.data_dir} does not hold {name}: searching the usual places again "
                    "(they include the download)")
                self.data_dir = None
                if self.remembered_data_dir is not None:
                    self.remembered_data_dir = None
                    self.save_settings()
        self._missing.pop(name, None)
        self.refresh_dataset_states()
        if self.training:
            self.reload_dataset(None)
            self.notify(f"{name} is downloaded; it is used from the next run.", title="Data")
        elif self.form_dataset() == name:
            self._expect(name)
            self.reload_dataset(name)
        else:
            self.reload_dataset(None)
            self.notify(f"{name} is downloaded: pick it in the form's dataset field.", title="Data")
        self.update_status()

    @guarded
    def on_download_failed(self, message: msg.DownloadFailed) -> None:
        if message.name != self.download_name:
            return
        self._download_over()
        self.epoch_log.write_event(f"{message.name}: {message.message}",
                                   "warning" if message.cancelled else "error")
        screen = self._data_screen()
        if screen is not None and screen.report.name == message.name:
            screen.download_ended(message.message[:1].upper() + message.message[1:], ok=False)
        elif not message.cancelled:
            self.report_error(f"{message.name}: {message.message}")
        self.update_status()

