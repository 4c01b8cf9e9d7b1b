"""The Runs panel's dialogs: two runs' differing settings side by side, and a run's note."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui.screens.dialogs import DIALOG_CSS


class DiffScreen(ModalScreen[None]):
    """The settings that differ between two runs, one row per field (Escape / Enter / d close)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="DiffScreen") + """
    DiffScreen > Vertical { width: 72; }
    """
    BINDINGS = [Binding("escape,enter,d,q", "close", "Close")]

    def __init__(self, heads: tuple[str, str], rows: Sequence[tuple[str, str, str]]) -> None:
        super().__init__()
        self.heads = heads
        self.rows = list(rows)

    def compose(self) -> ComposeResult:
        with Vertical(id="diff"):
            yield Static("Settings that differ", classes="title", markup=False)
            if self.rows:
                table = Table(box=None, pad_edge=False, show_edge=False, expand=True)
                table.add_column("setting", style="bold", no_wrap=True)
                table.add_column(self.heads[0], overflow="fold")
                table.add_column(self.heads[1], overflow="fold")
                for field, a, b in self.rows:
                    table.add_row(field, a, b)
                yield Static(table, id="diff-table")
            else:
                yield Static(f"{self.heads[0]} and {self.heads[1]}: no setting differs", id="diff-table",
                             markup=False)
            yield Label("Escape = close", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)


class NoteScreen(ModalScreen[str | None]):
    """Edit a run's note; dismisses with the text (Enter; empty clears it) or None (Escape)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="NoteScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_id: str, note: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Note for run {self.run_id}", classes="title", markup=False)
            yield Input(self.note, id="note", placeholder="what this run tried")
            yield Label("Enter = save (empty clears it), Escape = cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#note", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
