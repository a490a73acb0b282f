"""The checks of notebook 03_backprop pass correct answers and fail typical wrong ones with a
message that names what went wrong."""

from __future__ import annotations

import numpy as np

from tests.checks.support import answer_tests

from course_lib.checks import nb03_backprop
from course_lib.checks.nb03_backprop import (
    check_chain_rule_grads,
    check_dense_backward,
    check_dense_forward,
    check_numerical_gradient,
    check_two_layer_grads,
)

SEEDS = (0, 1, 2)


# --- correct answers, written as a student would (no course_lib) --------------------------------


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def chain_rule_grads(x, y, w1, w2, *, factor=2.0, with_sigmoid_grad=True):
    z1 = w1 * x
    a1 = _sigmoid(z1)
    d = factor * (w2 * a1 - y)
    local = a1 * (1 - a1) if with_sigmoid_grad else 1.0
    return d * w2 * local * x, d * a1


def dense_forward(x, w, b):
    return x @ w + b, (x, w)


def dense_backward(dout, cache, *, db_rule=lambda d: d.sum(axis=0)):
    x, w = cache
    return dout @ w.T, x.T @ dout, db_rule(dout)


def numerical_gradient(f, x, *, eps=1e-6, denominator=2.0, sign=1.0):
    g = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = sign * (f(xp) - f(xm)) / (denominator * eps)
    return g


def two_layer_grads(params, x, labels, *, relu_gate=True, bias_grad=True):
    (w1, b1), (w2, b2) = params
    z1 = x @ w1 + b1
    h = np.maximum(z1, 0)
    s = h @ w2 + b2
    s = s - s.max(axis=1, keepdims=True)
    p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    n = len(labels)
    loss = -np.mean(np.log(p[np.arange(n), labels]))
    ds = p.copy()
    ds[np.arange(n), labels] -= 1
    ds /= n
    dh = ds @ w2.T
    dz1 = dh * (z1 > 0) if relu_gate else dh
    db = (lambda d: d.sum(axis=0)) if bias_grad else (lambda d: np.zeros(d.shape[1]))
    return loss, [(x.T @ dz1, db(dz1)), (h.T @ ds, db(ds))]


CORRECT = [
    (check_chain_rule_grads, chain_rule_grads),
    (check_dense_forward, dense_forward),
    (check_dense_backward, dense_backward),
    (check_numerical_gradient, numerical_gradient),
    (check_two_layer_grads, two_layer_grads),
]


def test_chain_rule_reference_is_private() -> None:
    # A student who guesses the name must not find a ready-made answer to import.
    assert not hasattr(nb03_backprop, "chain_rule_reference")
    assert not any("reference" in name for name in nb03_backprop.__all__)


def test_chain_rule_reference_matches_hand_computation() -> None:
    # x=1.5, y=1, w1=0.5, w2=-2: z1 = 0.75, a1 = s(0.75), y_hat = -2 a1, dJ/dy_hat = 2 (y_hat - 1).
    s = 1 / (1 + np.exp(-0.75))
    d = 2 * (-2 * s - 1)
    dw1, dw2 = nb03_backprop._chain_rule_reference(1.5, 1.0, 0.5, -2.0)
    assert abs(dw2 - d * s) < 1e-12
    assert abs(dw1 - d * -2 * s * (1 - s) * 1.5) < 1e-12


WRONG = [
    (check_chain_rule_grads, lambda *a: chain_rule_grads(*a, with_sigmoid_grad=False), 0, r"sigmoid'\(z1\) is missing"),
    (check_chain_rule_grads, lambda *a: chain_rule_grads(*a, factor=1.0), 0, r"factor 2 is missing"),
    (check_chain_rule_grads, lambda *a: chain_rule_grads(*a, factor=-2.0), 0, r"sign slip"),
    (check_dense_forward, lambda x, w, b: (x @ w, None), 0, r"bias is missing"),
    (check_dense_forward, lambda x, w, b: x @ w + b, 0, r"expected a tuple \(out, cache\)"),
    (check_dense_backward, lambda d, c: dense_backward(d, c, db_rule=lambda g: g.mean(axis=0)), 0, r"not the mean"),
    (check_dense_backward, lambda d, c: dense_backward(d, c, db_rule=lambda g: np.zeros(g.shape[1])), 0, r"bias gradient is forgotten"),
    (check_dense_backward, lambda d, c: (d @ c[1].T, d.T @ c[0], d.sum(axis=0)), 0, r"wrong shape[\s\S]*transpose"),
    (check_numerical_gradient, lambda f, x, **kw: numerical_gradient(f, x, denominator=1.0, **kw), 0, r"divides by 2 \* eps"),
    (check_numerical_gradient, lambda f, x, **kw: numerical_gradient(f, x, sign=-1.0, **kw), 0, r"sign slip"),
    (check_numerical_gradient, lambda f, x, **kw: numerical_gradient(f, x, **kw).ravel(), 0, r"wrong shape"),
    (check_two_layer_grads, lambda *a: two_layer_grads(*a, relu_gate=False), 0, r"multiply by relu'\(z1\)"),
    (check_two_layer_grads, lambda *a: two_layer_grads(*a, bias_grad=False), 0, r"db1[\s\S]*backward order"),
    (check_two_layer_grads, lambda *a: two_layer_grads(*a)[1], 0, r"expected \(loss, \[\(dw1, db1\), \(dw2, db2\)\]\)"),
]


# the correct answers pass (also across the autograder wire); the typical mistakes fail with their hint
(test_a_correct_answer_passes, test_cases_and_outputs_cross_the_autograder_wire,
 test_a_typical_mistake_fails_with_a_hint) = answer_tests(CORRECT, WRONG, seeds=SEEDS)


