"""The checks of notebook 04_activations pass correct answers and fail typical wrong ones
with a message that names what went wrong."""

from __future__ import annotations

import numpy as np
import pytest

from tests.checks.support import answer_tests

from course_lib.checks.nb04_activations import (
    check_collapse_linear,
    check_leaky_relu,
    check_one_hot,
    check_relu_grad,
    check_sigmoid_grad,
    check_softmax,
    check_swish_grad,
)

SEEDS = (0, 1, 2)


# --- correct answers, written as a student would (no course_lib) --------------------------------


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))  # |z| <= 20 in the checks, so no overflow


def sigmoid_grad(z):
    s = _sigmoid(z)
    return s * (1 - s)


def relu_grad(z):
    return np.where(z > 0, 1.0, 0.0)


def leaky_relu(z, *, alpha=0.01):
    return np.where(z > 0, z, alpha * z)


def swish_grad(z):
    s = _sigmoid(z)
    return s + z * s * (1 - s)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def one_hot(labels, num_classes):
    return np.eye(num_classes)[labels]


def collapse_linear(w1, b1, w2, b2):
    return w1 @ w2, b1 @ w2 + b2


CORRECT = [
    (check_sigmoid_grad, sigmoid_grad),
    (check_relu_grad, relu_grad),
    (check_leaky_relu, leaky_relu),
    (check_swish_grad, swish_grad),
    (check_softmax, softmax),
    (check_one_hot, one_hot),
    (check_collapse_linear, collapse_linear),
]


# --- typical mistakes: each must fail, and the message must say what to fix --------------------

WRONG = [
    # (check, wrong answer, seed at which it must fail, regex the message must match)
    (check_sigmoid_grad, lambda z: z * (1 - z), 0, r"applied s \(1 - s\) to z"),
    (check_sigmoid_grad, _sigmoid, 0, r"returned sigma\(z\) itself"),
    (check_relu_grad, lambda z: np.where(z >= 0, 1.0, 0.0), 0, r"at z = 0 exactly"),
    (check_relu_grad, lambda z: np.maximum(z, 0.0), 0, r"returned relu\(z\) itself"),
    (check_leaky_relu, lambda z, alpha=0.01: np.maximum(z, 0.0), 0, r"plain relu"),
    (check_leaky_relu, lambda z, alpha=0.01: np.where(z > 0, z, 0.01 * z), 0, r"use the `alpha` argument"),
    (check_swish_grad, lambda z: z * sigmoid_grad(z), 0, r"dropped the s\(z\) term"),
    (check_swish_grad, lambda z: -swish_grad(z), 0, r"swish'\(z\) = s \+ z s \(1 - s\)"),
    (check_softmax, lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), 0, r"subtract each row's max"),
    (check_softmax, lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum(), 0, r"normalise each row separately"),
    (check_softmax, lambda z: np.exp(z) / np.exp(z).sum(axis=0, keepdims=True), 0, r"not over the batch"),
    (check_one_hot, lambda labels, k: np.eye(labels.max() + 1)[labels], 0, r"wrong shape[\s\S]*not labels.max\(\) \+ 1"),
    (check_one_hot, lambda labels, k: np.eye(k)[labels].T, 0, r"wrong shape"),
    (check_collapse_linear, lambda w1, b1, w2, b2: (w1 @ w2, b2), 0, r"first bias also goes"),
    (check_collapse_linear, lambda w1, b1, w2, b2: (w1 @ w2, b1 @ w2 + b2, None), 0, r"expected a tuple \(w, b\)"),
]


# the correct answers pass (also across the autograder wire); the typical mistakes fail with their hint
(test_a_correct_answer_passes, test_cases_and_outputs_cross_the_autograder_wire,
 test_a_typical_mistake_fails_with_a_hint) = answer_tests(CORRECT, WRONG, seeds=SEEDS, quiet_numpy=True)


def test_an_equivalent_rewrite_passes() -> None:
    check_collapse_linear(lambda w1, b1, w2, b2: ((w2.T @ w1.T).T, np.einsum("h,hm->m", b1, w2) + b2), seed=1)


def test_missing_answer_says_not_implemented() -> None:
    def sigmoid_grad(z):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        check_sigmoid_grad(sigmoid_grad)


# --- the dtype rule: every array answer is floating point (float32 or float64) ------------------

FLOAT_ANSWERS = [
    (check_sigmoid_grad, sigmoid_grad),
    (check_relu_grad, relu_grad),
    (check_leaky_relu, leaky_relu),
    (check_swish_grad, swish_grad),
    (check_softmax, softmax),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("check, answer", FLOAT_ANSWERS, ids=[a.__name__ for _, a in FLOAT_ANSWERS])
def test_a_correct_answer_passes_in_float32_and_float64(check, answer, dtype) -> None:
    # The answer keeps the input's dtype, and an answer that returns float64 for float32 input passes too.
    check(lambda z, **kw: answer(z.astype(dtype), **kw).astype(dtype), seed=0)
    check(lambda z, **kw: answer(np.asarray(z, dtype=dtype), **kw), seed=1)


@pytest.mark.parametrize(
    "check, wrong, dtype",
    [
        (check_relu_grad, lambda z: z > 0, "bool"),
        (check_relu_grad, lambda z: (z > 0).astype(np.int64), "int64"),
        (check_relu_grad, lambda z: (z > 0).astype(np.uint8), "uint8"),
        (check_one_hot, lambda labels, k: np.eye(k, dtype=np.int64)[labels], "int64"),
        (check_one_hot, lambda labels, k: np.eye(k, dtype=bool)[labels], "bool"),
    ],
)
def test_a_non_floating_answer_fails_naming_its_dtype(check, wrong, dtype) -> None:
    # Right values, wrong dtype: the dtype rule is what fails.
    with pytest.raises(AssertionError, match=rf"expected a floating-point array .* got dtype {dtype}"):
        check(wrong, seed=0)
