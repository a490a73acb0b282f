"""Recurrent layers in torch ops: the vanilla (Elman) RNN and the LSTM, backward written out.

Same API, shapes and conventions as ``course_lib.np_ref.recurrent`` (read its docstring for
the equations); no autograd, tensors stay on the device they arrive on.

Letters: N batch, T time steps, D input features, H hidden units. Sequences are batch-first,
x (N, T, D) -> h (N, T, H). LSTM gates are packed in torch's order i, f, g, o:
wx (D, 4H) = ``weight_ih.T``, wh (H, 4H) = ``weight_hh.T``, b (4H,) = ``bias_ih + bias_hh``.
The sequence functions start the LSTM from c_0 = 0; their backward passes take the upstream
gradient on every hidden state, dh (N, T, H).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from course_lib.validation import check_recurrent, require_float, require_shape

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

Tensor = torch.Tensor


def _check_args(
    fn: str,
    x: Tensor,
    h_prev: Tensor,
    wx: Tensor,
    wh: Tensor,
    b: Tensor,
    *,
    gates: int,
    h_name: str,
) -> None:
    """The shared checks of x, h_prev, wx, wh, b (``validation.check_recurrent``), plus one torch needs: a shared dtype."""
    check_recurrent(fn, x, h_prev, wx, wh, b, gates=gates, h_name=h_name)  # duck-typed: serves both paths
    named = (("x", x), (h_name, h_prev), ("wx", wx), ("wh", wh), ("b", b))
    if len({arr.dtype for _, arr in named}) > 1:
        # NumPy would silently promote; torch's matmul refuses, so say which arguments differ.
        got = ", ".join(f"{name}={arr.dtype}" for name, arr in named)
        raise ValueError(
            f"{fn}: arguments {', '.join(repr(k) for k, _ in named)} must share one dtype, got {got}"
        )


# ---------------------------------------------------------------------------------------------
# Vanilla RNN


class RNNStepCache(NamedTuple):
    x: Tensor  # (N, D)
    h_prev: Tensor  # (N, H)
    wx: Tensor  # (D, H)
    wh: Tensor  # (H, H)
    h: Tensor  # (N, H): tanh's derivative is 1 - h**2, so the output is all we keep


def rnn_step_forward(
    x: Tensor, h_prev: Tensor, wx: Tensor, wh: Tensor, b: Tensor
) -> tuple[Tensor, RNNStepCache]:
    """h = tanh(x @ wx + h_prev @ wh + b).

    x (N, D), h_prev (N, H), wx (D, H), wh (H, H), b (H,) -> h (N, H), cache.
    """
    _check_args("rnn_step_forward", x, h_prev, wx, wh, b, gates=1, h_name="h_prev")
    h = torch.tanh(x @ wx + h_prev @ wh + b)
    return h, RNNStepCache(x, h_prev, wx, wh, h)


def rnn_step_backward(dh: Tensor, cache: RNNStepCache) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """dh (N, H) -> dx (N, D), dh_prev (N, H), dwx (D, H), dwh (H, H), db (H,)."""
    x, h_prev, wx, wh, h = cache
    require_shape("rnn_step_backward", "dh", dh, [("N", h.shape[0]), ("H", h.shape[1])])
    da = dh * (1 - h * h)  # back through tanh to the pre-activation
    return da @ wx.T, da @ wh.T, x.T @ da, h_prev.T @ da, da.sum(dim=0)


class RNNCache(NamedTuple):
    x: Tensor  # (T, N, D) time-major copy of the input
    hs: Tensor  # (T+1, N, H) time-major: hs[0] = h0, hs[t+1] = h_t
    wx: Tensor  # (D, H)
    wh: Tensor  # (H, H)


def rnn_forward(x: Tensor, h0: Tensor, wx: Tensor, wh: Tensor, b: Tensor) -> tuple[Tensor, RNNCache]:
    """Run the RNN over a sequence.

    x (N, T, D), h0 (N, H), wx (D, H), wh (H, H), b (H,) -> h (N, T, H) every hidden state, cache.
    """
    _check_args("rnn_forward", x, h0, wx, wh, b, gates=1, h_name="h0")
    n, steps, d = x.shape
    hidden = wh.shape[0]
    xt = x.transpose(0, 1).contiguous()
    # Only h_{t-1} @ wh is sequential: the input term of every step is one large matmul.
    a = torch.addmm(b, xt.reshape(-1, d), wx).reshape(steps, n, hidden)
    hs = x.new_empty((steps + 1, n, hidden))
    hs[0] = h0
    for t in range(steps):
        torch.tanh(torch.addmm(a[t], hs[t], wh), out=hs[t + 1])
    return hs[1:].transpose(0, 1).contiguous(), RNNCache(xt, hs, wx, wh)


def rnn_backward(dh: Tensor, cache: RNNCache) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Backpropagation through time.

    dh (N, T, H), the upstream gradient on every hidden state ->
    dx (N, T, D), dh0 (N, H), dwx (D, H), dwh (H, H), db (H,).
    """
    xt, hs, wx, wh = cache
    steps, n, d = xt.shape
    hidden = wh.shape[0]
    require_shape("rnn_backward", "dh", dh, [("N", n), ("T", steps), ("H", hidden)])
    # da[t] starts as tanh'(a_t) = 1 - h_t^2 for all steps at once and becomes dL/da_t in the loop.
    da = 1 - hs[1:] * hs[1:]
    dh_t = dh.transpose(0, 1)
    carry = torch.zeros_like(hs[0])  # dL/dh_t arriving from step t+1
    for t in range(steps - 1, -1, -1):
        da[t] *= carry + dh_t[t]
        carry = da[t] @ wh.T
    # The weights are shared by all steps, so their gradients sum over steps: one matmul each.
    da2 = da.reshape(-1, hidden)
    dx = (da2 @ wx.T).reshape(steps, n, d).transpose(0, 1).contiguous()
    return dx, carry, xt.reshape(-1, d).T @ da2, hs[:-1].reshape(-1, hidden).T @ da2, da2.sum(dim=0)


# ---------------------------------------------------------------------------------------------
# LSTM


class LSTMStepCache(NamedTuple):
    x: Tensor  # (N, D)
    h_prev: Tensor  # (N, H)
    c_prev: Tensor  # (N, H)
    wx: Tensor  # (D, 4H)
    wh: Tensor  # (H, 4H)
    gates: Tensor  # (N, 4H) activated gates i, f, g, o
    tanh_c: Tensor  # (N, H) tanh(c)


def lstm_step_forward(
    x: Tensor, h_prev: Tensor, c_prev: Tensor, wx: Tensor, wh: Tensor, b: Tensor
) -> tuple[Tensor, Tensor, LSTMStepCache]:
    """One LSTM step, gates in torch's order i, f, g, o.

    x (N, D), h_prev (N, H), c_prev (N, H), wx (D, 4H), wh (H, 4H), b (4H,) ->
    h (N, H), c (N, H), cache.
    """
    fn = "lstm_step_forward"
    _check_args(fn, x, h_prev, wx, wh, b, gates=4, h_name="h_prev")
    require_float(fn, "c_prev", c_prev)
    require_shape(fn, "c_prev", c_prev, [("N", x.shape[0]), ("H", wh.shape[0])])
    a_i, a_f, a_g, a_o = (x @ wx + h_prev @ wh + b).chunk(4, dim=1)
    # torch.sigmoid is stable for any |z|: no exp overflow.
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c = f * c_prev + i * g
    tanh_c = torch.tanh(c)
    h = o * tanh_c
    gates = torch.cat([i, f, g, o], dim=1)
    return h, c, LSTMStepCache(x, h_prev, c_prev, wx, wh, gates, tanh_c)


def _lstm_gate_grads(
    dh: Tensor, dc: Tensor, gates: Tensor, c_prev: Tensor, tanh_c: Tensor
) -> tuple[Tensor, Tensor]:
    """(N, H) upstream dh, dc on one step -> dL/da (N, 4H) and the total dL/dc_t (N, H)."""
    i, f, g, o = gates.chunk(4, dim=-1)
    # c reaches the loss directly (dc) and through h = o * tanh(c).
    dc_total = dc + dh * o * (1 - tanh_c * tanh_c)
    da = torch.cat(
        [
            dc_total * g * i * (1 - i),  # sigmoid'(a) = s (1 - s)
            dc_total * c_prev * f * (1 - f),
            dc_total * i * (1 - g * g),  # tanh'(a) = 1 - g^2
            dh * tanh_c * o * (1 - o),
        ],
        dim=-1,
    )
    return da, dc_total


def lstm_step_backward(
    dh: Tensor, dc: Tensor, cache: LSTMStepCache
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """dh (N, H), dc (N, H) upstream gradients on h and c ->
    dx (N, D), dh_prev (N, H), dc_prev (N, H), dwx (D, 4H), dwh (H, 4H), db (4H,).
    """
    x, h_prev, c_prev, wx, wh, gates, tanh_c = cache
    for name, arr in (("dh", dh), ("dc", dc)):
        require_shape("lstm_step_backward", name, arr, [("N", c_prev.shape[0]), ("H", c_prev.shape[1])])
    da, dc_total = _lstm_gate_grads(dh, dc, gates, c_prev, tanh_c)
    f = gates.chunk(4, dim=1)[1]
    return da @ wx.T, da @ wh.T, dc_total * f, x.T @ da, h_prev.T @ da, da.sum(dim=0)


class LSTMCache(NamedTuple):
    x: Tensor  # (T, N, D) time-major copy of the input
    hs: Tensor  # (T+1, N, H) time-major: hs[0] = h0, hs[t+1] = h_t
    cs: Tensor  # (T+1, N, H) time-major: cs[0] = c0 = 0, cs[t+1] = c_t
    gates: Tensor  # (T, N, 4H) activated gates i, f, g, o
    tanh_c: Tensor  # (T, N, H) tanh(c_t)
    wx: Tensor  # (D, 4H)
    wh: Tensor  # (H, 4H)


def lstm_forward(x: Tensor, h0: Tensor, wx: Tensor, wh: Tensor, b: Tensor) -> tuple[Tensor, LSTMCache]:
    """Run the LSTM over a sequence from c_0 = 0.

    x (N, T, D), h0 (N, H), wx (D, 4H), wh (H, 4H), b (4H,) -> h (N, T, H) every hidden state, cache.
    """
    _check_args("lstm_forward", x, h0, wx, wh, b, gates=4, h_name="h0")
    n, steps, d = x.shape
    hidden = wh.shape[0]
    xt = x.transpose(0, 1).contiguous()
    gates = torch.addmm(b, xt.reshape(-1, d), wx).reshape(steps, n, 4 * hidden)
    hs = x.new_empty((steps + 1, n, hidden))
    hs[0] = h0
    cs = torch.zeros_like(hs)
    tanh_c = x.new_empty((steps, n, hidden))
    for t in range(steps):
        a = gates[t]
        a += hs[t] @ wh
        a[:, : 2 * hidden].sigmoid_()  # i, f; torch's sigmoid is stable for any |z|
        a[:, 2 * hidden : 3 * hidden].tanh_()  # g
        a[:, 3 * hidden :].sigmoid_()  # o
        i, f, g, o = a.chunk(4, dim=1)
        torch.addcmul(f * cs[t], i, g, out=cs[t + 1])
        torch.tanh(cs[t + 1], out=tanh_c[t])
        torch.mul(o, tanh_c[t], out=hs[t + 1])
    return hs[1:].transpose(0, 1).contiguous(), LSTMCache(xt, hs, cs, gates, tanh_c, wx, wh)


def lstm_backward(dh: Tensor, cache: LSTMCache) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Backpropagation through time (c_0 = 0 is a constant, so there is no dc0).

    dh (N, T, H), the upstream gradient on every hidden state ->
    dx (N, T, D), dh0 (N, H), dwx (D, 4H), dwh (H, 4H), db (4H,).
    """
    xt, hs, cs, gates, tanh_c, wx, wh = cache
    steps, n, d = xt.shape
    hidden = wh.shape[0]
    require_shape("lstm_backward", "dh", dh, [("N", n), ("T", steps), ("H", hidden)])
    dh_t = dh.transpose(0, 1)
    da = torch.empty_like(gates)
    carry = torch.zeros_like(hs[0])  # dL/dh_t arriving from step t+1
    dc = torch.zeros_like(hs[0])  # dL/dc_t arriving from step t+1, i.e. dc_{t+1} * f_{t+1}
    for t in range(steps - 1, -1, -1):
        da[t], dc_total = _lstm_gate_grads(carry + dh_t[t], dc, gates[t], cs[t], tanh_c[t])
        dc = dc_total * gates[t, :, hidden : 2 * hidden]
        carry = da[t] @ wh.T
    # The weights are shared by all steps, so their gradients sum over steps: one matmul each.
    da2 = da.reshape(-1, 4 * hidden)
    dx = (da2 @ wx.T).reshape(steps, n, d).transpose(0, 1).contiguous()
    return dx, carry, xt.reshape(-1, d).T @ da2, hs[:-1].reshape(-1, hidden).T @ da2, da2.sum(dim=0)


# ---------------------------------------------------------------------------------------------
# Gradient clipping


def clip_grad_norm(grads: Sequence[Tensor], *, max_norm: float) -> tuple[list[Tensor], Tensor]:
    """Rescale gradients so that their GLOBAL L2 norm is at most ``max_norm``.

    grads: tensors of any shapes -> (clipped copies, same shapes and dtypes; total_norm, the
    norm before clipping, a 0-d tensor). As ``torch.nn.utils.clip_grad_norm_``: the norm of
    the per-tensor norms, and every tensor is multiplied by max_norm / (total_norm + 1e-6)
    clamped at 1, so gradients already inside the ball are unchanged. The factor stays a
    tensor on the gradients' device (no host sync). Unlike torch, the inputs are not modified.
    """
    fn = "clip_grad_norm"
    if (
        isinstance(max_norm, bool)
        or not isinstance(max_norm, (int, float))
        or not 0 < float(max_norm) < float("inf")
    ):
        raise ValueError(f"{fn}: argument 'max_norm' must be a positive finite number, got {max_norm!r}")
    if isinstance(grads, Tensor) or not isinstance(grads, Sequence):
        raise ValueError(f"{fn}: argument 'grads' must be a list of tensors, got {type(grads).__name__}")
    for k, g in enumerate(grads):
        require_float(fn, f"grads[{k}]", g)
    if not grads:
        return [], torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * scale.to(g.dtype) for g in grads], total
