"""Live loss / accuracy chart: a PlotextPlot fed by the app, redrawn at most ~4 times a second."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tui.bandwidth import chart_interval
from tui.terminal import BOX_TO_ASCII, ascii_only
from tui.widgets.chart_data import ChartData

MODES = ("loss", "accuracy")


class LossChart(PlotextPlot):
    """Training loss by step (smoothed) and validation loss by epoch; or accuracies.

    The app hands data in with `add_steps` / `add_epoch`; a timer calls `redraw_if_changed`,
    which replots only when data (or size, or mode) changed since the last draw.
    """

    DEFAULT_CSS = """
    LossChart { min-height: 6; }
    """

    REDRAW_INTERVAL: float | None = None   # seconds between checks; None: tui.bandwidth (4 Hz, 1 Hz low-bandwidth)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.data = ChartData()
        self.mode = "loss"
        self.empty_message = "No training yet: press F5 to train."
        self._drawn: tuple[int, str, int, int] | None = None
        self.redraws = 0   # how many times the plot was rebuilt (tests, throttling checks)

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(self.redraw_interval, self.redraw_if_changed)

    @property
    def redraw_interval(self) -> float:
        """Seconds between redraw checks: REDRAW_INTERVAL when set, else tui.bandwidth's rate."""
        return self.REDRAW_INTERVAL or chart_interval()

    # -- data in --------------------------------------------------------------------------
    def clear(self) -> None:
        self.data.clear()

    def add_steps(self, points: Sequence[tuple[int, float]], steps_per_epoch: int) -> None:
        self.data.add_steps(points, steps_per_epoch)

    def add_epoch(self, epoch: int, train_acc: float, val_loss: float | None, val_acc: float | None) -> None:
        self.data.add_epoch(epoch, train_acc, val_loss, val_acc)

    def add_mark(self, step: int, label: str) -> None:
        """Mark a live change at global step ``step`` (a vertical line, labelled at the top)."""
        self.data.add_mark(step, label)

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown chart mode {mode!r}")
        self.mode = mode
        self.redraw_if_changed()

    def toggle_mode(self) -> str:
        self.set_mode(MODES[(MODES.index(self.mode) + 1) % len(MODES)])
        return self.mode

    # -- drawing ----------------------------------------------------------------------------
    def redraw_if_changed(self) -> None:
        key = (self.data.version_of(self.mode), self.mode, self.size.width, self.size.height)
        if key == self._drawn or not self.is_mounted:
            return
        self._drawn = key
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        width = max(self.size.width, 20)
        max_points = min(400, 2 * width)
        if self.mode == "loss":
            series = self.data.loss_series(max_points)
            plt.ylabel("loss")
        else:
            series = self.data.accuracy_series(max_points)
            plt.ylabel("acc %")
        plt.xlabel("epoch")
        tx, ty = series["train"]
        vx, vy = series["val"]
        # No plotext legend: drawn inside the plot, it covered the first losses (the top left).
        # The legend is in the border title (``legend()``), in the series' colours.
        if tx:
            # braille: 2x4 dots per cell; "+" where the terminal shows ASCII only (tui.terminal)
            marker = "+" if ascii_only(self) else "braille"
            plt.plot(tx, ty, marker=marker, color="cyan")
        if vx:
            # One point per epoch, drawn as "o": tells the series apart without colour.
            plt.scatter(vx, vy, marker="o", color="orange")
        xs = tx + vx
        ys = ty + vy
        marks = self.data.mark_series() if xs else []
        for x, label in marks:
            plt.vline(x, "magenta")
            if ys:
                plt.text(label, x, max(ys), color="magenta")
        if xs:
            hi = max(xs + [x for x, _ in marks])
            plt.xlim(0, max(hi, 1.0))
        if self.mode == "accuracy" and ys:
            # an accuracy is at most 100%: plotext's own limits would run past it
            lo = min(ys)
            plt.ylim(max(0.0, lo - max(1.0, (100.0 - lo) * 0.1)), 100.0)
        self.redraws += 1
        self.refresh()

    @staticmethod
    def legend(ascii_mode: bool = False) -> str:
        """The series' key as Textual markup, for the chart's border title: the training curve's
        mark and the validation points' "o", each in the colour plotext draws it in (its "cyan"
        and "orange" are the terminal's ANSI cyan and yellow)."""
        line = "+" if ascii_mode else "\u2501"
        return f"[ansi_cyan]{line} train[/] [ansi_yellow]o validation[/]"

    def render(self) -> RenderResult:
        if self.data.empty:
            label = "loss" if self.mode == "loss" else "accuracy"
            return Text(f"{label} chart\n\n{self.empty_message}", justify="center", style="dim")
        out = super().render()
        if isinstance(out, Text) and ascii_only(self):
            out.plain = out.plain.translate(BOX_TO_ASCII)     # plotext's frame: same length, styles kept
        return out
