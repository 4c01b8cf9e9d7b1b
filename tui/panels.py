"""The panels of the main screen and which one a small terminal shows.

At 120x40 and larger every panel shows at once; below, one at a time, and F3 cycles through
them (the CSS classes ``-show-<name>`` on ``#body`` choose, tui/app.tcss). A new panel is a
``PanelSpec`` here (the app's ``compose`` yields its widgets) and its rule in app.tcss.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PanelSpec:
    name: str
    title: str
    focus: Callable[[Any], Any]          # app -> the widget that takes the keyboard
    widgets: Callable[[], list[Any]]     # the panel's widgets, bordered and titled, for compose
    prepare: Callable[[Any], None] | None = None   # app -> None: called as the panel is chosen


def _titled(widget: Any, title: str) -> Any:
    widget.border_title = title
    return widget


def _form() -> list[Any]:
    from engine.presets import PRESETS
    from tui.data_status import selectable_datasets
    from tui.widgets.hyperparameter_form import HyperparameterForm

    presets = {name: (p.summary, p.config) for name, p in PRESETS.items()}
    return [_titled(HyperparameterForm(presets, selectable_datasets(), id="form"), "Settings")]


def _training() -> list[Any]:
    from tui.widgets.epoch_log import EpochLog
    from tui.widgets.loss_chart import LossChart

    # the app's chart_title() sets the title with the legend in the terminal's character set
    return [_titled(LossChart(id="chart"), "Loss (F2: accuracy)"), _titled(EpochLog(id="epoch-log"), "Epoch log")]


def _digits() -> list[Any]:
    from tui.widgets.digit_preview import DigitPreview

    return [_titled(DigitPreview(id="preview"), "Test digits")]


def _runs() -> list[Any]:
    from tui.widgets.runs_panel import RunsPanel

    return [_titled(RunsPanel(id="runs"), "Runs: space select, s/S sort, ^f filter, n note, + star, r reload")]


def _sweep() -> list[Any]:
    from tui.widgets.sweep_panel import SweepPanel

    return [_titled(SweepPanel(id="sweep"), "Sweep (F5 start, F7 stop; table: p b m, o open, r resume)")]


def _form_field(app: Any) -> Any:
    fields = [w for w in app.form.query("Input, Select") if w.focusable]
    return fields[0] if fields else app.form


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("form", "Settings", _form_field, _form),
    PanelSpec("train", "Training", lambda app: app.epoch_log.log_widget, _training),
    PanelSpec("digits", "Digits", lambda app: app.preview, _digits),
    PanelSpec("runs", "Runs", lambda app: app.query_one("#runs").table, _runs,
              lambda app: app.query_one("#runs").prepare()),
    PanelSpec("sweep", "Sweep", lambda app: app.query_one("#sweep").first_field, _sweep),
)
NAMES = tuple(p.name for p in PANELS)


class PanelHost(Protocol):
    @property
    def form(self) -> Any: ...
    @property
    def screen(self) -> Any: ...

    def query_one(self, selector: str) -> Any: ...
    def call_after_refresh(self, callback: Any, *args: Any, **kwargs: Any) -> bool: ...


class Panels:
    def __init__(self, host: PanelHost) -> None:
        self.host = host
        self.current = PANELS[0].name

    def wide(self) -> bool:
        """Every panel shows (a large terminal)."""
        screen = self.host.screen
        return screen.has_class("-w-wide") and (screen.has_class("-h-tall") or screen.has_class("-h-huge"))

    def show(self, panel: str, focus: bool | None = None) -> None:
        """Which panel a small terminal shows. ``focus``: move the focus into it; by default
        only when the panel changes in a small terminal (a hidden Input must not keep keys)."""
        changed = panel != self.current
        self.current = panel
        host = self.host
        spec = next(p for p in PANELS if p.name == panel)
        if changed and spec.prepare is not None:
            spec.prepare(host)
        # one batch: each class change alone would restyle every widget in the body (~30 ms)
        host.query_one("#body").update_classes({f"-show-{p.name}": p.name == panel for p in PANELS})
        parts = [f"[{p.title}]" if p.name == panel else f" {p.title} " for p in PANELS]
        host.query_one("#panel-bar").update(" ".join(parts) + "   F3: next panel")
        if focus is None:
            focus = changed and not self.wide()
        if focus:
            host.call_after_refresh(lambda: _focus(spec.focus(host)))

    def next(self) -> None:
        self.show(NAMES[(NAMES.index(self.current) + 1) % len(NAMES)], focus=True)

    def focus_field(self, name: str) -> None:
        """Show the form with field ``name`` focused (a setting at fault)."""
        if not self.wide():
            self.show("form", focus=False)
        try:
            self.host.form.query_one(f"#field-{name}").focus()
        except Exception:  # noqa: BLE001 - the field may not exist in this form
            log.debug("no field %s to focus", name)


def _focus(widget: Any) -> None:
    if widget.focusable:
        widget.focus()
