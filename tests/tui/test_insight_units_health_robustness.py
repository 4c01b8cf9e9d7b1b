"""The Units, Health and Robustness insight views, each mounted alone in a minimal host app and
fed a ModelInput (unavailable -> compute in a thread -> show) as the Insight screen does: the
figures on screen are engine.insight's for the same small, known model."""

from __future__ import annotations

import types

import numpy as np
import pytest
from textual.app import App, ComposeResult

from engine.insight import health as eh
from engine.insight.robustness import robustness_curves
from engine.insight.units import layer_strip, responsive_units
from engine.mlp import MLP
from tests.factories import make_dataset
from tests.tui.conftest import settle
from tests.tui.insight_host import ViewHost, train_small
from tests.tui.screen_text import screen_text
from tui.insight import ModelInput, registered
from tui.insight.fixes import WEIGHT_DECAY_START, FixError, apply_fix_to_form
from tui.insight.health import ApplyFix, HealthView, sample_indices
from tui.insight.robustness import ROBUST_IMAGES, RobustnessView
from tui.insight.units import UnitGrid, UnitsView
from tui.terminal import ASCII_CLASS


@pytest.fixture(scope="module")
def trained(sample):
    """784-32-16-10 ReLU, two epochs on the bundled sample (seeded)."""
    return train_small(sample, epochs=2)


@pytest.fixture
def inp(sample, trained):
    model, history = trained
    return ModelInput(model, sample, history, "epoch 2")


def test_the_three_views_are_registered():
    names = [v.name for v in registered()]
    assert {"units", "health", "robustness"} <= set(names)
    assert names.index("units") < names.index("health") < names.index("robustness")


# -- Units ------------------------------------------------------------------------------------------
async def test_units_shows_the_engines_probabilities_and_pages(inp):
    app = ViewHost(UnitsView(), inp)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.feed()
        await pilot.pause()
        grid = app.query_one(UnitGrid)
        text = screen_text(app)
        assert "units 1-6 of 32  page 1/6" in text and grid.shown_units == list(range(6))
        x = inp.dataset.x_test[0].reshape(-1).astype(np.float32) / np.float32(255)
        probs = layer_strip(inp.model, x)[-1].values
        top = int(np.argmax(probs))
        assert f"pred {top}" in text and f"true {int(inp.dataset.y_test[0])}" in text
        bar_line = next(line for line in text.splitlines() if line.rstrip().endswith(f"{probs[top] * 100:5.1f}%"))
        assert f" {top} " in bar_line and "\u2588" in bar_line
        await pilot.press("pagedown")
        await pilot.pause()
        assert "units 7-12 of 32  page 2/6" in screen_text(app) and grid.shown_units == list(range(6, 12))
        await pilot.press("pagedown", "pagedown", "pagedown", "pagedown", "pagedown")
        await pilot.pause()
        assert "units 31-32 of 32  page 6/6" in screen_text(app)        # stops at the last page
        await pilot.press("pageup")
        await pilot.pause()
        assert "page 5/6" in screen_text(app)
        await pilot.press("[", "[", "]")                      # the same, where PgUp/PgDn are missing
        await pilot.pause()
        assert "page 4/6" in screen_text(app)


async def test_units_at_120x40_uses_the_room(inp):
    app = ViewHost(UnitsView(), inp)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.feed()
        await pilot.pause()
        grid = app.query_one(UnitGrid)
        assert grid.per_page >= 15 and f"page 1/{grid.n_pages}" in screen_text(app)


async def test_units_highlight_follows_the_selected_digit(inp):
    app = ViewHost(UnitsView(), inp)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.feed()
        await pilot.press("right", "right")
        await pilot.pause()
        view = app.query_one(UnitsView)
        assert view.index == 2 and "test #2 " in screen_text(app)
        x = inp.dataset.x_test[2].reshape(-1).astype(np.float32) / np.float32(255)
        expected = {u: a for u, a in responsive_units(inp.model, x, top=8) if a > 0}
        assert app.query_one(UnitGrid).highlight == expected and expected
        await pilot.press("o")                      # order by response: the most active unit first
        await pilot.pause()
        best = max(expected, key=lambda u: expected[u])
        grid = app.query_one(UnitGrid)
        assert grid.shown_units[0] == best
        assert f"*{best} " in screen_text(app) and "by response to #2" in screen_text(app)
        await pilot.press("7")                      # the next test image of class 7
        await pilot.pause()
        assert int(inp.dataset.y_test[view.index]) == 7 and view.index > 2
        at = view.index
        await pilot.press("left")
        await pilot.pause()
        assert view.index == at - 1
        await pilot.press("o")
        await pilot.pause()
        assert app.query_one(UnitGrid).shown_units[:3] == [0, 1, 2]


async def test_units_ascii_mode_draws_the_diverging_ramp(inp):
    app = ViewHost(UnitsView(), inp)
    async with app.run_test(size=(80, 24)) as pilot:
        app.add_class(ASCII_CLASS)
        await app.feed()
        await pilot.pause()
        text = screen_text(app)
        grid_part = "\n".join(line[:45] for line in text.splitlines()[2:18])
        assert "\u2580" not in grid_part and any(c in grid_part for c in "Oo#+")


def test_units_unavailable_explains(sample):
    view = UnitsView()
    no_hidden = MLP((784, 10), rng=np.random.default_rng(0))
    assert "hidden layer" in view.unavailable(ModelInput(no_hidden, sample))
    flat = types.SimpleNamespace(x_test=np.zeros((3, 20), np.uint8), y_test=np.zeros(3), image_shape=(1, 20))
    reason = view.unavailable(ModelInput(MLP((20, 8, 3), rng=np.random.default_rng(0)), flat))
    assert reason is not None and "20 inputs" in reason and "not a square image" in reason
    other = MLP((64, 8, 10), rng=np.random.default_rng(0))
    assert "64 inputs" in view.unavailable(ModelInput(other, sample))
    assert view.unavailable(ModelInput(MLP((784, 8, 10), rng=np.random.default_rng(0)), sample)) is None


async def test_units_on_8x8_digits():
    ds = make_dataset(side=8)
    model, history = train_small(ds, hidden=(16,), val_size=100, epochs=2)
    app = ViewHost(UnitsView(), ModelInput(model, ds, history))
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.view.unavailable(app.inp) is None
        await app.feed()
        await pilot.pause()
        grid = app.query_one(UnitGrid)
        assert grid.tiling()[2:] == (8, 4)                # 8x8 weights: 8 cells wide, 4 rows of half-blocks
        assert "units 1-" in screen_text(app) and "of 16" in screen_text(app)


# -- Health -----------------------------------------------------------------------------------------
async def test_health_shows_the_engines_gradients_and_dead_units(inp):
    app = ViewHost(HealthView(), inp)
    async with app.run_test(size=(80, 24)) as pilot:
        result = await app.feed()
        await pilot.pause()
        text = screen_text(app)
        ds = inp.dataset
        idx = sample_indices(len(ds.y_test), 512)
        x = ds.x_test[idx].reshape(len(idx), -1).astype(np.float32) / np.float32(255)
        copy = MLP.from_weights(inp.model.architecture(), inp.model.params)
        grads = eh.gradient_strength(copy, x, ds.y_test[idx].astype(np.int64))
        dead = eh.dead_units(inp.model, x)
        assert "measured on 512 test images" in text
        for i, g in enumerate(grads):
            row = next(line for line in text.splitlines() if line.startswith(g.name))
            assert f"{g.grad_rms:.2e}" in row and f"{g.weight_rms:.2e}" in row and f"{g.ratio:.2e}" in row
            assert (f"{dead[i]:.1%}" if i < len(dead) else "output") in row
        assert [g.grad_rms for g in result.signals.gradients] == pytest.approx([g.grad_rms for g in grads])
        last = inp.history[-1]
        assert f"loss train {last['train_loss']:.4f} / val {last['val_loss']:.4f}" in text
        assert "No hints" in text


OVERFIT = [{"epoch": i + 1, "train_loss": t, "val_loss": v, "train_acc": 0.9 + 0.02 * i, "val_acc": 0.85}
           for i, (t, v) in enumerate([(1.0, 0.9), (0.5, 0.6), (0.3, 0.7), (0.2, 0.8)])]


async def test_health_hint_fix_keys_post_apply_fix(inp):
    app = ViewHost(HealthView(), ModelInput(inp.model, inp.dataset, OVERFIT, "epoch 4"))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.feed()
        await pilot.pause()
        text = screen_text(app)
        assert "memorising" in text and "[1]  add weight decay (next run)" in text
        assert "[2]  augment with random shifts (next run)" in text
        await pilot.press("1", "2")
        await pilot.pause()
        await settle(pilot)
        assert [m.code for m in app.messages if isinstance(m, ApplyFix)] == [eh.FIX_WEIGHT_DECAY, eh.FIX_AUGMENT]
        await pilot.press("4")                                 # no fourth fix: nothing asked
        await pilot.pause()
        await settle(pilot)
        assert len([m for m in app.messages if isinstance(m, ApplyFix)]) == 2


async def test_health_offers_the_fix_key_only_when_a_hint_has_a_fix(inp):
    healthy = [{"epoch": 1, "train_loss": 0.3, "val_loss": 0.31, "train_acc": 0.9, "val_acc": 0.9}]
    app = ViewHost(HealthView(), ModelInput(inp.model, inp.dataset, healthy, "epoch 1"))
    async with app.run_test(size=(80, 24)) as pilot:
        result = await app.feed()
        await pilot.pause()
        assert result.fixes == [] and "No hints" in screen_text(app)
        assert app.view.check_action("fix", (1,)) is None            # offered disabled, does nothing
        await pilot.press("1")
        await pilot.pause()
        assert not [m for m in app.messages if isinstance(m, ApplyFix)]
        await app.feed(ModelInput(inp.model, inp.dataset, OVERFIT, "epoch 4"))
        await pilot.pause()
        assert app.view.check_action("fix", (1,)) is True


async def test_health_uses_step_losses_from_extra(inp):
    flat = ModelInput(inp.model, inp.dataset, (), "loaded", extra={"step_losses": [2.3] * 200, "batch_size": 64})
    app = ViewHost(HealthView(), flat)
    async with app.run_test(size=(80, 24)) as pilot:
        result = await app.feed()
        await pilot.pause()
        assert [h.code for h in result.hints] == ["flat"] and result.fixes == [eh.FIX_RAISE_LR]
        assert "barely moves" in screen_text(app) and "no training history" in screen_text(app)
        await pilot.press("1")
        await pilot.pause()
        await settle(pilot)
        assert [m.code for m in app.messages if isinstance(m, ApplyFix)] == [eh.FIX_RAISE_LR]
        boom = ModelInput(inp.model, inp.dataset, (), extra={"step_losses": [2.3] * 20, "diverged": True})
        result = await app.feed(boom)
        assert result.hints[0].code == "exploding" and result.fixes[0] == eh.FIX_HALVE_LR


class FakeForm:
    def __init__(self, **values: str) -> None:
        from engine.config import TrainConfig

        self.base = TrainConfig()
        self._values = {"lr": "0.05", "weight_decay": "0", "activation": "relu", **values}

    def values(self) -> dict[str, str]:
        return dict(self._values)

    def set_values(self, values: dict[str, str]) -> None:
        self._values.update(values)


def test_apply_fix_to_form_changes_the_next_run():
    form = FakeForm()
    assert apply_fix_to_form(eh.FIX_HALVE_LR, form) == "Learning rate 0.05 -> 0.025 for the next run"
    apply_fix_to_form(eh.FIX_RAISE_LR, form)
    apply_fix_to_form(eh.FIX_RAISE_LR, form)
    assert form.values()["lr"] == "0.1"
    apply_fix_to_form(eh.FIX_WEIGHT_DECAY, form)
    assert float(form.values()["weight_decay"]) == WEIGHT_DECAY_START
    apply_fix_to_form(eh.FIX_WEIGHT_DECAY, form)
    assert float(form.values()["weight_decay"]) == 2 * WEIGHT_DECAY_START
    apply_fix_to_form(eh.FIX_LEAKY_RELU, form)
    assert form.values()["activation"] == "leaky_relu"
    assert "shift" in apply_fix_to_form(eh.FIX_AUGMENT, form) and form.base.augment == "shift"
    with pytest.raises(FixError, match="not a number"):
        apply_fix_to_form(eh.FIX_HALVE_LR, FakeForm(lr="abc"))
    with pytest.raises(ValueError, match="unknown fix"):
        apply_fix_to_form("reboot", form)


async def test_apply_fix_to_the_real_settings_form():
    from engine.config import TrainConfig
    from tui.widgets.hyperparameter_form import HyperparameterForm

    class FormApp(App):
        def compose(self) -> ComposeResult:
            yield HyperparameterForm({}, ["mnist"], id="form")

    app = FormApp()
    async with app.run_test(size=(80, 40)) as pilot:
        form = app.query_one(HyperparameterForm)
        form.set_config(TrainConfig(lr=0.08))
        await pilot.pause()
        for code in (eh.FIX_HALVE_LR, eh.FIX_WEIGHT_DECAY, eh.FIX_LEAKY_RELU, eh.FIX_AUGMENT):
            apply_fix_to_form(code, form)
        await pilot.pause()
        config, errors = form.get_config()
        assert errors == {} and config is not None
        assert (config.lr, config.weight_decay, config.activation, config.augment) == (
            0.04, WEIGHT_DECAY_START, "leaky_relu", "shift")


# -- Robustness -------------------------------------------------------------------------------------
async def test_robustness_shows_the_engines_accuracies(inp):
    app = ViewHost(RobustnessView(), inp)
    async with app.run_test(size=(80, 24)) as pilot:
        result = await app.feed()
        await pilot.pause()
        text = screen_text(app)
        ds = inp.dataset
        idx = sample_indices(len(ds.y_test), ROBUST_IMAGES)
        curves = robustness_curves(inp.model, ds.x_test[idx], ds.y_test[idx], ds.max_value, seed=0)
        assert f"accuracy on {ROBUST_IMAGES:,} of {len(ds.y_test):,} test images" in text
        assert [c.accuracy for c in result.curves] == [c.accuracy for c in curves]
        for c in curves:
            row = next(line for line in text.splitlines() if line.startswith(f"\u2501 {c.name}"))
            for lv, acc in zip(c.levels, c.accuracy):
                assert f"{lv:g}:{acc:.1%}" in row
        assert "clean" in text and "acc %" in text             # the chart's axis


async def test_robustness_on_8x8_digits_says_what_is_left_out():
    ds = make_dataset(side=8)
    model, history = train_small(ds, hidden=(16,), val_size=100, epochs=2)
    app = ViewHost(RobustnessView(), ModelInput(model, ds, history))
    async with app.run_test(size=(100, 30)) as pilot:
        result = await app.feed()
        await pilot.pause()
        assert [c.name for c in result.curves] == ["noise", "rotation"]
        text = screen_text(app)
        assert "thicker: unavailable, 8x8 images are too small" in text
        assert f"accuracy on {len(ds.y_test)} of {len(ds.y_test)} test images" in text


def test_robustness_and_health_refuse_a_model_for_other_images(sample):
    other = ModelInput(MLP((64, 8, 10), rng=np.random.default_rng(0)), sample)
    for view in (RobustnessView(), HealthView()):
        assert "takes 64 inputs" in view.unavailable(other)


def test_robustness_subsamples_with_a_fixed_seed(inp):
    from tui.insight.robustness import measure

    a, b = measure(inp, n_images=300), measure(inp, n_images=300)
    assert a.n_images == 300 and a.n_total == len(inp.dataset.y_test) and a.curves == b.curves
    ds = inp.dataset
    idx = sample_indices(len(ds.y_test), 300)
    assert len(set(idx.tolist())) == 300
    assert a.curves == robustness_curves(inp.model, ds.x_test[idx], ds.y_test[idx], ds.max_value, seed=0)
    assert "accuracy on 300 of 2,000 test images (a fixed sample, seed 0)" in table_text(a)


def test_robustness_legend_is_the_table_not_a_box_over_the_curves(inp):
    from tui.insight.robustness import COLOURS, MARKERS, RICH_COLOURS, RobustnessChart, measure, table

    r = measure(inp, n_images=200)
    plain = table(r, ascii_mode=True).plain.splitlines()[1:]
    assert [line.split()[:2] for line in plain] == [[MARKERS[c.name], c.name] for c in r.curves]
    text = table(r)
    keyed = [text.plain[s.start:s.end] for s in text.spans]
    styles = {k.split()[1]: str(s.style) for k, s in zip(keyed, text.spans) if "\u2501" in k}
    assert styles == {c.name: RICH_COLOURS[c.name] for c in r.curves} and set(styles) <= set(COLOURS)
    chart = RobustnessChart()
    chart.plot(r.curves)
    assert "noise" not in chart.plt.build()          # no legend drawn inside the chart


def table_text(result) -> str:
    from tui.insight.robustness import table

    return table(result).plain


def test_health_table_names_the_right_unit_measure(inp):
    from tui.insight.health import measure, render

    sig_model = MLP((784, 16, 10), activation="sigmoid", rng=np.random.default_rng(0))
    text = render(measure(ModelInput(sig_model, inp.dataset))).plain
    assert "saturated" in text.splitlines()[1]
    leaky = MLP((784, 16, 10), activation="leaky_relu", rng=np.random.default_rng(0))
    row = next(line for line in render(measure(ModelInput(leaky, inp.dataset))).plain.splitlines()
               if line.startswith("dense0"))
    assert row.split()[4] == "-"


async def test_health_on_a_real_oscillating_run_offers_halving_the_lr(sample):
    # a real run at 10x the healthy learning rate (momentum 0.9), its step losses handed over in
    # ModelInput.extra as the Insight screen does
    from engine import events as ev
    from engine.datasets import Dataset
    from engine.training import TrainConfig, TrainingSession

    ds = Dataset(name="mnist", title="MNIST", x_train=sample.x_train[:3000], y_train=sample.y_train[:3000],
                 x_test=sample.x_test[:500], y_test=sample.y_test[:500], class_names=sample.class_names,
                 source=sample.source, is_sample=True, max_value=sample.max_value)
    cfg = TrainConfig(hidden=(64,), epochs=3, val_size=1000, lr=0.5, seed=0)
    session = TrainingSession(cfg, ds, progress_every=10)
    losses: list[float] = []
    for e in session.run():
        if isinstance(e, ev.BatchProgress):
            losses += [loss for _, loss in e.points]
    inp = ModelInput(session.checkpoint().model, ds, session.history, "epoch 3",
                     extra={"step_losses": losses, "batch_size": cfg.batch_size})
    app = ViewHost(HealthView(), inp)
    async with app.run_test(size=(80, 24)) as pilot:
        result = await app.feed()
        await pilot.pause()
        assert "oscillating" in [h.code for h in result.hints] and result.fixes[0] == eh.FIX_HALVE_LR
        assert "learning rate is probably too high" in " ".join(screen_text(app).split())   # wrapped
        assert "[1]  halve the learning rate" in screen_text(app)
        await pilot.press("1")
        await pilot.pause()
        assert [m.code for m in app.messages] == [eh.FIX_HALVE_LR]
