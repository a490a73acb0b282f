"""Loss functions, each returning ``(loss, dpred)`` in NumPy.

``loss`` is a 0-d scalar (a NumPy float of the prediction's dtype): the **mean** over
all elements, like torch's default ``reduction="mean"``. ``dpred`` = d loss / d pred has
the prediction's shape, so it can be fed straight into the last layer's backward.

Letters: N batch, K classes. Predictions and targets must have exactly the same shape:
(N,) against (N, 1) raises ``ValueError`` instead of silently broadcasting to (N, N).
"""

from __future__ import annotations

import numpy as np

from course_lib.np_ref.activations import log_softmax, sigmoid
from course_lib.validation import require_float, require_labels, require_ndim, require_same_shape

__all__ = [
    "mse_loss",
    "mae_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "softmax_cross_entropy",
    "hinge_loss",
]

# torch clamps log(p) at -100 so that a confident wrong answer costs 100, not inf, and
# divides by max(p (1 - p), 1e-12) in the gradient; we copy both so torch is an exact oracle.
_BCE_LOG_FLOOR = -100.0
_BCE_EPS = 1e-12


def _check_pair(fn: str, pred_name: str, pred: np.ndarray, target_name: str, target: np.ndarray) -> None:
    require_float(fn, pred_name, pred)
    require_float(fn, target_name, target)
    require_same_shape(fn, pred_name, pred, target_name, target)
    if pred.size == 0:
        raise ValueError(f"{fn}: argument {pred_name!r} is empty; the mean loss is undefined")


def mse_loss(pred: np.ndarray, target: np.ndarray) -> tuple[np.floating, np.ndarray]:
    """mean((pred - target)^2).  pred, target (same shape, e.g. (N,) or (N, M)) -> (loss, dpred)."""
    _check_pair("mse_loss", "pred", pred, "target", target)
    diff = pred - target
    return np.mean(diff * diff), 2.0 * diff / diff.size


def mae_loss(pred: np.ndarray, target: np.ndarray) -> tuple[np.floating, np.ndarray]:
    """mean(|pred - target|).  pred, target (same shape) -> (loss, dpred).

    |d| has no derivative at d = 0; sign(0) = 0 is used there, as in torch's l1_loss.
    """
    _check_pair("mae_loss", "pred", pred, "target", target)
    diff = pred - target
    return np.mean(np.abs(diff)), np.sign(diff) / diff.size


def binary_cross_entropy(probs: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    """mean(-[y log p + (1 - y) log(1 - p)]).  probs, y (same shape, e.g. (N,)) -> (loss, dprobs).

    ``probs`` are probabilities in [0, 1] (e.g. a sigmoid output); ``y`` are float targets
    in [0, 1]. Prefer ``binary_cross_entropy_with_logits``: it never needs the clamp.
    """
    fn = "binary_cross_entropy"
    _check_pair(fn, "probs", probs, "y", y)
    if np.any(probs < 0) or np.any(probs > 1):
        raise ValueError(
            f"{fn}: argument 'probs' must be in [0, 1], "
            f"got values from {float(np.min(probs)):g} to {float(np.max(probs)):g}"
        )
    with np.errstate(divide="ignore"):  # log(0) = -inf is expected here and clamped just below
        log_p = np.maximum(np.log(probs), _BCE_LOG_FLOOR)
        log_1mp = np.maximum(np.log(1.0 - probs), _BCE_LOG_FLOOR)
    loss = -np.mean(y * log_p + (1.0 - y) * log_1mp)
    dprobs = (probs - y) / np.maximum(probs * (1.0 - probs), _BCE_EPS) / probs.size
    return loss, dprobs.astype(probs.dtype, copy=False)


def binary_cross_entropy_with_logits(logits: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    """BCE of sigmoid(logits) against y.  logits, y (same shape, e.g. (N,)) -> (loss, dlogits).

    Per element, -[y log s + (1 - y) log(1 - s)] with s = sigmoid(x) simplifies to
    max(x, 0) - x y + log(1 + exp(-|x|)): no exp of a large number, no log(0).
    The gradient is the famously simple (sigmoid(x) - y) / size.
    """
    _check_pair("binary_cross_entropy_with_logits", "logits", logits, "y", y)
    per_elem = np.maximum(logits, 0.0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
    return np.mean(per_elem), (sigmoid(logits) - y) / logits.size


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[np.floating, np.ndarray]:
    """mean over the batch of -log softmax(logits)[label].

    logits (N, K) floats, labels (N,) integers in [0, K) -> (loss, dlogits (N, K)).
    dlogits = (softmax(logits) - one_hot(labels)) / N.
    """
    fn = "softmax_cross_entropy"
    require_float(fn, "logits", logits)
    require_ndim(fn, "logits", logits, 2, "(N, K)")
    n, k = logits.shape
    if n == 0:
        raise ValueError(f"{fn}: argument 'logits' is empty; the mean loss is undefined")
    require_labels(fn, "labels", labels, k, n)
    logp = log_softmax(logits, axis=1)
    rows = np.arange(n)
    loss = -np.mean(logp[rows, labels])
    dlogits = np.exp(logp)  # = softmax(logits), without computing the max twice
    dlogits[rows, labels] -= 1.0
    return loss, dlogits / n


def hinge_loss(scores: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    """mean(max(0, 1 - y * s)).  scores, y (same shape, e.g. (N,)), y in {-1, +1} -> (loss, dscores).

    A sample costs nothing once its margin y*s reaches 1. At exactly y*s = 1 the hinge
    has a kink; we use the subgradient 0 there (like relu_grad(0) = 0).
    """
    fn = "hinge_loss"
    require_float(fn, "scores", scores)
    require_same_shape(fn, "scores", scores, "y", y)
    if scores.size == 0:
        raise ValueError(f"{fn}: argument 'scores' is empty; the mean loss is undefined")
    if not np.all((y == 1) | (y == -1)):
        raise ValueError(f"{fn}: argument 'y' must hold labels in {{-1, +1}}, got {np.unique(y)[:5]}")
    y = y.astype(scores.dtype, copy=False)  # integer labels are fine here: they are signs
    margin = 1.0 - y * scores
    return np.mean(np.maximum(margin, 0.0)), -y * (margin > 0) / scores.size
