"""Data augmentation applied when a batch is formed (the stored dataset is never changed)."""

from __future__ import annotations

import numpy as np

#: Augmentations a run can use: none, or "shift" (random_shift by up to max_shift pixels).
AUGMENT_NAMES: tuple[str, ...] = ("none", "shift")


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Translate each image by a random (dy, dx) in [-max_shift, max_shift], filling with 0.

    images: (m, H, W), any dtype; out: (m, H, W) of the same dtype or None.
    Draws 2*m integers from ``rng`` (so a seeded run stays reproducible).
    """
    m, h, w = images.shape
    if out is None:
        out = np.empty_like(images)
    if max_shift <= 0 or m == 0:
        out[...] = images
        return out
    p = int(max_shift)
    padded = np.zeros((m, h + 2 * p, w + 2 * p), dtype=images.dtype)
    padded[:, p : p + h, p : p + w] = images
    offsets = rng.integers(0, 2 * p + 1, size=(2, m))
    rows = offsets[0][:, None] + np.arange(h)          # (m, H)
    cols = offsets[1][:, None] + np.arange(w)          # (m, W)
    out[...] = padded[np.arange(m)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out
