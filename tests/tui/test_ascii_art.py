"""tui.ascii_art: known answers on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest

from tui.ascii_art import (FULL, LOWER, RAMP, UPPER, crop_margin, image_to_ascii, image_to_blocks,
                           probability_bars, render_image, resample)


def test_ramp_is_pure_ascii_and_ordered_blank_to_full():
    assert RAMP == " .:-=+*#%@"
    assert RAMP.isascii()


def test_ascii_known_answer_one_char_per_pixel():
    img = np.array([[0, 255], [128, 28]], dtype=np.uint8)
    # 0 -> ' ', 255 -> '@', 128/255*9 = 4.52 -> 5 '+', 28/255*9 = 0.99 -> 1 '.'
    assert image_to_ascii(img, 255, width=2, height=2) == [" @", "+."]


def test_ascii_averages_blocks():
    img = np.zeros((4, 4))
    img[:2, :2] = 9          # top-left block mean 9 = max -> '@'
    img[2:, 2:] = 3          # bottom-right block mean 3 -> 3/9*9 = 3 -> '-'
    assert image_to_ascii(img, max_value=9, width=2, height=2) == ["@ ", " -"]


def test_ascii_gamma_darkens_faint_strokes():
    img = np.full((1, 1), 64)                                   # 64/255 = 0.251
    assert image_to_ascii(img, 255, 1, 1) == [":"]              # 2.26 -> 2
    assert image_to_ascii(img, 255, 1, 1, gamma=0.5) == ["+"]   # sqrt -> 0.501*9 = 4.51 -> 5


def test_half_blocks_known_answer():
    img = np.array([[255, 0, 255, 0],
                    [0, 255, 255, 0]], dtype=np.uint8)
    assert image_to_blocks(img, 255, width=4, height=1) == [UPPER + LOWER + FULL + " "]


def test_half_blocks_threshold():
    img = np.array([[100], [200]], dtype=np.uint8)
    assert image_to_blocks(img, 255, 1, 1, threshold=0.5) == [LOWER]
    assert image_to_blocks(img, 255, 1, 1, threshold=0.3) == [FULL]


def test_resample_shrinks_by_area_and_grows_by_repetition():
    img = np.array([[0, 2, 4], [6, 8, 10], [12, 14, 16]], dtype=float)
    assert resample(img, 1, 1).tolist() == [[8.0]]
    assert resample(img, 2, 2).tolist() == [[0.0, 3.0], [9.0, 12.0]]   # bins (0,1),(1,3)
    assert resample(np.array([[1, 2]]), 2, 4).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]


def test_mnist_sized_digit_becomes_14x7_in_both_modes():
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 12:16] = 255                    # a vertical stroke: a "1"
    for mode in ("ascii", "blocks"):
        lines = render_image(img, 255, mode)
        assert len(lines) == 7 and all(len(line) == 14 for line in lines)
        assert any(c != " " for c in "".join(lines))
    ascii_lines = render_image(img, 255, "ascii")
    assert all(line.isascii() for line in ascii_lines)
    assert ascii_lines[3] == "      @@      "


def test_render_rejects_unknown_mode_and_bad_input():
    with pytest.raises(ValueError):
        render_image(np.zeros((2, 2)), mode="sixel")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        resample(np.zeros(3), 1, 1)
    with pytest.raises(ValueError):
        image_to_ascii(np.zeros((2, 2)), max_value=0)


def test_crop_margin():
    img = np.arange(36).reshape(6, 6)
    assert crop_margin(img, 1).shape == (4, 4)
    assert crop_margin(img, 3) is img          # would leave nothing: kept whole


def test_probability_bars():
    assert probability_bars([0.75, 0.25], ["a", "b"], width=4) == ["a ###   75.0%", "b #     25.0%"]
    lines = probability_bars(np.eye(10)[3], [str(i) for i in range(10)], width=10)
    assert lines[3] == "3 ########## 100.0%"
    assert lines[0] == "0              0.0%"
