"""Hardening, round two (issue #12), the app's items: each test failed before its fix.

A hostile new user found: late keys logging "pausing..." after "stopped"; Ctrl+Q asking
"Training is running" after the run ended; an accuracy axis past 100%; a zoom title counting
from 0; error toasts stacking over the screen; log rows staying wrapped after a resize; the
data panel popping up over what was being typed (and over the resume question); a validation
size fitted to the sample outliving it; a remembered dataset beating --data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import engine.datasets as ds
from engine import events as ev
from engine.recovery import save_recovery
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset
from tests.tui.conftest import press, settle, wait_for
from tests.tui.screen_text import screen_text
from tests.tui.test_data_in_app import nowhere, real_app  # noqa: F401 - fixtures
from tui.app import TermnistApp
from tui.screens.data_screen import DataScreen
from tui.screens.dialogs import ConfirmScreen
from tui.screens.digit_detail import DigitScreen
from tui.widgets.epoch_log import EpochLog

SMALL = {"hidden": "16", "epochs": "2", "batch_size": "64", "val_size": "100", "lr": "0.1"}
LONG = {**SMALL, "epochs": "100000", "batch_size": "32"}


async def test_keys_after_the_run_ended_do_nothing(make_app, synthetic):
    """F6/F7 pressed after the run reported its end (its worker still finishing) must not log
    "pausing..." or "stopping..." after the end, nor leave them in the status line."""
    app = make_app(synthetic, trainer="thread")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values(LONG)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.session is not None, what="the session")
        await press(pilot, "f7")
        await wait_for(pilot, lambda: app.trainer.finished, what="the end")
        app.action_pause()
        app.action_stop()
        ended = max(i for i, line in enumerate(app.epoch_log.lines) if "run 1 stopped" in line)
        after = app.epoch_log.lines[ended + 1:]
        assert not any("pausing" in line or "stopping" in line for line in after), after
        assert app.check_action("pause", ()) is False
        await wait_for(pilot, lambda: not app.training, what="the worker's end")
        assert "stopping" not in str(app.query_one("#status").render())


async def test_ctrl_q_after_the_run_ended_quits_without_asking(make_app, synthetic, monkeypatch):
    """"completed" is on screen while the worker still makes the last preview: Ctrl+Q then
    must quit at once, not ask "Training is running"."""
    import threading

    real, gate = TrainingSession.predictor, threading.Event()

    def held_predictor(self):
        predict = real(self)
        return lambda x: (gate.wait(10), predict(x))[1]

    monkeypatch.setattr(TrainingSession, "predictor", held_predictor)
    app = make_app(synthetic, trainer="thread")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            app.form.set_values(SMALL)
            await press(pilot, "f5")
            await wait_for(pilot, lambda: app.trainer.finished, what="the run's end")
            assert app.training                              # the worker is still finishing
            await press(pilot, "ctrl+q")
            await wait_for(pilot, lambda: app.return_code is not None, what="the exit")
            assert not isinstance(app.screen, ConfirmScreen)
    finally:
        gate.set()


async def test_the_accuracy_axis_stops_at_100(make_app, synthetic):
    app = make_app(synthetic)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for epoch, acc in enumerate((1.0, 1.0), 1):       # a model at 100%: plotext drew 150%
            app.chart.add_epoch(epoch, acc, 0.1, acc)
        app.chart.set_mode("accuracy")
        app.chart.replot()
        await pilot.pause()
        ticks = [float(t) for t in re.findall(r"(\d+\.\d+)┤", screen_text(app))]
        assert ticks and max(ticks) <= 100.0, ticks


def test_the_zoom_title_counts_from_1_like_the_pages():
    screen = DigitScreen(0, np.zeros((28, 28), np.uint8), 255, 7, tuple("0123456789"), None)
    assert screen._title().startswith("Test image #1:")


async def test_a_burst_of_errors_shows_one_toast(make_app, synthetic):
    app = make_app(synthetic)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for i in range(6):
            app.report_error(f"error number {i}")
        await pilot.pause()
        assert len(app._notifications) == 1                       # the newest only ...
        assert sum("error number" in line for line in app.epoch_log.lines) == 6   # ... the log has all


async def test_log_rows_re_wrap_after_a_resize():
    from textual.app import App

    class LogApp(App[None]):
        def compose(self):
            yield EpochLog(id="log")

    row = "  1/10   0.1234  96.00%   0.1100  96.50%    0.5   123,456"
    app = LogApp()
    async with app.run_test(size=(40, 20)) as pilot:
        log = app.query_one(EpochLog)
        log.write_row(row)
        await pilot.pause()
        assert len(log.log_widget.lines) >= 2                      # wrapped in a narrow log
        await pilot.resize_terminal(100, 20)
        await pilot.pause(0.1)
        assert len(log.log_widget.lines) == 1                      # one line again


@pytest.fixture
def held_sample(nowhere, monkeypatch):  # noqa: F811
    """Only the bundled sample is found, and its load waits until the test sets the event."""
    import threading

    monkeypatch.setattr(ds, "SAMPLE_DIR", Path(ds.__file__).resolve().parent / "data" / "mnist-sample")
    real_load, release = ds.load_dataset, threading.Event()

    def held_load(*args, **kwargs):
        release.wait(10)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(ds, "load_dataset", held_load)
    yield release
    release.set()


async def test_the_sample_panel_does_not_pop_up_over_typing(held_sample, tmp_path):
    """The data panel opening a second after start took what the user was typing."""
    release = held_sample
    app = real_app(tmp_path)
    async with app.run_test(size=(100, 34)) as pilot:
        await pilot.pause()
        app.form.query_one("#field-lr").focus()
        await press(pilot, "5")                                   # the user is typing ...
        release.set()                                              # ... when the sample arrives
        await wait_for(pilot, lambda: app.dataset is not None, what="the sample")
        await settle(pilot)
        assert not isinstance(app.screen, DataScreen)
        assert any("bundled sample stands in" in n.message for n in app._notifications)
        assert app.focused is app.form.query_one("#field-lr")


async def test_the_resume_question_stays_on_top_of_the_sample_panel(held_sample, tmp_path):
    """The resume question came first, then the sample's data panel over it: its keys did nothing."""
    release = held_sample
    data = make_dataset(n_train=300, n_test=50, side=28)
    session = TrainingSession(TrainConfig(dataset="mnist", hidden=(4,), epochs=3, val_size=50), data)
    for event in session.run():
        if isinstance(event, ev.EpochEnded):
            break
    save_recovery(session.checkpoint(last_completed_epoch=True), reason="connection lost (SIGHUP)",
                  directory=tmp_path / "state")
    app = TermnistApp(config_dir=tmp_path / "config", state_dir=tmp_path / "state")
    async with app.run_test(size=(100, 34)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the resume question")
        release.set()                                              # the sample arrives after it
        await wait_for(pilot, lambda: app.dataset is not None, what="the sample")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)               # not hidden by the data panel
        await press(pilot, "n")                                    # ... so its keys work
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="answered")


async def test_a_validation_size_fitted_to_the_sample_does_not_outlive_it(make_app, tmp_path):
    """The app used to write 2,000 into the form for the sample; the settings kept it and the
    full set then trained 58,000/2,000. Now the form keeps the user's value, and the run on a
    small set validates on a fitted size, for that run only, and says so."""
    small = make_dataset(n_train=600, n_test=50, side=8)
    app = make_app(small, trainer="thread")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values({**SMALL, "val_size": "10000"})
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="the run")
        assert any("validates on 120" in line for line in app.epoch_log.lines)
        assert any("600 train" not in line and "480 train / 120 val" in line for line in app.epoch_log.lines)
        assert app.form.values()["val_size"] == "10000"
        app.save_settings(now=True)
    saved = json.loads((tmp_path / "config" / "settings.json").read_text())
    assert saved["form"]["val_size"] == "10000"


async def test_data_on_the_command_line_beats_a_remembered_sample(tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps({"version": 1, "form": {"dataset": "mnist-sample"}}))
    seen: list[tuple[str, str | None]] = []
    data = make_dataset(n_train=300, n_test=50, side=28)

    def loader(name, data_dir):
        seen.append((name, data_dir))
        return data

    app = TermnistApp(data_dir=str(tmp_path), config_dir=config, load_dataset_fn=loader, autosave=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.form_dataset() == "mnist" and seen[0] == ("mnist", str(tmp_path))
        assert any("--data given" in line for line in app.epoch_log.lines)
    other = TermnistApp(data_dir=str(tmp_path), dataset="mnist-sample", config_dir=tmp_path / "c2",
                        load_dataset_fn=loader, autosave=False)
    async with other.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert any("--data does not apply to --dataset mnist-sample" in e for e in other.errors_seen)


@pytest.mark.parametrize("changed", [False, True])
async def test_settings_changed_is_said_only_when_they_differ(make_app, synthetic, changed):
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values(LONG)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.session is not None, what="the session")
        app.form.set_values({"lr": "0.05" if changed else LONG["lr"]})
        app.form.set_config(app.trainer.config)        # what a resume does: the same settings
        if changed:
            app.form.set_values({"lr": "0.05"})
        # (the lr is a live setting: what is said is that Enter applies it to this run)
        def said() -> bool:
            return any("settings changed" in line or "Enter applies it" in line for line in app.epoch_log.lines)

        if changed:
            await wait_for(pilot, said, what="the form's change said")     # (a loaded machine is slow)
        else:
            await pilot.pause(0.2)
        assert said() is changed
        await press(pilot, "f7")
        await wait_for(pilot, lambda: not app.training, what="the stop")


# ------------------------------------------------------------- paths the OS refuses, in the app
def refused_paths(tmp_path: Path) -> dict[str, str]:
    """Paths the operating system refuses (tests run as root: no EACCES, so a file used as a
    directory, and names too long)."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    return {"too long": str(tmp_path / ("x" * 300) / "m.npz"), "file as directory": str(a_file / "m.npz"),
            "missing directory": str(tmp_path / "nowhere" / "deeper" / "m.npz")}


@pytest.mark.parametrize("what", ["too long", "file as directory", "missing directory"])
async def test_save_and_load_with_a_refused_path_say_so_and_the_app_lives(make_app, synthetic, tmp_path, what):
    from textual.widgets import Input

    from tui.screens.dialogs import PathScreen

    path = refused_paths(tmp_path)[what]
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values(SMALL)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="the run")
        for key, busy in (("ctrl+s", "save"), ("ctrl+o", "load")):
            before = len(app.errors_seen)
            await press(pilot, key)
            await wait_for(pilot, lambda: isinstance(app.screen, PathScreen), what=f"the {busy} dialog")
            app.screen.query_one("#path", Input).value = path
            await press(pilot, "enter")
            await wait_for(pilot, lambda b=before, w=busy: len(app.errors_seen) > b and w not in app.busy,
                           what=f"the {busy} error")
            error = app.errors_seen[-1]
            assert app.is_running and "m.npz" in error and "Traceback" not in error, error   # names the file


@pytest.mark.parametrize("what", ["too long", "file as directory"])
async def test_the_data_panel_with_a_refused_directory_says_so(nowhere, tmp_path, what):  # noqa: F811
    from textual.widgets import Input

    directory = str(Path(refused_paths(tmp_path)[what]).parent)
    app = real_app(tmp_path)
    async with app.run_test(size=(100, 34)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen), what="the data panel")
        await press(pilot, "o")
        app.screen.query_one("#dir-input", Input).value = directory
        await press(pilot, "enter")
        await wait_for(pilot, lambda: any(directory[:40] in line for line in app.epoch_log.lines[-6:]),
                       what="a line naming the directory")
        await settle(pilot)
        assert app.is_running                                      # no traceback ended the app
        assert not any("Traceback" in line for line in app.epoch_log.lines)
