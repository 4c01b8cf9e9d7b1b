"""Grayscale images -> lines of text. Pure functions; no Textual, no engine.

Two renderings:

* ``ascii``: one character per block of pixels, from a pure-ASCII shade ramp
  (`RAMP`, darkest first). Survives any terminal, font and NO_COLOR.
* ``blocks``: Unicode half blocks (▀ ▄ █); each character cell shows two pixels
  stacked vertically, so a digit looks sharper at the same size.

A terminal cell is about twice as tall as it is wide, so an ASCII character covers
twice as many pixel rows as columns; a half-block character covers one column and two
rows. With the defaults a 28x28 MNIST digit becomes 14 columns x 7 rows in both modes.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

RAMP = " .:-=+*#%@"
"""Shade ramp, from blank (0) to full ink."""

Mode = Literal["ascii", "blocks"]

UPPER, LOWER, FULL = "\u2580", "\u2584", "\u2588"


def resample(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize a 2-D array to (out_h, out_w) by averaging the source area of each cell.

    Shrinks by area averaging and grows by repetition (nearest neighbour), so small
    images (e.g. 8x8 digits) stay blocky rather than blurred. Returns float64.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {img.shape}")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size must be positive, got {out_h}x{out_w}")
    h, w = img.shape
    rows = _bins(h, out_h)
    cols = _bins(w, out_w)
    out = np.empty((out_h, out_w))
    for i, (r0, r1) in enumerate(rows):
        band = img[r0:r1].mean(axis=0)
        for j, (c0, c1) in enumerate(cols):
            out[i, j] = band[c0:c1].mean()
    return out


def _bins(n_in: int, n_out: int) -> list[tuple[int, int]]:
    """Source index ranges [start, stop) covering n_in items split into n_out cells."""
    bins = []
    for k in range(n_out):
        start = (k * n_in) // n_out
        stop = max(((k + 1) * n_in) // n_out, start + 1)
        bins.append((min(start, n_in - 1), min(stop, n_in)))
    return bins


def image_to_ascii(
    image: np.ndarray, max_value: float = 255, width: int = 14, height: int = 7, ramp: str = RAMP,
    gamma: float = 1.0,
) -> list[str]:
    """Draw ``image`` as ``height`` lines of ``width`` characters from ``ramp``.

    Each character is the mean intensity of its pixel block, scaled by ``max_value``,
    raised to ``gamma`` (below 1 darkens thin strokes that averaging made faint) and
    mapped linearly onto the ramp (0 -> ramp[0], max_value -> ramp[-1]).
    """
    if max_value <= 0:
        raise ValueError("max_value must be positive")
    cells = np.clip(resample(image, height, width) / float(max_value), 0.0, 1.0) ** gamma
    levels = np.clip(np.rint(cells * (len(ramp) - 1)), 0, len(ramp) - 1).astype(int)
    return ["".join(ramp[v] for v in row) for row in levels]


def image_to_blocks(
    image: np.ndarray, max_value: float = 255, width: int = 14, height: int = 7, threshold: float = 0.5
) -> list[str]:
    """Draw ``image`` as ``height`` lines of half-block characters, ``width`` wide.

    The image is resampled to ``2*height`` x ``width`` pixels; a pixel is ink when its
    intensity is at least ``threshold * max_value``. Each character shows two pixels:
    top only ▀, bottom only ▄, both █, neither a space.
    """
    if max_value <= 0:
        raise ValueError("max_value must be positive")
    ink = resample(image, 2 * height, width) >= threshold * float(max_value)
    top, bottom = ink[0::2], ink[1::2]
    lines = []
    for t_row, b_row in zip(top, bottom):
        lines.append(
            "".join(
                FULL if t and b else UPPER if t else LOWER if b else " "
                for t, b in zip(t_row, b_row)
            )
        )
    return lines


def crop_margin(image: np.ndarray, margin: int) -> np.ndarray:
    """``image`` without ``margin`` pixels on each side (kept whole when too small)."""
    h, w = image.shape
    if margin <= 0 or h <= 2 * margin + 1 or w <= 2 * margin + 1:
        return image
    return image[margin : h - margin, margin : w - margin]


def render_image(
    image: np.ndarray, max_value: float = 255, mode: Mode | str = "ascii", width: int = 14, height: int = 7,
    margin: int = 0,
) -> list[str]:
    """Draw ``image`` in the given ``mode`` ("ascii" or "blocks").

    ``margin`` pixels are cropped from each side first (MNIST digits sit in the central
    20x20 of their 28x28 box, so a small crop gives the strokes more characters). ASCII
    uses gamma 0.6 so thin strokes stay visible after block averaging.
    """
    image = crop_margin(np.asarray(image), margin)
    if mode == "ascii":
        return image_to_ascii(image, max_value, width, height, gamma=0.6)
    if mode == "blocks":
        return image_to_blocks(image, max_value, width, height, threshold=0.35)
    raise ValueError(f"unknown mode {mode!r}: expected 'ascii' or 'blocks'")


def probability_bars(
    probabilities: np.ndarray | list[float], names: tuple[str, ...] | list[str], width: int = 30,
    fill: str = "#",
) -> list[str]:
    """One line per class: name, a bar of ``fill`` proportional to p, and p as a percentage.

    >>> probability_bars([0.75, 0.25], ["a", "b"], width=4)
    ['a ###   75.0%', 'b #     25.0%']
    """
    probs = [float(p) for p in probabilities]
    name_w = max((len(n) for n in names), default=1)
    lines = []
    for name, raw in zip(names, probs):
        p = min(max(raw, 0.0), 1.0)
        bar = fill * int(round(p * width))
        lines.append(f"{name:<{name_w}} {bar:<{width}} {p * 100:5.1f}%")
    return lines
