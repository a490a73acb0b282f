"""Loss functions, each returning ``(loss, dpred)`` in torch ops (no autograd).

Mirrors ``course_lib.np_ref.losses``: ``loss`` is a 0-d tensor, the mean over all
elements; ``dpred`` = d loss / d pred has the prediction's shape, dtype and device.
Letters: N batch, K classes. No broadcasting of (N,) against (N, 1).
"""

from __future__ import annotations

import torch

from course_lib.torch_ref.activations import log_softmax, sigmoid
from course_lib.validation import require_float, require_labels, require_ndim, require_same_shape

__all__ = [
    "mse_loss",
    "mae_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "softmax_cross_entropy",
    "hinge_loss",
]

# torch's own binary_cross_entropy clamps log at -100 and divides by max(p (1 - p), 1e-12)
# in its gradient; copying both keeps F.binary_cross_entropy an exact oracle.
_BCE_LOG_FLOOR = -100.0
_BCE_EPS = 1e-12


def _check_pair(fn: str, pred_name: str, pred: torch.Tensor, target_name: str, target: torch.Tensor) -> None:
    require_float(fn, pred_name, pred)
    require_float(fn, target_name, target)
    require_same_shape(fn, pred_name, pred, target_name, target)
    if pred.numel() == 0:
        raise ValueError(f"{fn}: argument {pred_name!r} is empty; the mean loss is undefined")


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mean((pred - target)^2).  pred, target (same shape) -> (loss, dpred)."""
    _check_pair("mse_loss", "pred", pred, "target", target)
    diff = pred - target
    return (diff * diff).mean(), 2.0 * diff / diff.numel()


def mae_loss(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mean(|pred - target|).  pred, target (same shape) -> (loss, dpred); sign(0) = 0 at the kink."""
    _check_pair("mae_loss", "pred", pred, "target", target)
    diff = pred - target
    return diff.abs().mean(), torch.sign(diff) / diff.numel()


def binary_cross_entropy(probs: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mean(-[y log p + (1 - y) log(1 - p)]).  probs in [0, 1], y (same shape) -> (loss, dprobs)."""
    fn = "binary_cross_entropy"
    _check_pair(fn, "probs", probs, "y", y)
    if bool((probs < 0).any()) or bool((probs > 1).any()):
        raise ValueError(
            f"{fn}: argument 'probs' must be in [0, 1], "
            f"got values from {float(probs.min()):g} to {float(probs.max()):g}"
        )
    log_p = torch.clamp(torch.log(probs), min=_BCE_LOG_FLOOR)
    log_1mp = torch.clamp(torch.log(1.0 - probs), min=_BCE_LOG_FLOOR)
    loss = -(y * log_p + (1.0 - y) * log_1mp).mean()
    dprobs = (probs - y) / torch.clamp(probs * (1.0 - probs), min=_BCE_EPS) / probs.numel()
    return loss, dprobs


def binary_cross_entropy_with_logits(
    logits: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """BCE of sigmoid(logits) against y, as max(x, 0) - x y + log(1 + exp(-|x|)).

    logits, y (same shape) -> (loss, dlogits = (sigmoid(logits) - y) / size).
    """
    _check_pair("binary_cross_entropy_with_logits", "logits", logits, "y", y)
    per_elem = torch.clamp(logits, min=0.0) - logits * y + torch.log1p(torch.exp(-logits.abs()))
    return per_elem.mean(), (sigmoid(logits) - y) / logits.numel()


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mean over the batch of -log softmax(logits)[label].

    logits (N, K) floats, labels (N,) integers in [0, K) -> (loss, dlogits (N, K)).
    """
    fn = "softmax_cross_entropy"
    require_float(fn, "logits", logits)
    require_ndim(fn, "logits", logits, 2, "(N, K)")
    n, k = logits.shape
    if n == 0:
        raise ValueError(f"{fn}: argument 'logits' is empty; the mean loss is undefined")
    require_labels(fn, "labels", labels, k, n)
    logp = log_softmax(logits, axis=1)
    rows = torch.arange(n, device=logits.device)
    labels = labels.to(device=logits.device, dtype=torch.long)
    loss = -logp[rows, labels].mean()
    dlogits = torch.exp(logp)  # = softmax(logits)
    dlogits[rows, labels] -= 1.0
    return loss, dlogits / n


def hinge_loss(scores: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mean(max(0, 1 - y * s)).  scores, y (same shape), y in {-1, +1} -> (loss, dscores).

    Subgradient 0 at the kink y*s = 1 (like relu_grad(0) = 0).
    """
    fn = "hinge_loss"
    require_float(fn, "scores", scores)
    require_same_shape(fn, "scores", scores, "y", y)
    if scores.numel() == 0:
        raise ValueError(f"{fn}: argument 'scores' is empty; the mean loss is undefined")
    if not bool(((y == 1) | (y == -1)).all()):
        raise ValueError(
            f"{fn}: argument 'y' must hold labels in {{-1, +1}}, got {torch.unique(y)[:5].tolist()}"
        )
    y = y.to(scores.dtype)
    margin = 1.0 - y * scores
    return torch.clamp(margin, min=0.0).mean(), -y * (margin > 0).to(scores.dtype) / scores.numel()
