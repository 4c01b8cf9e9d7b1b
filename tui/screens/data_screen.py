"""The data panel: where the dataset was (not) found, and three ways on.

Shown by the app when a dataset is missing (or the full MNIST is missing and the bundled
sample stands in), and any time with Ctrl+D. It offers (1) train on the bundled sample now,
(2) download the set (progress bar with bytes, rate and ETA; one line per mirror that
fails; cancellable), (3) type a directory that holds the set (checked before it is used).

The panel never touches the engine's downloads or the app's data: it shows what the app
hands it (``set_report``, ``show_progress``, ``add_log``, ``download_ended``) and answers
with messages (download / cancel) or by dismissing with a ``DataChoice`` (sample / directory).
Keyboard: s sample, d download, c cancel the download, o directory, F5 train with the form's
settings, Escape closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar, Static

from tui.data_status import DOWNLOAD_SIZES, IDX_HINT, DataReport, check_directory, credits_for
from tui.terminal import ascii_only
from tui.widgets.ascii import AsciiProgressBar, ascii_scrollbars

MAX_LOG_LINES = 200


@dataclass(frozen=True)
class DataChoice:
    """What the panel was dismissed with: ``kind`` "sample" (train on the bundled sample now),
    "dir" (use ``path`` as the data directory for dataset ``name``) or "train" (F5: train
    with the form's settings, as F5 does elsewhere)."""

    kind: str
    name: str
    path: str | None = None


class DataScreen(ModalScreen[DataChoice | None]):
    """Where dataset ``report.name`` stands, and sample / download / directory."""

    DEFAULT_CSS = """
    DataScreen { align: center middle; }
    DataScreen > VerticalScroll {
        width: 96; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $panel; padding: 0 1;
        border-title-align: left;
    }
    DataScreen #data-headline { text-style: bold; }
    DataScreen #data-searched, DataScreen #data-hint, DataScreen .hint { color: $text-muted; }
    DataScreen #data-buttons { height: auto; margin: 1 0 0 0; }
    DataScreen #data-buttons Button {
        width: 100%; max-width: 64; text-align: left; content-align: left middle;
    }
    DataScreen #dir-row { height: 1; }
    DataScreen #dir-row Label { width: 3; }
    DataScreen #dir-row Input { width: 1fr; }
    DataScreen #dir-error { color: $text-muted; }
    DataScreen #dir-error.-bad { color: $error; }
    DataScreen #dir-error.-empty, DataScreen #data-hint.-empty { display: none; }
    DataScreen #download-box { height: auto; margin-top: 1; }
    DataScreen #download-box.-idle { display: none; }
    DataScreen #download-status { height: auto; }
    DataScreen #download-status.-failed { color: $error; }
    DataScreen ProgressBar { height: 1; }
    DataScreen ProgressBar Bar { width: 40; }
    DataScreen #download-log { color: $warning; height: auto; max-height: 8; }
    DataScreen #download-log.-empty { display: none; }
    DataScreen #data-credit { margin-top: 1; }
    """

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("s", "sample", "Sample"),
        Binding("d", "download", "Download"),
        Binding("c", "cancel_download", "Cancel download"),
        Binding("o", "directory", "Directory"),
        Binding("down", "app.focus_next", "Next", show=False),
        Binding("up", "app.focus_previous", "Previous", show=False),
        # A modal screen hides the app's keys; these two keep working here.
        Binding("f5", "train", "Train", show=False),
        Binding("f1", "app.open_screen('help')", "Help", show=False),
    ]

    class DownloadRequested(Message):
        """Download dataset ``name`` (the app runs it in a worker and reports back)."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    class CancelRequested(Message):
        """Stop the download of ``name`` (its partial file is kept for resuming)."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, report: DataReport, *, downloading: bool = False,
                 progress: object = None, log: list[str] | None = None,
                 sample_label: str = "Train on the bundled sample now") -> None:
        super().__init__()
        self.report = report
        self.downloading = downloading
        self.progress_info = progress             # a tui.data_status.DownloadProgressInfo
        self.log_lines: list[str] = list(log or [])[-MAX_LOG_LINES:]
        self.status_text = progress.text() if progress is not None else (  # type: ignore[attr-defined]
            f"Downloading {report.title}: connecting..." if downloading else "")  # above the bar
        self.sample_label = sample_label
        self.dir_error = ""
        self._ready = False                       # composed and mounted: widgets can be updated

    # -- composition -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="data-box") as box:
            box.border_title = "Data (Ctrl+D)"
            yield Static("", id="data-headline", markup=False)
            yield Static("", id="data-searched", markup=False)
            yield Static("", id="data-hint", markup=False)
            with Vertical(id="data-buttons"):
                yield Button(f"s  {self.sample_label}", id="sample", compact=True)
                yield Button("d  Download", id="download", variant="primary", compact=True)
                yield Button("o  Use a directory that holds it:", id="dir", compact=True)
            with Horizontal(id="dir-row"):
                yield Label("   ")
                yield Input(placeholder="e.g. ~/data/mnist; Enter uses it", id="dir-input",
                            select_on_focus=False)
            yield Static("", id="dir-error", classes="-empty", markup=False)
            with Vertical(id="download-box", classes="-idle"):
                yield Static("", id="download-status", markup=False)
                bar_class = AsciiProgressBar if ascii_only(self) else ProgressBar
                yield bar_class(total=None, show_eta=False, id="download-bar")
                yield Static("", id="download-log", classes="-empty", markup=False)
            yield Static(credits_for(self.report.name), id="data-credit", markup=False)
            yield Static("Tab / arrows move, Enter chooses; s d o c as marked; "
                         "F5 trains with the settings; Escape closes", classes="hint", markup=False)

    def on_mount(self) -> None:
        if ascii_only(self):
            ascii_scrollbars(self.query_one("#data-box", VerticalScroll))
        self._ready = True
        self._refresh_all()
        first = "#download" if self._can_download() else "#sample"
        self.query_one(first, Button).focus()

    # -- what the app hands in ---------------------------------------------------------------
    def set_report(self, report: DataReport) -> None:
        self.report = report
        if self._ready:
            self._refresh_all()

    def set_download_state(self, downloading: bool, progress: object = None,
                           log: list[str] | None = None) -> None:
        """The panel now shows another dataset: show that one's download, if any."""
        self.downloading = downloading
        self.progress_info = progress
        self.log_lines = list(log or [])[-MAX_LOG_LINES:]
        self.status_text = progress.text() if progress is not None else ""  # type: ignore[attr-defined]
        self._refresh_download()

    def download_started(self) -> None:
        self.downloading = True
        self.progress_info = None
        self.status_text = f"Downloading {self.report.title}: connecting..."
        self._refresh_download()

    def show_progress(self, info: object) -> None:
        self.progress_info = info
        self.status_text = info.text()  # type: ignore[attr-defined]
        self._refresh_download()

    def add_log(self, line: str) -> None:
        self.log_lines.append(line)
        del self.log_lines[:-MAX_LOG_LINES]
        self._refresh_download()

    def download_ended(self, message: str, ok: bool) -> None:
        self.downloading = False
        self.status_text = message
        if self._ready:
            self.query_one("#download-status", Static).set_class(not ok, "-failed")
        self._refresh_download()

    # -- rendering --------------------------------------------------------------------------
    def _can_download(self) -> bool:
        return self.report.downloadable and self.report.state != "found"

    def _refresh_all(self) -> None:
        r = self.report
        self.query_one("#data-box").border_title = f"Data: {r.title} (Ctrl+D)"
        self.query_one("#data-headline", Static).update(r.headline)
        self.query_one("#data-credit", Static).update(credits_for(r.name))
        if r.searched:
            lines = ["Where termnist looked, in order:"]
            lines += [f"  {i}. {place}" for i, place in enumerate(r.searched, 1)]
        else:
            lines = []
        self.query_one("#data-searched", Static).update("\n".join(lines))
        hint = self.query_one("#data-hint", Static)
        hint.update(r.hint)
        hint.set_class(not r.hint, "-empty")
        can_dir = r.name != "digits"
        self.query_one("#dir", Button).display = can_dir
        self.query_one("#dir-row").display = can_dir
        self._refresh_download()

    def _refresh_download(self) -> None:
        if not self._ready:
            return
        button = self.query_one("#download", Button)
        if self.downloading:
            button.label = "c  Cancel the download (the partial file is kept)"
            button.variant = "warning"
            button.display = True
        else:
            size = DOWNLOAD_SIZES.get(self.report.name, "")
            button.label = f"d  Download {self.report.title}" + (f" ({size})" if size else "")
            button.variant = "primary"
            button.display = self._can_download()
        box = self.query_one("#download-box")
        box.set_class(not (self.downloading or self.status_text or self.log_lines), "-idle")
        self.query_one("#download-status", Static).update(self.status_text)
        bar = self.query_one("#download-bar", ProgressBar)
        info = self.progress_info
        bar.display = self.downloading or info is not None
        if info is not None and getattr(info, "total", None):
            bar.update(total=info.total, progress=info.done)  # type: ignore[attr-defined]
        elif self.downloading:
            bar.update(total=None)
        log = self.query_one("#download-log", Static)
        log.update("\n".join(self.log_lines[-8:]))
        log.set_class(not self.log_lines, "-empty")

    def _show_dir_error(self, text: str, bad: bool = True) -> None:
        self.dir_error = text if bad else ""
        err = self.query_one("#dir-error", Static)
        err.update(text)
        err.set_class(not text, "-empty")
        err.set_class(bad, "-bad")

    # -- actions ----------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "sample":
            self.action_sample()
        elif event.button.id == "download":
            if self.downloading:
                self.action_cancel_download()
            else:
                self.action_download()
        elif event.button.id == "dir":
            self.action_directory()

    def action_train(self) -> None:
        self.dismiss(DataChoice("train", self.report.name))

    def action_sample(self) -> None:
        self.dismiss(DataChoice("sample", self.report.name))

    def action_download(self) -> None:
        if self.downloading:
            self.notify("Already downloading: c cancels.", severity="warning")
            return
        if not self._can_download():
            why = ("it is already here" if self.report.state == "found"
                   else f"termnist does not download {self.report.title}")
            self.notify(f"Nothing to download: {why}.", severity="warning")
            return
        self.post_message(self.DownloadRequested(self.report.name))

    def action_cancel_download(self) -> None:
        if self.downloading:
            self.post_message(self.CancelRequested(self.report.name))

    def action_directory(self) -> None:
        if self.report.name == "digits":
            return
        self.query_one("#dir-input", Input).focus()
        if not self.dir_error:
            self._show_dir_error(f"Type {IDX_HINT}; Enter uses it.", bad=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path, reason = check_directory(self.report.name, event.value)
        if path is None:
            self._show_dir_error(reason)
            return
        self._show_dir_error("")
        self.dismiss(DataChoice("dir", self.report.name, str(path)))

    def action_close(self) -> None:
        self.dismiss(None)

