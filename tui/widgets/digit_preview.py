"""A page of test images drawn as text, each captioned with the network's guess.

The app hands in the test set (`set_images`) and, after each epoch or a model load,
read-only predictions (`set_predictions`). Keys (when focused): [ ] / PageUp PageDown
page, arrows select, m mistakes only, u ASCII <-> half blocks, Enter zoom.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text
from textual.app import RenderResult
from textual.binding import Binding
from textual.message import Message
from textual.widget import Widget

from tui.ascii_art import render_image
from tui.terminal import ascii_only

CELL_W = 14          # characters of image per digit
CELL_H = 7           # rows of image per digit
GAP = 2
MISTAKE = "X"


def caption(pred: int | None, conf: float | None, true: int, names: tuple[str, ...],
            width: int = CELL_W) -> tuple[list[str], bool]:
    """Caption lines under one digit and whether it is a mistake.

    Digit datasets (one-character class names): one line, ``"X 2  61% (7)"``: marker,
    guess, confidence, (true label). Longer names (Fashion-MNIST) take two lines:
    ``"X Sandal 61%"`` then ``"(Sneaker)"``.
    """
    wrong = pred is not None and pred != true
    mark = MISTAKE if wrong else " "
    true_name = names[true] if 0 <= true < len(names) else str(true)
    short = all(len(n) <= 2 for n in names)
    if pred is None:
        guess, pct = "?", "   "
    else:
        guess = names[pred] if 0 <= pred < len(names) else str(pred)
        # capped at 99: a rounded "100%" would claim a certainty the net never has
        pct = f"{min(int(round((conf or 0.0) * 100)), 99):>3d}%" if conf is not None else "   "
    if short:
        line = f"{mark} {guess:<2}{pct} ({true_name})"
        return [line[:width]], wrong
    first = f"{mark} {guess[: max(1, width - 6)]} {pct.strip()}".rstrip()
    return [first[:width], f"({true_name})"[:width]], wrong


class DigitPreview(Widget, can_focus=True):
    """Grid of captioned test digits; pages through the set or only the mistakes."""

    DEFAULT_CSS = """
    DigitPreview { height: 1fr; padding: 0 1; }
    DigitPreview:focus { background-tint: $foreground 4%; }
    """

    BINDINGS = [
        Binding("right_square_bracket,pagedown", "page(1)", "Next", key_display="]"),
        Binding("left_square_bracket,pageup", "page(-1)", "Prev", key_display="["),
        Binding("m", "toggle_mistakes", "Mistakes"),
        Binding("u", "toggle_shading", "Shade"),
        Binding("enter", "zoom", "Zoom"),
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
        Binding("home", "first_page", "First page", show=False),
    ]

    class ZoomRequested(Message):
        """The user asked to see test image ``index`` large."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class ShadingChanged(Message):
        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.images: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.class_names: tuple[str, ...] = tuple(str(i) for i in range(10))
        self.max_value: float = 255
        self.margin = 0
        self.predictions: Any = None       # tui.runner.Predictions
        self.note = "No test images yet."
        self.mode = "ascii"
        self.mistakes_only = False
        self.page = 0
        self.selected = 0                  # position on the current page

    # -- data in ------------------------------------------------------------------------------
    def set_images(self, images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
                   max_value: float) -> None:
        self.images, self.labels = images, labels
        self.class_names = tuple(class_names)
        self.max_value = max_value
        h, w = images.shape[1:3]
        self.margin = 2 if min(h, w) >= 24 else 0
        self.predictions = None
        self.page = self.selected = 0
        self.refresh()

    def set_predictions(self, predictions: Any) -> None:
        self.predictions = predictions
        self._clamp()
        self.refresh()

    def clear(self, note: str) -> None:
        self.images = self.labels = self.predictions = None
        self.note = note
        self.refresh()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.refresh()

    @property
    def shading(self) -> str:
        """The shading drawn: ``mode``, except ASCII where the terminal shows nothing else."""
        return "ascii" if ascii_only(self) else self.mode

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # no half blocks to switch to on an ASCII-only terminal (hides "u Shade" too)
        return not (action == "toggle_shading" and ascii_only(self))

    # -- what is shown ---------------------------------------------------------------------------
    def visible_indices(self) -> np.ndarray:
        """Test-set indices browsable now (all images, or the mistakes among predicted ones)."""
        if self.images is None or self.labels is None:
            return np.zeros(0, dtype=np.int64)
        p = self.predictions
        if self.mistakes_only:
            if p is None:
                return np.zeros(0, dtype=np.int64)
            n = len(p.predicted)
            return np.flatnonzero(p.predicted != self.labels[:n])
        return np.arange(len(self.labels))

    def grid(self) -> tuple[int, int]:
        """(columns, rows) of digits that fit."""
        names_long = any(len(n) > 2 for n in self.class_names)
        cell_h = CELL_H + (2 if names_long else 1)
        width = max(self.size.width, CELL_W)         # content width (padding excluded)
        height = max(self.size.height - 1, cell_h)   # minus the status line
        return max(1, (width + GAP) // (CELL_W + GAP)), max(1, height // cell_h)

    @property
    def per_page(self) -> int:
        cols, rows = self.grid()
        return cols * rows

    def page_indices(self) -> np.ndarray:
        vis = self.visible_indices()
        start = self.page * self.per_page
        return vis[start : start + self.per_page]

    def page_count(self) -> int:
        n = len(self.visible_indices())
        return max(1, -(-n // self.per_page))

    def selected_index(self) -> int | None:
        idx = self.page_indices()
        if len(idx) == 0:
            return None
        return int(idx[min(self.selected, len(idx) - 1)])

    def captions(self) -> list[str]:
        """Caption text of the digits on the current page (tests, e2e)."""
        out = []
        for i in self.page_indices():
            out.append(" / ".join(self._caption(int(i))[0]))
        return out

    def _caption(self, i: int) -> tuple[list[str], bool]:
        p = self.predictions
        true = int(self.labels[i])  # type: ignore[index]
        if p is not None and i < len(p.predicted):
            return caption(int(p.predicted[i]), float(p.confidence[i]), true, self.class_names)
        return caption(None, None, true, self.class_names)

    def _clamp(self) -> None:
        self.page = min(self.page, self.page_count() - 1)
        self.selected = max(0, min(self.selected, self.per_page - 1))

    # -- actions --------------------------------------------------------------------------------------
    def action_page(self, delta: int) -> None:
        self.page = (self.page + delta) % self.page_count()
        self.refresh()

    def action_first_page(self) -> None:
        self.page = 0
        self.selected = 0
        self.refresh()

    def action_toggle_mistakes(self) -> None:
        self.mistakes_only = not self.mistakes_only
        self.page = self.selected = 0
        if self.mistakes_only and self.predictions is None:
            self.notify("No predictions yet: train or load a model first.", severity="warning")
        self.refresh()

    def action_toggle_shading(self) -> None:
        self.mode = "blocks" if self.mode == "ascii" else "ascii"
        self.post_message(self.ShadingChanged(self.mode))
        self.refresh()

    def action_move(self, dx: int, dy: int) -> None:
        cols, _ = self.grid()
        n = len(self.page_indices())
        if n == 0:
            return
        pos = self.selected + dx + dy * cols
        if pos >= n:
            if self.page + 1 < self.page_count():
                self.page += 1
                pos = pos - n if dy == 0 else pos % cols
            else:
                pos = n - 1
        elif pos < 0:
            if self.page > 0:
                self.page -= 1
                pos = self.per_page + pos if dy == 0 else self.per_page - cols + (pos % cols)
            else:
                pos = 0
        self.selected = pos
        self._clamp()
        self.refresh()

    def action_zoom(self) -> None:
        index = self.selected_index()
        if index is not None:
            self.post_message(self.ZoomRequested(index))

    def on_resize(self) -> None:
        self._clamp()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- rendering ----------------------------------------------------------------------------------
    def status_line(self) -> str:
        if self.images is None:
            return self.note
        vis = self.visible_indices()
        p = self.predictions
        what = "mistakes" if self.mistakes_only else "test images"
        if len(vis) == 0:
            return f"No {what} to show" + (" (none predicted yet)" if p is None else "")
        start = self.page * self.per_page
        stop = min(start + self.per_page, len(vis))
        text = f"{what} {start + 1}-{stop} of {len(vis)}, page {self.page + 1}/{self.page_count()}"
        if p is not None:
            acc = f" acc {p.accuracy * 100:.1f}%" if p.accuracy is not None else ""
            text += f" | {p.label}{acc}"
        else:
            text += " | no predictions yet"
        return text

    def render(self) -> RenderResult:
        out = Text(no_wrap=True, overflow="crop")
        out.append(self.status_line() + "\n", style="bold")
        if self.images is None or self.labels is None:
            return out
        cols, _ = self.grid()
        idx = [int(i) for i in self.page_indices()]
        selected = self.selected_index() if self.has_focus else None
        for r in range(0, len(idx), cols):
            row = idx[r : r + cols]
            arts = [render_image(self.images[i], self.max_value, self.shading, CELL_W, CELL_H, self.margin)
                    for i in row]
            caps = [self._caption(i) for i in row]
            for line in range(CELL_H):
                for k, art in enumerate(arts):
                    if k:
                        out.append(" " * GAP)
                    out.append(art[line])
                out.append("\n")
            n_cap = max(len(c[0]) for c in caps)
            for line in range(n_cap):
                for k, (lines, wrong) in enumerate(caps):
                    if k:
                        out.append(" " * GAP)
                    text = (lines[line] if line < len(lines) else "").ljust(CELL_W)
                    style = "bold red" if wrong else "green" if self.predictions is not None else ""
                    if row[k] == selected:
                        style += " reverse"
                    out.append(text, style=style.strip() or None)
                out.append("\n")
        return out
