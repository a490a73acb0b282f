"""Numerical gradients by central differences, the oracle every backward pass is checked against.

Use float64 inputs: with eps=1e-6 the truncation error is O(eps^2) ~ 1e-12 and the
round-off error ~ 1e-16 / eps ~ 1e-10, so a correct analytic gradient agrees to
roughly 1e-8 relative error. In float32 the round-off term alone is ~1e-1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["numerical_gradient", "numerical_vjp", "rel_error"]


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, *, eps: float = 1e-6) -> np.ndarray:
    """d f(x) / d x for a scalar function ``f``; x any shape -> gradient of x's shape.

    ``x`` is perturbed in place one element at a time and restored afterwards, so ``f``
    may close over it.
    """
    return numerical_vjp(
        lambda v: np.asarray(f(v), dtype=np.float64), x, np.ones((), dtype=np.float64), eps=eps
    )


def numerical_vjp(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray, *, eps: float = 1e-6
) -> np.ndarray:
    """Vector-Jacobian product ``sum(f(x) * dout)`` differentiated w.r.t. ``x``.

    f: x (any shape) -> out (shape of ``dout``). Returns an array shaped like ``x``:
    exactly what a backward pass returns when handed ``dout``.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"numerical_vjp: argument 'x' must be a floating-point ndarray, got "
            f"{type(x).__name__} of dtype {getattr(x, 'dtype', None)}"
        )
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writing to it perturbs x itself
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_vjp: argument 'x' must be contiguous so it can be perturbed in place")
    grad_flat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.sum(np.asarray(f(x), dtype=np.float64) * dout)
        flat[i] = old - eps
        minus = np.sum(np.asarray(f(x), dtype=np.float64) * dout)
        flat[i] = old
        grad_flat[i] = (plus - minus) / (2 * eps)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|), floored at 1e-8 so that two zero arrays give 0, not NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, got {a.shape} and {b.shape}")
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)), initial=0.0))
