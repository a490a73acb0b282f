"""Checks for notebook 04_activations: derivatives of activations, softmax, one-hot labels,
and why a network of linear layers collapses into one linear layer.

Every answer is compared with ``course_lib.np_ref`` on small deterministic inputs. Seed 0
holds the visible cases, among them z = 0 exactly (where relu has a kink) and large logits
for softmax; seeds >= 1 add hidden ones: float32 inputs, a 3-D z, |z| up to 20, a batch of one.

dtype rule (stated in the notebook and in every stub's docstring): every array answer is a
floating-point array (float32 or float64); a bool or integer array fails, naming its dtype.

Letters: N batch, D input features, H hidden units, M outputs, K classes.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from course_lib.checks._core import Case, Exercise, Judge, register, run_check, seeded_rng
from course_lib.checks._dtypes import DtypeRule, with_dtype_rule
from course_lib.checks._mistakes import Mistake, diagnosing_judge
from course_lib.np_ref import activations as act
from course_lib.np_ref.dense import dense_forward
from course_lib.testing import assert_close

__all__ = [
    "check_sigmoid_grad",
    "check_relu_grad",
    "check_leaky_relu",
    "check_swish_grad",
    "check_softmax",
    "check_one_hot",
    "check_collapse_linear",
]

NOTEBOOK = "04_activations"


def _refs(name: str) -> tuple[str, ...]:
    return (f"course_lib.np_ref.activations.{name}", f"course_lib.torch_ref.activations.{name}")


def _floating(judge: Judge, name: str) -> Judge:
    return with_dtype_rule(judge, name, DtypeRule.FLOATING)


def _z_cases(salt: int, *, scale: float = 3.0):
    """Pre-activations: a (4, 5) batch with exact zeros; hidden seeds add float32 and a 3-D array.

    |z| stays below 20 so that a correct textbook formula never overflows (no warnings).
    """

    def cases(seed: int) -> list[Case]:
        rng = seeded_rng(seed, salt)
        z = rng.normal(0.0, scale, size=(4, 5))
        z.flat[::6] = 0.0  # the kink of relu: the visible case pins relu'(0) = 0
        out = [Case((z,), label="z of shape (4, 5), some entries exactly 0")]
        if seed >= 1:
            out.append(
                Case((np.array([-20.0, -2.0, -0.5, 0.0, 0.5, 2.0, 20.0]),), label="z with 0 and |z| up to 20")
            )
            out.append(
                Case(
                    (rng.normal(0.0, scale, size=(2, 3, 4)).astype(np.float32),), label="float32 z (2, 3, 4)"
                )
            )
        return out

    return cases


SIGMOID_GRAD = register(
    Exercise(
        notebook=NOTEBOOK,
        name="sigmoid_grad",
        kind="function",
        cases=_z_cases(401),
        judge=_floating(
            diagnosing_judge(
                act.sigmoid_grad,
                name="sigmoid_grad(z)",
                mistakes=[
                    Mistake(
                        lambda z: act.sigmoid(z),
                        "you returned sigma(z) itself; the derivative is sigma(z) * (1 - sigma(z)).",
                    ),
                    Mistake(
                        lambda z: z * (1 - z), "you applied s (1 - s) to z instead of to s = sigmoid(z)."
                    ),
                    Mistake(
                        lambda z: act.sigmoid(z) * (1 + act.sigmoid(z)),
                        "sign slip: it is sigma(z) * (1 - sigma(z)).",
                    ),
                ],
                hint="g'(z) = g(z) (1 - g(z)) with g = sigmoid; use `sigmoid` from course_lib.",
            ),
            "sigmoid_grad(z)",
        ),
        references=_refs("sigmoid_grad"),
    )
)


RELU_GRAD = register(
    Exercise(
        notebook=NOTEBOOK,
        name="relu_grad",
        kind="function",
        cases=_z_cases(402),
        judge=_floating(
            diagnosing_judge(
                act.relu_grad,
                name="relu_grad(z)",
                mistakes=[
                    Mistake(
                        lambda z: (z >= 0).astype(z.dtype),
                        "at z = 0 exactly the course (like torch) uses 0, not 1: test z > 0.",
                    ),
                    Mistake(
                        lambda z: act.relu(z),
                        "you returned relu(z) itself; the derivative is 1 where z > 0 and 0 elsewhere.",
                    ),
                ],
                hint="relu'(z) is 1.0 where z > 0 and 0.0 elsewhere (0 at z = 0), as a floating-point array.",
            ),
            "relu_grad(z)",
        ),
        references=(*_refs("relu_grad"), *_refs("leaky_relu_grad")),  # leaky_relu_grad(alpha=0)
    )
)


def _leaky_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 403)
    out = [
        Case((rng.normal(0.0, 3.0, size=(4, 5)),), label="z of shape (4, 5), default alpha"),
        Case(
            (rng.normal(0.0, 3.0, size=(6,)),), {"alpha": 0.1}, label="alpha=0.1, the lecture's max(0.1 z, z)"
        ),
    ]
    if seed >= 1:
        out.append(
            Case((np.array([-3.0, -1e-3, 0.0, 1e-3, 3.0]),), {"alpha": 0.2}, label="z around 0, alpha=0.2")
        )
        out.append(
            Case((rng.normal(0.0, 3.0, size=(2, 3, 4)).astype(np.float32),), label="float32 z (2, 3, 4)")
        )
    return out


LEAKY_RELU = register(
    Exercise(
        notebook=NOTEBOOK,
        name="leaky_relu",
        kind="function",
        cases=_leaky_cases,
        judge=_floating(
            diagnosing_judge(
                act.leaky_relu,
                name="leaky_relu(z, alpha=...)",
                mistakes=[
                    Mistake(
                        lambda z, alpha=0.01: act.relu(z),
                        "negative z must give alpha * z, not 0: that is plain relu.",
                    ),
                    Mistake(
                        lambda z, alpha=0.01: np.where(z > 0, alpha * z, z),
                        "the slopes are swapped: z where z > 0, alpha * z elsewhere.",
                    ),
                    Mistake(
                        lambda z, alpha=0.01: np.where(z > 0, z, 0.01 * z),
                        "use the `alpha` argument, not a hard-coded 0.01.",
                    ),
                ],
                hint="leaky_relu(z) = z where z > 0, else alpha * z (np.where is handy).",
            ),
            "leaky_relu(z, alpha=...)",
        ),
        references=(*_refs("leaky_relu"), *_refs("leaky_relu_grad")),  # z * leaky_relu_grad(z)
    )
)


SWISH_GRAD = register(
    Exercise(
        notebook=NOTEBOOK,
        name="swish_grad",
        kind="function",
        cases=_z_cases(404),
        judge=_floating(
            diagnosing_judge(
                act.swish_grad,
                name="swish_grad(z)",
                mistakes=[
                    Mistake(
                        lambda z: act.sigmoid(z), "the product rule has two terms: d(z s)/dz = s + z s'(z)."
                    ),
                    Mistake(
                        lambda z: act.sigmoid_grad(z),
                        "the product rule has two terms: d(z s)/dz = s + z s'(z).",
                    ),
                    Mistake(
                        lambda z: z * act.sigmoid_grad(z),
                        "the product rule has two terms: you dropped the s(z) term.",
                    ),
                ],
                hint="swish(z) = z * sigmoid(z); by the product rule swish'(z) = s + z s (1 - s) with s = sigmoid(z).",
            ),
            "swish_grad(z)",
        ),
        references=_refs("swish_grad"),
    )
)


def _softmax_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 405)
    out = [
        Case((rng.normal(0.0, 2.0, size=(4, 3)),), label="logits (4, 3)"),
        Case((np.array([[1.0, 2.0, 3.0]]),), label="one row [1, 2, 3]"),
        Case((np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 5.0]]),), label="large logits (stability)"),
    ]
    if seed >= 1:
        out.append(Case((np.array([[-800.0, 700.0, 699.0]]),), label="large logits of both signs"))
        out.append(
            Case((rng.normal(0.0, 2.0, size=(5, 10)).astype(np.float32),), label="float32 logits (5, 10)")
        )
    return out


def _softmax_wrong_axis(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum(axis=0, keepdims=True)


def _softmax_whole_array(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


SOFTMAX = register(
    Exercise(
        notebook=NOTEBOOK,
        name="softmax",
        kind="function",
        cases=_softmax_cases,
        judge=_floating(
            diagnosing_judge(
                act.softmax,
                name="softmax(z)",
                mistakes=[
                    Mistake(
                        _softmax_whole_array,
                        "normalise each row separately: sum over the last axis with keepdims=True.",
                    ),
                    Mistake(
                        _softmax_wrong_axis,
                        "sum over the classes (the last axis), not over the batch (axis 0).",
                    ),
                ],
                hint="subtract each row's max before np.exp (softmax(z) = softmax(z - c)), then divide by the row sum; "
                "with large logits the unshifted exp overflows to inf and inf / inf = nan.",
            ),
            "softmax(z)",
        ),
        references=(*_refs("softmax"), *_refs("log_softmax")),  # exp(log_softmax)
    )
)


def _one_hot_reference(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Check-side only: course_lib has no one-hot function (losses index the true class instead)."""
    return np.eye(num_classes)[labels]


def _one_hot_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 406)
    if seed == 0:
        return [
            Case((np.array([3]), 5), label="the lecture's Y = 4 of K = 5 (label 3, counted from 0)"),
            Case((rng.integers(0, 3, size=6), 3), label="6 labels, K = 3"),
        ]
    return [
        Case((rng.integers(0, 10, size=8), 10), label="8 labels, K = 10"),
        Case((np.array([0, 0, 1]), 4), label="K larger than the largest label + 1"),
    ]


def _one_hot_judge(case: Case | None, output) -> None:
    assert case is not None
    labels, k = case.args
    assert_close(
        output,
        _one_hot_reference(labels, k),
        name=f"one_hot(labels, {k}) [{case.label}]",
        hint="row i is all zeros except a 1 in column labels[i]; the width is num_classes, "
        "not labels.max() + 1 (np.eye(num_classes)[labels] is one way).",
    )


_one_hot_judge.reference = _one_hot_reference  # type: ignore[attr-defined]

ONE_HOT = register(
    Exercise(
        notebook=NOTEBOOK,
        name="one_hot",
        kind="function",
        cases=_one_hot_cases,
        judge=_floating(_one_hot_judge, "one_hot(labels, num_classes)"),
        mistakes=(
            Mistake(
                lambda labels, k: np.eye(labels.max() + 1)[labels],
                "the width is num_classes, not labels.max() + 1.",
            ),
            Mistake(
                lambda labels, k: np.eye(k)[labels].T,
                "one row per label: shape (N, num_classes), not transposed.",
            ),
        ),
        # No references: course_lib has no function that one-hot encodes labels.
    )
)


def _collapse_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 407)
    d, h, m = (2, 4, 3) if seed == 0 else (3, 5, 1)
    return [
        Case(
            (rng.normal(size=(d, h)), rng.normal(size=h), rng.normal(size=(h, m)), rng.normal(size=m)),
            label=f"w1 ({d}, {h}), w2 ({h}, {m})",
        )
    ]


def _collapse_reference(
    w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Check-side only: course_lib has no function that merges two linear layers.

    Measured rather than derived (the derivation is the exercise): the merged layer's bias
    is what the two layers give for x = 0, and its weights what they add for each unit x."""
    two_layers = lambda x: (x @ w1 + b1) @ w2 + b2  # noqa: E731
    bias = two_layers(np.zeros(w1.shape[0]))
    return two_layers(np.eye(w1.shape[0])) - bias, bias


def _collapse_judge(case: Case | None, output) -> None:
    """Property: one dense layer with the answer's (w, b) gives the two linear layers' output."""
    assert case is not None
    w1, b1, w2, b2 = case.args
    if not isinstance(output, (tuple, list)) or len(output) != 2:
        raise AssertionError(f"collapse_linear: expected a tuple (w, b), got {type(output).__name__}")
    w, b = (np.asarray(o) for o in output)
    expected_w, expected_b = _collapse_reference(w1, b1, w2, b2)
    assert_close(
        w,
        expected_w,
        name=f"collapse_linear: w [{case.label}]",
        hint="x @ w1 @ w2 = x @ (w1 @ w2): the weights multiply in the order the data meets them.",
    )
    assert_close(
        b,
        expected_b,
        name=f"collapse_linear: b [{case.label}]",
        hint="the first bias also goes through the second layer: (x @ w1 + b1) @ w2 + b2.",
    )
    x = seeded_rng(0, 408).normal(size=(5, w1.shape[0]))
    two_layers = dense_forward(dense_forward(x, w1, b1)[0], w2, b2)[0]
    assert_close(x @ w + b, two_layers, name="collapse_linear: one layer vs two on random x")


_collapse_judge.reference = _collapse_reference  # type: ignore[attr-defined]

COLLAPSE_LINEAR = register(
    Exercise(
        notebook=NOTEBOOK,
        name="collapse_linear",
        kind="function",
        cases=_collapse_cases,
        judge=_collapse_judge,
        mistakes=(
            Mistake(
                lambda w1, b1, w2, b2: (w1 @ w2, b2), "the first bias also goes through the second layer."
            ),
            Mistake(
                lambda w1, b1, w2, b2: (w2.T @ w1.T, b1 @ w2 + b2),
                "w = w1 @ w2 of shape (D, M), not its transpose.",
            ),
        ),
        # No references: course_lib has no function that merges two linear layers.
    )
)


check_sigmoid_grad = partial(run_check, SIGMOID_GRAD)
check_relu_grad = partial(run_check, RELU_GRAD)
check_leaky_relu = partial(run_check, LEAKY_RELU)
check_swish_grad = partial(run_check, SWISH_GRAD)
check_softmax = partial(run_check, SOFTMAX)
check_one_hot = partial(run_check, ONE_HOT)
check_collapse_linear = partial(run_check, COLLAPSE_LINEAR)
