"""The Sweep panel (F3 ``sweep``): a small form for the search space, the trials live, final
val acc against a chosen parameter, Optuna's parameter importances, the best trial one key away.

The panel draws; the app's presenter (tui/sweep_view.py) starts and stops the sweep and acts on
the best trial: the panel asks for that with ``Requested`` messages. The sweep's thread posts
``Update`` (an engine.sweep event as it is), ``Note`` and ``Ended`` to the panel. Its model is
tui.controllers.sweep.SweepTrials (no Textual).

Keys (bound here: they act while the focus is in the panel): F5 starts the sweep (in this panel
it is the sweep's F5, not the form's Train), F7 stops it; with the trials table focused
(Tab), ``p`` charts the next parameter, ``b`` loads the best trial's settings into the form,
``m`` loads its model, Enter loads the selected trial's settings.
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label, Select, Static
from textual_plotext import PlotextPlot

from engine.sweep.events import SweepDone, SweepEvent, SweepStarted, TrialFinished
from tui.controllers import sweep as sw
from tui.guard import guarded, internal
from tui.terminal import BOX_TO_ASCII, ascii_only
from tui.widgets.ascii import ascii_scrollbars, ascii_select_arrows

STATE_STYLE = {"running": "yellow", "complete": "green", "pruned": "dim", "failed": "red"}


def log_ticks(xs: tuple[float, ...], n: int = 4) -> list[float]:
    """Tick values for a log axis over ``xs`` (> 0): the decades inside the range when there
    are two or more, else ``n`` values evenly spaced in log."""
    lo, hi = math.log10(min(xs)), math.log10(max(xs))
    decades = [10.0 ** d for d in range(math.ceil(lo), math.floor(hi) + 1)]
    if len(decades) >= 2:
        return decades
    if hi - lo < 1e-12:
        return [min(xs)]
    return [10 ** (lo + (hi - lo) * i / (n - 1)) for i in range(n)]


class SweepChart(PlotextPlot):
    """Final val acc (%) of each finished trial against one parameter: complete trials as "o",
    pruned ones (their last val acc) as "x"; a log x axis where the range was log, the choices
    as ticks for a list."""

    DEFAULT_CSS = "SweepChart { min-height: 5; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.series: sw.ChartSeries | None = None
        self.redraws = 0

    def show(self, series: sw.ChartSeries | None) -> None:
        if series == self.series and self.redraws:
            return
        self.series = series
        self.replot()

    @property
    def empty(self) -> bool:
        s = self.series
        return s is None or not (s.complete[0] or s.pruned[0])

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        s = self.series
        self.redraws += 1
        if s is None or self.empty:
            self.refresh()
            return
        # a log axis by hand (log10 of x, ticks labelled with the values): plotext's own log
        # scale fails on some inputs
        fx = (lambda x: math.log10(x)) if s.log else (lambda x: x)
        # no plotext legend: drawn inside the plot it covered the top-left points; the title
        # names the markers when both kinds are shown
        if s.complete[0]:
            plt.scatter([fx(x) for x in s.complete[0]], list(s.complete[1]), marker="o", color="green")
        if s.pruned[0]:
            plt.scatter([fx(x) for x in s.pruned[0]], list(s.pruned[1]), marker="x", color="red")
            plt.title("o complete  x pruned")
        if s.log:
            ticks = log_ticks(s.complete[0] + s.pruned[0])
            plt.xticks([math.log10(t) for t in ticks], [f"{t:.3g}" for t in ticks])
        if s.labels:
            plt.xticks(list(range(1, len(s.labels) + 1)), list(s.labels))
            plt.xlim(0.5, len(s.labels) + 0.5)
        ys = s.complete[1] + s.pruned[1]
        lo, hi = min(ys), max(ys)
        pad = max(0.5, (hi - lo) * 0.1)
        plt.ylim(max(0.0, lo - pad), min(100.0, hi + pad))
        plt.xlabel(f"{s.param}{' (log)' if s.log else ''}")
        plt.ylabel("val acc %")
        self.refresh()

    def render(self) -> RenderResult:
        if self.empty:
            what = f" against {self.series.param}" if self.series is not None else ""
            return Text(f"final val acc{what}\n\nno finished trial yet", justify="center", style="dim")
        out = super().render()
        if isinstance(out, Text) and ascii_only(self):
            out.plain = out.plain.translate(BOX_TO_ASCII)
        return out


class SweepPanel(Vertical):
    """The Sweep panel; ``trials`` is what the sweep's events said (tui.controllers.sweep)."""

    DEFAULT_CSS = """
    SweepPanel { padding: 0 1; }
    SweepPanel .sweep-row { height: 1; }
    SweepPanel .sweep-label { width: 8; height: 1; }
    SweepPanel .sweep-row:focus-within > .sweep-label { text-style: bold reverse; }
    SweepPanel .sweep-param { width: 1fr; }
    SweepPanel #sweep-trials { width: 5; }
    SweepPanel #sweep-epochs { width: 4; }
    SweepPanel #sweep-workers { width: 3; }
    SweepPanel .sweep-gap { width: auto; height: 1; padding: 0 1; }
    SweepPanel #sweep-sampler { width: 10; }
    SweepPanel #sweep-pruner { width: 13; }
    SweepPanel .sweep-error { color: $error; text-style: bold; height: auto; padding-left: 8; }
    SweepPanel .sweep-error.-empty { display: none; }
    SweepPanel #sweep-status { height: 1; color: $text-muted; }
    SweepPanel #sweep-results { height: 1fr; }
    SweepPanel #sweep-table { width: 1fr; height: 1fr; }
    SweepPanel #sweep-side { width: 30; height: 1fr; padding-left: 1; }
    SweepPanel #sweep-chart { height: 1fr; }
    SweepPanel #sweep-importance { height: auto; max-height: 6; }
    /* 40 rows and more: the table on top, the chart and the importances side by side below */
    Screen.-h-tall SweepPanel #sweep-results, Screen.-h-huge SweepPanel #sweep-results { layout: vertical; }
    Screen.-h-tall SweepPanel #sweep-side, Screen.-h-huge SweepPanel #sweep-side {
        width: 1fr; height: 55%; layout: horizontal; padding-left: 0; }
    Screen.-h-tall SweepPanel #sweep-chart, Screen.-h-huge SweepPanel #sweep-chart { width: 1fr; height: 1fr; }
    Screen.-h-tall SweepPanel #sweep-importance, Screen.-h-huge SweepPanel #sweep-importance {
        width: 32; max-height: 100%; padding-left: 1; }
    """

    BINDINGS = [
        Binding("f5", "start", "Sweep"),
        Binding("f7", "stop", "Stop sweep"),
        Binding("p", "next_param", "Param"),
        Binding("b", "best_settings", "Best settings"),
        Binding("m", "best_model", "Best model"),
        Binding("o", "open_earlier", "Open sweep"),
        Binding("r", "resume", "Resume"),
    ]

    class Requested(Message):
        """The user asked for ``what``: "start", "stop", "settings" (of ``number``), "model",
        "open" (choose an earlier sweep), "resume" (the sweep shown)."""

        def __init__(self, what: str, number: int | None = None) -> None:
            super().__init__()
            self.what = what
            self.number = number

    class Update(Message):
        """A sweep event (engine.sweep.events), from the sweep's thread."""

        def __init__(self, event: SweepEvent) -> None:
            super().__init__()
            self.event = event

    class Note(Message):
        def __init__(self, text: str, severity: str = "information") -> None:
            super().__init__()
            self.text = text
            self.severity = severity

    class Ended(Message):
        """The sweep's thread is over; ``error``: why it could not run or ended early."""

        def __init__(self, error: str | None = None) -> None:
            super().__init__()
            self.error = error

    class ImportancesReady(Message):
        def __init__(self, sweep: object, values: dict[str, float]) -> None:
            super().__init__()
            self.sweep = sweep                   # the SweepStarted they are of (a newer sweep ignores them)
            self.values = values

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.trials = sw.SweepTrials()
        self.running = False
        self.stopping = False
        self.param = ""                          # the chart's parameter
        self.notes: list[str] = []               # the sweep's notes and errors (tests, the status)
        self._importance_busy = False
        self._importance_again = False
        self._best: int | None = None

    # -- composition ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        for i in range(sw.SPACE_FIELDS):
            with Horizontal(classes="sweep-row"):
                yield Label("Search" if i == 0 else "", classes="sweep-label")
                yield Input(sw.DEFAULT_SPACE[i], placeholder="e.g. momentum=0.8:0.99 or hidden=64,128-64",
                            compact=True, classes="sweep-param", id=f"sweep-param-{i}", select_on_focus=False)
            yield Static("", id=f"sweep-error-param-{i}", classes="sweep-error -empty", markup=False)
        with Horizontal(classes="sweep-row"):
            yield Label("Trials", classes="sweep-label")
            yield Input(sw.DEFAULTS["trials"], compact=True, classes="sweep-small", id="sweep-trials")
            yield Label("Epochs", classes="sweep-gap")
            yield Input(sw.DEFAULTS["epochs"], compact=True, classes="sweep-small", id="sweep-epochs")
            yield Label("Sampler", classes="sweep-gap")
            yield Select([(s, s) for s in ("tpe", "random", "grid")], value=sw.DEFAULTS["sampler"],
                         allow_blank=False, compact=True, id="sweep-sampler")
            yield Label("Pruner", classes="sweep-gap")
            yield Select([(s, s) for s in ("median", "hyperband", "none")], value=sw.DEFAULTS["pruner"],
                         allow_blank=False, compact=True, id="sweep-pruner")
            yield Label("Workers", classes="sweep-gap")
            yield Input(sw.DEFAULTS["workers"], compact=True, classes="sweep-small", id="sweep-workers")
        yield Static("", id="sweep-error-settings", classes="sweep-error -empty", markup=False)
        yield Static("F5: sweep over the form's settings (Tab: the trials table)", id="sweep-status",
                     markup=False)
        with Horizontal(id="sweep-results"):
            table: DataTable[Any] = DataTable(id="sweep-table", cursor_type="row", zebra_stripes=False)
            yield table
            with Vertical(id="sweep-side"):
                yield SweepChart(id="sweep-chart")
                yield Static("", id="sweep-importance", markup=False)

    def on_mount(self) -> None:
        if ascii_only(self):                     # an ASCII-only terminal (tui.terminal)
            ascii_scrollbars(self.table)
            ascii_select_arrows(self)
        self.table.add_column("#", key="n", width=3)
        self.table.add_column("state", key="state", width=8)
        self.table.add_column("params", key="params")
        self.table.add_column("val acc", key="acc")
        self._show_importances()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#sweep-table", DataTable)

    @property
    def chart(self) -> SweepChart:
        return self.query_one("#sweep-chart", SweepChart)

    @property
    def first_field(self) -> Input:
        return self.query_one("#sweep-param-0", Input)

    # -- the form ---------------------------------------------------------------------------------
    def space_texts(self) -> list[str]:
        return [self.query_one(f"#sweep-param-{i}", Input).value for i in range(sw.SPACE_FIELDS)]

    def set_space(self, texts: list[str]) -> None:
        for i in range(sw.SPACE_FIELDS):
            self.query_one(f"#sweep-param-{i}", Input).value = texts[i] if i < len(texts) else ""

    def values(self) -> dict[str, str]:
        out = {k: self.query_one(f"#sweep-{k}", Input).value for k in ("trials", "epochs", "workers")}
        for k in ("sampler", "pruner"):
            value = self.query_one(f"#sweep-{k}", Select).value
            out[k] = "" if value is Select.NULL else str(value)
        return out

    def set_values(self, values: dict[str, str]) -> None:
        for k, v in values.items():
            widget = self.query_one(f"#sweep-{k}")
            widget.value = v  # type: ignore[attr-defined]

    def read_spec(self, base: Any, **kwargs: Any) -> Any:
        """The sweep the fields describe over ``base``, or None: the reason is shown next to the
        field at fault, which gets the focus."""
        self.show_error(None)
        try:
            return sw.build_spec(self.space_texts(), self.values(), base, **kwargs)
        except sw.SweepFormError as exc:
            self.show_error(exc.field, exc.reason)
            return None

    def show_error(self, field: str | None, reason: str = "") -> None:
        """Show ``reason`` next to ``field`` (None: clear every error)."""
        boxes = {f"param-{i}": f"#sweep-error-param-{i}" for i in range(sw.SPACE_FIELDS)}
        for box in (*boxes.values(), "#sweep-error-settings"):
            self.query_one(box, Static).update("")
            self.query_one(box, Static).add_class("-empty")
        if field is None:
            return
        shown = self.query_one(boxes.get(field, "#sweep-error-settings"), Static)
        shown.update(reason if field in boxes or field == "settings" else f"{field}: {reason}")
        shown.remove_class("-empty")
        target = f"#sweep-{field}" if field != "settings" else None
        if target is not None:
            try:
                self.query_one(target).focus()
            except Exception:  # noqa: BLE001 - no such field to focus
                pass

    @on(Input.Changed)
    def _edited(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("sweep-param-"):
            box = self.query_one(f"#sweep-error-{event.input.id.removeprefix('sweep-')}", Static)
            box.update("")
            box.add_class("-empty")

    # -- the sweep's life ---------------------------------------------------------------------------
    def starting(self, spec: Any) -> None:
        """The presenter started ``spec``'s thread."""
        self.trials.clear()
        self._best = None
        self.table.clear()
        self._running_now(f"{spec.name}: starting {spec.trials} trial(s), {spec.workers} worker(s)... F7 stops")

    def resuming(self, name: str, workers: int) -> None:
        """The presenter started resuming sweep ``name``: the rows shown stay."""
        self._running_now(f"{name}: resuming with its stored settings, {workers} worker(s)... F7 stops")

    def _running_now(self, status: str) -> None:
        self.running, self.stopping = True, False
        self.notes.clear()
        self._set_status(status)
        self.table.focus()
        self.refresh_bindings()

    def show_earlier(self, started: SweepStarted, finished: list[Any]) -> None:
        """An earlier sweep (engine.sweep.earlier_sweep): its trials in the table, the chart, the
        importances; ``r`` resumes it when it has trials left."""
        for e in (started, *finished):
            self.show_event(e)             # the status says "(earlier)": _show_status
        self._want_importances()
        self.table.focus()
        self.refresh_bindings()

    def stopping_now(self) -> None:
        self.stopping = True
        self._set_status("stopping: the running trials end after their batch (the study stays resumable)")
        self.refresh_bindings()

    @on(Update)
    @guarded
    def _on_update(self, message: Update) -> None:
        message.stop()
        self.show_event(message.event)

    @on(Note)
    @guarded
    def _on_note(self, message: Note) -> None:
        message.stop()
        self.notes.append(message.text)
        self.app.notify(message.text, title="Sweep", severity=message.severity, markup=False)  # type: ignore[arg-type]

    @on(Ended)
    @guarded
    def _on_ended(self, message: Ended) -> None:
        message.stop()
        self.running = self.stopping = False
        if message.error:
            self.notes.append(message.error)
            self.app.notify(message.error, title="Sweep", severity="error", timeout=10, markup=False)
            self._set_status(message.error)
        elif self.trials.done is None:
            self._set_status("the sweep ended before it started")
        self.refresh_bindings()

    def show_event(self, e: SweepEvent) -> None:
        """One sweep event onto the table, the chart, the status (also the tests' way in)."""
        row = self.trials.apply(e)
        if isinstance(e, SweepStarted) and not (e.resumed and self.trials.rows):
            self.table.clear()
            self._best = None
            if self.param not in self.trials.param_names:
                self.param = self.trials.param_names[0] if self.trials.param_names else ""
            self._show_importances()
        if row is not None:
            self._show_row(row)
        if isinstance(e, TrialFinished):
            self._mark_best()
            if e.state == "complete":
                self._want_importances()
        if isinstance(e, SweepDone):
            self._mark_best()
            self._show_importances()
        self.chart.show(self.trials.series(self.param) if self.param else None)
        self._show_status()
        self.refresh_bindings()

    # -- drawing ------------------------------------------------------------------------------------
    def _cells(self, row: sw.TrialRow) -> tuple[Any, ...]:
        mark = "*" if row.number == self._best else ""
        state = Text(row.state, style=STATE_STYLE.get(row.state, ""))
        return (f"{row.number}{mark}", state, sw.format_params(row.params),
                sw.format_accs(row.accs, ascii_only(self)))

    def _show_row(self, row: sw.TrialRow) -> None:
        table = self.table
        key = str(row.number)
        cells = self._cells(row)
        if key in table.rows:
            for col, value in zip(("n", "state", "params", "acc"), cells, strict=True):
                table.update_cell(key, col, value, update_width=True)
        else:
            table.add_row(*cells, key=key)

    def _mark_best(self) -> None:
        best = self.trials.best()
        number = best.number if best is not None else None
        if number == self._best:
            return
        old, self._best = self._best, number
        for n in (old, number):
            if n is not None and n in self.trials.rows and str(n) in self.table.rows:
                self.table.update_cell(str(n), "n", self._cells(self.trials.rows[n])[0])

    def _set_status(self, text: str) -> None:
        self.query_one("#sweep-status", Static).update(text)

    def _show_status(self) -> None:
        t = self.trials
        if t.started is None:
            return
        c = t.counts()
        finished = c["complete"] + c["pruned"] + c["failed"]
        target = f"/{t.started.trials}" if t.started.trials is not None else ""
        best = t.best()
        best_text = f" | best #{best.number} {best.value * 100:.1f}%" if best is not None and best.value is not None \
            else ""
        if t.done is None and t.started.workers == 0:      # an earlier sweep, opened (o): nothing runs
            left = " | r resumes" if t.resumable else ""
            self._set_status(f"{t.started.name} (earlier): {c['complete']} complete, {c['pruned']} pruned,"
                             f" {c['failed']} failed{best_text}{left}")
        elif t.done is not None:
            how = "stopped" if t.done.interrupted else "done"
            keys = " (b, m)" if best is not None else ""
            self._set_status(f"{how} in {t.done.seconds:.0f}s: {c['complete']} complete, {c['pruned']} pruned,"
                             f" {c['failed']} failed{best_text}{keys}")
        else:
            head = "stopping" if self.stopping else t.started.name
            self._set_status(f"{head}: {finished}{target} done ({c['complete']} ok, {c['pruned']} pruned,"
                             f" {c['failed']} failed), {c['running']} running{best_text} | F7 stops")

    def _show_importances(self) -> None:
        box = self.query_one("#sweep-importance", Static)
        bars = sw.importance_bars(self.trials.importances, width=max(20, box.size.width or 34),
                                  ascii_only=ascii_only(self))
        if bars:
            box.update("importance (Optuna)\n" + "\n".join(bars))
        else:
            box.update("importance: after 2 complete trials")

    # -- importances, off the UI thread ---------------------------------------------------------------
    def _want_importances(self) -> None:
        if len(self.trials.complete()) < 2 or self.trials.started is None:
            return
        if self._importance_busy:
            self._importance_again = True
            return
        self._importance_busy = True
        self._importance_again = False
        space = self.trials.started.space
        rows = [sw.TrialRow(r.number, dict(r.params), r.state, [], r.value) for r in self.trials.complete()]
        sweep = self.trials.started

        def work() -> None:
            try:
                values = sw.importances_of(space, rows)
            except Exception as exc:  # noqa: BLE001 - a bonus: logged, never fatal
                internal.warning("importances failed: %s", exc)
                values = {}
            self.post_message(self.ImportancesReady(sweep, values))

        self.run_worker(work, group="sweep-importance", thread=True, exit_on_error=False)

    @on(ImportancesReady)
    @guarded
    def _importances_ready(self, message: ImportancesReady) -> None:
        message.stop()
        self._importance_busy = False
        if message.sweep is not self.trials.started:     # of a sweep since replaced
            self._importance_again = False
            self._want_importances()
            return
        final = self.trials.done is not None and bool(self.trials.done.importances)   # the sweep's own win
        if not final and (message.values or not self.trials.importances):
            self.trials.importances = dict(message.values)
        self._show_importances()
        if self._importance_again:
            self._want_importances()

    # -- keys ------------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        typing = isinstance(self.app.focused, Input)
        if action == "stop":
            return self.running and not self.stopping     # else F7 is the app's (stop training)
        if action == "next_param":
            return not typing and len(self.trials.param_names) > 1
        if action in ("best_settings", "best_model"):
            return not typing and self.trials.best() is not None
        if action == "open_earlier":
            return not typing and not self.running
        if action == "resume":
            return not typing and not self.running and self.trials.resumable
        return True

    def action_start(self) -> None:
        self.post_message(self.Requested("start"))

    def action_stop(self) -> None:
        self.post_message(self.Requested("stop"))

    def action_open_earlier(self) -> None:
        self.post_message(self.Requested("open"))

    def action_resume(self) -> None:
        self.post_message(self.Requested("resume"))

    def action_next_param(self) -> None:
        names = self.trials.param_names
        if names:
            i = names.index(self.param) if self.param in names else -1
            self.param = names[(i + 1) % len(names)]
            self.chart.show(self.trials.series(self.param))

    def action_best_settings(self) -> None:
        best = self.trials.best()
        if best is not None:
            self.post_message(self.Requested("settings", best.number))

    def action_best_model(self) -> None:
        best = self.trials.best()
        if best is not None:
            self.post_message(self.Requested("model", best.number))

    @on(DataTable.RowSelected, "#sweep-table")
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        """Enter on a trial: its settings into the form."""
        event.stop()
        key = event.row_key.value
        if key is not None and key.isdigit() and int(key) in self.trials.rows:
            self.post_message(self.Requested("settings", int(key)))
