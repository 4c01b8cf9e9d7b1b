"""One test digit, large, with the network's ten class probabilities as a bar chart."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.ascii_art import probability_bars, render_image
from tui.terminal import ascii_only


class DigitScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    DigitScreen { align: center middle; }
    DigitScreen > Vertical {
        width: auto; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $panel; padding: 0 1;
    }
    DigitScreen Horizontal { height: auto; width: auto; }
    DigitScreen #digit-art { width: 30; height: auto; }
    DigitScreen #digit-bars { width: auto; height: auto; }
    """
    BINDINGS = [Binding("escape,enter,q", "dismiss(None)", "Close"),
                Binding("u", "toggle_shading", "Shading")]

    def __init__(self, index: int, image: np.ndarray, max_value: float, true_label: int,
                 class_names: tuple[str, ...], probabilities: np.ndarray | None, mode: str = "ascii") -> None:
        super().__init__()
        self.index = index
        self.image = image
        self.max_value = max_value
        self.true_label = true_label
        self.class_names = class_names
        self.probabilities = probabilities
        self.mode = mode

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self._title(), markup=False)
            with Horizontal():
                yield Static(self._art(), id="digit-art", markup=False)
                yield Static(self._bars(), id="digit-bars")
            yield Static("Escape closes." if ascii_only(self) else "Escape closes; u switches shading.",
                         markup=False)

    def _title(self) -> str:
        true = self.class_names[self.true_label]
        number = self.index + 1          # counted from 1, as the preview's pages count them
        if self.probabilities is None:
            return f"Test image #{number}: true label {true} (no predictions yet)"
        pred = int(np.argmax(self.probabilities))
        verdict = "right" if pred == self.true_label else "X wrong"
        return (f"Test image #{number}: guess {self.class_names[pred]} "
                f"({self.probabilities[pred] * 100:.1f}%), true {true}: {verdict}")

    def _art(self) -> str:
        mode = "ascii" if ascii_only(self) else self.mode
        return "\n".join(render_image(self.image, self.max_value, mode, width=28, height=14))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "toggle_shading" and ascii_only(self))   # ASCII-only terminal

    def _bars(self) -> Text:
        if self.probabilities is None:
            return Text("train or load a model to see its probabilities")
        lines = probability_bars(self.probabilities, self.class_names, width=20)
        pred = int(np.argmax(self.probabilities))
        out = Text()
        for k, bar in enumerate(lines):
            style = "bold" if k == pred else ""
            line = bar
            if k == self.true_label:
                line += " <- true"
                style += " green" if k == pred else " red"
            elif k == pred:
                line += " <- guess X"
                style += " red"
            out.append(line + "\n", style=style.strip() or None)
        return out

    def action_toggle_shading(self) -> None:
        self.mode = "blocks" if self.mode == "ascii" else "ascii"
        self.query_one("#digit-art", Static).update(self._art())
