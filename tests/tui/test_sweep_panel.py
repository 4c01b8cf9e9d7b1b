"""The Sweep panel (F3 sweep): fed fixed sweep events (no Optuna run) at 80x24 and 120x40, the
best trial one key away, a bad search space refused, and one real tiny sweep end to end."""

from __future__ import annotations

import dataclasses
import time

import pytest
from textual.widgets import Input

from engine.datasets import SAMPLE_DIR
from engine.training import TrainConfig
from tests.tui.conftest import press, settle, wait_for
from tests.tui.screen_text import screen_text
from tests.tui.sweep_fixture import TRIALS, all_events, started, trial_events
from tui.app import TermnistApp
from tui.panels import NAMES
from tui.controllers import sweep as sw


@pytest.fixture
def bundled(sample):
    return dataclasses.replace(sample, is_sample=True, source="bundled sample")


@pytest.fixture
def app(bundled) -> TermnistApp:
    return TermnistApp(load_dataset_fn=lambda name, data_dir: bundled, remember=False)


async def open_panel(pilot):
    app = pilot.app
    await settle(pilot)
    for _ in range(len(NAMES)):              # F3 until the Sweep panel (the cycle may grow)
        if app.panel == "sweep":
            break
        await press(pilot, "f3")
        await pilot.pause()                  # the panel's focus lands after a refresh
    await pilot.pause()
    assert app.panel == "sweep"
    return app.query_one("#sweep")


async def feed(pilot, panel, events):
    for e in events:
        panel.show_event(e)
    await settle(pilot)          # the importance worker too


def cell(panel, number: int, column: str) -> str:
    value = panel.table.get_cell(str(number), column)
    return getattr(value, "plain", str(value))


async def test_fed_events_fill_the_table_and_the_status_80x24(app):
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        assert isinstance(app.focused, Input) and app.focused.id == "sweep-param-0"
        await feed(pilot, panel, [started(), *trial_events(0, finish=False)])
        assert panel.table.row_count == 1
        assert cell(panel, 0, "state") == "running"
        assert cell(panel, 0, "params") == "lr=0.0123 bs=64"
        assert cell(panel, 0, "acc").endswith(" 87.4")
        await feed(pilot, panel, all_events()[len(trial_events(0, finish=False)) + 1:])
        assert panel.table.row_count == len(TRIALS)
        assert [cell(panel, n, "state") for n in range(5)] == ["complete", "complete", "pruned", "complete", "failed"]
        assert cell(panel, 1, "n") == "1*"                           # the best trial is starred
        assert cell(panel, 2, "acc") == "▁ 41.2" and cell(panel, 4, "acc") == "-"
        text = screen_text(app)
        assert "3 complete, 1 pruned, 1 failed | best #1 91.5%" in text
        assert "importance (Optuna)" in text and "0.83" in text


async def test_chart_series_and_the_parameter_key(app):
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        await feed(pilot, panel, all_events())
        s = panel.chart.series
        assert s.param == "lr" and s.log and s.labels == ()
        assert s.complete == ((0.0123, 0.2, 0.05), (87.4, 91.5, 89.6))
        assert s.pruned == ((0.0015,), (41.2,))                       # the failed trial is not charted
        panel.table.focus()
        await pilot.pause()
        await press(pilot, "p")
        s = panel.chart.series
        assert s.param == "batch_size" and not s.log and s.labels == ("32", "64", "128")
        assert s.complete == ((2.0, 1.0, 3.0), (87.4, 91.5, 89.6))
        await press(pilot, "p")
        assert panel.chart.series.param == "lr"


async def test_best_trial_key_fills_the_form(app):
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        await feed(pilot, panel, all_events())
        panel.table.focus()
        await pilot.pause()
        await press(pilot, "b")
        await pilot.pause()
        config, errors = app.form.get_config()
        assert errors == {}
        assert (config.lr, config.batch_size, config.hidden, config.epochs, config.seed) == (0.2, 32, (32,), 3, 7)
        assert any("trial 1's settings are in the form" in n.message for n in app._notifications)
        panel.table.focus()
        panel.table.move_cursor(row=3)
        await pilot.pause()
        await press(pilot, "enter")                      # any trial: Enter on its row
        await pilot.pause()
        config, _ = app.form.get_config()
        assert (config.lr, config.batch_size) == (0.05, 128)


async def test_stop_key_sets_the_event(app):
    """F7 in the panel ends a running sweep (here a pretend one: no thread) and says so."""
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        await press(pilot, "f7")                         # nothing runs: F7 is the app's (stop training)
        assert not app.sweep.run.stop_event.is_set()
        stop = app.sweep.run.begin()
        panel.running = True
        panel.show_event(started())
        panel.table.focus()
        await pilot.pause()
        await press(pilot, "f7")
        await pilot.pause()
        assert stop.is_set() and panel.stopping
        assert "stopping" in screen_text(app)
        app.sweep.run.ended()
        panel.post_message(panel.Ended())
        await pilot.pause()
        assert not panel.running


async def test_importances_while_the_sweep_runs(app):
    """Two complete trials and no SweepDone yet: Optuna's evaluator, in a worker thread."""
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        await feed(pilot, panel, [started(), *trial_events(0), *trial_events(1), *trial_events(3)])
        await wait_for(pilot, lambda: bool(panel.trials.importances), what="importances")
        assert set(panel.trials.importances) == {"lr", "batch_size"}
        assert "importance (Optuna)" in screen_text(app)


async def test_invalid_space_is_refused_next_to_the_field(app):
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        field = app.query_one("#sweep-param-1", Input)
        field.value = "lr=0.5:0.001"
        await press(pilot, "f5")
        await pilot.pause()
        assert not app.sweep.run.running and not panel.running
        error = app.query_one("#sweep-error-param-1")
        assert "--param lr: range '0.5:0.001': low 0.5 is greater than high 0.001" in str(error.render())
        assert app.focused is field
        assert not [w for w in app.workers if w.group == "sweep"]
        field.value = "momentum=0.8:0.99"            # typing clears the error
        await pilot.pause()
        assert error.has_class("-empty")


async def test_sweep_panel_uses_the_room_at_120x40(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert not app.query_one("#sweep").display
        app.set_panel("sweep", focus=True)
        await pilot.pause()
        panel = app.query_one("#sweep")
        assert panel.display and not app.chart.display and not app.epoch_log.display
        assert panel.size.width >= 78 and panel.size.height >= 36
        await feed(pilot, panel, all_events())
        assert panel.chart.size.width >= 40 and panel.table.size.height >= 8
        app.set_panel("form", focus=True)
        await pilot.pause()
        assert not panel.display and app.chart.display


async def test_ascii_terminal_gets_an_ascii_sweep_panel(bundled):
    app = TermnistApp(load_dataset_fn=lambda name, data_dir: bundled, remember=False, ascii_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        await feed(pilot, panel, all_events())
        panel.table.focus()
        app.clear_notifications()
        await pilot.pause()
        text = screen_text(app)
        assert "importance (Optuna)" in text and "91.5" in text
        assert {c for c in text if ord(c) > 127} == set()


def test_spec_from_the_panel_fields():
    base = TrainConfig(val_size=500)
    spec = sw.build_spec(["lr=0.001:0.5:log", "", "batch_size=32,64"],
                         {"trials": "4", "epochs": "2", "workers": "1", "sampler": "random", "pruner": "none"}, base)
    assert [p.name for p in spec.space] == ["lr", "batch_size"]
    assert (spec.trials, spec.epochs, spec.sampler, spec.pruner, spec.seed) == (4, 2, "random", "none", 0)
    assert spec.enqueue == ({"lr": base.lr, "batch_size": 64},)      # the form's own point goes first
    outside = sw.build_spec(["lr=0.2:0.5", "batch_size=32,64"], {}, base)
    assert outside.enqueue == ()
    layers = sw.build_spec(["hidden=32,256-128"], {}, TrainConfig(hidden=(256, 128)))
    assert layers.enqueue == ({"hidden": "256-128"},)
    with pytest.raises(sw.SweepFormError) as bad:
        sw.build_spec(["lr=0.1:0.5", "lr=0.2,0.3", ""], {}, base)
    assert bad.value.field == "param-1" and "given twice" in bad.value.reason
    with pytest.raises(sw.SweepFormError) as bad:
        sw.build_spec(["lr=0.1:0.5"], {"sampler": "grid"}, base)
    assert bad.value.field == "param-0" and "grid" in bad.value.reason
    with pytest.raises(sw.SweepFormError) as bad:
        sw.build_spec(["batch_size=0,64"], {}, base)
    assert bad.value.field == "param-0" and "batch_size" in bad.value.reason
    with pytest.raises(sw.SweepFormError) as bad:
        sw.build_spec(["lr=0.1,0.2"], {"trials": "0"}, base)
    assert bad.value.field == "trials"
    with pytest.raises(sw.SweepFormError) as bad:
        sw.build_spec(["", "", ""], {}, base)
    assert bad.value.field == "param-0"


def test_trials_model_without_textual():
    trials = sw.SweepTrials()
    for e in all_events():
        trials.apply(e)
    assert trials.counts() == {"running": 0, "complete": 3, "pruned": 1, "failed": 1}
    assert trials.best().number == 1 and trials.importances == {"lr": 0.83, "batch_size": 0.17}
    config = trials.config_of(trials.rows[3])
    assert (config.lr, config.batch_size, config.hidden, config.seed) == (0.05, 128, (32,), 7)
    trials.apply(started())                               # a new sweep starts afresh
    assert trials.rows == {} and trials.done is None and trials.importances == {}


def test_resumable_and_a_resumed_sweep_keeps_its_rows():
    trials = sw.SweepTrials()
    assert not trials.resumable                                   # nothing shown
    events = all_events()
    for e in events[:-1]:                                          # all five trials, no end yet
        trials.apply(e)
    assert not trials.resumable                                   # running (workers > 0)
    trials.apply(dataclasses.replace(events[-1], interrupted=True))
    assert not trials.resumable                                   # 5 of 5 finished: nothing left
    trials.apply(started())
    for e in trial_events(0) + trial_events(1):
        trials.apply(e)
    trials.apply(dataclasses.replace(events[-1], interrupted=True))
    assert trials.resumable                                       # stopped at 2 of 5
    trials.apply(dataclasses.replace(started(), resumed=True, done_before=2))
    assert set(trials.rows) == {0, 1} and trials.done is None     # the rows stay
    trials.apply(dataclasses.replace(started(), name="another", resumed=True))
    assert trials.rows == {}                                      # another sweep's resume: afresh
    earlier = dataclasses.replace(started(), workers=0, done_before=1)
    trials.apply(earlier)
    for e in trial_events(0):
        trials.apply(e)
    assert trials.resumable                                       # opened, 1 of 5: resumable


def test_format_helpers():
    assert sw.format_accs([0.5, 0.75, 1.0]) == "▁▅█ 100.0"
    assert sw.format_accs([0.9], ascii_only=True) == "_ 90.0"
    bars = sw.importance_bars({"batch_size": 0.25, "lr": 0.75}, width=24, ascii_only=True)
    assert bars[0].startswith("lr ") and bars[0].endswith("0.75") and "#" in bars[0]


# -- a real sweep ---------------------------------------------------------------------------------------
def real_app(bundled) -> TermnistApp:
    """An app whose sweeps' worker processes find the bundled sample (its data_dir)."""
    return TermnistApp(data_dir=str(SAMPLE_DIR), load_dataset_fn=lambda name, data_dir: bundled, remember=False)


async def start_tiny_sweep(pilot, trials: str, epochs: str):
    """The Sweep panel, the tiny settings with this budget, F5, and its first trial on the table."""
    app = pilot.app
    panel = await open_panel(pilot)
    tiny_settings(app)
    panel.set_values({"trials": trials, "epochs": epochs})
    await pilot.pause()
    await press(pilot, "f5")
    await wait_for(pilot, lambda: bool(panel.trials.rows), timeout=90, what="a trial")
    return panel


def tiny_settings(app) -> None:
    app.form.set_config(TrainConfig(hidden=(16,), epochs=1, batch_size=64, val_size=2000, lr=0.1, seed=3))
    app.query_one("#sweep-param-0", Input).value = "lr=0.05,0.2"
    app.query_one("#sweep-param-1", Input).value = ""
    app.query_one("#sweep").set_values({"trials": "2", "epochs": "1", "workers": "1"})


async def test_a_real_tiny_sweep_end_to_end(bundled):
    """The bundled sample, 2 trials, 1 epoch, a tiny net, one worker: both rows complete, and the
    best trial's model loads through the run store's checkpoint."""
    app = real_app(bundled)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        tiny_settings(app)
        await pilot.pause()
        await press(pilot, "f5")
        await wait_for(pilot, lambda: panel.trials.done is not None and not panel.running, timeout=120,
                       what="the sweep's end")
        assert panel.notes == [] or all("validation" in n for n in panel.notes)
        assert [cell(panel, n, "state") for n in (0, 1)] == ["complete", "complete"]
        assert panel.trials.done.n_complete == 2 and panel.trials.done.best_run_id
        best = panel.trials.best()
        assert best is not None and best.run_id == panel.trials.done.best_run_id
        panel.table.focus()
        await pilot.pause()
        await press(pilot, "m")
        await wait_for(pilot, lambda: app.model is not None and "load" not in app.busy, timeout=60,
                       what="the best trial's model")
        assert app.model.config.lr == best.params["lr"] and app.model.config.hidden == (16,)


async def test_a_sweep_stopped_in_the_panel_resumes_with_its_rows(bundled):
    app = real_app(bundled)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await start_tiny_sweep(pilot, trials="4", epochs="5")
        await press(pilot, "f7")
        await wait_for(pilot, lambda: not panel.running, timeout=90, what="the stop")
        name = panel.trials.started.name
        kept = {n: r.state for n, r in panel.trials.rows.items() if r.reason != "interrupted"}
        assert panel.trials.done.interrupted and len(kept) < 4 and panel.trials.resumable
        panel.table.focus()
        await pilot.pause()
        assert panel.check_action("resume", ()) is True
        await press(pilot, "r")
        await wait_for(pilot, lambda: panel.trials.done is not None and not panel.running, timeout=120,
                       what="the resumed sweep's end")
        assert panel.trials.started.name == name and panel.trials.started.resumed
        assert not panel.trials.done.interrupted and panel.trials.done.n_complete == 4
        assert all(panel.trials.rows[n].state == state for n, state in kept.items())     # the rows stayed
        assert panel.table.row_count == len(panel.trials.rows) > len(kept)
        assert not panel.trials.resumable and panel.check_action("resume", ()) is False


async def test_an_earlier_sweep_opens_from_the_list_and_resumes(bundled):
    import threading

    from engine.sweep import SweepSpec, parse_space, run_sweep
    from engine.sweep.events import TrialFinished
    from tui.screens.sweep_dialogs import SweepChooser

    base = TrainConfig(hidden=(16,), epochs=1, batch_size=64, val_size=2000, lr=0.1, seed=3)
    stop = threading.Event()
    run_sweep(SweepSpec(name="earlier", space=parse_space(["lr=0.05,0.2"]), base=base, epochs=1, trials=3,
                        pruner="none", data_dir=str(SAMPLE_DIR), workers=1),
              lambda e: stop.set() if isinstance(e, TrialFinished) else None, stop=stop)
    app = real_app(bundled)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        panel.table.focus()
        await pilot.pause()
        await press(pilot, "o")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepChooser), what="the list of sweeps")
        assert "earlier" in screen_text(app) and "trial(s)" in screen_text(app)
        await press(pilot, "enter")
        await wait_for(pilot, lambda: panel.trials.started is not None, what="the earlier sweep")
        assert panel.trials.started.name == "earlier" and panel.table.row_count >= 1
        status = str(panel.query_one("#sweep-status").render())
        assert "earlier (earlier):" in status and "r resumes" in status, status
        await press(pilot, "r")
        await wait_for(pilot, lambda: panel.trials.done is not None and not panel.running, timeout=120,
                       what="the resumed sweep's end")
        assert panel.trials.done.n_complete == 3 and panel.trials.started.resumed


async def test_resuming_a_sweep_that_is_gone_says_why(app):
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        panel.show_earlier(dataclasses.replace(started(), name="ghost", workers=0), trial_events(0)[-1:])
        await settle(pilot)
        assert panel.trials.resumable and panel.check_action("resume", ()) is True
        await press(pilot, "r")
        await wait_for(pilot, lambda: not panel.running and panel.notes, what="the refusal")
        assert "cannot resume" in panel.notes[-1] and "no sweep of that name" in panel.notes[-1]
        assert panel.table.row_count == 1                           # what was shown stays


async def test_open_with_no_sweep_kept_says_so(bundled):
    app = TermnistApp(load_dataset_fn=lambda name, data_dir: bundled, remember=False)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await open_panel(pilot)
        panel.table.focus()
        await pilot.pause()
        await press(pilot, "o")
        await wait_for(pilot, lambda: any("no sweep kept yet" in n.message for n in app._notifications),
                       what="the note")


async def test_quitting_during_a_sweep_exits(bundled):
    app = real_app(bundled)
    async with app.run_test(size=(80, 24)) as pilot:
        await start_tiny_sweep(pilot, trials="6", epochs="5")
        stop = app.sweep.run.stop_event
        await press(pilot, "ctrl+q")
        await pilot.pause()
        assert stop.is_set()
    deadline = time.monotonic() + 90
    while app.sweep.run.running and time.monotonic() < deadline:      # the thread ends on its own
        time.sleep(0.1)
    assert not app.sweep.run.running


# -- snapshot ---------------------------------------------------------------------------------------------
def test_sweep_panel_snapshot_80x24(snap_compare, app):
    async def before(pilot):
        panel = await open_panel(pilot)
        await feed(pilot, panel, all_events())
        for field in app.query(Input):
            field.cursor_blink = False
        panel.table.focus()
        app.clear_notifications()
        await settle(pilot)
        panel.chart.replot()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)
