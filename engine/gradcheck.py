"""Finite-difference gradient checking, shared by the tests and the diagnostics command.

The check runs on a float64 *copy* of the model (the original is never touched): analytic
gradients from ``loss_and_grads`` are compared with centred differences of the mean loss,

    numeric = (L(p + eps) - L(p - eps)) / (2 eps)
    relative error = |analytic - numeric| / max(|analytic| + |numeric|, tiny)

With float64 and eps = 1e-5 a correct backward pass gives errors around 1e-9..1e-7; entries
whose gradient is tiny (~1e-6 and below) approach 1e-6, because the loss's rounding error
(~1e-16 relative) divided by eps becomes comparable to them. relu / leaky relu can also
exceed it when a pre-activation lies within eps of the kink at 0 -- zero biases make that
likely (a sample whose previous layer is all zero gives z == b == 0), so check with nonzero
biases. An error near 1 means the two disagree completely.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.mlp import MLP


def relative_error(analytic: np.ndarray, numeric: np.ndarray, tiny: float = 1e-12) -> np.ndarray:
    """Element-wise |a - n| / max(|a| + |n|, tiny)."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    return np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), tiny)


def float64_copy(model: MLP) -> MLP:
    """A float64 model with the same architecture and (up-cast) weights."""
    arch: dict[str, Any] = model.architecture()
    arch["dtype"] = "float64"
    copy = MLP(**arch)
    copy.set_weights(model.get_weights())
    return copy


def _entries(size: int, max_entries: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_entries is None or max_entries >= size:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_entries, replace=False))


def gradient_pairs(
    model: MLP,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float = 1e-5,
    max_entries: int | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (analytic, numeric) 1-D float64 arrays over the checked entries of each param.

    ``max_entries`` limits the entries checked per parameter (a random subset drawn with
    ``rng``, default ``np.random.default_rng(0)``); None checks them all.
    """
    if rng is None:
        rng = np.random.default_rng(0)
    net = float64_copy(model)
    x64 = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    net.loss_and_grads(x64, y)
    analytic_all = {k: g.copy() for k, g in net.grads.items()}

    def loss() -> float:
        return net.evaluate(x64, y, batch_size=max(1, len(x64)))[0]

    out = {}
    for name, p in net.params.items():
        flat = p.reshape(-1)  # a view: writes go into the model
        idx = _entries(flat.size, max_entries, rng)
        numeric = np.empty(idx.size)
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + eps
            plus = loss()
            flat[i] = old - eps
            minus = loss()
            flat[i] = old
            numeric[j] = (plus - minus) / (2.0 * eps)
        out[name] = (analytic_all[name].reshape(-1)[idx], numeric)
    return out


def gradcheck(
    model: MLP,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float = 1e-5,
    tiny: float = 1e-12,
    max_entries: int | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Maximum relative error per parameter name (see the module docstring).

    x (B, D) float, y (B,) int. Keep the model small, or pass ``max_entries``: each checked
    entry costs two forward passes.
    """
    pairs = gradient_pairs(model, x, y, eps=eps, max_entries=max_entries, rng=rng)
    return {
        name: float(relative_error(a, n, tiny).max()) if a.size else 0.0
        for name, (a, n) in pairs.items()
    }
