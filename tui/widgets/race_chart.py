"""The race chart: one curve per optimizer on one plotext chart, and its legend.

Loss mode: each optimizer's training loss by step (x in epochs, thinned to the width).
Accuracy mode: each optimizer's validation accuracy by epoch (training accuracy when the
race has no validation set). Colours are 256-colour indexes, so the chart (plotext) and the
legend (Rich) show the same colour; in ASCII mode each curve has its own letter instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tui.bandwidth import chart_interval
from tui.terminal import BOX_TO_ASCII, ascii_only
from tui.widgets.chart_data import DecimatingSeries, thin

MODES = ("loss", "accuracy")
#: 256-colour indexes, one per racer in order (cyan, orange, green, red, magenta, yellow, ...)
COLOURS = (51, 208, 46, 196, 201, 226, 33, 250)


@dataclass
class Curve:
    name: str
    lr: float
    colour: int
    letter: str
    steps: DecimatingSeries = field(default_factory=lambda: DecimatingSeries(1024))
    epochs: list[tuple[int, float]] = field(default_factory=list)    # (epoch, accuracy %)
    last_loss: float | None = None
    last_acc: float | None = None
    diverged: bool = False
    rank: int | None = None


class RaceData:
    """The racers' series; pure Python (tests read it)."""

    def __init__(self) -> None:
        self.curves: dict[str, Curve] = {}
        self.steps_per_epoch = 1
        self.version = 0

    def start(self, names: tuple[str, ...], lrs: tuple[float, ...], steps_per_epoch: int) -> None:
        self.curves = {}
        letters: set[str] = set()
        for i, (name, lr) in enumerate(zip(names, lrs)):
            letter = next((c for c in name + "abcdefghijklmnopqrstuvwxyz" if c not in letters), "*")
            letters.add(letter)
            self.curves[name] = Curve(name, lr, COLOURS[i % len(COLOURS)], letter)
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.version += 1

    def add_steps(self, name: str, points: tuple[tuple[int, float], ...]) -> None:
        c = self.curves.get(name)
        if c is None:
            return
        for step, loss in points:
            c.steps.append(step / self.steps_per_epoch, loss)
        if points:
            c.last_loss = sum(v for _, v in points) / len(points)
        self.version += 1

    def add_epoch(self, name: str, epoch: int, acc: float | None, loss: float | None) -> None:
        c = self.curves.get(name)
        if c is None:
            return
        if acc is not None:
            c.epochs.append((epoch, 100.0 * acc))
            c.last_acc = 100.0 * acc
        if loss is not None:
            c.last_loss = loss
        self.version += 1

    def mark_diverged(self, name: str) -> None:
        if name in self.curves:
            self.curves[name].diverged = True
            self.version += 1

    def set_ranks(self, ranks: dict[str, int]) -> None:
        for name, rank in ranks.items():
            if name in self.curves:
                self.curves[name].rank = rank
        self.version += 1

    def loss_ceiling(self) -> float | None:
        """The top of the loss axis: 1.2 x the highest of the racers' median first-10-step
        losses (where they all start), so one racer's early spike does not flatten the chart."""
        starts = []
        for c in self.curves.values():
            first = sorted(c.steps.ys[:10])
            if first:
                starts.append(first[len(first) // 2])
        return 1.2 * max(starts) if starts else None

    @property
    def empty(self) -> bool:
        return not any(len(c.steps) for c in self.curves.values())


class RaceChart(PlotextPlot):
    """All racers' curves overlaid; ``toggle_mode`` switches loss / accuracy."""

    DEFAULT_CSS = "RaceChart { min-height: 6; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.data = RaceData()
        self.mode = "loss"
        self.empty_message = "F5 starts the race."
        self._drawn: tuple[int, str, int, int] | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(chart_interval(), self.redraw_if_changed)

    def toggle_mode(self) -> str:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
        self.redraw_if_changed()
        return self.mode

    def redraw_if_changed(self) -> None:
        key = (self.data.version, self.mode, self.size.width, self.size.height)
        if key == self._drawn or not self.is_mounted:
            return
        self._drawn = key
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        ascii_mode = ascii_only(self)
        hi = 1.0
        ys_all: list[float] = []
        for c in self.data.curves.values():
            if self.mode == "loss":
                xs, ys = thin(c.steps.xs, c.steps.ys, min(300, 2 * max(self.size.width, 20)))
                if xs:
                    plt.plot(xs, ys, marker=c.letter if ascii_mode else "braille", color=c.colour)
            else:
                xs = [float(e) for e, _ in c.epochs]
                ys = [a for _, a in c.epochs]
                if xs:
                    plt.plot(xs, ys, marker=c.letter if ascii_mode else "braille", color=c.colour)
                    plt.scatter(xs, ys, marker=c.letter if ascii_mode else "●", color=c.colour)
            if xs:
                hi = max(hi, *xs)
                ys_all.extend(ys)
        plt.xlim(0, hi)
        plt.xlabel("epoch")
        if self.mode == "loss":
            plt.ylabel("train loss")
            top = self.data.loss_ceiling()
            if ys_all and top is not None and top < max(ys_all):
                plt.ylim(min(ys_all), top)            # a first-steps spike would flatten the rest
        else:
            plt.ylabel("val acc %")
            if ys_all:
                lo, top = min(ys_all), max(ys_all)
                pad = max(0.5, (top - lo) * 0.15)
                plt.ylim(max(0.0, lo - pad), min(100.0, top + pad))
        self.refresh()

    def render(self) -> RenderResult:
        if self.data.empty:
            return Text(f"{self.mode} chart\n\n{self.empty_message}", justify="center", style="dim")
        out = super().render()
        if isinstance(out, Text) and ascii_only(self):
            out.plain = out.plain.translate(BOX_TO_ASCII)
        return out


def legend(data: RaceData, ascii_mode: bool = False, columns: int = 2, width: int = 78) -> Text:
    """Each racer: its colour (or letter), name, lr and latest loss / accuracy; ranked once
    the race is over. ``columns`` entries a line."""
    text = Text()
    cell = max(20, width // columns - 1)
    curves = list(data.curves.values())
    if any(c.rank is not None for c in curves):
        curves.sort(key=lambda c: c.rank or 99)
    for i, c in enumerate(curves):
        if i and i % columns == 0:
            text.append("\n")
        elif i:
            text.append(" ")
        mark = f"[{c.letter}]" if ascii_mode else "━━"
        rank = f"{c.rank}." if c.rank is not None else ""
        figs = "diverged" if c.diverged else " ".join(
            p for p in (f"loss {c.last_loss:.3f}" if c.last_loss is not None else "",
                        f"{c.last_acc:.1f}%" if c.last_acc is not None else "") if p)
        body = f" {rank}{c.name} {c.lr:g} {figs}"
        text.append(mark, style=f"bold color({c.colour})")
        text.append(body[: cell - len(mark)].ljust(cell - len(mark)))
    return text
