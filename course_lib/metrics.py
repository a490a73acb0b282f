"""Classification metrics, in NumPy (torch tensors are accepted and read with ``to_numpy``).

Inputs are integer class labels of shape (N,): ``pred_labels`` (e.g. ``scores.argmax(1)``)
and the true ``labels``. Letters: N samples, K classes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from course_lib.testing import to_numpy
from course_lib.validation import require_ndim, require_positive_int, require_same_shape

__all__ = ["PrecisionRecallF1", "accuracy", "confusion_matrix", "precision_recall_f1"]


class PrecisionRecallF1(NamedTuple):
    precision: float
    recall: float
    f1: float


def _labels_pair(fn: str, pred_labels: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    pred, true = to_numpy(pred_labels), to_numpy(labels)
    for name, arr in (("pred_labels", pred), ("labels", true)):
        require_ndim(fn, name, arr, 1, "(N,)")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{fn}: argument {name!r} must hold integer class labels, got dtype {arr.dtype}")
        if arr.size and arr.min() < 0:
            raise ValueError(f"{fn}: argument {name!r} must hold labels >= 0, got {int(arr.min())}")
    require_same_shape(fn, "pred_labels", pred, "labels", true)
    if true.size == 0:
        raise ValueError(f"{fn}: arguments 'pred_labels' and 'labels' are empty")
    return pred, true


def accuracy(pred_labels: Any, labels: Any) -> float:
    """Fraction of samples whose predicted label equals the true one.  (N,), (N,) -> float in [0, 1]."""
    pred, true = _labels_pair("accuracy", pred_labels, labels)
    return float(np.mean(pred == true))


def confusion_matrix(pred_labels: Any, labels: Any, *, num_classes: int | None = None) -> np.ndarray:
    """Counts C (K, K) int64 with C[i, j] = number of samples of true class i predicted as j.

    Rows are true classes, columns predictions (sklearn's layout), so the diagonal holds
    the correct predictions and row i sums to the number of samples of class i.
    K = ``num_classes``, or 1 + the largest label seen in either argument.
    """
    fn = "confusion_matrix"
    pred, true = _labels_pair(fn, pred_labels, labels)
    seen = int(max(pred.max(), true.max())) + 1
    if num_classes is None:
        num_classes = seen
    require_positive_int(fn, "num_classes", num_classes)
    if seen > num_classes:
        raise ValueError(f"{fn}: argument 'num_classes' is {num_classes}, but label {seen - 1} occurs")
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (true, pred), 1)  # add.at, unlike counts[true, pred] += 1, counts repeated pairs
    return counts


def _safe_div(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def precision_recall_f1(pred_labels: Any, labels: Any, *, positive: int | None = 1) -> PrecisionRecallF1:
    """Precision, recall and F1 score.  (N,), (N,) -> PrecisionRecallF1 of floats in [0, 1].

    - ``positive=c`` (default 1): class c against the rest.
      precision = TP / (TP + FP) (of the samples predicted c, how many are c),
      recall = TP / (TP + FN) (of the samples that are c, how many were found),
      f1 = 2 P R / (P + R), their harmonic mean.
    - ``positive=None``: macro average, the unweighted mean of the per-class precision,
      recall and F1 over every class 0 .. K-1 seen in either argument.

    A ratio whose denominator is 0 (e.g. class c never predicted) counts as 0, like
    sklearn's ``zero_division=0``.
    """
    fn = "precision_recall_f1"
    pred, true = _labels_pair(fn, pred_labels, labels)
    if positive is None:
        classes: range | list[int] = range(int(max(pred.max(), true.max())) + 1)
    else:
        if isinstance(positive, bool) or not isinstance(positive, (int, np.integer)) or positive < 0:
            raise ValueError(
                f"{fn}: argument 'positive' must be a class label >= 0 or None, got {positive!r}"
            )
        classes = [int(positive)]
    rows = []
    for c in classes:
        tp = np.sum((pred == c) & (true == c))
        precision = _safe_div(tp, np.sum(pred == c))
        recall = _safe_div(tp, np.sum(true == c))
        rows.append((precision, recall, _safe_div(2 * precision * recall, precision + recall)))
    p, r, f = np.mean(rows, axis=0)
    return PrecisionRecallF1(float(p), float(r), float(f))
