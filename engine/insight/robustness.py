"""Accuracy as the test images get harder: Gaussian noise, rotation, thicker and thinner strokes.

Every perturbation works on float images (N, H, W) in [0, 1] and returns a new array; noise is
seeded. Rotation samples bilinearly about the image centre; thickening and thinning are 3x3
grey-level dilation (max filter) and erosion (min filter), applied ``level`` times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Default levels of each perturbation (0 = the clean images).
LEVELS: dict[str, tuple[float, ...]] = {
    "noise": (0.0, 0.1, 0.2, 0.3, 0.5),        # std of added Gaussian noise (images in [0, 1])
    "rotation": (0.0, 10.0, 20.0, 30.0, 45.0),  # degrees, counter-clockwise
    "thicker": (0.0, 1.0, 2.0),                 # 3x3 max-filter passes
    "thinner": (0.0, 1.0, 2.0),                 # 3x3 min-filter passes
}


def add_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """x + N(0, sigma^2), clipped to [0, 1]."""
    if sigma <= 0:
        return x.copy()
    return np.clip(x + rng.normal(0.0, sigma, size=x.shape).astype(x.dtype), 0.0, 1.0)


def rotate(x: np.ndarray, degrees: float) -> np.ndarray:
    """Each image of x (N, H, W) rotated by ``degrees`` about its centre, bilinear sampling,
    zero outside."""
    n, h, w = x.shape
    if degrees == 0:
        return x.copy()
    t = np.deg2rad(degrees)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # inverse map: where each output pixel comes from
    sy = np.cos(t) * (yy - cy) - np.sin(t) * (xx - cx) + cy
    sx = np.sin(t) * (yy - cy) + np.cos(t) * (xx - cx) + cx
    y0 = np.floor(sy).astype(np.intp)
    x0 = np.floor(sx).astype(np.intp)
    fy, fx = sy - y0, sx - x0
    pad = np.zeros((n, h + 2, w + 2), dtype=x.dtype)
    pad[:, 1:-1, 1:-1] = x
    out = np.zeros(x.shape, dtype=np.float64)
    for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yi = np.clip(y0 + dy + 1, 0, h + 1)
        xi = np.clip(x0 + dx + 1, 0, w + 1)
        out += pad[:, yi, xi] * wgt
    return out.astype(x.dtype)


def _filter3(x: np.ndarray, op: Callable[..., Any], fill: float) -> np.ndarray:
    n, h, w = x.shape
    pad = np.full((n, h + 2, w + 2), fill, dtype=x.dtype)
    pad[:, 1:-1, 1:-1] = x
    out = pad[:, 1 : h + 1, 1 : w + 1].copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            op(out, pad[:, dy : dy + h, dx : dx + w], out=out)
    return out


def thicken(x: np.ndarray, passes: int = 1) -> np.ndarray:
    """Strokes grown by ``passes`` 3x3 max filters."""
    for _ in range(int(passes)):
        x = _filter3(x, np.maximum, 0.0)
    return x.copy() if passes <= 0 else x


def thin(x: np.ndarray, passes: int = 1) -> np.ndarray:
    """Strokes shrunk by ``passes`` 3x3 min filters (outside the image counts as background)."""
    for _ in range(int(passes)):
        x = _filter3(x, np.minimum, 0.0)
    return x.copy() if passes <= 0 else x


def perturb(name: str, x: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Apply perturbation ``name`` (a key of LEVELS) at ``level`` to x (N, H, W) in [0, 1]."""
    if name == "noise":
        return add_noise(x, level, rng)
    if name == "rotation":
        return rotate(x, level)
    if name == "thicker":
        return thicken(x, int(level))
    if name == "thinner":
        return thin(x, int(level))
    raise ValueError(f"unknown perturbation {name!r}; choose one of {', '.join(LEVELS)}")


@dataclass(frozen=True)
class Curve:
    name: str
    levels: tuple[float, ...]
    accuracy: tuple[float, ...]


def robustness_curves(model: Any, x: Any, y: Any, max_value: float = 255,
                      levels: dict[str, tuple[float, ...]] | None = None, seed: int = 0,
                      limit: int | None = None) -> list[Curve]:
    """Test accuracy of ``model`` at each level of each perturbation, on raw images ``x``
    (N, H, W) (the first ``limit`` of them when given) with labels ``y``. Seeded: the same
    seed gives the same curves."""
    x = np.asarray(x)
    y = np.asarray(y)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if x.ndim == 2:
        from engine.insight.units import image_shape_for

        x = x.reshape((len(x), *image_shape_for(x.shape[1])))
    feats = (x.astype(np.float32) / np.float32(max_value)).astype(model.dtype, copy=False)
    curves = []
    for name, lv in (levels or LEVELS).items():
        rng = np.random.default_rng(seed)
        accs = []
        for level in lv:
            xp = perturb(name, feats, level, rng)
            pred = model.predict(xp.reshape(len(xp), -1), batch_size=2000)
            accs.append(float(np.mean(pred == y)) if len(y) else float("nan"))
        curves.append(Curve(name, tuple(float(v) for v in lv), tuple(accs)))
    return curves
