"""The Runs panel (F3): every recorded run in a table, sortable and filtered; selected runs'
validation curves overlaid on one chart; a run's note and star; the diff of two runs.

The store is read in thread workers (tui.controllers.runs.RunHistory); what needs the rest of
the app (settings into the form, a model loaded, training on from a checkpoint) is asked with a
``RunsPanel.Requested`` message: the panel never reaches into a sibling.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.message import Message
from textual.widgets import DataTable, Input, Static
from textual_plotext import PlotextPlot

from tui.controllers import runs as rc
from tui.terminal import BOX_TO_ASCII, ascii_only

log = logging.getLogger(__name__)

COLOURS = ("cyan", "orange", "green", "magenta", "red", "blue", "yellow", "white")
REFRESH_EVENTS = ("RunStarted", "EpochEnded", "Finished", "Failed")
PRELOAD_S = 2.0         # the first read, this long after the app starts (off its startup)
FIRST_ROWS = 60         # rows built before the table is first drawn (a tall terminal's screenful) ...
MORE_ROWS = 250         # ... then this many after each refresh


class RunsChart(PlotextPlot):
    """Validation curves of the selected runs, overlaid, each in its colour, with a legend."""

    DEFAULT_CSS = "RunsChart { height: 10; min-height: 6; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.mode = "loss"
        self.series: list[tuple[str, list[int], list[float]]] = []
        self.drawn_labels: list[str] = []

    def show_series(self, series: list[tuple[str, list[int], list[float]]], mode: str) -> None:
        self.series, self.mode = series, mode
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        marker = "+" if ascii_only(self) else "braille"
        hi = 1
        for i, (label, xs, ys) in enumerate(self.series):
            colour = COLOURS[i % len(COLOURS)]
            if xs:
                plt.plot(xs, ys, label=label, marker=marker, color=colour)
                plt.scatter(xs, ys, marker="o" if len(xs) < 30 else marker, color=colour)
                hi = max(hi, *xs)
        plt.xlim(0, hi)
        plt.xlabel("epoch")
        plt.ylabel("val loss" if self.mode == "loss" else "val acc %")
        if self.mode == "accuracy":
            ys_all = [y for _, _, ys in self.series for y in ys]
            if ys_all:
                lo = min(ys_all)
                plt.ylim(max(0.0, lo - max(1.0, (100.0 - lo) * 0.1)), 100.0)
        self.drawn_labels = [label for label, xs, _ in self.series if xs]
        self.refresh()

    def render(self) -> RenderResult:
        if not any(xs for _, xs, _ in self.series):
            return Text("the selected runs have no validation figures yet", justify="center", style="dim")
        out = super().render()
        if isinstance(out, Text) and ascii_only(self):
            out.plain = out.plain.translate(BOX_TO_ASCII)
        return out


class RunsTable(DataTable[Any]):
    """The table of runs (its header: click to sort, again to reverse).

    Every row is one line of plain cells, so the column widths are the cells' lengths: the
    DataTable's own pass renders and measures each cell through Rich (~13,000 cells for 1,000
    runs, most of the panel's opening time); this one counts characters."""

    def _update_dimensions(self, new_rows: Any) -> None:
        rows = [self.rows.get(k) for k in new_rows]
        if any(r is not None and (r.auto_height or r.label is not None) for r in rows):
            super()._update_dimensions(new_rows)
            return
        columns = self.ordered_columns
        for key in new_rows:
            data = self._data.get(key)
            if data is None:
                continue
            for column in columns:
                value = data.get(column.key)
                width = cell_len(value.plain if isinstance(value, Text) else str(value or ""))
                if width > column.content_width:
                    column.content_width = width
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(sum(c.get_render_width(self) for c in self.columns.values())
                                 + self._row_label_column_width, self._total_row_height + header)


class RunsPanel(Vertical):
    """Every run of the run store. Keys (while the panel has the focus) are in BINDINGS."""

    DEFAULT_CSS = """
    RunsPanel #runs-top { height: 1; }
    RunsPanel #runs-filter { width: 24; height: 1; border: none; padding: 0 1; }
    RunsPanel #runs-status { width: 1fr; height: 1; color: $text-muted; padding-left: 1; }
    RunsPanel #runs-status.-error { color: $error; }
    RunsPanel RunsTable { height: 1fr; scrollbar-size-vertical: 1; }
    RunsPanel RunsChart { display: none; }
    RunsPanel.-overlay RunsChart { display: block; }
    """

    BINDINGS = [
        Binding("space", "toggle_select", "Select"),
        Binding("f2", "toggle_mode", "Loss/acc"),
        Binding("d", "diff", "Diff"),
        Binding("f", "load_settings", "To form"),
        Binding("m", "load_model", "Model"),
        Binding("t", "train_again", "Train on"),
        Binding("x,delete", "delete", "Delete"),
        # the panel's title names these (and F1 lists every key): a shorter footer restyles faster
        Binding("s", "sort_next", "Sort", show=False),
        Binding("S", "sort_reverse", "Reverse", show=False),
        # not "/" and "*": the live-change keys (lr/2, lr*2) take those, with priority, while a run trains
        Binding("ctrl+f", "filter", "Filter", show=False),
        Binding("n", "note", "Note", show=False),
        Binding("plus", "star", "Star", show=False),
        Binding("r", "refresh", "Reload", show=False),
    ]

    class Requested(Message):
        """Something only the app can do with a run: ``what`` is "settings" (into the form),
        "model" (load its checkpoint) or "train" (train on from its checkpoint)."""

        def __init__(self, what: str, run: Any) -> None:
            super().__init__()
            self.what = what
            self.run = run

    def __init__(self, *, id: str | None = None, history: rc.RunHistory | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.history = history or rc.RunHistory()
        self.runs: list[Any] = []               # every run, as last read
        self.shown: list[Any] = []              # sorted and filtered: the table's rows
        self.index: dict[str, str] = {}         # id -> search text
        self.selected: list[str] = []           # ids, in the order they were selected
        self.sort_column = "date"
        self.descending = True
        self.filter_text = ""
        self.mode = "loss"
        self.loaded = False                     # read at least once
        self.stale = True                       # the store changed since (or never read)
        self.loads = 0                          # completed reads (tests, benchmark)
        self.error: str | None = None
        self._epochs: dict[str, list[dict[str, Any]]] = {}    # finished runs' epochs, cached
        self._building = 0                      # the table's current build (rows come in chunks)
        self._cursor_to: str | None = None      # a run whose row is still to come: the cursor goes there
        self._table_dirty = False               # a read not in the table yet (the panel was hidden)
        self._signature: Any = None             # what the table shows, to skip a read that changed nothing

    def compose(self) -> ComposeResult:
        with Horizontal(id="runs-top"):
            # focusable only through ctrl+f (or a click): never where the focus falls by itself
            filt = Input(placeholder="^f filter", id="runs-filter", compact=True)
            filt.can_focus = False
            yield filt
            yield Static("", id="runs-status", markup=False)
        # no padding: each cell ends in one space instead of two around it (80 columns fit)
        table: RunsTable = RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True, cell_padding=0)
        yield table
        yield RunsChart(id="runs-chart")

    def on_mount(self) -> None:
        table = self.table
        table.add_column("   ", key="mark")
        for col in rc.COLUMNS:
            table.add_column(col.title + "  ", key=col.key)
        table.add_column("note", key="note")
        self._status()
        self.on_mount_preload()

    @property
    def table(self) -> RunsTable:
        return self.query_one("#runs-table", RunsTable)

    @property
    def chart(self) -> RunsChart:
        return self.query_one("#runs-chart", RunsChart)

    def focus_target(self) -> Any:
        return self.table

    # ------------------------------------------------------------------ reading the store
    # The store is read in a thread worker: once a little after the app starts (PRELOAD_S), then
    # each time the panel is chosen (F3), at this app's run events while it shows, and on its
    # refresh key. Choosing the panel draws the last read at once; a newer read replaces it
    # when it arrives, and only when something in it changed.
    def on_mount_preload(self) -> None:
        self.set_timer(PRELOAD_S, self._preload)

    def _preload(self) -> None:
        if not self.loaded:
            self.reload()

    def prepare(self) -> None:
        """The panel is being chosen (its F3 key): show the last read now, read again."""
        if self._table_dirty:
            self.apply()
        self.reload()

    def on_show(self, event: events.Show) -> None:
        # The panel's F3 asks for the table's focus right after a refresh, which in a real
        # terminal can come before the table is displayed (then not focusable): the focus would
        # fall to the filter, and space would type into it. Once shown, the table takes it.
        self.call_after_refresh(self._focus_table)
        if self._table_dirty:
            self.apply()
        if self.stale:
            self.reload()

    def _focus_table(self) -> None:
        table = self.table
        if self.shows and self.app.focused is not table and table.focusable:
            table.focus()

    def run_event(self, event: Any) -> None:
        """An engine event of this app's run: the store changed at a start, epoch end or end."""
        if type(event).__name__ in REFRESH_EVENTS:
            self.stale = True
            if self.shows:
                self.reload()

    @property
    def shows(self) -> bool:
        """On screen (its panel chosen, or every panel showing)."""
        try:
            return bool(self.display) and self.region.area > 0
        except Exception:  # noqa: BLE001
            return False

    def reload(self) -> None:
        """Read the store again (a thread worker; the table updates when it is read)."""
        self.stale = False
        history = self.history
        app = self.app

        def work() -> None:
            try:
                runs = history.read()
                index: dict[str, str] = {}      # the filter's search texts: built when it is used
                error = history.error
            except Exception as exc:  # noqa: BLE001 - StoreError: one line naming the file
                runs, index, error = [], {}, history.error or f"run store: {exc}"
            try:
                app.call_from_thread(self._loaded, runs, index, error)
            except RuntimeError:        # the app closed meanwhile
                pass

        self.run_worker(work, group="runs-read", exclusive=True, exit_on_error=False, thread=True)

    def _loaded(self, runs: list[Any], index: dict[str, str], error: str | None) -> None:
        self.loaded = True
        self.loads += 1
        signature = (error, [_signature(r) for r in runs])
        if signature == self._signature:
            return                               # nothing changed: the table stays as it is
        self._signature = signature
        self.runs, self.index, self.error = runs, index, error
        ids = {r.id for r in runs}
        self.selected = [i for i in self.selected if i in ids]
        self._epochs = {k: v for k, v in self._epochs.items() if k in ids}
        if self.shows:
            self.apply()
            self.update_chart()
        else:
            self._table_dirty = True             # built when the panel is chosen

    # ------------------------------------------------------------------ the table
    def apply(self) -> None:
        """Sort and filter ``runs`` into the table, keeping the cursor on its run."""
        was_dirty, self._table_dirty = self._table_dirty, False
        table = self.table
        keep = self.cursor_run()
        ordered = rc.sort_runs(self.runs, self.sort_column, self.descending)
        if self.filter_text.strip() and len(self.index) < len(self.runs):
            self.index = {r.id: self.index.get(r.id) or rc.search_text(r) for r in self.runs}
        self.shown = rc.filter_runs(ordered, self.filter_text, self.index)
        table.clear()
        self._cursor_to = None
        self._building += 1
        first = self.shown[:FIRST_ROWS]
        for run in first:
            table.add_row(*self._cells(run), key=run.id)
        if len(self.shown) > FIRST_ROWS:      # the rest after the first screenful is drawn
            self.call_after_refresh(self._add_rows, self._building, FIRST_ROWS)
        for col in rc.COLUMNS:
            arrows = "v^" if ascii_only(self) else "↓↑"
            arrow = arrows[0 if self.descending else 1] if col.key == self.sort_column else " "
            table.columns[col.key].label = Text(col.title + arrow + " ")   # type: ignore[index]
        table.refresh()
        if keep is not None and keep.id in table.rows:
            table.move_cursor(row=table.get_row_index(keep.id), animate=False)
        elif keep is not None and keep in self.shown:
            self._cursor_to = keep.id          # its row comes in a later chunk
        self._status()
        if was_dirty:
            self.update_chart()

    def _add_rows(self, build: int, start: int) -> None:
        if build != self._building:           # sorted or filtered again meanwhile
            return
        table = self.table
        for run in self.shown[start:start + MORE_ROWS]:
            table.add_row(*self._cells(run), key=run.id)
        if start + MORE_ROWS < len(self.shown):
            self.call_after_refresh(self._add_rows, build, start + MORE_ROWS)
        if self._cursor_to is not None and self._cursor_to in table.rows:
            table.move_cursor(row=table.get_row_index(self._cursor_to), animate=False)
            self._cursor_to = None

    def _mark(self, run: Any) -> str:
        ascii = ascii_only(self)
        sel = ("x" if ascii else "●") if run.id in self.selected else " "
        star = ("*" if ascii else "★") if run.star else " "
        return sel + star + " "

    def _cells(self, run: Any) -> list[Any]:
        """The row's cells, as Text: a note (or a dataset name) is never read as markup."""
        cells: list[Any] = [Text(self._mark(run))]
        for col in rc.COLUMNS:
            text = col.cell(run) + " "
            if col.key == "status" and run.status in ("running", "failed", "diverged"):
                cells.append(Text(text, style="bold" if run.status == "running" else "red"))
            else:
                cells.append(Text(text))
        cells.append(Text(_note(run)))
        return cells

    def _refresh_row(self, run: Any) -> None:
        table = self.table
        if run.id in table.rows:
            table.update_cell(run.id, "mark", Text(self._mark(run)))
            table.update_cell(run.id, "note", Text(_note(run)))

    def _status(self, extra: str = "") -> None:
        status = self.query_one("#runs-status", Static)
        status.set_class(bool(self.error), "-error")
        if self.error:
            status.update(self.error)
            return
        if not self.loaded:
            status.update("reading the run history...")
            return
        n, total = len(self.shown), len(self.runs)
        noun = "run" if total == 1 else "runs"
        shown = f"{n} of {total} {noun}" if n != total else f"{total} {noun}"
        sel = f", {len(self.selected)} selected" if self.selected else ""
        order = "newest first" if (self.sort_column, self.descending) == ("date", True) else \
            f"by {self.sort_column} {'desc' if self.descending else 'asc'}"
        status.update(extra or f"{shown}{sel}, {order}" + ("" if self.selected else "; space selects"))

    def cursor_run(self) -> Any:
        table = self.table
        if not self.shown or table.cursor_row < 0 or table.cursor_row >= len(self.shown):
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - an empty table
            return None
        return next((r for r in self.shown if r.id == key), None)

    def _run(self, run_id: str) -> Any:
        return next((r for r in self.runs if r.id == run_id), None)

    def _need_run(self) -> Any:
        run = self.cursor_run()
        if run is None:
            self.app.notify("No run here: train one (F5), or clear the filter.", severity="warning")
        return run

    # ------------------------------------------------------------------ sorting, filtering
    def sort_by(self, column: str, descending: bool | None = None) -> None:
        if descending is None:
            descending = (not self.descending) if column == self.sort_column else column in (
                "date", "best_val_acc", "test_acc", "lr", "batch", "epochs", "time")
        self.sort_column, self.descending = column, descending
        self.apply()

    def action_sort_next(self) -> None:
        keys = rc.COLUMN_KEYS
        self.sort_by(keys[(keys.index(self.sort_column) + 1) % len(keys)])

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_column, not self.descending)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value
        if key in rc.COLUMN_KEYS:
            self.sort_by(str(key))

    def action_filter(self) -> None:
        filt = self.query_one("#runs-filter", Input)
        filt.can_focus = True
        filt.focus()

    def _leave_filter(self) -> None:
        self.table.focus()
        self.query_one("#runs-filter", Input).can_focus = False

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.id == "runs-filter":
            self.action_filter()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "runs-filter":
            event.stop()
            self.filter_text = event.value
            self.apply()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "runs-filter":
            event.stop()
            self._leave_filter()

    def on_key(self, event: events.Key) -> None:
        if event.key in ("escape", "down") and self.query_one("#runs-filter", Input).has_focus:
            event.stop()
            self._leave_filter()

    # ------------------------------------------------------------------ selection, overlay
    def action_toggle_select(self) -> None:
        run = self._need_run()
        if run is None:
            return
        if run.id in self.selected:
            self.selected.remove(run.id)
        else:
            self.selected.append(run.id)
        self._refresh_row(run)
        self._status()
        self.update_chart()
        table = self.table
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1, animate=False)

    def action_toggle_mode(self) -> None:
        self.mode = "accuracy" if self.mode == "loss" else "loss"
        self.update_chart()

    def update_chart(self) -> None:
        """Overlay the selected runs' validation curves (their epochs read in a worker)."""
        self.set_class(bool(self.selected), "-overlay")
        if not self.selected:
            self.chart.show_series([], self.mode)
            return
        runs = [r for r in (self._run(i) for i in self.selected) if r is not None]
        wanted = [r.id for r in runs if r.id not in self._epochs or r.status == "running"]
        history, mode = self.history, self.mode

        def work() -> None:
            try:
                got = history.epochs(wanted) if wanted else {}
            except Exception as exc:  # noqa: BLE001
                self.app.call_from_thread(self._status, f"cannot read the runs' epochs: {exc}")
                return
            self.app.call_from_thread(self._draw, runs, got, mode)

        self.run_worker(work, group="runs-epochs", exclusive=True, exit_on_error=False, thread=True)

    def _draw(self, runs: list[Any], got: dict[str, list[dict[str, Any]]], mode: str) -> None:
        for r in runs:
            if r.id in got:
                self._epochs[r.id] = got[r.id]
        labels = rc.legend_labels(runs, width=max(34, self.chart.size.width // 2))
        series = [(label, *rc.curve(self._epochs.get(r.id, []), mode)) for label, r in zip(labels, runs)]
        self.chart.show_series(series, mode)

    # ------------------------------------------------------------------ diff, note, star
    def action_diff(self) -> None:
        from tui.screens.run_dialogs import DiffScreen

        runs = [r for r in (self._run(i) for i in self.selected) if r is not None]
        if len(runs) != 2:
            self.app.notify(f"Diff compares two runs: select exactly two with space ({len(runs)} selected).",
                            severity="warning")
            return
        a, b = runs
        self.app.push_screen(DiffScreen((f"{a.id} ({rc.fmt_date(a.started)})", f"{b.id} ({rc.fmt_date(b.started)})"),
                                        rc.diff_rows(a, b)))

    def action_note(self) -> None:
        from tui.screens.run_dialogs import NoteScreen

        run = self._need_run()
        if run is not None:
            self.app.push_screen(NoteScreen(run.id, run.note or ""),
                                 lambda text: self._write(run, "note", text) if text is not None else None)

    def action_star(self) -> None:
        run = self._need_run()
        if run is not None:
            self._write(run, "star", not run.star)

    def _write(self, run: Any, what: str, value: Any) -> None:
        """Save a note or star in a worker; the row shows it once stored."""
        history = self.history

        def work() -> None:
            try:
                if what == "note":
                    history.set_note(run.id, value)
                else:
                    history.set_star(run.id, value)
            except Exception as exc:  # noqa: BLE001 - StoreError, UnknownRunError: one line
                self.app.call_from_thread(self.app.notify, f"cannot save the {what}: {exc}", severity="error",
                                          markup=False)
                return
            self.app.call_from_thread(self._written, run.id, what, value)

        self.run_worker(work, group="runs-write", exit_on_error=False, thread=True)

    def _written(self, run_id: str, what: str, value: Any) -> None:
        run = self._run(run_id)
        if run is None:
            return
        if what == "note":
            run.note = value
        else:
            run.star = bool(value)
        self.index.pop(run.id, None)
        self._refresh_row(run)

    # ------------------------------------------------------------------ delete
    def action_delete(self) -> None:
        from tui.screens.dialogs import ConfirmScreen

        run = self._need_run()
        if run is None:
            return
        if run.status == "running" and run.pid is not None and run.pid == _pid():
            self.app.notify("This run is still training: stop it (F7) before deleting it.", severity="warning")
            return
        state = rc.checkpoint_state(run)
        what = {"ok": f"\nIts checkpoint {run.checkpoint} is deleted too.",
                "missing": f"\n(Its checkpoint {run.checkpoint} is already gone.)", "none": ""}[state]
        self.app.push_screen(ConfirmScreen(
            f"Delete run {run.id} ({rc.fmt_date(run.started)}, {rc.dataset_label(run)}, {rc.network(run)},"
            f" {run.status}) from the run history?{what}", yes="Delete"),
            lambda yes: self._delete(run) if yes else None)

    def _delete(self, run: Any) -> None:
        history = self.history

        def work() -> None:
            try:
                history.delete(run.id)
            except Exception as exc:  # noqa: BLE001
                self.app.call_from_thread(self.app.notify, f"cannot delete run {run.id}: {exc}", severity="error",
                                          markup=False)
                return
            self.app.call_from_thread(self._deleted, run.id)

        self.run_worker(work, group="runs-write", exit_on_error=False, thread=True)

    def _deleted(self, run_id: str) -> None:
        self.runs = [r for r in self.runs if r.id != run_id]
        self.index.pop(run_id, None)
        if run_id in self.selected:
            self.selected.remove(run_id)
            self.update_chart()
        self.apply()
        self.app.notify(f"Deleted run {run_id}", title="Run history")

    # ------------------------------------------------------------------ the app's part
    def _request(self, what: str, needs_checkpoint: bool) -> None:
        run = self._need_run()
        if run is None:
            return
        if needs_checkpoint:
            problem = rc.checkpoint_problem(run)
            if problem:
                self.app.notify(problem, severity="warning", markup=False)
                return
        self.post_message(self.Requested(what, run))

    def action_load_settings(self) -> None:
        self._request("settings", False)

    def action_load_model(self) -> None:
        self._request("model", True)

    def action_train_again(self) -> None:
        self._request("train", True)

    def action_refresh(self) -> None:
        self.reload()

    def on_unmount(self) -> None:
        self.history.close()


def _signature(run: Any) -> tuple[Any, ...]:
    return (run.id, run.status, run.epochs_done, run.best_val_acc, run.test_acc, run.seconds, run.note, run.star,
            run.checkpoint)


def _note(run: Any) -> str:
    note = run.note or ""
    return note if len(note) <= 30 else note[:29] + "~"


def _pid() -> int:
    import os

    return os.getpid()
