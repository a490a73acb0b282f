"""course_lib.{np_ref,torch_ref}.optim: update rules checked step for step against torch.optim.

The oracle is torch.optim itself (float64, a parameter whose .grad the test sets), fed the
same gradients as our step functions: either the gradient of a fixed ill-conditioned
quadratic at the current iterate, or a fixed sequence of random gradients.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from course_lib.testing import assert_close
from tests.lib.support import F32_ATOL, F32_RTOL, F64_ATOL, F64_RTOL

STEPS = 12
SHAPE = (3, 4)
HYPOTHESIS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _quadratic(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A (12, 12) SPD matrix with eigenvalues 0.2 .. 5 and a vector b: L(w) = w.A.w / 2 - b.w."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    a = q @ np.diag(np.linspace(0.2, 5.0, 12)) @ q.T
    return a, rng.standard_normal(12)


def _gradient_source(kind: str):
    """grad(w_numpy, k) -> gradient (SHAPE) for step k, independent of any implementation."""
    if kind == "quadratic":
        a, b = _quadratic()
        return lambda w, k: (a @ w.reshape(-1) - b).reshape(SHAPE)
    rng = np.random.default_rng(1)
    # scales vary over four decades so the adaptive rules' per-coordinate scaling matters
    grads = rng.standard_normal((STEPS, *SHAPE)) * 10.0 ** rng.uniform(-2, 2, size=SHAPE)
    return lambda w, k: grads[k]


# (our step function, our kwargs, torch.optim class, torch kwargs). Cases without lr
# check that our defaults are torch's.
CASES = [
    ("sgd_step", {"lr": 0.1}, torch.optim.SGD, {"lr": 0.1}),
    ("sgd_step", {"lr": 0.05, "weight_decay": 0.1}, torch.optim.SGD, {"lr": 0.05, "weight_decay": 0.1}),
    ("momentum_step", {"lr": 0.05}, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    ("momentum_step", {"lr": 0.05, "momentum": 0.5, "nesterov": True},
     torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "nesterov": True}),
    ("momentum_step", {"lr": 0.02, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.05},
     torch.optim.SGD, {"lr": 0.02, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.05}),
    ("momentum_step", {"lr": 0.03, "nesterov": True, "weight_decay": 0.1},
     torch.optim.SGD, {"lr": 0.03, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("adagrad_step", {}, torch.optim.Adagrad, {}),
    ("adagrad_step", {"lr": 0.3, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.3},
     torch.optim.Adagrad, {"lr": 0.3, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.3}),
    ("rmsprop_step", {}, torch.optim.RMSprop, {}),
    ("rmsprop_step", {"lr": 0.01, "centered": True}, torch.optim.RMSprop, {"lr": 0.01, "centered": True}),
    ("rmsprop_step", {"lr": 0.005, "alpha": 0.9, "eps": 1e-6, "momentum": 0.5},
     torch.optim.RMSprop, {"lr": 0.005, "alpha": 0.9, "eps": 1e-6, "momentum": 0.5}),
    ("rmsprop_step", {"lr": 0.005, "momentum": 0.3, "centered": True, "weight_decay": 0.1},
     torch.optim.RMSprop, {"lr": 0.005, "momentum": 0.3, "centered": True, "weight_decay": 0.1}),
    ("adadelta_step", {}, torch.optim.Adadelta, {}),
    ("adadelta_step", {"lr": 0.5, "rho": 0.5, "eps": 1e-4, "weight_decay": 0.1},
     torch.optim.Adadelta, {"lr": 0.5, "rho": 0.5, "eps": 1e-4, "weight_decay": 0.1}),
    ("adam_step", {}, torch.optim.Adam, {}),
    ("adam_step", {"lr": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.05},
     torch.optim.Adam, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05}),
]


def _torch_optim_path(opt_cls, opt_kwargs, w0: np.ndarray, grad) -> np.ndarray:
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = opt_cls([p], **opt_kwargs)
    path = [w0.copy()]
    for k in range(STEPS):
        p.grad = torch.tensor(grad(p.detach().numpy().copy(), k))
        opt.step()
        path.append(p.detach().numpy().copy())
    return np.stack(path)


@pytest.mark.parametrize("kind", ["quadratic", "random"])
@pytest.mark.parametrize(("step_name", "ours", "opt_cls", "theirs"), CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_step_matches_torch_optim(backend, kind, step_name, ours, opt_cls, theirs):
    grad = _gradient_source(kind)
    w0 = np.random.default_rng(2).standard_normal(SHAPE)
    expected = _torch_optim_path(opt_cls, theirs, w0, grad)

    step = getattr(backend.mod, step_name)
    w, state = backend.asarray(w0), None
    for k in range(STEPS):
        g = backend.asarray(grad(backend.to_numpy(w).copy(), k))
        w, state = step(w, g, **ours, state=state)
        assert_close(backend.to_numpy(w), expected[k + 1], name=f"{step_name} iterate {k + 1}",
                     rtol=F64_RTOL, atol=F64_ATOL)
    assert np.abs(expected[-1] - w0).max() > 1e-3  # the run really moved


@pytest.mark.parametrize("step_name", ["sgd_step", "momentum_step", "adagrad_step", "rmsprop_step",
                                       "adadelta_step", "adam_step"])
def test_step_is_pure_and_threads_state(backend, step_name):
    rng = np.random.default_rng(3)
    w0, g0 = rng.standard_normal(SHAPE), rng.standard_normal(SHAPE)
    w, g = backend.asarray(w0.copy()), backend.asarray(g0.copy())
    step = getattr(backend.mod, step_name)
    new_w, state = step(w, g, lr=0.1, weight_decay=0.1, state=None)
    assert_close(backend.to_numpy(w), w0, name="param after the step", rtol=0, atol=0,
                 hint="the step must not modify its input in place")
    assert_close(backend.to_numpy(g), g0, name="grad after the step", rtol=0, atol=0)
    assert tuple(new_w.shape) == SHAPE and new_w.dtype == w.dtype
    if step_name == "sgd_step":
        assert state is None
        return
    assert isinstance(state, tuple) and hasattr(state, "_fields"), "state must be a NamedTuple"
    snapshot = [backend.to_numpy(s).copy() if hasattr(s, "shape") else s for s in state]
    step(new_w, g, lr=0.1, state=state)
    for before, after in zip(snapshot, state):
        assert_close(backend.to_numpy(after) if hasattr(after, "shape") else after, before,
                     name="state after a second step", rtol=0, atol=0)


@pytest.mark.parametrize("step_name", ["momentum_step", "adagrad_step", "rmsprop_step", "adadelta_step", "adam_step"])
def test_float32_param_stays_float32(backend, step_name):
    rng = np.random.default_rng(4)
    w = backend.asarray(rng.standard_normal(SHAPE).astype(np.float32))
    g = backend.asarray(rng.standard_normal(SHAPE).astype(np.float32))
    step = getattr(backend.mod, step_name)
    w1, state = step(w, g, lr=0.1)
    w2, _ = step(w1, g, lr=0.1, state=state)
    assert w2.dtype == w.dtype


@HYPOTHESIS
@given(
    w=hnp.arrays(np.float64, (2, 3), elements=st.floats(-10, 10)),
    grads=hnp.arrays(np.float64, (4, 2, 3), elements=st.floats(-10, 10)),
    lr=st.floats(0.0, 1.0),
    weight_decay=st.floats(0.0, 1.0),
)
def test_momentum_zero_is_sgd(backend, w, grads, lr, weight_decay):
    w_sgd = w_mom = backend.asarray(w)
    state = None
    for g in grads:
        g = backend.asarray(g)
        w_sgd, _ = backend.mod.sgd_step(w_sgd, g, lr=lr, weight_decay=weight_decay)
        w_mom, state = backend.mod.momentum_step(w_mom, g, lr=lr, momentum=0.0, weight_decay=weight_decay,
                                                 state=state)
    assert_close(backend.to_numpy(w_mom), backend.to_numpy(w_sgd), name="momentum=0 vs SGD",
                 rtol=F64_RTOL, atol=F64_ATOL)


def test_bad_step_arguments(backend):
    w = backend.asarray(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"sgd_step: .*'param'.*'grad'.*same shape"):
        backend.mod.sgd_step(w, backend.asarray(np.ones((3, 2))), lr=0.1)
    with pytest.raises(ValueError, match=r"adam_step: argument 'param' must be a floating-point"):
        backend.mod.adam_step(backend.asarray(np.ones((2, 3), dtype=np.int64)), w)
    with pytest.raises(ValueError, match=r"momentum_step: argument 'lr'"):
        backend.mod.momentum_step(w, w, lr=-0.1)
    with pytest.raises(ValueError, match=r"adam_step: argument 'beta2'"):
        backend.mod.adam_step(w, w, beta2=1.0)
    with pytest.raises(ValueError, match=r"momentum_step: nesterov=True needs momentum > 0"):
        backend.mod.momentum_step(w, w, lr=0.1, momentum=0.0, nesterov=True)
    _, adam_state = backend.mod.adam_step(w, w)
    with pytest.raises(ValueError, match=r"rmsprop_step: argument 'state' must be .*RMSpropState.*got AdamState"):
        backend.mod.rmsprop_step(w, w, state=adam_state)
    _, other = backend.mod.adam_step(backend.asarray(np.ones(4)), backend.asarray(np.ones(4)))
    with pytest.raises(ValueError, match=r"adam_step: argument 'state' holds arrays of shape \(4,\)"):
        backend.mod.adam_step(w, w, state=other)


# --- gradient_descent ----------------------------------------------------------------


def test_gradient_descent_1d_quadratic_closed_form(backend):
    # L(w) = a/2 (w - c)^2: plain GD gives w_k = c + (1 - lr a)^k (w0 - c), by hand.
    a, c, lr, w0 = 3.0, -1.0, 0.1, 2.0
    path = backend.mod.gradient_descent(lambda w: a * (w - c), backend.asarray(np.float64(w0)), lr=lr, steps=15)
    k = np.arange(16)
    assert_close(backend.to_numpy(path), c + (1 - lr * a) ** k * (w0 - c), name="GD iterates",
                 rtol=F64_RTOL, atol=F64_ATOL)


def test_gradient_descent_accepts_a_python_number(backend):
    path = backend.mod.gradient_descent(lambda w: 2 * w, 1.0, lr=0.25, steps=3)
    assert tuple(path.shape) == (4,)
    assert_close(backend.to_numpy(path), [1.0, 0.5, 0.25, 0.125], name="GD on w^2 from 1.0",
                 rtol=F32_RTOL, atol=F32_ATOL)


@pytest.mark.parametrize(
    ("optimizer", "hyper", "opt_cls", "theirs"),
    [
        ("sgd", {}, torch.optim.SGD, {}),
        ("momentum", {"momentum": 0.9, "nesterov": True}, torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
        ("adagrad", {}, torch.optim.Adagrad, {}),
        ("rmsprop", {"alpha": 0.9}, torch.optim.RMSprop, {"alpha": 0.9}),
        ("adadelta", {}, torch.optim.Adadelta, {}),
        ("adam", {"beta1": 0.8}, torch.optim.Adam, {"betas": (0.8, 0.999)}),
    ],
)
def test_gradient_descent_2d_matches_torch_optim(backend, optimizer, hyper, opt_cls, theirs):
    # An elongated bowl L(w) = (w0^2 + 10 w1^2) / 2, the classic picture for momentum.
    scale = np.array([1.0, 10.0])
    lr = 0.05
    w0 = np.array([-2.0, 1.5])
    expected = _torch_optim_path(opt_cls, {"lr": lr, **theirs}, w0, lambda w, k: scale * w)
    path = backend.mod.gradient_descent(lambda w: backend.asarray(scale) * w, backend.asarray(w0), lr=lr,
                                        steps=STEPS, optimizer=optimizer, **hyper)
    assert tuple(path.shape) == (STEPS + 1, 2)
    assert_close(backend.to_numpy(path), expected, name=f"{optimizer} path", rtol=F64_RTOL, atol=F64_ATOL)


def test_gradient_descent_keeps_float32(backend):
    w0 = backend.asarray(np.array([1.0, -1.0], dtype=np.float32))
    path = backend.mod.gradient_descent(lambda w: w, w0, lr=0.1, steps=3, optimizer="adam")
    assert path.dtype == w0.dtype


def test_gradient_descent_divergence_is_quiet(backend):
    # L(w) = w^4 / 4 from w0 = 3 with lr = 1: 3, -24, 13800, ... overflows within a few steps.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = backend.to_numpy(backend.mod.gradient_descent(lambda w: w**3, backend.asarray(np.array([3.0])),
                                                             lr=1.0, steps=30))
    assert path.shape == (31, 1)
    finite = np.isfinite(path[:, 0])
    first_bad = int(np.argmin(finite))
    assert 0 < first_bad < 10 and finite[:first_bad].all()
    assert_close(path[:3, 0], [3.0, -24.0, 13800.0], name="first iterates", rtol=F64_RTOL, atol=F64_ATOL)
    assert np.isnan(path[first_bad + 1 :]).all(), "rows after divergence must be nan"


def test_gradient_descent_bad_arguments(backend):
    w0 = backend.asarray(np.ones(2))
    with pytest.raises(ValueError, match=r"gradient_descent: argument 'optimizer' must be one of "
                                         r"'sgd', 'momentum', 'adagrad', 'rmsprop', 'adadelta', 'adam', got 'lbfgs'"):
        backend.mod.gradient_descent(lambda w: w, w0, lr=0.1, steps=3, optimizer="lbfgs")
    with pytest.raises(ValueError, match=r"optimizer 'sgd' has no hyperparameter 'momentum' \(valid: weight_decay\)"):
        backend.mod.gradient_descent(lambda w: w, w0, lr=0.1, steps=3, momentum=0.9)
    with pytest.raises(ValueError, match=r"argument 'steps'"):
        backend.mod.gradient_descent(lambda w: w, w0, lr=0.1, steps=-1)
    with pytest.raises(ValueError, match=r"argument 'grad_fn\(w\)' must have shape \(2,\), got \(2, 1\)"):
        backend.mod.gradient_descent(lambda w: w.reshape(2, 1), w0, lr=0.1, steps=3)
    with pytest.raises(ValueError, match=r"argument 'w0' must be a floating-point"):
        backend.mod.gradient_descent(lambda w: w, backend.asarray(np.ones(2, dtype=np.int64)), lr=0.1, steps=3)


# --- iterate_minibatches --------------------------------------------------------------


def _epoch(backend, n: int, batch_size: int, seed: int, shuffle: bool = True):
    ids = np.arange(n)
    x = backend.asarray(np.stack([ids * 1.0, ids * -2.0], axis=1))  # row i is (i, -2i)
    y = backend.asarray(ids)
    rng = backend.rng(seed) if shuffle else None
    batches = [(backend.to_numpy(xb), backend.to_numpy(yb))
               for xb, yb in backend.mod.iterate_minibatches(x, y, batch_size=batch_size, rng=rng, shuffle=shuffle)]
    return batches


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 40), batch_size=st.integers(1, 50), seed=st.integers(0, 2**31 - 1))
def test_minibatches_cover_every_sample_once(backend, n, batch_size, seed):
    batches = _epoch(backend, n, batch_size, seed)
    sizes = [len(yb) for _, yb in batches]
    expected_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    assert sizes == expected_sizes
    order = np.concatenate([yb for _, yb in batches])
    assert sorted(order.tolist()) == list(range(n)), "every sample exactly once per epoch"
    for xb, yb in batches:  # x and y stay paired
        assert_close(xb, np.stack([yb * 1.0, yb * -2.0], axis=1), name="x rows of the batch", rtol=0, atol=0)


def test_minibatches_shuffle(backend):
    first = np.concatenate([yb for _, yb in _epoch(backend, 30, 7, seed=0)])
    again = np.concatenate([yb for _, yb in _epoch(backend, 30, 7, seed=0)])
    other = np.concatenate([yb for _, yb in _epoch(backend, 30, 7, seed=1)])
    ordered = np.concatenate([yb for _, yb in _epoch(backend, 30, 7, seed=0, shuffle=False)])
    assert first.tolist() == again.tolist(), "the same seed gives the same order"
    assert first.tolist() != other.tolist() and first.tolist() != list(range(30))
    assert ordered.tolist() == list(range(30))


def test_minibatches_bad_arguments_raise_at_call(backend):
    x, y, rng = backend.asarray(np.ones((5, 2))), backend.asarray(np.arange(5)), backend.rng(0)
    with pytest.raises(ValueError, match=r"iterate_minibatches: argument 'batch_size'"):
        backend.mod.iterate_minibatches(x, y, batch_size=0, rng=rng)
    with pytest.raises(ValueError, match=r"arguments 'x' and 'y' must have the same number of samples"):
        backend.mod.iterate_minibatches(x, backend.asarray(np.arange(4)), batch_size=2, rng=rng)
    with pytest.raises(ValueError, match=r"argument 'rng' must be a .*Generator when shuffle=True"):
        backend.mod.iterate_minibatches(x, y, batch_size=2, rng=None)
