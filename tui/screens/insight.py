"""The Insight screen (F9): one tab per insight view (tui.insight.registered()), for the model
being trained (a frozen copy of its last completed epoch) or a loaded one.

The screen builds a ``ModelInput`` from the app's current model and gives it to the visible
view, as the contract in tui/insight/__init__.py says: ``unavailable()`` here on the UI
thread, ``compute()`` in a thread worker (one group, exclusive: a newer request cancels a
stale one; one BLAS thread, and never in the training process), ``show()`` back here. A view
is computed once per model version: switching back to a tab already drawn for this model
costs nothing. Views are mounted lazily: the first tab's view comes with the screen, and after
a view is drawn the next hidden view is mounted (one at a time, ``PREFETCH_S`` later), so a Tab pressed
a moment later only computes and draws; a Tab pressed sooner mounts its view first, then
starts its worker (a worker started during the mount would compete with it for the GIL).

While training, the app hands the screen its messages (``app_message``, via
tui.screens.forward): at an epoch end the screen takes the new epoch's weights. The preview's
predictions for that epoch (the runner's preview thread computes the probabilities of the
test images at each epoch end) are reused as ``ModelInput.probs`` when they cover the whole
test set, so the forward pass over 10,000 test images happens once per epoch end: the screen
waits for them (at most ``PROBS_WAIT_S``) before computing. A view's result carrying the
test-set probabilities it computed (``result.probs``) shares them with the other tabs too.
``ModelInput.extra``: "step_losses" (the run's training losses from its start, oldest first,
from the chart), "batch_size" (images per loss point), "diverged" -- what the Health view
reads. The Health view's one-key fixes (``ApplyFix``) are applied here: halving the lr is a live
change while a run trains, the others go to the settings form for the next run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane, Tabs
from textual.worker import get_current_worker

from engine import events as ev
from tui.insight import ModelInput, ViewSpec, registered
from tui.widgets.key_line import KeyLine

log = logging.getLogger(__name__)
internal = logging.getLogger("termnist.internal")

NO_MODEL = "No model yet: train (F5) or load (Ctrl+O) a model."
TRAINING_NOTE = "Training: the views show the model at the end of each epoch (the first is under way)."
SCREEN_NAME = "insight"
PREFETCH_S = 0.15        # after a view is drawn: mount the next hidden view (one at a time)
PROBS_WAIT_S = 3.0       # at an epoch end: how long to wait for the preview's probabilities


@dataclasses.dataclass(frozen=True)
class Current:
    """The model the views look at, and the key of its version (same key: same weights)."""

    input: ModelInput
    version: tuple[Any, ...]
    describe: str
    preview_label: str = ""       # the label the preview's predictions of these weights carry


def current_input(app: Any, diverged: bool = False) -> Current | None:
    """A ModelInput for the app's model (the last completed epoch of the run being trained,
    or the model the last run left, or a loaded one), or None when there is none."""
    model = app.current_model()
    if model is None:
        return None
    if hasattr(model, "checkpoint"):              # a session (running, or the last run's)
        ckpt = model.checkpoint(last_completed_epoch=True)
        ds = getattr(model, "dataset", None) or app.dataset
        epochs = int(ckpt.metadata.get("epochs_done", 0) or 0)
        if epochs == 0 and getattr(app, "training", False):
            return None                            # random weights: wait for the first epoch's end
        run = getattr(getattr(app, "trainer", None), "run_count", 0)
        label = f"epoch {epochs}" + (f" of run {run}" if run else "")
        preview_label = f"epoch {epochs}"
        version: tuple[Any, ...] = ("run", id(model), epochs, ckpt.metadata.get("global_step"))
        history = tuple(ckpt.metadata.get("history") or ())
    else:                                          # a loaded Checkpoint
        ckpt = model
        ds = app.dataset
        label = preview_label = "loaded model"
        version = ("loaded", id(model))
        history = tuple(ckpt.metadata.get("history") or ())
    if ds is None:
        return None
    probs = None
    p = getattr(getattr(app, "view", None), "predictions", None)
    if p is not None and p.label == preview_label and len(p.probabilities) == len(ds.x_test):
        probs = p.probabilities
    net = ckpt.model
    sizes = "-".join(str(s) for s in net.sizes)
    describe = f"{label}: {sizes} {net.activation} on {ds.title} ({len(ds.x_test):,} test images)"
    # for the Health view (tui/insight/health.py): the run's training losses from its start,
    # oldest first (the chart's curve: one per step until a long run makes the chart average
    # ``bucket`` steps a point), the images per point (batch size x bucket: the hints chunk the
    # losses by images), whether the run diverged. The whole run, not a recent window: "stays
    # at X% of where it started" means the run's start (a late window of a solved run is small
    # noise, once read as oscillation).
    extra: dict[str, Any] = {"batch_size": int(getattr(ckpt.config, "batch_size", 64)), "diverged": diverged}
    if version[0] == "run":
        try:
            series = app.chart.data.train_loss
            _steps, losses = series.points()
            extra["step_losses"] = [float(v) for v in losses]
            extra["batch_size"] *= max(int(series.bucket), 1)
        except Exception:  # noqa: BLE001 - no chart (another app): the views do without
            pass
    return Current(ModelInput(net, ds, history, label, probs, extra), version, describe, preview_label)


class InsightScreen(Screen[None]):
    """Tabs of insight views for the current model."""

    DEFAULT_CSS = """
    InsightScreen { layout: vertical; }
    InsightScreen #insight-title { height: 1; background: $panel; color: $text; text-style: bold; padding: 0 1; }
    InsightScreen TabbedContent { height: 1fr; }
    InsightScreen TabPane { padding: 0; height: 1fr; }
    InsightScreen .insight-note { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    /* ASCII-only terminal: no underline bar (box-drawing characters); the active tab reversed */
    InsightScreen.-ascii Underline { display: none; }
    InsightScreen.-ascii Tab.-active { text-style: reverse bold; }
    """
    BINDINGS = [
        Binding("escape,f9", "close", "Close", key_display="Esc"),
        Binding("tab", "next_tab(1)", "Next view", key_display="Tab"),
        Binding("shift+tab", "next_tab(-1)", "Prev view", show=False),
        Binding("ctrl+e", "export_svg", "SVG", key_display="^e"),
    ]

    def __init__(self, specs: tuple[ViewSpec, ...] | None = None, export_dir: str | Path | None = None) -> None:
        super().__init__()
        self.specs = registered() if specs is None else tuple(specs)
        self.export_dir = Path(export_dir) if export_dir is not None else Path.cwd()
        self.views: dict[str, Any] = {}
        self.current: Current | None = None
        self.shown: dict[str, tuple[Any, ...]] = {}      # view -> model version it shows
        self.computing: dict[str, tuple[Any, ...]] = {}  # view -> version being computed
        self.waiting_for: str | None = None              # preview label awaited for probs
        self._wait_timer: Any = None
        self.last_svg: Path | None = None
        self.computed = 0                                # compute() calls finished (tests)
        self.idle_note = NO_MODEL                        # what the views say with no model
        self.diverged = False                            # the run in view stopped on a NaN/inf loss
        self._mounting: dict[str, Any] = {}              # view -> its mount (AwaitMount), once asked

    # -- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("Insight", id="insight-title", markup=False)
        with TabbedContent(id="insight-tabs"):
            for spec in self.specs:
                with TabPane(spec.title, id=f"tab-{spec.name}"):
                    yield Static("", id=f"note-{spec.name}", classes="insight-note", markup=False)
                    # built now; the first tab's view comes with the screen, the others are
                    # mounted when their tab is first shown or ahead of it (``_prefetch``):
                    # mounting, styling and laying out all five views made F9 cost ~0.5 s
                    view = self.views[spec.name] = spec.build()
                    if spec is self.specs[0]:
                        yield view
        yield KeyLine()       # Footer's per-key widgets cost more than a view to restyle

    async def _update_when_mounted(self, name: str) -> None:
        mounting = self._mounting.get(name)
        if mounting is not None:
            await mounting
        if self.views[name].is_mounted:
            self.update_view(name)

    async def _prefetch(self) -> None:
        """After a view is drawn: mount the next view not mounted yet (one; the next one at
        the next call), so that a later Tab finds it mounted and only computes and draws."""
        for spec in self.specs:
            widget = self.views[spec.name]
            if spec.name not in self._mounting and not widget.is_attached:
                self._mount_view(spec.name)
                await self._mounting[spec.name]
                self.set_timer(PREFETCH_S, self._prefetch)
                return

    def _mount_view(self, name: str) -> None:
        """Mount view ``name`` in its tab, once (the tab is being shown)."""
        widget = self.views[name]
        if name not in self._mounting and not widget.is_attached:
            self._mounting[name] = self.query_one(f"#tab-{name}", TabPane).mount(widget)

    def on_mount(self) -> None:
        from tui.terminal import ascii_only

        self.set_class(ascii_only(self), "-ascii")
        if not self.specs:
            self.query_one("#insight-title", Static).update("Insight: no views installed")
            return
        self.reload()

    def _update_focus_styles(self, focused: Any = None, blurred: Any = None) -> None:
        """Restyle the focused and blurred widgets (and what they contain), not the screen.

        Textual restyles every node under the outermost one a ``:focus-within`` rule could
        match; the app's ``#body > *:focus-within`` (tui/app.tcss) ends in ``*``, so that is the
        whole screen, at each focus change (~40 ms of the Insight screen's opening on a busy
        2-core machine). No ``:focus-within`` rule applies on this screen (it has no #body)."""
        nodes: set[Any] = set()
        for widget in (focused, blurred):
            if widget is not None:
                nodes.update(widget.walk_children(with_self=True))
        if nodes:
            self.app.stylesheet.update_nodes(nodes, animate=True)

    # -- which view is visible ---------------------------------------------------------------------
    @property
    def active(self) -> str | None:
        tabs = self.query_one(TabbedContent)
        pane = tabs.active
        return pane[len("tab-"):] if pane and pane.startswith("tab-") else None

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        name = self.active
        if name is not None:
            self.update_view(name)
            self.focus_view(name)

    def focus_view(self, name: str) -> None:
        widget = self.views.get(name)
        if widget is not None and widget.is_mounted and widget.display and widget.focusable:
            widget.focus()

    def action_next_tab(self, step: int) -> None:
        if not self.specs:
            return
        names = [s.name for s in self.specs]
        now = self.active or names[0]
        self.query_one(TabbedContent).active = f"tab-{names[(names.index(now) + step) % len(names)]}"

    def action_close(self) -> None:
        self.workers.cancel_node(self)
        self._cancel_wait()
        self.computing.clear()
        if self.app.screen is self:
            self.app.pop_screen()

    def on_screen_resume(self) -> None:
        """Opened again: the model may have changed meanwhile (nothing to do if not)."""
        if self.specs and self.is_mounted:
            self.reload()

    # -- the model ---------------------------------------------------------------------------------
    def reload(self, probs: Any = None, label: str | None = None) -> None:
        """Take the app's current model and show it in the visible view. ``probs``: the
        preview's test-set probabilities labelled ``label`` ("epoch 3"), used if they are of
        these weights; if the weights are newer already, the wait goes on (that epoch's end
        is on its way, with its own probabilities)."""
        try:
            cur = current_input(self.app, self.diverged)
        except Exception as exc:  # noqa: BLE001 - a dead trainer child, a damaged checkpoint
            log.warning("insight: no model: %s", exc)
            cur = None
        if label is not None:
            if cur is None or cur.preview_label != label:
                return
            if cur.input.probs is None and len(probs) == len(cur.input.dataset.x_test):
                cur = dataclasses.replace(cur, input=dataclasses.replace(cur.input, probs=probs))
        self._cancel_wait()
        if cur is not None and self.current is not None and cur.version == self.current.version:
            if self.current.input.probs is None and cur.input.probs is not None:
                self.current = cur          # same weights, and now the probabilities
            return
        self.current = cur
        self.idle_note = TRAINING_NOTE if cur is None and getattr(self.app, "training", False) else NO_MODEL
        self.shown.clear()
        self.computing.clear()
        title = self.query_one("#insight-title", Static)
        title.update(f"Insight: {cur.describe}" if cur is not None else "Insight")
        for spec in self.specs:
            if cur is None:
                self._note(spec.name, self.idle_note)
                self.views[spec.name].display = False
        name = self.active
        if name is not None:
            self.update_view(name)

    def update_view(self, name: str) -> None:
        """Give view ``name`` the current model, unless it shows it already."""
        cur = self.current
        widget = self.views[name]
        if not widget.is_mounted:
            # mounted first, then computed: a worker started now would compete with the mount
            # for the GIL (a forward pass of many NumPy calls, each waiting its turn)
            self._mount_view(name)
            self.call_later(self._update_when_mounted, name)
            return
        if cur is None:
            self._note(name, self.idle_note)
            widget.display = False
            return
        if self.shown.get(name) == cur.version or self.computing.get(name) == cur.version:
            return
        try:
            why = widget.unavailable(cur.input)
        except Exception as exc:  # noqa: BLE001 - a view's bug: logged, said, the app goes on
            internal.error("insight view %s: unavailable() failed", name, exc_info=exc)
            why = f"this view failed ({exc})"
        if why is not None:
            self._note(name, f"Not available for this model: {why}.")
            widget.display = False
            self.shown[name] = cur.version
            return
        self._note(name, f"{cur.input.label}: computing...")
        self.computing[name] = cur.version
        inp, version = cur.input, cur.version
        # one group per view, exclusive: a newer model's request cancels the stale one
        self.run_worker(lambda: self._compute(name, widget, inp, version), name=f"insight-{name}",
                        group=f"insight-{name}", exclusive=True, thread=True, exit_on_error=False)

    def _compute(self, name: str, widget: Any, inp: ModelInput, version: tuple[Any, ...]) -> None:
        """Worker thread: one view's compute(), with one BLAS thread."""
        from threadpoolctl import threadpool_limits

        worker = get_current_worker()
        t0 = time.perf_counter()
        try:
            with threadpool_limits(1):
                result = widget.compute(inp)
        except Exception as exc:  # noqa: BLE001 - a view's bug: logged, said, the app goes on
            internal.error("insight view %s failed", name, exc_info=exc)
            if not worker.is_cancelled:
                self.app.call_from_thread(self._failed, name, version, exc)
            return
        log.debug("insight %s computed in %.3f s", name, time.perf_counter() - t0)
        if not worker.is_cancelled:
            # an async callback is awaited on the app's loop (Textual's stub types it badly)
            self.app.call_from_thread(self._show_mounted, name, widget, version, result)  # type: ignore[arg-type]
        else:
            self.app.call_from_thread(self._dropped, name, version)

    def _dropped(self, name: str, version: tuple[Any, ...]) -> None:
        if self.computing.get(name) == version:
            del self.computing[name]

    async def _show_mounted(self, name: str, widget: Any, version: tuple[Any, ...], result: Any) -> bool:
        """``_show`` once the view is mounted (its tab was opened a moment ago); True."""
        mounting = self._mounting.get(name)
        if mounting is not None and not widget.is_mounted:
            await mounting
        self._show(name, widget, version, result)
        return True

    def _show(self, name: str, widget: Any, version: tuple[Any, ...], result: Any) -> None:
        self._dropped(name, version)
        cur = self.current
        if cur is None or cur.version != version or not self.is_attached:
            return                               # stale: a newer model came meanwhile
        probs = getattr(result, "probs", None)
        if cur.input.probs is None and isinstance(probs, np.ndarray) \
                and probs.shape[:1] == (len(cur.input.dataset.x_test),):
            self.current = dataclasses.replace(cur, input=dataclasses.replace(cur.input, probs=probs))
        widget.show(result)
        widget.display = True
        self.shown[name] = version
        self.computed += 1
        self._note(name, "")
        self.set_timer(PREFETCH_S, self._prefetch)
        if self.active == name and (self.focused is None or isinstance(self.focused, Tabs)):
            self.focus_view(name)

    def _failed(self, name: str, version: tuple[Any, ...], exc: Exception) -> None:
        self._dropped(name, version)
        self._note(name, f"Could not compute this view: {exc}")
        self.views[name].display = False

    def _note(self, name: str, text: str) -> None:
        note = self.query_one(f"#note-{name}", Static)
        note.update(text)
        note.display = bool(text)

    # -- the app's messages (tui.screens.forward) ------------------------------------------------------
    def app_message(self, message: Any) -> None:
        """A message the app handled: an epoch end (take the new weights), the preview's
        predictions (the probabilities awaited), a run starting, a model loaded."""
        event = getattr(message, "event", None)
        update = getattr(message, "update", None)
        if isinstance(event, ev.EpochEnded):
            self._epoch_ended(event)
        elif isinstance(event, ev.RunStarted):
            self.diverged = False
            self._run_started(event)
        elif isinstance(event, ev.Diverged):
            self.diverged = True
        elif isinstance(event, ev.Finished) and self.waiting_for is None:
            self.reload()           # the end of a run (nothing awaited: most likely the same weights)
        elif update is not None and hasattr(update, "probabilities") and hasattr(update, "label"):
            if self.waiting_for is not None:
                self.reload(update.probabilities, update.label)
        elif hasattr(message, "loaded"):
            self.reload()

    def _run_started(self, event: ev.RunStarted) -> None:
        """A new run: nothing to show until its first epoch ends (its weights are random)."""
        self._cancel_wait()
        self.current = None
        self.shown.clear()
        self.computing.clear()
        self.query_one("#insight-title", Static).update("Insight: training")
        self.idle_note = TRAINING_NOTE
        for spec in self.specs:
            self._note(spec.name, self.idle_note)
            self.views[spec.name].display = False

    def _epoch_ended(self, event: ev.EpochEnded) -> None:
        ds = getattr(self.app, "dataset", None)
        limit = getattr(self.app, "preview_limit", 0)
        if ds is not None and limit >= len(ds.x_test) > 0:
            # the runner's preview thread is computing the whole test set's probabilities for
            # this epoch: wait for them rather than compute them twice
            self._cancel_wait()
            self.waiting_for = f"epoch {event.epoch}"
            self._wait_timer = self.set_timer(PROBS_WAIT_S, self.reload)
        else:
            self.reload()

    def _cancel_wait(self) -> None:
        self.waiting_for = None
        if self._wait_timer is not None:
            self._wait_timer.stop()
            self._wait_timer = None

    # -- the Health view's fixes ---------------------------------------------------------------------
    def on_apply_fix(self, message: Any) -> None:
        """A hint's one-key fix (tui.insight.health.ApplyFix): halving the lr of a live run is a
        live change (tui.live); otherwise the settings form changes for the next run
        (tui.insight.fixes). A notification says what changed."""
        from engine.insight.health import FIX_HALVE_LR
        from tui.insight.fixes import FixError, apply_fix_to_form

        message.stop()
        app: Any = self.app
        if message.code == FIX_HALVE_LR and app.trainer.live_session is not None:
            app.live.scale_lr(0.5)           # a live run: halved now (tui/live.py), at its next step
            self.notify("learning rate halved for this run, from its next step", title="Fix applied")
            return
        try:
            text = apply_fix_to_form(message.code, self.app.form)  # type: ignore[attr-defined]
        except (FixError, ValueError) as exc:
            self.notify(str(exc), title="Fix not applied", severity="warning")
            return
        self.notify(text, title="Fix applied")

    # -- exports --------------------------------------------------------------------------------------
    def action_export_svg(self) -> None:
        from engine.insight.export import ExportError, write_text

        name = self.active or "insight"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.export_dir / f"termnist-insight-{name}-{stamp}.svg"
        try:
            svg = self.app.export_screenshot(title=f"termnist insight: {name}")
            write_text(path, svg)
        except ExportError as exc:
            self.notify(str(exc), title="Screenshot failed", severity="error")
            return
        self.last_svg = path
        self.notify(str(path), title="Screen saved as SVG")


def open_insight(app: Any) -> None:
    """F9: the Insight screen; F9 on it closes it. The screen is built once per app and kept
    (installed): opening it again costs a resume, not a mount of every tab."""
    if isinstance(app.screen, InsightScreen):
        app.screen.action_close()
        return
    if any(isinstance(s, InsightScreen) for s in app.screen_stack):
        return                              # under a dialog of its own: that dialog first
    if not app.is_screen_installed(SCREEN_NAME):
        app.install_screen(InsightScreen(), SCREEN_NAME)
    app.push_screen(SCREEN_NAME)
