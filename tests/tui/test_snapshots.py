"""Snapshots of the main screen at fixed sizes, with fixed content (no real training).

Regenerate after a deliberate visual change:
    .venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update
and look at the SVGs in tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from textual.widgets import Input

from engine.training import TrainConfig
from tests.tui.conftest import settle
from engine import events as ev
from tui import messages as msg
from tui import runner as r
from tui.app import TermnistApp

CONFIG = TrainConfig(hidden=(64,), lr=0.1, epochs=3, batch_size=64, val_size=1000, schedule="cosine")
STEPS = 141


@pytest.fixture
def app(sample) -> TermnistApp:
    bundled = dataclasses.replace(sample, is_sample=True, source="bundled sample")
    return TermnistApp(load_dataset_fn=lambda name, data_dir: bundled, remember=False)


def finished_run(labels: np.ndarray) -> list[object]:
    """A deterministic three-epoch run, as the runner would report it."""
    updates: list[object] = [ev.RunStarted(config=CONFIG.to_dict(), n_train=9000, n_val=1000, n_test=2000,
                                           steps_per_epoch=STEPS,
                                           dataset="MNIST bundled sample (10000 train / 2000 test images)")]
    for epoch in range(1, 4):
        pts = tuple((g, 2.3 * math.exp(-g / 60) + 0.25 + 0.08 * math.sin(g * 1.7))
                    for g in range((epoch - 1) * STEPS + 1, epoch * STEPS + 1))
        updates.append(r.Points(pts, STEPS))
        updates.append(ev.EpochEnded(epoch=epoch, epochs=3, train_loss=0.9 / epoch, train_acc=0.80 + 0.05 * epoch,
                                     val_loss=0.7 / epoch + 0.1, val_acc=0.82 + 0.04 * epoch, seconds=4.2,
                                     samples_per_s=2142.0, lr=0.1, global_step=epoch * STEPS))
    n = len(labels)
    guess = labels.astype(int).copy()
    wrong = np.arange(n) % 9 == 4                       # every ninth image, from the fifth, is wrong
    guess[wrong] = (guess[wrong] + 3) % 10
    proba = np.full((n, 10), 0.02, dtype=np.float32)
    proba[np.arange(n), guess] = 0.5 + (np.arange(n) % 5) * 0.1
    updates.append(r.make_predictions(proba, labels, "epoch 3"))
    updates.append(ev.Finished(epochs_done=3, test_loss=0.31, test_acc=0.912, seconds=13.4))
    return updates


async def show_finished(pilot) -> None:
    app = pilot.app
    await settle(pilot)
    app.trainer.run_count = 1
    for update in finished_run(app.dataset.y_test):
        app.post_message(msg.wrap(update))
    await pilot.pause()
    app.epoch_log.set_progress("idle", 1, 1)
    app.chart.redraw_if_changed()
    await quiet(pilot)


async def quiet(pilot) -> None:
    app = pilot.app
    for field in app.query(Input):
        field.cursor_blink = False
    app.clear_notifications()
    await pilot.pause()


def test_settings_panel_80x24(snap_compare, app):
    async def before(pilot):
        await settle(pilot)
        await quiet(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_training_panel_80x24(snap_compare, app):
    async def before(pilot):
        await show_finished(pilot)
        app.set_panel("train")
        await quiet(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_digits_panel_80x24(snap_compare, app):
    async def before(pilot):
        await show_finished(pilot)
        app.set_panel("digits")
        app.preview.focus()
        await quiet(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_everything_120x40(snap_compare, app):
    async def before(pilot):
        await show_finished(pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=before)


def test_accuracy_chart_and_blocks_120x40(snap_compare, app):
    async def before(pilot):
        await show_finished(pilot)
        app.action_toggle_chart()
        app.preview.set_mode("blocks")
        app.chart.redraw_if_changed()
        await quiet(pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=before)


def test_too_small_50x15(snap_compare, app):
    async def before(pilot):
        await settle(pilot)
        await quiet(pilot)

    assert snap_compare(app, terminal_size=(50, 15), run_before=before)
