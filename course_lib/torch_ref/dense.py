"""The fully connected (dense, affine) layer, forward and backward, in torch ops.

Letters: N batch, D input features, M output features. ``out = x @ w + b`` with
w (D, M), the transpose of ``nn.Linear.weight`` (M, D). Backward written out, no autograd.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from course_lib.validation import require_float, require_ndim, require_shape

__all__ = ["DenseCache", "dense_forward", "dense_backward"]


class DenseCache(NamedTuple):
    x: torch.Tensor  # (N, D): needed for dw
    w: torch.Tensor  # (D, M): needed for dx


def dense_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, DenseCache]:
    """out = x @ w + b.  x (N, D), w (D, M), b (M,) -> out (N, M), cache."""
    fn = "dense_forward"
    require_float(fn, "x", x)
    require_float(fn, "w", w)
    require_float(fn, "b", b)
    require_ndim(fn, "x", x, 2, "(N, D)")
    require_shape(fn, "w", w, [("D", x.shape[1]), ("M", None)])
    require_shape(fn, "b", b, [("M", w.shape[1])])
    if not x.dtype == w.dtype == b.dtype:
        # NumPy would silently promote; torch's matmul refuses, so say which argument differs.
        raise ValueError(
            f"{fn}: arguments 'x', 'w', 'b' must share one dtype, got {x.dtype}, {w.dtype}, {b.dtype}"
        )
    return x @ w + b, DenseCache(x, w)


def dense_backward(dout: torch.Tensor, cache: DenseCache) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dout (N, M) -> dx (N, D), dw (D, M), db (M,) (db sums over the batch)."""
    x, w = cache
    require_shape("dense_backward", "dout", dout, [("N", x.shape[0]), ("M", w.shape[1])])
    return dout @ w.T, x.T @ dout, dout.sum(dim=0)
