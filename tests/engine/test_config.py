"""TrainConfig is the one validator; each registry owns its names."""

from __future__ import annotations

import pytest

from engine import activations, augment, init, losses, mlp, optim
from engine.config import CHOICES, TrainConfig, check_fits
from engine.errors import ConfigError


def test_choices_are_the_registries_own_names():
    assert CHOICES["activation"] is activations.ACTIVATION_NAMES
    assert set(activations.ACTIVATION_NAMES) == set(activations.ACTIVATIONS)
    assert CHOICES["loss"] is losses.LOSS_NAMES and set(losses.LOSS_NAMES) == set(losses.LOSSES)
    assert CHOICES["init"] is init.INIT_NAMES
    assert CHOICES["optimizer"] is optim.OPTIMIZER_NAMES
    assert CHOICES["schedule"] is optim.SCHEDULE_NAMES
    assert CHOICES["dtype"] is mlp.DTYPE_NAMES
    assert CHOICES["augment"] is augment.AUGMENT_NAMES
    # the display order the settings form has always shown
    assert CHOICES["activation"] == ("relu", "leaky_relu", "sigmoid", "tanh")
    assert CHOICES["init"] == ("auto", "he", "xavier", "normal")


@pytest.mark.parametrize("gamma, ok", [(0.0, False), (0.5, True), (1.0, True), (1.5, False)])
def test_gamma_has_one_range_in_the_config_and_the_schedule(gamma, ok):
    def schedule() -> object:
        return optim.make_schedule("step", 0.1, total_steps=10, steps_per_epoch=5, gamma=gamma)

    if ok:
        TrainConfig(gamma=gamma)
        schedule()
        return
    for build in (lambda: TrainConfig(gamma=gamma), schedule):
        with pytest.raises(ConfigError) as info:
            build()
        assert info.value.field == "gamma"


def test_the_forms_reasons_are_the_engines():
    from tui import forms

    for name, text, value in (("activation", "swish", "swish"), ("lr", "inf", float("inf")),
                              ("batch_size", "0", 0)):
        with pytest.raises(ConfigError) as info:
            TrainConfig(**{name: value})
        assert forms.field_error(name, text) == info.value.reason
    with pytest.raises(ConfigError) as info:
        check_fits(TrainConfig(val_size=10_000), 10_000)
    assert forms.field_error("val_size", "10000", n_train=10_000) == info.value.reason


def test_a_warm_up_too_long_for_cosine_is_blamed_on_warmup_epochs():
    from engine.training import TrainingSession
    from tests.factories import make_dataset

    with pytest.raises(ConfigError) as info:
        TrainConfig(schedule="cosine", warmup_epochs=3, epochs=3)
    assert info.value.field == "warmup_epochs"
    # rounding to whole steps: caught when the session builds the schedule, same field
    small = make_dataset(n_train=110)
    with pytest.raises(ConfigError) as info:
        TrainingSession(TrainConfig(schedule="cosine", warmup_epochs=1.99, epochs=2, batch_size=4,
                                    val_size=100, hidden=(4,)), small)
    assert info.value.field == "warmup_epochs"
