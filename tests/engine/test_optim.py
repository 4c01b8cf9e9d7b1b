"""Optimizers and schedules against numbers computed by hand (float64 params, exact to 1e-12).

Shared fixture: W = [[1, -2]], b = [0.5]; gradient g_W = [[0.1, 0.2]], g_b = [-0.3]. Each
known-value test runs with parameters as separate arrays (the per-parameter path) and as views
tiling one vector, like MLP's (the flat path, one ufunc call per operation).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.layers import flat_views
from engine.mlp import MLP
from engine.optim import (
    OPTIMIZER_NAMES,
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adam,
    RMSProp,
    make_optimizer,
    make_schedule,
    tiled_base,
)


def laid_out(arrays, layout):
    if layout == "separate":
        return {k: np.array(v, dtype=np.float64) for k, v in arrays.items()}
    _, views = flat_views({k: np.shape(v) for k, v in arrays.items()}, np.float64)
    for k, v in arrays.items():
        views[k][...] = v
    return views


def params(layout="separate", b=0.5):
    return laid_out({"dense0.W": [[1.0, -2.0]], "dense0.b": [b]}, layout)


def grads(layout="separate", w=(0.1, 0.2), b=-0.3):
    return laid_out({"dense0.W": [list(w)], "dense0.b": [b]}, layout)


GRADS = grads()


@pytest.fixture(params=["separate", "flat"])
def lay(request):
    return request.param


def close(p, w, b):
    np.testing.assert_allclose(p["dense0.W"], [w], rtol=0, atol=1e-12)
    np.testing.assert_allclose(p["dense0.b"], [b], rtol=0, atol=1e-12)


# ---- SGD family ---------------------------------------------------------------------------


def test_sgd_two_steps(lay):
    p = params(lay)
    opt = SGD(p, lr=0.1)
    opt.step(grads(lay))
    close(p, [0.99, -2.02], 0.53)
    opt.step(grads(lay))
    close(p, [0.98, -2.04], 0.56)


def test_momentum_two_steps(lay):
    # v1 = g -> p -= 0.1 g ; v2 = 0.9 g + g = 1.9 g -> p -= 0.19 g
    p = params(lay)
    opt = SGD(p, lr=0.1, momentum=0.9)
    opt.step(grads(lay))
    close(p, [0.99, -2.02], 0.53)
    opt.step(grads(lay))
    close(p, [0.971, -2.058], 0.587)


def test_nesterov_two_steps(lay):
    # step 1: v = g, update g + 0.9 v = 1.9 g ; step 2: v = 1.9 g, update g + 0.9*1.9 g = 2.71 g
    p = params(lay)
    opt = SGD(p, lr=0.1, momentum=0.9, nesterov=True)
    opt.step(grads(lay))
    close(p, [0.981, -2.038], 0.557)
    opt.step(grads(lay))
    close(p, [0.9539, -2.0922], 0.6383)


def test_weight_decay_applies_to_W_only_and_leaves_grads_alone(lay):
    # W grad + 0.01 W: [0.11, 0.18] -> [0.989, -2.018]; then [0.10989, 0.17982]
    p = params(lay)
    g = grads(lay)
    grads_before = {k: v.copy() for k, v in g.items()}
    opt = SGD(p, lr=0.1, weight_decay=0.01)
    opt.step(g)
    close(p, [0.989, -2.018], 0.53)  # b decayed would be 0.5295
    opt.step(g)
    close(p, [0.978011, -2.035982], 0.56)
    for k in g:
        np.testing.assert_array_equal(g[k], grads_before[k])


def test_momentum_with_weight_decay(lay):
    # step 1: g' = [0.11, 0.18], v = g' ; step 2: g' = [0.10989, 0.17982], v = 0.9 v + g'
    p = params(lay)
    opt = SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step(grads(lay))
    close(p, [0.989, -2.018], 0.53)
    opt.step(grads(lay))
    close(p, [0.989 - 0.1 * (0.099 + 0.10989), -2.018 - 0.1 * (0.162 + 0.17982)], 0.587)


def test_lr_override_is_for_one_step_only(lay):
    p = params(lay)
    opt = SGD(p, lr=0.1)
    opt.step(grads(lay), lr=1.0)
    close(p, [0.9, -2.2], 0.8)
    opt.step(grads(lay))
    close(p, [0.89, -2.22], 0.83)
    assert opt.lr == 0.1


# ---- Adam ---------------------------------------------------------------------------------


def test_adam_constant_gradient_moves_lr_per_step(lay):
    # With a constant gradient the bias-corrected m_hat = g and v_hat = g^2 at every step, so
    # each step moves by lr * |g| / (|g| + eps) ~ lr. (Without bias correction step 1 would
    # move by only 0.1 / sqrt(0.001) * lr ~ 0.32 lr.)
    p = params(lay)
    opt = Adam(p, lr=0.1)
    opt.step(grads(lay))
    np.testing.assert_allclose(p["dense0.W"], [[0.9, -2.1]], atol=1e-6)
    np.testing.assert_allclose(p["dense0.b"], [0.6], atol=1e-6)
    opt.step(grads(lay))
    np.testing.assert_allclose(p["dense0.W"], [[0.8, -2.2]], atol=1e-6)
    np.testing.assert_allclose(p["dense0.b"], [0.7], atol=1e-6)


def test_adam_two_different_gradients(lay):
    # Reference values from the textbook formulas in 40-digit decimal arithmetic.
    p = params(lay)
    opt = Adam(p, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    opt.step(grads(lay))
    close(p, [0.900000009999999, -2.099999995000000], 0.5999999966666668)
    opt.step(grads(lay, w=(-0.3, 0.05), b=0.6))
    close(p, [0.9494189911200658, -2.1830597426684406], 0.5633896447347804)


def test_adam_weight_decay_on_W_only(lay):
    # wd = 0.2: g_W' = [0.1 + 0.2, 0.2 - 0.4] = [0.3, -0.2] -> signs (+, -) -> W - 0.1 * sign.
    # b = 5 with g_b = -0.3: decayed it would be -0.3 + 1.0 > 0 and b would move down.
    p = params(lay, b=5.0)
    opt = Adam(p, lr=0.1, weight_decay=0.2)
    opt.step(grads(lay))
    np.testing.assert_allclose(p["dense0.W"], [[0.9, -1.9]], atol=1e-6)
    np.testing.assert_allclose(p["dense0.b"], [5.1], atol=1e-6)


# ---- AdaGrad and RMSProp --------------------------------------------------------------------
# Expected values: the update rules written out per scalar in plain Python floats (an
# implementation independent of the vectorised one), on the shared fixture's numbers.


def _adagrad_ref(p0, gs, lr, eps=1e-10):
    p, acc = p0, 0.0
    for g in gs:
        acc += g * g
        p -= lr * g / (math.sqrt(acc) + eps)
    return p


def _rmsprop_ref(p0, gs, lr, rho, eps=1e-8):
    p, sq = p0, 0.0
    for g in gs:
        sq = rho * sq + (1 - rho) * g * g
        p -= lr * g / (math.sqrt(sq) + eps)
    return p


def test_adagrad_two_steps(lay):
    # constant gradient: step 1 moves lr * g/|g| = 0.1; step 2 moves 0.1 / sqrt(2)
    p = params(lay)
    opt = AdaGrad(p, lr=0.1)
    opt.step(grads(lay))
    np.testing.assert_allclose(p["dense0.W"], [[0.9, -2.1]], atol=1e-8)
    np.testing.assert_allclose(p["dense0.b"], [0.6], atol=1e-8)
    opt.step(grads(lay))
    step2 = 0.1 + 0.1 / math.sqrt(2)
    np.testing.assert_allclose(p["dense0.W"], [[1 - step2, -2 - step2]], atol=1e-8)
    close(p, [_adagrad_ref(1.0, [0.1, 0.1], 0.1), _adagrad_ref(-2.0, [0.2, 0.2], 0.1)],
          _adagrad_ref(0.5, [-0.3, -0.3], 0.1))


def test_adagrad_two_different_gradients(lay):
    p = params(lay)
    opt = AdaGrad(p, lr=0.1)
    opt.step(grads(lay))
    opt.step(grads(lay, w=(-0.3, 0.05), b=0.6))
    close(p, [_adagrad_ref(1.0, [0.1, -0.3], 0.1), _adagrad_ref(-2.0, [0.2, 0.05], 0.1)],
          _adagrad_ref(0.5, [-0.3, 0.6], 0.1))
    # by hand for W[0,0]: 1 - 0.1 * 0.1/0.1 + 0.1 * 0.3/sqrt(0.1) = 0.9 + 0.0948683...
    np.testing.assert_allclose(p["dense0.W"][0, 0], 0.9 + 0.03 / math.sqrt(0.1), atol=1e-8)


def test_rmsprop_two_steps(lay):
    # rho 0.9, constant g: s1 = 0.1 g^2 -> step lr/sqrt(0.1); s2 = 0.19 g^2 -> lr/sqrt(0.19)
    p = params(lay)
    opt = RMSProp(p, lr=0.01, rho=0.9)
    opt.step(grads(lay))
    np.testing.assert_allclose(p["dense0.W"], [[1 - 0.01 / math.sqrt(0.1), -2 - 0.01 / math.sqrt(0.1)]],
                               atol=1e-8)
    opt.step(grads(lay, w=(-0.3, 0.05), b=0.6))
    close(p, [_rmsprop_ref(1.0, [0.1, -0.3], 0.01, 0.9), _rmsprop_ref(-2.0, [0.2, 0.05], 0.01, 0.9)],
          _rmsprop_ref(0.5, [-0.3, 0.6], 0.01, 0.9))


def test_rmsprop_default_rho_is_pytorchs():
    # rho 0.99: the first step is lr * g / (0.1 |g|) = 10 lr
    p = params()
    RMSProp(p, lr=0.001).step(GRADS)
    np.testing.assert_allclose(p["dense0.W"], [[0.99, -2.01]], atol=1e-7)


def test_adagrad_and_rmsprop_weight_decay_on_W_only(lay):
    # wd = 0.2: g_W' = [0.3, -0.2]; the first step of both moves every coordinate by
    # lr * sign(g') (AdaGrad) and lr * sign(g') / sqrt(1 - rho) (RMSProp); b is not decayed.
    p = params(lay, b=5.0)
    AdaGrad(p, lr=0.1, weight_decay=0.2).step(grads(lay))
    np.testing.assert_allclose(p["dense0.W"], [[0.9, -1.9]], atol=1e-8)
    np.testing.assert_allclose(p["dense0.b"], [5.1], atol=1e-8)
    p = params(lay, b=5.0)
    RMSProp(p, lr=0.01, rho=0.75, weight_decay=0.2).step(grads(lay))
    np.testing.assert_allclose(p["dense0.W"], [[0.98, -1.98]], atol=1e-7)
    np.testing.assert_allclose(p["dense0.b"], [5.02], atol=1e-7)


def test_registry_drives_names_and_choices():
    from engine.config import CHOICES, TrainConfig

    assert OPTIMIZER_NAMES == ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
    assert CHOICES["optimizer"] == OPTIMIZER_NAMES
    for name in OPTIMIZER_NAMES:
        TrainConfig(optimizer=name)
        opt = make_optimizer(name, params(), lr=0.1)
        assert len({k.split("/")[0] for k in opt.state_dict()} - {"step"}) == OPTIMIZERS[name].state_slots
    assert isinstance(make_optimizer("adagrad", params(), 0.1), AdaGrad)
    assert isinstance(make_optimizer("rmsprop", params(), 0.1), RMSProp)


@pytest.mark.parametrize("name", ["adagrad", "rmsprop"])
def test_new_optimizers_train_an_mlp_float32(name):
    model = MLP((12, 8, 3), rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.random((64, 12), dtype=np.float32)
    y = (x[:, 0] * 3).astype(np.int64)
    opt = make_optimizer(name, model.params, lr=0.01)
    first, _ = model.loss_and_grads(x, y)
    for _ in range(100):
        model.loss_and_grads(x, y)
        opt.step(model.grads)
    last, _ = model.loss_and_grads(x, y)
    assert last < 0.7 * first
    assert all(v.dtype == np.float32 for v in model.params.values())


def test_updates_are_in_place_and_float32_stays_float32():
    p = {k: v.astype(np.float32) for k, v in params().items()}
    ids = {k: id(v) for k, v in p.items()}
    g32 = {k: v.astype(np.float32) for k, v in GRADS.items()}
    for name in OPTIMIZER_NAMES:
        opt = make_optimizer(name, p, lr=0.01, weight_decay=0.001)
        opt.step(g32)
        for k, v in p.items():
            assert id(v) == ids[k] and v.dtype == np.float32
            assert opt.params[k] is v


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_flat_path_on_mlp_params_matches_per_parameter_path(name, weight_decay):
    model = MLP((12, 8, 5), rng=np.random.default_rng(0))
    assert tiled_base(list(model.params.values())) is not None
    assert tiled_base(list(model.grads.values())) is not None
    separate = {k: v.copy() for k, v in model.params.items()}
    fast = make_optimizer(name, model.params, lr=0.05, weight_decay=weight_decay)
    slow = make_optimizer(name, separate, lr=0.05, weight_decay=weight_decay)
    rng = np.random.default_rng(1)
    for _ in range(3):
        model.loss_and_grads(rng.random((7, 12), dtype=np.float32), rng.integers(0, 5, 7))
        fast.step(model.grads)
        slow.step({k: g.copy() for k, g in model.grads.items()})
    assert fast._flat_params is not None and fast._flat_grads is not None  # took the flat path
    assert slow._flat_params is None
    for k in separate:
        np.testing.assert_array_equal(model.params[k], separate[k])
    for k, v in slow.state_dict().items():
        np.testing.assert_array_equal(fast.state_dict()[k], v)


def test_tiled_base_rejects_gaps_reordering_and_strangers():
    flat, views = flat_views({"a": (2, 3), "b": (4,)}, np.float32)
    assert tiled_base([views["a"], views["b"]]) is flat
    assert tiled_base([views["b"], views["a"]]) is None
    assert tiled_base([views["a"]]) is None  # does not cover the whole vector
    assert tiled_base([views["a"], np.zeros(4, np.float32)]) is None
    assert tiled_base([views["a"].T, views["b"]]) is None


# ---- state ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_state_dict_round_trip_continues_identically(name):
    rng = np.random.default_rng(0)
    grads = [{k: rng.standard_normal(v.shape) for k, v in params().items()} for _ in range(4)]
    pa = params()
    a = make_optimizer(name, pa, lr=0.1)
    for g in grads[:2]:
        a.step(g)
    state = a.state_dict()
    assert int(state["step"]) == 2
    slot = {"adam": "m", "adagrad": "sum", "rmsprop": "square_avg"}.get(name, "velocity")
    assert f"{slot}/dense0.W" in state
    pb = {k: v.copy() for k, v in pa.items()}
    b = make_optimizer(name, pb, lr=0.1)
    b.load_state_dict(state)
    for g in grads[2:]:
        a.step(g)
        b.step(g)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])


def test_state_dict_is_a_copy():
    p = params()
    opt = SGD(p, lr=0.1, momentum=0.9)
    opt.step(GRADS)
    state = opt.state_dict()
    state["velocity/dense0.W"][...] = 123.0
    opt.step(GRADS)
    close(p, [0.971, -2.058], 0.587)


def test_plain_sgd_state_is_just_the_step():
    assert set(SGD(params(), lr=0.1).state_dict()) == {"step"}


def test_load_state_dict_rejects_mismatches_and_changes_nothing():
    opt = make_optimizer("adam", params(), lr=0.1)
    good = opt.state_dict()
    bad_shape = dict(good, **{"m/dense0.W": np.zeros((2, 2))})
    with pytest.raises(ConfigError, match=r"m/dense0\.W"):
        opt.load_state_dict(bad_shape)
    missing = {k: v for k, v in good.items() if k != "v/dense0.b"}
    with pytest.raises(ConfigError, match=r"v/dense0\.b"):
        opt.load_state_dict(missing)
    with pytest.raises(ConfigError):
        make_optimizer("momentum", params(), lr=0.1).load_state_dict(good)  # Adam's state
    assert opt.steps == 0


# ---- factory and validation -------------------------------------------------------------------


def test_make_optimizer_kinds():
    p = params()
    sgd = make_optimizer("sgd", p, 0.1)
    assert type(sgd) is SGD and sgd.momentum == 0
    m = make_optimizer("momentum", p, 0.1, momentum=0.8)
    assert m.momentum == 0.8 and not m.nesterov
    assert make_optimizer("nesterov", p, 0.1).nesterov
    assert isinstance(make_optimizer("adam", p, 0.1), Adam)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(name="adadelta"), "optimizer"),
        (dict(lr=0.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(name="momentum", momentum=1.0), "momentum"),
        (dict(name="nesterov", momentum=0.0), "momentum"),
        (dict(weight_decay=-1e-4), "weight_decay"),
    ],
)
def test_make_optimizer_rejects(kwargs, field):
    args = dict(name="sgd", params=params(), lr=0.1) | kwargs
    with pytest.raises(ConfigError) as info:
        make_optimizer(**args)
    assert info.value.field == field


# ---- schedules -----------------------------------------------------------------------------


def test_constant_schedule():
    s = make_schedule("constant", 0.1, total_steps=100, steps_per_epoch=10)
    assert [s(i) for i in (0, 50, 99, 500)] == [0.1] * 4


def test_step_schedule():
    s = make_schedule("step", 0.1, total_steps=5000, steps_per_epoch=100, step_epochs=10, gamma=0.1)
    assert s(0) == 0.1 and s(999) == 0.1
    assert s(1000) == pytest.approx(0.01, rel=1e-12)
    assert s(1999) == pytest.approx(0.01, rel=1e-12)
    assert s(2000) == pytest.approx(0.001, rel=1e-12)


def test_cosine_schedule():
    s = make_schedule("cosine", 1.0, total_steps=100, steps_per_epoch=10)
    assert s(0) == 1.0
    assert s(25) == pytest.approx(0.5 * (1 + math.sqrt(0.5)), abs=1e-12)
    assert s(50) == pytest.approx(0.5, abs=1e-12)
    assert s(100) == pytest.approx(0.0, abs=1e-12)
    assert s(150) == pytest.approx(0.0, abs=1e-12)
    values = [s(i) for i in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_cosine_schedule_with_warmup():
    s = make_schedule("cosine", 1.0, total_steps=110, steps_per_epoch=10, warmup_steps=10)
    assert s(0) == pytest.approx(0.1)
    assert s(4) == pytest.approx(0.5)
    assert s(9) == pytest.approx(1.0)
    assert s(10) == pytest.approx(1.0)
    assert s(60) == pytest.approx(0.5)
    assert s(110) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(name="linear"), "schedule"),
        (dict(base_lr=-1.0), "lr"),
        (dict(steps_per_epoch=0), "steps_per_epoch"),
        (dict(step_epochs=0), "step_epochs"),
        (dict(gamma=0.0), "gamma"),
        (dict(name="cosine", warmup_steps=100), "warmup_steps"),
    ],
)
def test_make_schedule_rejects(kwargs, field):
    args = dict(name="step", base_lr=0.1, total_steps=100, steps_per_epoch=10) | kwargs
    with pytest.raises(ConfigError) as info:
        make_schedule(**args)
    assert info.value.field == field
