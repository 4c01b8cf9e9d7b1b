"""Weight initialisation. The generator passed in is the only source of randomness.

Schemes (for a layer W of shape (fan_in, fan_out); biases always start at zero):

``"normal"``  N(0, std**2), std = ``init_std`` (default 0.01). Nielsen's improved init is
              ``init_std = 1/sqrt(fan_in)``; his first one is ``init_std = 1``.
``"xavier"``  Glorot & Bengio (2010), uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
``"he"``      He et al. (2015), normal: N(0, 2 / ((1 + s**2) fan_in)), s = leaky relu slope
              (0 for every activation but leaky_relu).
``"auto"``    "he" for relu / leaky_relu, "xavier" for sigmoid / tanh.

Values are drawn in float64 and then cast, so a float32 and a float64 model built from the
same seed hold the same weights up to rounding.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from engine.activations import LEAKY_SLOPE
from engine.errors import ConfigError

#: Valid init names, in display order (TrainConfig's choices).
INIT_NAMES: tuple[str, ...] = ("auto", "he", "xavier", "normal")
#: std of the "normal" scheme when none is given.
DEFAULT_NORMAL_STD = 0.01


def resolve_init(init: str, activation: str) -> str:
    """The concrete scheme ("normal", "xavier" or "he") that ``init`` means for ``activation``."""
    if init not in INIT_NAMES:
        raise ConfigError("init", f"unknown init {init!r}; choose one of {', '.join(INIT_NAMES)}")
    if init != "auto":
        return init
    return "he" if activation in ("relu", "leaky_relu") else "xavier"


def init_params(
    sizes: Sequence[int],
    *,
    init: str,
    activation: str,
    rng: np.random.Generator,
    init_std: float | None = None,
    dtype: np.dtype | str | type[np.generic] = np.float32,
) -> dict[str, np.ndarray]:
    """Fresh parameters ``dense{i}.W`` (sizes[i], sizes[i+1]) and ``dense{i}.b`` (sizes[i+1],).

    Draws one block of numbers per layer from ``rng``, in layer order.
    """
    scheme = resolve_init(init, activation)
    if init_std is not None:
        if scheme != "normal":
            raise ConfigError("init_std", f"only used with init='normal' (init is {init!r})")
        ok = isinstance(init_std, numbers.Real) and not isinstance(init_std, bool)
        if not (ok and math.isfinite(init_std) and init_std > 0):
            raise ConfigError("init_std", f"must be a positive number, got {init_std!r}")
    dtype = np.dtype(dtype)
    params: dict[str, np.ndarray] = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shape = (fan_in, fan_out)
        if scheme == "normal":
            std = DEFAULT_NORMAL_STD if init_std is None else float(init_std)
            w = rng.standard_normal(shape) * std
        elif scheme == "xavier":
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=shape)
        else:  # "he"
            slope = LEAKY_SLOPE if activation == "leaky_relu" else 0.0
            w = rng.standard_normal(shape) * math.sqrt(2.0 / ((1.0 + slope**2) * fan_in))
        params[f"dense{i}.W"] = w.astype(dtype)
        params[f"dense{i}.b"] = np.zeros(fan_out, dtype=dtype)
    return params
