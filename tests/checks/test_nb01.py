"""The checks of notebook 01_perceptron pass correct answers and fail typical wrong ones
with a message that names what went wrong."""

from __future__ import annotations

import numpy as np
import pytest

from autograder import wire
from tests.checks.support import answer_tests

from course_lib.checks.nb01_perceptron import (
    LECTURE_W,
    LECTURE_W0,
    LECTURE_X,
    check_multi_output_forward,
    check_neuron_forward,
    check_perceptron_predict,
    check_perceptron_train,
    check_xor_params,
)

SEEDS = (0, 1, 2)


# --- correct answers, written as a student would (no course_lib) --------------------------------


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def neuron_forward(x, w, w0):
    return _sigmoid(w0 + x @ w)


def perceptron_predict(x, w, w0):
    return np.where(x @ w + w0 > 0, 1, 0)


def perceptron_train(x, y, *, lr=1.0, epochs, rng=None, update_bias=True, per_sample=True, tie=0):
    n, d = x.shape
    w, w0, history = np.zeros(d), 0.0, []
    for _ in range(epochs):
        order = range(n) if rng is None else rng.permutation(n)
        if not per_sample:
            err = y - (w0 + x @ w > 0)
            w, w0 = w + lr * err @ x, w0 + lr * err.sum()
            history.append(int(np.count_nonzero(err)))
            continue
        count = 0
        for i in order:
            z = w0 + x[i] @ w
            p = 1 if z > 0 or (tie and z == 0) else 0
            if p != y[i]:
                w = w + lr * (y[i] - p) * x[i]
                if update_bias:
                    w0 = w0 + lr * (y[i] - p)
                count += 1
        history.append(count)
    return w, w0, history


def multi_output_forward(x, w, b):
    return _sigmoid(x @ w + b)


XOR_PARAMS = [(np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([-0.5, -1.5])), (np.array([[1.0], [-1.0]]), np.array([-0.5]))]

CORRECT = [
    (check_neuron_forward, neuron_forward),
    (check_perceptron_predict, perceptron_predict),
    (check_perceptron_train, perceptron_train),
    (check_multi_output_forward, multi_output_forward),
]


def test_correct_xor_params_pass() -> None:
    check_xor_params(XOR_PARAMS)
    check_xor_params(wire.loads(wire.dumps(XOR_PARAMS)))  # as the autograder's sandbox sends it back
    # Any network that computes XOR is right, e.g. three hidden units, plain lists for biases.
    check_xor_params([(np.array([[1.0, 1.0, -1.0], [1.0, 1.0, -1.0]]), [-0.5, -1.5, 2.0]), (np.array([[1.0], [-2.0], [0.0]]), [-0.5])])


def test_lecture_example_is_the_worked_example() -> None:
    # The lecture: g(1 + 3 * -1 - 2 * 2) = g(-6) ~ 0.002, computed by hand.
    assert LECTURE_W0 + LECTURE_X @ LECTURE_W == -6.0
    assert abs(neuron_forward(LECTURE_X, LECTURE_W, LECTURE_W0) - 1 / (1 + np.exp(6.0))) < 1e-15


# --- typical mistakes ---------------------------------------------------------------------------

WRONG = [
    (check_neuron_forward, lambda x, w, w0: _sigmoid(x @ w), 0, r"bias w0 is missing"),
    (check_neuron_forward, lambda x, w, w0: w0 + x @ w, 0, r"non-linearity is missing"),
    (check_neuron_forward, lambda x, w, w0: _sigmoid(w0 + x @ w)[None], 0, r"wrong shape"),
    (check_perceptron_predict, lambda x, w, w0: (w0 + x @ w >= 0).astype(int), 0, r"z > 0, not z >= 0"),
    (check_perceptron_predict, lambda x, w, w0: (x @ w > 0).astype(int), 0, r"bias w0 is missing"),
    (check_perceptron_predict, lambda x, w, w0: np.sign(w0 + x @ w), 0, r"0 and 1, not -1 and \+1"),
    (check_perceptron_train, lambda x, y, **kw: perceptron_train(x, y, update_bias=False, **kw), 0, r"bias is never updated"),
    (check_perceptron_train, lambda x, y, **kw: perceptron_train(x, y, per_sample=False, **kw), 0, r"after every single example"),
    (check_perceptron_train, lambda x, y, **kw: perceptron_train(x, y, tie=1, **kw), 0, r"ties -> 0|p = 1 if w0 \+ x_i @ w > 0"),
    (check_perceptron_train, lambda x, y, **kw: perceptron_train(x, y, **kw)[:2], 0, r"expected a tuple of 3"),
    (check_multi_output_forward, lambda x, w, b: _sigmoid(x @ w), 0, r"biases are missing"),
    (check_multi_output_forward, lambda x, w, b: x @ w + b, 0, r"non-linearity is missing"),
    (check_multi_output_forward, lambda x, w, b: _sigmoid(x @ w.T + b), 0, r"not x @ w.T"),
]


# the correct answers pass (also across the autograder wire); the typical mistakes fail with their hint
(test_a_correct_answer_passes, test_cases_and_outputs_cross_the_autograder_wire,
 test_a_typical_mistake_fails_with_a_hint) = answer_tests(CORRECT, WRONG, seeds=SEEDS)


@pytest.mark.parametrize(
    "params, message",
    [
        ([(np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([-0.5, -1.5])), (np.array([[1.0], [1.0]]), np.array([-0.5]))],
         r"values differ[\s\S]*OR, one for AND"),  # computes OR, not XOR
        ([(np.eye(2), np.zeros(2))], r"list of two \(weights, bias\) pairs"),
        ([(np.eye(2), np.zeros(2)), (np.ones(2), np.zeros(1))], r"shapes must be"),
    ],
)
def test_wrong_xor_params_fail(params, message) -> None:
    with pytest.raises(AssertionError, match=message):
        check_xor_params(params)


# --- the dtype rule of perceptron_predict: integer labels ---------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_passes_with_float32_and_float64_inputs(dtype) -> None:
    check_perceptron_predict(lambda x, w, w0: perceptron_predict(x.astype(dtype), w.astype(dtype), dtype(w0)), seed=0)
    check_perceptron_predict(lambda x, w, w0: perceptron_predict(x.astype(dtype), w.astype(dtype), dtype(w0)), seed=1)


@pytest.mark.parametrize(
    "wrong, dtype",
    [
        (lambda x, w, w0: w0 + x @ w > 0, "bool"),
        (lambda x, w, w0: np.where(w0 + x @ w > 0, 1.0, 0.0), "float64"),
    ],
)
def test_predict_with_the_right_values_but_not_integers_fails_naming_the_dtype(wrong, dtype) -> None:
    with pytest.raises(AssertionError, match=rf"expected an integer array .* got dtype {dtype}"):
        check_perceptron_predict(wrong, seed=0)
