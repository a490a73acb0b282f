"""Checks for notebook 03_backprop: the chain rule on a small graph, a dense layer's forward
and backward pass, a numerical gradient, and the full backward pass of a two-layer MLP.

Answers are compared with ``course_lib`` (``np_ref.dense``, ``np_ref.mlp``,
``np_ref.losses`` and ``gradcheck``) on small deterministic float64 inputs. Seed 0 holds
the visible cases; seeds >= 1 add hidden ones: arrays instead of scalars, a batch of one,
non-square layers, a 3-D input for the numerical gradient.

Letters: N batch, D input features, H hidden units, M outputs, K classes.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import numpy as np

from course_lib.checks._core import Case, Exercise, register, run_check, seeded_rng
from course_lib.checks._mistakes import Mistake, diagnosing_judge, matches
from course_lib.gradcheck import numerical_gradient
from course_lib.np_ref.activations import relu, sigmoid, sigmoid_grad
from course_lib.np_ref.dense import DenseCache, dense_backward, dense_forward
from course_lib.np_ref.losses import softmax_cross_entropy
from course_lib.np_ref.mlp import mlp_backward, mlp_forward
from course_lib.testing import assert_close

__all__ = [
    "check_chain_rule_grads",
    "check_dense_forward",
    "check_dense_backward",
    "check_numerical_gradient",
    "check_two_layer_grads",
]

NOTEBOOK = "03_backprop"


# --- chain_rule_grads --------------------------------------------------------------------


def _chain_rule_reference(x, y, w1, w2):
    """Check-side only (course_lib has no function for this graph, so nothing to register):
    The graph z1 = w1 x, a1 = sigmoid(z1), y_hat = w2 a1, J = (y_hat - y)^2 -> (dJ/dw1, dJ/dw2)."""
    z1 = w1 * x
    a1 = sigmoid(np.asarray(z1, dtype=np.float64))
    dy_hat = 2.0 * (w2 * a1 - y)
    return dy_hat * w2 * sigmoid_grad(np.asarray(z1, dtype=np.float64)) * x, dy_hat * a1


def _chain_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 301)
    if seed == 0:
        return [
            Case((1.5, 1.0, 0.5, -2.0), label="x=1.5, y=1, w1=0.5, w2=-2"),
            Case(tuple(float(v) for v in rng.normal(size=4)), label="random scalars"),
        ]
    return [
        Case(tuple(rng.normal(size=(4,)) for _ in range(4)), label="arrays of shape (4,), element-wise"),
        Case(tuple(float(v) for v in rng.normal(size=4)), label="random scalars"),
    ]


CHAIN_RULE_GRADS = register(
    Exercise(
        notebook=NOTEBOOK,
        name="chain_rule_grads",
        kind="function",
        cases=_chain_cases,
        # No references: course_lib has no function for this particular graph.
        judge=diagnosing_judge(
            _chain_rule_reference,
            name="chain_rule_grads(x, y, w1, w2)",
            outputs=("dJ/dw1", "dJ/dw2"),
            mistakes=[
                Mistake(
                    lambda x, y, w1, w2: (
                        2 * (w2 * sigmoid(np.asarray(w1 * x, float)) - y) * w2 * x,
                        _chain_rule_reference(x, y, w1, w2)[1],
                    ),
                    "the factor d a1 / d z1 = sigmoid'(z1) is missing from dJ/dw1.",
                ),
                Mistake(
                    lambda x, y, w1, w2: tuple(g / 2 for g in _chain_rule_reference(x, y, w1, w2)),
                    "dJ/dy_hat = 2 (y_hat - y): the factor 2 is missing.",
                ),
                Mistake(
                    lambda x, y, w1, w2: tuple(-g for g in _chain_rule_reference(x, y, w1, w2)),
                    "sign slip: dJ/dy_hat = 2 (y_hat - y), not 2 (y - y_hat).",
                ),
            ],
            hint="multiply the local derivatives along the path: dJ/dw2 = dJ/dy_hat * a1 and "
            "dJ/dw1 = dJ/dy_hat * w2 * sigmoid'(z1) * x, with dJ/dy_hat = 2 (y_hat - y).",
        ),
    )
)


# --- dense_forward / dense_backward ------------------------------------------------------


def _dense_shapes(seed: int) -> list[tuple[int, int, int]]:
    return [(4, 3, 2)] if seed == 0 else [(1, 5, 3), (6, 2, 4)]


def _dense_forward_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 302)
    return [
        Case(
            (rng.normal(size=(n, d)), rng.normal(size=(d, m)), rng.normal(size=m)),
            label=f"x ({n}, {d}), w ({d}, {m})",
        )
        for n, d, m in _dense_shapes(seed)
    ]


def _forward_with_cache(out_rule):
    """A dense_forward that makes the mistake ``out_rule`` in ``out`` and returns a proper cache."""

    def wrong(x, w, b):
        return out_rule(x, w, b), DenseCache(x, w)

    return wrong


_DENSE_FORWARD_MISTAKES = (
    Mistake(_forward_with_cache(lambda x, w, b: x @ w), "the bias is missing: out = x @ w + b."),
    Mistake(_forward_with_cache(lambda x, w, b: x @ w - b), "sign slip: out = x @ w + b."),
)

_compare_out = diagnosing_judge(
    lambda x, w, b: dense_forward(x, w, b)[0],
    name="dense_forward(x, w, b): out",
    mistakes=[Mistake(lambda x, w, b, m=m: m.wrong(x, w, b)[0], m.hint) for m in _DENSE_FORWARD_MISTAKES],
    hint="out = x @ w + b of shape (N, M).",
)


def _dense_forward_judge(case: Case | None, output: Any) -> None:
    """Only ``out`` is graded; the cache is whatever your backward pass needs."""
    if not isinstance(output, (tuple, list)) or len(output) != 2:
        raise AssertionError(
            f"dense_forward(x, w, b): expected a tuple (out, cache), got {type(output).__name__}. "
            "A forward pass returns its output and what the backward pass will need: return out, DenseCache(x, w)."
        )
    _compare_out(case, output[0])


DENSE_FORWARD = register(
    Exercise(
        notebook=NOTEBOOK,
        name="dense_forward",
        kind="function",
        cases=_dense_forward_cases,
        judge=_dense_forward_judge,
        mistakes=_DENSE_FORWARD_MISTAKES,
        references=(
            "course_lib.np_ref.dense.dense_forward",
            "course_lib.torch_ref.dense.dense_forward",
            "course_lib.np_ref.mlp.mlp_forward",
            "course_lib.torch_ref.mlp.mlp_forward",  # one layer of an MLP
        ),
    )
)


def _dense_backward_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 303)
    cases = []
    for n, d, m in _dense_shapes(seed):
        x, w = rng.normal(size=(n, d)), rng.normal(size=(d, m))
        cases.append(
            Case(
                (rng.normal(size=(n, m)), DenseCache(x, w)),
                label=f"dout ({n}, {m}), x ({n}, {d}), w ({d}, {m})",
            )
        )
    return cases


def _backward_with(db_rule):
    def wrong(dout, cache):
        dx, dw, _ = dense_backward(dout, cache)
        return dx, dw, db_rule(dout)

    return wrong


DENSE_BACKWARD = register(
    Exercise(
        notebook=NOTEBOOK,
        name="dense_backward",
        kind="function",
        cases=_dense_backward_cases,
        judge=diagnosing_judge(
            dense_backward,
            name="dense_backward(dout, cache)",
            outputs=("dx", "dw", "db"),
            mistakes=[
                Mistake(
                    _backward_with(lambda d: d.mean(axis=0)),
                    "db sums dout over the batch (every row got the same b added), not the mean.",
                ),
                Mistake(
                    _backward_with(lambda d: np.zeros(d.shape[1])),
                    "the bias gradient is forgotten: db = dout.sum(axis=0).",
                ),
                Mistake(
                    _backward_with(lambda d: d.sum(axis=1)),
                    "db sums over the batch axis 0, giving shape (M,).",
                ),
            ],
            hint="dx = dout @ w.T (N, D), dw = x.T @ dout (D, M), db = dout.sum(axis=0) (M,): "
            "each gradient has the shape of what it is the gradient of.",
        ),
        references=(
            "course_lib.np_ref.dense.dense_backward",
            "course_lib.torch_ref.dense.dense_backward",
            "course_lib.np_ref.mlp.mlp_backward",
            "course_lib.torch_ref.mlp.mlp_backward",  # one layer of an MLP
        ),
    )
)


# --- numerical_gradient ------------------------------------------------------------------


# The functions whose gradients the cases ask for live at module level (not lambdas): the
# autograder sends cases to its sandbox by value, and a course_lib function by name.
_QUADRATIC_A = np.random.default_rng(304).normal(size=(5, 5))
_LOGIT_LABELS = np.array([1, 3, 0])


def f_sin_sq(v: np.ndarray) -> float:
    """sum(sin(v) v^2), any shape."""
    return np.sum(np.sin(v) * v**2)


def f_quadratic(v: np.ndarray) -> float:
    """v^T A v for v (5,) and a fixed, non-symmetric A (so the gradient is (A + A^T) v)."""
    return v @ _QUADRATIC_A @ v


def f_softmax_loss(v: np.ndarray) -> float:
    """Softmax cross-entropy of logits v (3, K >= 4) against the fixed labels [1, 3, 0]."""
    return float(softmax_cross_entropy(v, _LOGIT_LABELS)[0])


def f_tanh_cubed(v: np.ndarray) -> float:
    """sum(tanh(v)^3), any shape."""
    return np.sum(np.tanh(v) ** 3)


def _numgrad_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 304)
    if seed == 0:
        return [
            Case((f_sin_sq, rng.normal(size=(3, 4))), label="f(x) = sum(sin(x) x^2), x (3, 4)"),
            Case((f_quadratic, rng.normal(size=5)), label="f(x) = x^T A x, x (5,)"),
        ]
    return [
        Case((f_softmax_loss, rng.normal(size=(3, 4))), label="softmax cross-entropy of logits (3, 4)"),
        Case(
            (f_tanh_cubed, rng.normal(size=(2, 3, 2))),
            {"eps": 1e-5},
            label="f(x) = sum(tanh(x)^3), x (2, 3, 2), eps=1e-5",
        ),
    ]


def _numgrad_one_sided_scale(f, x, *, eps=1e-6):
    return 2.0 * numerical_gradient(f, x, eps=eps)


NUMERICAL_GRADIENT = register(
    Exercise(
        notebook=NOTEBOOK,
        name="numerical_gradient",
        kind="function",
        cases=_numgrad_cases,
        judge=diagnosing_judge(
            numerical_gradient,
            name="numerical_gradient(f, x)",
            mistakes=[
                Mistake(
                    _numgrad_one_sided_scale,
                    "the central difference divides by 2 * eps (the two points are 2 eps apart).",
                ),
                Mistake(
                    lambda f, x, eps=1e-6: -numerical_gradient(f, x, eps=eps),
                    "sign slip: the difference is f(x + eps e_i) - f(x - eps e_i), in that order.",
                ),
            ],
            hint="for every index i: (f(x with x[i] + eps) - f(x with x[i] - eps)) / (2 eps), restoring x[i] "
            "afterwards; np.ndindex(x.shape) visits every index of any shape.",
            rtol=1e-4,
            atol=1e-6,
        ),
        references=(
            "course_lib.gradcheck.numerical_gradient",
            "course_lib.gradcheck.numerical_vjp",
        ),  # vjp with dout = 1
    )
)


# --- two_layer_grads ---------------------------------------------------------------------


def _two_layer_reference(params, x, labels):
    """relu MLP with one hidden layer and softmax cross-entropy -> (loss, [(dw1, db1), (dw2, db2)])."""
    scores, cache = mlp_forward(params, x, activation="relu")
    loss, dscores = softmax_cross_entropy(scores, labels)
    return loss, mlp_backward(dscores, cache)


def _two_layer_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 305)
    shapes = [(5, 3, 4, 3)] if seed == 0 else [(1, 2, 6, 4), (8, 4, 5, 2)]
    cases = []
    for n, d, h, k in shapes:
        params = [
            (rng.normal(size=(d, h)), rng.normal(0, 0.5, size=h)),
            (rng.normal(size=(h, k)), rng.normal(0, 0.5, size=k)),
        ]
        cases.append(
            Case(
                (params, rng.normal(size=(n, d)), rng.integers(0, k, size=n)),
                label=f"x ({n}, {d}), hidden {h}, {k} classes",
            )
        )
    return cases


def _two_layer_no_relu_grad(params, x, labels):
    (w1, b1), (w2, b2) = params
    z1, c1 = dense_forward(x, w1, b1)
    scores, c2 = dense_forward(relu(z1), w2, b2)
    loss, dscores = softmax_cross_entropy(scores, labels)
    dh, dw2, db2 = dense_backward(dscores, c2)
    _, dw1, db1 = dense_backward(dh, c1)
    return loss, [(dw1, db1), (dw2, db2)]


_GRAD_NAMES = ("dw1", "db1", "dw2", "db2")


def _flatten(output: Any) -> list[Any]:
    loss, grads = output
    return [loss, *(g for pair in grads for g in pair)]


def _two_layer_judge(case: Case | None, output: Any) -> None:
    assert case is not None
    where = f"two_layer_grads [{case.label}]"
    try:
        loss, grads = output
        (dw1, db1), (dw2, db2) = grads
    except (TypeError, ValueError):
        raise AssertionError(
            f"{where}: expected (loss, [(dw1, db1), (dw2, db2)]), got {type(output).__name__}"
        ) from None
    want = _flatten(_two_layer_reference(*copy.deepcopy(case.args)))
    got = [loss, dw1, db1, dw2, db2]
    mistakes = [
        (
            _two_layer_no_relu_grad,
            "on the way back through the ReLU multiply by relu'(z1) = (z1 > 0): "
            "units that were off in the forward pass pass no gradient.",
        ),
    ]
    for label, g, w in zip(("loss", *_GRAD_NAMES), got, want, strict=False):
        try:
            assert_close(g, w, name=f"{where}: {label}")
        except AssertionError as err:
            diagnosis = (
                "backward order: dscores -> (dh, dw2, db2) through the second dense layer -> "
                "dz1 = dh * relu'(z1) -> (dx, dw1, db1) through the first."
            )
            for wrong_fn, hint in mistakes:
                wrong = _flatten(wrong_fn(*copy.deepcopy(case.args)))
                if all(matches(a, b) for a, b in zip(got, wrong, strict=False)):
                    diagnosis = f"your output matches a typical mistake: {hint}"
                    break
            raise AssertionError(f"{err}\nHint: {diagnosis}") from None


_two_layer_judge.reference = _two_layer_reference  # type: ignore[attr-defined]
_dense_forward_judge.reference = dense_forward  # type: ignore[attr-defined]

TWO_LAYER_GRADS = register(
    Exercise(
        notebook=NOTEBOOK,
        name="two_layer_grads",
        kind="function",
        cases=_two_layer_cases,
        judge=_two_layer_judge,
        mistakes=(
            Mistake(_two_layer_no_relu_grad, "on the way back through the ReLU multiply by relu'(z1)."),
        ),
        references=("course_lib.np_ref.mlp.mlp_backward", "course_lib.torch_ref.mlp.mlp_backward"),
    )
)


check_chain_rule_grads = partial(run_check, CHAIN_RULE_GRADS)
check_dense_forward = partial(run_check, DENSE_FORWARD)
check_dense_backward = partial(run_check, DENSE_BACKWARD)
check_numerical_gradient = partial(run_check, NUMERICAL_GRADIENT)
check_two_layer_grads = partial(run_check, TWO_LAYER_GRADS)
