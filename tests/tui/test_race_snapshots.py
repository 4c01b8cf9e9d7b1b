"""Snapshots of the Race and LR finder screens at 80x24, fed fixed events (no training, no
timing text). Regenerate after a deliberate change:
    pytest tests/tui/test_race_snapshots.py --snapshot-update
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from textual.widgets import Input

from engine.lr_find import summarise
from engine.race import RaceEpoch, RaceFinished, RaceResult, RaceStarted, RaceSteps
from tests.tui.conftest import settle
from tui.app import TermnistApp
from tui.screens.lr_find import LRFindScreen
from tui.screens.race import RaceScreen

NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
LRS = (0.1, 0.05, 0.05, 0.05, 0.001, 0.001)
SPE = 100
RATES = (40, 22, 20, 18, 25, 30)          # how fast each curve falls, in steps


def race_events() -> list[object]:
    out: list[object] = [RaceStarted(optimizers=NAMES, lrs=LRS, epochs=3, steps_per_epoch=SPE, n_train=8000,
                                     n_val=2000, seed=0, config={}, dataset="MNIST")]
    for epoch in range(1, 4):
        for k, name in enumerate(NAMES):
            pts = tuple((g, 2.3 * math.exp(-g / RATES[k]) + 0.15 + 0.02 * k + 0.05 * math.sin(g * (1 + k)))
                        for g in range((epoch - 1) * SPE + 1, epoch * SPE + 1))
            out.append(RaceSteps(optimizer=name, epoch=epoch, step=SPE, global_step=epoch * SPE,
                                 loss=pts[-1][1], points=pts))
        for k, name in enumerate(NAMES):
            acc = 0.97 - 0.06 / epoch - 0.004 * abs(k - 2)
            out.append(RaceEpoch(optimizer=name, epoch=epoch, epochs=3, train_loss=0.3 / epoch, train_acc=acc,
                                 val_loss=0.3 / epoch + 0.05, val_acc=acc, seconds=1.0))
    order = sorted(range(6), key=lambda k: abs(k - 2))
    results = tuple(RaceResult(rank=i + 1, optimizer=NAMES[k], lr=LRS[k], epochs_done=3, train_loss=0.1,
                               train_acc=0.95, val_loss=0.15, val_acc=0.95 - 0.004 * abs(k - 2), test_loss=0.15,
                               test_acc=0.95, diverged=False, seconds=1.0) for i, k in enumerate(order))
    out.append(RaceFinished(results=results, seconds=12.3, reason="completed", batch_order="0123456789abcdef"))
    return out


def lr_result():
    lrs = [1e-6 * (1e7) ** (i / 99) for i in range(88)]
    smooth = [2.3 - 1.6 * math.exp(-((math.log10(x) + 0.8) ** 2) / 1.2) + (3.0 if x > 3 else 0.0) * (x - 3)
              for x in lrs]
    return summarise(lrs, smooth, smooth, "exploded", "momentum")


@pytest.fixture
def app(sample) -> TermnistApp:
    bundled = dataclasses.replace(sample, is_sample=True, source="bundled sample")
    return TermnistApp(load_dataset_fn=lambda name, data_dir: bundled, remember=False)


async def quiet(pilot) -> None:
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("mode", ["loss", "accuracy"])
def test_race_screen_80x24(snap_compare, app, mode):
    async def before(pilot):
        await settle(pilot)
        screen = RaceScreen()
        app.push_screen(screen)
        await pilot.pause()
        for event in race_events():
            screen.feed(event)
        if mode == "accuracy":
            screen.chart.toggle_mode()
        screen.chart.redraw_if_changed()
        screen.query_one("#race-chart").focus()
        await quiet(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_lr_finder_screen_80x24(snap_compare, app):
    async def before(pilot):
        await settle(pilot)
        screen = LRFindScreen(autostart=False)
        app.push_screen(screen)
        await pilot.pause()
        screen.feed(lr_result())
        await quiet(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)
