"""engine.mlp: construction, init, known loss values, training behaviour, inference, weights."""

from __future__ import annotations

import copy
import json
import math
import pickle
import threading
import warnings

import numpy as np
import pytest

from engine.errors import ConfigError, TermnistError
from engine.mlp import MLP
from engine.optim import make_optimizer

SMALL = (30, 16, 12, 10)


def data(n=50, d=30, c=10, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)).astype(dtype), rng.integers(0, c, n).astype(np.uint8)


def train(model, x, y, steps, batch=16, opt="momentum", lr=0.1, between=None):
    """Minibatch training in a fixed order; ``between(step)`` runs after loss_and_grads and
    before the optimizer step."""
    optimizer = make_optimizer(opt, model.params, lr)
    n = len(x)
    for step in range(steps):
        start = (step * batch) % n
        xb, yb = x[start:start + batch], y[start:start + batch]
        model.loss_and_grads(xb, yb)
        if between is not None:
            between(step)
        optimizer.step(model.grads)
    return model


# ---- construction ----------------------------------------------------------------------------


def test_default_architecture_names_shapes_and_dtype():
    m = MLP()
    assert m.sizes == (784, 128, 64, 10)
    assert (m.activation, m.loss, m.init, m.dtype) == ("relu", "cross-entropy", "auto", np.float32)
    shapes = {k: v.shape for k, v in m.params.items()}
    assert shapes == {"dense0.W": (784, 128), "dense0.b": (128,), "dense1.W": (128, 64),
                      "dense1.b": (64,), "dense2.W": (64, 10), "dense2.b": (10,)}
    assert all(v.dtype == np.float32 for v in m.params.values())
    assert {k: v.shape for k, v in m.grads.items()} == shapes
    assert m.n_params == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10 == 109386


def test_any_number_of_hidden_layers():
    assert list(MLP((6, 3)).params) == ["dense0.W", "dense0.b"]
    m = MLP((6, 5, 5, 5, 5, 2), "tanh")
    assert len(m.params) == 10
    x, y = data(8, 6, 2)
    loss, correct = m.loss_and_grads(x, y)
    assert math.isfinite(loss) and 0 <= correct <= 8


def test_float64_is_selectable():
    m = MLP(SMALL, dtype="float64")
    assert m.dtype == np.float64 and m.architecture()["dtype"] == "float64"
    assert all(v.dtype == np.float64 for v in [*m.params.values(), *m.grads.values()])
    x, y = data(dtype=np.float64)
    m.loss_and_grads(x, y)
    assert m.predict_proba(x).dtype == np.float64
    assert MLP(SMALL, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(sizes=(784,)), "sizes"),
        (dict(sizes=(784, 0, 10)), "sizes"),
        (dict(sizes=(784, 12.5, 10)), "sizes"),
        (dict(sizes=None), "sizes"),
        (dict(activation="softplus"), "activation"),
        (dict(loss="hinge"), "loss"),
        (dict(init="orthogonal"), "init"),
        (dict(dtype="float16"), "dtype"),
        (dict(dtype="int32"), "dtype"),
        (dict(init="he", init_std=0.1), "init_std"),
        (dict(init="normal", init_std=-1.0), "init_std"),
    ],
)
def test_invalid_settings_raise_config_error(kwargs, field):
    with pytest.raises(ConfigError) as info:
        MLP(**kwargs)
    assert info.value.field == field
    assert isinstance(info.value, TermnistError)


# ---- initialisation and randomness -------------------------------------------------------------


def test_normal_init_std():
    m = MLP((500, 400, 10), init="normal", rng=np.random.default_rng(1))
    assert m.params["dense0.W"].std() == pytest.approx(0.01, rel=0.02)
    m = MLP((500, 400, 10), init="normal", init_std=1 / math.sqrt(500),
            rng=np.random.default_rng(1))
    assert m.params["dense0.W"].std() == pytest.approx(1 / math.sqrt(500), rel=0.02)
    assert not m.params["dense0.b"].any()


def test_he_and_xavier_scales():
    he = MLP((500, 400, 10), "relu", init="he").params["dense0.W"]
    assert he.std() == pytest.approx(math.sqrt(2 / 500), rel=0.02)
    xav = MLP((500, 400, 10), "tanh", init="xavier").params["dense0.W"]
    limit = math.sqrt(6 / 900)
    assert np.abs(xav).max() <= limit and np.abs(xav).max() > 0.99 * limit
    assert xav.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)


@pytest.mark.parametrize("activation, scheme", [("relu", "he"), ("leaky_relu", "he"),
                                                ("sigmoid", "xavier"), ("tanh", "xavier")])
def test_auto_init_picks_he_or_xavier(activation, scheme):
    auto = MLP(SMALL, activation, init="auto", rng=np.random.default_rng(4)).params
    explicit = MLP(SMALL, activation, init=scheme, rng=np.random.default_rng(4)).params
    for k in auto:
        np.testing.assert_array_equal(auto[k], explicit[k])


def test_same_seed_gives_bit_identical_weights_after_training():
    x, y = data()
    a = train(MLP(SMALL, rng=np.random.default_rng(42)), x, y, steps=5)
    b = train(MLP(SMALL, rng=np.random.default_rng(42)), x, y, steps=5)
    c = train(MLP(SMALL, rng=np.random.default_rng(43)), x, y, steps=5)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.params["dense0.W"], c.params["dense0.W"])
    assert not np.array_equal(a.params["dense0.W"], MLP(SMALL, rng=np.random.default_rng(42))
                              .params["dense0.W"])  # training did move the weights


def test_default_rng_is_fresh_each_time():
    a, b = MLP(SMALL), MLP(SMALL)
    np.testing.assert_array_equal(a.params["dense0.W"], b.params["dense0.W"])


def test_float32_and_float64_models_from_one_seed_agree_up_to_rounding():
    a = MLP(SMALL, rng=np.random.default_rng(3))
    b = MLP(SMALL, dtype="float64", rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a.params["dense1.W"], b.params["dense1.W"].astype(np.float32))


def test_global_numpy_random_state_is_untouched():
    # the legacy global generator on purpose: the engine must not touch it
    np.random.seed(1234)  # noqa: NPY002
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    x, y = data()
    m = train(MLP(SMALL, rng=np.random.default_rng(0)), x, y, steps=3)
    m.predict_proba(x)
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002


# ---- loss values -------------------------------------------------------------------------------


def zero_model(loss, c=10):
    m = MLP((30, 8, c), "tanh", loss)
    m.set_weights({k: np.zeros_like(v) for k, v in m.params.items()})
    return m


def test_cross_entropy_of_uniform_output_is_log_c():
    x, y = data()
    loss, _ = zero_model("cross-entropy").loss_and_grads(x, y)
    assert loss == pytest.approx(math.log(10), rel=1e-6)


def test_mse_of_sigmoid_half_outputs():
    # every output is sigmoid(0) = 0.5: 0.5 * (9 * 0.25 + 1 * 0.25) = 1.25 per example
    x, y = data()
    loss, _ = zero_model("mse").loss_and_grads(x, y)
    assert loss == pytest.approx(1.25, rel=1e-6)


def test_n_correct_counts_argmax_matches():
    m = MLP((3, 3), loss="cross-entropy")
    m.set_weights({"dense0.W": np.eye(3) * 5, "dense0.b": np.zeros(3)})
    x = np.eye(3, dtype=np.float32)[[0, 1, 2, 2]]
    assert m.loss_and_grads(x, np.array([0, 1, 2, 0]))[1] == 3
    assert m.evaluate(x, np.array([0, 1, 2, 0]))[1] == 0.75
    np.testing.assert_array_equal(m.predict(x), [0, 1, 2, 2])


@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
def test_extreme_logits_stay_finite_without_warnings(loss):
    m = MLP((2, 3), loss=loss)
    m.set_weights({"dense0.W": np.array([[3e4, -3e4, 0.0], [0.0, 0.0, 0.0]]),
                   "dense0.b": np.zeros(3)})
    x = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    y = np.array([1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_value, _ = m.loss_and_grads(x, y)
        proba = m.predict_proba(x)
        mean_loss, _ = m.evaluate(x, y)
    assert math.isfinite(loss_value) and math.isfinite(mean_loss)
    assert all(np.isfinite(g).all() for g in m.grads.values())
    assert np.isfinite(proba).all()
    if loss == "cross-entropy":  # sample 0 puts all mass on class 0: -log p(1) = 6e4
        assert loss_value == pytest.approx(0.5 * 6e4, rel=1e-6)


# ---- training behaviour ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes, activation, loss, opt, lr, steps",
    [
        ((64, 32, 10), "relu", "cross-entropy", "adam", 0.01, 200),
        ((64, 30, 10), "sigmoid", "mse", "sgd", 3.0, 1500),
        ((64, 100, 10), "tanh", "mse", "momentum", 0.5, 400),
        ((64, 16, 16, 10), "leaky_relu", "cross-entropy", "nesterov", 0.1, 300),
    ],
)
def test_overfits_twenty_examples(sizes, activation, loss, opt, lr, steps):
    rng = np.random.default_rng(0)
    x = rng.random((20, 64)).astype(np.float32)
    y = np.arange(20) % 10
    m = MLP(sizes, activation, loss, rng=rng)
    optimizer = make_optimizer(opt, m.params, lr)
    first, _ = m.loss_and_grads(x, y)
    for _ in range(steps):
        m.loss_and_grads(x, y)
        optimizer.step(m.grads)
    loss_value, correct = m.loss_and_grads(x, y)
    assert correct == 20
    assert m.evaluate(x, y)[1] == 1.0
    assert loss_value < 0.2 * first


def test_last_short_batch_gets_correct_gradients():
    x, y = data(n=50)
    m = MLP(SMALL, rng=np.random.default_rng(0))
    fresh = MLP(SMALL, rng=np.random.default_rng(0))
    for start in (0, 16, 32, 48, 0):  # 16, 16, 16, 2, then 16 again
        xb, yb = x[start:start + 16], y[start:start + 16]
        loss, correct = m.loss_and_grads(xb, yb)
        ref = copy.deepcopy(fresh)
        ref_loss, ref_correct = ref.loss_and_grads(xb, yb)
        assert (loss, correct) == (ref_loss, ref_correct)
        for k in m.grads:
            np.testing.assert_array_equal(m.grads[k], ref.grads[k])


def test_batch_gradient_is_the_mean_of_per_example_gradients():
    x, y = data(n=50)
    m = MLP(SMALL, "tanh", dtype="float64", rng=np.random.default_rng(0))
    x = x.astype(np.float64)
    m.loss_and_grads(x[:16], y[:16])  # a full batch first, so the short one is a second size
    loss, _ = m.loss_and_grads(x[48:], y[48:])  # the short batch of 2
    batch = {k: g.copy() for k, g in m.grads.items()}
    singles = []
    for i in (48, 49):
        singles.append(m.loss_and_grads(x[i:i + 1], y[i:i + 1])[0])
        for k in batch:
            batch[k] -= m.grads[k] / 2
    assert loss == pytest.approx(sum(singles) / 2, rel=1e-12)
    for rest in batch.values():
        np.testing.assert_allclose(rest, 0.0, atol=1e-14)


def test_grads_are_reused_in_place():
    x, y = data(n=50)
    m = MLP(SMALL)
    m.loss_and_grads(x[:16], y[:16])
    ids = {k: id(v) for k, v in m.grads.items()}
    before = m.grads["dense0.W"].copy()
    m.loss_and_grads(x[16:32], y[16:32])
    assert {k: id(v) for k, v in m.grads.items()} == ids
    assert not np.array_equal(before, m.grads["dense0.W"])


def test_float64_input_to_float32_model_is_cast():
    x, y = data(dtype=np.float64)
    a, b = MLP(SMALL), MLP(SMALL)
    assert a.loss_and_grads(x, y) == b.loss_and_grads(x.astype(np.float32), y)


def test_bad_inputs_are_rejected():
    m = MLP(SMALL)
    x, y = data()
    with pytest.raises(ValueError, match="shape"):
        m.loss_and_grads(x[:, :10], y)
    with pytest.raises(TypeError, match="float"):
        m.loss_and_grads((x * 255).astype(np.uint8), y)
    with pytest.raises(ValueError, match="shape"):
        m.loss_and_grads(x, y[:-1])
    with pytest.raises(ValueError, match="labels"):
        m.loss_and_grads(x[:2], np.array([0, -1]))
    with pytest.raises(ValueError, match="labels"):
        m.loss_and_grads(x[:2], np.array([0, 10], dtype=np.uint8))
    with pytest.raises(ValueError, match="labels"):
        m.evaluate(x[:2], np.array([0, 10]))
    with pytest.raises(ValueError):
        m.loss_and_grads(x[:0], y[:0])


# ---- inference ----------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
def test_predict_proba_rows_sum_to_one_and_chunking_does_not_matter(loss):
    x, y = data(n=53)
    m = train(MLP(SMALL, "sigmoid", loss, rng=np.random.default_rng(2)), x, y, steps=4)
    p = m.predict_proba(x)
    assert p.shape == (53, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert (p >= 0).all()
    np.testing.assert_allclose(m.predict_proba(x, batch_size=7), p, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(m.predict(x), p.argmax(axis=1))
    assert m.predict_proba(x[:0]).shape == (0, 10)


def test_predict_proba_for_mse_when_every_output_underflows_is_uniform():
    m = MLP((30, 10), "relu", "mse")
    m.set_weights({"dense0.W": np.zeros((30, 10)), "dense0.b": np.full(10, -1000.0)})
    x, _ = data(n=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = m.predict_proba(x)
    assert not m.forward(x).any()  # sigmoid(-1000) is 0.0 in float32
    np.testing.assert_allclose(p, 0.1)


def test_forward_gives_raw_sigmoid_outputs_for_mse():
    x, _ = data(n=5)
    m = MLP(SMALL, "tanh", "mse", rng=np.random.default_rng(2))
    out = m.forward(x)
    h = np.tanh(np.tanh(x @ m.params["dense0.W"] + m.params["dense0.b"]) @ m.params["dense1.W"]
                + m.params["dense1.b"])
    expected = 1 / (1 + np.exp(-(h @ m.params["dense2.W"] + m.params["dense2.b"])))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(out.sum(axis=1), 1.0)


def test_evaluate_matches_full_batch_loss_and_accuracy():
    x, y = data(n=40, dtype=np.float64)
    m = MLP(SMALL, "tanh", dtype="float64", rng=np.random.default_rng(1))
    loss, correct = m.loss_and_grads(x, y)
    mean_loss, acc = m.evaluate(x, y, batch_size=15)
    assert mean_loss == pytest.approx(loss, rel=1e-12)
    assert acc == correct / 40
    assert all(math.isnan(v) for v in m.evaluate(x[:0], y[:0]))


def test_inference_between_gradient_and_step_does_not_change_training():
    x, y = data(n=48)
    xv, yv = data(n=37, seed=1)

    def interfere(step):
        m.evaluate(xv, yv, batch_size=16)  # same batch size as training
        m.predict_proba(x[:16], batch_size=16)
        m.forward(xv)
        m.predict(x[:5])

    clean = train(MLP(SMALL, rng=np.random.default_rng(0)), x, y, steps=9)
    m = MLP(SMALL, rng=np.random.default_rng(0))
    train(m, x, y, steps=9, between=interfere)
    for k in clean.params:
        np.testing.assert_array_equal(m.params[k], clean.params[k])


def test_inference_from_another_thread_does_not_change_training():
    # Inference buffers are per thread: a UI thread predicting (with the training batch size)
    # while the worker trains must not change a single training bit.
    x, y = data(n=48)
    m = MLP(SMALL, rng=np.random.default_rng(0))
    stop, started = threading.Event(), threading.Event()
    calls, errors = [], []

    def spin():
        try:
            while not stop.is_set():
                m.predict_proba(x[:16], batch_size=16)
                m.evaluate(x[:16], y[:16], batch_size=16)
                calls.append(1)
                started.set()
        except Exception as exc:  # noqa: BLE001 - any error of the thread is surfaced below
            errors.append(exc)
        finally:
            started.set()

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        started.wait(timeout=30)
        train(m, x, y, steps=300)
    finally:
        stop.set()
        worker.join()
    assert not errors
    assert len(calls) > 1
    clean = train(MLP(SMALL, rng=np.random.default_rng(0)), x, y, steps=300)
    for k in clean.params:
        np.testing.assert_array_equal(m.params[k], clean.params[k])


# ---- weights ------------------------------------------------------------------------------------


def test_get_weights_returns_copies():
    m = MLP(SMALL)
    w = m.get_weights()
    w["dense0.W"][...] = 7.0
    assert not (m.params["dense0.W"] == 7.0).any()


def test_set_weights_casts_and_keeps_the_optimizer_working():
    m = MLP(SMALL)
    opt = make_optimizer("sgd", m.params, 0.1)
    new = {k: np.full(v.shape, 0.5, dtype=np.float64) for k, v in m.params.items()}
    m.set_weights(new)
    assert all(v.dtype == np.float32 and (v == 0.5).all() for v in m.params.values())
    x, y = data()
    m.loss_and_grads(x, y)
    opt.step(m.grads)
    assert not (m.params["dense0.W"] == 0.5).all()  # the optimizer updated the live arrays


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda w: w.update({"dense0.W": np.zeros((30, 17))}), "dense0.W"),
        (lambda w: w.pop("dense1.b"), "missing dense1.b"),
        (lambda w: w.update({"dense9.W": np.zeros(3)}), "unexpected dense9.W"),
        (lambda w: w["dense2.W"].__setitem__((0, 0), np.nan), "NaN"),
        (lambda w: w.update({"dense0.b": np.array(["x"] * 16)}), "dense0.b"),
    ],
)
def test_set_weights_rejects_and_changes_nothing(change, match):
    m = MLP(SMALL)
    before = m.get_weights()
    bad = {k: np.zeros_like(v) for k, v in before.items()}
    change(bad)
    with pytest.raises(ConfigError, match=match) as info:
        m.set_weights(bad)
    assert info.value.field == "weights"
    for k, v in m.params.items():
        np.testing.assert_array_equal(v, before[k])


def test_architecture_is_json_and_rebuilds_the_model():
    m = MLP((30, 20, 10), "leaky_relu", "mse", init="xavier", dtype="float64")
    arch = json.loads(json.dumps(m.architecture()))
    assert arch == {"sizes": [30, 20, 10], "activation": "leaky_relu", "loss": "mse",
                    "init": "xavier", "dtype": "float64"}
    twin = MLP(**arch)
    twin.set_weights(m.get_weights())
    x, _ = data()
    np.testing.assert_array_equal(twin.predict_proba(x), m.predict_proba(x))


def test_pickle_and_deepcopy_round_trip():
    x, y = data()
    m = train(MLP(SMALL), x, y, steps=2)
    for twin in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        np.testing.assert_array_equal(twin.predict_proba(x), m.predict_proba(x))
        assert twin.loss_and_grads(x, y) == m.loss_and_grads(x, y)


def test_evaluate_fills_predictions_from_the_same_pass():
    import numpy as np

    from engine.mlp import MLP

    rng = np.random.default_rng(3)
    x = rng.random((37, 12), dtype=np.float32)
    y = rng.integers(0, 4, 37)
    for loss in ("cross-entropy", "mse"):
        model = MLP(sizes=(12, 8, 4), loss=loss, rng=np.random.default_rng(1))
        preds = np.full(37, -1, dtype=np.int64)
        loss_value, acc = model.evaluate(x, y, batch_size=10, predictions=preds)
        np.testing.assert_array_equal(preds, model.predict(x))
        assert acc == np.mean(preds == y)
        assert (loss_value, acc) == model.evaluate(x, y, batch_size=10)
