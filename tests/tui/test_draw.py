"""Draw a digit (F8): the keyboard alone draws a "1" the default recipe reads as 1; the mouse
paints too; an empty canvas asks for a digit; a model for another input size says why."""

from __future__ import annotations

import numpy as np
import pytest

from engine.presets import get_preset
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset
from tests.tui.conftest import press, settle, wait_for
from tests.tui.screen_text import screen_text
from tui.screens.draw import Canvas, DrawScreen


@pytest.fixture(scope="module")
def default_model(sample):
    """The `default` recipe, a few epochs on the bundled sample (a few seconds)."""
    session = TrainingSession(get_preset("default").replace(epochs=3, val_size=1000), sample)
    list(session.run())
    return session.checkpoint()


async def open_draw(pilot, model) -> DrawScreen:
    app = pilot.app
    await settle(pilot)
    app.model = model
    await press(pilot, "f8")
    await wait_for(pilot, lambda: isinstance(app.screen, DrawScreen), what="the draw screen")
    return app.screen


async def test_a_one_drawn_with_the_keyboard_alone_is_read_as_1(make_app, sample, default_model):
    app = make_app(sample)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_draw(pilot, default_model)
        assert "draw a digit" in screen_text(app)                 # empty: nothing predicted
        assert screen.prediction.probs is None
        await press(pilot, *["up"] * 6, "space", *["down"] * 12, "space")
        await pilot.pause(0.1)
        p = screen.prediction
        assert p.label == 1 and p.probs[1] > 0.5, p.probs
        text = screen_text(app)
        assert "It is a 1" in text and "The network sees (28x28)" in text
        # what the network saw: a centred stroke, in a 20x20 box, centred by its mass
        ys, xs = np.nonzero(p.image > 0.1)
        assert ys.min() >= 4 and ys.max() <= 23 and abs(xs.mean() - 13.5) < 1.5
        await press(pilot, "c")
        await pilot.pause(0.05)
        assert screen.prediction.probs is None                     # cleared


async def test_the_mouse_paints_and_x_erases(make_app, sample, default_model):
    app = make_app(sample)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_draw(pilot, default_model)
        canvas = screen.query_one(Canvas)
        await pilot.mouse_down(canvas, offset=(20, 3))
        await pilot.hover(canvas, offset=(20, 16))
        await pilot.mouse_up(canvas, offset=(20, 16))
        await pilot.pause(0.05)
        assert canvas.pixels.sum() > 0 and screen.prediction.probs is not None
        before = canvas.pixels.sum()
        canvas.cursor = (20, 20)
        await press(pilot, "x", "space", "down", "down", "space")
        assert canvas.pixels.sum() < before                        # the eraser took ink away


async def test_a_model_for_another_input_size_says_why(make_app):
    small = make_dataset(n_train=200, n_test=20, side=8)
    session = TrainingSession(TrainConfig(dataset="synthetic", hidden=(8,), epochs=1, val_size=20), small)
    list(session.run())
    app = make_app(small)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_draw(pilot, session.checkpoint())
        await press(pilot, "space")
        await pilot.pause(0.05)
        assert "Cannot classify a drawing" in screen_text(app) and "64 inputs" in screen_text(app)


async def test_no_model_no_canvas(make_app, synthetic):
    app = make_app(synthetic)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "f8")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, DrawScreen)
        assert any("needs a model" in n.message for n in app._notifications)
