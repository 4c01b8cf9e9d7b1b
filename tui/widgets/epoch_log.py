"""Epoch log: a progress line for the epoch in progress, then one row per epoch plus events."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, RichLog, Static

from tui.terminal import ascii_only
from tui.widgets.ascii import AsciiProgressBar, ascii_scrollbars

HEADER = f"{'epoch':>5} {'trn loss':>8} {'trn acc':>7} {'val loss':>8} {'val acc':>7} {'sec':>6} {'samples/s':>9}"


def format_epoch_row(epoch: int, epochs: int, train_loss: float, train_acc: float,
                     val_loss: float | None, val_acc: float | None, seconds: float,
                     samples_per_s: float) -> str:
    """One fixed-width log row; lines up under HEADER."""
    vl = f"{val_loss:>8.4f}" if val_loss is not None else f"{'-':>8}"
    va = f"{val_acc * 100:>6.2f}%" if val_acc is not None else f"{'-':>7}"
    ok = not math.isnan(samples_per_s) and samples_per_s != float("inf")
    rate = f"{samples_per_s:>9,.0f}" if ok else f"{'-':>9}"
    width = len(str(epochs))
    ep = f"{epoch:>{width}}/{epochs}"
    return f"{ep:>5} {train_loss:>8.4f} {train_acc * 100:>6.2f}% {vl} {va} {seconds:>6.1f} {rate}"


def format_duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds) or seconds == float("inf"):
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02}:{s:02}" if h else f"{m}:{s:02}"


class EpochLog(Vertical):
    """Progress of the current epoch (bar + ETA) above a bounded log of rows and events."""

    DEFAULT_CSS = """
    EpochLog { height: 1fr; }
    EpochLog #progress-row { height: 1; }
    EpochLog #progress-text { width: 1fr; height: 1; }
    EpochLog ProgressBar { width: auto; height: 1; }
    EpochLog ProgressBar Bar { width: 16; }
    EpochLog #log-header { height: 1; text-style: bold; }
    EpochLog RichLog { height: 1fr; background: $surface; }
    """

    MAX_LINES = 1000

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.lines: list[str] = []   # plain text of what was written (tests, export)
        self._texts: list[Text] = []  # the same, styled: re-wrapped when the width changes
        self._width = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="progress-row"):
            yield Label("idle", id="progress-text")
            bar_class = AsciiProgressBar if ascii_only(self) else ProgressBar
            yield bar_class(total=1, show_eta=False, id="epoch-progress")
        yield Static(HEADER, id="log-header", markup=False)
        yield RichLog(max_lines=self.MAX_LINES, wrap=True, min_width=20, markup=False,
                      auto_scroll=True, id="log")

    def on_mount(self) -> None:
        if ascii_only(self):
            ascii_scrollbars(self.log_widget)

    @property
    def log_widget(self) -> RichLog:
        return self.query_one("#log", RichLog)

    # -- data in ----------------------------------------------------------------------------
    def write_row(self, text: str) -> None:
        self._write(Text(text))

    def write_event(self, text: str, severity: str = "information") -> None:
        marker = {"warning": "! ", "error": "!! "}.get(severity, "* ")
        style = {"warning": "bold yellow", "error": "bold red"}.get(severity, "italic")
        self._write(Text(marker + text, style=style))

    def _write(self, text: Text) -> None:
        self.log_widget.write(text)
        self.lines.append(text.plain)
        self._texts.append(text)
        del self.lines[: -self.MAX_LINES]
        del self._texts[: -self.MAX_LINES]

    def on_resize(self) -> None:
        self.call_after_refresh(self._rewrap)

    def _rewrap(self) -> None:
        """RichLog keeps each line as wrapped at the width it was written at: after a width
        change (a tiny terminal back to 80x24), write them again at the new width."""
        log = self.log_widget
        width = log.scrollable_content_region.width
        if width != self._width and width > 0:
            self._width = width
            log.clear()
            for text in self._texts:
                log.write(text)
        log.scroll_end(animate=False)

    def set_progress(self, text: str, step: int | None = None, total: int | None = None) -> None:
        self.query_one("#progress-text", Label).update(text)
        bar = self.query_one("#epoch-progress", ProgressBar)
        if total is not None:
            bar.update(total=max(total, 1), progress=step or 0)

