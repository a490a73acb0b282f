"""course_lib.metrics on hand-computed examples, NumPy and torch inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.metrics import accuracy, confusion_matrix, precision_recall_f1

# 8 samples, 3 classes. Pairs (true -> predicted):
#   0->0, 0->1, 1->1, 1->1, 1->2, 2->2, 2->0, 0->0
PRED = np.array([0, 1, 1, 1, 2, 2, 0, 0])
TRUE = np.array([0, 0, 1, 1, 1, 2, 2, 0])


def test_accuracy_by_hand():
    assert accuracy(PRED, TRUE) == pytest.approx(5 / 8)  # 0->0 twice, 1->1 twice, 2->2 once
    assert accuracy(np.array([1, 1]), np.array([1, 1])) == 1.0
    assert isinstance(accuracy(PRED, TRUE), float)


def test_confusion_matrix_by_hand():
    expected = np.array([
        [2, 1, 0],  # true 0: predicted 0 twice, 1 once
        [0, 2, 1],  # true 1: predicted 1 twice, 2 once
        [1, 0, 1],  # true 2: predicted 0 once, 2 once
    ])
    got = confusion_matrix(PRED, TRUE)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64
    padded = confusion_matrix(PRED, TRUE, num_classes=4)
    np.testing.assert_array_equal(padded[:3, :3], expected)
    assert padded.shape == (4, 4) and padded[3].sum() == 0 and padded[:, 3].sum() == 0


def test_binary_precision_recall_f1_by_hand():
    pred = np.array([1, 1, 1, 0, 0, 1])
    true = np.array([1, 0, 1, 1, 0, 1])
    # TP = 3 (indices 0, 2, 5), FP = 1 (index 1), FN = 1 (index 3).
    p, r, f = precision_recall_f1(pred, true)
    assert p == pytest.approx(3 / 4)
    assert r == pytest.approx(3 / 4)
    assert f == pytest.approx(3 / 4)
    # Class 0 as the positive class: TP = 1 (index 4), FP = 1 (index 3), FN = 1 (index 1).
    p0, r0, f0 = precision_recall_f1(pred, true, positive=0)
    assert (p0, r0, f0) == pytest.approx((1 / 2, 1 / 2, 1 / 2))


def test_f1_is_harmonic_mean_by_hand():
    pred = np.array([1, 0, 0, 0])
    true = np.array([1, 1, 1, 0])
    # TP = 1, FP = 0, FN = 2: P = 1, R = 1/3, F1 = 2 * 1 * (1/3) / (4/3) = 1/2.
    result = precision_recall_f1(pred, true)
    assert result.precision == pytest.approx(1.0)
    assert result.recall == pytest.approx(1 / 3)
    assert result.f1 == pytest.approx(0.5)


def test_macro_average_by_hand():
    # From the confusion matrix above (rows true, columns predicted):
    #   class 0: P = 2/3, R = 2/3;  class 1: P = 2/3, R = 2/3;  class 2: P = 1/2, R = 1/2.
    p, r, f = precision_recall_f1(PRED, TRUE, positive=None)
    assert p == pytest.approx((2 / 3 + 2 / 3 + 1 / 2) / 3)
    assert r == pytest.approx((2 / 3 + 2 / 3 + 1 / 2) / 3)
    assert f == pytest.approx((2 / 3 + 2 / 3 + 1 / 2) / 3)  # P = R per class, so F1 = P


def test_zero_division_counts_as_zero():
    # Class 1 never predicted and never present: every ratio has denominator 0.
    assert tuple(precision_recall_f1(np.array([0, 0]), np.array([0, 0]))) == (0.0, 0.0, 0.0)


def test_accepts_torch_tensors():
    pred, true = torch.from_numpy(PRED), torch.from_numpy(TRUE)
    assert accuracy(pred, true) == pytest.approx(5 / 8)
    np.testing.assert_array_equal(confusion_matrix(pred, true), confusion_matrix(PRED, TRUE))
    assert precision_recall_f1(pred, true, positive=2) == pytest.approx((1 / 2, 1 / 2, 1 / 2))


def test_bad_arguments():
    with pytest.raises(ValueError, match="accuracy: arguments 'pred_labels' and 'labels' must have the same shape"):
        accuracy(np.array([0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="accuracy: argument 'pred_labels' must hold integer class labels"):
        accuracy(np.array([0.0, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="accuracy: argument 'labels' must be 1-D"):
        accuracy(np.array([0, 1]), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="confusion_matrix: argument 'labels' must hold labels >= 0"):
        confusion_matrix(np.array([0, 1]), np.array([0, -1]))
    with pytest.raises(ValueError, match="confusion_matrix: argument 'num_classes' is 2, but label 2 occurs"):
        confusion_matrix(np.array([0, 2]), np.array([0, 1]), num_classes=2)
    with pytest.raises(ValueError, match="precision_recall_f1: argument 'positive'"):
        precision_recall_f1(np.array([0, 1]), np.array([0, 1]), positive=-1)
