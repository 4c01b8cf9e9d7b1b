"""Snapshots of the training panel at 80x24, and of everything at 120x40, with a live change
marked on the loss chart and written in the epoch log (fixed content, no real training)."""

from __future__ import annotations

from engine import events as ev
from tests.tui.test_snapshots import STEPS, app, finished_run, quiet, settle  # noqa: F401 - app: fixture
from tui import messages as msg


async def show_a_live_change(pilot, app) -> None:  # noqa: F811
    await settle(pilot)
    app.trainer.run_count = 1
    updates = finished_run(app.dataset.y_test)
    at = next(i for i, u in enumerate(updates) if isinstance(u, ev.EpochEnded)) + 1
    updates.insert(at, ev.HyperparamsChanged(epoch=2, step_in_epoch=0, global_step=STEPS, field="lr",
                                             old=0.1, new=0.2))
    for update in updates:
        app.post_message(msg.wrap(update))
    await pilot.pause()
    app.epoch_log.set_progress("idle", 1, 1)
    app.set_panel("train")
    app.chart.redraw_if_changed()
    await quiet(pilot)
    assert app.chart.data.marks == [(STEPS, "lr 0.2")]
    assert any(line.endswith("epoch 2 step 0: lr 0.1 -> 0.2") for line in app.epoch_log.lines)


def test_everything_with_a_live_change_120x40(snap_compare, app):  # noqa: F811
    async def before(pilot):
        await show_a_live_change(pilot, app)

    assert snap_compare(app, terminal_size=(120, 40), run_before=before)


def test_training_panel_with_a_live_change_80x24(snap_compare, app):  # noqa: F811
    async def before(pilot):
        await show_a_live_change(pilot, app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)
