"""Datasets in the app and the data panel: loading and showing a dataset, when the panel
opens, what it offers, what a choice does.

``DataPanel`` is owned by the app and uses it only through ``tui.hosts.AppHost`` (the explicit,
type-checked contract of the presenters). It

- opens ``DataScreen`` when a dataset is missing, when the engine's search fell back to the
  bundled MNIST sample (once per session; not again after the user chose the sample), and on
  Ctrl+D;
- starts and reports downloads (tui.controllers.downloads runs them);
- uses a directory the user typed as the data directory for the session, remembered in the
  settings (``ui.data_dir``);
- marks, in the form's dataset field, which sets are here and which need a download.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual.worker import get_current_worker

from engine.errors import DatasetNotFoundError
from tui import messages as msg
from tui.controllers.downloads import (
    DownloadFailed,
    DownloadFinished,
    DownloadLog,
    DownloadProgress,
    DownloadUpdate,
)
from tui.data_status import MNIST_CREDIT, DataReport, data_dir_hint, data_report, dataset_state, report_from_error
from tui.guard import guarded
from tui.hosts import AppHost
from tui.screens.data_screen import DataChoice, DataScreen


DataHost = AppHost      # what it uses of the app: the common host contract (tui/hosts.py)


class DataPanel:
    def __init__(self, host: DataHost) -> None:
        self.host = host
        self.remembered_data_dir: str | None = None  # typed in the panel; kept in settings
        self.sample_ok = False                       # the user chose the sample: don't ask again
        self._prompted: set[str] = set()             # fallbacks already shown this session
        self._missing: dict[str, DataReport] = {}    # last failed load per dataset
        self._train_when_ready: str | None = None    # "sample" chosen: train once it is loaded
        self._close_when_ready: str | None = None
        self.keys_seen = False                       # the user has typed since the start

    # ------------------------------------------------------------------ settings
    def apply_settings(self, ui: dict[str, Any], data_given: bool) -> None:
        """On mount: a remembered data directory (unless --data was given: the command line
        wins) and whether the user already chose to work on the sample."""
        self.sample_ok = bool(ui.get("sample_ok"))
        remembered = ui.get("data_dir")
        if not (isinstance(remembered, str) and remembered):
            return
        self.remembered_data_dir = remembered
        if data_given:
            return
        if Path(remembered).exists():
            self.host.datasets.use_data_dir(remembered)
        else:
            self.host.epoch_log.write_event(
                f"the remembered data directory {remembered} is gone; searching the usual places "
                "(Ctrl+D to choose another)", "warning")
            self.remembered_data_dir = None

    def settings(self) -> dict[str, Any]:
        """What the app's settings keep under "ui"."""
        out: dict[str, Any] = {}
        if self.remembered_data_dir:
            out["data_dir"] = self.remembered_data_dir
        if self.sample_ok:
            out["sample_ok"] = True
        return out

    # ------------------------------------------------------------------ loading, showing
    def load(self, name: str | None, drop_cached: bool = False) -> None:
        """Load ``name`` in a worker and show it; ``drop_cached``: first forget what is loaded
        (``name`` None: only that). A newer request supersedes one in flight."""
        host = self.host

        def work() -> None:
            if drop_cached:
                host.datasets.drop()
            if name is None:
                return
            try:
                ds = host.datasets.get(name)
                if not get_current_worker().is_cancelled:
                    host.post_message(msg.DatasetReady(ds))
            except DatasetNotFoundError as exc:
                host.post_message(msg.DatasetMissing(name, str(exc), exc.searched))
            except Exception as exc:  # noqa: BLE001 - reported as a message
                host.post_message(msg.DatasetMissing(name, str(exc)))

        host.run_worker(work, group="data", exclusive=True, exit_on_error=False, thread=True)

    def show(self, ds: Any) -> None:
        """Show ``ds`` (its test images in the preview), have the training process take it
        ahead of F5, then close the panel, train, or offer the full set."""
        host = self.host
        if ds is not host.dataset:
            host.dataset = ds
            host.preview.set_images(ds.x_test, ds.y_test, ds.class_names, ds.max_value)
            host.epoch_log.write_event(_dataset_line(ds))
            host.update_status()
            if not host.training:
                host.run_worker(lambda: host.trainer.prepare(ds), group="trainer", exclusive=True,
                                exit_on_error=False, thread=True)
        self.dataset_ready(ds)

    # ------------------------------------------------------------------ state
    def refresh_states(self) -> None:
        """Mark the form's dataset choices as here / sample / to download (engine search only:
        an injected loader knows its own data)."""
        host = self.host
        if not host.datasets.uses_engine_search:
            return
        try:
            states = {name: dataset_state(name, host.datasets.data_dir) for name in host.form.datasets}
        except Exception:
            import logging

            logging.getLogger(__name__).warning("cannot check the datasets", exc_info=True)
            return
        host.form.set_dataset_states(states)

    def status_text(self) -> str:
        """The status line's data part: what is trained on, said plainly, and a download."""
        ds = self.host.dataset
        if ds is None:
            data = "no dataset loaded (Ctrl+D: data)"
        elif ds.is_sample:
            data = ("bundled MNIST sample, not the full set (^d); "
                    "MNIST: LeCun, Cortes, Burges (CC BY-SA 3.0)")
        elif ds.name == "mnist":
            data = f"MNIST ({len(ds.y_train):,} train images), the full set"
        else:
            data = f"{ds.title} ({len(ds.y_train):,} train images)"
        downloads = self.host.downloads
        if downloads.downloading:
            info = downloads.info
            what = info.short() if info is not None else f"downloading {downloads.name}..."
            data = f"{what} | {data}"
        return data

    # ------------------------------------------------------------------ the panel
    def screen(self) -> DataScreen | None:
        for screen in reversed(self.host.screen_stack):
            if isinstance(screen, DataScreen):
                return screen
        return None

    def report_for(self, name: str) -> DataReport:
        """Where ``name`` stands now: the engine's search (unless the last load of ``name``
        failed, which says more), else what the app's own loader gave."""
        missing = self._missing.get(name)
        datasets = self.host.datasets
        if datasets.uses_engine_search:
            report = data_report(name, datasets.data_dir)
            return missing if missing is not None and report.state == "found" else report
        if missing is not None:
            return missing
        ds = self.host.dataset
        if ds is not None and ds.name == name:
            state = "sample" if ds.is_sample and name == "mnist" else "found"
            where = "the bundled sample" if ds.is_sample else ds.source
            return DataReport(name, ds.title, state,
                              f"{ds.title} is loaded from {where} "
                              f"({len(ds.y_train):,} train / {len(ds.y_test):,} test images).",
                              (), place=str(ds.source), downloadable=state == "sample")
        return data_report(name, datasets.data_dir, results=[])

    def open(self, report: DataReport | None = None) -> None:
        """Show the panel for ``report`` (default: the form's dataset)."""
        if report is None:
            if self.screen() is not None:
                return
            report = self.report_for(self.host.form_dataset())
        downloads = self.host.downloads
        mine = downloads.name == report.name
        screen = self.screen()
        if screen is not None:
            other = screen.report.name != report.name
            screen.set_report(report)
            if other:
                screen.set_download_state(mine, downloads.info if mine else None,
                                          downloads.lines if mine else None)
            return
        if report.name == "mnist":
            label = "Train on the bundled sample now (10,000 images)"
        else:
            label = "Train on the bundled MNIST sample instead"
        self.host.push_screen(DataScreen(report, downloading=downloads.downloading and mine,
                                         progress=downloads.info if mine else None,
                                         log=downloads.lines if mine else None, sample_label=label),
                              self.choice)

    def dataset_ready(self, ds: Any) -> None:
        """After the app took a newly loaded dataset."""
        host = self.host
        self._missing.pop(ds.name, None)
        if self._close_when_ready == ds.name:
            self._close_when_ready = None
            screen = self.screen()
            if screen is not None and screen.report.name == ds.name:
                screen.dismiss(None)
            text = (f"{ds.title}{' full set' if ds.name == 'mnist' and not ds.is_sample else ''} "
                    f"loaded: {len(ds.y_train):,} train / {len(ds.y_test):,} test images from {ds.source}")
            host.notify(text, title="Data")
        if self._train_when_ready == ds.name:
            self._train_when_ready = None
            if not host.training:
                host.action_train()
            return
        # Offer the full set -- unless another question is open (the resume offer): a panel
        # nobody asked for must not hide it and take its keys.
        # (not when the form asks for the sample itself: --dataset mnist-sample chose it)
        if (host.datasets.uses_engine_search and ds.is_sample and ds.name == "mnist" and not host.training
                and host.form_dataset() == "mnist"
                and not self.sample_ok and "mnist" not in self._prompted and len(host.screen_stack) == 1):
            report = data_report("mnist", host.datasets.data_dir)
            if report.state == "sample":
                self._prompted.add("mnist")
                if self.keys_seen:
                    # The user is already typing: a panel popping up now would take the keys.
                    host.notify("The full MNIST set was not found: the bundled sample stands in. "
                                "Ctrl+D: download it or choose a directory.", title="Data", timeout=8)
                else:
                    self.open(report)

    def dataset_missing(self, name: str, message: str, searched: tuple[str, ...]) -> None:
        """A load failed: say so in the log, show the panel with where it looked."""
        self.host.preview.clear(f"No {name} data found.")
        self.host.update_status()
        log = self.host.epoch_log
        log.write_event(f"{name}: {message}", "error")
        if searched:
            log.write_event("Looked in: " + "; ".join(searched), "error")
            log.write_event(f"To fix: Ctrl+D (download, or choose a directory), or run `termnist download {name}`, "
                            "or start with --data DIR, or set TERMNIST_DATA.", "error")
        report = report_from_error(name, message, searched)
        data_dir = self.host.datasets.data_dir
        if data_dir is not None and searched and not report.hint:
            report = DataReport(report.name, report.title, report.state, report.headline, report.searched,
                                downloadable=report.downloadable, hint=data_dir_hint(data_dir, name))
        self._missing[name] = report
        if self._train_when_ready == name:
            self._train_when_ready = None
        if self._close_when_ready == name:
            self._close_when_ready = None
        self.refresh_states()
        self.open(report)

    @guarded
    def choice(self, choice: DataChoice | None) -> None:
        if choice is None:
            return
        if choice.kind == "sample":
            self._choose_sample(choice.name)
        elif choice.kind == "dir" and choice.path:
            self._choose_directory(choice.name, choice.path)
        elif choice.kind == "train":
            self.host.action_train()

    def _choose_sample(self, name: str) -> None:
        host = self.host
        if name == "mnist":
            self.sample_ok = True      # don't offer the full set at every start
            host.save_settings()
        if host.training:
            host.notify("A run is in progress: F7 stops it.", severity="warning")
            return
        ds = host.dataset
        if ds is not None and ds.is_sample and ds.name == host.form_dataset():
            host.action_train()          # the sample is what this dataset choice loads
            return
        host.epoch_log.write_event("training on the bundled MNIST sample (10,000 train / 2,000 "
                                   f"test images). {MNIST_CREDIT}.")
        self._train_when_ready = "mnist-sample"
        host.set_form_dataset("mnist-sample")
        host.load_dataset("mnist-sample")

    def _choose_directory(self, name: str, path: str) -> None:
        host = self.host
        self.remembered_data_dir = path
        self._missing.pop(name, None)
        host.epoch_log.write_event(f"data directory: {path} (used from now on, and remembered)")
        host.save_settings()
        if host.training:
            host.datasets.data_dir = path        # the cache is dropped by the load below
            host.load_dataset(None, drop_cached=True)
            host.notify("The new data directory is used from the next run.", title="Data")
        else:
            self._close_when_ready = name
            host.set_form_dataset(name)
            host.datasets.data_dir = path
            host.load_dataset(name, drop_cached=True)
        self.refresh_states()
        host.update_status()

    # ------------------------------------------------------------------ downloads
    def start_download(self, name: str) -> None:
        host = self.host
        downloads = host.downloads
        if downloads.downloading:
            host.notify(f"Already downloading {downloads.name}.", severity="warning")
            return
        from engine.download import target_dir

        to = self.download_target(name)
        downloads.start(name, to)
        screen = self.screen()
        if screen is not None and screen.report.name == name:
            screen.download_started()
        host.epoch_log.write_event(f"downloading {name} into {target_dir(name, to)} "
                                   "(Ctrl+D shows the progress; quitting cancels it)")
        host.update_status()

    def download_target(self, name: str) -> Path | None:
        """Where a download goes: ``<data dir>/<name>/`` when a data directory is in use and
        writable (it is then the only place searched, and finds it there), else the user
        cache (None), where the usual search looks."""
        data_dir = self.host.datasets.data_dir
        if data_dir is None:
            return None
        root = Path(data_dir).expanduser()
        try:
            if root.is_dir() and os.access(root, os.W_OK | os.X_OK):
                return root / name
        except OSError:
            pass
        return None

    def cancel_download(self, name: str | None = None) -> None:
        downloads = self.host.downloads
        if name is None or downloads.name == name:
            downloads.cancel()

    def download_update(self, update: DownloadUpdate) -> None:
        """UI thread: what the download thread reported."""
        match update:
            case DownloadProgress():
                self._download_progress(update)
            case DownloadLog():
                self._download_log(update)
            case DownloadFinished():
                self._download_finished(update)
            case DownloadFailed():
                self._download_failed(update)

    def _download_progress(self, update: DownloadProgress) -> None:
        info = update.info
        downloads = self.host.downloads
        if info.name != downloads.name:
            return
        downloads.info = info
        screen = self.screen()
        if screen is not None and screen.report.name == info.name:
            screen.show_progress(info)
        self.host.update_status()

    def _download_log(self, update: DownloadLog) -> None:
        self.host.downloads.lines.append(update.line)
        severity = "warning" if update.line.startswith("mirror failed") else "information"
        self.host.epoch_log.write_event(f"download: {update.line}", severity)
        screen = self.screen()
        if screen is not None and screen.report.name == update.name:
            screen.add_log(update.line)

    def _download_finished(self, update: DownloadFinished) -> None:
        host = self.host
        name = update.name
        host.downloads.over()
        host.epoch_log.write_event(f"{name}: downloaded and verified in {update.path}")
        screen = self.screen()
        if screen is not None and screen.report.name == name:
            screen.download_ended(f"Downloaded and verified in {update.path}; loading it...", ok=True)
        data_dir = host.datasets.data_dir
        if data_dir is not None:
            from engine.datasets import locate_dataset

            results = locate_dataset(name, data_dir)
            if not (results and results[-1].found):
                host.epoch_log.write_event(
                    f"{data_dir} does not hold {name}: searching the usual places again "
                    "(they include the download)")
                host.datasets.data_dir = None         # the cache is dropped by the load below
                if self.remembered_data_dir is not None:
                    self.remembered_data_dir = None
                    host.save_settings()
        self._missing.pop(name, None)
        self.refresh_states()
        if host.training:
            host.load_dataset(None, drop_cached=True)
            host.notify(f"{name} is downloaded; it is used from the next run.", title="Data")
        elif host.form_dataset() == name:
            self._close_when_ready = name
            host.load_dataset(name, drop_cached=True)
        else:
            host.load_dataset(None, drop_cached=True)
            host.notify(f"{name} is downloaded: pick it in the form's dataset field.", title="Data")
        host.update_status()

    def _download_failed(self, update: DownloadFailed) -> None:
        host = self.host
        if update.name != host.downloads.name:
            return
        host.downloads.over()
        host.epoch_log.write_event(f"{update.name}: {update.message}",
                                   "warning" if update.cancelled else "error")
        screen = self.screen()
        if screen is not None and screen.report.name == update.name:
            screen.download_ended(update.message[:1].upper() + update.message[1:], ok=False)
        elif not update.cancelled:
            host.report_error(f"{update.name}: {update.message}")
        host.update_status()


def _dataset_line(ds: Any) -> str:
    if ds.is_sample:
        return (f"Using the bundled MNIST sample ({len(ds.y_train):,} train / {len(ds.y_test):,} test images), "
                f"not the full set: Ctrl+D downloads it (or `termnist download mnist`). {MNIST_CREDIT}.")
    return f"Dataset {ds.title}: {len(ds.y_train):,} train / {len(ds.y_test):,} test images from {ds.source}"
