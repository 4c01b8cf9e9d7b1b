"""tui.forms: field strings -> TrainConfig, or a reason per field."""

from __future__ import annotations

import pytest

from engine.training import TrainConfig
from tui import forms


def good_values(**changes: str) -> dict[str, str]:
    values = forms.config_to_values(TrainConfig())
    values.update(changes)
    return values


def test_round_trip_of_every_form_field():
    config = TrainConfig(hidden=(300, 100, 30), activation="tanh", loss="mse", optimizer="adam",
                         lr=1e-3, momentum=0.5, schedule="step", batch_size=32, epochs=3,
                         weight_decay=5e-4, val_size=500, seed=7)
    built, errors = forms.build_config(forms.config_to_values(config))
    assert errors == {}
    assert built == config


def test_hidden_settings_come_from_base():
    base = TrainConfig(step_epochs=3, init="xavier", gamma=0.5)      # (momentum is a form field)
    built, errors = forms.build_config(good_values(lr="0.2"), base)
    assert errors == {}
    assert (built.step_epochs, built.init, built.gamma, built.lr) == (3, "xavier", 0.5, 0.2)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("lr", "abc", "not a number"),
        ("lr", "0", "out of range"),
        ("lr", "-0.1", "out of range"),
        ("lr", "nan", "finite"),
        ("lr", "", "required"),
        ("hidden", "128,,x", "empty layer size"),
        ("hidden", "128,x", "not a whole number"),
        ("hidden", "0", "out of range"),
        ("batch_size", "0", "out of range"),
        ("batch_size", "1.5", "not a whole number"),
        ("epochs", "-1", "out of range"),
        ("weight_decay", "-1", "out of range"),
        ("val_size", "ten", "not a whole number"),
        ("seed", "-3", "out of range"),
        ("activation", "swish", "not one of"),
    ],
)
def test_bad_field_gives_a_reason(name, text, fragment):
    reason = forms.field_error(name, text)
    assert reason is not None and fragment in reason
    config, errors = forms.build_config(good_values(**{name: text}))
    assert config is None
    assert fragment in errors[name]


@pytest.mark.parametrize(("name", "text"), [("lr", "1e-3"), ("lr", " 0.5 "), ("hidden", "128 64"),
                                            ("hidden", ""), ("batch_size", "1_000"), ("seed", "0")])
def test_good_field_has_no_error(name, text):
    assert forms.field_error(name, text) is None


def test_every_bad_field_is_reported_at_once():
    _, errors = forms.build_config(good_values(lr="-1", batch_size="0", hidden="128,,x"))
    assert set(errors) == {"lr", "batch_size", "hidden"}
    line = forms.describe_errors(errors)
    assert "Learning rate:" in line and "Batch size:" in line and "Hidden layers:" in line


def test_validation_size_is_bounded_by_the_loaded_training_set():
    assert forms.field_error("val_size", "10000", n_train=10000) is not None
    assert forms.field_error("val_size", "9999", n_train=10000) is None
    config, errors = forms.build_config(good_values(val_size="10000"), n_train=10000)
    assert config is None and "leaves no training data" in errors["val_size"]


def test_format_float_is_short_and_exact():
    assert forms.format_float(0.05) == "0.05"
    assert forms.format_float(1e-4) == "0.0001"
    assert forms.format_float(3.0) == "3"
    assert float(forms.format_float(0.1234567891)) == 0.1234567891
