"""A run's settings: ``TrainConfig`` (frozen, validated on construction) and its parsers.

The one validator of settings: the CLI, the settings form and the engine all build a
TrainConfig and report its ``ConfigError(field, reason)``. Apart from
:mod:`engine.training` (which runs a config) so that :mod:`engine.checkpoint` can read a
config without importing the training loop (no import cycle).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.activations import ACTIVATION_NAMES
from engine.augment import AUGMENT_NAMES
from engine.errors import ConfigError
from engine.init import INIT_NAMES
from engine.losses import LOSS_NAMES
from engine.mlp import DTYPE_NAMES
from engine.optim import OPTIMIZER_NAMES, OPTIMIZERS, SCHEDULE_NAMES

#: The allowed values of each choice setting: each registry's own names, in display order.
CHOICES: dict[str, tuple[str, ...]] = {
    "activation": ACTIVATION_NAMES,
    "loss": LOSS_NAMES,
    "init": INIT_NAMES,
    "optimizer": OPTIMIZER_NAMES,
    "schedule": SCHEDULE_NAMES,
    "dtype": DTYPE_NAMES,
    "augment": AUGMENT_NAMES,
}

# Memory budget for one network + its optimizer state + activations (refuse absurd nets
# before allocating; see estimate_memory_bytes).
MAX_MODEL_BYTES = 4 * 1024**3


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run. Frozen and validated on construction (ConfigError)."""

    dataset: str = "mnist"
    hidden: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    loss: str = "cross-entropy"
    init: str = "auto"
    init_std: float = 0.01
    optimizer: str = "momentum"
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 64
    epochs: int = 10
    weight_decay: float = 0.0
    schedule: str = "constant"
    step_epochs: int = 10
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    val_size: int = 10000
    seed: int = 0
    dtype: str = "float32"
    augment: str = "none"      # "shift": random translation by up to 2 pixels per image
    max_shift: int = 2

    def __post_init__(self) -> None:
        hidden = self.hidden
        if isinstance(hidden, str):
            hidden = parse_layers(hidden)
        try:
            hidden = tuple(int(h) for h in hidden)
        except (TypeError, ValueError):
            raise ConfigError("hidden", f"expected a list of layer sizes, got {self.hidden!r}") from None
        object.__setattr__(self, "hidden", hidden)
        for h in hidden:
            if not 1 <= h <= 100_000:
                raise ConfigError("hidden", f"layer size {h} is out of range 1..100000")
        if len(hidden) > 16:
            raise ConfigError("hidden", f"{len(hidden)} hidden layers; at most 16")
        for name, options in CHOICES.items():
            value = getattr(self, name)
            if value not in options:
                raise ConfigError(name, f"{value!r} is not one of {', '.join(options)}")
        _check_number("lr", self.lr, low=0.0, high=1e6, low_open=True)
        _check_number("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _check_number("weight_decay", self.weight_decay, low=0.0, high=10.0)
        _check_number("gamma", self.gamma, low=0.0, high=1.0, low_open=True)
        _check_number("init_std", self.init_std, low=0.0, high=100.0, low_open=True)
        _check_number("warmup_epochs", self.warmup_epochs, low=0.0, high=1000.0)
        _check_int("batch_size", self.batch_size, 1, 1_000_000)
        _check_int("epochs", self.epochs, 1, 100_000)
        _check_int("step_epochs", self.step_epochs, 1, 100_000)
        _check_int("val_size", self.val_size, 0, 10_000_000)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("max_shift", self.max_shift, 0, 8)
        if self.schedule == "cosine" and self.warmup_epochs >= self.epochs:
            raise ConfigError("warmup_epochs", f"{self.warmup_epochs:g} must be below the number of epochs"
                                               f" ({self.epochs}) for the cosine schedule")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError("dataset", "must name a dataset, e.g. mnist")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a dict (e.g. a checkpoint's or settings file's); unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line, for logs: '784-128-64-10 relu cross-entropy momentum lr=0.05 ...'."""
        layers = "-".join(str(h) for h in self.hidden)
        return (
            f"hidden {layers} {self.activation} {self.loss} {self.optimizer} lr={self.lr:g}"
            f" {self.schedule} batch={self.batch_size} epochs={self.epochs}"
            f" wd={self.weight_decay:g} val={self.val_size} seed={self.seed}"
            + (f" augment={self.augment}" if self.augment != "none" else "")
        )


#: The settings a run can change while it trains (TrainingSession.change, at a step boundary).
LIVE_FIELDS: tuple[str, ...] = ("lr", "momentum", "weight_decay", "batch_size")


def check_change(config: TrainConfig, values: dict[str, Any], n_train: int | None = None,
                 n_features: int | None = None, n_classes: int | None = None) -> TrainConfig:
    """``config`` with the live change ``values`` applied, validated by TrainConfig's own rules
    (and, given the dataset's sizes, check_fits' memory rule); ConfigError(field, reason) when
    refused. Only LIVE_FIELDS change live; momentum only with the momentum/nesterov optimizers."""
    for name in values:
        if name not in LIVE_FIELDS:
            raise ConfigError(name, "cannot change while a run trains (only lr, momentum, weight decay and"
                                    " batch size can): it applies to the next run")
    if "momentum" in values and config.optimizer not in ("momentum", "nesterov"):
        raise ConfigError("momentum", f"the {config.optimizer} optimizer uses no momentum: choose momentum"
                                      " or nesterov for the next run")
    new = config.replace(**values)          # TrainConfig's rules: ConfigError(field, reason)
    if config.optimizer == "nesterov" and new.momentum == 0.0:
        raise ConfigError("momentum", "Nesterov momentum needs momentum > 0")
    normalised = {k: (int(v) if k == "batch_size" else float(v)) for k, v in values.items()}
    new = config.replace(**normalised)
    if n_train is not None and "batch_size" in values:
        check_fits(new, n_train, n_features, n_classes)
    return new


def parse_layers(text: str) -> tuple[int, ...]:
    """'128,64' or '128 64' -> (128, 64); '' or 'none' -> (); raises ConfigError('hidden', ...)."""
    text = text.strip()
    if text.lower() in ("", "none", "-"):
        return ()
    parts = re.split(r"\s*,\s*|\s+", text)
    out = []
    for p in parts:
        if p == "":
            raise ConfigError("hidden", "empty layer size between commas (write sizes like 128,64)")
        if not p.isdigit():
            raise ConfigError("hidden", f"{p!r} is not a whole number (write sizes like 128,64)")
        out.append(int(p))
    return tuple(out)


def _check_number(field: str, value: Any, low: float, high: float,
                  low_open: bool = False, high_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(field, f"expected a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ConfigError(field, f"{value:g} is out of range {lo}{low:g}, {high:g}{hi}")


def _check_int(field: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(field, f"expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(field, f"{value} is out of range {low}..{high}")


def estimate_memory_bytes(config: TrainConfig, n_features: int, n_classes: int,
                          n_train: int | None = None) -> int:
    """Rough bytes a run needs beyond the dataset: weights, grads, optimizer state, activations.

    A batch never holds more than the ``n_train`` training images (when given)."""
    return sum(_memory_parts(config, n_features, n_classes, n_train))


def _memory_parts(config: TrainConfig, n_features: int, n_classes: int,
                  n_train: int | None = None) -> tuple[int, int]:
    """(bytes of weights + grads + optimizer state + last-good copy, bytes of activations)."""
    sizes = (n_features, *config.hidden, n_classes)
    itemsize = np.dtype(config.dtype).itemsize
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    copies = 2 + OPTIMIZERS[config.optimizer].state_slots + 1  # +1 last-good
    batch = config.batch_size if n_train is None else min(config.batch_size, max(n_train, 1))
    act = 3 * max(batch, 1000) * sum(sizes)  # forward caches + eval chunk
    return int(n_params * copies * itemsize), int(act * itemsize)


def check_fits(config: TrainConfig, n_train: int, n_features: int | None = None,
               n_classes: int | None = None, title: str = "the dataset") -> None:
    """Raise ConfigError(field, reason) when ``config`` cannot train on dataset ``title`` of
    ``n_train`` training images: the validation size must leave some (the rule of
    engine.datasets.fit_val_size); given the images' shape, the run must fit in
    MAX_MODEL_BYTES -- blamed on ``batch_size`` when the network fits with a batch of at most
    1,000 images, else on ``hidden``."""
    from engine.datasets import fit_val_size

    if fit_val_size(config.val_size, n_train) != config.val_size:
        raise ConfigError("val_size", f"{config.val_size} leaves no training data "
                                      f"({title} has {n_train} training images)")
    if n_features is None or n_classes is None:
        return
    model, act = _memory_parts(config, n_features, n_classes, n_train - config.val_size)
    if model + act <= MAX_MODEL_BYTES:
        return
    need = f"about {(model + act) / 1024**3:.1f} GiB (limit {MAX_MODEL_BYTES / 1024**3:.0f} GiB)"
    small = config.replace(batch_size=1000)
    if config.batch_size > 1000 and sum(_memory_parts(small, n_features, n_classes)) <= MAX_MODEL_BYTES:
        raise ConfigError("batch_size", f"a batch of {config.batch_size} images needs {need}:"
                                        " use a smaller batch size")
    raise ConfigError("hidden", f"this network needs {need}: use smaller layers")
