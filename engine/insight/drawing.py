"""A drawing -> a 28x28 MNIST-like image, as MNIST was made, and ASCII art read back into pixels.

LeCun's description of MNIST: the digits were size-normalised to fit in a 20x20 box keeping
their aspect ratio, anti-aliased (here: by exact area averaging), then centred in a 28x28 field
by their centre of mass. :func:`preprocess_drawing` does the same to a grayscale canvas of any
size (ink high, background 0); an empty canvas gives ``None`` and :data:`EMPTY_MESSAGE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: What to show when there is nothing to classify.
EMPTY_MESSAGE = "draw a digit"
#: A pixel is ink when its normalised intensity exceeds this (scanner/antialias dust below it).
INK_THRESHOLD = 0.05
FIELD = 28
BOX = 20

#: The ASCII ramp tui/ascii_art draws with (blank first) and the gamma its preview uses.
ASCII_RAMP = " .:-=+*#%@"
PREVIEW_GAMMA = 0.6
HALF_BLOCKS = {"\u2580": (1.0, 0.0), "\u2584": (0.0, 1.0), "\u2588": (1.0, 1.0)}


def _overlap(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: the share of each output cell covered by each input pixel, with
    both spans mapped onto [0, 1] (rows sum to 1): area averaging for any ratio."""
    edges_in = np.arange(n_in + 1) / n_in
    edges_out = np.arange(n_out + 1) / n_out
    lo = np.maximum(edges_out[:-1, None], edges_in[None, :-1])
    hi = np.minimum(edges_out[1:, None], edges_in[None, 1:])
    m = np.clip(hi - lo, 0.0, None)
    return m / m.sum(axis=1, keepdims=True)


def area_resize(image: Any, out_h: int, out_w: int) -> np.ndarray:
    """Resize a 2-D array to (out_h, out_w) by exact area averaging (float64)."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {img.shape}")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size must be positive, got {out_h}x{out_w}")
    return _overlap(img.shape[0], out_h) @ img @ _overlap(img.shape[1], out_w).T


def normalise_canvas(canvas: Any, max_value: float | None = None) -> np.ndarray:
    """A 2-D canvas as float64 in [0, 1]: divided by ``max_value`` (default 255 for integer
    arrays, else the larger of 1 and the canvas maximum)."""
    a = np.asarray(canvas)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"expected a non-empty 2-D canvas, got shape {a.shape}")
    f = a.astype(np.float64)
    if not np.isfinite(f).all():
        raise ValueError("the canvas holds NaN or infinite values")
    if max_value is None:
        max_value = 255.0 if a.dtype.kind in "iub" and a.dtype != np.bool_ else max(1.0, float(f.max()))
    return np.clip(f / float(max_value), 0.0, 1.0)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted centre of ``image`` (pixel centres at integers)."""
    total = image.sum()
    rows = np.arange(image.shape[0]) @ image.sum(axis=1) / total
    cols = np.arange(image.shape[1]) @ image.sum(axis=0) / total
    return float(rows), float(cols)


def preprocess_drawing(canvas: Any, max_value: float | None = None, field: int = FIELD,
                       box: int = BOX) -> np.ndarray | None:
    """LeCun's preprocessing: (field, field) float64 in [0, 1], or None for an empty canvas.

    1. the bounding box of the ink (pixels above INK_THRESHOLD);
    2. scaled so its longer side is ``box`` pixels, keeping the aspect ratio, by area averaging;
    3. placed in a ``field`` x ``field`` image so that its centre of mass falls on the centre
       ((field - 1) / 2, shifted by whole pixels), kept inside the field.
    """
    img = normalise_canvas(canvas, max_value)
    ink = img > INK_THRESHOLD
    if not ink.any():
        return None
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    crop = img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    fit = np.clip(area_resize(crop, nh, nw), 0.0, 1.0)
    r, c = centre_of_mass(fit)
    centre = (field - 1) / 2
    top = int(np.clip(np.floor(centre - r + 0.5), 0, field - nh))
    left = int(np.clip(np.floor(centre - c + 0.5), 0, field - nw))
    out = np.zeros((field, field))
    out[top : top + nh, left : left + nw] = fit
    return out


def read_ascii_art(text: str, ramp: str = ASCII_RAMP, gamma: float = PREVIEW_GAMMA) -> np.ndarray | None:
    """Pixels (float64 in [0, 1]) of ASCII art as tui/ascii_art draws it, or None if blank.

    A character is a cell twice as tall as wide, so each becomes two rows of one pixel. A ramp
    character maps back through the preview's gamma; half blocks (top, bottom, full) light their
    halves; any other non-blank character (X, #, a digit) counts as full ink. Blank lines at the
    edges and trailing spaces do not matter: the preprocessing crops to the ink.
    """
    lines = [ln.rstrip("\r") for ln in text.expandtabs().split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return None
    width = max(len(ln) for ln in lines)
    if width == 0:
        return None
    n = len(ramp) - 1
    img = np.zeros((2 * len(lines), width))
    for i, ln in enumerate(lines):
        for j, ch in enumerate(ln):
            if ch in HALF_BLOCKS:
                img[2 * i, j], img[2 * i + 1, j] = HALF_BLOCKS[ch]
                continue
            k = ramp.find(ch)
            v = 1.0 if k < 0 and not ch.isspace() else (0.0 if k <= 0 else (k / n) ** (1.0 / gamma))
            img[2 * i : 2 * i + 2, j] = v
    return img if img.any() else None


@dataclass(frozen=True)
class DrawingPrediction:
    """What a drawing is: ``image`` None and ``message`` EMPTY_MESSAGE for an empty canvas."""

    image: np.ndarray | None          # (28, 28) float64 in [0, 1], as the model saw it
    probs: np.ndarray | None          # (C,) probabilities
    message: str = ""

    @property
    def label(self) -> int | None:
        return None if self.probs is None else int(np.argmax(self.probs))


def predict_drawing(model: Any, canvas: Any, max_value: float | None = None) -> DrawingPrediction:
    """Preprocess ``canvas`` and classify it with ``model`` (an MLP taking 784 = 28x28 inputs).
    Raises ValueError, saying why, for a model of another input size."""
    if model.sizes[0] != FIELD * FIELD:
        raise ValueError(f"the model takes {model.sizes[0]} inputs, not {FIELD}x{FIELD} = {FIELD * FIELD}:"
                         f" a drawing is prepared as a {FIELD}x{FIELD} MNIST image")
    image = preprocess_drawing(canvas, max_value)
    if image is None:
        return DrawingPrediction(None, None, EMPTY_MESSAGE)
    probs = model.predict_proba(image.reshape(1, -1).astype(model.dtype))[0].astype(np.float64)
    return DrawingPrediction(image, probs)
