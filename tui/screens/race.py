"""The optimizer race (Ctrl+R): the form's settings raced across chosen optimizers, their
curves overlaid live on one chart (F2: loss / accuracy), a legend with each one's figures.

The race (engine.race: one initialisation, one batch order for all) runs in a thread worker
that posts each engine event, as it is, in a ``RaceScreen.Update`` message; ``feed`` shows
it (the tests feed fixed events the same way). F7 or Escape stops it after the current step;
closing the screen or quitting the app stops it too (``on_unmount``), and the worker checks
its cancellation at every event, so a race never keeps the app's process alive.
"""

from __future__ import annotations

import logging
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static
from textual.worker import get_current_worker

from tui.guard import guarded, internal
from tui.terminal import ascii_only
from tui.widgets.race_chart import RaceChart, legend

log = logging.getLogger(__name__)

DEFAULT_FIELD = "sgd,momentum,nesterov,adagrad,rmsprop,adam"
LR_PLACEHOLDER = "default: sgd .1, momentum/nesterov/adagrad .05, rmsprop/adam .001"


class RaceScreen(Screen[None]):
    """Race the form's settings across the optimizers typed in the first field."""

    DEFAULT_CSS = """
    RaceScreen { layout: vertical; }
    RaceScreen #race-title { height: 1; background: $panel; text-style: bold; }
    RaceScreen .race-row { height: 1; }
    RaceScreen .race-row Label { width: 12; }
    RaceScreen .race-row Input { width: 1fr; }
    RaceScreen #race-status { height: 1; }
    RaceScreen #race-chart { height: 1fr; }
    RaceScreen #race-legend { height: 3; }
    """
    BINDINGS = [
        Binding("f5", "start", "Race"),
        Binding("f7", "stop", "Stop"),
        Binding("f2", "toggle_chart", "Loss/Acc"),
        Binding("escape", "close", "Stop/Close"),
    ]

    class Update(Message):
        """An engine.race event from the worker."""

        def __init__(self, event: Any) -> None:
            super().__init__()
            self.event = event

    def __init__(self, optimizers: str = DEFAULT_FIELD, lrs: str = "") -> None:
        super().__init__()
        self._optimizers = optimizers
        self._lrs = lrs
        self.race: Any = None               # the engine Race while one runs
        self.running = False
        self.finished: Any = None           # the last RaceFinished
        self.epochs = 0
        self.steps_per_epoch = 1

    def compose(self) -> ComposeResult:
        yield Static("Optimizer race: same initial weights, same batches, the form's settings",
                     id="race-title", markup=False)
        with Horizontal(classes="race-row"):
            yield Label("Optimizers")
            yield Input(self._optimizers, id="race-optimizers", compact=True)
        with Horizontal(classes="race-row"):
            yield Label("LRs")
            yield Input(self._lrs, placeholder=LR_PLACEHOLDER, id="race-lrs", compact=True)
        yield Static("F5 starts the race with the form's settings; F2 switches loss / accuracy.",
                     id="race-status", markup=False)
        yield RaceChart(id="race-chart")
        yield Static("", id="race-legend")
        yield Footer(compact=True)

    @property
    def chart(self) -> RaceChart:
        return self.query_one("#race-chart", RaceChart)

    def set_status(self, text: str) -> None:
        self.query_one("#race-status", Static).update(text)

    def show_legend(self) -> None:
        width = max(40, self.size.width)
        self.query_one("#race-legend", Static).update(legend(self.chart.data, ascii_only(self), width=width))

    # -- actions -------------------------------------------------------------------------------
    def action_toggle_chart(self) -> None:
        mode = self.chart.toggle_mode()
        self.notify(f"Race chart: {mode}", timeout=2)

    def action_stop(self) -> None:
        if self.race is not None and self.running:
            self.race.stop()
            self.set_status("stopping after the current step...")

    def action_close(self) -> None:
        if self.running:
            self.action_stop()
            return
        self.dismiss(None)

    def action_start(self) -> None:
        from engine.errors import ConfigError
        from engine.race import parse_lrs, parse_optimizers
        from tui.forms import describe_errors

        app: Any = self.app
        if self.running:
            self.notify("The race is running: F7 stops it.", severity="warning")
            return
        if app.training:
            self.notify("A training run is going: stop it (F7 on the main screen) before a race,"
                        " which would share the CPU with it.", severity="warning")
            return
        config, errors = app.form.get_config()
        if config is None:
            self.set_status(f"Check the settings: {describe_errors(errors)}")
            return
        try:
            optimizers = parse_optimizers(self.query_one("#race-optimizers", Input).value)
            text = self.query_one("#race-lrs", Input).value
            lrs = parse_lrs(text, optimizers) if text.strip() else {}
        except ConfigError as exc:
            field = "Optimizers" if exc.field == "optimizers" else "LRs"
            self.set_status(f"{field}: {exc.reason}")
            return
        self.running = True
        self.finished = None
        self.set_status(f"loading {config.dataset} ...")
        self.run_race(config, optimizers, lrs)

    # -- the worker ----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="race", exit_on_error=False)
    def run_race(self, config: Any, optimizers: tuple[str, ...], lrs: dict[str, float]) -> None:
        from engine.datasets import fit_val_size
        from engine.errors import TermnistError
        from engine.race import Race, RaceFailed

        worker = get_current_worker()
        app: Any = self.app
        try:
            dataset = app.datasets.get(config.dataset)
            config = config.replace(val_size=fit_val_size(config.val_size, len(dataset.y_train)))
            self.race = race = Race(config, dataset, optimizers, lrs)
            if worker.is_cancelled:
                race.stop()
            for event in race.run():
                if worker.is_cancelled:
                    race.stop()
                self.post_message(self.Update(event))
        except TermnistError as exc:
            self.post_message(self.Update(RaceFailed(message=str(exc))))
        except Exception as exc:  # noqa: BLE001 - reported, never silent
            internal.error("the race failed", exc_info=exc)
            self.post_message(self.Update(RaceFailed(message=f"{type(exc).__name__}: {exc}")))

    def on_unmount(self) -> None:
        if self.race is not None:
            self.race.stop()            # the worker ends after the current step

    # -- events --------------------------------------------------------------------------------
    @guarded
    def on_race_screen_update(self, message: RaceScreen.Update) -> None:
        self.feed(message.event)

    def feed(self, event: Any) -> None:
        """Show one engine.race event (from the worker, or a test)."""
        from engine.race import RaceDiverged, RaceEpoch, RaceFailed, RaceFinished, RaceStarted, RaceSteps

        data = self.chart.data
        match event:
            case RaceStarted():
                self.running = True
                self.epochs, self.steps_per_epoch = event.epochs, event.steps_per_epoch
                data.start(event.optimizers, event.lrs, event.steps_per_epoch)
                self.set_status(f"racing {len(event.optimizers)} optimizers on {event.dataset}: "
                                f"{event.epochs} epoch(s), seed {event.seed}")
            case RaceSteps():
                data.add_steps(event.optimizer, event.points)
                self.set_status(f"epoch {event.epoch}/{self.epochs}  step {event.step}/{self.steps_per_epoch}"
                                "   F7 stops")
            case RaceEpoch():
                acc = event.val_acc if event.val_acc is not None else event.train_acc
                data.add_epoch(event.optimizer, event.epoch, acc, None)
            case RaceDiverged():
                data.mark_diverged(event.optimizer)
                self.notify(event.message, severity="warning", timeout=4)
            case RaceFinished():
                self.running = False
                self.finished = event
                data.set_ranks({r.optimizer: r.rank for r in event.results})
                best = event.results[0]
                best_acc = best.val_acc if best.val_acc is not None else best.train_acc
                what = "finished" if event.reason == "completed" else event.reason
                self.set_status(f"{what}: {best.optimizer} leads"
                                + (f" ({100 * best_acc:.1f}% val acc)" if best_acc is not None else "")
                                + "; F5 races again, Esc closes")
            case RaceFailed():
                self.running = False
                self.set_status(f"the race failed: {event.message}")
        self.show_legend()
        self.chart.redraw_if_changed()
