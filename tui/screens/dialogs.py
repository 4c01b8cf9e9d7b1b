"""Modal dialogs: yes/no confirmation and a path prompt."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 64; max-width: 100%; height: auto; max-height: 100%;
    border: thick $accent; background: $panel; padding: 0 1;
}}
{name} .title {{ text-style: bold; width: 100%; }}
{name} Horizontal {{ height: auto; align-horizontal: right; }}
{name} Button {{ margin-left: 1; min-width: 8; }}
{name} .hint {{ color: $text-muted; }}
{name} .error {{ color: $error; }}
"""


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with True (y / Enter on Yes) or False (n / Escape)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmScreen")
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
        Binding("left,right", "app.focus_next", show=False),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.yes, self.no = yes, no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, classes="title", markup=False)
            yield Label("y = yes, n / Escape = no", classes="hint")
            with Horizontal():
                yield Button(self.yes, variant="error", id="yes", compact=True)
                yield Button(self.no, variant="primary", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PathScreen(ModalScreen[str | None]):
    """Ask for a file path; dismisses with the text (Enter) or None (Escape)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="PathScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, default: str, hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.default = default
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, classes="title", markup=False)
            yield Input(self.default, id="path")
            yield Static("", id="path-error", classes="error", markup=False)
            yield Label(self.hint or "Enter = OK, Escape = cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        if not value:
            self.query_one("#path-error", Static).update("type a file name")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
