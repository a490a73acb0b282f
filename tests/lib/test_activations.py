"""Activations and their derivatives against torch (values and autograd), numerical
gradients, hand-computed values, and hypothesis properties — on every backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course_lib.gradcheck import numerical_vjp
from course_lib.testing import assert_close
from tests.lib.support import F64_ATOL, F64_RTOL, GRADCHECK_ATOL, GRADCHECK_RTOL

# name -> the torch function playing the oracle (leaky_relu with its default slope 0.01).
ORACLES = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.01),
    "swish": F.silu,
}
ELEMENTWISE = sorted(ORACLES)
HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _z(seed: int = 0, shape: tuple[int, ...] = (4, 5)) -> np.ndarray:
    """Random pre-activations of both signs, plus exact zeros to pin the kink conventions."""
    z = 3.0 * np.random.default_rng(seed).standard_normal(shape)
    z.flat[::7] = 0.0
    return z


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_forward_matches_torch(backend, name):
    z = _z()
    out = getattr(backend.mod, name)(backend.asarray(z))
    expected = ORACLES[name](torch.from_numpy(z))
    assert_close(backend.to_numpy(out), expected, name=name, rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_grad_matches_torch_autograd(backend, name):
    """g'(z) equals autograd's d g / d z, including the convention at z = 0."""
    z = _z(1)
    zt = torch.from_numpy(z).requires_grad_(True)
    ORACLES[name](zt).sum().backward()
    grad = getattr(backend.mod, f"{name}_grad")(backend.asarray(z))
    assert_close(backend.to_numpy(grad), zt.grad, name=f"{name}_grad", rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_grad_matches_numerical_gradient(backend, name):
    z = _z(2)
    z[np.abs(z) < 1e-2] = 0.5  # central differences straddling relu's kink would be wrong
    dout = np.random.default_rng(3).standard_normal(z.shape)
    fwd = getattr(backend.mod, name)
    numeric = numerical_vjp(lambda v: backend.to_numpy(fwd(backend.asarray(v))), z, dout)
    analytic = dout * backend.to_numpy(getattr(backend.mod, f"{name}_grad")(backend.asarray(z)))
    assert_close(analytic, numeric, name=f"{name}_grad", rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL)


def test_leaky_relu_alpha_by_hand(backend):
    z = backend.asarray(np.array([-2.0, 0.0, 3.0]))
    assert_close(backend.to_numpy(backend.mod.leaky_relu(z, alpha=0.1)), [-0.2, 0.0, 3.0], name="leaky_relu")
    assert_close(backend.to_numpy(backend.mod.leaky_relu_grad(z, alpha=0.1)), [0.1, 0.1, 1.0], name="leaky_relu_grad")


def test_sigmoid_by_hand(backend):
    # sigma(0) = 1/2; sigma(-6) = 1 / (1 + e^6) with e^6 = 403.428793...
    out = backend.mod.sigmoid(backend.asarray(np.array([0.0, -6.0])))
    assert_close(backend.to_numpy(out), [0.5, 1 / (1 + 403.4287934927351)], name="sigmoid", rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_matches_torch(backend, name, axis):
    z = _z(4, shape=(3, 4, 5))
    out = getattr(backend.mod, name)(backend.asarray(z), axis=axis)
    expected = getattr(torch, name)(torch.from_numpy(z), dim=axis)
    assert_close(backend.to_numpy(out), expected, name=f"{name}(axis={axis})", rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize(
    "name", ["sigmoid", "tanh", "swish", "softmax", "log_softmax", *[f"{n}_grad" for n in ELEMENTWISE]]
)
def test_stable_for_large_inputs(backend, name):
    z = np.array([[-1e3, -50.0, 0.0, 50.0, 1e3], [1e3, 1e3, 999.0, -1e3, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning fails the test
        out = backend.to_numpy(getattr(backend.mod, name)(backend.asarray(z)))
    assert np.all(np.isfinite(out)), f"{name} produced inf/nan for |z| <= 1e3: {out}"
    zt = torch.from_numpy(z).requires_grad_(True)
    if name.endswith("_grad"):
        ORACLES[name[: -len("_grad")]](zt).sum().backward()
        expected = zt.grad
    else:
        fn = ORACLES.get(name) or (lambda t: getattr(torch, name)(t, dim=-1))
        expected = fn(zt).detach()
    assert_close(out, expected, name=name, rtol=F64_RTOL, atol=F64_ATOL)


def test_softmax_of_equal_huge_logits_by_hand(backend):
    out = backend.mod.softmax(backend.asarray(np.array([[1000.0, 1000.0]])))
    assert_close(backend.to_numpy(out), [[0.5, 0.5]], name="softmax")


ALL_NAMES = [*ELEMENTWISE, *[f"{n}_grad" for n in ELEMENTWISE], "softmax", "log_softmax"]


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_and_shape_kept(backend, name, dtype):
    z = _z(5).astype(dtype)
    out = getattr(backend.mod, name)(backend.asarray(z))
    got = backend.to_numpy(out)
    assert got.dtype == np.dtype(dtype), f"{name}: {dtype} in, {got.dtype} out"
    assert got.shape == z.shape
    if backend.device is not None:
        assert out.device.type == torch.device(backend.device).type


@pytest.mark.parametrize("name", ALL_NAMES)
def test_integer_input_rejected(backend, name):
    with pytest.raises(ValueError, match=rf"{name}: argument 'z'"):
        getattr(backend.mod, name)(backend.asarray(np.arange(6).reshape(2, 3)))


def test_maxout_by_hand(backend):
    z = np.array([[1.0, -2.0, 5.0, 4.0, -1.0, -3.0]])
    out = backend.mod.maxout(backend.asarray(z), pieces=2)
    assert_close(backend.to_numpy(out), [[1.0, 5.0, -1.0]], name="maxout(pieces=2)")
    out = backend.mod.maxout(backend.asarray(z), pieces=3)
    assert_close(backend.to_numpy(out), [[5.0, 4.0]], name="maxout(pieces=3)")


@pytest.mark.parametrize("pieces", [1, 2, 4])
def test_maxout_matches_torch_max_pool(backend, pieces):
    # Max-pooling with kernel = stride = pieces over the feature axis is the same grouping.
    z = np.random.default_rng(6).standard_normal((2, 3, 8))
    out = backend.mod.maxout(backend.asarray(z), pieces=pieces)
    expected = F.max_pool1d(torch.from_numpy(z).reshape(6, 1, 8), pieces).reshape(2, 3, 8 // pieces)
    assert_close(backend.to_numpy(out), expected, name="maxout", rtol=F64_RTOL, atol=F64_ATOL)


def test_maxout_bad_arguments(backend):
    z = backend.asarray(np.ones((2, 5)))
    with pytest.raises(ValueError, match="maxout: argument 'z'.*divisible by pieces=2"):
        backend.mod.maxout(z, pieces=2)
    with pytest.raises(ValueError, match="maxout: argument 'pieces'"):
        backend.mod.maxout(z, pieces=0)


rows = arrays(
    np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)),
    elements=st.floats(-300, 300, allow_nan=False),
)


@HYPOTHESIS
@given(z=rows)
def test_softmax_rows_are_distributions(backend, z):
    p = backend.to_numpy(backend.mod.softmax(backend.asarray(z)))
    assert np.all(p > 0), "softmax must be strictly positive for logits within 600 of each other"
    assert_close(p.sum(axis=-1), np.ones(z.shape[0]), name="softmax row sums", rtol=1e-12, atol=1e-12)


@HYPOTHESIS
@given(z=arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=st.floats(-30, 30)))
def test_log_softmax_is_log_of_softmax(backend, z):
    log_p = backend.to_numpy(backend.mod.log_softmax(backend.asarray(z)))
    p = backend.to_numpy(backend.mod.softmax(backend.asarray(z)))
    assert_close(log_p, np.log(p), name="log_softmax vs log(softmax)", rtol=1e-9, atol=1e-9)


@HYPOTHESIS
@given(z=arrays(np.float64, st.integers(1, 10), elements=st.floats(-1e3, 1e3)))
def test_sigmoid_symmetry(backend, z):
    s_neg = backend.to_numpy(backend.mod.sigmoid(backend.asarray(-z)))
    s = backend.to_numpy(backend.mod.sigmoid(backend.asarray(z)))
    assert_close(s_neg, 1.0 - s, name="sigmoid(-z) vs 1 - sigmoid(z)", rtol=0, atol=1e-15)
