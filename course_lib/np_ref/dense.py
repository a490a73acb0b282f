"""The fully connected (dense, affine) layer, forward and backward, in NumPy.

Letters: N batch, D input features, M output features. ``out = x @ w + b`` with
w (D, M), i.e. the transpose of torch's ``nn.Linear.weight`` (M, D).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from course_lib.validation import require_float, require_ndim, require_shape

__all__ = ["DenseCache", "dense_forward", "dense_backward"]


class DenseCache(NamedTuple):
    x: np.ndarray  # (N, D): needed for dw
    w: np.ndarray  # (D, M): needed for dx


def dense_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, DenseCache]:
    """out = x @ w + b.  x (N, D), w (D, M), b (M,) -> out (N, M), cache."""
    fn = "dense_forward"
    require_float(fn, "x", x)
    require_float(fn, "w", w)
    require_float(fn, "b", b)
    require_ndim(fn, "x", x, 2, "(N, D)")
    require_shape(fn, "w", w, [("D", x.shape[1]), ("M", None)])
    require_shape(fn, "b", b, [("M", w.shape[1])])
    return x @ w + b, DenseCache(x, w)


def dense_backward(dout: np.ndarray, cache: DenseCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (N, M) -> dx (N, D), dw (D, M), db (M,).

    Each output unit m adds b[m] to every row, so db sums dout over the batch; dx and
    dw are the two halves of the matrix-product rule.
    """
    x, w = cache
    require_shape("dense_backward", "dout", dout, [("N", x.shape[0]), ("M", w.shape[1])])
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)
