"""Health signals and hints, each hint on a short real run made to show its pattern (bundled
MNIST sample, 2,000 training images, well under a second per run), and on a healthy run that
must give none."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import events as ev
from engine.datasets import Dataset, load_dataset, to_features
from engine.insight import health
from engine.insight.health import (
    FIX_HALVE_LR, FIX_LEAKY_RELU, FIX_RAISE_LR, FIX_WEIGHT_DECAY, RunSignals, dead_units, gradient_strength,
    hints, measure_signals, oscillation_score, saturated_units, train_val_gap,
)
from engine.mlp import MLP
from engine.training import TrainConfig, TrainingSession


@pytest.fixture(scope="module")
def sample():
    return load_dataset("mnist-sample")


def _subset(ds: Dataset, n_train: int) -> Dataset:
    return Dataset(name="mnist", title="MNIST", x_train=ds.x_train[:n_train], y_train=ds.y_train[:n_train],
                   x_test=ds.x_test[:500], y_test=ds.y_test[:500], class_names=ds.class_names,
                   source=ds.source, is_sample=True, max_value=ds.max_value)


def _run(ds: Dataset, n_train: int = 3000, **settings) -> tuple[list[str], RunSignals, list[dict]]:
    """Train, then measure the signals on 500 test images: (hint codes, signals, history)."""
    cfg = TrainConfig(**{"hidden": (64,), "epochs": 3, "val_size": 1000, **settings})
    s = TrainingSession(cfg, _subset(ds, n_train), progress_every=10)
    losses: list[float] = []
    diverged = False
    for e in s.run():
        if isinstance(e, ev.BatchProgress):
            losses += [loss for _, loss in e.points]
        diverged |= isinstance(e, ev.Diverged)
    x = to_features(ds.x_test[:500], ds.max_value)
    sig = measure_signals(s.model, x, ds.y_test[:500].astype(np.int64), losses, diverged, cfg.batch_size)
    return [h.code for h in hints(s.history, sig)], sig, s.history


@pytest.mark.parametrize("seed", [0, 1])
def test_healthy_runs_give_no_hints(sample, seed):
    assert _run(sample, lr=0.05, seed=seed)[0] == []
    assert _run(sample, hidden=(128, 64), optimizer="adam", lr=0.001, seed=seed)[0] == []


@pytest.mark.parametrize("preset", ["nielsen", "tanh-mse", "twolayer"])
def test_classic_presets_give_no_hints(sample, preset):
    # Nielsen's sigmoid net: batch 10 (noisy steps: chunks are by images) and 78% saturated units
    # while it learns well: neither may read as a problem
    from engine.presets import get_preset

    cfg = get_preset(preset)
    settings = {k: v for k, v in cfg.to_dict().items() if k not in ("dataset", "epochs", "val_size")}
    assert _run(sample, n_train=10000, **{**settings, "epochs": min(cfg.epochs, 3), "val_size": 2000})[0] == []


def test_huge_learning_rate_explodes(sample):
    codes, sig, _ = _run(sample, lr=50.0)
    assert sig.diverged and codes[0] == "exploding"
    assert hints([], sig)[0].fix == FIX_HALVE_LR


def test_a_solved_loss_is_not_oscillating():
    """A loss already solved (0.01 with +-0.005 noise, as late in a healthy run) is not
    "oscillating at 100% of where it started": jumps are measured against LOSS_FLOOR at least."""
    rng = np.random.default_rng(0)
    losses = list(0.01 + 0.005 * np.abs(rng.standard_normal(400)))
    _score, level = oscillation_score(losses)
    assert level < health.OSC_LEVEL
    assert "oscillating" not in [h.code for h in hints([], RunSignals(step_losses=tuple(losses)))]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_whole_run_of_a_healthy_run_is_not_oscillating(sample, seed):
    """What the app hands over is the run from its start (the chart's curve), not a late window:
    over the whole run a healthy run does not oscillate, while its last 250 steps alone would
    (small noise next to a small start), which is why the window must not be used."""
    _codes, sig, history = _run(sample, n_train=6000, lr=0.05, epochs=10, seed=seed)
    assert "oscillating" not in [h.code for h in hints(history, sig)]
    score, level = oscillation_score(sig.step_losses[-250:])
    assert score >= health.OSC_SCORE and level >= health.OSC_LEVEL


@pytest.mark.parametrize("seed", [0, 1])
def test_high_learning_rate_oscillates(sample, seed):
    codes, sig, _ = _run(sample, lr=0.5, seed=seed)          # momentum 0.9: 10x the healthy lr
    assert "oscillating" in codes
    score, level = oscillation_score(sig.step_losses)
    assert score >= health.OSC_SCORE and level >= health.OSC_LEVEL


@pytest.mark.parametrize("seed", [0, 1])
def test_very_high_sgd_learning_rate_kills_relu_units(sample, seed):
    codes, sig, _ = _run(sample, optimizer="sgd", lr=2.0, seed=seed)
    assert "dead_units" in codes and max(sig.dead_share) >= health.DEAD_SHARE
    hint = next(h for h in hints([], sig) if h.code == "dead_units")
    assert hint.fix == FIX_LEAKY_RELU and "leaky ReLU" in hint.text


def test_tiny_learning_rate_barely_moves(sample):
    codes, _, history = _run(sample, lr=1e-5, epochs=2)
    assert codes == ["flat"]
    assert hints(history)[0].fix == FIX_RAISE_LR          # from the epoch rows alone, too


def test_saturated_sigmoids_barely_move(sample):
    codes, sig, _ = _run(sample, activation="sigmoid", loss="mse", init="normal", init_std=4.0, optimizer="sgd",
                         lr=0.1, epochs=2)
    assert codes == ["saturated"] and max(sig.saturated_share) >= health.SATURATED_SHARE


@pytest.mark.parametrize("seed", [0, 1])
def test_small_training_set_overfits(sample, seed):
    codes, _, history = _run(sample, n_train=1500, hidden=(256,), lr=0.05, epochs=20, batch_size=32, seed=seed)
    assert "overfitting" in codes
    hint = next(h for h in hints(history) if h.code == "overfitting")
    assert hint.fix == FIX_WEIGHT_DECAY and health.FIX_AUGMENT in hint.fixes
    gaps = train_val_gap(history)
    assert len(gaps) == 20 and gaps[-1][1] > gaps[0][1]


def test_hints_from_constructed_histories():
    rows = [{"epoch": i + 1, "train_loss": t, "val_loss": v, "train_acc": 0.9, "val_acc": 0.8}
            for i, (t, v) in enumerate([(1.0, 0.9), (0.5, 0.6), (0.3, 0.7), (0.2, 0.8)])]
    assert [h.code for h in hints(rows)] == ["overfitting"]
    assert hints(rows[:2]) == []
    assert [h.code for h in hints([{"train_loss": 0.5}, {"train_loss": math.nan}])] == ["exploding"]
    rising = RunSignals(step_losses=tuple([2.3] * 10 + [8.0] * 10))
    assert hints([], rising)[0].code == "exploding"
    assert oscillation_score([1.0] * 50) == (0.0, 1.0)
    assert math.isnan(oscillation_score([1.0] * 5)[0])


def test_signals_on_hand_made_models():
    model = MLP((4, 6, 3), rng=np.random.default_rng(0))
    model.params["dense0.b"][:3] = -100.0       # three units that never fire
    model.params["dense0.b"][3:] = 100.0        # three that always do
    x = np.random.default_rng(1).random((32, 4)).astype(np.float32)
    assert dead_units(model, x) == [0.5]
    sig = MLP((4, 6, 3), activation="sigmoid", init="normal", init_std=50.0, rng=np.random.default_rng(0))
    assert saturated_units(sig, x)[0] > 0.5 and saturated_units(model, x) == [0.0]
    grads = gradient_strength(model, x, np.arange(32) % 3)
    assert [g.name for g in grads] == ["dense0", "dense1"] and all(g.grad_rms > 0 for g in grads)
    assert grads[0].ratio == pytest.approx(grads[0].grad_rms / grads[0].weight_rms)


def test_relu_units_below_zero_from_the_start_stay_dead(sample):
    # a real run whose first layer starts with a big negative bias on 40 of its 64 units: those
    # ReLUs never fire, get no gradient and stay dead while the rest learn
    from engine.optim import make_optimizer

    ds = _subset(sample, 3000)
    model = MLP((784, 64, 10), rng=np.random.default_rng(0))
    model.params["dense0.b"][:40] = -20.0
    opt = make_optimizer("momentum", model.params, lr=0.05, momentum=0.9, weight_decay=0.0)
    x = to_features(ds.x_train, ds.max_value)
    y = ds.y_train.astype(np.int64)
    losses = []
    order = np.random.default_rng(0).permutation(len(y))
    for start in range(0, len(y) - 63, 64):
        idx = order[start : start + 64]
        loss, _ = model.loss_and_grads(x[idx], y[idx])
        opt.step(model.grads)
        losses.append(loss)
    xt = to_features(ds.x_test, ds.max_value)
    sig = measure_signals(model, xt, ds.y_test.astype(np.int64), losses)
    assert sig.dead_share[0] == pytest.approx(40 / 64, abs=0.05) and sig.dead_share[0] >= health.DEAD_SHARE
    codes = [h.code for h in hints([], sig)]
    assert codes == ["dead_units"]               # the live units learn: no "flat", no "exploding"
