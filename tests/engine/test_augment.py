"""Batch-time augmentation: known answers and reproducibility."""

from __future__ import annotations

import numpy as np

from engine.augment import random_shift
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset


def test_shift_moves_a_pixel_within_range_and_fills_zero():
    img = np.zeros((500, 5, 5), np.uint8)
    img[:, 2, 2] = 9
    out = random_shift(img, 2, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == img.shape
    positions = {tuple(np.argwhere(o == 9)[0]) for o in out}
    assert all(o.sum() == 9 for o in out), "the one lit pixel stays whole (it never leaves a 5x5 frame)"
    assert positions == {(r, c) for r in range(5) for c in range(5)}, "all 25 shifts occur"


def test_shift_known_answer_and_zero_shift_is_identity():
    img = np.arange(16, dtype=np.uint8).reshape(1, 4, 4) + 1
    np.testing.assert_array_equal(random_shift(img, 0, np.random.default_rng(0)), img)

    class Fixed:  # dy = +1 (offset 2 of 0..2), dx = -1 (offset 0)
        def integers(self, low, high, size):
            return np.array([[2], [0]])

    out = random_shift(img, 1, Fixed())
    expected = np.zeros((1, 4, 4), np.uint8)
    expected[0, :3, 1:] = img[0, 1:, :3]
    np.testing.assert_array_equal(out, expected)


def test_augmented_training_is_reproducible_and_differs_from_plain():
    data = make_dataset(side=8)
    cfg = TrainConfig(hidden=(16,), epochs=2, val_size=100, batch_size=32, dataset="x", augment="shift", max_shift=1)

    def weights(c):
        s = TrainingSession(c, data)
        list(s.run())
        return s.model.get_weights()

    a, b = weights(cfg), weights(cfg)
    plain = weights(cfg.replace(augment="none"))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], plain[k]) for k in a)
