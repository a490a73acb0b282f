"""The checks of notebook 02_gradient_descent pass correct answers and fail typical wrong
ones with a message that names what went wrong."""

from __future__ import annotations

import numpy as np

from tests.checks.support import answer_tests

from course_lib.checks.nb02_gradient_descent import (
    check_adagrad_step,
    check_adam_step,
    check_binary_cross_entropy,
    check_momentum_step,
    check_mse_loss,
    check_rmsprop_step,
    check_softmax_cross_entropy,
)
from course_lib.np_ref.optim import AdagradState, AdamState, MomentumState, RMSpropState

SEEDS = (0, 1, 2)


# --- correct answers, written as a student would (no course_lib reference) -----------------------


def mse_loss(pred, target, *, scale=2.0, by_rows=False, sign=1.0):
    n = len(pred) if by_rows else pred.size
    return np.mean((pred - target) ** 2), sign * scale * (pred - target) / n


def binary_cross_entropy(p, y):
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), (p - y) / (p * (1 - p)) / p.size


def softmax_cross_entropy(z, labels, *, stable=True, grad_mean=True):
    n = len(labels)
    shifted = z - z.max(axis=1, keepdims=True) if stable else z
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1
    return -logp[np.arange(n), labels].mean(), grad / n if grad_mean else grad


def momentum_step(param, grad, *, lr, momentum=0.9, state=None, ema=False, use_grad=False):
    if state is None:
        v = grad
    else:
        v = momentum * state.velocity + ((1 - momentum) * grad if ema else grad)
    return param - lr * (grad if use_grad else v), MomentumState(v)


def adagrad_step(param, grad, *, lr=1e-2, eps=1e-10, state=None, root=True):
    s = (np.zeros_like(param) if state is None else state.sum_sq) + grad**2
    t = 0 if state is None else state.step
    return param - lr * grad / ((np.sqrt(s) if root else s) + eps), AdagradState(s, t + 1)


def rmsprop_step(param, grad, *, lr=1e-2, alpha=0.99, eps=1e-8, state=None, swap=False):
    old = np.zeros_like(param) if state is None else state.square_avg
    a = (1 - alpha) * old + alpha * grad**2 if swap else alpha * old + (1 - alpha) * grad**2
    z = np.zeros_like(param)
    return param - lr * grad / (np.sqrt(a) + eps), RMSpropState(a, z, z)


def adam_step(param, grad, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, state=None, correct=True, plain_tuple=False):
    m0, v0, t0 = (0.0, 0.0, 0) if state is None else state
    t = t0 + 1
    m = beta1 * m0 + (1 - beta1) * grad
    v = beta2 * v0 + (1 - beta2) * grad**2
    m_hat, v_hat = (m / (1 - beta1**t), v / (1 - beta2**t)) if correct else (m, v)
    new = param - lr * m_hat / (np.sqrt(v_hat) + eps)
    return new, ((m, v, t) if plain_tuple else AdamState(m, v, t))


CORRECT = [
    (check_mse_loss, mse_loss),
    (check_binary_cross_entropy, binary_cross_entropy),
    (check_softmax_cross_entropy, softmax_cross_entropy),
    (check_momentum_step, momentum_step),
    (check_adagrad_step, adagrad_step),
    (check_rmsprop_step, rmsprop_step),
    (check_adam_step, adam_step),
]


def _bce_no_minus(p, y):
    loss, grad = binary_cross_entropy(p, y)
    return -loss, -grad


def _bce_sum(p, y):
    loss, grad = binary_cross_entropy(p, y)
    return loss * p.size, grad * p.size


WRONG = [
    (check_mse_loss, lambda p, t: (np.sum((p - t) ** 2), 2 * (p - t)), 0, r"sum instead of mean"),
    (check_mse_loss, lambda p, t: mse_loss(p, t, scale=1.0), 0, r"factor 2 is missing"),
    (check_mse_loss, lambda p, t: mse_loss(p, t, sign=-1.0), 0, r"sign slip"),
    (check_mse_loss, lambda p, t: mse_loss(p, t, by_rows=True), 0, r"not by len\(pred\)"),
    (check_binary_cross_entropy, _bce_no_minus, 0, r"minus sign is missing"),
    (check_binary_cross_entropy, _bce_sum, 0, r"sum instead of mean"),
    (check_binary_cross_entropy, lambda p, y: (binary_cross_entropy(p, y)[0], (p - y) / p.size), 0, r"with respect to the \*logit\*"),
    (check_softmax_cross_entropy, lambda z, l: softmax_cross_entropy(z, l, grad_mean=False), 0, r"gradient is divided by N too"),
    (check_softmax_cross_entropy, lambda z, l: softmax_cross_entropy(z, l, stable=False), 0, r"large logits"),
    (check_momentum_step, lambda p, g, **kw: momentum_step(p, g, ema=True, **kw), 0, r"no \(1 - momentum\) factor"),
    (check_momentum_step, lambda p, g, **kw: momentum_step(p, g, use_grad=True, **kw), 0, r"move by lr \* velocity"),
    (check_momentum_step, lambda p, g, **kw: momentum_step(p, g, **kw)[0], 0, r"expected a tuple \(new_param, new_state\)"),
    (check_adagrad_step, lambda p, g, **kw: adagrad_step(p, g, root=False, **kw), 0, r"square root of the sum"),
    (check_adagrad_step, lambda p, g, **kw: adagrad_step(p, g, **{**kw, "state": None}), 0, r"add this step's grad\^2 to the sum"),
    (check_rmsprop_step, lambda p, g, **kw: rmsprop_step(p, g, swap=True, **kw), 0, r"alpha weighs the \*old\* average"),
    (check_adam_step, lambda p, g, **kw: adam_step(p, g, correct=False, **kw), 0, r"bias correction is missing"),
    (check_adam_step, lambda p, g, **kw: adam_step(p, g, plain_tuple=True, **kw), 0, r"must be a AdamState"),
]


# the correct answers pass (also across the autograder wire); the typical mistakes fail with their hint
(test_a_correct_answer_passes, test_cases_and_outputs_cross_the_autograder_wire,
 test_a_typical_mistake_fails_with_a_hint) = answer_tests(CORRECT, WRONG, seeds=SEEDS, quiet_numpy=True)


