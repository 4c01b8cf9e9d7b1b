"""Confusion views, worst mistakes, units (forward pass, weight images) and robustness."""

from __future__ import annotations

import numpy as np
import pytest

from engine.insight.confusion import cell_indices, class_names_for, confusion, most_confused, row_normalised
from engine.insight.mistakes import worst_mistakes
from engine.insight.robustness import LEVELS, robustness_curves, rotate, thicken, thin
from engine.insight.units import (
    DIVERGING_RAMP, class_units, diverging_levels, forward_layers, layer_strip, render_diverging,
    responsive_units, weight_images,
)
from engine.mlp import MLP
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset


def test_confusion_counts_normalised_pairs_and_cells():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    p = np.array([0, 1, 1, 1, 0, 2, 1, 1, 1])
    v = confusion(y, p, 4)
    assert v.counts.tolist()[:3] == [[1, 2, 0, 0], [1, 1, 0, 0], [0, 3, 1, 0]]
    np.testing.assert_allclose(v.normalised[0], [1 / 3, 2 / 3, 0, 0])
    assert np.isnan(v.normalised[3]).all() and np.isnan(v.per_class[3])
    np.testing.assert_allclose(v.per_class[:3], [1 / 3, 1 / 2, 1 / 4])
    assert v.accuracy == pytest.approx(3 / 9)
    assert [(q.true, q.pred, q.count) for q in v.pairs] == [(2, 1, 3), (0, 1, 2), (1, 0, 1)]
    assert v.pairs[0].share == pytest.approx(0.75)
    assert cell_indices(y, p, 2, 1).tolist() == [6, 7, 8]
    assert most_confused(np.eye(3, dtype=int)) == ()
    np.testing.assert_allclose(row_normalised(np.array([[2, 2], [0, 5]])), [[0.5, 0.5], [0, 1]])


def test_class_names():
    assert class_names_for("fashion-mnist", 10)[0] == "T-shirt/top"
    assert class_names_for("mnist", 10) == tuple("0123456789")
    assert class_names_for("nope", 3) == ("0", "1", "2")
    assert class_names_for("fashion-mnist", 5) == ("0", "1", "2", "3", "4")


def test_worst_mistakes_ranked_with_top3_and_filters():
    probs = np.array([
        [0.9, 0.05, 0.05],   # right
        [0.1, 0.8, 0.1],     # true 0 -> 1 at 0.8
        [0.05, 0.05, 0.9],   # true 1 -> 2 at 0.9
        [0.3, 0.6, 0.1],     # true 2 -> 1 at 0.6
    ])
    y = np.array([0, 0, 1, 2])
    ms = worst_mistakes(probs, y, 10)
    assert [m.index for m in ms] == [2, 1, 3]
    assert ms[0].top3 == ((2, 0.9), (0, 0.05), (1, 0.05)) and ms[0].confidence == 0.9
    assert ms[0].to_json()["probs"] == [0.05, 0.05, 0.9]
    assert [m.index for m in worst_mistakes(probs, y, 10, pred_class=1)] == [1, 3]
    assert [m.index for m in worst_mistakes(probs, y, 10, true_class=2)] == [3]
    assert len(worst_mistakes(probs, y, 1)) == 1


@pytest.mark.parametrize("activation, loss", [("relu", "cross-entropy"), ("sigmoid", "mse"), ("tanh", "cross-entropy"),
                                              ("leaky_relu", "cross-entropy")])
def test_forward_layers_matches_the_model(activation, loss):
    rng = np.random.default_rng(1)
    model = MLP((16, 12, 8, 4), activation=activation, loss=loss, rng=rng)
    x = rng.random((5, 16)).astype(np.float32)
    layers = forward_layers(model, x)
    assert [a.shape for a in layers] == [(5, 12), (5, 8), (5, 4)]
    np.testing.assert_allclose(layers[-1], model.forward(x), rtol=1e-5, atol=1e-6)
    strip = layer_strip(model, x[0])
    assert [s.name for s in strip] == ["hidden 1", "hidden 2", "output"]
    np.testing.assert_allclose(strip[0].values, layers[0][0], rtol=1e-6)


def test_weight_images_diverging_and_responsive_units():
    model = MLP((16, 3, 2), rng=np.random.default_rng(0))
    w = np.zeros((16, 3), dtype=np.float32)
    w[:8, 0], w[8:, 0] = -2.0, 1.0        # unit 0: negative top half, positive bottom half
    w[0, 1] = 0.5                         # unit 1: one positive pixel
    model.params["dense0.W"][...] = w
    model.params["dense0.b"][...] = 0
    imgs = weight_images(model)
    assert imgs.shape == (3, 4, 4) and imgs.min() == -1.0
    np.testing.assert_allclose(imgs[0, :2], -1.0)
    np.testing.assert_allclose(imgs[0, 2:], 0.5)
    np.testing.assert_allclose(imgs[2], 0.0)          # an all-zero unit stays zero, no NaN
    lv = diverging_levels(imgs[0], 2, 2, levels=4)
    assert lv.tolist() == [[-4, -4], [2, 2]]
    art = render_diverging(imgs[0], height=2, width=4)
    assert art[0] == DIVERGING_RAMP[0] * 4 and set(art[1]) <= set(DIVERGING_RAMP[5:])
    x = np.zeros(16, dtype=np.float32)
    x[8:] = 1.0                            # lights unit 0's positive half
    assert responsive_units(model, x, top=1)[0][0] == 0
    xs = np.stack([x, np.eye(16, dtype=np.float32)[0]])
    assert class_units(model, xs, np.array([3, 5]), 5, top=1)[0][0] == 1
    assert class_units(model, xs, np.array([3, 5]), 7) == []


def test_rotation_thickening_and_thinning():
    x = np.zeros((1, 9, 9), dtype=np.float32)
    x[0, 4, 1:8] = 1.0                                    # a horizontal bar
    r = rotate(x, 90)
    np.testing.assert_allclose(r[0, 1:8, 4], 1.0, atol=1e-6)   # now vertical
    np.testing.assert_allclose(rotate(x, 360)[0], x[0], atol=1e-5)
    assert rotate(x, 0) is not x and np.array_equal(rotate(x, 0), x)
    t = thicken(x, 1)
    assert t[0, 3:6, 1:8].min() == 1.0 and t.sum() == 3 * 9
    assert thin(t, 1)[0].sum() == 7 and thin(x, 1).sum() == 0


def test_robustness_curves_fall_as_images_get_harder_and_are_seeded():
    ds = make_dataset(n_train=600, n_test=300, side=8, noise=20)
    s = TrainingSession(TrainConfig(dataset="synthetic", hidden=(32,), epochs=5, val_size=0, lr=0.1), ds)
    for _ in s.run():
        pass
    levels = {"noise": (0.0, 0.5, 1.0), "rotation": (0.0, 90.0), "thicker": (0.0, 2.0), "thinner": (0.0, 1.0)}
    curves = robustness_curves(s.model, ds.x_test, ds.y_test, 255, levels, seed=3)
    again = robustness_curves(s.model, ds.x_test, ds.y_test, 255, levels, seed=3)
    assert curves == again
    by = {c.name: c for c in curves}
    assert set(by) == set(levels)
    for c in curves:
        assert c.accuracy[0] > 0.9 and c.accuracy[-1] < c.accuracy[0]
    assert set(LEVELS) == {"noise", "rotation", "thicker", "thinner"}
