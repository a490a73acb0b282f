"""Recurrent layers in NumPy: the vanilla (Elman) RNN and the LSTM, one step and a whole sequence.

Letters: N batch, T time steps, D input features, H hidden units. Sequences are
batch-first, x (N, T, D) -> h (N, T, H), as ``nn.RNN(batch_first=True)``. Row-vector
layout as everywhere in the course: a weight maps by ``x @ w``, so ``x_t @ wx`` is the
lecture's W_xh^T x_t written for a batch of row vectors.

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

Everything here is written for reading: a sequence function is the step function in a
loop over time, and its backward pass walks the same steps in reverse, carrying dh (and
dc for the LSTM) from step t+1 to step t. The package-level ``course_lib.np_ref``
``rnn_forward``/``rnn_backward``/``lstm_forward``/``lstm_backward`` are the speed-tuned
versions of ``fast_recurrent.py`` (the same numbers; tested equal to these). A cache goes
back to the backward of the module whose forward made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from course_lib.validation import check_recurrent, require_cache, require_float, require_shape

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


# ---------------------------------------------------------------------------------------------
# Vanilla RNN


class RNNStepCache(NamedTuple):
    x: np.ndarray  # (N, D)
    h_prev: np.ndarray  # (N, H)
    wx: np.ndarray  # (D, H)
    wh: np.ndarray  # (H, H)
    h: np.ndarray  # (N, H): tanh's derivative is 1 - h**2, so the output is all we keep


def rnn_step_forward(
    x: np.ndarray, h_prev: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, RNNStepCache]:
    """h = tanh(x @ wx + h_prev @ wh + b).

    x (N, D), h_prev (N, H), wx (D, H), wh (H, H), b (H,) -> h (N, H), cache.
    """
    check_recurrent("rnn_step_forward", x, h_prev, wx, wh, b, gates=1, h_name="h_prev")
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
    steps: tuple[RNNStepCache, ...]  # one per time step, t = 0 .. T-1


def rnn_forward(
    x: np.ndarray, h0: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, RNNCache]:
    """Run the RNN over a sequence: the step function at t = 0, 1, ..., T-1.

    x (N, T, D), h0 (N, H), wx (D, H), wh (H, H), b (H,) -> h (N, T, H) every hidden state, cache.
    """
    check_recurrent("rnn_forward", x, h0, wx, wh, b, gates=1, h_name="h0")
    h, hs, steps = h0, [], []
    for t in range(x.shape[1]):
        h, step = rnn_step_forward(x[:, t], h, wx, wh, b)
        hs.append(h)
        steps.append(step)
    return np.stack(hs, axis=1), RNNCache(tuple(steps))


def rnn_backward(
    dh: np.ndarray, cache: RNNCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time.

    dh (N, T, H), the upstream gradient on every hidden state ->
    dx (N, T, D), dh0 (N, H), dwx (D, H), dwh (H, H), db (H,).
    """
    fn = "rnn_backward"
    require_cache(fn, cache, RNNCache, "course_lib.np_ref.recurrent.rnn_forward")
    first = cache.steps[0]
    n, hidden = first.h.shape
    require_shape(fn, "dh", dh, [("N", n), ("T", len(cache.steps)), ("H", hidden)])
    dxs = []
    dwx, dwh, db = np.zeros_like(first.wx), np.zeros_like(first.wh), np.zeros(hidden, first.h.dtype)
    dh_prev = np.zeros_like(first.h)  # dL/dh_t arriving from step t+1 (none after the last step)
    for t in range(len(cache.steps) - 1, -1, -1):
        # h_t feeds the loss directly (dh[:, t]) and step t+1 (dh_prev): the two add up.
        dx_t, dh_prev, dwx_t, dwh_t, db_t = rnn_step_backward(dh[:, t] + dh_prev, cache.steps[t])
        dxs.append(dx_t)
        # The weights are shared by all steps, so their gradients sum over steps.
        dwx += dwx_t
        dwh += dwh_t
        db += db_t
    return np.stack(dxs[::-1], axis=1), dh_prev, dwx, dwh, db


# ---------------------------------------------------------------------------------------------
# LSTM


class LSTMStepCache(NamedTuple):
    x: np.ndarray  # (N, D)
    h_prev: np.ndarray  # (N, H)
    c_prev: np.ndarray  # (N, H)
    wx: np.ndarray  # (D, 4H)
    wh: np.ndarray  # (H, 4H)
    gates: np.ndarray  # (N, 4H) activated gates i, f, g, o
    tanh_c: np.ndarray  # (N, H) tanh(c)


def lstm_step_forward(
    x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, LSTMStepCache]:
    """One LSTM step, gates in torch's order i, f, g, o.

    x (N, D), h_prev (N, H), c_prev (N, H), wx (D, 4H), wh (H, 4H), b (4H,) ->
    h (N, H), c (N, H), cache.
    """
    fn = "lstm_step_forward"
    check_recurrent(fn, x, h_prev, wx, wh, b, gates=4, h_name="h_prev")
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
            dc_total * g * i * (1 - i),  # sigmoid'(a) = s (1 - s)
            dc_total * c_prev * f * (1 - f),
            dc_total * i * (1 - g * g),  # tanh'(a) = 1 - g^2
            dh * tanh_c * o * (1 - o),
        ],
        axis=1,
    )
    return da @ wx.T, da @ wh.T, dc_total * f, x.T @ da, h_prev.T @ da, da.sum(axis=0)


class LSTMCache(NamedTuple):
    steps: tuple[LSTMStepCache, ...]  # one per time step, t = 0 .. T-1


def lstm_forward(
    x: np.ndarray, h0: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, LSTMCache]:
    """Run the LSTM over a sequence from c_0 = 0: the step function at t = 0, 1, ..., T-1.

    x (N, T, D), h0 (N, H), wx (D, 4H), wh (H, 4H), b (4H,) -> h (N, T, H) every hidden state, cache.
    """
    check_recurrent("lstm_forward", x, h0, wx, wh, b, gates=4, h_name="h0")
    h, c = h0, np.zeros_like(h0)
    hs, steps = [], []
    for t in range(x.shape[1]):
        h, c, step = lstm_step_forward(x[:, t], h, c, wx, wh, b)
        hs.append(h)
        steps.append(step)
    return np.stack(hs, axis=1), LSTMCache(tuple(steps))


def lstm_backward(
    dh: np.ndarray, cache: LSTMCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backpropagation through time (c_0 = 0 is a constant, so there is no dc0).

    dh (N, T, H), the upstream gradient on every hidden state ->
    dx (N, T, D), dh0 (N, H), dwx (D, 4H), dwh (H, 4H), db (4H,).
    """
    fn = "lstm_backward"
    require_cache(fn, cache, LSTMCache, "course_lib.np_ref.recurrent.lstm_forward")
    first = cache.steps[0]
    n, hidden = first.tanh_c.shape
    require_shape(fn, "dh", dh, [("N", n), ("T", len(cache.steps)), ("H", hidden)])
    dxs = []
    dwx, dwh = np.zeros_like(first.wx), np.zeros_like(first.wh)
    db = np.zeros(4 * hidden, first.gates.dtype)
    dh_prev = np.zeros_like(first.tanh_c)  # dL/dh_t arriving from step t+1
    dc_prev = np.zeros_like(first.tanh_c)  # dL/dc_t arriving from step t+1 (c_t -> c_{t+1})
    for t in range(len(cache.steps) - 1, -1, -1):
        dx_t, dh_prev, dc_prev, dwx_t, dwh_t, db_t = lstm_step_backward(
            dh[:, t] + dh_prev, dc_prev, cache.steps[t]
        )
        dxs.append(dx_t)
        dwx += dwx_t
        dwh += dwh_t
        db += db_t
    return np.stack(dxs[::-1], axis=1), dh_prev, dwx, dwh, db


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
    if (
        isinstance(max_norm, bool)
        or not isinstance(max_norm, (int, float, np.floating, np.integer))
        or not 0 < float(max_norm) < np.inf
    ):
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
