"""Live changes while a run trains (issue 13): the lr keys, exact values typed in the form,
one step / one epoch while paused, and what a change shows once it took effect.

``LiveChanges`` is a presenter (it uses the app only through ``tui.hosts.AppHost``). A change
goes to the session (``RunController.change`` -> TrainingSession/ProcessSession.change), which
validates it by TrainConfig's rules at once -- a refused value is said next to its field and
the run goes on unchanged -- and applies it at its next step boundary; the HyperparamsChanged
event that comes back is what the log, the chart and the form show (``changed``).
"""

from __future__ import annotations

import time
from typing import Any

from engine import events as ev
from engine.config import LIVE_FIELDS
from engine.errors import ConfigError
from tui import forms
from tui.hosts import AppHost

#: The lr keys multiply or divide the learning rate in effect by this.
LR_FACTOR = 2.0
#: Short names on the chart's markers.
MARK_NAMES = {"lr": "lr", "momentum": "mom", "weight_decay": "wd", "batch_size": "bs"}


def label_of(name: str) -> str:
    field = forms.FIELDS_BY_NAME.get(name)
    return field.label if field is not None else name.replace("_", " ")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_value(name: str, value: Any) -> str:
    return forms.format_float(float(value)) if name != "batch_size" else str(int(value))


class LiveChanges:
    def __init__(self, host: AppHost) -> None:
        self.host = host
        self.stepping: str | None = None         # "step" | "epoch": asked while paused
        self._told: set[str] = set()             # fields whose "live or not" was said this run
        # when the last change was asked / its event handled / on screen (the benchmark reads them)
        self.asked_at: float | None = None
        self.event_at: float | None = None
        self.shown_at: float | None = None

    def reset(self) -> None:
        """A run begins."""
        self.stepping = None
        self._told.clear()

    # ------------------------------------------------------------------ asking
    def scale_lr(self, factor: float) -> None:
        """The lr keys: the learning rate in effect (with changes asked) times ``factor``."""
        live = self.host.trainer.live_config()
        if live is None:
            self.host.notify("No run to change: F5 trains.", severity="warning")
            return
        self.apply({"lr": live.lr * factor})

    def typed(self, name: str, text: str) -> None:
        """Enter in a form field: during a run, a live change of a live setting."""
        host = self.host
        if host.trainer.live_session is None:
            return
        if name not in LIVE_FIELDS:
            self._not_live(name, force=True)
            return
        try:
            value = forms.parse_value(name, text)
        except ConfigError as exc:
            self._refused(name, text.strip(), exc.reason)
            return
        self.apply({name: value}, text.strip())

    def apply(self, values: dict[str, Any], text: str | None = None) -> bool:
        """Ask the run for ``values`` (``text``: as the user typed the one value)."""
        host = self.host
        self.asked_at = time.perf_counter()
        try:
            new = host.trainer.change(**values)
        except ConfigError as exc:
            shown = text if text is not None else format_value(exc.field, values[exc.field]) \
                if exc.field in values and _is_number(values[exc.field]) else str(values.get(exc.field, ""))
            self._refused(exc.field, shown, exc.reason)
            return False
        if new is None:
            host.notify("No run to change: F5 trains.", severity="warning")
            return False
        for name in values:           # accepted: the field is not at fault any more
            if name in host.form.errors:
                host.form.show_value(name, format_value(name, getattr(new, name)))
        return True

    def _refused(self, name: str, text: str, reason: str) -> None:
        host = self.host
        if name in forms.FIELDS_BY_NAME:
            host.form.show_error(name, f"{reason} (not applied: the run goes on unchanged)")
        line = f"{label_of(name)} {text} refused: {reason}; the run goes on unchanged"
        host.epoch_log.write_event(line, "warning")
        host.notify(line, severity="warning")

    def step(self, whole_epoch: bool) -> None:
        """Paused: one step, or the rest of the epoch; the run stays paused after."""
        trainer = self.host.trainer
        if trainer.epoch_once() if whole_epoch else trainer.step_once():
            self.stepping = "epoch" if whole_epoch else "step"
        else:
            self.host.notify("One step / one epoch runs while a run is paused (F6 pauses).", severity="warning")

    # ------------------------------------------------------------------ the form during a run
    def form_edited(self, name: str | None) -> bool:
        """A field was edited during a run: say (once a field) whether Enter applies it now or
        it waits for the next run. False when no run is in progress (nothing said)."""
        if not self.host.trainer.in_progress or name is None:
            return False
        if name in LIVE_FIELDS:
            if name not in self._told:
                self._told.add(name)
                self.host.epoch_log.write_event(f"{label_of(name)}: Enter applies it to this run now")
        else:
            self._not_live(name)
        return True

    def _not_live(self, name: str, force: bool = False) -> None:
        if name in self._told and not force:
            return
        self._told.add(name)
        line = (f"{label_of(name)} cannot change while a run trains (only learning rate, momentum, weight"
                " decay and batch size can): it applies to the next run")
        self.host.epoch_log.write_event(line, "warning")
        self.host.notify(line, severity="warning")

    # ------------------------------------------------------------------ what came back
    def changed(self, e: ev.HyperparamsChanged, replayed: bool = False) -> None:
        """A change took effect: the log line, the chart's marker, the form's field.
        ``replayed``: one of a resumed run's earlier changes (its checkpoint's), shown again."""
        host = self.host
        host.epoch_log.write_event(e.describe())
        host.chart.add_mark(e.global_step, f"{MARK_NAMES.get(e.field, e.field)} {e.new:g}")
        if replayed:
            return
        self.event_at = time.perf_counter()
        if e.field in forms.FIELDS_BY_NAME:
            host.form.show_value(e.field, format_value(e.field, e.new))
        host.view.live_changed(e.field, e.new)
        host.call_after_refresh(self._shown)

    def _shown(self) -> None:
        self.shown_at = time.perf_counter()

    def paused_text(self, e: ev.Paused) -> str | None:
        """The log line of a pause that ends a single step or epoch (None: a plain pause)."""
        what, self.stepping = self.stepping, None
        if what is None:
            return None
        return f"one {what}: paused at epoch {e.epoch} step {e.step}"
