"""Recurrent layers in NumPy: the vanilla (Elman) RNN and the LSTM, one step and a whole sequence.

Letters: N batch, T time steps, D input features, H hidden units. Sequences are
batch-first, x (N, T, D) -> h (N, T, H), as ``nn.RNN(batch_first=True)``. Row-vector
layout as everywhere in the course: a weight maps by ``x @ w``.

Vanilla RNN (one step)::

    h_t = tanh(x_t @ wx + h_{t-1} @ wh + b)        wx (D, H), wh (H, H), b (H,)

LSTM (one step), the four gates packed along the last axis in torch's order i, f, g, o::

    a   = x_t @ wx + h_{t-1} @ wh + b              a (N, 4H), wx (D, 4H), wh (H, 4H), b (4H,)
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)      input, forget, output gates
    g   = tanh(a_g)                                         candidate cell values
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Relation to torch: ``weight_ih = wx.T``, ``weight_hh = wh.T`` and ``bias_ih + bias_hh = b``
(torch keeps two biases that only ever appear summed). The sequence functions start the
LSTM from c_0 = 0, like torch when no ``(h0, c0)`` is given for c.

Backpropagation through time: ``rnn_backward`` / ``lstm_backward`` take the upstream
gradient on EVERY hidden state, dh (N, T, H) — e.g. from an output layer applied at each
step. A loss on the last state only passes dh with dh[:, :-1] = 0.

Gradient clipping by global norm, ``clip_grad_norm``, follows ``torch.nn.utils.clip_grad_norm_``.

The step functions are written for reading. The sequence functions are written for speed,
and say why at each trick: the input projection for all steps is one matmul, state lives
time-major in preallocated arrays, and the weight gradients are single matmuls after the
time loop, so the loop itself only does the (N, H) @ (H, G*H) recurrence and small
in-place element-wise updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from course_lib.validation import require_float, require_ndim, require_shape

__all__ = [
    "RNNStepCache",
    "RNNCache",
    "LSTMStepCache",
    "LSTMCache",
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "lstm_step_forward",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
    "clip_grad_norm",
]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # sigmoid(z) = (1 + tanh(z / 2)) / 2 is an identity, and tanh never overflows, whereas
    # 1 / (1 + exp(-z)) overflows (with a warning) for z below about -88 in float32.
    return 0.5 * np.tanh(0.5 * z) + 0.5


def _check_args(
    fn: str, x: np.ndarray, h_prev: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray,
    *, gates: int, h_name: str,
) -> None:
    """Validate x (N, D) or (N, T, D), h_prev (N, H), wx (D, G*H), wh (H, G*H), b (G*H,).

    H is read off wh's rows, so a wrong wh is blamed on wh and not on everything else.
    """
    for name, arr in (("x", x), (h_name, h_prev), ("wx", wx), ("wh", wh), ("b", b)):
        require_float(fn, name, arr)
    g_label = "H" if gates == 1 else f"{gates}H"
    require_ndim(fn, "wh", wh, 2, f"(H, {g_label})")
    hidden = wh.shape[0]
    require_shape(fn, "wh", wh, [("H", hidden), (g_label, gates * hidden)])
    if h_name == "h0":
        require_ndim(fn, "x", x, 3, "(N, T, D)")
        if x.shape[1] == 0:
            raise ValueError(f"{fn}: argument 'x' must have at least one time step, got shape {x.shape}")
    else:
        require_ndim(fn, "x", x, 2, "(N, D)")
    n, d = x.shape[0], x.shape[-1]
    require_shape(fn, "wx", wx, [("D", d), (g_label, gates * hidden)])
    require_shape(fn, "b", b, [(g_label, gates * hidden)])
    require_shape(fn, h_name, h_prev, [("N", n), ("H", hidden)])


def _time_major(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(N, T, K) -> contiguous (T, N, K): each step's (N, K) slice is then one block of memory."""
    return np.ascontiguousarray(a.transpose(1, 0, 2), dtype=dtype)


def _batch_major(a: np.ndarray) -> np.ndarray:
    """(T, N, K) -> contiguous (N, T, K), the layout callers see."""
    return np.ascontiguousarray(a.transpose(1, 0, 2))


# ---------------------------------------------------------------------------------------------
# Vanilla RNN


class RNNStepCache(NamedTuple):
    x: np.ndarray       # (N, D)
    h_prev: np.ndarray  # (N, H)
    wx: np.ndarray      # (D, H)
    wh: np.ndarray      # (H, H)
    h: np.ndarray       # (N, H): tanh's derivative is 1 - h**2, so the output is all we keep


def rnn_step_forward(
    x: np.ndarray, h_prev: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, RNNStepCache]:
    """h = tanh(x @ wx + h_prev @ wh + b).

    x (N, D), h_prev (N, H), wx (D, H), wh (H, H), b (H,) -> h (N, H), cache.
    """
    _check_args("rnn_step_forward", x, h_prev, wx, wh, b, gates=1, h_name="h_prev")
    h = np.tanh(x @ wx + h_prev @ wh + b)
    return h, RNNStepCache(x, h_prev, wx, wh, h)


def rnn_step_backward(
    dh: np.ndarray, cache: RNNStepCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """dh (N, H) -> dx (N, D), dh_prev (N, H), dwx (D, H), dwh (H, H), db (H,)."""
    x, h_prev, wx, wh, h = cache
    require_shape("rnn_step_backward", "dh", dh, [("N", h.shape[0]), ("H", h.shape[1])])
    da = dh * (1 - h * h)  # back through tanh to the pre-activation
    return da @ wx.T, da @ wh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


class RNNCache(NamedTuple):
    x: np.ndarray   # (T, N, D) time-major copy of the input
    hs: np.ndarray  # (T+1, N, H) time-major: hs[0] = h0, hs[t+1] = h_t
    wx: np.ndarray  # (D, H)
    wh: np.ndarray  # (H, H)


def rnn_forward(
    x: np.ndarray, h0: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, RNNCache]:
    """Run the RNN over a sequence.

    x (N, T, D), h0 (N, H), wx (D, H), wh (H, H), b (H,) -> h (N, T, H) every hidden state, cache.
    """
    _check_args("rnn_forward", x, h0, wx, wh, b, gates=1, h_name="h0")
    n, steps, d = x.shape
    hidden = wh.shape[0]
    dtype = np.result_type(x, h0, wx, wh, b)
    wx, wh = wx.astype(dtype, copy=False), wh.astype(dtype, copy=False)
    xt = _time_major(x, dtype)
    # Only h_{t-1} @ wh is sequential: the input term of every step is one large matmul.
    a = (xt.reshape(-1, d) @ wx).reshape(steps, n, hidden)
    a += b
    hs = np.empty((steps + 1, n, hidden), dtype)
    hs[0] = h0
    for t in range(steps):
        np.matmul(hs[t], wh, out=hs[t + 1])
        hs[t + 1] += a[t]
        np.tanh(hs[t + 1], out=hs[t + 1])
    return _batch_major(hs[1:]), RNNCache(xt, hs, wx, wh)


def rnn_backward(
    dh: np.ndarray, cache: RNNCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time.

    dh (N, T, H), the upstream gradient on every hidden state ->
    dx (N, T, D), dh0 (N, H), dwx (D, H), dwh (H, H), db (H,).
    """
    xt, hs, wx, wh = cache
    steps, n, d = xt.shape
    hidden = wh.shape[0]
    require_shape("rnn_backward", "dh", dh, [("N", n), ("T", steps), ("H", hidden)])
    # da[t] starts as tanh'(a_t) = 1 - h_t^2 for all steps at once and becomes dL/da_t in the loop.
    da = hs[1:] * hs[1:]
    np.subtract(1, da, out=da)
    dh_t = _time_major(dh, hs.dtype)
    carry = np.zeros((n, hidden), hs.dtype)  # dL/dh_t arriving from step t+1
    for t in range(steps - 1, -1, -1):
        carry += dh_t[t]
        da[t] *= carry
        np.matmul(da[t], wh.T, out=carry)
    # The weights are shared by all steps, so their gradients sum over steps: one matmul each.
    da2 = da.reshape(-1, hidden)
    dx = (da2 @ wx.T).reshape(steps, n, d)
    dwx = xt.reshape(-1, d).T @ da2
    dwh = hs[:-1].reshape(-1, hidden).T @ da2
    return _batch_major(dx), carry, dwx, dwh, da2.sum(axis=0)


# ---------------------------------------------------------------------------------------------
# LSTM


class LSTMStepCache(NamedTuple):
    x: np.ndarray       # (N, D)
    h_prev: np.ndarray  # (N, H)
    c_prev: np.ndarray  # (N, H)
    wx: np.ndarray      # (D, 4H)
    wh: np.ndarray      # (H, 4H)
    gates: np.ndarray   # (N, 4H) activated gates i, f, g, o
    tanh_c: np.ndarray  # (N, H) tanh(c)


def lstm_step_forward(
    x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, LSTMStepCache]:
    """One LSTM step, gates in torch's order i, f, g, o.

    x (N, D), h_prev (N, H), c_prev (N, H), wx (D, 4H), wh (H, 4H), b (4H,) ->
    h (N, H), c (N, H), cache.
    """
    fn = "lstm_step_forward"
    _check_args(fn, x, h_prev, wx, wh, b, gates=4, h_name="h_prev")
    require_float(fn, "c_prev", c_prev)
    require_shape(fn, "c_prev", c_prev, [("N", x.shape[0]), ("H", wh.shape[0])])
    a = x @ wx + h_prev @ wh + b
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    i, f, g, o = _sigmoid(a_i), _sigmoid(a_f), np.tanh(a_g), _sigmoid(a_o)
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    gates = np.concatenate([i, f, g, o], axis=1)
    return h, c, LSTMStepCache(x, h_prev, c_prev, wx, wh, gates, tanh_c)


def lstm_step_backward(
    dh: np.ndarray, dc: np.ndarray, cache: LSTMStepCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """dh (N, H), dc (N, H) upstream gradients on h and c ->
    dx (N, D), dh_prev (N, H), dc_prev (N, H), dwx (D, 4H), dwh (H, 4H), db (4H,).
    """
    x, h_prev, c_prev, wx, wh, gates, tanh_c = cache
    for name, arr in (("dh", dh), ("dc", dc)):
        require_shape("lstm_step_backward", name, arr, [("N", c_prev.shape[0]), ("H", c_prev.shape[1])])
    i, f, g, o = np.split(gates, 4, axis=1)
    # c reaches the loss directly (dc) and through h = o * tanh(c).
    dc_total = dc + dh * o * (1 - tanh_c * tanh_c)
    da = np.concatenate(
        [
            dc_total * g * i * (1 - i),        # sigmoid'(a) = s (1 - s)
            dc_total * c_prev * f * (1 - f),
            dc_total * i * (1 - g * g),        # tanh'(a) = 1 - g^2
            dh * tanh_c * o * (1 - o),
        ],
        axis=1,
    )
    return da @ wx.T, da @ wh.T, dc_total * f, x.T @ da, h_prev.T @ da, da.sum(axis=0)


class LSTMCache(NamedTuple):
    x: np.ndarray       # (T, N, D) time-major copy of the input
    hs: np.ndarray      # (T+1, N, H) time-major: hs[0] = h0, hs[t+1] = h_t
    cs: np.ndarray      # (T+1, N, H) time-major: cs[0] = c0 = 0, cs[t+1] = c_t
    gates: np.ndarray   # (T, N, 4H) activated gates i, f, g, o
    tanh_c: np.ndarray  # (T, N, H) tanh(c_t)
    wx: np.ndarray      # (D, 4H)
    wh: np.ndarray      # (H, 4H)


def lstm_forward(
    x: np.ndarray, h0: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, LSTMCache]:
    """Run the LSTM over a sequence from c_0 = 0.

    x (N, T, D), h0 (N, H), wx (D, 4H), wh (H, 4H), b (4H,) -> h (N, T, H) every hidden state, cache.
    """
    _check_args("lstm_forward", x, h0, wx, wh, b, gates=4, h_name="h0")
    n, steps, d = x.shape
    hidden = wh.shape[0]
    dtype = np.result_type(x, h0, wx, wh, b)
    wx, wh = wx.astype(dtype, copy=False), wh.astype(dtype, copy=False)
    xt = _time_major(x, dtype)
    # sigmoid(z) = (1 + tanh(z / 2)) / 2. Halving the i, f, o columns of the weights (exact: a
    # power of two) makes ONE tanh call per step activate all four gates, without overflow.
    half = np.full(4 * hidden, 0.5, dtype)
    half[2 * hidden:3 * hidden] = 1
    gates = (xt.reshape(-1, d) @ (wx * half)).reshape(steps, n, 4 * hidden)
    gates += b * half
    wh_half = wh * half
    hs = np.empty((steps + 1, n, hidden), dtype)
    hs[0] = h0
    cs = np.empty_like(hs)
    cs[0] = 0
    tanh_c = np.empty((steps, n, hidden), dtype)
    rec = np.empty((n, 4 * hidden), dtype)
    ig = np.empty((n, hidden), dtype)
    for t in range(steps):
        a = gates[t]
        np.matmul(hs[t], wh_half, out=rec)
        a += rec
        np.tanh(a, out=a)
        i_f, g, o = a[:, :2 * hidden], a[:, 2 * hidden:3 * hidden], a[:, 3 * hidden:]
        for s in (i_f, o):  # tanh(z/2) -> sigmoid(z)
            s *= 0.5
            s += 0.5
        np.multiply(a[:, hidden:2 * hidden], cs[t], out=cs[t + 1])
        np.multiply(a[:, :hidden], g, out=ig)
        cs[t + 1] += ig
        np.tanh(cs[t + 1], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=hs[t + 1])
    return _batch_major(hs[1:]), LSTMCache(xt, hs, cs, gates, tanh_c, wx, wh)


def lstm_backward(
    dh: np.ndarray, cache: LSTMCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time (c_0 = 0 is a constant, so there is no dc0).

    dh (N, T, H), the upstream gradient on every hidden state ->
    dx (N, T, D), dh0 (N, H), dwx (D, 4H), dwh (H, 4H), db (4H,).
    """
    xt, hs, cs, gates, tanh_c, wx, wh = cache
    steps, n, d = xt.shape
    hidden = wh.shape[0]
    require_shape("lstm_backward", "dh", dh, [("N", n), ("T", steps), ("H", hidden)])
    dtype = gates.dtype
    g4 = gates.reshape(steps, n, 4, hidden)
    i, f, g, o = (g4[:, :, k] for k in range(4))
    # Everything in dL/da_t except the two sequential factors dc_t and dh_t depends only on
    # forward values, so it is computed for all steps at once, before the loop:
    #   da_i = dc * [g i (1-i)],  da_f = dc * [c_prev f (1-f)],  da_g = dc * [i (1-g^2)],
    #   da_o = dh * [tanh_c o (1-o)]
    # The bracketed factors go into `da`, which the loop then multiplies in place.
    da = np.subtract(1, gates)
    da *= gates  # s (1 - s) in all four blocks; the g block is fixed next
    da4 = da.reshape(steps, n, 4, hidden)
    np.multiply(g, g, out=da4[:, :, 2])
    np.subtract(1, da4[:, :, 2], out=da4[:, :, 2])
    da4[:, :, 0] *= g
    da4[:, :, 1] *= cs[:-1]
    da4[:, :, 2] *= i
    da4[:, :, 3] *= tanh_c
    # dc_t receives dh_t * o_t * (1 - tanh(c_t)^2) through h_t = o_t tanh(c_t).
    k = tanh_c * tanh_c
    np.subtract(1, k, out=k)
    k *= o
    dh_t = _time_major(dh, dtype)
    dh_cur = np.empty((n, hidden), dtype)
    dc = np.zeros((n, hidden), dtype)  # dL/dc_t; holds dc_{t+1} * f_{t+1} between steps
    tmp = np.empty((n, hidden), dtype)
    carry = np.zeros((n, hidden), dtype)  # dL/dh_t arriving from step t+1
    for t in range(steps - 1, -1, -1):
        np.add(dh_t[t], carry, out=dh_cur)
        np.multiply(dh_cur, k[t], out=tmp)
        dc += tmp
        da4[t, :, :3] *= dc[:, None, :]
        da4[t, :, 3] *= dh_cur
        dc *= f[t]
        np.matmul(da[t], wh.T, out=carry)
    da2 = da.reshape(-1, 4 * hidden)
    dx = (da2 @ wx.T).reshape(steps, n, d)
    dwx = xt.reshape(-1, d).T @ da2
    dwh = hs[:-1].reshape(-1, hidden).T @ da2
    return _batch_major(dx), carry, dwx, dwh, da2.sum(axis=0)


# ---------------------------------------------------------------------------------------------
# Gradient clipping


def clip_grad_norm(grads: Sequence[np.ndarray], *, max_norm: float) -> tuple[list[np.ndarray], float]:
    """Rescale gradients so that their GLOBAL L2 norm is at most ``max_norm``.

    grads: arrays of any shapes -> (clipped copies, same shapes and dtypes; total_norm, the
    norm before clipping). As ``torch.nn.utils.clip_grad_norm_``: total_norm is the L2 norm
    of all entries of all arrays together, and every array is multiplied by
    max_norm / (total_norm + 1e-6) only when that factor is below 1. One common factor keeps
    the direction of the full gradient, which clipping each array (or each entry) would not.
    Unlike torch, the inputs are not modified.
    """
    fn = "clip_grad_norm"
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.floating, np.integer)) \
            or not 0 < float(max_norm) < np.inf:
        raise ValueError(f"{fn}: argument 'max_norm' must be a positive finite number, got {max_norm!r}")
    if isinstance(grads, np.ndarray) or not isinstance(grads, Sequence):
        raise ValueError(f"{fn}: argument 'grads' must be a list of arrays, got {type(grads).__name__}")
    for k, g in enumerate(grads):
        require_float(fn, f"grads[{k}]", g)
    # Squares summed in float64: float32 squares of entries above ~1e19 would overflow.
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)))
    scale = float(max_norm) / (total + 1e-6)
    if scale < 1:
        return [g * g.dtype.type(scale) for g in grads], total
    return [g.copy() for g in grads], total
