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


# --- scalars: element-wise functions take them as NumPy's ufuncs do ---------------------------

# A scalar input as a student would pass it, and the dtype NumPy computes it in (np.tanh(x).dtype).
SCALARS = {
    "python float": (0.5, np.float64),
    "python int": (2, np.float64),
    "negative int": (-3, np.float64),
    "zero": (0.0, np.float64),
    "numpy float32": (np.float32(-0.75), np.float32),
    "0-d float64 array": (np.array(1.25), np.float64),
    "0-d float32 array": (np.array(-0.5, dtype=np.float32), np.float32),
    "0-d int array": (np.array(4), np.float64),
}
SCALAR_NAMES = [*ELEMENTWISE, *[f"{n}_grad" for n in ELEMENTWISE]]


def _oracle_value(name: str, value: float) -> float:
    """torch in float64 on a 0-d tensor: the forward oracle, or autograd for a *_grad."""
    zt = torch.tensor(float(value), dtype=torch.float64, requires_grad=True)
    base = name.removesuffix("_grad")
    out = ORACLES[base](zt)
    if name.endswith("_grad"):
        out.backward()
        return float(zt.grad)
    return float(out.detach())


@pytest.mark.parametrize("label", sorted(SCALARS))
@pytest.mark.parametrize("name", SCALAR_NAMES)
def test_np_ref_takes_a_scalar_and_returns_a_numpy_scalar(name, label):
    from course_lib.np_ref import activations

    value, dtype = SCALARS[label]
    out = getattr(activations, name)(value)
    assert np.isscalar(out) and isinstance(out, np.generic), f"{name}({label}) returned {type(out).__name__}"
    assert out.dtype == dtype, f"{name}({label}): dtype {out.dtype}, NumPy would give {np.dtype(dtype)}"
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert abs(float(out) - _oracle_value(name, value)) <= rtol * (1 + abs(_oracle_value(name, value)))


@pytest.mark.parametrize("name", SCALAR_NAMES)
def test_np_ref_scalar_agrees_with_the_array_path(name):
    from course_lib.np_ref import activations

    z = _z(7, (6,))
    fn = getattr(activations, name)
    assert_close(np.array([fn(float(v)) for v in z]), fn(z), name=name, rtol=0, atol=0)


def test_sigmoid_of_a_scalar_like_numpy():
    # What notebook 03 asks students to do: sigmoid of a plain number.
    from course_lib.np_ref import sigmoid

    assert sigmoid(0.5) == pytest.approx(1 / (1 + np.exp(-0.5)), rel=1e-15)
    assert type(sigmoid(0.5)) is type(np.tanh(0.5))


@pytest.mark.parametrize("label", sorted(SCALARS))
@pytest.mark.parametrize("name", SCALAR_NAMES)
def test_torch_ref_takes_a_scalar_and_returns_a_0d_tensor(name, label):
    from course_lib.torch_ref import activations

    value, dtype = SCALARS[label]
    out = getattr(activations, name)(value)
    assert isinstance(out, torch.Tensor) and out.dim() == 0, f"{name}({label}) returned {out!r}"
    assert out.dtype == {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    expected = _oracle_value(name, value)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert abs(float(out) - expected) <= rtol * (1 + abs(expected))


@pytest.mark.parametrize("module", ["np_ref", "torch_ref"])
@pytest.mark.parametrize("bad", [True, np.bool_(False), np.array(True)])
def test_a_bool_scalar_is_rejected(module, bad):
    import importlib

    activations = importlib.import_module(f"course_lib.{module}.activations")
    with pytest.raises(ValueError, match="sigmoid: argument 'z' .*got a bool"):
        activations.sigmoid(bad)


@pytest.mark.parametrize("module", ["np_ref", "torch_ref"])
def test_a_string_is_rejected(module):
    import importlib

    activations = importlib.import_module(f"course_lib.{module}.activations")
    with pytest.raises(ValueError, match="relu: argument 'z'"):
        activations.relu("0.5")


@pytest.mark.parametrize("module", ["np_ref", "torch_ref"])
def test_every_elementwise_function_has_its_own_code(module):
    # The autograder traps a withheld reference by its code location (file, line, name);
    # a wrapper shared by several functions would make a call of one look like a call of another.
    import importlib

    activations = importlib.import_module(f"course_lib.{module}.activations")
    codes = {name: getattr(activations, name).__code__ for name in SCALAR_NAMES}
    assert all(code.co_name == name for name, code in codes.items())
    assert len({(c.co_filename, c.co_firstlineno) for c in codes.values()}) == len(SCALAR_NAMES)
