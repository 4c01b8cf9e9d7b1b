"""The Runs panel (F3 runs): table, sorting, filter, note and star, overlay, diff, the run's
settings / model / training on, delete, refresh, and a store that cannot be used."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from engine.checkpoint import save_checkpoint
from engine.config import TrainConfig
from engine.runs import RunStore
from engine.training import TrainingSession
from tests.tui.conftest import press, settle, wait_for
from tests.tui.runs_fixture import RUNS, fill
from tests.tui.screen_text import screen_text
from tui.controllers import runs as rc
from tui.screens.dialogs import ConfirmScreen
from tui.screens.run_dialogs import DiffScreen, NoteScreen
from tui.widgets.runs_panel import RunsPanel

SIZES = [(80, 24), (120, 40)]
IDS = [r["id"] for r in RUNS]            # oldest first


def store_path() -> Path:
    return Path(os.environ["TERMNIST_STATE_DIR"]) / "runs.sqlite"


@pytest.fixture
def store(tmp_path):
    fill(store_path())
    return store_path()


async def open_runs(pilot) -> RunsPanel:
    app = pilot.app
    await settle(pilot)
    while app.panel != "runs":
        before = app.panel
        await press(pilot, "f3")
        await wait_for(pilot, lambda before=before: app.panel != before, what="the next panel")
    panel = app.runs_panel
    await wait_for(pilot, lambda: panel.loaded and panel.table.has_focus, what="the runs table")
    await settle(pilot)
    return panel


def shown(panel: RunsPanel) -> list[str]:
    return [r.id for r in panel.shown]


async def cursor_to(pilot, panel: RunsPanel, run_id: str) -> None:
    panel.table.move_cursor(row=shown(panel).index(run_id), animate=False)
    await pilot.pause()


async def select(pilot, panel: RunsPanel, *run_ids: str) -> None:
    for run_id in run_ids:
        await cursor_to(pilot, panel, run_id)
        await press(pilot, "space")
    await settle(pilot)


# ----------------------------------------------------------------------------- pure parts
def test_legend_names_what_differs():
    fill(store_path())
    with RunStore(store_path()) as s:
        runs = {r.id: r for r in s.list()}
    a, b, c = runs[IDS[0]], runs[IDS[1]], runs[IDS[2]]
    assert rc.legend_labels([a, b]) == ["lr=0.1", "lr=0.05"]
    assert rc.legend_labels([a, b, c]) == ["lr=0.1 batch=64", "lr=0.05 batch=64", "lr=0.05 batch=32"]
    assert rc.legend_labels([a]) == [a.id[:8]]
    assert rc.diff_rows(b, c) == [("batch_size", "64", "32")]
    assert [f for f, _, _ in rc.diff_rows(a, runs[IDS[4]])] == ["data", "epochs"]


def test_sort_keeps_missing_figures_last_and_filter_matches_every_word():
    fill(store_path())
    with RunStore(store_path()) as s:
        runs = s.list()
    for descending in (True, False):
        order = [r.id for r in rc.sort_runs(runs, "test_acc", descending)]
        assert order[-1] == IDS[3]                       # no test accuracy: last either way
    assert [r.id for r in rc.sort_runs(runs, "lr", False)][0] == IDS[3]     # 0.001
    assert [r.id for r in rc.filter_runs(runs, "sample 0.05")] == [IDS[2], IDS[1]]
    assert [r.id for r in rc.filter_runs(runs, "HALF the")] == [IDS[1]]      # the note


# ----------------------------------------------------------------------------- the panel
@pytest.mark.parametrize("size", SIZES)
async def test_table_newest_first_sorts_by_key_and_header_and_filters(make_app, synthetic, store, size):
    app = make_app(synthetic)
    async with app.run_test(size=size) as pilot:
        panel = await open_runs(pilot)
        assert shown(panel) == IDS[::-1]
        text = screen_text(app)
        assert "05-28" in text or "05-29" in text or "date" in text
        await press(pilot, "s")                           # the next column: dataset, a to z
        await settle(pilot)
        assert panel.sort_column == "dataset" and not panel.descending
        assert shown(panel)[0] == IDS[4]                  # "fashion" before "sample"
        await press(pilot, "s")
        await press(pilot, "S")                           # reverses
        assert panel.sort_column == "network" and panel.descending
        # a click on the lr header sorts by lr (largest first), again reverses
        table = panel.table
        x = sum(col.get_render_width(table) for col in list(table.columns.values())[:5]) + 1
        await pilot.click("#runs-table", offset=(x, 0))
        await settle(pilot)
        assert panel.sort_column == "lr" and panel.descending
        assert shown(panel)[-1] == IDS[3]
        await pilot.click("#runs-table", offset=(x, 0))
        await settle(pilot)
        assert panel.sort_column == "lr" and not panel.descending and shown(panel)[0] == IDS[3]
        # the filter: ctrl+f focuses it, every word must match
        await press(pilot, "ctrl+f")
        assert app.focused is panel.query_one("#runs-filter")
        await press(pilot, "a", "d", "a", "m")
        assert shown(panel) == [IDS[3]]
        assert "1 of 5 runs" in screen_text(app)
        await press(pilot, "escape")
        assert app.focused is panel.table


@pytest.mark.parametrize("size", SIZES)
async def test_star_and_note_are_stored(make_app, synthetic, store, size):
    app = make_app(synthetic)
    async with app.run_test(size=size) as pilot:
        panel = await open_runs(pilot)
        await cursor_to(pilot, panel, IDS[0])
        await press(pilot, "plus")
        await settle(pilot)
        await press(pilot, "n")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteScreen), what="the note dialog")
        await press(pilot, "t", "r", "y", "space", "a", "d", "a", "m", "enter")
        await settle(pilot)
        with RunStore(store) as s:
            run = s.get(IDS[0])
        assert run.star and run.note == "try adam"
        with RunStore(store) as s:                      # a note is text, never markup
            s.set_note(IDS[1], "[/oops] [bold]")
        await press(pilot, "r")
        await wait_for(pilot, lambda: str(panel.table.get_cell(IDS[1], "note")) == "[/oops] [bold]",
                       what="the bracketed note")
        await pilot.pause()
        assert str(panel.table.get_cell(IDS[0], "note")) == "try adam"  # past column 80: scrolls
        assert "★" in str(panel.table.get_cell(IDS[0], "mark"))
        await press(pilot, "plus")                     # toggles back
        await settle(pilot)
        with RunStore(store) as s:
            assert not s.get(IDS[0]).star


@pytest.mark.parametrize("size", SIZES)
async def test_overlay_shows_each_selected_run_with_its_legend(make_app, synthetic, store, size):
    app = make_app(synthetic)
    async with app.run_test(size=size) as pilot:
        panel = await open_runs(pilot)
        assert not panel.chart.display
        await select(pilot, panel, IDS[0], IDS[1], IDS[2])
        await wait_for(pilot, lambda: len(panel.chart.drawn_labels) == 3, what="three curves")
        assert panel.chart.drawn_labels == ["lr=0.1 batch=64", "lr=0.05 batch=64", "lr=0.05 batch=32"]
        assert [len(xs) for _, xs, _ in panel.chart.series] == [3, 3, 2]
        text = screen_text(app)
        assert all(label in text for label in panel.chart.drawn_labels)
        assert "val loss" in text
        await press(pilot, "f2")                           # accuracy
        await settle(pilot)
        assert panel.chart.mode == "accuracy" and "val acc %" in screen_text(app)
        assert max(panel.chart.series[0][2]) == pytest.approx(92.5)
        await cursor_to(pilot, panel, IDS[1])
        await press(pilot, "space")                        # unselect one: two curves
        await wait_for(pilot, lambda: len(panel.chart.drawn_labels) == 2, what="two curves")
        assert panel.chart.drawn_labels == ["lr=0.1 batch=64", "lr=0.05 batch=32"]


@pytest.mark.parametrize("size", SIZES)
async def test_diff_shows_only_the_fields_that_differ(make_app, synthetic, store, size):
    app = make_app(synthetic)
    async with app.run_test(size=size) as pilot:
        panel = await open_runs(pilot)
        await press(pilot, "d")                            # none selected: says why
        assert not isinstance(app.screen, DiffScreen)
        await select(pilot, panel, IDS[1], IDS[3])
        await press(pilot, "d")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen), what="the diff")
        assert [f for f, _, _ in app.screen.rows] == ["lr", "optimizer", "hidden"]
        text = screen_text(app)
        assert "0.05" in text and "0.001" in text and "adam" in text and "128-64" in text
        assert "batch_size" not in text and "epochs" not in text and "seed" not in text
        await press(pilot, "escape")
        assert not isinstance(app.screen, DiffScreen)


@pytest.mark.parametrize("size", SIZES)
async def test_load_settings_fills_the_form(make_app, synthetic, store, size):
    app = make_app(synthetic)
    async with app.run_test(size=size) as pilot:
        panel = await open_runs(pilot)
        await cursor_to(pilot, panel, IDS[2])
        await press(pilot, "f")
        await settle(pilot)
        values = app.form.values()
        assert values["lr"] == "0.05" and values["batch_size"] == "32" and values["hidden"] == "64"
        assert app.form.get_config()[0] == TrainConfig.from_dict(RUNS[2]["settings"])
        assert any(IDS[2] in line for line in app.epoch_log.lines)


def trained_checkpoint(dataset, path: Path, **changes) -> Path:
    config = TrainConfig(hidden=(16,), epochs=1, batch_size=64, val_size=100, lr=0.1).replace(**changes)
    session = TrainingSession(config, dataset)
    for _ in session.run():
        pass
    return save_checkpoint(path, session.checkpoint())


@pytest.mark.parametrize("size", SIZES)
async def test_delete_asks_then_removes_the_run_and_its_checkpoint(make_app, synthetic, tmp_path, size):
    ckpt = trained_checkpoint(synthetic, tmp_path / "c.npz")
    fill(store_path(), checkpoints={IDS[1]: str(ckpt)})
    app = make_app(synthetic)
    async with app.run_test(size=size) as pilot:
        panel = await open_runs(pilot)
        await cursor_to(pilot, panel, IDS[1])
        await press(pilot, "x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        assert str(ckpt) in app.screen.question and "deleted too" in app.screen.question
        await press(pilot, "n")                            # no: nothing happens
        await settle(pilot)
        assert ckpt.exists() and IDS[1] in shown(panel)
        await press(pilot, "x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await press(pilot, "y")
        await wait_for(pilot, lambda: IDS[1] not in shown(panel), what="the run to go")
        assert not ckpt.exists()
        with RunStore(store_path()) as s:
            assert IDS[1] not in [r.id for r in s.list()] and s.count() == 4


async def test_load_model_and_train_on_from_a_run(make_app, synthetic, tmp_path):
    ckpt = trained_checkpoint(synthetic, tmp_path / "c.npz")
    fill(store_path(), checkpoints={IDS[0]: str(ckpt), IDS[1]: str(tmp_path / "gone.npz")})
    app = make_app(synthetic, trainer="thread")
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_runs(pilot)
        # a run whose checkpoint is gone says so
        await cursor_to(pilot, panel, IDS[1])
        await press(pilot, "m")
        await settle(pilot)
        assert any("gone.npz" in n.message and "missing" in n.message for n in app._notifications)
        assert app.model is None
        # its model: loaded and evaluated (the preview shows its predictions)
        await cursor_to(pilot, panel, IDS[0])
        await press(pilot, "m")
        await wait_for(pilot, lambda: app.model is not None and "load" not in app.busy, what="the model")
        assert app.model.config.hidden == (16,)
        assert app.view.predictions is not None
        # train on from its checkpoint: one more epoch (it had finished), a new run recorded
        await open_runs(pilot)
        await cursor_to(pilot, panel, IDS[0])
        await press(pilot, "t")
        await wait_for(pilot, lambda: app.training, what="training on")
        await wait_for(pilot, lambda: not app.training, what="the run to end")
        assert any("training on from run" in line for line in app.epoch_log.lines)
        assert app.form.values()["epochs"] == "2"
        with RunStore(store_path()) as s:
            newest = s.list()[0]
            assert s.count() == 6 and newest.epochs_done == 2 and newest.checkpoint
            assert Path(newest.checkpoint).is_file()


async def test_the_table_follows_this_apps_run(make_app, synthetic):
    app = make_app(synthetic, trainer="thread")
    async with app.run_test(size=(120, 40)) as pilot:
        panel = await open_runs(pilot)
        assert shown(panel) == [] and "0 runs" in screen_text(app)
        app.form.set_values({"hidden": "16", "epochs": "2", "batch_size": "64", "val_size": "100"})
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="the run to end")
        # read again at its start, epochs and end, without a key
        await wait_for(pilot, lambda: panel.runs and panel.runs[0].status == "completed", what="completed")
        assert panel.loads >= 2
        run = panel.runs[0]
        assert run.epochs_done == 2 and run.checkpoint and Path(run.checkpoint).is_file()
        # another process's run: the refresh key reads it
        with RunStore(store_path()) as s:
            other = s.create_run(settings={"lr": 0.3}, dataset="mnist", pid=1)
        await press(pilot, "r")
        await wait_for(pilot, lambda: other in shown(panel), what="the other process's run")


@pytest.mark.parametrize("fault", ["corrupt", "newer", "read-only"])
async def test_a_store_that_cannot_be_used_is_one_line_and_training_goes_on(make_app, synthetic, fault,
                                                                          monkeypatch):
    path = store_path()
    if fault == "corrupt":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"this is not a database" * 100)
    else:
        fill(path)
        if fault == "newer":
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA user_version = 99")
        else:
            import engine.runs.store as store_mod
            monkeypatch.setattr(store_mod, "writable", lambda p: False)      # root ignores chmod
    app = make_app(synthetic, trainer="thread")
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_runs(pilot)
        status = str(panel.query_one("#runs-status").render())
        assert panel.error and str(path) in panel.error and "\n" not in panel.error
        assert str(path)[:30] in status
        if fault == "read-only":
            assert "read-only" in panel.error and len(panel.shown) == 5      # still listed
        else:
            assert ("corrupt" if fault == "corrupt" else "newer termnist") in panel.error
        app.form.set_values({"hidden": "16", "epochs": "1", "batch_size": "64", "val_size": "100"})
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="the run")
        assert app.view.last_test_acc is not None                            # trained all the same
        assert any(str(path) in line and "not recording" in line for line in app.epoch_log.lines)


async def test_a_locked_store_still_lists_and_a_note_says_it_is_locked(make_app, synthetic):
    """Another process holds the write lock: the panel lists (WAL readers go on), a star that
    stays locked is one line naming the file, and a run trains without being recorded."""
    import subprocess
    import sys

    path = store_path()
    fill(path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None);"
         " c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        app = make_app(synthetic, trainer="thread")
        async with app.run_test(size=(80, 24)) as pilot:
            panel = await open_runs(pilot)
            assert shown(panel) == IDS[::-1] and panel.error is None
            await cursor_to(pilot, panel, IDS[0])
            await press(pilot, "plus")
            await wait_for(pilot, lambda: any("locked" in n.message for n in app._notifications), timeout=30,
                           what="the locked line")
            line = next(n.message for n in app._notifications if "locked" in n.message)
            assert str(path) in line and "cannot save the star" in line and "\n" not in line
            app.form.set_values({"hidden": "16", "epochs": "1", "batch_size": "64", "val_size": "100"})
            await press(pilot, "f5")
            await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, timeout=60,
                           what="the run")
            assert app.view.last_test_acc is not None
            assert any(str(path) in line and "locked" in line and "stops recording" in line
                       for line in app.epoch_log.lines)
    finally:
        holder.kill()
        holder.wait()
