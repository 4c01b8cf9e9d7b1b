"""The multi-layer perceptron: batched forward/backward with reused buffers, prediction, weights.

Shapes: ``sizes = (D, h1, ..., C)``; layer i maps (B, sizes[i]) -> (B, sizes[i+1]) with
``dense{i}.W`` (sizes[i], sizes[i+1]) and ``dense{i}.b`` (sizes[i+1],). Hidden layers use
``activation``; the output layer is softmax for "cross-entropy" and sigmoid for "mse" (see
:mod:`engine.losses`).

Speed: a training step allocates nothing of size (B, n). Activations, derivatives and
back-propagated gradients live in per-batch-size buffers (a small LRU cache keyed by B, so the
last short batch of an epoch gets its own set); ``grads`` are filled in place; matrix products
write with ``out=``; the gradient with respect to the network's input is never computed.
``params`` (and ``grads``) are views tiling one contiguous vector, which lets the optimizers in
:mod:`engine.optim` update every parameter with one ufunc call per operation.
Pass ``x`` in the model's dtype (C-contiguous) for the fast path; other float dtypes are cast.

Threads: ``loss_and_grads`` must not run concurrently with itself or with an optimizer step.
Inference (``forward``, ``predict_proba``, ``predict``, ``evaluate``) uses separate buffers per
calling thread, so it never disturbs training buffers or ``grads``; reading weights while
another thread updates them is the caller's to serialise.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from engine.activations import get_activation
from engine.errors import ConfigError
from engine.init import INIT_NAMES, init_params
from engine.layers import dense_backward, dense_forward, flat_views
from engine.losses import Workspace, get_loss

#: Batch sizes whose buffers are kept per cache (training: the batch and the short last batch).
_MAX_CACHED = 4
#: Float types a network can compute in, in display order (TrainConfig's choices).
DTYPE_NAMES: tuple[str, ...] = ("float32", "float64")


class _Buffers:
    """Arrays for one batch size B (n_i = sizes[i + 1]).

    z[i] (B, n_i)      layer i's pre-activation, overwritten in place by its activation; for the
                       last layer: logits, then dL/dz after the loss
    d[i] (B, n_i)      f'(z) of hidden layer i (also the activation's scratch)
    g[i] (B, n_i)      dL/da, then dL/dz, of hidden layer i (training buffers only)
    ones (B,)          ones, for the bias gradient
    ws                 the loss's Workspace
    """

    __slots__ = ("z", "d", "g", "ones", "ws")

    def __init__(self, batch: int, sizes: Sequence[int], dtype: np.dtype, training: bool):
        outs = sizes[1:]
        self.z = [np.empty((batch, n), dtype=dtype) for n in outs]
        self.d = [np.empty((batch, n), dtype=dtype) for n in outs[:-1]]
        self.g = [np.empty((batch, n), dtype=dtype) for n in outs[:-1]] if training else []
        self.ones = np.ones(batch, dtype=dtype)
        self.ws = Workspace(batch, outs[-1], dtype)


class _BufferCache:
    """A small LRU of _Buffers keyed by ``key`` (the batch size, or (thread id, batch size))."""

    def __init__(self, sizes: Sequence[int], dtype: np.dtype, training: bool) -> None:
        self._sizes, self._dtype, self._training = tuple(sizes), dtype, training
        self._entries: OrderedDict[Any, _Buffers] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, batch: int) -> _Buffers:
        with self._lock:
            buf = self._entries.get(key)
            if buf is None:
                buf = _Buffers(batch, self._sizes, self._dtype, self._training)
                self._entries[key] = buf
                while len(self._entries) > _MAX_CACHED:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
            return buf


def _check_sizes(sizes: Any) -> tuple[int, ...]:
    try:
        values = tuple(sizes)
    except TypeError:
        raise ConfigError("sizes", f"expected a sequence of layer widths, got {sizes!r}") from None
    if len(values) < 2:
        raise ConfigError("sizes", f"need at least an input and an output size, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError("sizes", f"every layer width must be a positive integer, got {v!r}")
        out.append(int(v))
    return tuple(out)


class MLP:
    """A fully connected network trained by batch gradient descent.

    MLP(sizes=(784, 128, 64, 10), activation="relu", loss="cross-entropy", init="auto",
        init_std=None, dtype="float32", rng=None)

    ``rng`` is the only source of randomness (None means ``np.random.default_rng(0)``).
    ``params``/``grads``: dict name -> array, ``dense{i}.W`` (in, out) and ``dense{i}.b`` (out,).
    Invalid settings raise :class:`engine.errors.ConfigError`.
    """

    def __init__(
        self,
        sizes: Sequence[int] = (784, 128, 64, 10),
        activation: str = "relu",
        loss: str = "cross-entropy",
        init: str = "auto",
        init_std: float | None = None,
        dtype: str | np.dtype | type = "float32",
        rng: np.random.Generator | None = None,
    ) -> None:
        self.sizes: tuple[int, ...] = _check_sizes(sizes)
        self._act = get_activation(activation)
        self._loss = get_loss(loss)
        if init not in INIT_NAMES:
            choices = ", ".join(INIT_NAMES)
            raise ConfigError("init", f"unknown init {init!r}; choose one of {choices}")
        try:
            self.dtype: np.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = np.dtype("O")
        if self.dtype.name not in DTYPE_NAMES:
            raise ConfigError("dtype", f"must be float32 or float64, got {dtype!r}")
        if rng is None:
            rng = np.random.default_rng(0)
        elif not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.activation: str = activation
        self.loss: str = loss
        self.init: str = init
        initial = init_params(
            self.sizes, init=init, activation=activation, rng=rng, init_std=init_std,
            dtype=self.dtype,
        )
        self._allocate(initial)
        self._names = [(f"dense{i}.W", f"dense{i}.b") for i in range(len(self.sizes) - 1)]
        self._make_caches()

    def _allocate(self, values: Mapping[str, np.ndarray]) -> None:
        """params / grads as views tiling one flat vector each (so an optimizer can update all
        parameters with one call per operation); params take ``values``, grads start at 0."""
        shapes = {k: v.shape for k, v in values.items()}
        self._flat_params, self.params = flat_views(shapes, self.dtype)
        self._flat_grads, self.grads = flat_views(shapes, self.dtype)
        for k, v in values.items():
            self.params[k][...] = v

    def _make_caches(self) -> None:
        self._train_cache = _BufferCache(self.sizes, self.dtype, training=True)
        self._eval_cache = _BufferCache(self.sizes, self.dtype, training=False)

    def __repr__(self) -> str:
        return (
            f"MLP(sizes={self.sizes}, activation={self.activation!r}, loss={self.loss!r}, "
            f"init={self.init!r}, dtype={self.dtype.name!r})"
        )

    @property
    def n_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(p.size for p in self.params.values()))

    # ---- input checks ------------------------------------------------------------------------

    def _check_x(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"x must have shape (n, {self.sizes[0]}), got {x.shape}")
        if x.dtype.kind != "f":
            raise TypeError(
                f"x must hold float features (scale images first, e.g. to [0, 1]), got {x.dtype}"
            )
        return x

    def _cast(self, x: np.ndarray) -> np.ndarray:
        return x if x.dtype == self.dtype else x.astype(self.dtype)

    def _check_y(self, y: Any, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y must have shape ({n},) to match x, got {y.shape}")
        if y.dtype.kind not in "iu":
            raise TypeError(f"y must hold integer class labels, got {y.dtype}")
        if n:
            lo = int(y.min()) if y.dtype.kind == "i" else 0
            hi = int(y.max())
            if lo < 0 or hi >= self.sizes[-1]:
                raise ValueError(f"labels must lie in [0, {self.sizes[-1]}), got [{lo}, {hi}]")
        return y

    @staticmethod
    def _spans(n: int, batch_size: int) -> Iterator[tuple[int, int]]:
        bs = int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        for start in range(0, n, bs):
            yield start, min(start + bs, n)

    # ---- training ----------------------------------------------------------------------------

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """Mean loss over the batch and number of correct predictions; fills ``self.grads``.

        x (B, D) float, y (B,) int labels in [0, C). ``self.grads`` arrays are reused (filled
        in place), so copy them if you need them after the next call.
        """
        x = self._cast(self._check_x(x))
        batch = x.shape[0]
        if batch == 0:
            raise ValueError("loss_and_grads needs at least one example")
        y = self._check_y(y, batch)
        buf = self._train_cache.get(batch, batch)
        params, grads, names, act = self.params, self.grads, self._names, self._act
        last = len(names) - 1

        both = act.forward_with_derivative
        h = x
        for i, (wk, bk) in enumerate(names):
            z = dense_forward(h, params[wk], params[bk], buf.z[i])
            if i < last:
                if both is not None:
                    both(z, buf.d[i])
                else:
                    act.forward(z, buf.d[i])
                    act.derivative(z, buf.d[i])
            h = z

        loss_sum, n_correct = self._loss.value_and_delta(h, y, buf.ws)  # h <- dL/dz

        delta = h
        for i in range(last, -1, -1):
            wk, bk = names[i]
            if i == 0:
                dense_backward(x, delta, params[wk], grads[wk], grads[bk], buf.ones)
            else:
                g = buf.g[i - 1]
                dense_backward(buf.z[i - 1], delta, params[wk], grads[wk], grads[bk], buf.ones, g)
                np.multiply(g, buf.d[i - 1], out=g)
                delta = g
        return loss_sum / batch, n_correct

    # ---- inference (separate buffers per thread) ---------------------------------------------

    def _forward_chunk(self, x: np.ndarray) -> tuple[np.ndarray, _Buffers]:
        """Output pre-activations (B, C) in an inference buffer, for a chunk x (B, D)."""
        batch = x.shape[0]
        buf = self._eval_cache.get((threading.get_ident(), batch), batch)
        params, act = self.params, self._act
        last = len(self._names) - 1
        h = self._cast(x)
        for i, (wk, bk) in enumerate(self._names):
            z = dense_forward(h, params[wk], params[bk], buf.z[i])
            if i < last:
                act.forward(z, buf.d[i])
            h = z
        return h, buf

    def _outputs(self, x: Any, batch_size: int, normalise: bool) -> np.ndarray:
        x = self._check_x(x)
        n_classes = self.sizes[-1]
        out = np.empty((x.shape[0], n_classes), dtype=self.dtype)
        for start, stop in self._spans(x.shape[0], batch_size):
            z, buf = self._forward_chunk(x[start:stop])
            self._loss.output(z, buf.ws)
            out[start:stop] = z
        if normalise and not self._loss.outputs_sum_to_one:
            total = out.sum(axis=1, keepdims=True)
            np.divide(out, total, out=out, where=total > 0)
            out[total[:, 0] <= 0] = 1.0 / n_classes  # every output underflowed: no preference
        return out

    def forward(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Network outputs (N, C) for x (N, D): softmax probabilities for cross-entropy, the
        sigmoid outputs for mse (each in (0, 1), rows not normalised). A new array."""
        return self._outputs(x, batch_size, normalise=False)

    def predict_proba(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Class probabilities (N, C) for x (N, D); rows sum to 1 (mse outputs are normalised)."""
        return self._outputs(x, batch_size, normalise=True)

    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Predicted class (N,) intp for x (N, D): the argmax of the outputs."""
        return np.argmax(self._outputs(x, batch_size, normalise=False), axis=1)

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 1000,
                 predictions: np.ndarray | None = None) -> tuple[float, float]:
        """(mean loss, accuracy) over x (N, D), y (N,); (nan, nan) when N == 0.

        ``predictions`` (N,) integer array, if given, receives the predicted classes from the
        same forward pass (saves a second pass through ``predict``)."""
        x = self._check_x(x)
        n = x.shape[0]
        y = self._check_y(y, n)
        if n == 0:
            return float("nan"), float("nan")
        total, correct = 0.0, 0
        for start, stop in self._spans(n, batch_size):
            z, buf = self._forward_chunk(x[start:stop])
            if predictions is not None:
                predictions[start:stop] = z.argmax(axis=1)  # before value() clobbers z
            loss_sum, n_correct = self._loss.value(z, y[start:stop], buf.ws)
            total += loss_sum
            correct += n_correct
        return total / n, correct / n

    # ---- weights -----------------------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, keyed like ``params``."""
        return {k: v.copy() for k, v in self.params.items()}

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        """Copy ``weights`` into the existing parameter arrays (cast to the model's dtype).

        Keys must match ``params`` exactly and shapes must agree; values must be finite real
        numbers. On any mismatch raises ConfigError("weights", ...) and changes nothing.
        Arrays are updated in place, so an optimizer holding ``params`` keeps working.
        """
        if not isinstance(weights, Mapping):
            kind = type(weights).__name__
            raise ConfigError("weights", f"expected a mapping of name -> array, got {kind}")
        missing = [k for k in self.params if k not in weights]
        extra = sorted(str(k) for k in weights if k not in self.params)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"unexpected {', '.join(extra)}")
            raise ConfigError("weights", f"{'; '.join(parts)} (model sizes {list(self.sizes)})")
        arrays = {}
        for k, p in self.params.items():
            a = np.asarray(weights[k])
            if a.shape != p.shape:
                raise ConfigError(
                    "weights",
                    f"{k} has shape {a.shape}, expected {p.shape} for sizes {list(self.sizes)}",
                )
            if a.dtype.kind not in "fiu":
                raise ConfigError("weights", f"{k} must hold real numbers, got dtype {a.dtype}")
            if not np.isfinite(a).all():
                raise ConfigError("weights", f"{k} contains NaN or infinite values")
            arrays[k] = a
        for k, a in arrays.items():
            np.copyto(self.params[k], a, casting="unsafe")

    @classmethod
    def from_weights(cls, architecture: Mapping[str, Any], weights: Mapping[str, Any]) -> MLP:
        """A model of ``architecture`` (as returned by ``architecture()``) holding a copy of
        ``weights``."""
        model = cls(sizes=tuple(architecture["sizes"]), activation=architecture["activation"],
                    loss=architecture["loss"], init=architecture.get("init", "auto"),
                    dtype=architecture["dtype"], rng=np.random.default_rng(0))
        model.set_weights(weights)
        return model

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as architecture + weights; buffers and their lock are rebuilt. Only the
        # training process uses this, to hand models to the app (engine.trainer_process), and
        # copy.copy/deepcopy go through it too (so no __getstate__/__setstate__ is needed);
        # files are .npz read with allow_pickle=False (engine.checkpoint), never pickle.
        return (MLP.from_weights, (self.architecture(), self.params))

    def architecture(self) -> dict[str, Any]:
        """{"sizes", "activation", "loss", "init", "dtype"}: JSON-serialisable; ``MLP(**d)``
        rebuilds a model of the same shape."""
        return {
            "sizes": list(self.sizes),
            "activation": self.activation,
            "loss": self.loss,
            "init": self.init,
            "dtype": self.dtype.name,
        }
