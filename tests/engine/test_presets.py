"""Every preset is a valid config; on the full MNIST each reaches its tutorial's figure."""

from __future__ import annotations

import pytest

from engine import events as ev
from engine.datasets import load_dataset
from engine.errors import ConfigError, DatasetError
from engine.presets import PRESETS, get_preset
from engine.training import TrainingSession


def test_presets_are_valid_and_named():
    assert {"default", "best", "nielsen", "twolayer", "threelayer", "tanh-mse", "digits"} <= set(PRESETS)
    n = PRESETS["nielsen"].config
    assert (n.hidden, n.activation, n.loss, n.optimizer, n.batch_size, n.lr) == (
        (30,), "sigmoid", "mse", "sgd", 10, 3.0)
    t = PRESETS["twolayer"].config
    assert (t.hidden, t.activation, t.loss, t.batch_size, t.lr) == ((50,), "relu", "cross-entropy", 512, 0.05)
    assert PRESETS["threelayer"].config.hidden == (128, 64)
    m = PRESETS["tanh-mse"].config
    assert (m.hidden, m.activation, m.loss, m.batch_size, m.epochs, m.val_size) == (
        (100,), "tanh", "mse", 100, 1, 10000)
    assert PRESETS["digits"].config.dataset == "digits"
    assert PRESETS["default"].target >= 0.98 and PRESETS["best"].target >= 0.984


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match="choose one of default"):
        get_preset("nope")


@pytest.mark.slow
@pytest.mark.full_mnist
@pytest.mark.timeout(1800)  # `best` takes ~50 s on a quiet 2-core box, several minutes on a busy one
@pytest.mark.parametrize("name", [n for n in PRESETS if n != "digits"])
def test_preset_reaches_its_tutorial_accuracy_on_full_mnist(name, full_mnist_dir):
    preset = PRESETS[name]
    ds = load_dataset("mnist", data_dir=str(full_mnist_dir))
    assert not ds.is_sample and len(ds.y_train) == 60000
    events = list(TrainingSession(preset.config, ds).run())
    done = events[-1]
    assert isinstance(done, ev.Finished) and done.reason == "completed"
    assert done.test_acc >= preset.target, f"{name}: {done.test_acc:.4f} < {preset.target}"


@pytest.mark.slow
def test_digits_preset():
    try:
        ds = load_dataset("digits")
    except DatasetError as exc:
        pytest.skip(f"scikit-learn digits unavailable: {exc}")
    preset = PRESETS["digits"]
    done = list(TrainingSession(preset.config, ds).run())[-1]
    assert done.test_acc >= preset.target
