"""Units: what the first hidden layer learned, and how the network responds to one test digit.

Left, a paged grid of the first layer's units, each unit's input weights drawn as an image with
a diverging shading (blue negative, orange positive; tui.insight.shading); the units most
active for the selected test digit are highlighted (their number reversed, with their
activation). Right, that digit, the ten output probabilities as bars, and every hidden layer's
activations as a strip.

Keys: PgUp/PgDn (or [ ]) page, Left/Right the previous/next test digit, 0-9 the next test digit
of that class, o orders the grid by unit number or by response to the selected digit.

compute() (a worker thread) scales the weight images; selecting a digit runs one image
through the network on the UI thread (well under a millisecond for 784-512-256-10, as the
Draw screen does); show() and paging draw one page of tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from engine.insight.units import image_shape_for, layer_strip, responsive_units, weight_images
from tui.ascii_art import probability_bars, render_image
from tui.insight import ModelInput, ViewSpec
from tui.insight.shading import diverging_tile, strip, tile_size
from tui.terminal import ascii_only

#: how many of the most active units (for the selected digit) are highlighted
TOP_UNITS = 8
SIDE_WIDTH = 32
BOLD = Style(bold=True)
DIM = Style(dim=True)
HIGHLIGHT = Style(bold=True, reverse=True)
ORDERS = ("unit", "response")


def input_shape(inp: ModelInput) -> tuple[int, int]:
    """The model's input as an image (H, W): the dataset's image shape when the pixel counts
    agree, else the square the feature count makes ((1, n) when it is not a square)."""
    n = int(inp.model.sizes[0])
    shape = tuple(int(v) for v in getattr(inp.dataset, "image_shape", ()) or ())
    if len(shape) == 2 and shape[0] * shape[1] == n:
        return shape[0], shape[1]
    return image_shape_for(n)


@dataclass
class UnitsResult:
    model: Any                  # the frozen engine.mlp.MLP of the ModelInput
    images: np.ndarray          # (units, H, W) first-layer weights in [-1, 1], each by its own largest
    x_test: np.ndarray          # raw test images (N, H, W)
    y_test: np.ndarray
    max_value: float
    class_names: tuple[str, ...]
    label: str


class UnitGrid(Widget):
    """One page of weight tiles; the page size follows the widget's size."""

    DEFAULT_CSS = "UnitGrid { width: 1fr; height: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.images: np.ndarray | None = None
        self.order: np.ndarray = np.arange(0)            # unit numbers in display order
        self.highlight: dict[int, float] = {}            # unit -> activation, for the selected digit
        self.page = 0
        self.n_pages = 1
        self.per_page = 1
        self.shown_units: list[int] = []                      # units on the page last drawn
        self._lines: list[Strip] | None = None
        self._lines_for: tuple[int, int] = (0, 0)

    def tiling(self) -> tuple[int, int, int, int]:
        """(tile columns, tile rows, cells wide, cells tall) for the current size."""
        assert self.images is not None
        cols, rows = tile_size(self.images.shape[1:])
        width = max(self.size.width, cols)
        height = max(self.size.height, rows + 2)
        n_cols = max(1, (width + 1) // (cols + 1))
        n_rows = max(1, (height - 1) // (rows + 1))
        return n_cols, n_rows, cols, rows

    def paging(self) -> tuple[int, int]:
        """(per page, pages) at the current size."""
        n_cols, n_rows, _, _ = self.tiling()
        per = n_cols * n_rows
        return per, max(1, -(-len(self.order) // per))

    def turn(self, delta: int) -> None:
        if self.images is None:
            return
        _, pages = self.paging()
        self.page = min(max(self.page + delta, 0), pages - 1)
        self.refresh_tiles()

    def refresh_tiles(self) -> None:
        self._lines = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._lines is None or self._lines_for != (width, self.size.height):
            self._lines = self._draw()
            self._lines_for = (width, self.size.height)
        if y < len(self._lines):
            return self._lines[y].adjust_cell_length(width)
        return Strip.blank(width)

    def _draw(self) -> list[Strip]:
        """The page as strips of Rich segments (Textual's Content is too slow for ~2,000
        differently coloured cells a page)."""
        if self.images is None:
            return [Strip([Segment("waiting for a model...", DIM)])]
        n_cols, n_rows, cols, rows = self.tiling()
        self.per_page, self.n_pages = n_cols * n_rows, max(1, -(-len(self.order) // (n_cols * n_rows)))
        self.page = min(self.page, self.n_pages - 1)
        start = self.page * self.per_page
        self.shown_units = [int(u) for u in self.order[start : start + self.per_page]]
        total = len(self.order)
        lines = [Strip([Segment(f"units {start + 1}-{start + len(self.shown_units)} of {total}  "
                                f"page {self.page + 1}/{self.n_pages}", BOLD)])]
        ascii_mode = ascii_only(self)
        gap = Segment(" ")
        for r in range(n_rows):
            row_units = self.shown_units[r * n_cols : (r + 1) * n_cols]
            if not row_units:
                break
            label: list[Segment] = []
            tiles = []
            for k, unit in enumerate(row_units):
                if k:
                    label.append(gap)
                if unit in self.highlight:
                    tag = f"*{unit} {self.highlight[unit]:.2g}"[:cols]
                    label.append(Segment(f"{tag:<{cols}}", HIGHLIGHT))
                else:
                    label.append(Segment(f"{unit:<{cols}}", DIM))
                tiles.append(diverging_tile(self.images[unit], cols, rows, ascii_mode))
            lines.append(Strip(label))
            for line in range(rows):
                segs: list[Segment] = []
                for k, tile in enumerate(tiles):
                    if k:
                        segs.append(gap)
                    segs.extend(tile[line])
                lines.append(Strip(segs))
        return lines


class UnitsView(Vertical, can_focus=True):
    """The Units insight view (tui.insight contract: unavailable / compute / show)."""

    DEFAULT_CSS = f"""
    UnitsView {{ height: 1fr; }}
    UnitsView #units-status {{ height: 1; }}
    UnitsView #units-body {{ height: 1fr; }}
    UnitsView #units-side {{ width: {SIDE_WIDTH}; height: 1fr; padding: 0 0 0 1; }}
    """
    BINDINGS = [
        Binding("pagedown,right_square_bracket", "page(1)", "Page", show=True),
        Binding("pageup,left_square_bracket", "page(-1)", "Page", show=False),
        Binding("right", "digit(1)", "Next digit", show=True),
        Binding("left", "digit(-1)", "Prev digit", show=False),
        Binding("o", "order", "Order", show=True),
        *[Binding(str(c), f"pick_class({c})", f"Class {c}", show=False) for c in range(10)],
    ]

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.result: UnitsResult | None = None
        self.index = 0                      # the selected test image
        self.order = "unit"
        self.responsive: list[tuple[int, float]] = []
        self.activations: list[Any] = []         # engine LayerActivations of the selected digit

    def compose(self) -> ComposeResult:
        yield Static("", id="units-status", markup=False)
        with Horizontal(id="units-body"):
            yield UnitGrid(id="units-grid")
            yield Static("", id="units-side", markup=False)

    # -- the contract ---------------------------------------------------------------------------
    def unavailable(self, inp: ModelInput) -> str | None:
        sizes = tuple(inp.model.sizes)
        if len(sizes) < 3:
            return "Units needs a hidden layer: this model maps its inputs straight to the outputs."
        if input_shape(inp)[0] == 1:
            return (f"Units draws each unit's input weights as a picture, but this model's {sizes[0]} inputs"
                    " are not a square image.")
        n_pixels = int(np.prod(inp.dataset.x_test.shape[1:]))
        if n_pixels != sizes[0]:
            return f"The model takes {sizes[0]} inputs but the dataset's images have {n_pixels} pixels."
        return None

    def compute(self, inp: ModelInput) -> UnitsResult:
        images = weight_images(inp.model, input_shape(inp))
        ds = inp.dataset
        names = tuple(getattr(ds, "class_names", ()) or ()) or tuple(str(i) for i in range(inp.model.sizes[-1]))
        return UnitsResult(inp.model, images, ds.x_test, np.asarray(ds.y_test), float(ds.max_value), names,
                           inp.label)

    def show(self, result: UnitsResult) -> None:
        self.result = result
        grid = self.query_one(UnitGrid)
        grid.images = result.images
        self.index = min(self.index, max(len(result.y_test) - 1, 0))
        self.select(self.index)

    # -- selection ------------------------------------------------------------------------------
    def select(self, index: int) -> None:
        """Make test image ``index`` the selected digit: its activations, its most active units."""
        r = self.result
        if r is None or len(r.y_test) == 0:
            return
        self.index = int(index) % len(r.y_test)
        x = (r.x_test[self.index].reshape(-1).astype(np.float32) / np.float32(r.max_value))
        self.activations = layer_strip(r.model, x)
        # the most active units; a unit at zero (a ReLU off for this digit) is not "responding"
        self.responsive = [(u, a) for u, a in responsive_units(r.model, x, top=TOP_UNITS) if a > 0]
        grid = self.query_one(UnitGrid)
        grid.highlight = dict(self.responsive)
        n_units = r.images.shape[0]
        if self.order == "response":
            grid.order = np.argsort(-self.activations[0].values, kind="stable")
        else:
            grid.order = np.arange(n_units)
        grid.refresh_tiles()
        self._draw_side()

    def _draw_side(self) -> None:
        r = self.result
        if r is None or not self.activations:
            return
        ascii_mode = ascii_only(self)
        probs = self.activations[-1].values
        pred = int(np.argmax(probs))
        true = int(r.y_test[self.index])
        names = r.class_names if len(r.class_names) == len(probs) else tuple(str(i) for i in range(len(probs)))
        head = Text(f"test #{self.index}  true {names[true] if true < len(names) else true}  "
                    f"pred {names[pred]}", style="bold")
        digit = render_image(r.x_test[self.index], r.max_value, "ascii" if ascii_mode else "blocks", 12, 6,
                             margin=2 if r.x_test.shape[-1] >= 20 else 0)
        short = tuple(n[:5] for n in names)
        bars = probability_bars(probs, short, width=max(4, SIDE_WIDTH - 14 - len(max(short, key=len)) - 9),
                                fill="#" if ascii_mode else "\u2588")
        out = Text()
        out.append_text(head)
        for i in range(max(len(bars), len(digit))):
            out.append("\n")
            out.append(f"{digit[i] if i < len(digit) else '':<12} ")
            if i < len(bars):
                out.append(bars[i], style="bold" if i == pred else "")
        width = SIDE_WIDTH - 5
        for layer in self.activations[:-1]:
            out.append("\n")
            name = layer.name.replace("hidden ", "h")
            out.append(f"{name:<3} ")
            out.append(strip(layer.values, width, ascii_mode), style="green")
        out.append("\nmost active: ")
        out.append(" ".join(str(u) for u, _ in self.responsive[:6]) or "none", style="bold")
        arrows = "Left/Right" if ascii_mode else "\u2190/\u2192"
        out.append(f"\n\n{arrows} digit  0-9 class\nPgUp/PgDn page  o order", style="dim")
        self.query_one("#units-side", Static).update(out)
        order = f"response to #{self.index}" if self.order == "response" else "number"
        self.query_one("#units-status", Static).update(
            f"{r.label + ': ' if r.label else ''}{r.images.shape[0]} first-layer units by {order}; "
            "weights blue < 0 < orange")

    # -- keys -----------------------------------------------------------------------------------
    def action_page(self, delta: int) -> None:
        self.query_one(UnitGrid).turn(delta)

    def action_digit(self, delta: int) -> None:
        self.select(self.index + delta)

    def action_pick_class(self, cls: int) -> None:
        r = self.result
        if r is None:
            return
        n = len(r.y_test)
        for step in range(1, n + 1):
            i = (self.index + step) % n
            if int(r.y_test[i]) == cls:
                self.select(i)
                return
        self.notify(f"no test image of class {cls}", severity="warning")

    def action_order(self) -> None:
        self.order = ORDERS[(ORDERS.index(self.order) + 1) % len(ORDERS)]
        self.query_one(UnitGrid).page = 0
        self.select(self.index)


VIEW = ViewSpec("units", "Units", UnitsView)
