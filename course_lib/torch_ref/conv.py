"""2-D convolution and pooling layers, forward and backward, in torch ops.

The same API, letters and conventions as ``course_lib.np_ref.conv`` (read its
docstring): cross-correlation like F.conv2d, zero padding, int ``stride``/``pad``
for both axes, im2col + one matrix product forward, two more products backward. The code
mirrors the plain NumPy reference (``np_ref/conv.py``) line for line; backward passes are explicit tensor
arithmetic (no autograd), so torch.autograd and F.conv2d stay independent oracles.
Tensors stay on the device they arrive on. ``conv_output_size`` is the NumPy path's
function, re-exported (it handles plain ints only).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from course_lib.np_ref.conv import conv_output_size
from course_lib.validation import check_conv, check_pool, require_float, require_shape

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


class Conv2dCache(NamedTuple):
    cols: torch.Tensor  # (C*KH*KW, P): im2col of the padded input, needed for dw
    w: torch.Tensor  # (F, C, KH, KW): needed for dx
    x_shape: tuple[int, ...]  # (N, C, H, W): the shape dx must have
    stride: int
    pad: int


def _check_conv(
    fn: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int, pad: int
) -> tuple[int, int]:
    """The shared checks of ``course_lib.validation``, plus one torch needs: a shared dtype; -> (H', W')."""
    check_conv(fn, x, w, b, stride, pad)
    # The kernel fits (checked above), so the formula of conv_output_size is safe here.
    ho = (x.shape[2] + 2 * pad - w.shape[2]) // stride + 1
    wo = (x.shape[3] + 2 * pad - w.shape[3]) // stride + 1
    if not x.dtype == w.dtype == b.dtype:
        # NumPy would silently promote; torch's matmul refuses, so say which argument differs.
        raise ValueError(
            f"{fn}: arguments 'x', 'w', 'b' must share one dtype, got {x.dtype}, {w.dtype}, {b.dtype}"
        )
    return ho, wo


def _im2col(x: torch.Tensor, kh: int, kw: int, stride: int, pad: int, ho: int, wo: int) -> torch.Tensor:
    """x (N, C, H, W) -> cols (C*KH*KW, P); row (c, i, j), column (n, h, w) holds xpad[n, c, h*s+i, w*s+j]."""
    n, c, h, w = x.shape
    s = stride
    xp = x.new_zeros((n, c, h + 2 * pad, w + 2 * pad))
    xp[:, :, pad : pad + h, pad : pad + w] = x
    cols = x.new_empty((c, kh, kw, n, ho, wo))
    for i in range(kh):
        for j in range(kw):
            # Kernel offset (i, j) sees one strided sub-image of every padded image.
            window = xp[:, :, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s]  # (N, C, H', W')
            cols[:, i, j] = window.permute(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * ho * wo)


def _input_grad(
    dout: torch.Tensor, w: torch.Tensor, x_shape: tuple[int, ...], stride: int, pad: int
) -> torch.Tensor:
    """dx (N, C, H, W) of the convolution, from dout (N, F, H', W') and w (F, C, KH, KW).

    col2im(W^T @ dout): output pixel (r, q) sends w[f, c, i, j] * dout[n, f, r, q] back to
    the input pixel (r*s + i - pad, q*s + j - pad) it was computed from, and all of these
    contributions add up.
    """
    n, c, h, w_in = x_shape
    f, _, kh, kw = w.shape
    ho, wo = dout.shape[2:]
    s = stride
    dout_mat = dout.permute(1, 0, 2, 3).reshape(f, -1)  # (F, P)
    dcols = (w.reshape(f, -1).T @ dout_mat).reshape(c, kh, kw, n, ho, wo)
    dxp = dout.new_zeros((n, c, h + 2 * pad, w_in + 2 * pad))
    for i in range(kh):
        for j in range(kw):
            # += : a pixel inside several windows (stride < kernel) collects from each.
            dxp[:, :, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s] += dcols[:, i, j].permute(
                1, 0, 2, 3
            )
    # Gradients that fall on the zero padding belong to no input pixel: crop them.
    return dxp[:, :, pad : pad + h, pad : pad + w_in]


def conv2d_forward(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, stride: int = 1, pad: int = 0
) -> tuple[torch.Tensor, Conv2dCache]:
    """2-D convolution (cross-correlation, like F.conv2d), vectorised with im2col.

    x (N, C, H, W), w (F, C, KH, KW), b (F,) -> out (N, F, H', W'), cache.
    """
    ho, wo = _check_conv("conv2d_forward", x, w, b, stride, pad)
    n = x.shape[0]
    f, _, kh, kw = w.shape
    cols = _im2col(x, kh, kw, stride, pad, ho, wo)  # (C*KH*KW, P)
    out = w.reshape(f, -1) @ cols + b[:, None]  # (F, P): one matrix product
    out = out.reshape(f, n, ho, wo).permute(1, 0, 2, 3).contiguous()
    return out, Conv2dCache(cols, w, tuple(x.shape), stride, pad)


def conv2d_forward_naive(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, stride: int = 1, pad: int = 0
) -> tuple[torch.Tensor, Conv2dCache]:
    """The same layer as conv2d_forward, written as the textbook loops (slow; for reading).

    x (N, C, H, W), w (F, C, KH, KW), b (F,) -> out (N, F, H', W'), cache (the same
    cache conv2d_forward builds, so conv2d_backward accepts it).
    """
    ho, wo = _check_conv("conv2d_forward_naive", x, w, b, stride, pad)
    n, c, h, w_in = x.shape
    f, _, kh, kw = w.shape
    xp = x.new_zeros((n, c, h + 2 * pad, w_in + 2 * pad))
    xp[:, :, pad : pad + h, pad : pad + w_in] = x
    out = x.new_empty((n, f, ho, wo))
    for img in range(n):
        for flt in range(f):
            for row in range(ho):
                for col in range(wo):
                    top, left = row * stride, col * stride
                    window = xp[img, :, top : top + kh, left : left + kw]  # (C, KH, KW)
                    out[img, flt, row, col] = (window * w[flt]).sum() + b[flt]
    cols = _im2col(x, kh, kw, stride, pad, ho, wo)
    return out, Conv2dCache(cols, w, tuple(x.shape), stride, pad)


def conv2d_backward(
    dout: torch.Tensor, cache: Conv2dCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dout (N, F, H', W') -> dx (N, C, H, W), dw (F, C, KH, KW), db (F,).

    Forward was out = W @ cols + b with W (F, C*KH*KW) and cols (C*KH*KW, P), so
    dW = dout @ cols^T, db sums dout over every position, and dx = col2im(W^T @ dout).
    """
    cols, w, x_shape, stride, pad = cache
    n = x_shape[0]
    f, _, kh, kw = w.shape
    ho = (x_shape[2] + 2 * pad - kh) // stride + 1
    wo = (x_shape[3] + 2 * pad - kw) // stride + 1
    require_float("conv2d_backward", "dout", dout)
    require_shape("conv2d_backward", "dout", dout, [("N", n), ("F", f), ("H'", ho), ("W'", wo)])
    dout_mat = dout.permute(1, 0, 2, 3).reshape(f, -1)  # (F, P)
    dw = (dout_mat @ cols.T).reshape(w.shape)
    db = dout_mat.sum(dim=1)
    dx = _input_grad(dout, w, x_shape, stride, pad)
    return dx.contiguous(), dw, db


class MaxPool2dCache(NamedTuple):
    first: torch.Tensor  # (N, C, H', W') int64: row-major position (i*K + j) of each window's maximum
    x_shape: tuple[int, ...]  # (N, C, H, W)
    kernel: int
    stride: int


def _windows(fn: str, x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Validate pooling arguments (``validation.check_pool``); x (N, C, H, W) -> view (N, C, H', W', K, K)."""
    check_pool(fn, x, kernel, stride)
    return x.unfold(2, kernel, stride).unfold(3, kernel, stride)


def max_pool2d_forward(
    x: torch.Tensor, *, kernel: int = 2, stride: int = 2
) -> tuple[torch.Tensor, MaxPool2dCache]:
    """Maximum over each kernel x kernel window. x (N, C, H, W) -> out (N, C, H', W'), cache.

    No padding; both kernel and stride default to 2 (F.max_pool2d defaults stride to kernel).
    """
    win = _windows("max_pool2d_forward", x, kernel, stride)
    n, c, ho, wo = win.shape[:4]
    flat = win.reshape(n, c, ho, wo, kernel * kernel)
    # torch.argmax returns the first maximum in row-major window order, the element
    # F.max_pool2d routes the gradient to when several values tie.
    first = flat.argmax(dim=-1)
    out = flat.gather(-1, first[..., None])[..., 0]
    return out, MaxPool2dCache(first, tuple(x.shape), kernel, stride)


def max_pool2d_backward(dout: torch.Tensor, cache: MaxPool2dCache) -> torch.Tensor:
    """dout (N, C, H', W') -> dx (N, C, H, W): each window's gradient goes to its maximum.

    One pass per kernel offset; ``+=`` accumulates where overlapping windows share a maximum.
    """
    first, x_shape, kernel, stride = cache
    n, c, ho, wo = first.shape
    require_float("max_pool2d_backward", "dout", dout)
    require_shape("max_pool2d_backward", "dout", dout, [("N", n), ("C", c), ("H'", ho), ("W'", wo)])
    dx = dout.new_zeros(x_shape)
    for i in range(kernel):
        for j in range(kernel):
            hit = torch.where(first == i * kernel + j, dout, 0)
            dx[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride] += hit
    return dx


class AvgPool2dCache(NamedTuple):
    x_shape: tuple[int, ...]  # (N, C, H, W)
    kernel: int
    stride: int


def avg_pool2d_forward(
    x: torch.Tensor, *, kernel: int = 2, stride: int = 2
) -> tuple[torch.Tensor, AvgPool2dCache]:
    """Mean over each kernel x kernel window. x (N, C, H, W) -> out (N, C, H', W'), cache."""
    win = _windows("avg_pool2d_forward", x, kernel, stride)
    return win.mean(dim=(-2, -1)), AvgPool2dCache(tuple(x.shape), kernel, stride)


def avg_pool2d_backward(dout: torch.Tensor, cache: AvgPool2dCache) -> torch.Tensor:
    """dout (N, C, H', W') -> dx (N, C, H, W): every pixel of a window gets dout / kernel**2."""
    x_shape, kernel, stride = cache
    n, c, h, w = x_shape
    ho, wo = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    require_float("avg_pool2d_backward", "dout", dout)
    require_shape("avg_pool2d_backward", "dout", dout, [("N", n), ("C", c), ("H'", ho), ("W'", wo)])
    share = dout / (kernel * kernel)
    dx = dout.new_zeros(x_shape)
    for i in range(kernel):
        for j in range(kernel):
            dx[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride] += share
    return dx
