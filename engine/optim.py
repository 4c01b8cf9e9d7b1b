"""Optimizers that update parameter arrays in place, and learning-rate schedules.

An optimizer keeps references to the model's parameter arrays (``model.params``) and one verb,
``step(grads, lr=None)``. All state and scratch space is preallocated: a step allocates no arrays.

Update rules (g = gradient; with weight decay wd > 0, g <- g + wd * p for ``*.W`` params only,
i.e. L2 regularisation coupled into the gradient; biases are never decayed):

SGD           p <- p - lr * g
momentum      v <- mu * v + g;           p <- p - lr * v          (v starts at 0: PyTorch style)
Nesterov      v <- mu * v + g;           p <- p - lr * (g + mu * v)
AdaGrad       G <- G + g^2;              p <- p - lr * g / (sqrt(G) + eps)   (G starts at 0, eps 1e-10)
RMSProp       s <- rho s + (1-rho) g^2;  p <- p - lr * g / (sqrt(s) + eps)   (s starts at 0,
              rho 0.99, eps 1e-8: PyTorch's defaults; no momentum, not centred)
Adam          m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  t <- t + 1
              p <- p - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m/(1-b1^t), v_hat = v/(1-b2^t)

``state_dict()`` returns copies: ``"step"`` (int64 scalar array) and ``"velocity/<name>"``
(SGD with momentum), ``"sum/<name>"`` (AdaGrad), ``"square_avg/<name>"`` (RMSProp) or
``"m/<name>"``, ``"v/<name>"`` (Adam).

The registry :data:`OPTIMIZERS` (name -> :class:`OptimizerSpec`) is the one list of
optimizers: ``OPTIMIZER_NAMES`` (and so ``engine.config.CHOICES``), ``make_optimizer`` and the
memory estimate derive from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.layers import flat_views

SCHEDULE_NAMES: tuple[str, ...] = ("constant", "step", "cosine")


def _check_positive(field: str, value: Any) -> float:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ConfigError(field, f"must be a positive number, got {value!r}")
    return float(value)


def _check_unit(field: str, value: Any) -> float:
    """A number in [0, 1)."""
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0.0 <= value < 1.0:
        raise ConfigError(field, f"must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_decay(value: Any) -> float:
    """A step schedule's gamma: in (0, 1] (the lr never grows), as TrainConfig has it."""
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise ConfigError("gamma", f"must be a number in (0, 1], got {value!r}")
    return float(value)


def _check_weight_decay(value: Any) -> float:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise ConfigError("weight_decay", f"must be a number >= 0, got {value!r}")
    return float(value)


def tiled_base(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-D array that ``arrays`` tile exactly, in order, as C-contiguous views; else None.

    ``engine.mlp.MLP`` stores params and grads this way, so an optimizer can update all of
    them with one ufunc call per operation instead of one per parameter.
    """
    if not arrays:
        return None
    base = arrays[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    start = addr = base.__array_interface__["data"][0]
    for a in arrays:
        if a.base is not base or a.dtype != base.dtype or not a.flags.c_contiguous:
            return None
        if a.__array_interface__["data"][0] != addr:
            return None
        addr += a.nbytes
    return base if addr == start + base.nbytes else None


class Optimizer:
    """Base class: parameter references, lr, weight decay, step count, state (de)serialisation.

    Subclasses name their state ``_slots`` (e.g. ("velocity",)) and define
    ``_update(p, g, state, lr)`` on arrays, where ``state`` maps slot -> array shaped like p and
    the scratch arrays ``self._work[name]`` (name "buf", "tmp") are shaped like p too. The same
    ``_update`` runs either once per parameter, or once on the whole flat parameter vector
    when params and grads are views tiling one contiguous array each (as MLP's are).
    """

    _slots: tuple[str, ...] = ()
    _scratch_names: tuple[str, ...] = ("buf",)

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, weight_decay: float = 0.0):
        self.params: dict[str, np.ndarray] = dict(params)  # same arrays, updated in place
        self.lr = _check_positive("lr", lr)
        self.weight_decay = _check_weight_decay(weight_decay)
        self.steps = 0
        names = list(self.params)
        shapes = {k: p.shape for k, p in self.params.items()}
        dtype = np.result_type(*self.params.values()) if names else np.float32
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._flat_state: dict[str, np.ndarray] = {}
        for slot in self._slots:
            self._flat_state[slot], self.state[slot] = flat_views(shapes, dtype)
        self._flat_work: dict[str, np.ndarray] = {}
        self._work: dict[str, dict[str, np.ndarray]] = {}
        for w in self._scratch_names:
            self._flat_work[w], self._work[w] = flat_views(shapes, dtype)
        # the flat fast path: params tile one vector; decay mask is wd on ".W" entries, else 0
        self._flat_params = tiled_base([self.params[k] for k in names])
        if self._flat_params is not None and self._flat_params.dtype != dtype:
            self._flat_params = None
        self._decay_mask = None
        if self._flat_params is not None and self.weight_decay:
            mask_flat, mask = flat_views(shapes, dtype)
            for k in names:
                mask[k][...] = self.weight_decay if k.endswith(".W") else 0.0
            self._decay_mask = mask_flat
        self._grad_arrays: list[np.ndarray] = []
        self._flat_grads: np.ndarray | None = None

    def set_weight_decay(self, weight_decay: float) -> None:
        """Change the weight decay between two steps (a live change): the same values as an
        optimizer built with it (the flat path's mask is rebuilt)."""
        self.weight_decay = _check_weight_decay(weight_decay)
        self._decay_mask = None
        if self._flat_params is not None and self.weight_decay:
            shapes = {k: p.shape for k, p in self.params.items()}
            mask_flat, mask = flat_views(shapes, self._flat_params.dtype)
            for k in self.params:
                mask[k][...] = self.weight_decay if k.endswith(".W") else 0.0
            self._decay_mask = mask_flat

    def _grads_base(self, grads: Mapping[str, np.ndarray]) -> np.ndarray | None:
        arrays = [grads[k] for k in self.params]
        cached = self._grad_arrays
        if len(cached) != len(arrays) or any(a is not b for a, b in zip(arrays, cached)):
            self._grad_arrays = arrays
            base = tiled_base(arrays)
            flat = self._flat_params
            ok = base is not None and flat is not None and base.dtype == flat.dtype
            self._flat_grads = base if ok else None
        return self._flat_grads

    def step(self, grads: Mapping[str, np.ndarray], lr: float | None = None) -> None:
        """Update every parameter in place from ``grads`` (same keys and shapes as params).

        ``lr`` overrides ``self.lr`` for this step only (e.g. a schedule's value). With weight
        decay, g + wd * p is formed in scratch space: ``grads`` are never modified.
        """
        lr = self.lr if lr is None else float(lr)
        self.steps += 1
        self._before_step()
        wd = self.weight_decay
        if self._flat_params is not None:
            g = self._grads_base(grads)
            if g is not None:
                p = self._flat_params
                if wd:
                    buf = self._flat_work["buf"]
                    assert self._decay_mask is not None       # set with the flat params when wd > 0
                    np.multiply(p, self._decay_mask, out=buf)
                    np.add(buf, g, out=buf)
                    g = buf
                self._update(p, g, self._flat_state, self._flat_work, lr)
                return
        for name, p in self.params.items():
            g = grads[name]
            work = {w: arrays[name] for w, arrays in self._work.items()}
            if wd and name.endswith(".W"):
                np.multiply(p, wd, out=work["buf"])
                np.add(work["buf"], g, out=work["buf"])
                g = work["buf"]
            self._update(p, g, {slot: a[name] for slot, a in self.state.items()}, work, lr)

    def _before_step(self) -> None:
        """Hook run once per step, after ``steps`` is incremented."""

    def _update(
        self,
        p: np.ndarray,
        g: np.ndarray,
        state: dict[str, np.ndarray],
        work: dict[str, np.ndarray],
        lr: float,
    ) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state: "step" and "<slot>/<param name>" arrays."""
        out = {"step": np.array(self.steps, dtype=np.int64)}
        for slot, arrays in self.state.items():
            for name, a in arrays.items():
                out[f"{slot}/{name}"] = a.copy()
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``: same keys and shapes, else ConfigError (nothing changes)."""
        expected = {"step"} | {f"{s}/{n}" for s in self._slots for n in self.params}
        keys = set(state)
        if keys != expected:
            missing = sorted(expected - keys)
            extra = sorted(str(k) for k in keys - expected)
            raise ConfigError(
                "optimizer_state",
                f"keys do not match {type(self).__name__}: missing {missing}, unexpected {extra}",
            )
        step = np.asarray(state["step"])
        if step.shape != () or step.dtype.kind not in "iu" or int(step) < 0:
            raise ConfigError("optimizer_state", f"step must be an integer >= 0, got {step!r}")
        arrays = {}
        for slot in self._slots:
            for name, ref in self.state[slot].items():
                a = np.asarray(state[f"{slot}/{name}"])
                if a.shape != ref.shape or a.dtype.kind != "f":
                    raise ConfigError(
                        "optimizer_state",
                        f"{slot}/{name}: expected float array of shape {ref.shape}, "
                        f"got {a.dtype} {a.shape}",
                    )
                arrays[(slot, name)] = a
        for (slot, name), a in arrays.items():
            np.copyto(self.state[slot][name], a, casting="unsafe")
        self.steps = int(step)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.momentum = _check_unit("momentum", momentum)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ConfigError("momentum", "Nesterov momentum needs momentum > 0")
        self._slots = ("velocity",) if self.momentum else ()
        super().__init__(params, lr, weight_decay)

    def set_momentum(self, momentum: float) -> None:
        """Change the momentum between two steps (a live change). The velocity is kept; a run
        that started without momentum gets a zero velocity (as a new optimizer has)."""
        momentum = _check_unit("momentum", momentum)
        if self.nesterov and momentum == 0.0:
            raise ConfigError("momentum", "Nesterov momentum needs momentum > 0")
        if momentum:
            self.add_velocity()
        self.momentum = momentum

    def add_velocity(self) -> None:
        """Give an optimizer built without momentum its (zero) velocity state, kept from then
        on even at momentum 0 (so its state_dict keeps the velocity a checkpoint holds)."""
        if "velocity" not in self._slots:
            shapes = {k: p.shape for k, p in self.params.items()}
            dtype = np.result_type(*self.params.values()) if self.params else np.float32
            self._slots = ("velocity",)
            self._flat_state["velocity"], self.state["velocity"] = flat_views(shapes, dtype)

    def _update(self, p, g, state, work, lr):
        buf = work["buf"]  # may be g itself (weight decay): g is read before buf is written
        if not self.momentum:
            np.multiply(g, lr, out=buf)
            np.subtract(p, buf, out=p)
            return
        mu = self.momentum
        v = state["velocity"]
        np.multiply(v, mu, out=v)
        np.add(v, g, out=v)
        if self.nesterov:  # p -= lr * g + lr * mu * v
            np.multiply(g, lr, out=buf)
            np.subtract(p, buf, out=p)
            np.multiply(v, lr * mu, out=buf)
        else:
            np.multiply(v, lr, out=buf)
        np.subtract(p, buf, out=p)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; weight decay is L2 (not AdamW)."""

    _slots = ("m", "v")
    _scratch_names = ("buf", "tmp")

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.beta1 = _check_unit("beta1", beta1)
        self.beta2 = _check_unit("beta2", beta2)
        self.eps = _check_positive("eps", eps)
        super().__init__(params, lr, weight_decay)

    def _before_step(self) -> None:
        t = self.steps
        self._step_size_factor = 1.0 / (1.0 - self.beta1**t)
        self._inv_sqrt_bc2 = 1.0 / math.sqrt(1.0 - self.beta2**t)

    def _update(self, p, g, state, work, lr):
        b1, b2 = self.beta1, self.beta2
        m, v, tmp = state["m"], state["v"], work["tmp"]
        np.multiply(m, b1, out=m)
        np.multiply(g, 1.0 - b1, out=tmp)
        np.add(m, tmp, out=m)
        np.multiply(v, b2, out=v)
        np.multiply(g, g, out=tmp)
        np.multiply(tmp, 1.0 - b2, out=tmp)
        np.add(v, tmp, out=v)
        np.sqrt(v, out=tmp)  # denominator: sqrt(v_hat) + eps
        np.multiply(tmp, self._inv_sqrt_bc2, out=tmp)
        np.add(tmp, self.eps, out=tmp)
        np.divide(m, tmp, out=tmp)
        np.multiply(tmp, lr * self._step_size_factor, out=tmp)
        np.subtract(p, tmp, out=p)



class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011): each parameter's step shrinks with its summed squared
    gradients. No lr decay and no initial accumulator value (PyTorch's defaults)."""

    _slots = ("sum",)
    _scratch_names = ("buf", "tmp")

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float,
        eps: float = 1e-10,
        weight_decay: float = 0.0,
    ) -> None:
        self.eps = _check_positive("eps", eps)
        super().__init__(params, lr, weight_decay)

    def _update(self, p, g, state, work, lr):
        acc, tmp = state["sum"], work["tmp"]     # g may be work["buf"]: only tmp is written
        np.multiply(g, g, out=tmp)
        np.add(acc, tmp, out=acc)
        np.sqrt(acc, out=tmp)
        np.add(tmp, self.eps, out=tmp)
        np.divide(g, tmp, out=tmp)
        np.multiply(tmp, lr, out=tmp)
        np.subtract(p, tmp, out=p)


class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton 2012): the step is divided by a running RMS of the gradient.
    Plain (no momentum, not centred); rho 0.99 and eps 1e-8 as PyTorch's ``RMSprop``."""

    _slots = ("square_avg",)
    _scratch_names = ("buf", "tmp")

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        lr: float,
        rho: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.rho = _check_unit("rho", rho)
        self.eps = _check_positive("eps", eps)
        super().__init__(params, lr, weight_decay)

    def _update(self, p, g, state, work, lr):
        sq, tmp = state["square_avg"], work["tmp"]   # g may be work["buf"]: only tmp is written
        np.multiply(sq, self.rho, out=sq)
        np.multiply(g, g, out=tmp)
        np.multiply(tmp, 1.0 - self.rho, out=tmp)
        np.add(sq, tmp, out=sq)
        np.sqrt(sq, out=tmp)
        np.add(tmp, self.eps, out=tmp)
        np.divide(g, tmp, out=tmp)
        np.multiply(tmp, lr, out=tmp)
        np.subtract(p, tmp, out=p)


@dataclass(frozen=True)
class OptimizerSpec:
    """One entry of :data:`OPTIMIZERS`.

    build(params, lr, momentum, weight_decay) -> Optimizer; state_slots: arrays of state
    shaped like the params (the memory estimate); uses_momentum: whether the ``momentum``
    setting acts; race_lr: a learning rate that trains the default MLP on MNIST well (the
    race's and lr finder's starting point; adaptive methods want a much smaller lr).
    """

    build: Callable[[Mapping[str, np.ndarray], float, float, float], Optimizer]
    state_slots: int
    uses_momentum: bool
    race_lr: float
    summary: str


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(lambda p, lr, mu, wd: SGD(p, lr, momentum=0.0, weight_decay=wd),
                         0, False, 0.1, "plain SGD"),
    "momentum": OptimizerSpec(lambda p, lr, mu, wd: SGD(p, lr, momentum=mu, weight_decay=wd),
                              1, True, 0.05, "SGD with momentum"),
    "nesterov": OptimizerSpec(lambda p, lr, mu, wd: SGD(p, lr, momentum=mu, nesterov=True, weight_decay=wd),
                              1, True, 0.05, "SGD with Nesterov momentum"),
    "adagrad": OptimizerSpec(lambda p, lr, mu, wd: AdaGrad(p, lr, weight_decay=wd),
                             1, False, 0.05, "AdaGrad"),
    "rmsprop": OptimizerSpec(lambda p, lr, mu, wd: RMSProp(p, lr, weight_decay=wd),
                             1, False, 0.001, "RMSProp (rho 0.99)"),
    "adam": OptimizerSpec(lambda p, lr, mu, wd: Adam(p, lr, weight_decay=wd),
                          2, False, 0.001, "Adam (betas 0.9, 0.999)"),
}
OPTIMIZER_NAMES: tuple[str, ...] = tuple(OPTIMIZERS)

def make_optimizer(
    name: str,
    params: Mapping[str, np.ndarray],
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> Optimizer:
    """An optimizer of :data:`OPTIMIZERS` by name: "sgd" (plain; ``momentum`` ignored),
    "momentum", "nesterov", "adagrad", "rmsprop" or "adam" (these three ignore ``momentum``).
    Unknown names or bad values raise ConfigError."""
    spec = OPTIMIZERS.get(name)
    if spec is None:
        raise ConfigError(
            "optimizer", f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}"
        )
    return spec.build(params, lr, momentum, weight_decay)


# ---- learning-rate schedules ------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """lr as a function of the 0-based global step. Build with :func:`make_schedule`.

    warmup: for step < warmup_steps the lr is multiplied by (step + 1) / warmup_steps.
    constant: base_lr.  step: base_lr * gamma ** ((step // steps_per_epoch) // step_epochs).
    cosine: base_lr * 0.5 * (1 + cos(pi * min(1, (step - warmup) / (total - warmup)))),
            reaching 0 at total_steps (and staying there).
    """

    name: str
    base_lr: float
    total_steps: int
    steps_per_epoch: int
    step_epochs: int
    gamma: float
    warmup_steps: int

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        lr = self.base_lr
        if self.name == "step":
            lr *= self.gamma ** ((step // self.steps_per_epoch) // self.step_epochs)
        elif self.name == "cosine":
            span = self.total_steps - self.warmup_steps
            progress = min(1.0, max(0.0, (step - self.warmup_steps) / span))
            lr *= 0.5 * (1.0 + math.cos(math.pi * progress))
        if step < self.warmup_steps:
            lr *= (step + 1) / self.warmup_steps
        return lr


def _check_count(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(field, f"must be an integer >= {minimum}, got {value!r}")
    return int(value)


def make_schedule(
    name: str,
    base_lr: float,
    total_steps: int,
    steps_per_epoch: int,
    step_epochs: int = 10,
    gamma: float = 0.1,
    warmup_steps: int = 0,
) -> Callable[[int], float]:
    """A learning-rate schedule: "constant", "step" (x gamma every step_epochs epochs) or
    "cosine" (to 0 at total_steps), each with optional linear warmup. Returns lr(step)."""
    if name not in SCHEDULE_NAMES:
        raise ConfigError(
            "schedule", f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULE_NAMES)}"
        )
    base_lr = _check_positive("lr", base_lr)
    total_steps = _check_count("total_steps", total_steps, 1)
    steps_per_epoch = _check_count("steps_per_epoch", steps_per_epoch, 1)
    step_epochs = _check_count("step_epochs", step_epochs, 1)
    gamma = _check_decay(gamma)
    warmup_steps = _check_count("warmup_steps", warmup_steps, 0)
    if name == "cosine" and warmup_steps >= total_steps:
        raise ConfigError(
            "warmup_steps", f"must be < total_steps ({total_steps}) for cosine, got {warmup_steps}"
        )
    return Schedule(name, base_lr, total_steps, steps_per_epoch, step_epochs, gamma, warmup_steps)
