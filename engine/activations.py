"""Hidden-layer activations, computed in place on (B, n) float arrays.

Every activation is a pair of functions that write into arrays they are given, so a training
step allocates nothing:

``forward(z, scratch)``
    overwrite ``z`` (B, n) with ``a = f(z)``. ``scratch`` (B, n), same dtype, may be clobbered.
``derivative(a, out)``
    write ``f'(z)`` into ``out`` (B, n), computed from the *output* ``a = f(z)`` so that ``z``
    need not be kept. (For relu and leaky relu ``a > 0`` exactly when ``z > 0``.)

``forward_with_derivative(z, out)`` (optional)
    both at once, where that saves a pass (relu, leaky relu: the derivative is the mask that
    the forward pass multiplies by). When it is None, callers run forward then derivative.

The backward pass of a layer is then ``dL/dz = dL/da * f'(z)`` (one multiply).
Look activations up with :func:`get_activation`; ``ACTIVATIONS`` is the registry (tests patch it).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from engine.errors import ConfigError

#: Slope of leaky relu for z < 0.
LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """An element-wise nonlinearity: ``forward`` in place, ``derivative`` from the output."""

    name: str
    forward: Callable[[np.ndarray, np.ndarray], None]
    derivative: Callable[[np.ndarray, np.ndarray], None]
    forward_with_derivative: Callable[[np.ndarray, np.ndarray], None] | None = None


def sigmoid_forward(z: np.ndarray, scratch: np.ndarray) -> None:
    """z (B, n) <- 1 / (1 + exp(-z)), as 0.5 + 0.5*tanh(z/2): no overflow for any z."""
    np.multiply(z, 0.5, out=z)
    np.tanh(z, out=z)
    np.multiply(z, 0.5, out=z)
    np.add(z, 0.5, out=z)


def sigmoid_derivative(a: np.ndarray, out: np.ndarray) -> None:
    """out (B, n) <- a * (1 - a), where a = sigmoid(z)."""
    np.multiply(a, a, out=out)
    np.subtract(a, out, out=out)


def tanh_forward(z: np.ndarray, scratch: np.ndarray) -> None:
    """z (B, n) <- tanh(z)."""
    np.tanh(z, out=z)


def tanh_derivative(a: np.ndarray, out: np.ndarray) -> None:
    """out (B, n) <- 1 - a**2, where a = tanh(z)."""
    np.multiply(a, a, out=out)
    np.subtract(1.0, out, out=out)


def relu_forward(z: np.ndarray, scratch: np.ndarray) -> None:
    """z (B, n) <- max(z, 0) (as z * (z > 0), which is faster than np.maximum here)."""
    np.greater(z, 0.0, out=scratch)
    np.multiply(z, scratch, out=z)


def relu_forward_with_derivative(z: np.ndarray, out: np.ndarray) -> None:
    """z (B, n) <- relu(z) and out (B, n) <- relu'(z), in two passes."""
    np.greater(z, 0.0, out=out)
    np.multiply(z, out, out=z)


def relu_derivative(a: np.ndarray, out: np.ndarray) -> None:
    """out (B, n) <- 1 where a > 0 else 0 (the subgradient 0 is used at z == 0)."""
    np.greater(a, 0.0, out=out)


def leaky_relu_forward(z: np.ndarray, scratch: np.ndarray) -> None:
    """z (B, n) <- z if z > 0 else LEAKY_SLOPE * z."""
    leaky_relu_derivative(z, scratch)  # the slope at z is exactly the factor to apply
    np.multiply(z, scratch, out=z)


def leaky_relu_forward_with_derivative(z: np.ndarray, out: np.ndarray) -> None:
    """z (B, n) <- leaky_relu(z) and out (B, n) <- its derivative."""
    leaky_relu_derivative(z, out)
    np.multiply(z, out, out=z)


def leaky_relu_derivative(a: np.ndarray, out: np.ndarray) -> None:
    """out (B, n) <- 1 where a > 0 else LEAKY_SLOPE."""
    np.greater(a, 0.0, out=out)
    np.multiply(out, 1.0 - LEAKY_SLOPE, out=out)
    np.add(out, LEAKY_SLOPE, out=out)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", relu_forward, relu_derivative, relu_forward_with_derivative),
    "leaky_relu": Activation(
        "leaky_relu", leaky_relu_forward, leaky_relu_derivative, leaky_relu_forward_with_derivative
    ),
    "sigmoid": Activation("sigmoid", sigmoid_forward, sigmoid_derivative),
    "tanh": Activation("tanh", tanh_forward, tanh_derivative),
}

#: Valid activation names, in display order (the registry's own: TrainConfig's choices).
ACTIVATION_NAMES: tuple[str, ...] = tuple(ACTIVATIONS)


def get_activation(name: str) -> Activation:
    """The registered activation called ``name``; ConfigError("activation", ...) otherwise."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            "activation",
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATION_NAMES)}",
        ) from None
