"""np_ref's plain references (conv.py, recurrent.py) and their speed-tuned twins (fast_conv.py,
fast_recurrent.py) compute the same numbers.

Both are also checked against torch on their own: the fast ones through the package-level
names that every test in test_conv.py / test_recurrent.py calls (``backend.mod``), the plain
ones by the torch oracle below. Agreement between the two is a third, independent check.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib.np_ref import conv, fast_conv, fast_recurrent, recurrent
from course_lib.testing import assert_close
from tests.lib.support import F32_ATOL, F32_RTOL, F64_ATOL, F64_RTOL

HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def conv_layers(draw):
    """(x, w, b, stride, pad, dout seed): small layers whose kernel fits the padded image."""
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * pad), 9))
    w = draw(st.integers(max(1, kw - 2 * pad), 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c, kh, kw)), rng.standard_normal(f),
            stride, pad, rng)


@HYPOTHESIS
@given(conv_layers())
def test_plain_and_fast_conv2d_agree_and_share_their_cache(layer) -> None:
    x, w, b, stride, pad, rng = layer
    out_p, cache_p = conv.conv2d_forward(x, w, b, stride=stride, pad=pad)
    out_f, cache_f = fast_conv.conv2d_forward(x, w, b, stride=stride, pad=pad)
    where = f"x {x.shape}, w {w.shape}, stride={stride}, pad={pad}"
    assert_close(out_f, out_p, name=f"fast vs plain conv2d out, {where}", rtol=F64_RTOL, atol=F64_ATOL)
    np.testing.assert_array_equal(cache_f.cols, cache_p.cols)  # the same im2col matrix, copied
    dout = rng.standard_normal(out_p.shape)
    plain = conv.conv2d_backward(dout, cache_p)
    # One cache type: either forward's cache goes into either backward.
    for label, grads in (("fast", fast_conv.conv2d_backward(dout, cache_f)), ("fast(plain cache)",
                         fast_conv.conv2d_backward(dout, cache_p)), ("plain(fast cache)", conv.conv2d_backward(dout, cache_f))):
        for name, got, want in zip(("dx", "dw", "db"), grads, plain):
            assert_close(got, want, name=f"{label} vs plain conv2d {name}, {where}", rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize(("stride", "pad"), [(1, 0), (1, 2), (2, 1), (3, 0)])
def test_plain_conv2d_matches_torch(stride, pad) -> None:
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((2, 3, 8, 7)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ref = F.conv2d(xt, wt, bt, stride=stride, padding=pad)
    dout = rng.standard_normal(tuple(ref.shape))
    ref.backward(torch.from_numpy(dout))
    out, cache = conv.conv2d_forward(x, w, b, stride=stride, pad=pad)
    assert_close(out, ref.detach().numpy(), name="plain conv2d out vs torch", rtol=F64_RTOL, atol=F64_ATOL)
    for name, got, t in zip(("dx", "dw", "db"), conv.conv2d_backward(dout, cache), (xt, wt, bt)):
        assert_close(got, t.grad.numpy(), name=f"plain conv2d {name} vs torch", rtol=F64_RTOL, atol=F64_ATOL)


def _rnn_inputs(kind: str, n: int, t: int, d: int, h: int, dtype: type, seed: int):
    g = 4 if kind == "lstm" else 1
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in ((n, t, d), (n, h), (d, g * h), (h, g * h), (g * h,), (n, t, h))]
    return [a.astype(dtype) for a in arrays]


@HYPOTHESIS
@given(kind=st.sampled_from(["rnn", "lstm"]), n=st.integers(1, 4), t=st.integers(1, 6), d=st.integers(1, 5),
       h=st.integers(1, 5), seed=st.integers(0, 2**31))
def test_plain_and_fast_sequences_agree(kind, n, t, d, h, seed) -> None:
    x, h0, wx, wh, b, dh = _rnn_inputs(kind, n, t, d, h, np.float64, seed)
    out_p, cache_p = getattr(recurrent, f"{kind}_forward")(x, h0, wx, wh, b)
    out_f, cache_f = getattr(fast_recurrent, f"{kind}_forward")(x, h0, wx, wh, b)
    where = f"{kind} N={n} T={t} D={d} H={h}"
    assert_close(out_f, out_p, name=f"fast vs plain {where} h", rtol=F64_RTOL, atol=F64_ATOL)
    plain = getattr(recurrent, f"{kind}_backward")(dh, cache_p)
    fast = getattr(fast_recurrent, f"{kind}_backward")(dh, cache_f)
    for name, got, want in zip(("dx", "dh0", "dwx", "dwh", "db"), fast, plain):
        assert_close(got, want, name=f"fast vs plain {where} {name}", rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_plain_and_fast_sequences_agree_in_float32(kind) -> None:
    x, h0, wx, wh, b, dh = _rnn_inputs(kind, 4, 7, 3, 5, np.float32, 11)
    out_p, cache_p = getattr(recurrent, f"{kind}_forward")(x, h0, wx, wh, b)
    out_f, cache_f = getattr(fast_recurrent, f"{kind}_forward")(x, h0, wx, wh, b)
    plain = (out_p, *getattr(recurrent, f"{kind}_backward")(dh, cache_p))
    fast = (out_f, *getattr(fast_recurrent, f"{kind}_backward")(dh, cache_f))
    for name, got, want in zip(("h", "dx", "dh0", "dwx", "dwh", "db"), fast, plain):
        assert got.dtype == want.dtype == np.float32, f"{kind} {name}: {got.dtype} (fast) vs {want.dtype} (plain)"
        assert_close(got, want, name=f"float32 fast vs plain {kind} {name}", rtol=F32_RTOL, atol=F32_ATOL)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_a_cache_from_the_other_module_is_refused_by_name(kind) -> None:
    x, h0, wx, wh, b, dh = _rnn_inputs(kind, 2, 3, 2, 3, np.float64, 0)
    _, cache_p = getattr(recurrent, f"{kind}_forward")(x, h0, wx, wh, b)
    _, cache_f = getattr(fast_recurrent, f"{kind}_forward")(x, h0, wx, wh, b)
    plain_cache, fast_cache = ("RNNCache", "FastRNNCache") if kind == "rnn" else ("LSTMCache", "FastLSTMCache")
    with pytest.raises(ValueError, match=f"{kind}_backward: argument 'cache' must be the {plain_cache} .* got {fast_cache}"):
        getattr(recurrent, f"{kind}_backward")(dh, cache_f)
    with pytest.raises(ValueError, match=f"{kind}_backward: argument 'cache' must be the {fast_cache} .* got {plain_cache}"):
        getattr(fast_recurrent, f"{kind}_backward")(dh, cache_p)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_plain_sequences_match_torch(kind) -> None:
    from tests.lib.test_recurrent import _params, _torch_module, _torch_weight_grads

    p = _params(5, kind, n=3, t=4, d=2, h=3)
    module = _torch_module(kind, False, p)
    x = torch.from_numpy(p["x"]).requires_grad_(True)
    h0 = torch.from_numpy(p["h0"])[None].clone().requires_grad_(True)  # torch wants (layers, N, H)
    out_ref, _ = module(x, (h0, torch.zeros_like(h0)) if kind == "lstm" else h0)
    dh = np.random.default_rng(6).standard_normal(tuple(out_ref.shape))
    out_ref.backward(torch.from_numpy(dh))
    out, cache = getattr(recurrent, f"{kind}_forward")(p["x"], p["h0"], p["wx"], p["wh"], p["b"])
    assert_close(out, out_ref.detach().numpy(), name=f"plain {kind}_forward h vs torch", rtol=F64_RTOL, atol=F64_ATOL)
    grads = getattr(recurrent, f"{kind}_backward")(dh, cache)
    expected = [x.grad, h0.grad[0], *_torch_weight_grads(module, False)]
    for name, got, want in zip(("dx", "dh0", "dwx", "dwh", "db"), grads, expected):
        assert_close(got, want.numpy(), name=f"plain {kind}_backward {name} vs torch", rtol=F64_RTOL, atol=F64_ATOL)
