"""Named recipes: the classic from-scratch tutorials, plus termnist's own defaults.

Each preset is a TrainConfig plus the accuracy its tutorial reports (``target``), so the
README table and the accuracy checks compare against the same figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError
from engine.config import TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    config: TrainConfig
    summary: str
    target: float  # test accuracy the recipe should reach (the tutorial's figure)


_PRESETS = (
    Preset(
        "default",
        TrainConfig(hidden=(256, 128), activation="relu", loss="cross-entropy", optimizer="momentum",
                    lr=0.05, momentum=0.9, batch_size=64, epochs=10, schedule="cosine",
                    weight_decay=0.0, val_size=10000),
        "784-256-128-10 ReLU, softmax cross-entropy, SGD momentum 0.9, cosine lr 0.05, batch 64",
        0.980,
    ),
    Preset(
        "best",
        TrainConfig(hidden=(512, 256), activation="relu", loss="cross-entropy", optimizer="momentum",
                    lr=0.05, momentum=0.9, batch_size=128, epochs=20, schedule="cosine",
                    weight_decay=1e-4, val_size=0, augment="shift", max_shift=2),
        "784-512-256-10 ReLU, cross-entropy, SGD momentum, cosine, weight decay 1e-4, random 2-pixel shifts,"
        " all 60k images (no validation split)",
        0.984,
    ),
    Preset(
        "nielsen",
        TrainConfig(hidden=(30,), activation="sigmoid", loss="mse", optimizer="sgd", init="normal",
                    init_std=1.0, lr=3.0, batch_size=10, epochs=30, val_size=10000),
        "Nielsen ch.1: 784-30-10 sigmoid, quadratic cost, SGD eta 3.0, batch 10, N(0,1) init",
        0.945,  # "~95%": the book's runs end at 94.5-95.4% depending on the seed (ours: 94.7-95.2%)
    ),
    Preset(
        "twolayer",
        TrainConfig(hidden=(50,), activation="relu", loss="cross-entropy", optimizer="sgd",
                    lr=0.05, batch_size=512, epochs=60, val_size=10000),
        "TwoLayerNet: 784-50-10 ReLU, softmax cross-entropy, SGD lr 0.05, batch 512",
        0.95,
    ),
    Preset(
        "threelayer",
        TrainConfig(hidden=(128, 64), activation="relu", loss="cross-entropy", optimizer="momentum",
                    lr=0.01, momentum=0.9, batch_size=64, epochs=10, val_size=10000),
        "Layered MLP: 784-128-64-10 ReLU, cross-entropy, SGD momentum, batch 64",
        0.97,
    ),
    Preset(
        "tanh-mse",
        TrainConfig(hidden=(100,), activation="tanh", loss="mse", optimizer="sgd",
                    lr=0.5, batch_size=100, epochs=1, val_size=10000),
        "784-100-10 tanh, squared error, SGD batch 100, 50k/10k train/validation, one epoch",
        0.90,
    ),
    Preset(
        "digits",
        TrainConfig(dataset="digits", hidden=(100,), activation="sigmoid", loss="mse", optimizer="sgd",
                    lr=2.0, batch_size=10, epochs=50, val_size=0),
        "scikit-learn 8x8 digits: 64-100-10 sigmoid, squared error, SGD",
        0.95,
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}


def get_preset(name: str) -> TrainConfig:
    """The TrainConfig of preset ``name``; ConfigError('preset', ...) lists the known names."""
    try:
        return PRESETS[name].config
    except KeyError:
        raise ConfigError("preset", f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
