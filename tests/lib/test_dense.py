"""The dense layer against torch (F.linear + autograd), numerical gradients and a
hand-computed example, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.gradcheck import numerical_vjp
from course_lib.testing import assert_close
from tests.lib.support import F64_ATOL, F64_RTOL, GRADCHECK_ATOL, GRADCHECK_RTOL


def _inputs(seed: int = 0, n: int = 4, d: int = 3, m: int = 5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((d, m)), rng.standard_normal(m), rng.standard_normal((n, m))


def test_by_hand(backend):
    x = np.array([[1.0, 2.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    b = np.array([0.5, 0.0, 0.0])
    out, _ = backend.mod.dense_forward(backend.asarray(x), backend.asarray(w), backend.asarray(b))
    # [1*1 + 2*2 + 0.5, 1*0 + 2*1, 1*(-1) + 2*0]
    assert_close(backend.to_numpy(out), [[5.5, 2.0, -1.0]], name="dense out")


def test_matches_torch_linear_and_autograd(backend):
    x, w, b, dout = _inputs()
    out, cache = backend.mod.dense_forward(backend.asarray(x), backend.asarray(w), backend.asarray(b))
    dx, dw, db = backend.mod.dense_backward(backend.asarray(dout), cache)

    xt, wt, bt = (torch.from_numpy(a.copy()).requires_grad_(True) for a in (x, w, b))
    out_t = F.linear(xt, wt.T, bt)  # nn.Linear stores the weight as (M, D)
    out_t.backward(torch.from_numpy(dout))
    for name, got, want in [("out", out, out_t.detach()), ("dx", dx, xt.grad), ("dw", dw, wt.grad), ("db", db, bt.grad)]:
        assert_close(backend.to_numpy(got), want, name=name, rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize("arg", ["x", "w", "b"])
def test_backward_matches_numerical_gradient(backend, arg):
    x, w, b, dout = _inputs(1)
    arrays = {"x": x, "w": w, "b": b}

    def forward(v: np.ndarray) -> np.ndarray:
        args = {**arrays, arg: v}
        return backend.to_numpy(backend.mod.dense_forward(*(backend.asarray(args[k]) for k in "xwb"))[0])

    numeric = numerical_vjp(forward, arrays[arg], dout)
    _, cache = backend.mod.dense_forward(*(backend.asarray(arrays[k]) for k in "xwb"))
    grads = dict(zip("xwb", backend.mod.dense_backward(backend.asarray(dout), cache)))
    assert_close(backend.to_numpy(grads[arg]), numeric, name=f"d{arg}", rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_and_device_kept(backend, dtype):
    x, w, b, dout = (backend.asarray(a.astype(dtype)) for a in _inputs(2))
    out, cache = backend.mod.dense_forward(x, w, b)
    grads = backend.mod.dense_backward(dout, cache)
    for t in (out, *grads):
        assert backend.to_numpy(t).dtype == np.dtype(dtype)
        if backend.device is not None:
            assert t.device.type == torch.device(backend.device).type


def test_bad_arguments(backend):
    x, w, b, dout = (backend.asarray(a) for a in _inputs())
    fwd = backend.mod.dense_forward
    with pytest.raises(ValueError, match=r"dense_forward: argument 'w' must have shape \(D=3, M\)"):
        fwd(x, backend.asarray(np.ones((5, 3))), b)
    with pytest.raises(ValueError, match=r"dense_forward: argument 'b' must have shape \(M=5,\)"):
        fwd(x, w, backend.asarray(np.ones((1, 5))))
    with pytest.raises(ValueError, match="dense_forward: argument 'x' must be 2-D"):
        fwd(backend.asarray(np.ones(3)), w, b)
    with pytest.raises(ValueError, match="dense_forward: argument 'x' must be a floating-point"):
        fwd(backend.asarray(np.ones((4, 3), dtype=np.int64)), w, b)
    _, cache = fwd(x, w, b)
    with pytest.raises(ValueError, match=r"dense_backward: argument 'dout' must have shape \(N=4, M=5\)"):
        backend.mod.dense_backward(backend.asarray(np.ones((5, 4))), cache)
