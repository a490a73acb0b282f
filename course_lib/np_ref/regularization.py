"""Regularization in NumPy: weight penalties, dropout, batch normalization and early stopping.

Letters: N batch, D features (x of shape (N, D)), C channels, H/W height/width
(x of shape (N, C, H, W)).

- ``l2_penalty`` uses the 1/2 convention, ``lam / 2 * sum ||w||^2``, so that its gradient
  is ``lam * w``: exactly what torch.optim adds with ``weight_decay=lam``. (Some notes write
  ``lam * sum ||w||^2`` without the 1/2; that is the same penalty with lam doubled.)
- ``dropout_forward`` is inverted dropout: kept units are scaled by 1 / (1 - p_drop) at
  training time, so evaluation is the identity and needs no rescaling.
- ``batchnorm_forward`` follows torch's BatchNorm1d/2d: normalise with the biased batch
  variance, but update ``running_var`` with the unbiased one; evaluation uses the
  running statistics. Running statistics are returned, never updated in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from course_lib.validation import (
    require_bool,
    require_float,
    require_in_range,
    require_positive_int,
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
            f"{fn}: argument 'weights' must be a list of arrays (e.g. [w1, w2]), got {type(weights).__name__}"
        )
    for i, w in enumerate(weights):
        require_float(fn, f"weights[{i}]", w)
    require_in_range(fn, "lam", lam, 0.0)


def l2_penalty(weights: Sequence[np.ndarray], *, lam: float) -> tuple[float, list[np.ndarray]]:
    """penalty = lam / 2 * sum_l ||W_l||^2 (squared Frobenius norms), grads[l] = lam * W_l.

    weights: list of arrays of any shapes -> (penalty (a float), grads shaped like weights).
    Add ``penalty`` to the loss and each ``grads[l]`` to the matching weight gradient;
    with SGD that equals torch's ``weight_decay=lam``. Biases are usually left out.
    """
    fn = "l2_penalty"
    _check_weights(fn, weights, lam)
    penalty = 0.5 * lam * sum(float(np.sum(w * w)) for w in weights)
    return penalty, [lam * w for w in weights]


def l1_penalty(weights: Sequence[np.ndarray], *, lam: float) -> tuple[float, list[np.ndarray]]:
    """penalty = lam * sum_l sum |W_l|, grads[l] = lam * sign(W_l).

    weights: list of arrays of any shapes -> (penalty (a float), grads shaped like weights).
    |w| has no derivative at 0; like torch we use sign(0) = 0 there.
    """
    fn = "l1_penalty"
    _check_weights(fn, weights, lam)
    penalty = lam * sum(float(np.sum(np.abs(w))) for w in weights)
    return penalty, [lam * np.sign(w) for w in weights]


class DropoutCache(NamedTuple):
    mask: np.ndarray | None  # like x: 0 or 1 / (1 - p_drop); None when dropout was the identity


def dropout_forward(
    x: np.ndarray, *, p_drop: float, train: bool, rng: np.random.Generator | None
) -> tuple[np.ndarray, DropoutCache]:
    """Inverted dropout: zero each entry with probability p_drop, scale the rest by 1 / (1 - p_drop).

    x (any shape, e.g. (N, D)) -> out (same shape), cache. The scaling keeps E[out] = x,
    so with train=False (or p_drop=0) the layer is the identity (out is a copy of x) and
    ``rng`` may be None. p_drop must be in [0, 1).
    """
    fn = "dropout_forward"
    require_float(fn, "x", x)
    require_probability(fn, "p_drop", p_drop)
    require_bool(fn, "train", train)
    if not train or p_drop == 0:
        return x.copy(), DropoutCache(None)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"{fn}: argument 'rng' must be a np.random.Generator when train=True, got {type(rng).__name__}"
        )
    keep = rng.random(x.shape) >= p_drop  # P(u >= p_drop) = 1 - p_drop for u ~ U[0, 1)
    mask = keep.astype(x.dtype) * (1.0 / (1.0 - p_drop))
    return x * mask, DropoutCache(mask)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """dout (shape of x) -> dx (same shape): the gradient flows only through kept units, scaled alike."""
    fn = "dropout_backward"
    require_float(fn, "dout", dout)
    if cache.mask is None:
        return dout.copy()
    require_shape(fn, "dout", dout, cache.mask.shape)
    return dout * cache.mask


class BatchNormCache(NamedTuple):
    x_hat: np.ndarray  # like x: the normalised input
    inv_std: np.ndarray  # (D,) or (C,): 1 / sqrt(var + eps) of the statistics used
    gamma: np.ndarray  # (D,) or (C,)
    train: bool  # True: batch statistics (they depend on x); False: running statistics (constants)


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> broadcastable against x: (C,) for (N, D), (1, C, 1, 1) for (N, C, H, W)."""
    return v if ndim == 2 else v.reshape(1, -1, 1, 1)


def batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    *,
    train: bool,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, BatchNormCache, np.ndarray, np.ndarray]:
    """Batch normalization: out = gamma * (x - mean) / sqrt(var + eps) + beta, per feature/channel.

    x (N, D) with gamma, beta, running_mean, running_var (D,) — like nn.BatchNorm1d — or
    x (N, C, H, W) with those of shape (C,), statistics over N, H, W — like nn.BatchNorm2d.
    Returns (out (shape of x), cache, new_running_mean, new_running_var).

    train=True: mean and biased var of the batch normalise x, and
    new_running = (1 - momentum) * running + momentum * batch_stat, where the variance
    entering the running average is the unbiased one (times n / (n - 1), n values per
    feature), as in torch. train=False: the running statistics normalise x and are
    returned unchanged.
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
        n = x.size // channels
        if n < 2:
            raise ValueError(
                f"{fn}: argument 'x' must hold more than 1 value per {'feature' if x.ndim == 2 else 'channel'} "
                f"when train=True (a variance of one value is 0), got shape {tuple(x.shape)}"
            )
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)  # biased (divides by n): what the normalisation uses
        new_running_mean = (1 - momentum) * running_mean + momentum * mean
        new_running_var = (1 - momentum) * running_var + momentum * var * (n / (n - 1))
    else:
        mean, var = running_mean, running_var
        new_running_mean, new_running_var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - _per_channel(mean, x.ndim)) * _per_channel(inv_std, x.ndim)
    out = _per_channel(gamma, x.ndim) * x_hat + _per_channel(beta, x.ndim)
    return out, BatchNormCache(x_hat, inv_std, gamma, train), new_running_mean, new_running_var


def batchnorm_backward(dout: np.ndarray, cache: BatchNormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (shape of x) -> dx (shape of x), dgamma (D,) or (C,), dbeta (D,) or (C,).

    In training mode the mean and variance depend on every x in the batch, which adds two
    terms to the plain scaling: dx = gamma * inv_std * (dout - mean(dout) - x_hat * mean(dout * x_hat)),
    means taken per feature/channel over the n values it normalised.
    """
    fn = "batchnorm_backward"
    require_float(fn, "dout", dout)
    require_shape(fn, "dout", dout, cache.x_hat.shape)
    x_hat, inv_std, gamma, train = cache
    axes = (0,) if dout.ndim == 2 else (0, 2, 3)
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * x_hat).sum(axis=axes)
    scale = _per_channel(gamma * inv_std, dout.ndim)
    if not train:
        return dout * scale, dgamma, dbeta
    n = dout.size // dout.shape[1]
    dx = scale * (dout - _per_channel(dbeta / n, dout.ndim) - x_hat * _per_channel(dgamma / n, dout.ndim))
    return dx, dgamma, dbeta


class EarlyStopping:
    """Stop training once the validation loss has not improved for ``patience`` epochs in a row.

    Call ``step(val_loss)`` once per epoch; it returns True when training should stop.
    An epoch improves when ``val_loss < best_loss - min_delta``. Attributes:

    - ``best_loss``: the lowest loss seen (inf before the first step);
    - ``best_epoch``: 0-based index of the ``step`` call that produced ``best_loss``
      (None before the first step) — restore the weights saved at that epoch;
    - ``num_bad_epochs``: epochs since the last improvement.

    A nan loss never counts as an improvement. ``val_loss`` may be a Python float, a NumPy
    scalar or a 0-d torch tensor (the Torch path re-exports this same class).
    """

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        require_positive_int("EarlyStopping", "patience", patience)
        require_in_range("EarlyStopping", "min_delta", min_delta, 0.0)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.num_bad_epochs = 0
        self.num_epochs = 0

    def step(self, val_loss: Any) -> bool:
        """Record one epoch's validation loss; True means stop now."""
        loss = float(val_loss)
        epoch = self.num_epochs
        self.num_epochs += 1
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.num_bad_epochs = loss, epoch, 0
        else:
            self.num_bad_epochs += 1
        return self.num_bad_epochs >= self.patience

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, best_loss={self.best_loss}, "
            f"best_epoch={self.best_epoch}, num_bad_epochs={self.num_bad_epochs})"
        )
