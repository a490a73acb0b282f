"""conv2d_forward and conv2d_backward tuned for speed: the package-level ``course_lib.np_ref`` names.

The same layer as ``conv.py`` (read that first: its docstring fixes the letters and the
conventions), computing the same numbers and the same ``Conv2dCache``, so a cache from
either forward goes into either backward. What differs is only how fast:

- temporaries that never leave a function live in reusable buffers (``_scratch.py``
  says why); results and caches are fresh arrays;
- im2col copies long contiguous runs (one packed copy per kernel column);
- dx handles the kernel-row offsets *before* the matrix product, so one product sums
  over filters and kernel rows and only the kernel-column offsets are added back;
- dw is computed as (cols @ dout^T)^T, which OpenBLAS spreads over its threads better.

``benchmarks/bench_conv.py`` times these against torch's CPU kernels.
"""

from __future__ import annotations

import numpy as np

from course_lib.np_ref._scratch import scratch
from course_lib.np_ref.conv import Conv2dCache
from course_lib.validation import check_conv, require_float, require_shape

__all__ = ["conv2d_forward", "conv2d_backward"]


def _output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """(size + 2 pad - kernel) // stride + 1, for arguments already checked."""
    return (size + 2 * pad - kernel) // stride + 1


def _im2col(x: np.ndarray, kh: int, kw: int, stride: int, pad: int, ho: int, wo: int) -> np.ndarray:
    """x (N, C, H, W) -> cols (C*KH*KW, P); row (c, i, j), column (n, h, w) holds xpad[n, c, h*s+i, w*s+j]."""
    n, c, h, w = x.shape
    s = stride
    # Channel-major padded copy: each kernel offset below then writes one block of
    # rows of `cols` whose columns run (n, h, w), exactly the order of the product.
    xp = scratch("conv.xp", (c, n, h + 2 * pad, w + 2 * pad), x.dtype)
    xp.fill(0)
    xp[:, :, pad : pad + h, pad : pad + w] = x.transpose(1, 0, 2, 3)
    cols = np.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)  # fresh: it is kept in the cache
    xj = scratch("conv.xj", (c, n, h + 2 * pad, wo), x.dtype)
    for j in range(kw):
        # The columns kernel column j sees, packed to width W'. Now a window for row
        # offset i is a run of H'*W' contiguous numbers (for stride 1), and copying
        # long runs beats copying W'-long row pieces (about 1.5x for the benchmark).
        np.copyto(xj, xp[:, :, :, j : j + s * (wo - 1) + 1 : s])
        for i in range(kh):
            cols[:, i, j] = xj[:, :, i : i + s * (ho - 1) + 1 : s]
    return cols.reshape(c * kh * kw, n * ho * wo)


def _input_grad(
    dout: np.ndarray, w: np.ndarray, x_shape: tuple[int, int, int, int], stride: int, pad: int
) -> np.ndarray:
    """dx (N, C, H, W) of the convolution, from dout (N, F, H', W') and w (F, C, KH, KW).

    Output pixel (r, q) sends w[f, c, i, j] * dout[n, f, r, q] back to input pixel
    (r*s + i - pad, q*s + j - pad). The textbook route forms all C*KH*KW of these
    products per position (dcols = W^T dout) and adds them back with KH*KW scattered
    adds (col2im). Here the row offsets are handled before the matrix product instead:
    ``rows[f, i, n, y, w]`` holds the dout value that kernel row i brings to input row y,
    so one product with the weights sums over filters *and* kernel rows, and only the
    KW column offsets are left to add back. Same sums, less memory traffic (about 1.4x
    faster for the benchmark layer).
    """
    n, c, h, w_in = x_shape
    f, _, kh, kw = w.shape
    ho, wo = dout.shape[2:]
    s = stride
    dout_t = dout.transpose(1, 0, 2, 3)  # (F, N, H', W')
    rows = scratch("conv.rows", (f, kh, n, h, wo), dout.dtype)
    for i in range(kh):
        # Output rows r whose kernel row i lands inside the image (not on the
        # padding): y = r*s + i - pad must lie in [0, H).
        first = max(0, -((i - pad) // s))  # ceil((pad - i) / s), at least 0
        stop = max(first, min(ho, (h - 1 + pad - i) // s + 1))  # stop == first: none does
        y0 = first * s + i - pad  # the first input row reached (>= 0)
        y_end = y0 + s * (stop - first - 1) + 1 if stop > first else y0
        # Input rows that no output row reaches through kernel row i get zero (scratch
        # memory comes uncleared). With stride 1 these are only the edges.
        if s > 1:
            rows[:, i].fill(0)
        else:
            rows[:, i, :, :y0].fill(0)
            rows[:, i, :, y_end:].fill(0)
        rows[:, i, :, y0:y_end:s] = dout_t[:, :, first:stop]
    w_t = w.transpose(1, 3, 0, 2).reshape(c * kw, f * kh)  # rows (c, j), columns (f, i)
    per_col = scratch("conv.per_col", (c * kw, n * h * wo), dout.dtype)
    np.matmul(w_t, rows.reshape(f * kh, -1), out=per_col)
    per_col = per_col.reshape(c, kw, n, h, wo)
    dxp = scratch("conv.dxp", (c, n, h, w_in + 2 * pad), dout.dtype)  # padded along W only
    dxp.fill(0)
    for j in range(kw):
        dxp[:, :, :, j : j + s * (wo - 1) + 1 : s] += per_col[:, j]
    # Gradients that fall on the zero padding belong to no input pixel: crop them.
    return np.ascontiguousarray(dxp[:, :, :, pad : pad + w_in].transpose(1, 0, 2, 3))


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, Conv2dCache]:
    """2-D convolution, as ``conv.conv2d_forward``, with reused buffers.

    x (N, C, H, W), w (F, C, KH, KW), b (F,) -> out (N, F, H', W'), cache.
    The output dtype is NumPy's promotion of the inputs' (float32 in, float32 out).
    """
    check_conv("conv2d_forward", x, w, b, stride, pad)
    n = x.shape[0]
    f, _, kh, kw = w.shape
    ho, wo = _output_size(x.shape[2], kh, stride, pad), _output_size(x.shape[3], kw, stride, pad)
    dtype = np.result_type(x, w, b)
    cols = _im2col(x.astype(dtype, copy=False), kh, kw, stride, pad, ho, wo)
    out_fp = scratch("conv.out_fp", (f, cols.shape[1]), dtype)
    np.matmul(
        w.reshape(f, -1).astype(dtype, copy=False), cols, out=out_fp
    )  # (F, P): one BLAS call does all the work
    out = np.empty((n, f, ho, wo), dtype=dtype)
    np.add(out_fp.reshape(f, n, ho, wo).transpose(1, 0, 2, 3), b[:, None, None], out=out)
    return out, Conv2dCache(cols, w, x.shape, stride, pad)


def conv2d_backward(dout: np.ndarray, cache: Conv2dCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (N, F, H', W') -> dx (N, C, H, W), dw (F, C, KH, KW), db (F,).

    Forward was out = W @ cols + b with W (F, C*KH*KW) and cols (C*KH*KW, P), so
    dW = dout @ cols^T and db sums dout over every position. dx = col2im(W^T @ dout)
    in principle; ``_input_grad`` computes the same sum in a cheaper order.
    """
    cols, w, x_shape, stride, pad = cache
    n = x_shape[0]
    f, _, kh, kw = w.shape
    ho, wo = _output_size(x_shape[2], kh, stride, pad), _output_size(x_shape[3], kw, stride, pad)
    require_float("conv2d_backward", "dout", dout)
    require_shape("conv2d_backward", "dout", dout, [("N", n), ("F", f), ("H'", ho), ("W'", wo)])
    dtype = cols.dtype
    dout_fp = scratch("conv.dout_fp", (f, n, ho, wo), dtype)
    np.copyto(dout_fp, dout.transpose(1, 0, 2, 3))
    dout_fp = dout_fp.reshape(f, -1)  # (F, P)
    db = dout_fp.sum(axis=1)
    # cols @ dout_fp.T (C*KH*KW rows) rather than dout_fp @ cols.T (F rows): the same
    # numbers, but OpenBLAS shares the larger row count out over its threads much
    # better (about 1.7x faster on 2 threads for the benchmark layer).
    dw = np.ascontiguousarray((cols @ dout_fp.T).T).reshape(w.shape)
    dx = _input_grad(dout.astype(dtype, copy=False), w.astype(dtype, copy=False), x_shape, stride, pad)
    return dx, dw, db
