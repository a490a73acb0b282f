"""2-D convolution and pooling layers, forward and backward, in NumPy.

Letters: N batch, C input channels, H/W input height/width, F filters (output
channels), KH/KW kernel height/width, H'/W' output height/width (``Ho``/``Wo`` in
code), P = N * H' * W' output positions.

Conventions, the same as ``torch.nn.functional``:

- "convolution" is cross-correlation: the kernel is not flipped,
  ``out[n, f, h, w] = b[f] + sum_{c,i,j} w[f, c, i, j] * xpad[n, c, h*stride + i, w*stride + j]``.
- Padding is zeros, ``pad`` pixels on every side.
- ``stride`` and ``pad`` (and the pooling ``kernel``) are single ints used for both
  axes. torch also accepts (height, width) pairs; we do not, so that every formula
  stays one-dimensional. Non-square conv kernels come from the shape of ``w``.
- The output size along an axis is ``conv_output_size(size, kernel, stride=, pad=)``
  = (size + 2 pad - kernel) // stride + 1; rows or columns left over at the bottom or
  right when the stride does not divide evenly are ignored, as in torch.

``conv2d_forward`` is vectorised by *im2col*: every receptive field is copied into a
column of a (C*KH*KW, P) matrix, after which the whole layer is one matrix product
with the (F, C*KH*KW) weight matrix. The backward pass reuses that matrix for dw;
dx is the sum of every weight times dout, added back onto the pixel it came from
(col2im). Python loops run only over kernel offsets, never over pixels or the batch.
``conv2d_forward_naive`` spells the same sum out with explicit loops.

This module is the reference to read. ``course_lib.np_ref.conv2d_forward`` and
``conv2d_backward`` (the package-level names) are the speed-tuned versions of
``fast_conv.py``: the same numbers and the same cache, computed in a cheaper order with
reused buffers (the tests check that the two agree).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from course_lib.validation import (
    check_conv,
    check_pool,
    require_float,
    require_kernel_fits,
    require_nonnegative_int,
    require_positive_int,
    require_shape,
)

__all__ = [
    "Conv2dCache",
    "MaxPool2dCache",
    "AvgPool2dCache",
    "conv_output_size",
    "conv2d_forward",
    "conv2d_forward_naive",
    "conv2d_backward",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
]


def _output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """(size + 2 pad - kernel) // stride + 1, for arguments already checked."""
    return (size + 2 * pad - kernel) // stride + 1


def conv_output_size(size: int, kernel: int, *, stride: int = 1, pad: int = 0) -> int:
    """Output length along one axis: (size + 2 pad - kernel) // stride + 1.

    Raises ValueError if the kernel is larger than the padded input, or if kernel or
    stride is not a positive integer, or pad is negative.
    """
    fn = "conv_output_size"
    require_nonnegative_int(fn, "size", size)
    require_positive_int(fn, "kernel", kernel)
    require_positive_int(fn, "stride", stride)
    require_nonnegative_int(fn, "pad", pad)
    require_kernel_fits(fn, "kernel", size, kernel, pad)
    return _output_size(size, kernel, stride, pad)


class Conv2dCache(NamedTuple):
    cols: np.ndarray  # (C*KH*KW, P): im2col of the padded input, needed for dw
    w: np.ndarray  # (F, C, KH, KW): needed for dx
    x_shape: tuple[int, int, int, int]  # (N, C, H, W): the shape dx must have
    stride: int
    pad: int


def _check_conv(
    fn: str, x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int
) -> tuple[int, int]:
    """Validate conv2d arguments; return the output size (H', W')."""
    check_conv(fn, x, w, b, stride, pad)
    return _output_size(x.shape[2], w.shape[2], stride, pad), _output_size(
        x.shape[3], w.shape[3], stride, pad
    )


def _im2col(x: np.ndarray, kh: int, kw: int, stride: int, pad: int, ho: int, wo: int) -> np.ndarray:
    """x (N, C, H, W) -> cols (C*KH*KW, P); row (c, i, j), column (n, h, w) holds xpad[n, c, h*s+i, w*s+j]."""
    n, c, h, w = x.shape
    s = stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # Kernel offset (i, j) sees one strided sub-image of every padded image.
            window = xp[:, :, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s]  # (N, C, H', W')
            cols[:, i, j] = window.transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * ho * wo)


def _input_grad(
    dout: np.ndarray, w: np.ndarray, x_shape: tuple[int, int, int, int], stride: int, pad: int
) -> np.ndarray:
    """dx (N, C, H, W) of the convolution, from dout (N, F, H', W') and w (F, C, KH, KW).

    col2im(W^T @ dout): output pixel (r, q) sends w[f, c, i, j] * dout[n, f, r, q] back to
    the input pixel (r*s + i - pad, q*s + j - pad) it was computed from, and all of these
    contributions add up.
    """
    n, c, h, w_in = x_shape
    f, _, kh, kw = w.shape
    ho, wo = dout.shape[2:]
    s = stride
    dout_mat = dout.transpose(1, 0, 2, 3).reshape(f, -1)  # (F, P)
    dcols = (w.reshape(f, -1).T @ dout_mat).reshape(c, kh, kw, n, ho, wo)
    dxp = np.zeros((n, c, h + 2 * pad, w_in + 2 * pad), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            # += : a pixel inside several windows (stride < kernel) collects from each.
            dxp[:, :, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s] += dcols[:, i, j].transpose(
                1, 0, 2, 3
            )
    # Gradients that fall on the zero padding belong to no input pixel: crop them.
    return dxp[:, :, pad : pad + h, pad : pad + w_in]


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, Conv2dCache]:
    """2-D convolution (cross-correlation, like torch's F.conv2d), vectorised with im2col.

    x (N, C, H, W), w (F, C, KH, KW), b (F,) -> out (N, F, H', W'), cache.
    The output dtype is NumPy's promotion of the inputs' (float32 in, float32 out).
    """
    ho, wo = _check_conv("conv2d_forward", x, w, b, stride, pad)
    n = x.shape[0]
    f, _, kh, kw = w.shape
    dtype = np.result_type(x, w, b)
    cols = _im2col(x.astype(dtype, copy=False), kh, kw, stride, pad, ho, wo)  # (C*KH*KW, P)
    out = w.reshape(f, -1).astype(dtype, copy=False) @ cols + b[:, None]  # (F, P): one matrix product
    out = np.ascontiguousarray(out.reshape(f, n, ho, wo).transpose(1, 0, 2, 3))
    return out, Conv2dCache(cols, w, x.shape, stride, pad)


def conv2d_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, Conv2dCache]:
    """The same layer as conv2d_forward, written as the textbook loops (slow; for reading).

    x (N, C, H, W), w (F, C, KH, KW), b (F,) -> out (N, F, H', W'), cache.
    Each output number is one filter laid over one window of the padded image:
    multiply elementwise, sum over (C, KH, KW), add the bias. The returned cache is
    built exactly as conv2d_forward builds it, so conv2d_backward accepts it.
    """
    ho, wo = _check_conv("conv2d_forward_naive", x, w, b, stride, pad)
    n, c, h, w_in = x.shape
    f, _, kh, kw = w.shape
    dtype = np.result_type(x, w, b)
    xp = np.zeros((n, c, h + 2 * pad, w_in + 2 * pad), dtype=dtype)
    xp[:, :, pad : pad + h, pad : pad + w_in] = x
    out = np.empty((n, f, ho, wo), dtype=dtype)
    for img in range(n):
        for flt in range(f):
            for row in range(ho):
                for col in range(wo):
                    top, left = row * stride, col * stride
                    window = xp[img, :, top : top + kh, left : left + kw]  # (C, KH, KW)
                    out[img, flt, row, col] = np.sum(window * w[flt]) + b[flt]
    cols = _im2col(x.astype(dtype, copy=False), kh, kw, stride, pad, ho, wo)
    return out, Conv2dCache(cols, w, x.shape, stride, pad)


def conv2d_backward(dout: np.ndarray, cache: Conv2dCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (N, F, H', W') -> dx (N, C, H, W), dw (F, C, KH, KW), db (F,).

    Forward was out = W @ cols + b with W (F, C*KH*KW) and cols (C*KH*KW, P), so
    dW = dout @ cols^T, db sums dout over every position, and dx = col2im(W^T @ dout).
    """
    cols, w, x_shape, stride, pad = cache
    n = x_shape[0]
    f, _, kh, kw = w.shape
    ho = _output_size(x_shape[2], kh, stride, pad)
    wo = _output_size(x_shape[3], kw, stride, pad)
    require_float("conv2d_backward", "dout", dout)
    require_shape("conv2d_backward", "dout", dout, [("N", n), ("F", f), ("H'", ho), ("W'", wo)])
    dtype = cols.dtype
    dout_mat = dout.astype(dtype, copy=False).transpose(1, 0, 2, 3).reshape(f, -1)  # (F, P)
    dw = (dout_mat @ cols.T).reshape(w.shape)
    db = dout_mat.sum(axis=1)
    dx = _input_grad(dout.astype(dtype, copy=False), w.astype(dtype, copy=False), x_shape, stride, pad)
    return np.ascontiguousarray(dx), dw, db


class MaxPool2dCache(NamedTuple):
    first: np.ndarray  # (N, C, H', W') int: row-major position (i*K + j) of each window's maximum
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    kernel: int
    stride: int


def _windows(fn: str, x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """Validate pooling arguments; x (N, C, H, W) -> read-only view (N, C, H', W', K, K)."""
    check_pool(fn, x, kernel, stride)
    return sliding_window_view(x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]


def max_pool2d_forward(
    x: np.ndarray, *, kernel: int = 2, stride: int = 2
) -> tuple[np.ndarray, MaxPool2dCache]:
    """Maximum over each kernel x kernel window. x (N, C, H, W) -> out (N, C, H', W'), cache.

    No padding. Note torch's F.max_pool2d defaults stride to the kernel size; ours
    defaults both to 2, the common "halve the image" layer.
    """
    win = _windows("max_pool2d_forward", x, kernel, stride)
    n, c, ho, wo = win.shape[:4]
    kk = kernel * kernel
    # Window offset first: reductions over a short *last* axis are slow in NumPy, over
    # the first axis they are a few elementwise passes over long arrays.
    offs = np.ascontiguousarray(win.transpose(4, 5, 0, 1, 2, 3)).reshape(kk, n, c, ho, wo)
    out = offs.max(axis=0)
    # Which offset held the maximum. Scanning from the last offset to the first leaves
    # the first maximum in row-major window order: the element torch's max_pool2d
    # routes the gradient to when several values tie.
    first = np.zeros(out.shape, dtype=np.intp)
    for q in range(kk - 1, -1, -1):
        first[offs[q] == out] = q
    return out, MaxPool2dCache(first, x.shape, kernel, stride)


def max_pool2d_backward(dout: np.ndarray, cache: MaxPool2dCache) -> np.ndarray:
    """dout (N, C, H', W') -> dx (N, C, H, W): each window's gradient goes to its maximum.

    One pass per kernel offset (i, j): the windows whose maximum sat there add their
    dout onto that pixel. ``+=`` accumulates, so a pixel that is the maximum of several
    overlapping windows (stride < kernel) receives all of their gradients.
    """
    first, x_shape, kernel, stride = cache
    n, c, ho, wo = first.shape
    require_float("max_pool2d_backward", "dout", dout)
    require_shape("max_pool2d_backward", "dout", dout, [("N", n), ("C", c), ("H'", ho), ("W'", wo)])
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for i in range(kernel):
        for j in range(kernel):
            hit = dout * (first == i * kernel + j)  # dout where this offset won, else 0
            dx[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride] += hit
    return dx


class AvgPool2dCache(NamedTuple):
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    kernel: int
    stride: int


def avg_pool2d_forward(
    x: np.ndarray, *, kernel: int = 2, stride: int = 2
) -> tuple[np.ndarray, AvgPool2dCache]:
    """Mean over each kernel x kernel window. x (N, C, H, W) -> out (N, C, H', W'), cache."""
    win = _windows("avg_pool2d_forward", x, kernel, stride)
    return win.mean(axis=(-2, -1)), AvgPool2dCache(x.shape, kernel, stride)


def avg_pool2d_backward(dout: np.ndarray, cache: AvgPool2dCache) -> np.ndarray:
    """dout (N, C, H', W') -> dx (N, C, H, W): every pixel of a window gets dout / kernel**2."""
    x_shape, kernel, stride = cache
    n, c, h, w = x_shape
    ho, wo = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    require_float("avg_pool2d_backward", "dout", dout)
    require_shape("avg_pool2d_backward", "dout", dout, [("N", n), ("C", c), ("H'", ho), ("W'", wo)])
    share = dout / (kernel * kernel)
    dx = np.zeros(x_shape, dtype=share.dtype)
    for i in range(kernel):
        for j in range(kernel):
            dx[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride] += share
    return dx
