"""The checks of notebook 06_cnn pass correct answers and fail typical wrong ones with a
message that names the mistake."""

from __future__ import annotations

import numpy as np
import pytest

from tests.checks.support import answer_tests
from course_lib.checks.nb06_cnn import (
    LECTURE_K,
    LECTURE_X,
    check_conv2d,
    check_conv2d_grads,
    check_conv_output_size,
    check_corr2d,
    check_max_pool2d,
)

SEEDS = (0, 1, 2)


# --- correct answers, written as a student would (no course_lib) --------------------------------


def corr2d(x, k):
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i:i + kh, j:j + kw] * k)
    return out


def conv_output_size(size, kernel, *, stride=1, pad=0):
    return (size + 2 * pad - kernel) // stride + 1


def conv2d(x, w, b, *, stride=1, pad=0, use_bias=True, channels=None):
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    c = channels or x.shape[1]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, f, conv_output_size(h, kh, stride=stride, pad=pad), conv_output_size(wd, kw, stride=stride, pad=pad)))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = xp[:, :c, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.tensordot(window, w[:, :c], axes=([1, 2, 3], [1, 2, 3])) + (b if use_bias else 0.0)
    return out


def max_pool2d(x, *, kernel=2, stride=2, reduce=np.max, start=None):
    n, c, h, w = x.shape
    out = np.zeros((n, c, (h - kernel) // stride + 1, (w - kernel) // stride + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = x[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel]
            out[:, :, i, j] = reduce(window, axis=(2, 3))
            if start is not None:
                out[:, :, i, j] = np.maximum(out[:, :, i, j], start)
    return out


def conv2d_grads(dout, x, w, *, stride=1, pad=0, db_mode="sum"):
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
            dw += np.tensordot(dout[:, :, i, j], xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    db = {"sum": dout.sum(axis=(0, 2, 3)), "zero": np.zeros(f), "mean": dout.mean(axis=(0, 2, 3))}[db_mode]
    return dx, dw, db


CORRECT = [
    (check_corr2d, corr2d),
    (check_conv_output_size, conv_output_size),
    (check_conv2d, conv2d),
    (check_max_pool2d, max_pool2d),
    (check_conv2d_grads, conv2d_grads),
]


def test_the_lecture_example_sums_to_56() -> None:
    # By hand: (0*0 + 1*1 + 3*2 + 4*3) + (1*1 + 2*2 + 4*3 + 5*4) = 19 + 37 = 56.
    out = conv2d(LECTURE_X[None], LECTURE_K[None], np.zeros(1))
    assert out[0, 0].tolist() == [[56.0, 72.0], [104.0, 120.0]]


def test_the_library_reference_passes() -> None:
    from course_lib.np_ref import conv

    for seed in SEEDS:
        check_corr2d(lambda x, k: conv.conv2d_forward_naive(x[None, None], k[None, None], np.zeros(1))[0][0, 0],
                     seed=seed)
        check_conv_output_size(conv.conv_output_size, seed=seed)
        check_conv2d(lambda *a, **kw: conv.conv2d_forward(*a, **kw)[0], seed=seed)
        check_max_pool2d(lambda x, **kw: conv.max_pool2d_forward(x, **kw)[0], seed=seed)


WRONG = [
    (check_corr2d, lambda x, k: corr2d(x, k[::-1, ::-1]), "kernel is flipped"),
    (check_corr2d, lambda x, k: corr2d(x, k.T), "kernel is transposed"),
    (check_conv_output_size, lambda n, k, *, stride=1, pad=0: (n + 2 * pad - k) // stride, "forgot the + 1"),
    (check_conv_output_size, lambda n, k, *, stride=1, pad=0: (n + pad - k) // stride + 1, "BOTH sides"),
    (check_conv_output_size, lambda n, k, *, stride=1, pad=0: (n + 2 * pad - k) / stride + 1, "floor division"),
    (check_conv2d, lambda *a, **kw: conv2d(*a, use_bias=False, **kw), "bias is missing"),
    (check_conv2d, lambda *a, **kw: conv2d(*a, channels=1, **kw), "only one input channel"),
    (check_conv2d, lambda x, w, b, **kw: conv2d(x, w[:, :, ::-1, ::-1], b, **kw), "kernel is flipped"),
    (check_max_pool2d, lambda x, **kw: max_pool2d(x, reduce=np.mean, **kw), "average pooling"),
    (check_conv2d_grads, lambda *a, **kw: conv2d_grads(*a, db_mode="zero", **kw), "bias gradient is missing"),
    (check_conv2d_grads, lambda *a, **kw: conv2d_grads(*a, db_mode="mean", **kw), "SUM the gradients"),
    (check_conv2d_grads, lambda *a, **kw: conv2d_grads(*a, **kw)[:2], "expected a tuple of 3"),
]


# the correct answers pass (also across the autograder wire); the typical mistakes fail with their hint
(test_a_correct_answer_passes, test_cases_and_outputs_cross_the_autograder_wire,
 test_a_typical_mistake_fails_with_a_hint) = answer_tests(CORRECT, WRONG, seeds=SEEDS)


def test_a_zero_initialised_maximum_is_caught_in_the_visible_cases() -> None:
    wrong = lambda x, **kw: max_pool2d(x, start=0.0, **kw)  # noqa: E731
    with pytest.raises(AssertionError, match="start it at -inf"):
        check_max_pool2d(wrong, seed=0)


def test_the_message_names_the_case_and_the_first_bad_index() -> None:
    with pytest.raises(AssertionError) as err:
        check_conv2d(lambda *a, **kw: conv2d(*a, use_bias=False, **kw))
    text = str(err.value)
    assert "lecture example" in text or "stride=1, pad=1" in text
    assert "first mismatch at index" in text
