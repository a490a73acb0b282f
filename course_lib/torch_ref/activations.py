"""Activation functions g(z) and their element-wise derivatives dg/dz, in torch ops.

The same formulas as ``course_lib.np_ref.activations``, written out rather than
delegated to ``torch.sigmoid`` / ``torch.softmax`` so that torch's own functions stay an
independent oracle. ``z`` is the pre-activation tensor (any shape, any device); outputs
keep its shape, dtype and device, except ``maxout``, which shrinks the last axis.
The element-wise functions (all but ``softmax``, ``log_softmax`` and ``maxout``) also take
a Python or NumPy scalar or a 0-d NumPy array, as ``np_ref`` does, and return a 0-d tensor
(float64 for an int or a Python float, as NumPy would compute it).
"""

from __future__ import annotations

from typing import Any

import torch

from course_lib.validation import require_float, require_positive_int, scalar_as_float_array

__all__ = [
    "sigmoid",
    "sigmoid_grad",
    "tanh",
    "tanh_grad",
    "relu",
    "relu_grad",
    "leaky_relu",
    "leaky_relu_grad",
    "swish",
    "swish_grad",
    "softmax",
    "log_softmax",
    "maxout",
]


def _take(fn: str, z: Any) -> torch.Tensor:
    """``z`` checked, with a Python/NumPy scalar or a 0-d NumPy array made a 0-d tensor."""
    scalar = None if isinstance(z, torch.Tensor) else scalar_as_float_array(fn, "z", z)
    if scalar is not None:
        return torch.from_numpy(scalar.copy())
    require_float(fn, "z", z)
    return z


def sigmoid(z: torch.Tensor | float) -> torch.Tensor:
    """sigma(z) = 1 / (1 + exp(-z)).  z (any shape) -> same shape, in (0, 1)."""
    z = _take("sigmoid", z)
    # exp(-|z|) is in (0, 1]: it cannot overflow (see np_ref.activations.sigmoid).
    e = torch.exp(-z.abs())
    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(z: torch.Tensor | float) -> torch.Tensor:
    """sigma'(z) = sigma(z) (1 - sigma(z)).  z (any shape) -> same shape."""
    z = _take("sigmoid_grad", z)
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z: torch.Tensor | float) -> torch.Tensor:
    """tanh(z).  z (any shape) -> same shape, in (-1, 1)."""
    z = _take("tanh", z)
    return torch.tanh(z)


def tanh_grad(z: torch.Tensor | float) -> torch.Tensor:
    """tanh'(z) = 1 - tanh(z)^2.  z (any shape) -> same shape."""
    z = _take("tanh_grad", z)
    t = torch.tanh(z)
    return 1.0 - t * t


def relu(z: torch.Tensor | float) -> torch.Tensor:
    """relu(z) = max(z, 0).  z (any shape) -> same shape."""
    z = _take("relu", z)
    return torch.clamp(z, min=0.0)


def relu_grad(z: torch.Tensor | float) -> torch.Tensor:
    """1 where z > 0, else 0 (0 at z = 0, torch's convention).  z -> same shape."""
    z = _take("relu_grad", z)
    return (z > 0).to(z.dtype)


def leaky_relu(z: torch.Tensor | float, *, alpha: float = 0.01) -> torch.Tensor:
    """z where z > 0, else alpha * z (alpha = torch's negative_slope).  z -> same shape."""
    z = _take("leaky_relu", z)
    return torch.where(z > 0, z, alpha * z)


def leaky_relu_grad(z: torch.Tensor | float, *, alpha: float = 0.01) -> torch.Tensor:
    """1 where z > 0, else alpha (alpha at z = 0, as in torch).  z -> same shape."""
    z = _take("leaky_relu_grad", z)
    return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, alpha))


def swish(z: torch.Tensor | float) -> torch.Tensor:
    """swish(z) = z * sigma(z) (torch's SiLU).  z (any shape) -> same shape."""
    z = _take("swish", z)
    return z * sigmoid(z)


def swish_grad(z: torch.Tensor | float) -> torch.Tensor:
    """swish'(z) = sigma(z) + z sigma(z) (1 - sigma(z)).  z (any shape) -> same shape."""
    z = _take("swish_grad", z)
    s = sigmoid(z)
    return s + z * s * (1.0 - s)


def softmax(z: torch.Tensor, *, axis: int = -1) -> torch.Tensor:
    """exp(z) / sum(exp(z)) along ``axis``.  z (e.g. (N, K) logits) -> same shape."""
    require_float("softmax", "z", z)
    # Subtracting the max leaves the result unchanged and keeps exp from overflowing.
    e = torch.exp(z - z.amax(dim=axis, keepdim=True))
    return e / e.sum(dim=axis, keepdim=True)


def log_softmax(z: torch.Tensor, *, axis: int = -1) -> torch.Tensor:
    """log(softmax(z)) along ``axis``, as (z - max) - log(sum(exp(z - max))).  z -> same shape."""
    require_float("log_softmax", "z", z)
    shifted = z - z.amax(dim=axis, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=axis, keepdim=True))


def maxout(z: torch.Tensor, *, pieces: int) -> torch.Tensor:
    """Max over groups of ``pieces`` consecutive features on the last axis.

    z (..., M * pieces) -> (..., M): output feature j is max(z[..., j*pieces : (j+1)*pieces]).
    """
    require_float("maxout", "z", z)
    require_positive_int("maxout", "pieces", pieces)
    if z.dim() == 0 or z.shape[-1] % pieces:
        raise ValueError(
            f"maxout: argument 'z' must have a last axis divisible by pieces={pieces}, "
            f"got shape {tuple(z.shape)}"
        )
    return z.reshape(*z.shape[:-1], z.shape[-1] // pieces, pieces).amax(dim=-1)
