"""engine.metrics against hand-counted values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from engine.metrics import (
    accuracy,
    confusion_matrix,
    per_class_accuracy,
    per_class_accuracy_from_confusion,
)

TRUE = np.array([0, 0, 1, 1, 1, 2], dtype=np.uint8)
PRED = np.array([0, 1, 1, 1, 2, 0])


def test_accuracy():
    assert accuracy(TRUE, PRED) == pytest.approx(3 / 6)
    assert accuracy([1, 2], [1, 2]) == 1.0
    assert math.isnan(accuracy([], []))


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(TRUE, PRED, n_classes=4)
    expected = np.array([
        [1, 1, 0, 0],
        [0, 2, 1, 0],
        [1, 0, 0, 0],
        [0, 0, 0, 0],
    ])
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64
    assert cm.sum() == len(TRUE)


def test_confusion_matrix_infers_size_and_rejects_out_of_range():
    assert confusion_matrix(TRUE, PRED).shape == (3, 3)
    assert confusion_matrix([], []).shape == (0, 0)
    with pytest.raises(ValueError):
        confusion_matrix(TRUE, PRED, n_classes=2)
    with pytest.raises(ValueError):
        confusion_matrix([0, -1], [0, 0], n_classes=3)
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0])


def test_per_class_accuracy_is_nan_for_empty_classes_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acc = per_class_accuracy(TRUE, PRED, n_classes=4)
    np.testing.assert_allclose(acc[:3], [0.5, 2 / 3, 0.0])
    assert math.isnan(acc[3])
    np.testing.assert_array_equal(
        per_class_accuracy_from_confusion(confusion_matrix(TRUE, PRED, 4)), acc
    )


def test_labels_must_be_integers():
    with pytest.raises(TypeError):
        accuracy([0.5, 1.0], [0, 1])
