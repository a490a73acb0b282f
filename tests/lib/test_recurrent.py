"""Recurrent layers (RNN, LSTM, gradient clipping) on every backend.

Oracles: torch's nn.RNNCell / nn.LSTMCell / nn.RNN / nn.LSTM with copied weights and autograd,
torch.nn.utils.clip_grad_norm_, and float64 central differences. Hypothesis properties: a
sequence of length 1 is one step, a sequence is the steps chained, |h| < 1.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib.gradcheck import numerical_vjp
from course_lib.testing import assert_close
from tests.lib.support import (
    F32_ATOL,
    F32_RTOL,
    F64_ATOL,
    F64_RTOL,
    GRADCHECK_ATOL,
    GRADCHECK_RTOL,
)

HYPOTHESIS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
GATES = {"rnn": 1, "lstm": 4}
GRAD_NAMES = ("dx", "dh0", "dwx", "dwh", "db")


def _params(seed: int, kind: str, n: int, t: int | None, d: int, h: int, *, scale: float = 1.0) -> dict[str, np.ndarray]:
    """float64 inputs of both signs; weights ~ 1/sqrt(fan-in) so tanh/sigmoid are not saturated.

    t=None gives a single step: x (N, D), h_prev and (LSTM) c_prev; otherwise x (N, T, D) and h0.
    """
    rng = np.random.default_rng(seed)
    g = GATES[kind]
    out = {"x": scale * rng.standard_normal((n, d) if t is None else (n, t, d))}
    out["h_prev" if t is None else "h0"] = scale * rng.uniform(-0.9, 0.9, (n, h))
    if t is None and kind == "lstm":
        out["c_prev"] = scale * rng.standard_normal((n, h))
    out["wx"] = scale * rng.standard_normal((d, g * h)) / np.sqrt(d)
    out["wh"] = scale * rng.standard_normal((h, g * h)) / np.sqrt(h)
    out["b"] = scale * 0.5 * rng.standard_normal(g * h)
    return out


def _torch_module(kind: str, cell: bool, p: dict[str, np.ndarray]) -> torch.nn.Module:
    """torch's layer with our weights: weight_ih = wx.T, weight_hh = wh.T, b split over its two biases."""
    d, h = p["wx"].shape[0], p["wh"].shape[0]
    cls = {("rnn", True): torch.nn.RNNCell, ("lstm", True): torch.nn.LSTMCell,
           ("rnn", False): torch.nn.RNN, ("lstm", False): torch.nn.LSTM}[kind, cell]
    module = (cls(d, h) if cell else cls(d, h, batch_first=True)).double()
    suffix = "" if cell else "_l0"
    b = torch.from_numpy(p["b"])
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(torch.from_numpy(p["wx"].T))
        getattr(module, "weight_hh" + suffix).copy_(torch.from_numpy(p["wh"].T))
        getattr(module, "bias_ih" + suffix).copy_(0.25 * b)  # torch only ever uses the sum
        getattr(module, "bias_hh" + suffix).copy_(0.75 * b)
    return module


def _torch_weight_grads(module: torch.nn.Module, cell: bool) -> list[torch.Tensor]:
    suffix = "" if cell else "_l0"
    bias_ih, bias_hh = (getattr(module, f"bias_{k}{suffix}").grad for k in ("ih", "hh"))
    assert_close(bias_ih, bias_hh, name="torch's two bias gradients")  # the split does not matter
    return [getattr(module, "weight_ih" + suffix).grad.T, getattr(module, "weight_hh" + suffix).grad.T, bias_ih]


def _run(backend, fn, *arrays):
    return fn(*(backend.asarray(a) for a in arrays))


def _check_all(backend, got, expected, names, *, rtol=F64_RTOL, atol=F64_ATOL, where=""):
    assert len(got) == len(expected) == len(names)
    for value, want, name in zip(got, expected, names):
        assert_close(backend.to_numpy(value), want, name=f"{where}{name}", rtol=rtol, atol=atol)


# --- torch oracle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_step_matches_torch_cell(backend, kind):
    p = _params(0, kind, n=3, t=None, d=4, h=5)
    module = _torch_module(kind, True, p)
    x, h_prev = (torch.from_numpy(p[k]).requires_grad_(True) for k in ("x", "h_prev"))
    up = np.random.default_rng(1).standard_normal((2, 3, 5))
    if kind == "rnn":
        h, cache = _run(backend, backend.mod.rnn_step_forward, p["x"], p["h_prev"], p["wx"], p["wh"], p["b"])
        h_ref = module(x, h_prev)
        h_ref.backward(torch.from_numpy(up[0]))
        _check_all(backend, [h], [h_ref], ["rnn_step_forward h"])
        grads = backend.mod.rnn_step_backward(backend.asarray(up[0]), cache)
        expected = [x.grad, h_prev.grad, *_torch_weight_grads(module, True)]
        _check_all(backend, grads, expected, ["dx", "dh_prev", "dwx", "dwh", "db"], where="rnn_step_backward ")
        return
    c_prev = torch.from_numpy(p["c_prev"]).requires_grad_(True)
    h, c, cache = _run(backend, backend.mod.lstm_step_forward, *p.values())
    h_ref, c_ref = module(x, (h_prev, c_prev))
    _check_all(backend, [h, c], [h_ref, c_ref], ["lstm_step_forward h", "lstm_step_forward c"])
    # Upstream gradient on both outputs: c also feeds the next step directly.
    torch.autograd.backward([h_ref, c_ref], [torch.from_numpy(up[0]), torch.from_numpy(up[1])])
    grads = backend.mod.lstm_step_backward(backend.asarray(up[0]), backend.asarray(up[1]), cache)
    expected = [x.grad, h_prev.grad, c_prev.grad, *_torch_weight_grads(module, True)]
    _check_all(backend, grads, expected, ["dx", "dh_prev", "dc_prev", "dwx", "dwh", "db"],
               where="lstm_step_backward ")


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_sequence_matches_torch(backend, kind):
    """Forward states and BPTT gradients of nn.RNN / nn.LSTM (batch_first) with autograd."""
    n, t, d, h = 3, 6, 4, 5
    p = _params(2, kind, n=n, t=t, d=d, h=h)
    module = _torch_module(kind, False, p)
    x = torch.from_numpy(p["x"]).requires_grad_(True)
    h0 = torch.from_numpy(p["h0"])[None].clone().requires_grad_(True)  # torch wants (layers, N, H)
    state = (h0, torch.zeros_like(h0)) if kind == "lstm" else h0
    out_ref, _ = module(x, state)
    dh = np.random.default_rng(3).standard_normal((n, t, h))
    out_ref.backward(torch.from_numpy(dh))
    mod = backend.mod
    out, cache = _run(backend, getattr(mod, f"{kind}_forward"), p["x"], p["h0"], p["wx"], p["wh"], p["b"])
    _check_all(backend, [out], [out_ref], [f"{kind}_forward h"])
    grads = getattr(mod, f"{kind}_backward")(backend.asarray(dh), cache)
    expected = [x.grad, h0.grad[0], *_torch_weight_grads(module, False)]
    _check_all(backend, grads, expected, GRAD_NAMES, where=f"{kind}_backward ")


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_float32_kept_and_close_to_torch(backend, kind):
    """float32 in -> float32 out, forward and backward, within float32 round-off of torch."""
    p32 = {k: v.astype(np.float32) for k, v in _params(4, kind, n=4, t=7, d=5, h=6).items()}
    module = _torch_module(kind, False, {k: v.astype(np.float64) for k, v in p32.items()}).float()
    x = torch.from_numpy(p32["x"]).requires_grad_(True)
    h0 = torch.from_numpy(p32["h0"])[None].clone().requires_grad_(True)
    out_ref, _ = module(x, (h0, torch.zeros_like(h0)) if kind == "lstm" else h0)
    dh = np.random.default_rng(5).standard_normal(out_ref.shape).astype(np.float32)
    out_ref.backward(torch.from_numpy(dh))
    out, cache = _run(backend, getattr(backend.mod, f"{kind}_forward"), *p32.values())
    grads = getattr(backend.mod, f"{kind}_backward")(backend.asarray(dh), cache)
    for value, name in zip([out, *grads], ["h", *GRAD_NAMES]):
        assert backend.to_numpy(value).dtype == np.float32, f"{kind}: {name} is not float32"
    expected = [out_ref, x.grad, h0.grad[0], *_torch_weight_grads(module, False)]
    _check_all(backend, [out, *grads], expected, ["h", *GRAD_NAMES], rtol=F32_RTOL, atol=F32_ATOL,
               where=f"{kind} float32 ")


# --- numerical gradients --------------------------------------------------------------------------


def _numeric_grads(backend, forward, args: dict[str, np.ndarray], dout: np.ndarray, outputs) -> list[np.ndarray]:
    """Central differences of sum(outputs(forward(...)) * dout) w.r.t. every argument, in order."""
    grads = []
    for name in args:
        def f(v, name=name):
            call = {k: (v if k == name else a) for k, a in args.items()}
            result = forward(*(backend.asarray(a) for a in call.values()))
            return np.concatenate([backend.to_numpy(r).ravel() for r in outputs(result)])
        grads.append(numerical_vjp(f, args[name], dout))
    return grads


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_step_backward_matches_numerical_gradient(backend, kind):
    p = _params(6, kind, n=2, t=None, d=3, h=3)
    rng = np.random.default_rng(7)
    mod = backend.mod
    if kind == "rnn":
        dh = rng.standard_normal((2, 3))
        numeric = _numeric_grads(backend, mod.rnn_step_forward, p, dh.ravel(), lambda r: [r[0]])
        _, cache = _run(backend, mod.rnn_step_forward, *p.values())
        grads = mod.rnn_step_backward(backend.asarray(dh), cache)
        names = ["dx", "dh_prev", "dwx", "dwh", "db"]
    else:
        dh, dc = rng.standard_normal((2, 2, 3))
        dout = np.concatenate([dh.ravel(), dc.ravel()])
        numeric = _numeric_grads(backend, mod.lstm_step_forward, p, dout, lambda r: [r[0], r[1]])
        _, _, cache = _run(backend, mod.lstm_step_forward, *p.values())
        grads = mod.lstm_step_backward(backend.asarray(dh), backend.asarray(dc), cache)
        names = ["dx", "dh_prev", "dc_prev", "dwx", "dwh", "db"]
    _check_all(backend, grads, numeric, names, rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL,
               where=f"{kind}_step_backward vs numerical ")


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_sequence_backward_matches_numerical_gradient(backend, kind):
    n, t, d, h = 2, 4, 3, 3
    p = _params(8, kind, n=n, t=t, d=d, h=h)
    dh = np.random.default_rng(9).standard_normal((n, t, h))
    forward = getattr(backend.mod, f"{kind}_forward")
    numeric = _numeric_grads(backend, forward, p, dh.ravel(), lambda r: [r[0]])
    _, cache = _run(backend, forward, *p.values())
    grads = getattr(backend.mod, f"{kind}_backward")(backend.asarray(dh), cache)
    _check_all(backend, grads, numeric, GRAD_NAMES, rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL,
               where=f"{kind}_backward vs numerical ")


# --- properties -----------------------------------------------------------------------------------


@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3), d=st.integers(1, 4), h=st.integers(1, 4),
       kind=st.sampled_from(["rnn", "lstm"]))
def test_length_one_sequence_is_one_step(backend, seed, n, d, h, kind):
    """Over T = 1 the sequence functions reduce to one step (LSTM: from c_prev = 0, with dc = 0)."""
    p = _params(seed, kind, n=n, t=1, d=d, h=h)
    dh = np.random.default_rng(seed + 1).standard_normal((n, 1, h))
    mod = backend.mod
    out, cache = _run(backend, getattr(mod, f"{kind}_forward"), *p.values())
    seq_grads = getattr(mod, f"{kind}_backward")(backend.asarray(dh), cache)
    step_args = [p["x"][:, 0], p["h0"]] + ([np.zeros((n, h))] if kind == "lstm" else []) + [p["wx"], p["wh"], p["b"]]
    if kind == "rnn":
        h1, step_cache = _run(backend, mod.rnn_step_forward, *step_args)
        step_grads = list(mod.rnn_step_backward(backend.asarray(dh[:, 0]), step_cache))
    else:
        h1, _, step_cache = _run(backend, mod.lstm_step_forward, *step_args)
        step_grads = list(mod.lstm_step_backward(backend.asarray(dh[:, 0]), backend.asarray(np.zeros((n, h))), step_cache))
        del step_grads[2]  # dc_prev: c_0 is a constant of the sequence function
    got = backend.to_numpy(out)
    assert got.shape == (n, 1, h)
    assert_close(got[:, 0], backend.to_numpy(h1), name=f"{kind}_forward over T=1", rtol=F64_RTOL, atol=F64_ATOL)
    step_grads[0] = backend.to_numpy(step_grads[0])[:, None]  # dx (N, D) -> (N, 1, D)
    _check_all(backend, seq_grads, step_grads, GRAD_NAMES, where=f"{kind}_backward over T=1 vs step ")


@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(2, 5), kind=st.sampled_from(["rnn", "lstm"]))
def test_sequence_is_chained_steps(backend, seed, t, kind):
    """The forward states equal the step function applied T times, feeding h (and c) along."""
    n, d, h = 2, 3, 4
    p = _params(seed, kind, n=n, t=t, d=d, h=h)
    mod = backend.mod
    out, _ = _run(backend, getattr(mod, f"{kind}_forward"), *p.values())
    state = [backend.asarray(p["h0"])] + ([backend.asarray(np.zeros((n, h)))] if kind == "lstm" else [])
    weights = [backend.asarray(p[k]) for k in ("wx", "wh", "b")]
    for step in range(t):
        result = getattr(mod, f"{kind}_step_forward")(backend.asarray(p["x"][:, step]), *state, *weights)
        state = list(result[:-1])
        assert_close(backend.to_numpy(out)[:, step], backend.to_numpy(state[0]), name=f"{kind} h at t={step}",
                     rtol=F64_RTOL, atol=F64_ATOL)


@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1), t=st.integers(1, 6), kind=st.sampled_from(["rnn", "lstm"]))
def test_hidden_state_strictly_inside_unit_interval(backend, seed, t, kind):
    """|h| < 1 strictly while pre-activations stay moderate (|a| < 10, so tanh and sigmoid are not
    rounded to +-1); with pre-activations in the thousands still finite, |h| <= 1, no overflow warning."""
    n, d, h = 3, 4, 4
    rng = np.random.default_rng(seed)
    g = GATES[kind]
    # |a| <= D + H + 1 = 9 from entries in [-1, 1]; the LSTM cell grows by at most 1 per step.
    p = {"x": rng.uniform(-1, 1, (n, t, d)), "h0": rng.uniform(-1, 1, (n, h)),
         "wx": rng.uniform(-1, 1, (d, g * h)), "wh": rng.uniform(-1, 1, (h, g * h)), "b": rng.uniform(-1, 1, g * h)}
    out = backend.to_numpy(_run(backend, getattr(backend.mod, f"{kind}_forward"), *p.values())[0])
    assert np.all(np.abs(out) < 1), f"{kind}: max |h| = {np.abs(out).max()!r}"
    big = {k: v * 1e3 if k in ("x", "b") else v for k, v in p.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, cache = _run(backend, getattr(backend.mod, f"{kind}_forward"), *big.values())
        grads = getattr(backend.mod, f"{kind}_backward")(backend.asarray(np.ones((n, t, h))), cache)
    out = backend.to_numpy(out)
    assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1), f"{kind} with huge inputs: {out}"
    assert all(np.all(np.isfinite(backend.to_numpy(gr))) for gr in grads), f"{kind}: non-finite gradient"


# --- gradient clipping ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale, max_norm", [(5.0, 1.0), (0.05, 1.0), (3.0, 2.5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_matches_torch(backend, scale, max_norm, dtype):
    rng = np.random.default_rng(10)
    grads = [(scale * rng.standard_normal(s)).astype(dtype) for s in ((3, 4), (4,), (2, 2, 2))]
    originals = [g.copy() for g in grads]
    tensors = [torch.from_numpy(g.copy()) for g in grads]
    for t in tensors:
        t.grad = t.clone()
    total_ref = torch.nn.utils.clip_grad_norm_(tensors, max_norm=max_norm)
    inputs = [backend.asarray(g) for g in grads]
    clipped, total = backend.mod.clip_grad_norm(inputs, max_norm=max_norm)
    rtol, atol = (F64_RTOL, F64_ATOL) if dtype == np.float64 else (F32_RTOL, F32_ATOL)
    assert_close(float(total), float(total_ref), name="clip_grad_norm total_norm", rtol=rtol, atol=atol)
    assert len(clipped) == len(grads)
    for k, (got, t) in enumerate(zip(clipped, tensors)):
        assert backend.to_numpy(got).dtype == dtype, f"clip_grad_norm changed the dtype of grads[{k}]"
        assert_close(backend.to_numpy(got), t.grad, name=f"clipped grads[{k}]", rtol=rtol, atol=atol)
    for k, (inp, orig) in enumerate(zip(inputs, originals)):
        assert_close(backend.to_numpy(inp), orig, name=f"grads[{k}] after the call (must not be modified)",
                     rtol=0, atol=0)


def test_clip_grad_norm_by_hand(backend):
    # The gradient (3, 4) has norm 5; clipping to 1 keeps its direction: (0.6, 0.8) up to the 1e-6.
    clipped, total = backend.mod.clip_grad_norm(
        [backend.asarray(np.array([3.0])), backend.asarray(np.array([[4.0]]))], max_norm=1.0
    )
    assert_close(float(total), 5.0, name="total_norm")
    assert_close(backend.to_numpy(clipped[0]), [3 / (5 + 1e-6)], name="clipped[0]", rtol=1e-12)
    assert_close(backend.to_numpy(clipped[1]), [[4 / (5 + 1e-6)]], name="clipped[1]", rtol=1e-12)


# --- bad input ------------------------------------------------------------------------------------


def _bad_cases() -> list:
    """(function, argument overrides, the argument the error must name)."""
    cases = []
    for kind in ("rnn", "lstm"):
        fwd = f"{kind}_forward"
        g = GATES[kind]
        cases += [
            pytest.param(fwd, {"x": np.ones((2, 3))}, "x", id=f"{fwd}-x-rank"),
            pytest.param(fwd, {"x": np.ones((2, 3, 4), dtype=np.int64)}, "x", id=f"{fwd}-x-int"),
            pytest.param(fwd, {"x": np.ones((2, 0, 4))}, "x", id=f"{fwd}-x-no-steps"),
            pytest.param(fwd, {"wx": np.ones((5, g * 3))}, "wx", id=f"{fwd}-wx-rows"),
            pytest.param(fwd, {"wx": np.ones((4, g * 3 + 1))}, "wx", id=f"{fwd}-wx-cols"),
            pytest.param(fwd, {"wh": np.ones((3, 3 * g + 2))}, "wh", id=f"{fwd}-wh-shape"),
            pytest.param(fwd, {"wh": np.ones(3 * g)}, "wh", id=f"{fwd}-wh-rank"),
            pytest.param(fwd, {"b": np.ones((1, 3 * g))}, "b", id=f"{fwd}-b-2d"),
            pytest.param(fwd, {"b": np.ones(3 * g + 1)}, "b", id=f"{fwd}-b-size"),
            pytest.param(fwd, {"h0": np.ones((3, 3))}, "h0", id=f"{fwd}-h0-batch"),
            pytest.param(fwd, {"h0": np.ones(3)}, "h0", id=f"{fwd}-h0-rank"),
        ]
    cases += [
        pytest.param("rnn_step_forward", {"x": np.ones((2, 3, 4))}, "x", id="rnn_step-x-rank"),
        pytest.param("lstm_step_forward", {"c_prev": np.ones((2, 4))}, "c_prev", id="lstm_step-c_prev"),
        pytest.param("lstm_step_forward", {"h_prev": np.ones((2, 4))}, "h_prev", id="lstm_step-h_prev"),
    ]
    return cases


def _valid_args(fn: str) -> dict[str, np.ndarray]:
    kind = fn.split("_")[0]
    return _params(11, kind, n=2, t=None if "step" in fn else 3, d=4, h=3)


@pytest.mark.parametrize("fn, overrides, argument", _bad_cases())
def test_bad_input_names_the_argument(backend, fn, overrides, argument):
    args = {**_valid_args(fn), **overrides}
    with pytest.raises(ValueError, match=rf"{fn}: .*'{argument}'"):
        _run(backend, getattr(backend.mod, fn), *args.values())


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_backward_rejects_wrong_dh_shape(backend, kind):
    p = _params(12, kind, n=2, t=3, d=4, h=3)
    _, cache = _run(backend, getattr(backend.mod, f"{kind}_forward"), *p.values())
    with pytest.raises(ValueError, match=rf"{kind}_backward: .*'dh'.*\(N=2, T=3, H=3\)"):
        getattr(backend.mod, f"{kind}_backward")(backend.asarray(np.ones((2, 3, 4))), cache)


@pytest.mark.parametrize("kind, wrong", [("rnn", "dh"), ("lstm", "dh"), ("lstm", "dc")])
def test_step_backward_rejects_wrong_upstream_shape(backend, kind, wrong):
    p = _params(13, kind, n=2, t=None, d=4, h=3)
    result = _run(backend, getattr(backend.mod, f"{kind}_step_forward"), *p.values())
    upstream = {"dh": np.ones((2, 3)), "dc": np.ones((2, 3))} if kind == "lstm" else {"dh": np.ones((2, 3))}
    upstream[wrong] = np.ones((3, 2))  # the transpose: same size, wrong shape
    with pytest.raises(ValueError, match=rf"{kind}_step_backward: .*'{wrong}'"):
        getattr(backend.mod, f"{kind}_step_backward")(*(backend.asarray(u) for u in upstream.values()), result[-1])


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_mixed_dtypes(backend, kind):
    """NumPy promotes float32 with float64 (as its matmul does); torch's matmul refuses, so the
    Torch path says which arguments disagree."""
    p = _params(14, kind, n=2, t=3, d=4, h=3)
    p["wx"] = p["wx"].astype(np.float32)
    forward = getattr(backend.mod, f"{kind}_forward")
    if backend.device is None:
        out, _ = _run(backend, forward, *p.values())
        assert out.dtype == np.float64
    else:
        with pytest.raises(ValueError, match=rf"{kind}_forward: .*'wx'.*one dtype"):
            _run(backend, forward, *p.values())


@pytest.mark.parametrize("max_norm", [0.0, -1.0, float("inf"), float("nan"), "1"])
def test_clip_grad_norm_rejects_bad_max_norm(backend, max_norm):
    with pytest.raises(ValueError, match="clip_grad_norm: .*'max_norm'"):
        backend.mod.clip_grad_norm([backend.asarray(np.ones(3))], max_norm=max_norm)


def test_clip_grad_norm_rejects_integer_grads(backend):
    with pytest.raises(ValueError, match=r"clip_grad_norm: .*'grads\[1\]'"):
        backend.mod.clip_grad_norm([backend.asarray(np.ones(3)), backend.asarray(np.ones(2, dtype=np.int64))],
                                   max_norm=1.0)
