"""Hyperparameter form logic: field strings -> TrainConfig, or a reason per field.

Pure functions (no Textual): the form widget calls them as the user types, the tests
call them directly. The form only turns text into numbers: every rule is the engine's (a
value is checked by building a TrainConfig with it, and against the loaded dataset with
engine.config.check_fits), so the form and the engine can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.errors import ConfigError
from engine.config import CHOICES, TrainConfig, check_fits, parse_layers
from engine.datasets import available_datasets


@dataclass(frozen=True)
class Field:
    name: str          # TrainConfig attribute
    label: str         # shown left of the input
    kind: str          # "choice" | "int" | "float" | "layers" | "name"
    hint: str = ""     # placeholder / help text


FIELDS: tuple[Field, ...] = (
    Field("dataset", "Dataset", "name", ", ".join(n for n in available_datasets() if n != "mnist-sample")),
    Field("hidden", "Hidden layers", "layers", "sizes, e.g. 128,64"),
    Field("activation", "Activation", "choice"),
    Field("loss", "Loss", "choice"),
    Field("optimizer", "Optimizer", "choice"),
    Field("lr", "Learning rate", "float", "e.g. 0.05"),
    Field("momentum", "Momentum", "float", "e.g. 0.9 (momentum, nesterov)"),
    Field("schedule", "LR schedule", "choice"),
    Field("batch_size", "Batch size", "int", "e.g. 64"),
    Field("epochs", "Epochs", "int", "e.g. 10"),
    Field("weight_decay", "Weight decay", "float", "e.g. 0 or 1e-4"),
    Field("val_size", "Validation size", "int", "images held out, e.g. 10000"),
    Field("seed", "Seed", "int", "e.g. 0"),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}


def choices(name: str) -> tuple[str, ...]:
    """The allowed values of a choice field."""
    return CHOICES[name]


def parse_value(name: str, text: str) -> object:
    """Convert one field's text to its TrainConfig value; ConfigError(name, reason) if it cannot."""
    field = FIELDS_BY_NAME[name]
    raw = text.strip()
    if field.kind == "layers":
        try:
            return parse_layers(raw)
        except ConfigError as exc:
            raise ConfigError(name, exc.reason) from None
    if raw == "":
        raise ConfigError(name, "required")
    if field.kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(name, f"{raw!r} is not a whole number") from None
    if field.kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(name, f"{raw!r} is not a number") from None
    return raw  # "choice", "name": TrainConfig (and the dataset loader) judge it


def field_error(name: str, text: str, base: TrainConfig | None = None,
                n_train: int | None = None) -> str | None:
    """Why ``text`` is not a valid value for field ``name`` (None when it is).

    The value is parsed, then checked against the engine's own rules by building
    ``base`` (default TrainConfig()) with it and, given ``n_train`` (the size of the loaded
    training set), checking that config against it (engine.config.check_fits).
    """
    try:
        config = (base or TrainConfig()).replace(**{name: parse_value(name, text)})
        if n_train is not None:
            check_fits(config, n_train)
    except ConfigError as exc:
        if exc.field == name:
            return exc.reason
        return None  # another field of ``base`` is at fault, not this one
    return None


def build_config(
    values: Mapping[str, str], base: TrainConfig | None = None, n_train: int | None = None
) -> tuple[TrainConfig | None, dict[str, str]]:
    """All field strings -> (config, {}) or (None, {field: reason, ...}).

    Fields missing from ``values`` keep ``base``'s value; settings the form does not
    show (momentum, init, gamma, dtype ...) always come from ``base``.
    """
    base = base or TrainConfig()
    parsed: dict[str, object] = {}
    errors: dict[str, str] = {}
    for name in FIELD_NAMES:
        if name not in values:
            continue
        reason = field_error(name, values[name], base, n_train)
        if reason is not None:
            errors[name] = reason
        else:
            parsed[name] = parse_value(name, values[name])
    if errors:
        return None, errors
    try:
        config = base.replace(**parsed)
        if n_train is not None:
            check_fits(config, n_train)
    except ConfigError as exc:
        return None, {exc.field: exc.reason}
    return config, {}


def config_to_values(config: TrainConfig) -> dict[str, str]:
    """A config's form fields as strings (inverse of build_config for those fields)."""
    out: dict[str, str] = {}
    for name in FIELD_NAMES:
        value = getattr(config, name)
        if name == "hidden":
            out[name] = ",".join(str(h) for h in value)
        elif isinstance(value, float):
            out[name] = format_float(value)
        else:
            out[name] = str(value)
    return out


def format_float(value: float) -> str:
    """Short, round-trippable text for a float: 0.05, 1e-04, 3."""
    text = f"{value:g}"
    return text if float(text) == value else repr(value)


def describe_errors(errors: Mapping[str, str]) -> str:
    """One line naming each bad field and why: 'Learning rate: ...; Batch size: ...'."""
    parts = []
    for name, reason in errors.items():
        label = FIELDS_BY_NAME[name].label if name in FIELDS_BY_NAME else name
        parts.append(f"{label}: {reason}")
    return "; ".join(parts)
