"""Output layers fused with their losses, computed in place on the pre-activation z (B, C).

Two losses, each tied to its output nonlinearity:

``"cross-entropy"``  softmax output; per-sample loss ``-log softmax(z)[y]`` computed as
    ``logsumexp(z) - z[y]`` with the row maximum subtracted first (stable for any z).
    dL/dz = (softmax(z) - onehot(y)) / B for the batch mean.
``"mse"``  sigmoid output ``a``; Nielsen's quadratic cost ``0.5 * sum_k (a_k - onehot_k)**2``.
    dL/dz = (a - onehot(y)) * a * (1 - a) / B for the batch mean.

Labels y (B,) must lie in [0, C): they are not checked here (the caller does, once).
z must be C-contiguous (the MLP's buffers are): labels are addressed through ``z.reshape(-1)``.
Every loss function returns ``(loss_sum, n_correct)``: the loss *summed* over the B rows (a
Python float; callers divide) and how many rows' argmax equals the label. Functions clobber
``z``; ``value_and_delta`` leaves dL/dz of the *mean* loss in it. ``Workspace`` holds the
small per-batch-size arrays they need, so nothing is allocated per call but a few (B,) temps.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from engine.activations import sigmoid_derivative, sigmoid_forward
from engine.errors import ConfigError


class Workspace:
    """Scratch arrays for one batch size B and C classes.

    row, y_logit (B,) dtype; pred, flat (B,) intp; rows_c (B,) intp = arange(B) * C;
    ones_c (C,) dtype; scratch (B, C) dtype.
    """

    __slots__ = ("row", "y_logit", "pred", "flat", "rows_c", "ones_c", "scratch")

    def __init__(self, batch: int, n_classes: int, dtype: np.dtype) -> None:
        self.row = np.empty(batch, dtype=dtype)
        self.y_logit = np.empty(batch, dtype=dtype)
        self.pred = np.empty(batch, dtype=np.intp)
        self.flat = np.empty(batch, dtype=np.intp)
        self.rows_c = np.arange(batch, dtype=np.intp) * n_classes
        self.ones_c = np.ones(n_classes, dtype=dtype)
        self.scratch = np.empty((batch, n_classes), dtype=dtype)


def _count_correct(out: np.ndarray, y: np.ndarray, ws: Workspace) -> int:
    np.argmax(out, axis=1, out=ws.pred)
    return int(np.count_nonzero(ws.pred == y))


# ---- cross-entropy with softmax -------------------------------------------------------------


def _softmax_ce(z: np.ndarray, y: np.ndarray, ws: Workspace, delta: bool) -> tuple[float, int]:
    n_correct = _count_correct(z, y, ws)  # also leaves argmax in ws.pred
    flat = z.reshape(-1)
    np.add(ws.rows_c, ws.pred, out=ws.flat)
    np.take(flat, ws.flat, out=ws.row)  # row maxima
    np.subtract(z, ws.row[:, None], out=z)  # z <= 0 now
    np.add(ws.rows_c, y, out=ws.flat)  # flat positions of the labels
    np.take(flat, ws.flat, out=ws.y_logit)
    np.exp(z, out=z)
    np.matmul(z, ws.ones_c, out=ws.row)  # row sums, in [1, C]
    loss_sum = float(np.log(ws.row).sum(dtype=np.float64) - ws.y_logit.sum(dtype=np.float64))
    if delta:
        batch = z.shape[0]
        np.multiply(ws.row, batch, out=ws.row)
        np.reciprocal(ws.row, out=ws.row)
        np.multiply(z, ws.row[:, None], out=z)  # softmax / B
        flat[ws.flat] -= 1.0 / batch
    return loss_sum, n_correct


def cross_entropy_value(z: np.ndarray, y: np.ndarray, ws: Workspace) -> tuple[float, int]:
    """(loss_sum, n_correct) for logits z (B, C) and labels y (B,). Clobbers z."""
    return _softmax_ce(z, y, ws, delta=False)


def cross_entropy_value_and_delta(
    z: np.ndarray, y: np.ndarray, ws: Workspace
) -> tuple[float, int]:
    """(loss_sum, n_correct); z (B, C) <- dL/dz of the batch-mean loss = (softmax - onehot)/B."""
    return _softmax_ce(z, y, ws, delta=True)


def softmax_output(z: np.ndarray, ws: Workspace) -> None:
    """z (B, C) <- softmax(z) in place (rows sum to 1)."""
    np.max(z, axis=1, out=ws.row)
    np.subtract(z, ws.row[:, None], out=z)
    np.exp(z, out=z)
    np.matmul(z, ws.ones_c, out=ws.row)
    np.divide(z, ws.row[:, None], out=z)


# ---- Nielsen's quadratic cost with a sigmoid output ------------------------------------------


def _sigmoid_mse(z: np.ndarray, y: np.ndarray, ws: Workspace, delta: bool) -> tuple[float, int]:
    sigmoid_forward(z, ws.scratch)  # z <- a
    n_correct = _count_correct(z, y, ws)
    if delta:
        sigmoid_derivative(z, ws.scratch)  # a (1 - a)
    flat = z.reshape(-1)
    np.add(ws.rows_c, y, out=ws.flat)
    flat[ws.flat] -= 1.0  # z <- a - onehot(y)
    loss_sum = 0.5 * float(np.dot(flat, flat))
    if delta:
        np.multiply(z, ws.scratch, out=z)
        np.multiply(z, 1.0 / z.shape[0], out=z)
    return loss_sum, n_correct


def mse_value(z: np.ndarray, y: np.ndarray, ws: Workspace) -> tuple[float, int]:
    """(loss_sum, n_correct) for output pre-activations z (B, C). Clobbers z."""
    return _sigmoid_mse(z, y, ws, delta=False)


def mse_value_and_delta(z: np.ndarray, y: np.ndarray, ws: Workspace) -> tuple[float, int]:
    """(loss_sum, n_correct); z (B, C) <- dL/dz of the batch-mean loss,
    (a - onehot) a (1 - a) / B."""
    return _sigmoid_mse(z, y, ws, delta=True)


def sigmoid_output(z: np.ndarray, ws: Workspace) -> None:
    """z (B, C) <- sigmoid(z) in place (independent per class; rows need not sum to 1)."""
    sigmoid_forward(z, ws.scratch)


# ---- registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loss:
    """An output nonlinearity and its loss. See the module docstring for the conventions."""

    name: str
    output: Callable[[np.ndarray, Workspace], None]
    value: Callable[[np.ndarray, np.ndarray, Workspace], tuple[float, int]]
    value_and_delta: Callable[[np.ndarray, np.ndarray, Workspace], tuple[float, int]]
    outputs_sum_to_one: bool


LOSSES: dict[str, Loss] = {
    "cross-entropy": Loss(
        "cross-entropy", softmax_output, cross_entropy_value, cross_entropy_value_and_delta, True
    ),
    "mse": Loss("mse", sigmoid_output, mse_value, mse_value_and_delta, False),
}

#: Valid loss names, in display order (the registry's own: TrainConfig's choices).
LOSS_NAMES: tuple[str, ...] = tuple(LOSSES)


def get_loss(name: str) -> Loss:
    """The registered loss called ``name``; ConfigError("loss", ...) otherwise."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ConfigError(
            "loss", f"unknown loss {name!r}; choose one of {', '.join(LOSS_NAMES)}"
        ) from None
