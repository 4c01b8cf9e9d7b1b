"""Screens: help, the data panel, dialogs, digit detail -- and the registry of the screens a
key opens.

A screen that a key opens from anywhere registers here (``SCREENS``): the app binds its keys,
shows it in the footer and help, and opens it with ``open(app)``; the app itself does not
change. ``open`` gets the app and uses only its public attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding


@dataclass(frozen=True)
class ScreenSpec:
    name: str                          # action "open_screen('<name>')"
    keys: str                          # Textual key list, e.g. "ctrl+d,f4"
    description: str                   # footer label
    open: Callable[[Any], None]        # open(app)
    key_display: str | None = None
    priority: bool = False             # keys a focused Input would otherwise take
    modules: tuple[str, ...] = ()      # what ``open`` imports the first time: imported after
                                       # startup in a worker (tui.heap), not on the first key

    def binding(self) -> Binding:
        return Binding(self.keys, f"open_screen('{self.name}')", self.description,
                       key_display=self.key_display, priority=self.priority)


def _open_data(app: Any) -> None:
    app.data_panel.open()


def _open_help(app: Any) -> None:
    from tui.screens.help import HelpScreen

    if isinstance(app.screen, HelpScreen):
        return
    ds = app.dataset
    extra = f"Dataset now: {ds.title}, {'bundled sample' if ds.is_sample else ds.source}." if ds is not None else ""
    app.push_screen(HelpScreen(extra))


def _open_draw(app: Any) -> None:
    from tui.screens.draw import DrawScreen

    model = app.current_model()
    if model is None:
        app.notify("Draw a digit needs a model: train one (F5) or load one (Ctrl+O).", severity="warning")
        return
    if hasattr(model, "checkpoint"):      # a session: a copy of its last completed epoch's weights
        model = model.checkpoint(last_completed_epoch=True)
    ds = app.dataset
    names = tuple(ds.class_names) if ds is not None else tuple(str(i) for i in range(10))
    app.push_screen(DrawScreen(model.model, names, ascii_only=getattr(app, "ascii_only", False)))


def _open_insight(app: Any) -> None:
    from tui.screens.insight import open_insight

    open_insight(app)


def forward(app: Any, message: Any) -> None:
    """Hand a message the app handled (a training event, the preview's predictions, a loaded
    model) to every open screen that follows the model (``app_message(message)``): the Insight
    screen refreshes at epoch ends this way, and the app knows nothing of it."""
    for screen in list(app.screen_stack):
        listen = getattr(screen, "app_message", None)
        if listen is not None:
            listen(message)


def _open_race(app: Any) -> None:
    from tui.screens.race import RaceScreen

    if not isinstance(app.screen, RaceScreen):
        app.push_screen(RaceScreen())


def _open_lr_find(app: Any) -> None:
    from tui.screens.lr_find import LRFindScreen

    if not isinstance(app.screen, LRFindScreen):
        app.push_screen(LRFindScreen())


def _insight_modules() -> tuple[str, ...]:
    from tui.insight import VIEW_MODULES

    # each view's module, and the engine's (imported inside compute(), in the view's worker)
    return ("tui.screens.insight", "engine.insight.export",
            *(f"{pkg}.{m}" for m in VIEW_MODULES for pkg in ("tui.insight", "engine.insight")))


def warm_modules() -> tuple[str, ...]:
    """Every module the screens import when first opened (tui.heap.warm imports them)."""
    return tuple(dict.fromkeys(m for spec in SCREENS for m in spec.modules))


SCREENS: tuple[ScreenSpec, ...] = (
    # Data: where the dataset was found, download it, or choose a directory. Priority: a
    # focused Input would take ctrl+d as "delete right" (Delete does that too).
    ScreenSpec("data", "ctrl+d,f4", "Data", _open_data, key_display="^d", priority=True),
    ScreenSpec("help", "f1,question_mark", "Help", _open_help, key_display="F1",
               modules=("tui.screens.help",)),
    ScreenSpec("draw", "f8", "Draw", _open_draw, modules=("tui.screens.draw",)),
    ScreenSpec("insight", "f9", "Insight", _open_insight, modules=_insight_modules()),
    # Race and LR finder: priority, so a focused Input (the form's) cannot take ctrl+r/ctrl+l
    ScreenSpec("race", "ctrl+r", "Race", _open_race, key_display="^r", priority=True,
               modules=("tui.screens.race",)),
    ScreenSpec("lr_find", "ctrl+l", "LR find", _open_lr_find, key_display="^l", priority=True,
               modules=("tui.screens.lr_find",)),
)
