"""The Race screen (ctrl+r) and the LR finder screen (ctrl+l) at 80x24, driven by Pilot."""

from __future__ import annotations

import time

from tests.tui.conftest import press, settle, wait_for
from tests.tui.screen_text import screen_text
from tui.screens.lr_find import LRFindScreen
from tui.screens.race import RaceScreen

SMALL = {"hidden": "16", "epochs": "2", "batch_size": "32", "val_size": "100", "lr": "0.1"}


async def open_screen(pilot, key, cls):
    await settle(pilot)
    await press(pilot, key)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, cls), what=cls.__name__)
    return pilot.app.screen


async def test_race_runs_overlays_curves_with_a_legend_and_ranks(make_app, synthetic):
    app = make_app(synthetic, remember=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.form.set_values(SMALL)
        screen = await open_screen(pilot, "ctrl+r", RaceScreen)
        screen.query_one("#race-optimizers").value = "sgd,momentum,adam"
        await press(pilot, "f5")
        await wait_for(pilot, lambda: screen.finished is not None, what="the race to finish")
        data = screen.chart.data
        assert list(data.curves) == ["sgd", "momentum", "adam"]
        assert all(len(c.steps) > 0 and len(c.epochs) == 2 for c in data.curves.values())
        assert screen.chart._drawn is not None                  # the chart was drawn
        text = screen_text(app)
        for name in ("sgd", "momentum", "adam"):
            assert name in text
        assert "1." in text and "leads (" in text             # ranked legend, status
        assert [r.rank for r in screen.finished.results] == [1, 2, 3]
        await press(pilot, "f2")
        await pilot.pause(0.1)
        assert screen.chart.mode == "accuracy"
        await press(pilot, "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RaceScreen), what="the race screen to close")


async def test_race_input_errors_are_one_line_on_the_screen(make_app, synthetic):
    app = make_app(synthetic, remember=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.form.set_values(SMALL)
        screen = await open_screen(pilot, "ctrl+r", RaceScreen)
        screen.query_one("#race-optimizers").value = "sgd,lion"
        await press(pilot, "f5")
        await pilot.pause(0.05)
        assert "Optimizers: unknown optimizer 'lion'" in screen_text(app)
        screen.query_one("#race-optimizers").value = "sgd"
        screen.query_one("#race-lrs").value = "adam=0.1"
        await press(pilot, "f5")
        await pilot.pause(0.05)
        assert "LRs: 'adam' is not in the race" in screen_text(app)
        assert not screen.running


async def test_escape_stops_a_long_race_and_quitting_does_not_hang(make_app, synthetic):
    app = make_app(synthetic, remember=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.form.set_values({**SMALL, "epochs": "100000", "batch_size": "1"})
        screen = await open_screen(pilot, "ctrl+r", RaceScreen)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: not screen.chart.data.empty, what="the race to start")
        await press(pilot, "escape")                      # stops the race, keeps the screen
        await wait_for(pilot, lambda: screen.finished is not None, what="the race to stop")
        assert screen.finished.reason == "stopped" and isinstance(app.screen, RaceScreen)
        await press(pilot, "f5")                          # again, then quit while it runs
        await wait_for(pilot, lambda: screen.running and screen.race is not None and not screen.chart.data.empty,
                       what="the second race")
        race = screen.race
        t0 = time.monotonic()
        app.exit()
    assert time.monotonic() - t0 < 10
    assert race.stop_requested                            # the worker was told to stop
    deadline = time.monotonic() + 10
    while race._running and time.monotonic() < deadline:  # noqa: SLF001 - and it did
        time.sleep(0.05)
    assert not race._running                              # noqa: SLF001


async def test_lr_finder_plots_and_enter_puts_the_suggestion_in_the_form(make_app, synthetic):
    app = make_app(synthetic, remember=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.form.set_values({**SMALL, "optimizer": "sgd"})
        screen = await open_screen(pilot, "ctrl+l", LRFindScreen)
        await wait_for(pilot, lambda: screen.result is not None, what="the range test")
        r = screen.result
        assert r.suggestion is not None and r.lrs[0] < r.suggestion < r.lrs[-1]
        assert screen.chart.suggestion == r.suggestion and len(screen.chart.lrs) == len(r.lrs)
        text = screen_text(app)
        assert "suggested lr" in text and "1e-6" in text and "learning rate (log scale)" in text
        await press(pilot, "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, LRFindScreen), what="the screen to close")
        want = float(f"{r.suggestion:.2g}")
        assert float(app.form.values()["lr"]) == want
        config, errors = app.form.get_config()
        assert config is not None and config.lr == want and not errors
