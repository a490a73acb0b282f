"""The RNN and LSTM sequence functions tuned for speed: the package-level ``course_lib.np_ref`` names.

The same layers as ``recurrent.py`` (read that first: its docstring fixes the letters, the
equations and torch's conventions), computing the same numbers. What differs is only how
fast (``benchmarks/bench_recurrent.py`` times them against torch); each trick is commented
where it is used. In short: the input term x_t @ wx of every step is computed before the
time loop in one call; the states live in preallocated arrays in a feature-major layout,
step t holding h_t.T (H, N), because BLAS spreads (4H, H) @ (H, N) over its threads far
better than (N, H) @ (H, 4H) when N is small, and each gate is then one contiguous block;
the LSTM's i, f, o weight rows are halved so that one tanh activates all four gates;
backward computes everything that does not depend on the recurrence for all steps at
once, and each weight gradient is a single matmul after the loop. The loop itself does
one matmul and a few in-place element-wise updates per step.

The caches hold that internal layout, so they are their own types (``FastRNNCache``,
``FastLSTMCache``): a cache goes back to the backward of the module whose forward made it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from course_lib.validation import check_recurrent, require_cache, require_shape

__all__ = ["FastRNNCache", "FastLSTMCache", "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward"]


_HUGE_PAGE = 2 << 20  # bytes


def _workspace(dtype: np.dtype, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Uninitialised C-contiguous arrays of these shapes, carved out of ONE allocation.

    Why: the kernel maps fresh memory on first touch, one page fault per 4 KiB page, and
    for lstm_forward + lstm_backward those faults cost about a fifth of the run time.
    NumPy asks for transparent huge pages on allocations of 4 MiB and more, so one block,
    started on a 2 MiB boundary, is mapped with a handful of 2 MiB faults instead.
    """
    dtype = np.dtype(dtype)
    sizes = [math.prod(shape) for shape in shapes]
    nbytes = sum(sizes) * dtype.itemsize
    pad = _HUGE_PAGE if nbytes >= _HUGE_PAGE else 0  # smaller blocks cannot hold a huge page anyway
    raw = np.empty(nbytes + pad, np.uint8)
    start = -raw.ctypes.data % _HUGE_PAGE if pad else 0
    flat = raw[start : start + nbytes].view(dtype)
    arrays, offset = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        arrays.append(flat[offset : offset + size].reshape(shape))
        offset += size
    return arrays


def _time_major(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(N, T, K) -> contiguous (T, N, K): rows ordered by (t, n), as the weight gradients need."""
    return np.ascontiguousarray(a.transpose(1, 0, 2), dtype=dtype)


def _feature_major(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(N, T, K) -> contiguous (T, K, N): step t is one contiguous (K, N) block."""
    return np.ascontiguousarray(a.transpose(1, 2, 0), dtype=dtype)


def _batch_first(a: np.ndarray) -> np.ndarray:
    """(T, K, N) -> contiguous (N, T, K), the layout callers see."""
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def _rows_by_step(a: np.ndarray) -> np.ndarray:
    """(T, K, N) -> contiguous (K, T*N): one column per (t, n) pair, for the summed-over-steps matmuls."""
    return np.ascontiguousarray(a.transpose(1, 0, 2)).reshape(a.shape[1], -1)


def _sum_columns(a: np.ndarray) -> np.ndarray:
    """(K, M) -> (K,) row sums, as a matrix-vector product: BLAS does it ~4x faster than .sum(axis=1)."""
    return a @ np.ones(a.shape[1], a.dtype)


# ---------------------------------------------------------------------------------------------
# Vanilla RNN


class FastRNNCache(NamedTuple):
    x: np.ndarray  # (T, N, D) the input, time-major
    hs: np.ndarray  # (T+1, H, N) the states, feature-major: hs[0] = h0.T, hs[t+1] = h_t.T
    wx: np.ndarray  # (D, H)
    wh: np.ndarray  # (H, H)


def rnn_forward(
    x: np.ndarray, h0: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, FastRNNCache]:
    """Run the RNN over a sequence, as ``recurrent.rnn_forward``.

    x (N, T, D), h0 (N, H), wx (D, H), wh (H, H), b (H,) -> h (N, T, H) every hidden state, cache.
    """
    check_recurrent("rnn_forward", x, h0, wx, wh, b, gates=1, h_name="h0")
    n, steps, _ = x.shape
    hidden = wh.shape[0]
    dtype = np.result_type(x, h0, wx, wh, b)
    wx, wh = wx.astype(dtype, copy=False), wh.astype(dtype, copy=False)
    xt = _time_major(x, dtype)
    # Only h_{t-1} @ wh is sequential: the input term of every step is computed up front.
    a = np.matmul(wx.T, xt.transpose(0, 2, 1))  # (T, H, N): a[t] = (x_t @ wx).T
    a += np.repeat(b[:, None], n, axis=1)
    wh_t = np.ascontiguousarray(wh.T)
    hs = np.empty((steps + 1, hidden, n), dtype)
    hs[0] = h0.T
    for t in range(steps):
        np.dot(wh_t, hs[t], out=hs[t + 1])  # np.dot: ~1 us less call overhead than np.matmul
        hs[t + 1] += a[t]
        np.tanh(hs[t + 1], out=hs[t + 1])
    return _batch_first(hs[1:]), FastRNNCache(xt, hs, wx, wh)


def rnn_backward(
    dh: np.ndarray, cache: FastRNNCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time.

    dh (N, T, H), the upstream gradient on every hidden state ->
    dx (N, T, D), dh0 (N, H), dwx (D, H), dwh (H, H), db (H,).
    """
    require_cache("rnn_backward", cache, FastRNNCache, "course_lib.np_ref.rnn_forward")
    xt, hs, wx, wh = cache
    steps, n, d = xt.shape
    hidden = wh.shape[0]
    require_shape("rnn_backward", "dh", dh, [("N", n), ("T", steps), ("H", hidden)])
    # da[t] starts as tanh'(a_t) = 1 - h_t^2 for all steps at once and becomes dL/da_t in the loop.
    da = hs[1:] * hs[1:]
    np.subtract(1, da, out=da)
    dh_steps = _feature_major(dh, hs.dtype)
    carry = np.zeros((hidden, n), hs.dtype)  # dL/dh_t arriving from step t+1 (transposed)
    for t in range(steps - 1, -1, -1):
        carry += dh_steps[t]
        da[t] *= carry
        np.dot(wh, da[t], out=carry)
    # The weights are shared by all steps, so their gradients sum over steps: one matmul each.
    da2 = _rows_by_step(da)  # (H, T*N)
    dx = (da2.T @ wx.T).reshape(steps, n, d)
    dwx = da2 @ xt.reshape(-1, d)
    dwh = da2 @ _rows_by_step(hs[:-1]).T
    return (
        np.ascontiguousarray(dx.transpose(1, 0, 2)),
        np.ascontiguousarray(carry.T),
        np.ascontiguousarray(dwx.T),
        np.ascontiguousarray(dwh.T),
        _sum_columns(da2),
    )


# ---------------------------------------------------------------------------------------------
# LSTM


class FastLSTMCache(NamedTuple):
    x1: np.ndarray  # (T, N, D+1) the input, time-major, with a column of ones appended
    hs: np.ndarray  # (T+1, H, N) feature-major: hs[0] = h0.T, hs[t+1] = h_t.T
    cs: np.ndarray  # (T+1, H, N) feature-major: cs[0] = c0.T = 0, cs[t+1] = c_t.T
    gates: np.ndarray  # (T, 4H, N) activated gates i, f, g, o, feature-major
    tanh_c: np.ndarray  # (T, H, N) tanh(c_t).T
    wx: np.ndarray  # (D, 4H)
    wh: np.ndarray  # (H, 4H)


def lstm_forward(
    x: np.ndarray, h0: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, FastLSTMCache]:
    """Run the LSTM over a sequence from c_0 = 0, as ``recurrent.lstm_forward``.

    x (N, T, D), h0 (N, H), wx (D, 4H), wh (H, 4H), b (4H,) -> h (N, T, H) every hidden state, cache.
    """
    check_recurrent("lstm_forward", x, h0, wx, wh, b, gates=4, h_name="h0")
    n, steps, d = x.shape
    hid = wh.shape[0]
    dtype = np.result_type(x, h0, wx, wh, b)
    wx, wh = wx.astype(dtype, copy=False), wh.astype(dtype, copy=False)
    x1, gates, hs, cs, tanh_c = _workspace(
        dtype,
        (steps, n, d + 1),
        (steps, 4 * hid, n),
        (steps + 1, hid, n),
        (steps + 1, hid, n),
        (steps, hid, n),
    )
    # The bias trick: with a column of ones appended to x, "+ b" is one more row of the
    # weight matrix, and db comes out of the same matmul as dwx in backward.
    np.copyto(x1[:, :, :d], x.transpose(1, 0, 2))
    x1[:, :, d] = 1
    # sigmoid(z) = (1 + tanh(z / 2)) / 2. Halving the i, f, o rows of the weights (exact: a
    # power of two) lets ONE tanh call per step activate all four gates, without overflow.
    half = np.full((4 * hid, 1), 0.5, dtype)
    half[2 * hid : 3 * hid] = 1
    wxb_t = np.concatenate([wx.T, b[:, None]], axis=1)  # (4H, D+1)
    wxb_t *= half
    # Only h_{t-1} @ wh is sequential: the input term of every step is computed up front.
    np.matmul(wxb_t, x1.transpose(0, 2, 1), out=gates)  # gates[t] = (x_t @ wx + b).T, halved
    wh_t = np.ascontiguousarray(half * wh.T)
    hs[0] = h0.T
    cs[0] = 0
    rec = np.empty((4 * hid, n), dtype)
    ig = np.empty((hid, n), dtype)
    for t in range(steps):
        a = gates[t]
        np.dot(wh_t, hs[t], out=rec)  # np.dot: ~1 us less call overhead than np.matmul
        a += rec
        np.tanh(a, out=a)
        for s in (a[: 2 * hid], a[3 * hid :]):  # i, f and o: tanh(z/2) -> sigmoid(z)
            s *= 0.5
            s += 0.5
        i, f, g, o = a[:hid], a[hid : 2 * hid], a[2 * hid : 3 * hid], a[3 * hid :]
        np.multiply(f, cs[t], out=cs[t + 1])
        np.multiply(i, g, out=ig)
        cs[t + 1] += ig
        np.tanh(cs[t + 1], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=hs[t + 1])
    return _batch_first(hs[1:]), FastLSTMCache(x1, hs, cs, gates, tanh_c, wx, wh)


def lstm_backward(
    dh: np.ndarray, cache: FastLSTMCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time (c_0 = 0 is a constant, so there is no dc0).

    dh (N, T, H), the upstream gradient on every hidden state ->
    dx (N, T, D), dh0 (N, H), dwx (D, 4H), dwh (H, 4H), db (4H,).
    """
    require_cache("lstm_backward", cache, FastLSTMCache, "course_lib.np_ref.lstm_forward")
    x1, hs, cs, gates, tanh_c, wx, wh = cache
    steps, n, d = x1.shape[0], x1.shape[1], x1.shape[2] - 1
    hid = wh.shape[0]
    require_shape("lstm_backward", "dh", dh, [("N", n), ("T", steps), ("H", hid)])
    dtype = gates.dtype
    i, f, g, o = (gates[:, j * hid : (j + 1) * hid] for j in range(4))  # each (T, H, N)
    # Everything in dL/da_t except the two sequential factors dc_t and dh_t depends only on
    # forward values, so it is computed for all steps at once, before the loop:
    #   da_i = dc * [g i (1-i)],  da_f = dc * [c_prev f (1-f)],  da_g = dc * [i (1-g^2)],
    #   da_o = dh * [tanh_c o (1-o)]
    # The bracketed factors go into `da`, which the loop then multiplies in place.
    da, dtanh_c, dh_steps, da2, h_prev, dx_steps = _workspace(
        dtype, gates.shape, tanh_c.shape, tanh_c.shape, (4 * hid, steps * n), (steps * n, hid), (steps * n, d)
    )
    np.subtract(1, gates, out=da)
    da *= gates  # s (1 - s) in all four blocks; the g block is fixed next
    da_i, da_f, da_g, da_o = (da[:, j * hid : (j + 1) * hid] for j in range(4))
    np.multiply(g, g, out=da_g)
    np.subtract(1, da_g, out=da_g)
    da_i *= g
    da_f *= cs[:-1]
    da_g *= i
    da_o *= tanh_c
    # dc_t receives dh_t * [o_t (1 - tanh(c_t)^2)] through h_t = o_t tanh(c_t).
    np.multiply(tanh_c, tanh_c, out=dtanh_c)
    np.subtract(1, dtanh_c, out=dtanh_c)
    dtanh_c *= o
    np.copyto(dh_steps, dh.transpose(1, 2, 0))
    dh_t = np.empty((hid, n), dtype)
    dc = np.zeros((hid, n), dtype)  # dL/dc_t; holds dc_{t+1} * f_{t+1} between steps
    tmp = np.empty((hid, n), dtype)
    carry = np.zeros((hid, n), dtype)  # dL/dh_t arriving from step t+1
    da3 = da.reshape(steps, 4, hid, n)[:, :3]  # the i, f, g blocks, all scaled by dc
    for t in range(steps - 1, -1, -1):
        np.add(dh_steps[t], carry, out=dh_t)
        np.multiply(dh_t, dtanh_c[t], out=tmp)
        dc += tmp
        da3[t] *= dc
        da_o[t] *= dh_t
        dc *= f[t]
        np.dot(wh, da[t], out=carry)
    # The weights are shared by all steps, so their gradients sum over steps: one matmul each,
    # with one column per (t, n) pair: da2 (4H, T*N), rows of x1 and h_prev (T*N, D+1 or H).
    np.copyto(da2.reshape(4 * hid, steps, n), da.transpose(1, 0, 2))
    np.copyto(h_prev.reshape(steps, n, hid), hs[:-1].transpose(0, 2, 1))
    np.matmul(da2.T, wx.T, out=dx_steps)
    dwxb = da2 @ x1.reshape(-1, d + 1)  # (4H, D+1): [dwx.T | db]
    dwh = da2 @ h_prev
    # dh0, dwx and dwh are returned as transposed views (Fortran-ordered, same values): copying
    # them into C order would add ~0.1 ms, a few percent of the whole backward pass.
    dx = np.ascontiguousarray(dx_steps.reshape(steps, n, d).transpose(1, 0, 2))
    return dx, carry.T, dwxb[:, :d].T, dwh.T, dwxb[:, d].copy()
