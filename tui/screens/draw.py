"""Draw a digit: a canvas for the mouse (drag) and for the keyboard alone (over SSH many
terminals pass no mouse), the ten class probabilities as you draw, and what the network saw.

The canvas is finer than 28x28: each character cell holds two pixels (half-blocks), so a
40x20-cell canvas is 40x40 pixels. The drawing is preprocessed as MNIST was made
(engine.insight.drawing: fit in 20x20 keeping the aspect ratio, area-averaged, centred by its
centre of mass in 28x28) and classified with a frozen copy of the current model, on the UI
thread (about half a millisecond: no worker needed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Static

from tui.ascii_art import probability_bars, render_image

#: A brush of MNIST-like width: MNIST strokes are about 2.5 px wide on the 20 px digit; on a
#: 40 px canvas a digit drawn about 32 px tall wants a stroke of about 4 px.
BRUSH_RADIUS = 1.8
ASCII_SHADES = " .:-=+*#%@"


class Canvas(Widget, can_focus=True):
    """A grid of pixels (two per cell, stacked) painted by mouse drags and by the keyboard:
    arrows move the cursor, space lifts or lowers the pen (a lowered pen paints as it moves),
    ``x`` erases, ``c`` clears."""

    DEFAULT_CSS = "Canvas { width: auto; height: auto; }"
    BINDINGS = [
        Binding("up", "move(0, -1)", "Up", show=False), Binding("down", "move(0, 1)", "Down", show=False),
        Binding("left", "move(-1, 0)", "Left", show=False), Binding("right", "move(1, 0)", "Right", show=False),
        Binding("space", "pen", "Pen up/down"), Binding("x", "eraser", "Eraser"), Binding("c", "clear", "Clear"),
    ]

    class Changed(Message):
        """The drawing changed."""

    def __init__(self, cols: int = 40, rows: int = 20, ascii_only: bool = False, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.pixels = np.zeros((rows * 2, cols), np.float32)
        self.cursor = (cols // 2, rows)         # (x, y) in pixels
        self.pen_down = False
        self.erasing = False
        self.ascii_only = ascii_only
        self._last: tuple[int, int] | None = None

    def get_content_width(self, container: Any, viewport: Any) -> int:
        return int(self.pixels.shape[1])

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return int(self.pixels.shape[0] // 2)

    # -- painting ----------------------------------------------------------------------------
    def dab(self, x: float, y: float, erase: bool = False) -> None:
        """Paint (or erase) a soft round dab centred on pixel (x, y)."""
        h, w = self.pixels.shape
        r = BRUSH_RADIUS
        y0, y1 = max(0, int(y - r - 1)), min(h, int(y + r + 2))
        x0, x1 = max(0, int(x - r - 1)), min(w, int(x + r + 2))
        if y0 >= y1 or x0 >= x1:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d = np.sqrt((yy - y) ** 2 + (xx - x) ** 2)
        ink = np.clip(r + 0.5 - d, 0.0, 1.0).astype(np.float32)   # 1 inside, a soft 1-px edge
        patch = self.pixels[y0:y1, x0:x1]
        self.pixels[y0:y1, x0:x1] = np.minimum(patch, 1.0 - ink) if erase else np.maximum(patch, ink)

    def stroke(self, a: tuple[int, int], b: tuple[int, int], erase: bool = False) -> None:
        """A line of dabs from pixel ``a`` to ``b`` (no gaps however fast the mouse moved)."""
        n = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)
        for t in np.linspace(0.0, 1.0, n + 1):
            self.dab(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, erase)
        self.refresh()
        self.post_message(self.Changed())

    def clear(self) -> None:
        self.pixels[:] = 0.0
        self.refresh()
        self.post_message(self.Changed())

    # -- keyboard ----------------------------------------------------------------------------
    def action_move(self, dx: int, dy: int) -> None:
        h, w = self.pixels.shape
        old = self.cursor
        # a cell is two pixels tall: move a cell vertically, a pixel column horizontally
        self.cursor = (min(max(old[0] + dx, 0), w - 1), min(max(old[1] + 2 * dy, 0), h - 1))
        if self.pen_down:
            self.stroke(old, self.cursor, self.erasing)
        else:
            self.refresh()

    def action_pen(self) -> None:
        self.pen_down = not self.pen_down
        if self.pen_down:
            self.stroke(self.cursor, self.cursor, self.erasing)
        self.refresh()

    def action_eraser(self) -> None:
        self.erasing = not self.erasing
        self.refresh()

    def action_clear(self) -> None:
        self.clear()

    # -- mouse -------------------------------------------------------------------------------
    def _pixel(self, event: events.MouseEvent) -> tuple[int, int]:
        h, w = self.pixels.shape
        return min(max(event.x, 0), w - 1), min(max(2 * event.y + 1, 0), h - 1)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.capture_mouse()
        self._last = self._pixel(event)
        self.cursor = self._last
        self.stroke(self._last, self._last, erase=event.button == 3 or self.erasing)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._last is not None and event.button:
            here = self._pixel(event)
            self.stroke(self._last, here, erase=event.button == 3 or self.erasing)
            self._last = self.cursor = here

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self.release_mouse()
        self._last = None

    # -- drawing -----------------------------------------------------------------------------
    def render(self) -> Text:
        h, w = self.pixels.shape
        cx, cy = self.cursor
        text = Text()
        for row in range(h // 2):
            for col in range(w):
                top, bottom = float(self.pixels[2 * row, col]), float(self.pixels[2 * row + 1, col])
                here = col == cx and row == cy // 2
                if self.ascii_only:
                    ch = ASCII_SHADES[int(round(max(top, bottom) * (len(ASCII_SHADES) - 1)))]
                    if here:
                        ch = "X" if self.erasing else ("o" if self.pen_down else "+")
                    text.append(ch)
                    continue
                fg, bg = _grey(top), _grey(bottom)
                if here:
                    bg = "rgb(200,60,60)" if self.erasing else ("rgb(60,160,60)" if self.pen_down else "rgb(90,90,200)")
                text.append("▀", Style(color=fg, bgcolor=bg))
            if row < h // 2 - 1:
                text.append("\n")
        return text


def _grey(v: float) -> str:
    g = int(round(30 + 225 * min(max(v, 0.0), 1.0)))
    return f"rgb({g},{g},{g})"


class DrawScreen(ModalScreen[None]):
    """The canvas, what the network saw (28x28) and its ten probabilities, live."""

    DEFAULT_CSS = """
    DrawScreen { align: center middle; }
    DrawScreen > Horizontal { width: auto; height: auto; border: round $accent; background: $surface; }
    DrawScreen #draw-side { width: 36; height: auto; padding: 0 1; }
    DrawScreen #draw-help { height: auto; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, model: Any, class_names: tuple[str, ...], ascii_only: bool = False) -> None:
        super().__init__()
        self.model = model                  # an engine MLP, frozen: a copy of the current weights
        self.class_names = class_names
        self.ascii_only = ascii_only
        self.prediction: Any = None         # engine.insight.drawing.DrawingPrediction

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Canvas(ascii_only=self.ascii_only, id="canvas")
            with Vertical(id="draw-side"):
                yield Static("", id="draw-seen", markup=False)
                yield Static("", id="draw-probs", markup=False)
                yield Static("arrows move, space pen up/down,\nx eraser, c clear, mouse drags", id="draw-help",
                             markup=False)

    def on_mount(self) -> None:
        self.query_one(Canvas).focus()
        self.predict()

    def on_canvas_changed(self, message: Canvas.Changed) -> None:
        self.predict()

    def predict(self) -> None:
        from engine.insight.drawing import predict_drawing

        canvas = self.query_one(Canvas)
        seen, probs = self.query_one("#draw-seen", Static), self.query_one("#draw-probs", Static)
        try:
            self.prediction = p = predict_drawing(self.model, canvas.pixels)
        except ValueError as exc:             # a model for another input size
            seen.update(f"Cannot classify a drawing: {exc}")
            return
        if p.image is None or p.probs is None:
            seen.update("The network sees nothing yet:\ndraw a digit.")
            probs.update("")
            return
        mode = "ascii" if self.ascii_only else "blocks"
        art = "\n".join(render_image(p.image, 1.0, mode, width=14, height=7))
        seen.update(f"The network sees (28x28):\n{art}")
        names = tuple(self.class_names[: len(p.probs)])
        best = int(np.argmax(p.probs))
        bars = probability_bars(p.probs, names, width=6)
        half = (len(bars) + 1) // 2            # two columns: ten classes in five lines
        rows = [f"{a}  {b}" for a, b in zip(bars[:half], [*bars[half:], ""])]
        probs.update(f"It is a {names[best]} ({p.probs[best] * 100:.0f}%)\n" + "\n".join(rows))
