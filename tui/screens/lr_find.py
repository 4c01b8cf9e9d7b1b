"""The LR finder (Ctrl+L): the range test (engine.lr_find) on the form's settings, the loss
plotted against the lr on a log axis with the suggestion marked; Enter puts the suggested lr
in the form.

The test runs in a thread worker as soon as the screen opens (F5 runs it again); each point
comes back in an ``LRFindScreen.Update`` message and ``feed`` shows it (tests feed fixed
points). Escape stops a running test, or closes; closing or quitting stops the worker.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker
from textual_plotext import PlotextPlot

from tui.guard import guarded, internal
from tui.lr_plot import draw_lr_curve
from tui.terminal import BOX_TO_ASCII, ascii_only


class LRChart(PlotextPlot):
    """Smoothed loss against lr (log axis), the suggestion as a vertical line and a dot."""

    DEFAULT_CSS = "LRChart { min-height: 6; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.suggestion: float | None = None

    def set_points(self, lrs: list[float], losses: list[float], suggestion: float | None) -> None:
        self.lrs, self.losses, self.suggestion = list(lrs), list(losses), suggestion
        self.replot()

    def replot(self) -> None:
        if self.lrs:
            draw_lr_curve(self.plt, self.lrs, self.losses, self.suggestion, ascii_only=ascii_only(self))
        self.refresh()

    def render(self) -> RenderResult:
        if len(self.lrs) < 2:
            return Text("loss against learning rate\n\nthe range test draws here", justify="center", style="dim")
        out = super().render()
        if isinstance(out, Text) and ascii_only(self):
            out.plain = out.plain.translate(BOX_TO_ASCII)
        return out


class LRFindScreen(Screen[None]):
    """The LR range test of the form's settings."""

    DEFAULT_CSS = """
    LRFindScreen { layout: vertical; }
    LRFindScreen #lr-title { height: 1; background: $panel; text-style: bold; }
    LRFindScreen #lr-status { height: 1; }
    LRFindScreen #lr-chart { height: 1fr; }
    LRFindScreen #lr-result { height: 2; }
    """
    BINDINGS = [
        Binding("enter", "use", "Use lr"),
        Binding("f5", "start", "Run again"),
        Binding("escape", "close", "Stop/Close"),
    ]

    class Update(Message):
        """An engine.lr_find LRPoint, or the LRFindResult at the end, or an error line."""

        def __init__(self, item: Any) -> None:
            super().__init__()
            self.item = item

    def __init__(self, autostart: bool = True) -> None:
        super().__init__()
        self.autostart = autostart
        self.finder: Any = None
        self.running = False
        self.result: Any = None          # the last LRFindResult
        self._lrs: list[float] = []
        self._losses: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static("Learning-rate finder: the lr grows from 1e-6 to 10 until the loss explodes",
                     id="lr-title", markup=False)
        yield Static("", id="lr-status", markup=False)
        yield LRChart(id="lr-chart")
        yield Static("", id="lr-result", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.autostart:
            self.action_start()

    @property
    def chart(self) -> LRChart:
        return self.query_one("#lr-chart", LRChart)

    def set_status(self, text: str) -> None:
        self.query_one("#lr-status", Static).update(text)

    # -- actions -------------------------------------------------------------------------------
    def action_start(self) -> None:
        from tui.forms import describe_errors

        app: Any = self.app
        if self.running:
            return
        if app.training:
            self.set_status("A training run is going: stop it (F7 on the main screen) first.")
            return
        config, errors = app.form.get_config()
        if config is None:
            self.set_status(f"Check the settings: {describe_errors(errors)}")
            return
        self.result = None
        self._lrs, self._losses = [], []
        self.chart.set_points([], [], None)
        self.query_one("#lr-result", Static).update("")
        self.running = True
        self.set_status(f"{config.optimizer}, layers {'-'.join(map(str, config.hidden)) or 'none'}, "
                        f"batch {config.batch_size}: loading {config.dataset} ...")
        self.run_finder(config)

    @work(thread=True, exclusive=True, group="lr_find", exit_on_error=False)
    def run_finder(self, config: Any) -> None:
        from engine.datasets import fit_val_size
        from engine.errors import TermnistError
        from engine.lr_find import LRFinder

        worker = get_current_worker()
        app: Any = self.app
        try:
            dataset = app.datasets.get(config.dataset)
            config = config.replace(val_size=fit_val_size(config.val_size, len(dataset.y_train)))
            self.finder = finder = LRFinder(config, dataset)
            for point in finder.run():
                if worker.is_cancelled:
                    finder.stop()
                self.post_message(self.Update(point))
            self.post_message(self.Update(finder.result))
        except TermnistError as exc:
            self.post_message(self.Update(str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported, never silent
            internal.error("the LR finder failed", exc_info=exc)
            self.post_message(self.Update(f"{type(exc).__name__}: {exc}"))

    def action_use(self) -> None:
        from tui.forms import format_float

        r = self.result
        if r is None or r.suggestion is None:
            self.notify("No suggested lr yet." if r is None else r.message, severity="warning")
            return
        lr = float(f"{r.suggestion:.2g}")
        app: Any = self.app
        app.form.set_values({"lr": format_float(lr)})
        app.notify(f"Learning rate set to {format_float(lr)} (LR finder).")
        self.dismiss(None)

    def action_close(self) -> None:
        if self.running and self.finder is not None:
            self.finder.stop()
            return
        self.dismiss(None)

    def on_unmount(self) -> None:
        if self.finder is not None:
            self.finder.stop()

    # -- results -------------------------------------------------------------------------------
    @guarded
    def on_lrfind_screen_update(self, message: LRFindScreen.Update) -> None:   # Textual's name for it
        self.feed(message.item)

    def feed(self, item: Any) -> None:
        """Show an LRPoint, the final LRFindResult, or an error line (str)."""
        from engine.lr_find import LRFindResult, LRPoint

        if isinstance(item, LRPoint):
            self._lrs.append(item.lr)
            self._losses.append(item.smoothed)
            self.set_status(f"step {item.step + 1}: lr {item.lr:.2g}, loss {item.smoothed:.3f}   Esc stops")
            if len(self._lrs) % 5 == 0:
                self.chart.set_points(self._lrs, self._losses, None)
        elif isinstance(item, LRFindResult):
            self.running = False
            self.result = item
            self.chart.set_points(list(item.lrs), list(item.losses), item.suggestion)
            ended = {"exploded": "the loss exploded", "end": "reached lr 10", "stopped": "stopped"}[item.stopped]
            self.set_status(f"{item.optimizer}: {len(item.lrs)} steps, {ended}")
            text = item.message
            if item.suggestion is not None:
                text += f"\nEnter puts lr {float(f'{item.suggestion:.2g}'):g} in the form; F5 runs again."
            self.query_one("#lr-result", Static).update(text)
        else:
            self.running = False
            self.set_status(f"the LR finder failed: {item}")
