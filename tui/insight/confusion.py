"""The confusion matrix view: counts or row-normalised shares (``n`` toggles), each cell shaded
by its share of the true class (green on the diagonal, red off it; an ASCII shade character
too on an ASCII-only terminal), per-class accuracy, the most confused pairs. Arrows move over
the cells; Enter shows the test images of the cell under the cursor as the Digits preview
draws them (Enter there zooms one); ``e`` writes the matrix as CSV and JSON.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Static

from tui.ascii_art import RAMP
from tui.insight import ModelInput, ViewSpec
from tui.insight._shared import class_names, mismatch, short, test_probs
from tui.terminal import ascii_only

MAX_CLASSES = 12          # wider matrices do not fit 80 columns
LABEL_W = 8               # row labels (class names cut to this)
WIDE = 110                # from this width: accuracy bars and the pairs beside the matrix
BAR_W = 20


@dataclass(frozen=True)
class ConfusionResult:
    view: Any                     # engine.insight.confusion.ConfusionView
    probs: np.ndarray             # (n_test, C): shared with the other views by the screen
    preds: np.ndarray             # (n_test,)
    y: np.ndarray                 # (n_test,) labels
    x: np.ndarray                 # the test images (for a cell's images)
    max_value: float
    label: str                    # "epoch 3" / "loaded model.npz"


def slug(text: str) -> str:
    """``text`` as a file-name part: "epoch 3 of run 1" -> "epoch-3-of-run-1"."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "model"


def shade(share: float, diagonal: bool) -> Style | None:
    """The background of a cell: its share of the true class, green on the diagonal, red off
    it (off-diagonal shares are small: a square root makes 1% visible, 25% full)."""
    if math.isnan(share) or share <= 0:
        return None
    if diagonal:
        level = share
        base = (20, 110, 40)
    else:
        level = min(1.0, math.sqrt(share / 0.25))
        base = (150, 30, 30)
    level = 0.15 + 0.85 * level
    bg = Color.from_rgb(*(int(c * level) for c in base))
    return Style(bgcolor=bg, color="white" if level > 0.3 else None)


class ConfusionPanel(Widget, can_focus=True):
    """The matrix, its per-class accuracy and most confused pairs; a cursor over the cells."""

    DEFAULT_CSS = """
    ConfusionPanel { height: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """
    BINDINGS = [
        Binding("n", "toggle_normalised", "Counts/%"),
        Binding("enter", "cell_images", "Images"),
        Binding("e", "export", "CSV+JSON"),
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.result: ConfusionResult | None = None
        self.normalised = False
        self.cursor = (0, 0)            # (true, pred)
        self.export_dir: Path | None = None   # None: the screen's (the working directory)
        self.last_export: tuple[Path, Path] | None = None

    # -- the insight contract ------------------------------------------------------------------
    def unavailable(self, inp: ModelInput) -> str | None:
        why = mismatch(inp)
        if why is not None:
            return why
        n = int(inp.model.sizes[-1])
        if n > MAX_CLASSES:
            return f"the matrix shows at most {MAX_CLASSES} classes; this model has {n}"
        return None

    def compute(self, inp: ModelInput) -> ConfusionResult:
        from engine.insight.confusion import confusion

        probs = test_probs(inp)
        ds = inp.dataset
        y = np.asarray(ds.y_test).astype(np.int64)
        preds = probs.argmax(axis=1)
        names = class_names(inp)
        view = confusion(y, preds, len(names), names, top=5)
        return ConfusionResult(view, probs, preds, y, ds.x_test, float(ds.max_value), inp.label)

    def show(self, result: ConfusionResult) -> None:
        self.result = result
        n = len(result.view.class_names)
        t, p = self.cursor
        self.cursor = (min(t, n - 1), min(p, n - 1))
        self.refresh()

    # -- actions -----------------------------------------------------------------------------------
    def action_toggle_normalised(self) -> None:
        self.normalised = not self.normalised
        self.refresh()

    def action_move(self, dx: int, dy: int) -> None:
        if self.result is None:
            return
        n = len(self.result.view.class_names)
        t, p = self.cursor
        self.cursor = ((t + dy) % n, (p + dx) % n)
        self.refresh()

    def cell(self) -> tuple[int, int, np.ndarray]:
        """(true, pred, test indices) of the cell under the cursor."""
        from engine.insight.confusion import cell_indices

        assert self.result is not None
        t, p = self.cursor
        return t, p, cell_indices(self.result.y, self.result.preds, t, p)

    def action_cell_images(self) -> None:
        if self.result is None:
            return
        t, p, idx = self.cell()
        names = self.result.view.class_names
        if len(idx) == 0:
            self.notify(f"No test image of {names[t]} was predicted as {names[p]}.")
            return
        self.app.push_screen(CellImagesScreen(self.result, t, p, idx))

    def action_export(self) -> None:
        if self.result is None:
            self.notify("Nothing to export yet.", severity="warning")
            return
        from engine.insight.export import ExportError, write_confusion

        directory = self.export_dir or getattr(self.screen, "export_dir", None) or Path.cwd()
        base = Path(directory) / f"termnist-confusion-{slug(self.result.label)}"
        extra = {"model": self.result.label, "test_images": int(len(self.result.y))}
        try:
            csv_path = write_confusion(base.with_suffix(".csv"), self.result.view)
            json_path = write_confusion(base.with_suffix(".json"), self.result.view, **extra)
        except ExportError as exc:
            self.notify(str(exc), title="Export failed", severity="error")
            return
        self.last_export = (csv_path, json_path)
        self.notify(f"{csv_path}\n{json_path}", title="Confusion matrix saved")

    # -- drawing -----------------------------------------------------------------------------------
    def cell_text(self, t: int, p: int, width: int) -> str:
        assert self.result is not None
        v = self.result.view
        if self.normalised:
            share = v.normalised[t, p]
            text = "-" if math.isnan(share) else f"{share * 100:.1f}"
        else:
            text = str(int(v.counts[t, p]))
        return text.rjust(width)

    def render(self) -> RenderResult:
        out = Text(no_wrap=True, overflow="crop")
        r = self.result
        if r is None:
            return out
        v = r.view
        names = v.class_names
        n = len(names)
        ascii_mode = ascii_only(self)
        total = int(v.counts.sum())
        acc = "n/a" if math.isnan(v.accuracy) else f"{v.accuracy * 100:.2f}%"
        what = "row %" if self.normalised else "counts"
        out.append(f"{r.label}: accuracy {acc} on {total:,} test images ({what})\n", style="bold")
        digits = max(len(str(int(v.counts.max(initial=0)))), 3)
        num_w = 5 if self.normalised else digits
        cell_w = num_w + (1 if ascii_mode else 0)
        label_w = min(LABEL_W, max(len(s) for s in names))
        label_w = max(label_w, 2)
        ct, cp = self.cursor
        wide = self.size.width >= WIDE
        bar_fill = "#" if ascii_mode else "\u2588"
        side = self.side_lines() if wide else []
        # header: predicted classes
        corner = "true\\pred" if label_w >= 8 else "t\\p"
        out.append(corner.ljust(label_w + 1), style="dim")
        for p in range(n):
            out.append(" " + short(names[p], cell_w).rjust(cell_w), style="bold underline" if p == cp else "dim")
        out.append("    acc", style="dim")
        if wide:
            out.append(" " * (BAR_W + 4) + (side[0] if side else ""), style="bold")
        out.append("\n")
        for t in range(n):
            out.append(short(names[t], label_w).ljust(label_w) + " ",
                       style="bold underline" if t == ct else None)
            for p in range(n):
                out.append(" ")
                text = self.cell_text(t, p, num_w)
                share = float(v.normalised[t, p])
                if ascii_mode:
                    level = 0 if math.isnan(share) or share <= 0 else max(1, int(round(share * (len(RAMP) - 1))))
                    text += RAMP[level]
                style: Style | None = shade(share, t == p) if int(v.counts[t, p]) else None
                if (t, p) == (ct, cp):
                    cursor = Style(reverse=True, bold=True)
                    style = cursor if style is None else style + cursor
                out.append(text, style=style)
            a = v.per_class[t]
            out.append(f" {'   n/a' if math.isnan(a) else f'{a * 100:5.1f}%'}")
            if wide:
                filled = 0 if math.isnan(a) else int(round(a * BAR_W))
                out.append(" " + bar_fill * filled, style="green")
                out.append(" " * (BAR_W - filled + 3) + (side[t + 1] if t + 1 < len(side) else ""))
            out.append("\n")
        t, p = self.cursor
        count = int(v.counts[t, p])
        row_total = int(v.counts[t].sum())
        of_row = f" ({count / row_total:.1%} of {names[t]})" if row_total else ""
        kind = "right" if t == p else "wrong"
        out.append(f"cell: true {names[t]}, predicted {names[p]} ({kind}): {count:,} image(s){of_row}", style="bold")
        out.append("; Enter shows them\n" if count else "\n")
        if wide:
            return out
        if v.pairs:
            arrow = "->"
            pairs = ", ".join(f"{names[q.true]}{arrow}{names[q.pred]} {q.count}" for q in v.pairs)
            out.append(f"most confused: {pairs}\n")
        else:
            out.append("most confused: none (no mistakes)\n")
        return out

    def side_lines(self) -> list[str]:
        """Beside the matrix when there is room: the most confused pairs, one a line."""
        assert self.result is not None
        v = self.result.view
        names = v.class_names
        if not v.pairs:
            return ["most confused: none (no mistakes)"]
        lines = ["most confused (true -> predicted)"]
        for q in v.pairs:
            lines.append(f"{short(names[q.true], 11)} -> {short(names[q.pred], 11)}: {q.count:,} "
                         f"({q.share:.1%} of {short(names[q.true], 11)})")
        return lines

    def on_focus(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.refresh()


class CellImagesScreen(ModalScreen[None]):
    """The test images of one confusion cell, drawn as the Digits preview draws them."""

    DEFAULT_CSS = """
    CellImagesScreen { align: center middle; }
    CellImagesScreen > Vertical { width: 100%; height: 100%; border: thick $accent; background: $panel; }
    CellImagesScreen DigitPreview { height: 1fr; }
    CellImagesScreen.-ascii > Vertical { border: ascii $accent; }
    """
    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close")]

    def __init__(self, result: ConfusionResult, true: int, pred: int, indices: np.ndarray) -> None:
        super().__init__()
        self.result = result
        self.true, self.pred = true, pred
        self.indices = np.asarray(indices)

    def compose(self) -> ComposeResult:
        from tui.widgets.digit_preview import DigitPreview

        names = self.result.view.class_names
        with Vertical():
            yield Static(f"True {names[self.true]}, predicted {names[self.pred]}: {len(self.indices):,} test "
                         f"image(s), {self.result.label}. Enter zooms, Escape closes.", markup=False)
            yield DigitPreview(id="cell-preview")

    def on_mount(self) -> None:
        from tui.runner import make_predictions
        from tui.widgets.digit_preview import DigitPreview

        self.set_class(ascii_only(self), "-ascii")
        r, idx = self.result, self.indices
        preview = self.query_one(DigitPreview)
        preview.set_images(r.x[idx], r.y[idx], tuple(r.view.class_names), r.max_value)
        preview.set_predictions(make_predictions(r.probs[idx], r.y[idx], r.label))
        mode = getattr(getattr(self.app, "preview", None), "mode", "ascii")
        preview.set_mode(mode if mode in ("ascii", "blocks") else "ascii")
        preview.focus()

    def on_digit_preview_zoom_requested(self, message: Any) -> None:
        from tui.screens.digit_detail import DigitScreen

        message.stop()          # the app's handler would look the index up in the whole test set
        r = self.result
        i = int(self.indices[message.index])
        preview = self.query_one("#cell-preview")
        self.app.push_screen(DigitScreen(i, r.x[i], r.max_value, int(r.y[i]), tuple(r.view.class_names),
                                         r.probs[i], getattr(preview, "mode", "ascii")))

    def on_digit_preview_shading_changed(self, message: Any) -> None:
        message.stop()          # a choice made here is not the app's preference


VIEW = ViewSpec("confusion", "Confusion", ConfusionPanel)
