"""The Sweep panel's dialog: choose an earlier sweep of the study storage to show (and resume)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from tui.screens.dialogs import DIALOG_CSS


class SweepChooser(ModalScreen[str | None]):
    """The sweeps kept in the storage (engine.sweep.SweepSummary), newest first; dismisses with
    the chosen sweep's name (Enter) or None (Escape)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="SweepChooser") + """
    SweepChooser OptionList { height: auto; max-height: 14; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, sweeps: Sequence[Any], where: str) -> None:
        super().__init__()
        self.sweeps = list(sweeps)
        self.where = where

    def compose(self) -> ComposeResult:
        with Vertical(id="chooser"):
            yield Static("Open an earlier sweep", classes="title", markup=False)
            yield Static(f"kept in {self.where}", classes="hint", markup=False)
            yield OptionList(*(Option(self.label(s), id=s.name) for s in self.sweeps), id="sweep-list")
            yield Label("Enter = show its trials (r then resumes it), Escape = cancel", classes="hint")

    @staticmethod
    def label(s: Any) -> str:
        when = s.started.strftime("%Y-%m-%d %H:%M") if s.started is not None else "no trial yet"
        return f"{s.name}  ({when}, {s.trials} trial(s))"

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
