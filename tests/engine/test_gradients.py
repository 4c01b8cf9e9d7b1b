"""Backward pass against centred finite differences (engine.gradcheck), with negative controls.

Models are small and float64, with weights of scale ~0.8 and nonzero biases so that gradients
are not tiny and no relu pre-activation sits exactly on the kink (with zero biases, a sample
whose previous layer is all zero has z == 0 exactly).
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import activations, losses
from engine.activations import ACTIVATION_NAMES, Activation
from engine.errors import ConfigError
from engine.gradcheck import float64_copy, gradcheck, gradient_pairs, relative_error
from engine.losses import LOSS_NAMES
from engine.mlp import MLP

TOL = 1e-6


def make_case(activation, loss, seed=0, sizes=(5, 4, 3, 3), batch=6, dtype="float64"):
    rng = np.random.default_rng(seed)
    model = MLP(sizes, activation, loss, init="normal", init_std=0.8, dtype=dtype, rng=rng)
    weights = model.get_weights()
    for k in weights:
        if k.endswith(".b"):
            weights[k] = rng.normal(0.0, 0.5, weights[k].shape)
    model.set_weights(weights)
    x = rng.standard_normal((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], batch)
    return model, x, y


Z = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])


@pytest.mark.parametrize(
    "name, value, slope",
    [
        ("sigmoid", 1 / (1 + np.exp(-Z)), np.exp(-Z) / (1 + np.exp(-Z)) ** 2),
        ("tanh", np.tanh(Z), 1 / np.cosh(Z) ** 2),
        ("relu", [[0.0, 0.0, 0.0, 0.5, 2.0]], [[0.0, 0.0, 0.0, 1.0, 1.0]]),
        ("leaky_relu", [[-0.02, -0.005, 0.0, 0.5, 2.0]], [[0.01, 0.01, 0.01, 1.0, 1.0]]),
    ],
)
def test_activation_values_and_derivatives(name, value, slope):
    # The gradient check cannot see a forward pass that is consistently wrong (e.g. another
    # leaky slope in both directions), so pin the functions themselves.
    act = activations.get_activation(name)
    for dtype in (np.float64, np.float32):
        a = Z.astype(dtype)
        act.forward(a, np.empty_like(a))
        np.testing.assert_allclose(a, value, rtol=1e-6, atol=1e-7)
        d = np.empty_like(a)
        act.derivative(a, d)
        np.testing.assert_allclose(d, slope, rtol=1e-6, atol=1e-7)
        if act.forward_with_derivative is not None:  # the fused path the MLP uses
            a2, d2 = Z.astype(dtype), np.empty_like(a)
            act.forward_with_derivative(a2, d2)
            np.testing.assert_array_equal(a2, a)
            np.testing.assert_array_equal(d2, d)


def test_unknown_activation_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        activations.get_activation("swish")
    assert info.value.field == "activation"


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_backward_matches_finite_differences(activation, loss):
    model, x, y = make_case(activation, loss)
    errors = gradcheck(model, x, y)
    assert set(errors) == set(model.params)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_deeper_net_and_batch_of_one(activation):
    model, x, y = make_case(activation, "cross-entropy", seed=0, sizes=(4, 5, 4, 3, 2), batch=1)
    assert max(gradcheck(model, x, y).values()) < TOL


def test_gradcheck_of_float32_model_runs_in_float64_and_leaves_it_alone():
    model, x, y = make_case("sigmoid", "cross-entropy", dtype="float32")
    before = model.get_weights()
    errors = gradcheck(model, x.astype(np.float32), y)
    assert max(errors.values()) < TOL
    for k, v in model.params.items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_float32_gradients_agree_with_float64(activation, loss):
    model32, x, y = make_case(activation, loss, seed=5, sizes=(20, 16, 8, 10), batch=12,
                              dtype="float32")
    model64 = float64_copy(model32)
    loss32, correct32 = model32.loss_and_grads(x.astype(np.float32), y)
    loss64, correct64 = model64.loss_and_grads(x, y)
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    assert correct32 == correct64
    for k in model64.grads:
        g32, g64 = model32.grads[k], model64.grads[k]
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-5 * np.abs(g64).max())


def test_gradient_of_softmax_regression_has_closed_form():
    # One layer: dL/dW = x.T (softmax(xW + b) - onehot) / B, dL/db = column sums / B.
    rng = np.random.default_rng(7)
    model = MLP((4, 3), "relu", "cross-entropy", init="normal", init_std=1.0, dtype="float64",
                rng=rng)
    x = rng.standard_normal((5, 4))
    y = np.array([0, 2, 1, 2, 0])
    z = x @ model.params["dense0.W"] + model.params["dense0.b"]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss, _ = model.loss_and_grads(x, y)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), y])), rel=1e-12)
    delta = (p - np.eye(3)[y]) / 5
    np.testing.assert_allclose(model.grads["dense0.W"], x.T @ delta, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.grads["dense0.b"], delta.sum(axis=0), rtol=1e-12,
                               atol=1e-15)


def test_relative_error_definition():
    np.testing.assert_allclose(relative_error([1.0, 0.0, -2.0], [1.1, 0.0, 2.0]),
                               [0.1 / 2.1, 0.0, 1.0])


def test_max_entries_samples_a_subset():
    model, x, y = make_case("tanh", "mse")
    pairs = gradient_pairs(model, x, y, max_entries=3, rng=np.random.default_rng(0))
    assert all(a.shape == n.shape and a.size == min(3, model.params[k].size)
               for k, (a, n) in pairs.items())


# ---- negative controls: a broken backward must fail the check ---------------------------------


def _scaled(fn, factor):
    def broken(a, out):
        fn(a, out)
        np.multiply(out, factor, out=out)

    return broken


def _ignored():
    def broken(a, out):
        out[...] = 1.0  # "forgot" the derivative

    return broken


@pytest.mark.parametrize("breakage", ["scaled", "ignored"])
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_broken_activation_derivative_is_caught(monkeypatch, activation, breakage):
    good = activations.ACTIVATIONS[activation]
    model, x, y = make_case(activation, "cross-entropy")
    assert max(gradcheck(model, x, y).values()) < TOL  # passes before the patch
    if breakage == "scaled":
        derivative = _scaled(good.derivative, 1.1)
    else:
        derivative = _ignored()
    monkeypatch.setitem(activations.ACTIVATIONS, activation,
                        Activation(activation, good.forward, derivative))
    assert max(gradcheck(model, x, y).values()) > 1e-2


def test_broken_loss_gradient_is_caught(monkeypatch):
    good = losses.LOSSES["mse"]

    def forgot_output_derivative(z, y, ws):  # (a - onehot) / B without the sigmoid's a (1 - a)
        losses.sigmoid_forward(z, ws.scratch)
        n = losses._count_correct(z, y, ws)
        z[np.arange(len(y)), y] -= 1.0
        total = 0.5 * float((z * z).sum())
        z /= z.shape[0]
        return total, n

    model, x, y = make_case("tanh", "mse")
    assert max(gradcheck(model, x, y).values()) < TOL
    monkeypatch.setitem(losses.LOSSES, "mse", losses.Loss(
        "mse", good.output, good.value, forgot_output_derivative, False))
    assert max(gradcheck(model, x, y).values()) > 1e-2
