"""The Insight screen (F9): the confusion matrix and worst mistakes views show the numbers
engine.metrics / engine.insight give for a small known model; the normalise toggle; a cell's
images; the filters; the exports; a model for another input size; no model; the refresh at
each epoch end of a real (tiny) run, reusing the preview's probabilities."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from engine.insight.confusion import cell_indices, most_confused
from engine.insight.mistakes import worst_mistakes
from engine.metrics import confusion_matrix, per_class_accuracy_from_confusion
from engine.training import TrainConfig, TrainingSession, predict_images
from tests.factories import make_dataset
from tests.tui.conftest import press, settle, wait_for
from tests.tui.screen_text import screen_text
from tui.insight.confusion import CellImagesScreen, ConfusionPanel
from tui.insight.mistakes import MistakesPanel
from tui.screens.digit_detail import DigitScreen
from tui.screens.insight import NO_MODEL, InsightScreen


@pytest.fixture(scope="module")
def small_model(sample):
    """784-32-10, one epoch on the bundled sample (about 89% on its 2,000 test images)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        session = TrainingSession(TrainConfig(hidden=(32,), epochs=1, val_size=1000, seed=0), sample)
        list(session.run())
    return session.checkpoint()


@pytest.fixture(scope="module")
def truth(sample, small_model):
    """What the engine says of the small model: probabilities, predictions, the matrix."""
    model = small_model.model
    probs = predict_images(model, sample.x_test, sample.max_value, model.dtype)
    y = sample.y_test.astype(np.int64)
    preds = probs.argmax(axis=1)
    return probs, y, preds, confusion_matrix(y, preds, 10)


async def open_insight(pilot, model, views: int = 1) -> InsightScreen:
    app = pilot.app
    await settle(pilot)
    app.model = model
    await press(pilot, "f9")
    await wait_for(pilot, lambda: isinstance(app.screen, InsightScreen), what="the insight screen")
    screen = app.screen
    await wait_for(pilot, lambda: screen.computed >= views, what="the view computed")
    await pilot.pause(0.05)
    return screen


def lines_of(app) -> list[str]:
    return screen_text(app).splitlines()


async def test_confusion_counts_and_accuracy_match_the_engine(make_app, sample, small_model, truth, tmp_path):
    probs, y, preds, cm = truth
    app = make_app(sample)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_insight(pilot, small_model)
        screen.export_dir = tmp_path
        assert screen.active == "confusion"
        panel = screen.query_one(ConfusionPanel)
        assert app.focused is panel
        np.testing.assert_array_equal(panel.result.view.counts, cm)
        per_class = per_class_accuracy_from_confusion(cm)
        rows = {line.split()[0]: line.split() for line in lines_of(app) if line.strip()[:1].isdigit()}
        for t in range(10):
            row = rows[str(t)]
            assert [int(v) for v in row[1:11]] == [int(v) for v in cm[t]], row
            assert row[11] == f"{per_class[t] * 100:.1f}%"
        text = screen_text(app)
        assert f"accuracy {np.trace(cm) / cm.sum() * 100:.2f}%" in text
        top = most_confused(cm, 5)[0]
        assert f"most confused: {top.true}->{top.pred} {top.count}" in text
        assert "784-32-10" in text and "loaded model" in text

        # n: row-normalised shares
        await press(pilot, "n")
        await wait_for(pilot, lambda: panel.normalised and "(row %)" in screen_text(app), what="row %")
        rows = {line.split()[0]: line.split() for line in lines_of(app) if line.strip()[:1].isdigit()}
        share = cm[0, 0] / cm[0].sum()
        assert rows["0"][1] == f"{share * 100:.1f}" and "(row %)" in screen_text(app)
        await press(pilot, "n")
        await wait_for(pilot, lambda: "(counts)" in screen_text(app), what="counts again")

        # the cursor to the most confused cell, Enter: those test images, as the preview draws them
        for _ in range(top.true):
            await press(pilot, "down")
        for _ in range(top.pred):
            await press(pilot, "right")
        await wait_for(pilot, lambda: panel.cursor == (top.true, top.pred), what="the cursor on the cell")
        assert f"true {top.true}, predicted {top.pred} (wrong): {top.count} image(s)" in screen_text(app)
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CellImagesScreen), what="the cell's images")
        cell = app.screen
        expected = cell_indices(y, preds, top.true, top.pred)
        np.testing.assert_array_equal(cell.indices, expected)
        preview = cell.query_one("#cell-preview")
        assert f"of {len(expected)}" in preview.status_line()
        assert all(c.startswith(f"X {top.pred}") and c.endswith(f"({top.true})") for c in preview.captions())
        await press(pilot, "enter")                                 # zoom: the test image's number
        await wait_for(pilot, lambda: isinstance(app.screen, DigitScreen), what="the zoom")
        assert app.screen.index == int(expected[0])
        np.testing.assert_allclose(app.screen.probabilities, probs[expected[0]], rtol=1e-5)
        await press(pilot, "escape", "escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back on the insight screen")

        # e: CSV and JSON, parseable, the same counts
        await press(pilot, "e")
        await wait_for(pilot, lambda: panel.last_export is not None, what="the export")
        csv_path, json_path = panel.last_export
        assert csv_path.parent == tmp_path and json_path.parent == tmp_path
        with open(csv_path, newline="") as fh:
            table = list(csv.reader(fh))
        assert table[0][:11] == ["true\\pred", *[str(i) for i in range(10)]]
        assert [[int(v) for v in row[1:11]] for row in table[1:]] == cm.tolist()
        obj = json.loads(json_path.read_text())
        assert obj["counts"] == cm.tolist() and obj["model"] == "loaded model"
        assert obj["per_class_accuracy"] == pytest.approx(per_class.tolist())
        assert obj["most_confused"][0] == {"true": top.true, "pred": top.pred, "count": top.count,
                                           "share": pytest.approx(top.share)}
        # ctrl+e: the screen as SVG
        await press(pilot, "ctrl+e")
        await wait_for(pilot, lambda: screen.last_svg is not None, what="the SVG")
        svg = screen.last_svg
        assert svg is not None and svg.parent == tmp_path and svg.suffix == ".svg"
        assert svg.read_text().lstrip().startswith("<svg") and "Confusion" in svg.read_text()
        assert not list(tmp_path.glob("*.tmp"))                    # nothing half-written
        await press(pilot, "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, InsightScreen), what="the screen closed")


async def test_worst_mistakes_show_the_engines_top3_and_filter(make_app, sample, small_model, truth):
    probs, y, preds, _cm = truth
    app = make_app(sample)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_insight(pilot, small_model)
        await press(pilot, "tab")
        await wait_for(pilot, lambda: screen.shown.get("mistakes") is not None, what="the mistakes view")
        assert screen.active == "mistakes"
        panel = screen.query_one(MistakesPanel)
        assert app.focused is panel
        worst = worst_mistakes(probs, y, 3)
        assert [m.index for m in panel.mistakes[:3]] == [m.index for m in worst]
        text = screen_text(app)
        first = worst[0]
        assert f"#{first.index + 1}" in text
        flat = " ".join(text.split())
        for c, p in first.top3:                     # "6  99.8%": class, probability
            assert f"{c} {min(p * 100, 99.9):.1f}%" in flat
        assert f"{int((preds != y).sum()):,} wrong of {len(y):,}" in text
        # the probabilities were computed once: the mistakes view reused the confusion view's
        assert screen.current.input.probs is not None

        # t: true class 0, then 1; p: predicted class 0 ...
        await press(pilot, "t")
        await wait_for(pilot, lambda: panel.true_class == 0, what="filter true 0")
        assert all(m.true == 0 for m in panel.mistakes)
        assert "true 0, predicted all" in screen_text(app)
        await press(pilot, "t")
        await wait_for(pilot, lambda: panel.true_class == 1, what="filter true 1")
        await press(pilot, "p", "p", "p", "p", "p", "p", "p")         # predicted 6
        await wait_for(pilot, lambda: panel.pred_class == 6, what="filter predicted 6")
        want = worst_mistakes(probs, y, 500, true_class=1, pred_class=6)
        assert [m.index for m in panel.mistakes] == [m.index for m in want]
        await press(pilot, "a")
        await wait_for(pilot, lambda: panel.true_class is None and panel.pred_class is None, what="no filter")

        # arrows select, Enter zooms (the Digits preview's zoom screen)
        await press(pilot, "right")
        await wait_for(pilot, lambda: panel.selected == 1, what="the second mistake selected")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DigitScreen), what="the zoom")
        assert app.screen.index == worst[1].index
        np.testing.assert_allclose(app.screen.probabilities, probs[worst[1].index], rtol=1e-5)


async def test_no_model_says_how_to_get_one(make_app, sample):
    app = make_app(sample)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "f9")
        await wait_for(pilot, lambda: isinstance(app.screen, InsightScreen), what="the insight screen")
        await pilot.pause(0.05)
        assert NO_MODEL in screen_text(app)
        assert "train (F5) or load (Ctrl+O)" in NO_MODEL
        await press(pilot, "f9")                                      # F9 again closes it
        await wait_for(pilot, lambda: not isinstance(app.screen, InsightScreen), what="closed")


async def test_a_model_for_another_input_size(make_app, sample):
    small = make_dataset(n_train=300, n_test=60, side=8)
    session = TrainingSession(TrainConfig(dataset="synthetic", hidden=(8,), epochs=1, val_size=30), small)
    list(session.run())
    ckpt = session.checkpoint()
    # on its own 8x8 data: both views work
    app = make_app(small)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_insight(pilot, ckpt)
        assert screen.query_one(ConfusionPanel).result.view.counts.sum() == 60
        await press(pilot, "tab")
        await wait_for(pilot, lambda: screen.shown.get("mistakes") is not None, what="the mistakes view")
        assert "wrong of 60" in screen_text(app)
    # against MNIST (28x28) it says why
    app = make_app(sample)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.model = ckpt
        await press(pilot, "f9")
        await wait_for(pilot, lambda: isinstance(app.screen, InsightScreen), what="the insight screen")
        await pilot.pause(0.05)
        text = " ".join(screen_text(app).split())
        assert "Not available for this model: the model takes 64 inputs" in text and "28x28" in text


async def test_the_views_follow_a_run_at_each_epoch_end(make_app, synthetic, monkeypatch):
    import tui.insight.confusion as view_module

    reused: list[bool] = []
    real = view_module.test_probs

    def counting(inp):
        reused.append(inp.probs is not None)
        return real(inp)

    monkeypatch.setattr(view_module, "test_probs", counting)
    app = make_app(synthetic, preview_limit=10_000)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.form.set_values({"hidden": "16", "epochs": "3", "batch_size": "64", "val_size": "100", "lr": "0.1"})
        await press(pilot, "f9")
        await wait_for(pilot, lambda: isinstance(app.screen, InsightScreen), what="the insight screen")
        screen = app.screen
        labels: list[str] = []
        shown = screen._show

        def spy(name, widget, version, result):
            labels.append(f"{name}:{result.label}")
            shown(name, widget, version, result)

        screen._show = spy
        await press(pilot, "f5")                        # the app's key works over the screen
        await wait_for(pilot, lambda: not app.training and app.trainer.run_count == 1, what="the run to end")
        await wait_for(pilot, lambda: "confusion:epoch 3 of run 1" in labels, what="the last epoch shown")
        assert app.screen is screen
        # one computation per epoch end, in order, each on that epoch's weights
        epochs = [lab for lab in labels if lab.startswith("confusion:epoch")]
        assert epochs == sorted(set(epochs)) and epochs[-1] == "confusion:epoch 3 of run 1"
        # the probabilities were the preview's for each epoch: not computed a second time
        assert len(reused) == len(epochs) and all(reused), (reused, labels)
        np.testing.assert_array_equal(screen.current.input.probs, app.view.predictions.probabilities)
        view = screen.query_one(ConfusionPanel).result.view
        assert view.counts.sum() == len(synthetic.y_test)
        extra = screen.current.input.extra                  # what the Health view reads
        assert len(extra["step_losses"]) > 0 and extra["batch_size"] == 64 and extra["diverged"] is False


async def test_fashion_class_names(make_app):
    import dataclasses

    from engine.insight.confusion import class_names_for

    names = class_names_for("fashion-mnist", 10)
    assert names[0] == "T-shirt/top"
    data = dataclasses.replace(make_dataset(n_train=300, n_test=60, side=8), name="fashion-mnist",
                               title="Fashion-MNIST", class_names=names)
    session = TrainingSession(TrainConfig(dataset="synthetic", hidden=(8,), epochs=1, val_size=30), data)
    list(session.run())
    app = make_app(data)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_insight(pilot, session.checkpoint())
        text = screen_text(app)
        assert "T-shirt/" in text and "Sneaker" in text            # row labels, cut to 8
        panel = screen.query_one(ConfusionPanel)
        assert panel.result.view.class_names == names
        await press(pilot, "tab")
        await wait_for(pilot, lambda: screen.shown.get("mistakes") is not None, what="the mistakes view")
        mp = screen.query_one(MistakesPanel)
        if mp.mistakes:
            m = mp.mistakes[0]
            assert f"true {names[m.true][:10]}" in screen_text(app)


async def test_ascii_only_terminal_shades_with_characters(make_app, sample, small_model, truth):
    from tui.ascii_art import RAMP

    _probs, _y, _preds, cm = truth
    app = make_app(sample, ascii_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_insight(pilot, small_model)
        text = screen_text(app)
        assert text.isascii()
        row0 = next(line.split() for line in text.splitlines() if line.split()[:1] == ["0"])
        share = cm[0, 0] / cm[0].sum()
        assert row0[1] == f"{cm[0, 0]}{RAMP[int(round(share * (len(RAMP) - 1)))]}"   # "194@"
        assert "Enter Images" in text                          # the key line spells keys in ASCII


async def test_a_model_loaded_while_open_is_shown(make_app, sample, small_model):
    """Ctrl+O while the screen is open: the app's ModelLoaded reaches the screen (forward)."""
    from engine.checkpoint import Checkpoint
    from engine.mlp import MLP
    from tui import messages as msg
    from tui.controllers.models import LoadedModel

    app = make_app(sample)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_insight(pilot, small_model)
        before = screen.query_one(ConfusionPanel).result.view.counts.copy()
        other = Checkpoint(MLP((784, 10), rng=np.random.default_rng(1)), small_model.config, {})
        app.post_message(msg.ModelLoaded(LoadedModel("other.npz", other, sample, None, None)))
        await wait_for(pilot, lambda: screen.current is not None and screen.current.input.model is other.model,
                       what="the loaded model taken")
        await wait_for(pilot, lambda: screen.shown.get("confusion") == screen.current.version, what="recomputed")
        counts = screen.query_one(ConfusionPanel).result.view.counts
        assert counts.sum() == before.sum() and not np.array_equal(counts, before)
        assert "784-10" in screen_text(app)


async def test_every_registered_view_is_a_tab_and_a_health_fix_reaches_the_form(make_app, sample, small_model):
    """With the units/health/robustness views installed: one tab each, each computed for the
    model when shown; a Health fix (ApplyFix) changes the settings form for the next run."""
    from tui.insight import registered
    from tui.insight.health import ApplyFix

    app = make_app(sample)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_insight(pilot, small_model)
        names = [spec.name for spec in registered()]
        assert names[:2] == ["confusion", "mistakes"] and len(screen.views) == len(names)
        for name in names[1:]:
            await press(pilot, "tab")
            await wait_for(pilot, lambda n=name: screen.shown.get(n) == screen.current.version,
                           timeout=60, what=f"the {name} view")
            assert screen.active == name
        lr = float(app.form.values()["lr"])
        screen.views[names[0]].post_message(ApplyFix("halve_lr"))
        await wait_for(pilot, lambda: float(app.form.values()["lr"]) == pytest.approx(lr / 2), what="the lr halved")
