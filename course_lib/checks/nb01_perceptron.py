"""Checks for notebook 01_perceptron: the neuron's forward pass, the step-function
perceptron and its learning rule, a multi-output perceptron, and a two-layer network for XOR.

Answers are compared with ``course_lib.np_ref`` on small deterministic inputs. Seed 0 holds
the visible cases (among them the lecture's worked example: w0 = 1, w = [3, -2],
x = [-1, 2] gives g(-6) ~ 0.0025, a single example of shape (D,), a point exactly on the
decision boundary and a square w), so that every typical mistake already fails there;
seeds >= 1 add hidden inputs: more boundary points, a shuffled training order, float32.

Letters: N examples, D input features, M outputs.
"""

from __future__ import annotations

import copy
from functools import partial

import numpy as np

from course_lib.checks._core import Case, Exercise, register, run_check, seeded_rng
from course_lib.checks._dtypes import DtypeRule, with_dtype_rule
from course_lib.checks._mistakes import Mistake, diagnosing_judge, matches
from course_lib.np_ref.activations import sigmoid
from course_lib.np_ref.dense import dense_forward
from course_lib.np_ref.perceptron import neuron_forward, perceptron_predict, perceptron_train
from course_lib.testing import assert_close

__all__ = [
    "LECTURE_W0",
    "LECTURE_W",
    "LECTURE_X",
    "XOR_X",
    "XOR_Y",
    "check_neuron_forward",
    "check_perceptron_predict",
    "check_perceptron_train",
    "check_multi_output_forward",
    "check_xor_params",
]

NOTEBOOK = "01_perceptron"

# The lecture's example neuron y_hat = g(1 + 3 x1 - 2 x2) and its input x = [-1, 2].
LECTURE_W0 = 1.0
LECTURE_W = np.array([3.0, -2.0])
LECTURE_X = np.array([-1.0, 2.0])

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])
_AND_Y = np.array([0, 0, 0, 1])
_OR_Y = np.array([0, 1, 1, 1])


def _refs(module: str, name: str) -> tuple[str, ...]:
    return (f"course_lib.np_ref.{module}.{name}", f"course_lib.torch_ref.{module}.{name}")


# --- neuron_forward ----------------------------------------------------------------------


def _neuron_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 101)
    if seed == 0:
        return [
            Case(
                (LECTURE_X[None, :].copy(), LECTURE_W.copy(), LECTURE_W0),
                label="the lecture's example, x (1, 2)",
            ),
            Case((rng.normal(size=(5, 3)), rng.normal(size=3), 0.5), label="x (5, 3)"),
            Case(
                (LECTURE_X.copy(), LECTURE_W.copy(), LECTURE_W0),
                label="a single example x (D,) -> a 0-d result",
            ),
        ]
    return [
        Case((rng.normal(size=4), rng.normal(size=4), 0.7), label="a single example x (D,) -> a 0-d result"),
        Case((rng.normal(size=(6, 4)), rng.normal(size=4), -1.5), label="x (6, 4), negative bias"),
        Case(
            (
                rng.normal(size=(3, 2)).astype(np.float32),
                rng.normal(size=2).astype(np.float32),
                np.float32(0.25),
            ),
            label="float32 x (3, 2)",
        ),
    ]


NEURON_FORWARD = register(
    Exercise(
        notebook=NOTEBOOK,
        name="neuron_forward",
        kind="function",
        cases=_neuron_cases,
        judge=diagnosing_judge(
            neuron_forward,
            name="neuron_forward(x, w, w0)",
            mistakes=[
                Mistake(lambda x, w, w0: sigmoid(x @ w), "the bias w0 is missing: z = w0 + x @ w."),
                Mistake(
                    lambda x, w, w0: w0 + x @ w,
                    "the non-linearity is missing: return g(z) = sigmoid(z), not z.",
                ),
                Mistake(lambda x, w, w0: sigmoid(w0 - x @ w), "sign slip: z = w0 + x @ w."),
            ],
            hint="y_hat = sigmoid(w0 + x @ w); x @ w works for x (N, D) and for a single x (D,).",
        ),
        references=(*_refs("perceptron", "neuron_forward"), *_refs("dense", "dense_forward")),
    )
)


# --- perceptron_predict ------------------------------------------------------------------


def _predict_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 102)
    if seed == 0:
        return [
            Case(
                (rng.normal(size=(8, 2)), LECTURE_W.copy(), LECTURE_W0),
                label="8 points, the lecture's line 1 + 3 x1 - 2 x2",
            ),
            Case((XOR_X.copy(), np.array([1.0, 1.0]), -1.5), label="AND gate weights on the four corners"),
            # 1 + 3 * 1 - 2 * 2 = 0 exactly: a point on the line is predicted 0.
            Case(
                (np.array([[1.0, 2.0], [-1.0, 0.0]]), LECTURE_W.copy(), LECTURE_W0),
                label="a point exactly on the line (z = 0 -> 0)",
            ),
        ]
    return [
        # 1 + 3 * 1 - 2 * 2 = 0 exactly: a point on the line is predicted 0.
        Case(
            (np.array([[1.0, 2.0], [-1.0, -1.0], [3.0, 5.0]]), LECTURE_W.copy(), LECTURE_W0),
            label="points exactly on the line (z = 0 -> 0)",
        ),
        Case((rng.normal(size=(10, 3)), rng.normal(size=3), 0.3), label="x (10, 3)"),
    ]


PERCEPTRON_PREDICT = register(
    Exercise(
        notebook=NOTEBOOK,
        name="perceptron_predict",
        kind="function",
        cases=_predict_cases,
        judge=with_dtype_rule(
            diagnosing_judge(
                perceptron_predict,
                name="perceptron_predict(x, w, w0)",
                mistakes=[
                    Mistake(
                        lambda x, w, w0: (w0 + x @ w >= 0).astype(np.int64),
                        "a point exactly on the boundary (z = 0) must be predicted 0: use z > 0, not z >= 0.",
                    ),
                    Mistake(
                        lambda x, w, w0: (x @ w > 0).astype(np.int64),
                        "the bias w0 is missing: z = w0 + x @ w.",
                    ),
                    Mistake(lambda x, w, w0: np.sign(w0 + x @ w), "labels are 0 and 1, not -1 and +1."),
                ],
                hint="predict 1 where w0 + x @ w > 0 and 0 elsewhere (as integers).",
            ),
            "perceptron_predict(x, w, w0)",
            DtypeRule.INTEGER,
        ),
        references=(*_refs("perceptron", "perceptron_predict"), *_refs("dense", "dense_forward")),
    )
)


# --- perceptron_train --------------------------------------------------------------------


def _separable(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n points in the plane labelled by a random line, at least 0.3 away from it."""
    w, w0 = rng.normal(size=2), rng.normal()
    x = rng.uniform(-3, 3, size=(4 * n, 2))
    z = (w0 + x @ w) / np.linalg.norm(w)
    keep = np.abs(z) > 0.3
    return x[keep][:n], (z[keep][:n] > 0).astype(np.int64)


def _train_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 103)
    if seed == 0:
        x, y = _separable(rng, 20)
        return [
            Case((XOR_X.copy(), _AND_Y.copy()), {"epochs": 6}, label="AND gate, 6 epochs, lr 1"),
            Case((x, y), {"lr": 0.5, "epochs": 4}, label="20 separable points, lr 0.5, 4 epochs"),
        ]
    x, y = _separable(rng, 30)
    return [
        Case((XOR_X.copy(), _OR_Y.copy()), {"lr": 0.1, "epochs": 5}, label="OR gate, lr 0.1"),
        Case((XOR_X.copy(), XOR_Y.copy()), {"epochs": 5}, label="XOR: mistakes never reach 0"),
        Case(
            (x, y),
            {"epochs": 3, "rng": np.random.default_rng(seed)},
            label="30 points, shuffled every epoch by rng",
        ),
    ]


def _train_without_bias(x, y, *, lr=1.0, epochs, rng=None):
    w, w0, mistakes = np.zeros(x.shape[1]), 0.0, []
    for _ in range(epochs):
        order = np.arange(len(y)) if rng is None else rng.permutation(len(y))
        count = 0
        for i in order:
            err = int(y[i]) - int(w0 + x[i] @ w > 0)
            if err:
                w = w + lr * err * x[i]
                count += 1
        mistakes.append(count)
    return w, w0, mistakes


def _train_batch(x, y, *, lr=1.0, epochs, rng=None):
    w, w0, mistakes = np.zeros(x.shape[1]), 0.0, []
    for _ in range(epochs):
        err = y - (w0 + x @ w > 0).astype(np.int64)
        w, w0 = w + lr * err @ x, w0 + lr * err.sum()
        mistakes.append(int(np.count_nonzero(err)))
    return w, w0, mistakes


def _whole_output_judge(
    reference, *, name: str, outputs: tuple[str, ...], mistakes: list[Mistake], hint: str
):
    """Like ``diagnosing_judge``, but a mistake is named only when it reproduces *every*
    output: two different training bugs can agree on w for one case and differ in w0."""
    compare = diagnosing_judge(reference, name=name, outputs=outputs)

    def judge(case: Case | None, output) -> None:
        assert case is not None
        try:
            compare(case, output)
        except AssertionError as err:
            diagnosis = hint
            comparable = isinstance(output, (tuple, list)) and len(output) == len(outputs)
            for mistake in mistakes if comparable else ():
                wrong = mistake.wrong(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
                if all(matches(output[i], wrong[i]) for i in range(len(outputs))):
                    diagnosis = f"your output matches a typical mistake: {mistake.hint}"
                    break
            raise AssertionError(f"{err}\nHint: {diagnosis}") from None

    judge.reference = reference  # type: ignore[attr-defined]
    return judge


_TRAIN_MISTAKES = (
    Mistake(_train_without_bias, "the bias is never updated: after a mistake also do w0 += lr * (y_i - p)."),
    Mistake(
        _train_batch,
        "update after every single example (inside the loop over samples), "
        "not once per epoch with the summed error.",
    ),
)

PERCEPTRON_TRAIN = register(
    Exercise(
        notebook=NOTEBOOK,
        name="perceptron_train",
        kind="function",
        cases=_train_cases,
        mistakes=_TRAIN_MISTAKES,
        judge=_whole_output_judge(
            perceptron_train,
            name="perceptron_train(x, y, ...)",
            outputs=("w", "w0", "mistakes_per_epoch"),
            mistakes=list(_TRAIN_MISTAKES),
            hint="start from w = 0, w0 = 0; visit the samples in order (or in rng.permutation(N) each epoch "
            "when rng is given); predict p = 1 if w0 + x_i @ w > 0 else 0; on a mistake "
            "w += lr (y_i - p) x_i and w0 += lr (y_i - p); count the mistakes of each epoch.",
        ),
        references=_refs("perceptron", "perceptron_train"),
    )
)


# --- multi_output_forward ----------------------------------------------------------------


def _multi_output_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return sigmoid(dense_forward(x, w, b)[0])


def _multi_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 104)
    if seed == 0:
        return [
            # A square w is the only shape where x @ w.T runs, so only it shows that mistake as values;
            # it comes first so that the hint, not a matmul error, is what the student sees.
            Case(
                (rng.normal(size=(2, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)),
                label="x (2, 3), square w (3, 3)",
            ),
            Case(
                (rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)),
                label="x (4, 3), w (3, 2)",
            ),
        ]
    return [
        Case(
            (rng.normal(size=(1, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)),
            label="one example, square w (3, 3)",
        ),
        Case(
            (rng.normal(size=(5, 2)), rng.normal(size=(2, 4)), rng.normal(size=4)), label="x (5, 2), w (2, 4)"
        ),
    ]


MULTI_OUTPUT_FORWARD = register(
    Exercise(
        notebook=NOTEBOOK,
        name="multi_output_forward",
        kind="function",
        cases=_multi_cases,
        judge=diagnosing_judge(
            _multi_output_reference,
            name="multi_output_forward(x, w, b)",
            mistakes=[
                Mistake(lambda x, w, b: sigmoid(x @ w), "the biases are missing: z = x @ w + b."),
                Mistake(
                    lambda x, w, b: x @ w + b, "the non-linearity is missing: apply sigmoid to every z_i."
                ),
                Mistake(lambda x, w, b: sigmoid(x @ w.T + b), "w is (D, M): use x @ w, not x @ w.T."),
            ],
            hint="every output i is its own neuron: z_i = b_i + sum_j x_j w_ji, all at once z = x @ w + b "
            "of shape (N, M), then y_hat = sigmoid(z).",
        ),
        references=(*_refs("dense", "dense_forward"), *_refs("mlp", "mlp_forward")),
    )
)


# --- xor_params (a value) ----------------------------------------------------------------


def _step(z: np.ndarray) -> np.ndarray:
    return (z > 0).astype(np.float64)


def xor_network(params, x: np.ndarray) -> np.ndarray:
    """Two layers of step neurons: params = [(w1 (2, H), b1 (H,)), (w2 (H, 1), b2 (1,))] -> (N,) labels."""
    (w1, b1), (w2, b2) = params
    return _step(_step(x @ w1 + b1) @ w2 + b2)[:, 0].astype(np.int64)


def _xor_judge(case: Case | None, answer) -> None:
    try:
        (w1, b1), (w2, b2) = answer
        w1, b1, w2, b2 = (np.asarray(a, dtype=np.float64) for a in (w1, b1, w2, b2))
    except (TypeError, ValueError):
        raise AssertionError(
            "xor_params: expected [(w1, b1), (w2, b2)], a list of two (weights, bias) pairs, "
            f"got {type(answer).__name__}"
        ) from None
    h = w1.shape[1] if w1.ndim == 2 else None
    if w1.ndim != 2 or w1.shape[0] != 2 or b1.shape != (h,) or w2.shape != (h, 1) or b2.shape != (1,):
        raise AssertionError(
            "xor_params: shapes must be w1 (2, H), b1 (H,), w2 (H, 1), b2 (1,); got "
            f"w1 {w1.shape}, b1 {b1.shape}, w2 {w2.shape}, b2 {b2.shape}"
        )
    got = xor_network([(w1, b1), (w2, b2)], XOR_X)
    assert_close(
        got,
        XOR_Y,
        name="xor_params: step network on the corners (0,0), (0,1), (1,0), (1,1)",
        hint="build XOR from gates you can draw as lines: one hidden unit for OR, one for AND, "
        "and an output unit firing for 'OR and not AND'.",
    )


_xor_judge.reference = None  # type: ignore[attr-defined]  # a value, judged by a property

XOR_PARAMS = register(Exercise(notebook=NOTEBOOK, name="xor_params", kind="value", judge=_xor_judge))


check_neuron_forward = partial(run_check, NEURON_FORWARD)
check_perceptron_predict = partial(run_check, PERCEPTRON_PREDICT)
check_perceptron_train = partial(run_check, PERCEPTRON_TRAIN)
check_multi_output_forward = partial(run_check, MULTI_OUTPUT_FORWARD)
check_xor_params = partial(run_check, XOR_PARAMS)
