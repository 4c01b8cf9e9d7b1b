"""The smallest Textual app with a header line, a panel and a footer: the reference for
termnist's time to first screen (what Textual itself costs on this machine)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static


class Hello(App[None]):
    ENABLE_COMMAND_PALETTE = False       # as termnist
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True), Binding("f1", "nothing", "Help")]

    def action_nothing(self) -> None:
        pass

    def compose(self) -> ComposeResult:
        yield Static("hello panel bar", id="bar")
        yield Static("hello body")
        yield Footer(compact=True)


if __name__ == "__main__":
    Hello().run()
