"""What the hidden units learned: every layer's activations for an input, the first layer's
input weights as diverging images, and the units that respond most to an input or a class.

The forward pass here reads ``model.params`` and the activation registry
(:func:`engine.activations.get_activation`), so it never touches the model's buffers: it is safe
from any thread while nothing writes the weights (the app gives it a copy of a training model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.activations import get_activation
from engine.mlp import MLP

#: Diverging ASCII shading, from strongly negative to strongly positive (the middle is zero).
#: Negative weights use round marks, positive ones dense marks, so the sign survives NO_COLOR.
DIVERGING_RAMP = "Oo;, .:+#"


@dataclass(frozen=True)
class LayerActivations:
    name: str                 # "hidden 1", ..., "output"
    values: np.ndarray        # (n_units,) float64: activations (output: probabilities)


def forward_layers(model: MLP, x: Any) -> list[np.ndarray]:
    """Activations of every layer for features ``x`` ((N, D) or (D,), float in [0, 1]): one
    (N, n_i) float array per dense layer; the last is the output (softmax probabilities for
    cross-entropy, sigmoid outputs for mse)."""
    a = np.asarray(x, dtype=model.dtype)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != model.sizes[0]:
        raise ValueError(f"x must have {model.sizes[0]} features per row, got shape {np.shape(x)}")
    act = get_activation(model.activation)
    n_layers = len(model.sizes) - 1
    outs = []
    for i in range(n_layers):
        z = a @ model.params[f"dense{i}.W"] + model.params[f"dense{i}.b"]
        if i < n_layers - 1:
            act.forward(z, np.empty_like(z))
        elif model.loss == "cross-entropy":
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
        else:
            get_activation("sigmoid").forward(z, np.empty_like(z))
        outs.append(z)
        a = z
    return outs


def first_layer(model: MLP, x: Any) -> np.ndarray:
    """Hidden layer 1's activations (N, h1) for features x (N, D): one matrix product, not the
    whole network (what the unit views need)."""
    a = np.asarray(x, dtype=model.dtype)
    a = a[None, :] if a.ndim == 1 else a
    if model.sizes[0] != a.shape[1] or len(model.sizes) < 3:
        raise ValueError(f"need a model with a hidden layer taking {a.shape[1]} inputs, got sizes {model.sizes}")
    z = a @ model.params["dense0.W"] + model.params["dense0.b"]
    get_activation(model.activation).forward(z, np.empty_like(z))
    return z


def layer_strip(model: MLP, x: Any) -> list[LayerActivations]:
    """For one input ``x`` (D,): every layer's activations, named for display."""
    outs = forward_layers(model, np.asarray(x).reshape(1, -1))
    names = [f"hidden {i + 1}" for i in range(len(outs) - 1)] + ["output"]
    return [LayerActivations(n, o[0].astype(np.float64)) for n, o in zip(names, outs)]


def image_shape_for(n_features: int) -> tuple[int, int]:
    """(H, W) of a square input of ``n_features`` pixels; (1, n) when it is not a square."""
    side = math.isqrt(n_features)
    return (side, side) if side * side == n_features else (1, n_features)


def weight_images(model: MLP, shape: tuple[int, int] | None = None, per_unit: bool = True) -> np.ndarray:
    """First-layer input weights as images (n_units, H, W) in [-1, 1], sign kept: each unit
    scaled by its own largest |weight| (``per_unit``) or all by the global one."""
    w = np.asarray(model.params["dense0.W"], dtype=np.float64).T        # (units, D)
    h, wd = shape or image_shape_for(w.shape[1])
    scale = np.abs(w).max(axis=1, keepdims=True) if per_unit else np.abs(w).max(keepdims=True)
    out = np.divide(w, scale, out=np.zeros_like(w), where=scale > 0)
    return out.reshape(-1, h, wd)


def diverging_levels(image: Any, height: int, width: int, levels: int = 4) -> np.ndarray:
    """(height, width) ints in [-levels, levels]: ``image`` (values in [-1, 1]) averaged over the
    cells (area averaging, as tui/ascii_art) and rounded; the sign is the weight's sign. Panels
    colour these (e.g. blue for negative, red for positive half-blocks)."""
    img = np.asarray(image, dtype=np.float64)
    cells = _area_resize(img, height, width)
    return np.clip(np.rint(cells * levels), -levels, levels).astype(np.int64)


def render_diverging(image: Any, height: int = 7, width: int = 14, ramp: str = DIVERGING_RAMP) -> list[str]:
    """``image`` (values in [-1, 1]) as ``height`` lines of ``width`` characters of ``ramp``
    (odd length: negative half, zero in the middle, positive half)."""
    half = len(ramp) // 2
    lv = diverging_levels(image, height, width, half)
    return ["".join(ramp[v + half] for v in row) for row in lv]


def responsive_units(model: MLP, x: Any, top: int = 8) -> list[tuple[int, float]]:
    """The first-layer units most active for input ``x`` (D,): (unit, activation), highest first."""
    a = first_layer(model, np.asarray(x).reshape(1, -1))[0].astype(np.float64)
    order = np.argsort(-a, kind="stable")[:top]
    return [(int(u), float(a[u])) for u in order]


def class_units(model: MLP, x: Any, y: Any, cls: int, top: int = 8, limit: int | None = 2000
                ) -> list[tuple[int, float]]:
    """The first-layer units that respond most to class ``cls`` over features ``x`` (N, D) with
    labels ``y``: (unit, mean activation on the class minus mean on all), largest first.
    Uses at most ``limit`` images of the class and ``limit`` images for the overall mean (the
    first ones; None: all), so it costs at most two first-layer products of ``limit`` rows."""
    x = np.asarray(x)
    y = np.asarray(y)
    mask = y == cls
    if not mask.any():
        return []
    on_class = x[mask][:limit]
    everyone = x[:limit]
    lift = (first_layer(model, on_class).astype(np.float64).mean(axis=0)
            - first_layer(model, everyone).astype(np.float64).mean(axis=0))
    order = np.argsort(-lift, kind="stable")[:top]
    return [(int(u), float(lift[u])) for u in order]


def _area_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    from engine.insight.drawing import area_resize

    return area_resize(img, out_h, out_w)
