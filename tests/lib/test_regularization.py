"""course_lib.{np_ref,torch_ref}.regularization: penalties, dropout, batch norm, early stopping.

Oracles: torch.autograd for the penalties' gradients, torch.optim's weight_decay for the
1/2 convention, nn.BatchNorm1d/2d and F.batch_norm (with autograd) for batch norm,
numerical gradients for every backward, binomial statistics for dropout, and
hand-worked loss sequences for early stopping.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from course_lib.gradcheck import numerical_vjp
from course_lib.testing import assert_close
from tests.lib.support import F64_ATOL, F64_RTOL, GRADCHECK_ATOL, GRADCHECK_RTOL

HYPOTHESIS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _weights(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 4)), rng.standard_normal(4) + 0.5, rng.standard_normal((2, 2, 2))]


# --- weight penalties -------------------------------------------------------------------


def test_penalties_by_hand(backend):
    weights = [backend.asarray(np.array([1.0, -2.0])), backend.asarray(np.array([[3.0, 0.0]]))]
    penalty, grads = backend.mod.l2_penalty(weights, lam=0.5)
    assert_close(penalty, 0.25 * (1 + 4 + 9), name="l2 penalty")  # lam/2 * sum of squares
    assert_close(backend.to_numpy(grads[0]), [0.5, -1.0], name="l2 grads[0]")
    assert_close(backend.to_numpy(grads[1]), [[1.5, 0.0]], name="l2 grads[1]")
    penalty, grads = backend.mod.l1_penalty(weights, lam=0.5)
    assert_close(penalty, 0.5 * 6, name="l1 penalty")
    assert_close(backend.to_numpy(grads[0]), [0.5, -0.5], name="l1 grads[0]")
    assert_close(backend.to_numpy(grads[1]), [[0.5, 0.0]], name="l1 grads[1]", hint="sign(0) = 0, as in torch")


@pytest.mark.parametrize("kind", ["l2", "l1"])
def test_penalty_matches_autograd_and_numerical(backend, kind):
    lam = 0.3
    weights = _weights()
    penalty, grads = getattr(backend.mod, f"{kind}_penalty")([backend.asarray(w) for w in weights], lam=lam)

    tw = [torch.tensor(w, requires_grad=True) for w in weights]
    if kind == "l2":
        expected = lam / 2 * sum(torch.linalg.vector_norm(w) ** 2 for w in tw)
    else:
        expected = lam * sum(torch.linalg.vector_norm(w, ord=1) for w in tw)
    expected.backward()
    assert_close(penalty, expected.item(), name=f"{kind} penalty", rtol=F64_RTOL, atol=F64_ATOL)
    for i, (g, w) in enumerate(zip(grads, tw)):
        assert_close(backend.to_numpy(g), w.grad.numpy(), name=f"{kind} grads[{i}] vs autograd",
                     rtol=F64_RTOL, atol=F64_ATOL)

    def penalty_of(i):
        def f(wi):
            ws = [backend.asarray(wi if j == i else w) for j, w in enumerate(weights)]
            return float(getattr(backend.mod, f"{kind}_penalty")(ws, lam=lam)[0])
        return f

    for i in range(len(weights)):
        num = numerical_vjp(penalty_of(i), weights[i].copy(), np.float64(1.0))
        assert_close(backend.to_numpy(grads[i]), num, name=f"{kind} grads[{i}] vs numerical",
                     rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL)


def test_l2_gradient_equals_torch_weight_decay(backend):
    # The 1/2 convention: SGD on loss + l2_penalty(lam) takes the same steps as torch's
    # SGD(weight_decay=lam) on the loss alone (here the loss is |w - 1|^2 / 2 per entry).
    lam, lr = 0.2, 0.1
    w0 = np.random.default_rng(5).standard_normal((3, 2))
    p = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.SGD([p], lr=lr, momentum=0.9, weight_decay=lam)
    w, state = backend.asarray(w0), None
    for k in range(10):
        p.grad = p.detach() - 1.0
        opt.step()
        _, (dpenalty,) = backend.mod.l2_penalty([w], lam=lam)
        w, state = backend.mod.momentum_step(w, (w - 1.0) + dpenalty, lr=lr, momentum=0.9, state=state)
        assert_close(backend.to_numpy(w), p.detach().numpy(), name=f"step {k + 1} vs SGD(weight_decay=lam)",
                     rtol=F64_RTOL, atol=F64_ATOL)


def test_penalty_edge_cases_and_bad_input(backend):
    penalty, grads = backend.mod.l2_penalty([], lam=1.0)
    assert float(penalty) == 0.0 and grads == []
    w = backend.asarray(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"l2_penalty: argument 'lam'"):
        backend.mod.l2_penalty([w], lam=-0.1)
    with pytest.raises(ValueError, match=r"l1_penalty: argument 'weights' must be a list"):
        backend.mod.l1_penalty(w, lam=0.1)
    with pytest.raises(ValueError, match=r"l2_penalty: argument 'weights\[1\]' must be a floating-point"):
        backend.mod.l2_penalty([w, backend.asarray(np.ones(3, dtype=np.int64))], lam=0.1)


# --- dropout ---------------------------------------------------------------------------


@pytest.mark.parametrize("p_drop", [0.2, 0.5, 0.8])
def test_dropout_statistics(backend, p_drop):
    n = 400 * 250
    x = backend.asarray(np.ones((400, 250)))
    out, _ = backend.mod.dropout_forward(x, p_drop=p_drop, train=True, rng=backend.rng(0))
    out = backend.to_numpy(out)
    dropped = out == 0
    # the number dropped is Binomial(n, p_drop): allow 5 standard deviations
    assert abs(dropped.mean() - p_drop) < 5 * np.sqrt(p_drop * (1 - p_drop) / n)
    # each output is 0 or 1/(1-p): mean 1, variance p/(1-p), so the sample mean's std is sqrt(p/((1-p) n))
    assert abs(out.mean() - 1.0) < 5 * np.sqrt(p_drop / ((1 - p_drop) * n))
    # inverted dropout scales the kept units like torch does
    torch_kept = F.dropout(torch.ones(1000, dtype=torch.float64), p=p_drop, training=True)
    scale = torch_kept[torch_kept != 0][0].item()
    assert_close(out[~dropped], np.full((~dropped).sum(), scale), name="kept values vs F.dropout's scale",
                 rtol=F64_RTOL, atol=F64_ATOL)


@HYPOTHESIS
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                    elements=st.floats(-1e3, 1e3)),
       p_drop=st.floats(0.0, 0.99))
def test_dropout_eval_is_identity(backend, x, p_drop):
    xb = backend.asarray(x)
    out, cache = backend.mod.dropout_forward(xb, p_drop=p_drop, train=False, rng=None)
    assert_close(backend.to_numpy(out), x, name="eval-mode dropout", rtol=0, atol=0)
    dx = backend.mod.dropout_backward(backend.asarray(x + 1.0), cache)
    assert_close(backend.to_numpy(dx), x + 1.0, name="eval-mode dropout backward", rtol=0, atol=0)
    out, _ = backend.mod.dropout_forward(xb, p_drop=0.0, train=True, rng=backend.rng(0))
    assert_close(backend.to_numpy(out), x, name="dropout with p_drop=0", rtol=0, atol=0)


def test_dropout_backward_uses_the_forward_mask(backend):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 7)) + 0.1
    dout = rng.standard_normal((6, 7))
    out, cache = backend.mod.dropout_forward(backend.asarray(x), p_drop=0.4, train=True, rng=backend.rng(11))
    dx = backend.to_numpy(backend.mod.dropout_backward(backend.asarray(dout), cache))

    # the same seed draws the same mask, so this f is a fixed function of x
    def f(xv):
        return backend.to_numpy(
            backend.mod.dropout_forward(backend.asarray(xv), p_drop=0.4, train=True, rng=backend.rng(11))[0])

    assert_close(dx, numerical_vjp(f, x.copy(), dout), name="dropout dx vs numerical",
                 rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL)
    out = backend.to_numpy(out)
    assert ((out == 0) == (dx == 0)).all(), "dx must be zero exactly where the forward dropped a unit"
    assert 0 < (out == 0).sum() < out.size


def test_dropout_backward_matches_autograd_torch_path():
    from course_lib import torch_ref

    rng = np.random.default_rng(7)
    x = torch.tensor(rng.standard_normal((5, 8)), requires_grad=True)
    dout = torch.tensor(rng.standard_normal((5, 8)))
    out, cache = torch_ref.dropout_forward(x, p_drop=0.3, train=True, rng=torch.Generator().manual_seed(2))
    out.backward(dout)
    assert_close(torch_ref.dropout_backward(dout, cache), x.grad, name="dropout dx vs autograd",
                 rtol=F64_RTOL, atol=F64_ATOL)


def test_dropout_reproducible_and_dtype(backend):
    x = backend.asarray(np.random.default_rng(8).standard_normal((4, 9)).astype(np.float32))
    a, _ = backend.mod.dropout_forward(x, p_drop=0.5, train=True, rng=backend.rng(3))
    b, _ = backend.mod.dropout_forward(x, p_drop=0.5, train=True, rng=backend.rng(3))
    assert a.dtype == x.dtype
    assert_close(backend.to_numpy(a), backend.to_numpy(b), name="same seed, same mask", rtol=0, atol=0)


def test_dropout_bad_input(backend):
    x = backend.asarray(np.ones((2, 3)))
    for p in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"dropout_forward: argument 'p_drop' must be in \[0, 1\)"):
            backend.mod.dropout_forward(x, p_drop=p, train=True, rng=backend.rng(0))
    with pytest.raises(ValueError, match=r"dropout_forward: argument 'x' must be a floating-point"):
        backend.mod.dropout_forward(backend.asarray(np.ones((2, 3), dtype=np.int64)), p_drop=0.5, train=True,
                                    rng=backend.rng(0))
    with pytest.raises(ValueError, match=r"dropout_forward: argument 'rng'"):
        backend.mod.dropout_forward(x, p_drop=0.5, train=True, rng=None)


# --- batch normalization -----------------------------------------------------------------

SHAPES = {"1d": (6, 4), "2d": (3, 2, 3, 4)}


def _bn_inputs(shape: tuple[int, ...], seed: int):
    rng = np.random.default_rng(seed)
    c = shape[1]
    bshape = (1, c) if len(shape) == 2 else (1, c, 1, 1)
    # per-channel offsets and scales so that normalising really changes the data
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0, bshape) + rng.uniform(-2, 2, bshape)
    gamma = rng.uniform(0.5, 2.0, c)
    beta = rng.standard_normal(c)
    return x, gamma, beta


@pytest.mark.parametrize("layout", ["1d", "2d"])
def test_batchnorm_forward_and_running_stats_match_nn_module(backend, layout):
    shape = SHAPES[layout]
    c = shape[1]
    module = (torch.nn.BatchNorm1d if layout == "1d" else torch.nn.BatchNorm2d)(c, momentum=0.2, eps=1e-3).double()
    _, gamma, beta = _bn_inputs(shape, 0)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(gamma))
        module.bias.copy_(torch.tensor(beta))
    g, b = backend.asarray(gamma), backend.asarray(beta)
    rm, rv = backend.asarray(np.zeros(c)), backend.asarray(np.ones(c))
    for step in range(4):
        x = _bn_inputs(shape, step + 1)[0]
        with torch.no_grad():
            expected = module(torch.tensor(x)).numpy()
        out, _, rm, rv = backend.mod.batchnorm_forward(backend.asarray(x), g, b, train=True, running_mean=rm,
                                                       running_var=rv, momentum=0.2, eps=1e-3)
        assert_close(backend.to_numpy(out), expected, name=f"train output, step {step}", rtol=F64_RTOL, atol=F64_ATOL)
        assert_close(backend.to_numpy(rm), module.running_mean.numpy(), name=f"running_mean, step {step}",
                     rtol=F64_RTOL, atol=F64_ATOL)
        assert_close(backend.to_numpy(rv), module.running_var.numpy(), name=f"running_var, step {step}",
                     rtol=F64_RTOL, atol=F64_ATOL, hint="torch feeds the UNBIASED batch variance into running_var")
    module.eval()
    x = _bn_inputs(shape, 9)[0]
    with torch.no_grad():
        expected = module(torch.tensor(x)).numpy()
    out, _, rm2, rv2 = backend.mod.batchnorm_forward(backend.asarray(x), g, b, train=False, running_mean=rm,
                                                     running_var=rv, momentum=0.2, eps=1e-3)
    assert_close(backend.to_numpy(out), expected, name="eval output (running statistics)",
                 rtol=F64_RTOL, atol=F64_ATOL)
    assert_close(backend.to_numpy(rm2), backend.to_numpy(rm), name="running_mean unchanged in eval", rtol=0, atol=0)
    assert_close(backend.to_numpy(rv2), backend.to_numpy(rv), name="running_var unchanged in eval", rtol=0, atol=0)


def _bn_backend_call(backend, x, gamma, beta, rm, rv, train):
    return backend.mod.batchnorm_forward(backend.asarray(x), backend.asarray(gamma), backend.asarray(beta),
                                         train=train, running_mean=backend.asarray(rm),
                                         running_var=backend.asarray(rv), momentum=0.1, eps=1e-5)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("layout", ["1d", "2d"])
def test_batchnorm_backward_matches_autograd_and_numerical(backend, layout, train):
    shape = SHAPES[layout]
    x, gamma, beta = _bn_inputs(shape, 21)
    c = shape[1]
    rng = np.random.default_rng(22)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    dout = rng.standard_normal(shape)

    out, cache, _, _ = _bn_backend_call(backend, x, gamma, beta, rm, rv, train)
    dx, dgamma, dbeta = (backend.to_numpy(t) for t in backend.mod.batchnorm_backward(backend.asarray(dout), cache))

    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    tout = F.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), tg, tb, training=train, momentum=0.1, eps=1e-5)
    tout.backward(torch.tensor(dout))
    assert_close(backend.to_numpy(out), tout.detach().numpy(), name="out vs F.batch_norm", rtol=F64_RTOL, atol=F64_ATOL)
    for name, ours, theirs in (("dx", dx, tx.grad), ("dgamma", dgamma, tg.grad), ("dbeta", dbeta, tb.grad)):
        assert_close(ours, theirs.numpy(), name=f"{name} vs autograd", rtol=F64_RTOL, atol=F64_ATOL,
                     hint="in train mode the batch mean and variance depend on x too" if name == "dx" else None)

    def out_of(which):
        def f(v):
            args = [v if k == which else a for k, a in enumerate((x, gamma, beta))]
            return backend.to_numpy(_bn_backend_call(backend, *args, rm, rv, train)[0])
        return f

    for k, (name, ours, arg) in enumerate((("dx", dx, x), ("dgamma", dgamma, gamma), ("dbeta", dbeta, beta))):
        assert_close(ours, numerical_vjp(out_of(k), arg.copy(), dout), name=f"{name} vs numerical",
                     rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL)


@HYPOTHESIS
@given(x=hnp.arrays(np.float64, (5, 3), elements=st.floats(-100, 100)),
       dout=hnp.arrays(np.float64, (5, 3), elements=st.floats(-10, 10)))
def test_batchnorm_train_invariants(backend, x, dout):
    # out does not change when a constant is added to a feature, so dx sums to 0 over the
    # batch; and with gamma = 1, beta = 0 every output feature has mean 0.
    c = x.shape[1]
    out, cache, _, _ = _bn_backend_call(backend, x, np.ones(c), np.zeros(c), np.zeros(c), np.ones(c), True)
    dx = backend.to_numpy(backend.mod.batchnorm_backward(backend.asarray(dout), cache)[0])
    out = backend.to_numpy(out)
    assert_close(dx.sum(axis=0), np.zeros(c), name="sum of dx over the batch",
                 atol=F64_RTOL * np.abs(dx).sum() + F64_ATOL)
    assert_close(out.mean(axis=0), np.zeros(c), name="mean of normalised output",
                 atol=F64_RTOL * np.abs(out).sum() + F64_ATOL)


def test_batchnorm_does_not_mutate_and_keeps_float32(backend):
    x, gamma, beta = (a.astype(np.float32) for a in _bn_inputs((5, 3), 30))
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    rmb, rvb = backend.asarray(rm.copy()), backend.asarray(rv.copy())
    out, cache, new_rm, new_rv = backend.mod.batchnorm_forward(
        backend.asarray(x), backend.asarray(gamma), backend.asarray(beta), train=True, running_mean=rmb,
        running_var=rvb)
    assert out.dtype == new_rm.dtype == new_rv.dtype == rmb.dtype
    assert_close(backend.to_numpy(rmb), rm, name="running_mean passed in", rtol=0, atol=0,
                 hint="return new running statistics instead of updating in place")
    assert_close(backend.to_numpy(rvb), rv, name="running_var passed in", rtol=0, atol=0)
    dx, dgamma, dbeta = backend.mod.batchnorm_backward(backend.asarray(np.ones((5, 3), np.float32)), cache)
    assert dx.dtype == dgamma.dtype == dbeta.dtype == out.dtype


def test_batchnorm_bad_input(backend):
    x, gamma, beta = (backend.asarray(a) for a in _bn_inputs((5, 4), 31))
    stats = {"running_mean": backend.asarray(np.zeros(4)), "running_var": backend.asarray(np.ones(4))}
    with pytest.raises(ValueError, match=r"batchnorm_forward: argument 'x' must be 2-D \(N, D\) or 4-D"):
        backend.mod.batchnorm_forward(backend.asarray(np.ones((2, 4, 3))), gamma, beta, train=True, **stats)
    with pytest.raises(ValueError, match=r"batchnorm_forward: argument 'gamma' must have shape \(D=4,\), got \(3,\)"):
        backend.mod.batchnorm_forward(x, gamma[:3], beta, train=True, **stats)
    with pytest.raises(ValueError, match=r"argument 'running_var' must have shape \(D=4,\), got \(4, 1\)"):
        backend.mod.batchnorm_forward(x, gamma, beta, train=True, running_mean=stats["running_mean"],
                                      running_var=backend.asarray(np.ones((4, 1))))
    with pytest.raises(ValueError, match=r"argument 'x' must hold more than 1 value per feature"):
        backend.mod.batchnorm_forward(x[:1], gamma, beta, train=True, **stats)
    with pytest.raises(ValueError, match=r"argument 'x' must be a floating-point"):
        backend.mod.batchnorm_forward(backend.asarray(np.ones((5, 4), dtype=np.int64)), gamma, beta, train=True,
                                      **stats)
    with pytest.raises(ValueError, match=r"argument 'momentum'"):
        backend.mod.batchnorm_forward(x, gamma, beta, train=True, momentum=1.5, **stats)


# --- early stopping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patience", "min_delta", "losses", "stops", "best_epoch"),
    [
        # best at epoch 1, then two epochs without improvement -> stop
        (2, 0.0, [1.0, 0.8, 0.9, 0.85], [False, False, False, True], 1),
        # an improvement resets the count of bad epochs
        (2, 0.0, [1.0, 1.1, 0.9, 1.0, 0.95], [False, False, False, False, True], 2),
        # with min_delta=0.1 an improvement must beat best - 0.1: 0.95 and 0.8, 0.79 do not
        (2, 0.1, [1.0, 0.95, 0.85, 0.8, 0.79], [False, False, False, False, True], 2),
        # equal to the best is not an improvement; patience=1 stops at the first bad epoch
        (1, 0.0, [0.5, 0.5], [False, True], 0),
        # nan never improves
        (1, 0.0, [0.5, float("nan")], [False, True], 0),
        # a steadily improving run never stops
        (3, 0.0, [5.0, 4.0, 3.0, 2.0, 1.0], [False] * 5, 4),
    ],
)
def test_early_stopping_sequences(backend, patience, min_delta, losses, stops, best_epoch):
    stopper = backend.mod.EarlyStopping(patience, min_delta=min_delta)
    assert stopper.best_epoch is None
    got = [stopper.step(backend.asarray(np.float64(loss))) for loss in losses]
    assert got == stops
    assert stopper.best_epoch == best_epoch
    assert stopper.best_loss == losses[best_epoch]


def test_early_stopping_bad_arguments(backend):
    with pytest.raises(ValueError, match=r"EarlyStopping: argument 'patience' must be a positive integer"):
        backend.mod.EarlyStopping(0)
    with pytest.raises(ValueError, match=r"EarlyStopping: argument 'min_delta'"):
        backend.mod.EarlyStopping(3, min_delta=-0.1)
