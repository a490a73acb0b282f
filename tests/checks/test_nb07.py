"""The checks of notebook 07_rnn pass correct answers and fail typical wrong ones with a
message that names the mistake."""

from __future__ import annotations

import numpy as np
import pytest

from tests.checks.support import answer_tests
from course_lib.checks.nb07_rnn import (
    check_clip_grad_norm,
    check_lstm_cell,
    check_rnn_bptt,
    check_rnn_cell,
    check_rnn_unroll,
)

SEEDS = (0, 1, 2)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# --- correct answers, written as a student would (no course_lib) --------------------------------


def rnn_cell(x, h_prev, wx, wh, b):
    return np.tanh(x @ wx + h_prev @ wh + b)


def rnn_unroll(x, h0, wx, wh, b):
    h, out = h0, []
    for t in range(x.shape[1]):
        h = rnn_cell(x[:, t], h, wx, wh, b)
        out.append(h)
    return np.stack(out, axis=1)


def rnn_bptt(dh, x, h0, wx, wh, b, *, carry=True, bias=True):
    hs = rnn_unroll(x, h0, wx, wh, b)
    dx = np.zeros_like(x)
    dwx, dwh, db = np.zeros_like(wx), np.zeros_like(wh), np.zeros_like(b)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(x.shape[1])):
        h_prev = hs[:, t - 1] if t > 0 else h0
        da = (dh[:, t] + (dh_next if carry else 0.0)) * (1.0 - hs[:, t] ** 2)
        dx[:, t] = da @ wx.T
        dwx += x[:, t].T @ da
        dwh += h_prev.T @ da
        db += da.sum(axis=0)
        dh_next = da @ wh.T
    return dx, dh_next, dwx, dwh, (db if bias else np.zeros_like(b))


def clip_grad_norm(grads, *, max_norm, per_tensor=False, always=False):
    total = float(np.sqrt(sum(np.sum(g**2) for g in grads)))
    if per_tensor:
        return [g * min(1.0, max_norm / np.linalg.norm(g)) for g in grads], total
    scale = max_norm / total if always else min(1.0, max_norm / total)
    return [g * scale for g in grads], total


def lstm_cell(x, h_prev, c_prev, wx, wh, b, *, order="ifgo", tanh_c=True):
    a = dict(zip(order, np.split(x @ wx + h_prev @ wh + b, 4, axis=1)))
    c = sigmoid(a["f"]) * c_prev + sigmoid(a["i"]) * np.tanh(a["g"])
    return sigmoid(a["o"]) * (np.tanh(c) if tanh_c else c), c


CORRECT = [
    (check_rnn_cell, rnn_cell),
    (check_rnn_unroll, rnn_unroll),
    (check_rnn_bptt, rnn_bptt),
    (check_clip_grad_norm, clip_grad_norm),
    (check_lstm_cell, lstm_cell),
]


def test_the_library_reference_passes() -> None:
    from course_lib.np_ref import recurrent

    for seed in SEEDS:
        check_rnn_cell(lambda *a: recurrent.rnn_step_forward(*a)[0], seed=seed)
        check_rnn_unroll(lambda *a: recurrent.rnn_forward(*a)[0], seed=seed)
        check_clip_grad_norm(recurrent.clip_grad_norm, seed=seed)
        check_lstm_cell(lambda *a: recurrent.lstm_step_forward(*a)[:2], seed=seed)


WRONG = [
    (check_rnn_cell, lambda x, h, wx, wh, b: x @ wx + h @ wh + b, "tanh is missing"),
    (check_rnn_cell, lambda x, h, wx, wh, b: np.tanh(x @ wx + h @ wh.T + b), "wh is transposed"),
    (check_rnn_cell, lambda x, h, wx, wh, b: np.tanh(x @ wx + h @ wh), "bias b is missing"),
    (check_rnn_unroll,
     lambda x, h0, wx, wh, b: np.stack([rnn_cell(x[:, t], h0, wx, wh, b) for t in range(x.shape[1])], 1),
     "Carry the state"),
    (check_rnn_unroll, lambda *a: rnn_unroll(*a)[:, -1], "wrong shape"),
    (check_rnn_bptt, lambda *a: rnn_bptt(*a, carry=False), "dh is not carried across time steps"),
    (check_rnn_bptt, lambda *a: rnn_bptt(*a, bias=False), "bias gradient is missing"),
    (check_rnn_bptt, lambda *a: rnn_bptt(*a)[:4], "expected a tuple of 5"),
    (check_clip_grad_norm, lambda g, **kw: clip_grad_norm(g, per_tensor=True, **kw), "clipped by its own norm"),
    (check_clip_grad_norm, lambda g, **kw: ([np.clip(a, -kw["max_norm"], kw["max_norm"]) for a in g], 0.0),
     "total_norm"),
    (check_clip_grad_norm, lambda g, **kw: clip_grad_norm(g, **kw)[0], "expected a tuple (clipped, total_norm)"),
    (check_lstm_cell, lambda *a: lstm_cell(*a, order="ifog"), "gates are read in the wrong order"),
    (check_lstm_cell, lambda *a: lstm_cell(*a, tanh_c=False), "missing the tanh"),
]


# the correct answers pass (also across the autograder wire); the typical mistakes fail with their hint
(test_a_correct_answer_passes, test_cases_and_outputs_cross_the_autograder_wire,
 test_a_typical_mistake_fails_with_a_hint) = answer_tests(CORRECT, WRONG, seeds=SEEDS)


def test_clipping_below_the_threshold_is_caught_in_the_visible_cases() -> None:
    # The visible cases hold one gradient above max_norm and one below: scaling always fails the second.
    wrong = lambda g, **kw: clip_grad_norm(g, always=True, **kw)  # noqa: E731
    with pytest.raises(AssertionError, match="already below max_norm"):
        check_clip_grad_norm(wrong, seed=0)


def test_a_missing_answer_says_so() -> None:
    def rnn_cell(x, h_prev, wx, wh, b):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        check_rnn_cell(rnn_cell)


def test_the_message_shows_expected_got_and_first_bad_index() -> None:
    with pytest.raises(AssertionError) as err:
        check_rnn_cell(lambda x, h, wx, wh, b: np.tanh(x @ wx + h @ wh + b) + np.eye(*x.shape[:1], wh.shape[0]) * 0.1)
    text = str(err.value)
    assert "first mismatch at index (0, 0)" in text and "expected" in text and "got" in text
