"""The app's keys: what each binds, and when it can act (the footer shows only those).

A focused Input owns many ctrl chords (ctrl+a/e/d/k/u/w/x/c/v), tmux owns ctrl+b; the keys a
focused Input would otherwise take are bound with priority. Screens a key opens add their
own bindings from tui.screens.SCREENS.
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding

from tui.screens import SCREENS

BINDINGS: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
    Binding("f5", "train", "Train"),
    Binding("f6", "pause", "Pause"),
    Binding("f6", "resume", "Resume"),
    Binding("f7", "stop", "Stop"),
    Binding("ctrl+s", "save", "Save", priority=True),
    Binding("ctrl+o", "load", "Load", priority=True),
    Binding("f2", "toggle_chart", "Chart", show=False),    # the chart's title says "F2: accuracy"
    # Live changes (tui/live.py): with priority, so they act while a form Input has the focus
    # (no field takes "*" or "/"); enabled only while a run is in progress -- otherwise the
    # keys go to the focused widget as usual. Plain ASCII and ctrl chords: through tmux and SSH.
    Binding("asterisk", "lr_up", "lr*2", priority=True),
    Binding("slash", "lr_down", "lr/2", priority=True),
    Binding("ctrl+n", "step_once", "Step", priority=True),
    Binding("ctrl+t", "epoch_once", "Epoch", priority=True),
    Binding("f3", "next_panel", "Panel"),
    *(spec.binding() for spec in SCREENS),
    Binding("ctrl+q", "quit", "Quit", priority=True),
    # Ctrl+C quits too (Textual's default only tells you to press ctrl+q; inputs would take
    # it as "copy"): the reflex of every terminal user, with the same confirmation.
    Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
]


def can_act(app: Any, action: str) -> bool:
    """Whether ``action`` can act now (App.check_action: hidden from the footer otherwise)."""
    run = app.trainer
    live = run.training and not run.finished          # a run that has not reported its end
    enabled = {
        "train": not run.training and "load" not in app.busy,
        "pause": live and run.session is not None and not run.paused,
        "resume": live and run.paused,
        "stop": live,
        "lr_up": live and run.live_session is not None,
        "lr_down": live and run.live_session is not None,
        "step_once": live and run.paused and run.live_session is not None,
        "epoch_once": live and run.paused and run.live_session is not None,
        "save": app.current_model() is not None and "save" not in app.busy,
        "load": not run.training and "load" not in app.busy,
    }
    return enabled.get(action, True)
