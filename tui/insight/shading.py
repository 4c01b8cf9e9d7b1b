"""Diverging shading for weight images, and activation strips: lines of Rich Text, no widgets.

Weights are drawn two pixels per character cell (the upper half-block with a foreground colour
for the top pixel and a background colour for the bottom one), or with ASCII where Unicode is
off (engine.insight.units.DIVERGING_RAMP: round marks negative, dense marks positive, so the
sign survives without colour). The two hues are blue (negative) and orange (positive): every
colour is an xterm-256 palette entry, so a 256-colour terminal over SSH shows them exactly,
and blue/orange stays apart for the common colour-vision deficiencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from rich.segment import Segment
from rich.style import Style

from engine.insight.units import DIVERGING_RAMP, diverging_levels

LEVELS = 4
#: colour of level -4..4 (index level + 4): blue for negative, orange for positive, both getting
#: brighter with the weight's size; zero is the background grey. All xterm-256 palette colours.
COLOURS = ("#5fafff", "#0087ff", "#0000d7", "#000087", "#1c1c1c", "#870000", "#d75f00", "#ff8700", "#ffd787")
UPPER = "\u2580"
#: activation strip glyphs, from nothing to the layer's largest activation
STRIP = " \u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
STRIP_ASCII = " .:-=+*#@"


@lru_cache(maxsize=128)
def _style(top: int, bottom: int | None) -> Style:
    if bottom is None:
        return Style(color=COLOURS[top + LEVELS])
    return Style(color=COLOURS[top + LEVELS], bgcolor=COLOURS[bottom + LEVELS])


def tile_size(image_shape: tuple[int, int], max_cols: int = 14) -> tuple[int, int]:
    """(columns, rows) of character cells one weight image takes: at most ``max_cols`` wide,
    keeping the aspect ratio with two pixels per cell (28x28 -> 14x7, 8x8 -> 8x4)."""
    h, w = image_shape
    cols = max(1, min(w, max_cols))
    px_rows = max(1, round(h * cols / w))
    return cols, max(1, (px_rows + 1) // 2)


def diverging_tile(image: np.ndarray, cols: int, rows: int, ascii_only: bool = False) -> list[list[Segment]]:
    """One weight image (values in [-1, 1]) as ``rows`` lines of ``cols`` cells, each line a
    list of Rich segments (runs of one style merged)."""
    if ascii_only:
        lv = diverging_levels(image, rows, cols, LEVELS)
        return [_runs([(DIVERGING_RAMP[int(v) + LEVELS], _style(int(v), None)) for v in row]) for row in lv]
    lv = diverging_levels(image, 2 * rows, cols, LEVELS)
    return [_runs([(UPPER, _style(int(a), int(b))) for a, b in zip(top, bottom)])
            for top, bottom in zip(lv[0::2], lv[1::2])]


def _runs(cells: list[tuple[str, Style]]) -> list[Segment]:
    out: list[Segment] = []
    text, style = "", None
    for ch, st in cells:
        if st is style:
            text += ch
            continue
        if text:
            out.append(Segment(text, style))
        text, style = ch, st
    if text:
        out.append(Segment(text, style))
    return out


def strip(values: Sequence[float] | np.ndarray, width: int, ascii_only: bool = False) -> str:
    """A layer's activations as one line of ``width`` glyphs (several units per glyph when the
    layer is wider: their largest magnitude), scaled by the layer's largest magnitude."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    glyphs = STRIP_ASCII if ascii_only else STRIP
    if a.size == 0 or width < 1:
        return ""
    n = min(width, a.size)
    edges = np.linspace(0, a.size, n + 1).astype(int)
    cells = np.array([a[s:e].max() for s, e in zip(edges[:-1], edges[1:])])
    top = cells.max()
    if not np.isfinite(top) or top <= 0:
        return glyphs[0] * n
    idx = np.clip(np.rint(cells / top * (len(glyphs) - 1)), 0, len(glyphs) - 1).astype(int)
    return "".join(glyphs[i] for i in idx)
