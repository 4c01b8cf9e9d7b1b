"""The worst mistakes view: the test images the model gets wrong with the highest confidence,
each drawn beside its top-3 probabilities. ``t`` / ``p`` cycle a filter on the true / the
predicted class (``a`` clears both), ``[`` ``]`` page, arrows select, Enter zooms (the Digits
preview's zoom screen), ``u`` switches ASCII / half blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.text import Text
from textual.app import RenderResult
from textual.binding import Binding
from textual.widget import Widget

from tui.ascii_art import render_image
from tui.insight import ModelInput, ViewSpec
from tui.insight._shared import class_names, mismatch, short, test_probs
from tui.terminal import ascii_only

LIMIT = 500              # mistakes kept per filter (the worst first)
IMG_W, IMG_H = 14, 7     # as the Digits preview draws a digit
GAP = 2
FIRST_PAGE = 24          # mistakes drawn by compute() (a page at 120x40 holds 16)


@dataclass(frozen=True)
class MistakesResult:
    probs: np.ndarray             # (n_test, C)
    y: np.ndarray                 # (n_test,)
    x: np.ndarray                 # test images
    max_value: float
    names: tuple[str, ...]
    label: str
    arts: dict[tuple[int, str], list[str]] = field(default_factory=dict)   # the first page, drawn
    worst: tuple[Any, ...] | None = None   # worst_mistakes(probs, y, LIMIT), no filter (the worker's)

    @property
    def n_wrong(self) -> int:
        return int(np.count_nonzero(self.probs.argmax(axis=1) != self.y))


class MistakesPanel(Widget, can_focus=True):
    """A page of the worst mistakes, each an image and its top-3 probabilities."""

    DEFAULT_CSS = """
    MistakesPanel { height: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """
    BINDINGS = [
        Binding("t", "cycle_filter('true')", "True class"),
        Binding("p", "cycle_filter('pred')", "Predicted"),
        Binding("a", "clear_filters", "All"),
        Binding("right_square_bracket,pagedown", "page(1)", "Next", key_display="]"),
        Binding("left_square_bracket,pageup", "page(-1)", "Prev", key_display="[", show=False),
        Binding("enter", "zoom", "Zoom"),
        Binding("u", "toggle_shading", "Shade", show=False),
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.result: MistakesResult | None = None
        self.true_class: int | None = None
        self.pred_class: int | None = None
        self.mistakes: list[Any] = []        # engine.insight.mistakes.Mistake, worst first
        self.page = 0
        self.selected = 0                    # position on the page
        self.mode = "ascii"
        self._arts: dict[tuple[int, str], list[str]] = {}   # (test index, shading) -> drawn lines

    # -- the insight contract ------------------------------------------------------------------
    def unavailable(self, inp: ModelInput) -> str | None:
        return mismatch(inp)

    def compute(self, inp: ModelInput) -> MistakesResult:
        from engine.insight.mistakes import worst_mistakes

        probs = test_probs(inp)
        ds = inp.dataset
        y = np.asarray(ds.y_test).astype(np.int64)
        # the first page's images are drawn here, in the worker, in both shadings: the view
        # opens without drawing a digit on the UI thread
        margin = 2 if min(ds.x_test.shape[1:3]) >= 24 else 0
        worst = tuple(worst_mistakes(probs, y, LIMIT))     # the unfiltered list: not sorted on the UI thread
        arts = {(m.index, mode): render_image(ds.x_test[m.index], ds.max_value, mode, IMG_W, IMG_H, margin)
                for m in worst[:FIRST_PAGE] for mode in ("ascii", "blocks")}
        return MistakesResult(probs, y, ds.x_test, float(ds.max_value), class_names(inp), inp.label, arts, worst)

    def show(self, result: MistakesResult) -> None:
        if self.result is None or result.x is not self.result.x:
            self._arts.clear()
        self._arts.update(result.arts)
        self.result = result
        n = len(result.names)
        if self.true_class is not None and self.true_class >= n:
            self.true_class = None
        if self.pred_class is not None and self.pred_class >= n:
            self.pred_class = None
        try:
            mode = self.app.preview.mode  # type: ignore[attr-defined] # the Digits preview's shading, if the app has one
        except Exception:  # noqa: BLE001 - another app (tests, benchmarks)
            mode = self.mode
        self.mode = mode if mode in ("ascii", "blocks") else "ascii"
        self._select()

    def _select(self) -> None:
        from engine.insight.mistakes import worst_mistakes

        r = self.result
        if r is None:
            self.mistakes = []
        elif r.worst is not None and self.true_class is None and self.pred_class is None:
            self.mistakes = list(r.worst)
        else:
            self.mistakes = worst_mistakes(r.probs, r.y, LIMIT, self.true_class, self.pred_class)
        self.page = min(self.page, self.page_count() - 1)
        self._clamp()
        self.refresh()

    # -- layout ----------------------------------------------------------------------------------
    def text_width(self) -> int:
        names = self.result.names if self.result is not None else ("0",)
        return max(9, min(max(len(n) for n in names), 8) + 7)

    def cell_width(self) -> int:
        return IMG_W + 1 + self.text_width()

    def grid(self) -> tuple[int, int]:
        width = max(self.size.width, self.cell_width())
        height = max(self.size.height - 1, IMG_H)
        return max(1, (width + GAP) // (self.cell_width() + GAP)), max(1, (height + 1) // (IMG_H + 1))

    @property
    def per_page(self) -> int:
        cols, rows = self.grid()
        return cols * rows

    def page_count(self) -> int:
        return max(1, -(-len(self.mistakes) // self.per_page))

    def page_items(self) -> list[Any]:
        start = self.page * self.per_page
        return self.mistakes[start : start + self.per_page]

    def selected_mistake(self) -> Any:
        items = self.page_items()
        return items[min(self.selected, len(items) - 1)] if items else None

    def _clamp(self) -> None:
        self.selected = max(0, min(self.selected, len(self.page_items()) - 1))

    # -- actions -----------------------------------------------------------------------------------
    def action_cycle_filter(self, which: str) -> None:
        if self.result is None:
            return
        n = len(self.result.names)
        now = self.true_class if which == "true" else self.pred_class
        nxt = 0 if now is None else (now + 1 if now + 1 < n else None)
        if which == "true":
            self.true_class = nxt
        else:
            self.pred_class = nxt
        self.page = self.selected = 0
        self._select()

    def set_filters(self, true_class: int | None = None, pred_class: int | None = None) -> None:
        self.true_class, self.pred_class = true_class, pred_class
        self.page = self.selected = 0
        self._select()

    def action_clear_filters(self) -> None:
        self.set_filters(None, None)

    def action_page(self, delta: int) -> None:
        self.page = (self.page + delta) % self.page_count()
        self._clamp()
        self.refresh()

    def action_move(self, dx: int, dy: int) -> None:
        items = self.page_items()
        if not items:
            return
        cols, _ = self.grid()
        pos = self.selected + dx + dy * cols
        if pos >= len(items) and self.page + 1 < self.page_count():
            self.page, pos = self.page + 1, 0
        elif pos < 0 and self.page > 0:
            self.page, pos = self.page - 1, self.per_page - 1
        self.selected = pos
        self._clamp()
        self.refresh()

    def action_toggle_shading(self) -> None:
        self.mode = "blocks" if self.mode == "ascii" else "ascii"
        self.refresh()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "toggle_shading" and ascii_only(self))

    def action_zoom(self) -> None:
        from tui.screens.digit_detail import DigitScreen

        m, r = self.selected_mistake(), self.result
        if m is None or r is None:
            return
        self.app.push_screen(DigitScreen(m.index, r.x[m.index], r.max_value, m.true, r.names,
                                         r.probs[m.index], self.shading))

    @property
    def shading(self) -> str:
        return "ascii" if ascii_only(self) else self.mode

    def on_resize(self) -> None:
        self._clamp()

    def on_focus(self) -> None:
        self.refresh()

    # -- drawing -----------------------------------------------------------------------------------
    def filter_text(self) -> str:
        names = self.result.names if self.result is not None else ()
        t = "all" if self.true_class is None else names[self.true_class]
        p = "all" if self.pred_class is None else names[self.pred_class]
        return f"true {t}, predicted {p}"

    def status_line(self) -> str:
        r = self.result
        if r is None:
            return ""
        head = f"{r.n_wrong:,} wrong of {len(r.y):,}; {self.filter_text()}"
        if not self.mistakes:
            return head + ": no mistakes"
        start = self.page * self.per_page
        stop = min(start + self.per_page, len(self.mistakes))
        more = "+" if len(self.mistakes) >= LIMIT else ""
        return f"{head}: {start + 1}-{stop} of {len(self.mistakes)}{more}, page {self.page + 1}/{self.page_count()}"

    def caption(self, m: Any) -> list[tuple[str, str | None]]:
        """The lines beside one mistake, with their styles: its number, the truth, the top
        three guesses (the wrong guess first, in red; the true class, if among them, green)."""
        assert self.result is not None
        names = self.result.names
        w = self.text_width()
        name_w = w - 7
        lines: list[tuple[str, str | None]] = [(f"#{m.index + 1}"[:w], "bold"),
                                               (f"true {short(names[m.true], w - 5)}"[:w], "green")]
        for c, p in m.top3:
            pct = min(p * 100, 99.9)      # a rounded "100%" would claim a certainty the net never has
            style = "bold red" if c == m.pred else "green" if c == m.true else None
            lines.append((f"{short(names[c], name_w):<{name_w}}{pct:5.1f}%"[:w], style))
        return lines

    def art(self, index: int, margin: int) -> list[str]:
        """Test image ``index`` drawn (cached: a page is redrawn at every selection move)."""
        assert self.result is not None
        key = (index, self.shading)
        lines = self._arts.get(key)
        if lines is None:
            if len(self._arts) > 4096:
                self._arts.clear()
            r = self.result
            lines = self._arts[key] = render_image(r.x[index], r.max_value, self.shading, IMG_W, IMG_H, margin)
        return lines

    def render(self) -> RenderResult:
        out = Text(no_wrap=True, overflow="crop")
        r = self.result
        if r is None:
            return out
        out.append(self.status_line() + "\n", style="bold")
        cols, _ = self.grid()
        items = self.page_items()
        margin = 2 if min(r.x.shape[1:3]) >= 24 else 0
        tw = self.text_width()
        chosen = self.selected_mistake() if self.has_focus else None
        for k in range(0, len(items), cols):
            row = items[k : k + cols]
            arts = [self.art(m.index, margin) for m in row]
            caps = [self.caption(m) for m in row]
            for line in range(IMG_H):
                for j, m in enumerate(row):
                    if j:
                        out.append(" " * GAP)
                    out.append(arts[j][line], style="reverse" if m is chosen else None)
                    out.append(" ")
                    cap, style = caps[j][line] if line < len(caps[j]) else ("", None)
                    out.append(cap.ljust(tw), style=style)
                out.append("\n")
            out.append("\n")
        return out


VIEW = ViewSpec("mistakes", "Mistakes", MistakesPanel)
