"""Regularization in torch: weight penalties, dropout, batch normalization and early stopping.

The same API and conventions as ``course_lib.np_ref.regularization`` (read its docstring):
the 1/2 in ``l2_penalty`` (gradient ``lam * w`` = torch's ``weight_decay=lam``), inverted
dropout, and torch's BatchNorm1d/2d running-statistics rule. Letters: N batch, D features,
C channels, H/W height/width. Backward passes are explicit tensor arithmetic, so
torch.autograd stays an independent oracle. ``EarlyStopping`` holds no arrays; it is
the NumPy path's class, re-exported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from course_lib.np_ref.regularization import EarlyStopping
from course_lib.validation import (
    require_bool,
    require_float,
    require_in_range,
    require_probability,
    require_shape,
)

__all__ = [
    "l2_penalty",
    "l1_penalty",
    "DropoutCache",
    "dropout_forward",
    "dropout_backward",
    "BatchNormCache",
    "batchnorm_forward",
    "batchnorm_backward",
    "EarlyStopping",
]


def _check_weights(fn: str, weights: Any, lam: Any) -> None:
    if not isinstance(weights, (list, tuple)):
        raise ValueError(
            f"{fn}: argument 'weights' must be a list of tensors (e.g. [w1, w2]), got {type(weights).__name__}"
        )
    for i, w in enumerate(weights):
        require_float(fn, f"weights[{i}]", w)
    require_in_range(fn, "lam", lam, 0.0)


def _total(terms: list[torch.Tensor]) -> torch.Tensor:
    # torch.stack keeps dtype and device; an empty list of weights has penalty 0.
    return torch.stack(terms).sum() if terms else torch.tensor(0.0)


def l2_penalty(weights: Sequence[torch.Tensor], *, lam: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """penalty = lam / 2 * sum_l ||W_l||^2 (0-d tensor), grads[l] = lam * W_l.

    weights: list of tensors of any shapes -> (penalty, grads shaped like weights).
    With SGD, adding these gradients equals torch's ``weight_decay=lam``.
    """
    fn = "l2_penalty"
    _check_weights(fn, weights, lam)
    penalty = 0.5 * lam * _total([(w * w).sum() for w in weights])
    return penalty, [lam * w for w in weights]


def l1_penalty(weights: Sequence[torch.Tensor], *, lam: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """penalty = lam * sum_l sum |W_l| (0-d tensor), grads[l] = lam * sign(W_l) (sign(0) = 0).

    weights: list of tensors of any shapes -> (penalty, grads shaped like weights).
    """
    fn = "l1_penalty"
    _check_weights(fn, weights, lam)
    penalty = lam * _total([w.abs().sum() for w in weights])
    return penalty, [lam * torch.sign(w) for w in weights]


class DropoutCache(NamedTuple):
    mask: torch.Tensor | None  # like x: 0 or 1 / (1 - p_drop); None when dropout was the identity


def dropout_forward(
    x: torch.Tensor, *, p_drop: float, train: bool, rng: torch.Generator | None
) -> tuple[torch.Tensor, DropoutCache]:
    """Inverted dropout: zero each entry with probability p_drop, scale the rest by 1 / (1 - p_drop).

    x (any shape, e.g. (N, D)) -> out (same shape), cache. With train=False (or p_drop=0)
    the layer is the identity (out is a copy of x) and ``rng`` may be None; otherwise
    ``rng`` is a torch.Generator on x's device. p_drop must be in [0, 1).
    """
    fn = "dropout_forward"
    require_float(fn, "x", x)
    require_probability(fn, "p_drop", p_drop)
    require_bool(fn, "train", train)
    if not train or p_drop == 0:
        return x.clone(), DropoutCache(None)
    if not isinstance(rng, torch.Generator):
        raise ValueError(
            f"{fn}: argument 'rng' must be a torch.Generator when train=True, got {type(rng).__name__}"
        )
    u = torch.rand(x.shape, generator=rng, device=x.device, dtype=x.dtype)
    keep = u >= p_drop  # P(u >= p_drop) = 1 - p_drop for u ~ U[0, 1)
    mask = keep.to(x.dtype) * (1.0 / (1.0 - p_drop))
    return x * mask, DropoutCache(mask)


def dropout_backward(dout: torch.Tensor, cache: DropoutCache) -> torch.Tensor:
    """dout (shape of x) -> dx (same shape): the gradient flows only through kept units, scaled alike."""
    fn = "dropout_backward"
    require_float(fn, "dout", dout)
    if cache.mask is None:
        return dout.clone()
    require_shape(fn, "dout", dout, tuple(cache.mask.shape))
    return dout * cache.mask


class BatchNormCache(NamedTuple):
    x_hat: torch.Tensor  # like x: the normalised input
    inv_std: torch.Tensor  # (D,) or (C,): 1 / sqrt(var + eps) of the statistics used
    gamma: torch.Tensor  # (D,) or (C,)
    train: bool  # True: batch statistics (they depend on x); False: running statistics (constants)


def _per_channel(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """(C,) -> broadcastable against x: (C,) for (N, D), (1, C, 1, 1) for (N, C, H, W)."""
    return v if ndim == 2 else v.reshape(1, -1, 1, 1)


def batchnorm_forward(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    *,
    train: bool,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, BatchNormCache, torch.Tensor, torch.Tensor]:
    """Batch normalization: out = gamma * (x - mean) / sqrt(var + eps) + beta, per feature/channel.

    x (N, D) with gamma, beta, running_mean, running_var (D,), or x (N, C, H, W) with
    those of shape (C,) and statistics over N, H, W. Returns (out (shape of x), cache,
    new_running_mean, new_running_var); train=True normalises with the biased batch
    variance and feeds the unbiased one into the running average (torch's rule),
    train=False uses the running statistics and returns them unchanged.
    """
    fn = "batchnorm_forward"
    require_float(fn, "x", x)
    if x.ndim not in (2, 4):
        raise ValueError(
            f"{fn}: argument 'x' must be 2-D (N, D) or 4-D (N, C, H, W), got shape {tuple(x.shape)}"
        )
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    letter = "D" if x.ndim == 2 else "C"
    channels = x.shape[1]
    for name, v in (
        ("gamma", gamma),
        ("beta", beta),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        require_float(fn, name, v)
        require_shape(fn, name, v, [(letter, channels)])
    require_bool(fn, "train", train)
    require_in_range(fn, "momentum", momentum, 0.0, 1.0)
    require_in_range(fn, "eps", eps, 0.0)
    if train:
        n = x.numel() // channels
        if n < 2:
            raise ValueError(
                f"{fn}: argument 'x' must hold more than 1 value per {'feature' if x.ndim == 2 else 'channel'} "
                f"when train=True (a variance of one value is 0), got shape {tuple(x.shape)}"
            )
        mean = x.mean(dim=axes)
        var = x.var(dim=axes, correction=0)  # biased (divides by n): what the normalisation uses
        new_running_mean = (1 - momentum) * running_mean + momentum * mean
        new_running_var = (1 - momentum) * running_var + momentum * var * (n / (n - 1))
    else:
        mean, var = running_mean, running_var
        new_running_mean, new_running_var = running_mean, running_var
    inv_std = 1.0 / torch.sqrt(var + eps)
    x_hat = (x - _per_channel(mean, x.ndim)) * _per_channel(inv_std, x.ndim)
    out = _per_channel(gamma, x.ndim) * x_hat + _per_channel(beta, x.ndim)
    return out, BatchNormCache(x_hat, inv_std, gamma, train), new_running_mean, new_running_var


def batchnorm_backward(
    dout: torch.Tensor, cache: BatchNormCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dout (shape of x) -> dx (shape of x), dgamma (D,) or (C,), dbeta (D,) or (C,).

    Training mode: dx = gamma * inv_std * (dout - mean(dout) - x_hat * mean(dout * x_hat)),
    means per feature/channel; evaluation mode: dx = gamma * inv_std * dout.
    """
    fn = "batchnorm_backward"
    require_float(fn, "dout", dout)
    require_shape(fn, "dout", dout, tuple(cache.x_hat.shape))
    x_hat, inv_std, gamma, train = cache
    axes = (0,) if dout.ndim == 2 else (0, 2, 3)
    dbeta = dout.sum(dim=axes)
    dgamma = (dout * x_hat).sum(dim=axes)
    scale = _per_channel(gamma * inv_std, dout.ndim)
    if not train:
        return dout * scale, dgamma, dbeta
    n = dout.numel() // dout.shape[1]
    dx = scale * (dout - _per_channel(dbeta / n, dout.ndim) - x_hat * _per_channel(dgamma / n, dout.ndim))
    return dx, dgamma, dbeta
