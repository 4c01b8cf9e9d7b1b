"""Live changes in the app (tui/live.py): the lr keys, exact values typed in the form (Enter),
refusals next to the field, settings that cannot change live, one step / one epoch while
paused -- at 80x24 and 120x40, with the training process the app really uses."""

from __future__ import annotations

import re

import pytest
from textual.widgets import Input, Static

from tests.factories import make_dataset
from tests.tui.conftest import press, settle, wait_for

SIZES = [(80, 24), (120, 40)]
# runs until stopped; 19,900 training rows in batches of 4: 4,975 steps an epoch (the log keeps
# its last 100 lines: epochs of milliseconds would push the lines looked for out)
LONG = {"hidden": "16", "epochs": "100000", "batch_size": "4", "val_size": "100", "lr": "0.1"}


@pytest.fixture(scope="module")
def synthetic():
    return make_dataset(n_train=20_000, n_test=200, side=8)


def log_has(app, pattern: str) -> bool:
    """A log line (its "* " / "! " marker removed) matches ``pattern``."""
    return any(re.search(pattern, re.sub(r"^!*\*? ?", "", line)) for line in app.epoch_log.lines)


def error_text(app, field: str) -> str:
    return str(app.query_one(f"#error-{field}", Static).render())


async def start(pilot, app, values=LONG) -> None:
    await settle(pilot)
    app.form.set_values(values)
    await press(pilot, "f5")
    await wait_for(pilot, lambda: len(app.chart.data.train_loss) > 0, what="first steps")


async def type_into(pilot, app, field: str, text: str, enter: bool = True) -> Input:
    if app.panel != "form":
        app.set_panel("form", focus=False)      # the field below takes the focus, not the first one later
        await pilot.pause(0.05)
    widget = app.query_one(f"#field-{field}", Input)
    widget.focus()
    await pilot.pause(0.02)
    widget.value = text
    await pilot.pause(0.05)
    if enter:
        await press(pilot, "enter")
    return widget


async def stop(pilot, app) -> None:
    await press(pilot, "f7")
    await wait_for(pilot, lambda: not app.training, what="the run's end")


@pytest.mark.parametrize("size", SIZES)
async def test_lr_keys_double_and_halve_the_lr_even_in_a_focused_input(make_app, synthetic, size):
    app = make_app(synthetic)
    async with app.run_test(size=size) as pilot:
        await start(pilot, app)
        assert app.check_action("lr_up", ()) and app.check_action("lr_down", ())
        await press(pilot, "asterisk")
        await wait_for(pilot, lambda: log_has(app, r"^epoch \d+ step \d+: lr 0\.1 -> 0\.2$"), what="x2")
        app.set_panel("form", focus=False)      # the lr field keeps the focus given below
        await pilot.pause(0.05)
        lr = app.query_one("#field-lr", Input)
        lr.focus()
        await pilot.pause(0.05)
        assert lr.value == "0.2"                  # the form shows the lr in effect
        await press(pilot, "slash")               # a focused Input does not take it
        await wait_for(pilot, lambda: log_has(app, r": lr 0\.2 -> 0\.1$"), what="/2")
        assert lr.value == "0.1" and "*" not in lr.value and "/" not in lr.value
        assert [label for _, label in app.chart.data.marks] == ["lr 0.2", "lr 0.1"]
        assert app.trainer.live_config().lr == 0.1
        await stop(pilot, app)
        assert not app.check_action("lr_up", ())


async def test_the_lr_keys_type_as_usual_when_no_run_trains(make_app, synthetic):
    app = make_app(synthetic)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        hidden = app.query_one("#field-hidden", Input)
        hidden.focus()
        hidden.value = ""
        await pilot.press("asterisk", "slash")
        assert hidden.value == "*/"


@pytest.mark.parametrize("size", SIZES)
async def test_an_exact_value_applies_on_enter_and_a_bad_one_is_refused_next_to_the_field(
        make_app, synthetic, size):
    app = make_app(synthetic)
    async with app.run_test(size=size) as pilot:
        await start(pilot, app)
        await type_into(pilot, app, "lr", "0.03")
        await wait_for(pilot, lambda: log_has(app, r": lr 0\.1 -> 0\.03$"), what="lr typed")
        await type_into(pilot, app, "momentum", "0.5")
        await wait_for(pilot, lambda: log_has(app, r": momentum 0\.9 -> 0\.5$"), what="momentum typed")
        await type_into(pilot, app, "weight_decay", "0.0001")
        await wait_for(pilot, lambda: log_has(app, r": weight_decay 0 -> 0\.0001$"), what="wd typed")
        await type_into(pilot, app, "batch_size", "16")
        await wait_for(pilot, lambda: log_has(app, r": batch_size 4 -> 16$"), what="batch typed")
        changes = sum(1 for line in app.epoch_log.lines if "->" in line)
        for bad, why in (("0", "out of range"), ("-1", "out of range"), ("nan", "finite number"),
                         ("abc", "not a number")):
            await type_into(pilot, app, "lr", bad)
            await wait_for(pilot, lambda: "not applied" in error_text(app, "lr"), what=f"lr {bad} refused")
            assert why in error_text(app, "lr")
            assert log_has(app, rf"Learning rate {re.escape(bad)} refused: .*the run goes on unchanged")
        await pilot.pause(0.3)
        assert sum(1 for line in app.epoch_log.lines if "->" in line) == changes
        assert app.trainer.live_config().lr == 0.03 and app.training and not app.trainer.finished
        await type_into(pilot, app, "lr", "0.05")        # a good value again clears the error
        await wait_for(pilot, lambda: log_has(app, r": lr 0\.03 -> 0\.05$"), what="lr again")
        assert "not applied" not in error_text(app, "lr")
        await stop(pilot, app)


@pytest.mark.parametrize("size", SIZES)
async def test_a_setting_that_cannot_change_live_says_so(make_app, synthetic, size):
    app = make_app(synthetic)
    async with app.run_test(size=size) as pilot:
        await start(pilot, app)
        await type_into(pilot, app, "hidden", "32", enter=False)
        await wait_for(pilot, lambda: log_has(app, r"^Hidden layers cannot change while a run trains .*"
                                                   r"it applies to the next run$"), what="not live")
        await type_into(pilot, app, "epochs", "5")
        await wait_for(pilot, lambda: log_has(app, r"^Epochs cannot change while a run trains"), what="epochs")
        assert app.trainer.live_config().hidden == (16,)
        assert not any("->" in line for line in app.epoch_log.lines)
        await stop(pilot, app)


@pytest.mark.parametrize("size", SIZES)
async def test_one_step_and_one_epoch_while_paused(make_app, synthetic, size):
    app = make_app(synthetic)
    async with app.run_test(size=size) as pilot:
        await start(pilot, app)
        assert not app.check_action("step_once", ())
        await press(pilot, "f6")
        await wait_for(pilot, lambda: log_has(app, r"^paused at epoch \d+ step \d+$"), what="pause")
        paused = next(line for line in app.epoch_log.lines if line.startswith("* paused at"))
        epoch, step = map(int, re.findall(r"\d+", paused))
        assert app.check_action("step_once", ()) and app.check_action("epoch_once", ())
        version = app.chart.data.loss_version
        await press(pilot, "ctrl+n")
        await wait_for(pilot, lambda: log_has(app, rf"^one step: paused at epoch {epoch} step {step + 1}$"),
                       what="one step")
        assert app.chart.data.loss_version > version                  # the chart got the step
        rows = len([line for line in app.epoch_log.lines if re.match(r"^\s*\d+/\d+ ", line)])
        await press(pilot, "ctrl+t")
        await wait_for(pilot, lambda: log_has(app, rf"^one epoch: paused at epoch {epoch + 1} step 0$"),
                       what="one epoch")
        assert len([line for line in app.epoch_log.lines if re.match(r"^\s*\d+/\d+ ", line)]) == rows + 1
        assert app.trainer.paused and "PAUSED" in str(app.query_one("#status", Static).render())
        n = len(app.chart.data.train_loss)
        await pilot.pause(0.3)
        assert len(app.chart.data.train_loss) == n                      # still paused
        await press(pilot, "asterisk")                                  # a change while paused
        await wait_for(pilot, lambda: log_has(app, rf"^epoch {epoch + 1} step 0: lr 0\.1 -> 0\.2$"),
                       what="change while paused")
        await stop(pilot, app)


async def test_a_resumed_run_shows_its_earlier_changes_and_goes_on_with_them(make_app, tmp_path):
    from engine import events as ev
    from engine.recovery import save_recovery
    from engine.training import TrainConfig, TrainingSession

    small = make_dataset(n_train=600, n_test=200, side=8)
    config = TrainConfig(dataset="synthetic", hidden=(8,), epochs=3, batch_size=64, val_size=100, lr=0.1)
    session = TrainingSession(config, small, progress_every=1)
    for event in session.run():           # a run with a live change, cut after its second epoch
        if isinstance(event, ev.BatchProgress) and event.global_step == 3:
            session.change(lr=0.2)
        if isinstance(event, ev.EpochEnded) and event.epoch == 2:
            break
    save_recovery(session.checkpoint(last_completed_epoch=True), directory=tmp_path / "state")
    app = make_app(small, resume=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="the resumed run")
        assert log_has(app, r"^epoch 1 step 3: lr 0\.1 -> 0\.2$")
        assert [label for _, label in app.chart.data.marks] == ["lr 0.2"]
        assert app.form.values()["lr"] == "0.2"
        assert app.model.checkpoint().config.lr == 0.2


async def test_live_changes_also_when_training_in_a_thread_of_the_app(make_app, synthetic):
    app = make_app(synthetic, trainer="thread")       # the fallback when no process can start
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, app)
        await press(pilot, "asterisk")
        await wait_for(pilot, lambda: log_has(app, r": lr 0\.1 -> 0\.2$"), what="x2 in a thread")
        await press(pilot, "f6")
        await wait_for(pilot, lambda: log_has(app, r"^paused at epoch"), what="pause")
        await press(pilot, "ctrl+n")
        await wait_for(pilot, lambda: log_has(app, r"^one step: paused at epoch"), what="one step")
        await stop(pilot, app)


async def test_the_health_fix_halve_lr_is_a_live_change_during_a_run(make_app, synthetic):
    from tui.insight.health import ApplyFix
    from tui.screens.insight import InsightScreen

    app = make_app(synthetic)
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot, app)
        await press(pilot, "f9")
        await wait_for(pilot, lambda: isinstance(app.screen, InsightScreen), what="the insight screen")
        app.screen.post_message(ApplyFix("halve_lr"))
        await wait_for(pilot, lambda: log_has(app, r": lr 0\.1 -> 0\.05$"), what="the live halving")
        assert app.form.values()["lr"] == "0.05"
        await press(pilot, "escape")
        await stop(pilot, app)
