"""LeCun preprocessing of drawings (hand-made cases) and reading ASCII art back."""

from __future__ import annotations

import numpy as np
import pytest

from engine.insight.drawing import (
    EMPTY_MESSAGE, area_resize, centre_of_mass, predict_drawing, preprocess_drawing, read_ascii_art,
)
from engine.mlp import MLP
from tui.ascii_art import render_image


def _ink_box(img: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((img > 0.05).any(axis=1))
    cols = np.flatnonzero((img > 0.05).any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


def test_centred_stroke_stays_put():
    canvas = np.zeros((28, 28))
    canvas[4:24, 12:16] = 1.0          # a 20-pixel bar centred in the field: already MNIST-shaped
    out = preprocess_drawing(canvas)
    assert out is not None and out.shape == (28, 28)
    np.testing.assert_allclose(out, canvas)


def test_off_centre_stroke_moves_to_its_centre_of_mass():
    canvas = np.zeros((28, 28))
    canvas[0:20, 0:4] = 1.0            # the same bar, in the top-left corner
    out = preprocess_drawing(canvas)
    r, c = centre_of_mass(out)
    assert abs(r - 13.5) <= 0.5 and abs(c - 13.5) <= 0.5
    np.testing.assert_allclose(out[4:24, 12:16], 1.0)


def test_centre_of_mass_not_box_centre():
    # an L: heavy at the bottom and the left, so the mass centre is below and left of the box's
    # centre: the box lands higher and further right than a box-centred placement
    canvas = np.zeros((40, 40))
    canvas[0:20, 0:2] = 1.0
    canvas[18:20, 0:20] = 1.0
    out = preprocess_drawing(canvas)
    r, c = centre_of_mass(out)
    assert abs(r - 13.5) <= 0.5 and abs(c - 13.5) <= 0.5
    top, bottom, left, right = _ink_box(out)
    assert (top + bottom) / 2 < 13.5 < (left + right) / 2


@pytest.mark.parametrize("h, w", [(100, 50), (30, 90), (7, 3), (200, 200)])
def test_fit_in_20x20_keeps_the_aspect_ratio(h, w):
    canvas = np.zeros((h + 20, w + 20), dtype=np.uint8)
    canvas[10 : 10 + h, 10 : 10 + w] = 255
    out = preprocess_drawing(canvas)
    top, bottom, left, right = _ink_box(out)
    oh, ow = bottom - top + 1, right - left + 1
    assert max(oh, ow) == 20
    assert oh / ow == pytest.approx(h / w, rel=0.12)


def test_area_averaging_anti_aliases_and_keeps_mass():
    img = np.zeros((40, 40))
    img[:, 19:21] = 1.0                # a 2-pixel line halved -> one full column, not a jagged one
    small = area_resize(img, 20, 20)
    assert small.sum() == pytest.approx(img.sum() / 4)
    odd = area_resize(np.ones((3, 3)), 2, 2)
    np.testing.assert_allclose(odd, 1.0)
    grey = area_resize(np.eye(3), 2, 2)      # fractional overlaps give grey levels in between
    assert 0 < grey.min() < grey.max() < 1


def test_empty_canvas_draws_nothing():
    assert preprocess_drawing(np.zeros((50, 50))) is None
    assert preprocess_drawing(np.full((10, 10), 3, dtype=np.uint8)) is None   # below the ink threshold
    model = MLP((784, 10))
    result = predict_drawing(model, np.zeros((28, 28)))
    assert result.probs is None and result.label is None and result.message == EMPTY_MESSAGE


def test_predict_drawing_refuses_another_input_size_and_says_why():
    with pytest.raises(ValueError, match=r"64 inputs.*28x28"):
        predict_drawing(MLP((64, 10)), np.ones((8, 8)))


def test_predict_drawing_gives_probabilities():
    canvas = np.zeros((60, 60))
    canvas[10:50, 28:32] = 1.0
    r = predict_drawing(MLP((784, 16, 10)), canvas)
    assert r.probs is not None and r.probs.shape == (10,) and r.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert r.label == int(np.argmax(r.probs)) and r.image is not None


def test_ascii_art_round_trip_through_the_preview():
    img = np.zeros((28, 28), dtype=np.uint8)
    img[4:24, 12:16] = 255
    art = render_image(img, 255, "ascii", width=14, height=7)
    back = read_ascii_art("\n".join(art))
    assert back is not None and back.shape[1] == 14     # 2 pixel rows per line; blank last lines dropped
    out = preprocess_drawing(back)
    assert out is not None
    assert abs(centre_of_mass(out)[1] - 13.5) <= 0.5
    top, bottom, left, right = _ink_box(out)
    assert bottom - top + 1 == 20 and right - left + 1 < 8         # still a tall thin bar


def test_ascii_art_reader_ramp_blocks_and_blanks():
    img = read_ascii_art(" @\n.X\n")
    assert img is not None and img.shape == (4, 2)
    assert img[0, 1] == 1.0 and img[2, 1] == 1.0 and 0 < img[2, 0] < 0.1 and img[0, 0] == 0
    blocks = read_ascii_art("\u2580\u2584\u2588")
    assert blocks is not None
    np.testing.assert_array_equal(blocks, [[1, 0, 1], [0, 1, 1]])
    assert read_ascii_art("  \n \n") is None and read_ascii_art("") is None
