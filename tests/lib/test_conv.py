"""conv2d and pooling against torch (F.conv2d / F.max_pool2d / F.avg_pool2d + autograd),
numerical gradients, a worked example from the lecture, and hypothesis properties — on
every backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib.gradcheck import numerical_vjp
from course_lib.np_ref import conv as np_conv
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

# (N, C, H, W, F, KH, KW, stride, pad): square and non-square kernels and images, strides
# that do and do not divide evenly, 1x1 kernels, a kernel as large as the padded input.
CONV_CASES = [
    (2, 3, 7, 7, 4, 3, 3, 1, 1),
    (2, 2, 8, 6, 3, 2, 3, 2, 0),
    (1, 3, 9, 8, 2, 5, 3, 3, 2),
    (3, 1, 5, 5, 2, 1, 1, 1, 0),
    (2, 2, 6, 7, 3, 4, 2, 2, 1),
    (2, 2, 5, 4, 2, 7, 6, 1, 1),
    (2, 2, 9, 8, 2, 3, 3, 3, 4),  # padding wider than the kernel: some outputs see only zeros
]
POOL_CASES = [(2, 2), (3, 2), (3, 1), (2, 1), (1, 1), (3, 3)]  # (kernel, stride)


def _conv_inputs(case, seed: int = 0):
    n, c, h, w, f, kh, kw, stride, pad = case
    rng = np.random.default_rng(seed)
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (w + 2 * pad - kw) // stride + 1
    return (
        rng.standard_normal((n, c, h, w)),
        rng.standard_normal((f, c, kh, kw)),
        rng.standard_normal(f),
        rng.standard_normal((n, f, ho, wo)),
    )


def _torch_conv(x, w, b, dout, stride, pad):
    """The oracle: F.conv2d forward and autograd backward, float64."""
    xt, wt, bt = (torch.from_numpy(a.copy()).requires_grad_(True) for a in (x, w, b))
    out = F.conv2d(xt, wt, bt, stride=stride, padding=pad)
    out.backward(torch.from_numpy(dout))
    return out.detach(), xt.grad, wt.grad, bt.grad


# ----------------------------------------------------------------------------- output size

@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pad", "expected"),
    [
        (28, 5, 1, 2, 28),  # "same" padding keeps 28x28
        (14, 2, 2, 0, 7),  # the lecture's 14x14 -> 7x7 step with stride 2
        (32, 5, 1, 0, 28),  # LeNet's first layer
        (7, 3, 2, 1, 4),  # (7 + 2 - 3) // 2 + 1
        (6, 3, 2, 0, 2),  # (6 - 3) // 2 + 1: the last row is left over
        (5, 5, 1, 0, 1),  # kernel exactly fills the input
    ],
)
def test_conv_output_size_by_hand(backend, size, kernel, stride, pad, expected):
    assert backend.mod.conv_output_size(size, kernel, stride=stride, pad=pad) == expected


def test_conv_output_size_rejects_bad_arguments(backend):
    size_fn = backend.mod.conv_output_size
    with pytest.raises(ValueError, match=r"conv_output_size: argument 'kernel' .*does not fit.* 3 \+ 2\*0 = 3 < 4"):
        size_fn(3, 4)
    with pytest.raises(ValueError, match="conv_output_size: argument 'kernel' must be a positive integer"):
        size_fn(5, 0)
    with pytest.raises(ValueError, match="conv_output_size: argument 'stride' must be a positive integer"):
        size_fn(5, 3, stride=0)
    with pytest.raises(ValueError, match="conv_output_size: argument 'stride' must be a positive integer"):
        size_fn(5, 3, stride=1.5)
    with pytest.raises(ValueError, match="conv_output_size: argument 'pad' must be a non-negative integer"):
        size_fn(5, 3, pad=-1)


# ----------------------------------------------------------------------------- conv2d

def test_conv2d_lecture_example(backend):
    # Two input channels, one 2x2 kernel per channel, results summed over channels; the
    # top-left output is (0*0 + 1*1 + 3*2 + 4*3) + (1*1 + 2*2 + 4*3 + 5*4) = 19 + 37 = 56.
    x = np.array([[[[0.0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]])
    w = np.array([[[[0.0, 1], [2, 3]], [[1, 2], [3, 4]]]])
    b = np.zeros(1)
    for forward in (backend.mod.conv2d_forward, backend.mod.conv2d_forward_naive):
        out, _ = forward(backend.asarray(x), backend.asarray(w), backend.asarray(b))
        assert_close(backend.to_numpy(out), [[[[56.0, 72.0], [104.0, 120.0]]]], name=f"{forward.__name__} out")


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch_and_autograd(backend, case):
    x, w, b, dout = _conv_inputs(case)
    stride, pad = case[-2:]
    out, cache = backend.mod.conv2d_forward(*(backend.asarray(a) for a in (x, w, b)), stride=stride, pad=pad)
    grads = backend.mod.conv2d_backward(backend.asarray(dout), cache)
    want = _torch_conv(x, w, b, dout, stride, pad)
    for name, got, expected in zip(("out", "dx", "dw", "db"), (out, *grads), want):
        assert_close(
            backend.to_numpy(got), expected, name=name, rtol=F64_RTOL, atol=F64_ATOL,
            hint="the kernel is not flipped (cross-correlation, like F.conv2d)" if name == "out" else None,
        )


@pytest.mark.parametrize("case", CONV_CASES[:4])
def test_naive_conv2d_matches_torch_and_its_cache_feeds_backward(backend, case):
    x, w, b, dout = _conv_inputs(case, seed=1)
    stride, pad = case[-2:]
    args = [backend.asarray(a) for a in (x, w, b)]
    out_naive, cache_naive = backend.mod.conv2d_forward_naive(*args, stride=stride, pad=pad)
    out_fast, _ = backend.mod.conv2d_forward(*args, stride=stride, pad=pad)
    grads = backend.mod.conv2d_backward(backend.asarray(dout), cache_naive)
    want = _torch_conv(x, w, b, dout, stride, pad)
    assert_close(backend.to_numpy(out_naive), backend.to_numpy(out_fast), name="naive vs vectorised out",
                 rtol=F64_RTOL, atol=F64_ATOL)
    for name, got, expected in zip(("out", "dx", "dw", "db"), (out_naive, *grads), want):
        assert_close(backend.to_numpy(got), expected, name=f"naive {name}", rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize("arg", ["x", "w", "b"])
def test_conv2d_backward_matches_numerical_gradient(backend, arg):
    case = (2, 2, 5, 4, 3, 3, 2, 2, 1)  # non-square image and kernel, stride 2, pad 1
    x, w, b, dout = _conv_inputs(case, seed=2)
    stride, pad = case[-2:]
    arrays = {"x": x, "w": w, "b": b}

    def forward(v: np.ndarray) -> np.ndarray:
        inputs = {**arrays, arg: v}
        out, _ = backend.mod.conv2d_forward(*(backend.asarray(inputs[k]) for k in "xwb"), stride=stride, pad=pad)
        return backend.to_numpy(out)

    numeric = numerical_vjp(forward, arrays[arg].copy(), dout)
    _, cache = backend.mod.conv2d_forward(*(backend.asarray(arrays[k]) for k in "xwb"), stride=stride, pad=pad)
    grads = dict(zip("xwb", backend.mod.conv2d_backward(backend.asarray(dout), cache)))
    assert_close(backend.to_numpy(grads[arg]), numeric, name=f"d{arg}", rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL)


def test_conv2d_float32_stays_float32_on_its_device(backend):
    case = CONV_CASES[1]
    x, w, b, dout = (a.astype(np.float32) for a in _conv_inputs(case, seed=3))
    stride, pad = case[-2:]
    out, cache = backend.mod.conv2d_forward(*(backend.asarray(a) for a in (x, w, b)), stride=stride, pad=pad)
    grads = backend.mod.conv2d_backward(backend.asarray(dout), cache)
    # The oracle runs in float64 on the same (float32-representable) numbers.
    want = _torch_conv(*(a.astype(np.float64) for a in (x, w, b, dout)), stride, pad)
    for name, got, expected in zip(("out", "dx", "dw", "db"), (out, *grads), want):
        assert backend.to_numpy(got).dtype == np.float32, f"{name} was upcast to {backend.to_numpy(got).dtype}"
        if backend.device is not None:
            assert got.device.type == torch.device(backend.device).type
        assert_close(backend.to_numpy(got), expected, name=f"float32 {name}", rtol=F32_RTOL, atol=F32_ATOL)


def test_torch_path_agrees_with_numpy_path(backend):
    if backend.device is None:
        pytest.skip("parity of the torch path with the NumPy reference")
    case = CONV_CASES[2]
    x, w, b, dout = _conv_inputs(case, seed=4)
    stride, pad = case[-2:]
    out_np, cache_np = np_conv.conv2d_forward(x, w, b, stride=stride, pad=pad)
    out_t, cache_t = backend.mod.conv2d_forward(*(backend.asarray(a) for a in (x, w, b)), stride=stride, pad=pad)
    got = (out_t, *backend.mod.conv2d_backward(backend.asarray(dout), cache_t))
    want = (out_np, *np_conv.conv2d_backward(dout, cache_np))
    for name, g, e in zip(("out", "dx", "dw", "db"), got, want):
        assert_close(backend.to_numpy(g), e, name=f"torch_ref vs np_ref {name}", rtol=F64_RTOL, atol=F64_ATOL)


@HYPOTHESIS
@given(
    n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
    k=st.sampled_from([1, 3, 5]), seed=st.integers(0, 2**16),
)
def test_centred_delta_kernel_is_the_identity(backend, n, c, h, w, k, seed):
    # w[f, f] is a k x k kernel with a single 1 in the middle: with pad k // 2 and stride 1
    # every output pixel copies the input pixel under the kernel's centre.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    dout = rng.standard_normal((n, c, h, w))
    delta = np.zeros((c, c, k, k))
    delta[np.arange(c), np.arange(c), k // 2, k // 2] = 1.0
    out, cache = backend.mod.conv2d_forward(
        backend.asarray(x), backend.asarray(delta), backend.asarray(np.zeros(c)), stride=1, pad=k // 2
    )
    dx, _, _ = backend.mod.conv2d_backward(backend.asarray(dout), cache)
    assert_close(backend.to_numpy(out), x, name="delta-kernel out", rtol=F64_RTOL, atol=F64_ATOL)
    assert_close(backend.to_numpy(dx), dout, name="delta-kernel dx", rtol=F64_RTOL, atol=F64_ATOL)


@HYPOTHESIS
@given(
    case=st.sampled_from(CONV_CASES), scale=st.floats(-3.0, 3.0, allow_nan=False), seed=st.integers(0, 2**16)
)
def test_conv2d_is_linear_in_x(backend, case, scale, seed):
    x1, w, b, _ = _conv_inputs(case, seed=seed)
    x2 = np.random.default_rng(seed + 1).standard_normal(x1.shape)
    stride, pad = case[-2:]

    def conv_minus_bias(x: np.ndarray) -> np.ndarray:
        out, _ = backend.mod.conv2d_forward(*(backend.asarray(a) for a in (x, w, b)), stride=stride, pad=pad)
        return backend.to_numpy(out) - b[:, None, None]

    assert_close(
        conv_minus_bias(scale * x1 + x2), scale * conv_minus_bias(x1) + conv_minus_bias(x2),
        name="conv(a x1 + x2) - b vs a (conv(x1) - b) + (conv(x2) - b)", rtol=1e-9, atol=1e-9,
    )


def test_conv2d_rejects_bad_arguments(backend):
    x, w, b, dout = (backend.asarray(a) for a in _conv_inputs(CONV_CASES[0]))  # C=3, F=4, 3x3, pad 1
    for forward in (backend.mod.conv2d_forward, backend.mod.conv2d_forward_naive):
        fn = forward.__name__
        with pytest.raises(ValueError, match=rf"{fn}: argument 'x' must be 4-D \(N, C, H, W\)"):
            forward(x[0], w, b)
        with pytest.raises(ValueError, match=rf"{fn}: argument 'w' must be 4-D"):
            forward(x, w[0], b)
        with pytest.raises(ValueError, match=rf"{fn}: argument 'w' must have shape \(F, C=3, KH, KW\)"):
            forward(x, w[:, :2], b)
        with pytest.raises(ValueError, match=rf"{fn}: argument 'b' must have shape \(F=4,\)"):
            forward(x, w, b[:, None])
        with pytest.raises(ValueError, match=rf"{fn}: argument 'stride' must be a positive integer"):
            forward(x, w, b, stride=0)
        with pytest.raises(ValueError, match=rf"{fn}: argument 'pad' must be a non-negative integer"):
            forward(x, w, b, pad=-1)
        with pytest.raises(ValueError, match=rf"{fn}: argument 'w' \(kernel size 3\) does not fit"):
            forward(x[:, :, :1, :1], w, b, pad=0)
        with pytest.raises(ValueError, match=rf"{fn}: argument 'x' must be a floating-point array"):
            forward(backend.asarray(np.ones((2, 3, 7, 7), dtype=np.int64)), w, b)
    _, cache = backend.mod.conv2d_forward(x, w, b, pad=1)
    with pytest.raises(ValueError, match=r"conv2d_backward: argument 'dout' must have shape \(N=2, F=4, H'=7, W'=7\)"):
        backend.mod.conv2d_backward(dout[:, :3], cache)


# ----------------------------------------------------------------------------- pooling

def _torch_pool(kind: str, x: np.ndarray, dout: np.ndarray, kernel: int, stride: int):
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    pool = {"max": F.max_pool2d, "avg": F.avg_pool2d}[kind]
    out = pool(xt, kernel, stride)
    out.backward(torch.from_numpy(dout))
    return out.detach(), xt.grad


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("kernel", "stride"), POOL_CASES)
def test_pool_matches_torch_and_autograd(backend, kind, kernel, stride):
    rng = np.random.default_rng(5)
    # Rounded values tie often inside a window: torch sends a tied maximum's gradient to
    # the first one in row-major order, and so must we (overlapping windows included).
    x = np.round(rng.standard_normal((2, 3, 7, 8)) * 1.5)
    ho, wo = (7 - kernel) // stride + 1, (8 - kernel) // stride + 1
    dout = rng.standard_normal((2, 3, ho, wo))
    forward = getattr(backend.mod, f"{kind}_pool2d_forward")
    backward = getattr(backend.mod, f"{kind}_pool2d_backward")
    out, cache = forward(backend.asarray(x), kernel=kernel, stride=stride)
    dx = backward(backend.asarray(dout), cache)
    out_t, dx_t = _torch_pool(kind, x, dout, kernel, stride)
    assert_close(backend.to_numpy(out), out_t, name=f"{kind} pool out", rtol=F64_RTOL, atol=F64_ATOL)
    assert_close(
        backend.to_numpy(dx), dx_t, name=f"{kind} pool dx", rtol=F64_RTOL, atol=F64_ATOL,
        hint="with ties, only the first maximum in each window gets the gradient" if kind == "max" else None,
    )


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("kernel", "stride"), [(2, 2), (3, 2)])
def test_pool_backward_matches_numerical_gradient(backend, kind, kernel, stride):
    rng = np.random.default_rng(6)
    # Distinct values 0.1 apart: a perturbation of 1e-6 never changes which one is the max.
    x = rng.permutation(2 * 2 * 6 * 5).reshape(2, 2, 6, 5) * 0.1
    ho, wo = (6 - kernel) // stride + 1, (5 - kernel) // stride + 1
    dout = rng.standard_normal((2, 2, ho, wo))
    forward = getattr(backend.mod, f"{kind}_pool2d_forward")
    backward = getattr(backend.mod, f"{kind}_pool2d_backward")

    def pooled(v: np.ndarray) -> np.ndarray:
        return backend.to_numpy(forward(backend.asarray(v), kernel=kernel, stride=stride)[0])

    numeric = numerical_vjp(pooled, x.copy(), dout)
    _, cache = forward(backend.asarray(x), kernel=kernel, stride=stride)
    dx = backward(backend.asarray(dout), cache)
    assert_close(backend.to_numpy(dx), numeric, name=f"{kind} pool dx", rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_float32_stays_float32(backend, kind):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    dout = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    forward = getattr(backend.mod, f"{kind}_pool2d_forward")
    backward = getattr(backend.mod, f"{kind}_pool2d_backward")
    out, cache = forward(backend.asarray(x))
    dx = backward(backend.asarray(dout), cache)
    out_t, dx_t = _torch_pool(kind, x.astype(np.float64), dout.astype(np.float64), 2, 2)
    for name, got, expected in (("out", out, out_t), ("dx", dx, dx_t)):
        assert backend.to_numpy(got).dtype == np.float32, f"{kind} pool {name} was upcast"
        assert_close(backend.to_numpy(got), expected, name=f"{kind} pool {name}", rtol=F32_RTOL, atol=F32_ATOL)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_rejects_bad_arguments(backend, kind):
    x = backend.asarray(np.random.default_rng(8).standard_normal((2, 3, 4, 4)))
    forward = getattr(backend.mod, f"{kind}_pool2d_forward")
    fn = f"{kind}_pool2d_forward"
    with pytest.raises(ValueError, match=rf"{fn}: argument 'x' must be 4-D \(N, C, H, W\)"):
        forward(x[0])
    with pytest.raises(ValueError, match=rf"{fn}: argument 'kernel' must be a positive integer"):
        forward(x, kernel=0)
    with pytest.raises(ValueError, match=rf"{fn}: argument 'stride' must be a positive integer"):
        forward(x, stride=-1)
    with pytest.raises(ValueError, match=rf"{fn}: argument 'kernel' \(kernel size 5\) does not fit"):
        forward(x, kernel=5)
    with pytest.raises(ValueError, match=rf"{fn}: argument 'x' must be a floating-point array"):
        forward(backend.asarray(np.ones((2, 3, 4, 4), dtype=np.int32)))
    _, cache = forward(x)
    backward = getattr(backend.mod, f"{kind}_pool2d_backward")
    with pytest.raises(ValueError, match=rf"{kind}_pool2d_backward: argument 'dout' must have shape \(N=2, C=3, H'=2, W'=2\)"):
        backward(backend.asarray(np.ones((2, 3, 4, 4))), cache)
