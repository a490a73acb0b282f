"""Checks for notebook 02_gradient_descent: loss functions with their gradients, and the
update rules of momentum, Adagrad, RMSprop and Adam.

Answers are compared with ``course_lib.np_ref`` (``losses`` and ``optim``) on small
deterministic inputs. Seed 0 holds the visible cases, among them (N, M) targets, large
logits and a state from several steps in (Adam's bias correction at t > 1); seeds >= 1 add
hidden inputs: float32, soft targets, params of shape (2, 3), other hyper-parameters.

A loss returns ``(loss, dpred)``: the mean loss and its gradient with respect to the
prediction. A step returns ``(new_param, new_state)`` with the state as the NamedTuple of
``course_lib.np_ref.optim`` (``MomentumState``, ``AdagradState``, ``RMSpropState``,
``AdamState``).

Letters: N batch, K classes.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import numpy as np

from course_lib.checks._core import Case, Exercise, register, run_check, seeded_rng
from course_lib.checks._mistakes import Mistake, diagnosing_judge, matches
from course_lib.np_ref import losses, optim
from course_lib.np_ref.activations import log_softmax, softmax
from course_lib.testing import assert_close

__all__ = [
    "check_mse_loss",
    "check_binary_cross_entropy",
    "check_softmax_cross_entropy",
    "check_momentum_step",
    "check_adagrad_step",
    "check_rmsprop_step",
    "check_adam_step",
]

NOTEBOOK = "02_gradient_descent"


def _refs(module: str, name: str) -> tuple[str, ...]:
    return (f"course_lib.np_ref.{module}.{name}", f"course_lib.torch_ref.{module}.{name}")


# --- losses ------------------------------------------------------------------------------


def _mse_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 201)
    if seed == 0:
        return [
            Case((rng.normal(size=6), rng.normal(size=6)), label="pred, target (6,)"),
            Case(
                (rng.normal(size=(3, 4)), rng.normal(size=(3, 4))),
                label="pred, target (3, 4): mean over all 12",
            ),
        ]
    return [
        Case(
            (rng.normal(size=(4, 3)), rng.normal(size=(4, 3))), label="pred, target (4, 3): mean over all 12"
        ),
        Case(
            (rng.normal(size=5).astype(np.float32), rng.normal(size=5).astype(np.float32)),
            label="float32 (5,)",
        ),
    ]


MSE_LOSS = register(
    Exercise(
        notebook=NOTEBOOK,
        name="mse_loss",
        kind="function",
        cases=_mse_cases,
        judge=diagnosing_judge(
            losses.mse_loss,
            name="mse_loss(pred, target)",
            outputs=("loss", "dpred"),
            mistakes=[
                Mistake(
                    lambda p, t: (np.sum((p - t) ** 2), 2 * (p - t)),
                    "sum instead of mean: divide by the number of elements.",
                ),
                Mistake(
                    lambda p, t: (np.mean((p - t) ** 2), (p - t) / p.size),
                    "d/dp (p - t)^2 = 2 (p - t): the factor 2 is missing.",
                ),
                Mistake(
                    lambda p, t: (np.mean((p - t) ** 2), 2 * (t - p) / p.size),
                    "sign slip: the gradient is 2 (pred - target) / size.",
                ),
                Mistake(
                    lambda p, t: (np.mean((p - t) ** 2), 2 * (p - t) / len(p)),
                    "divide by the number of elements (pred.size), not by len(pred) (the rows).",
                ),
            ],
            hint="loss = mean((pred - target)^2) over all elements; dpred = 2 (pred - target) / pred.size.",
        ),
        references=_refs("losses", "mse_loss"),
    )
)


def _bce_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 202)
    if seed == 0:
        return [
            Case(
                (rng.uniform(0.05, 0.95, size=6), rng.integers(0, 2, size=6).astype(np.float64)),
                label="probs, y (6,)",
            )
        ]
    return [
        Case(
            (rng.uniform(0.02, 0.98, size=(3, 4)), rng.integers(0, 2, size=(3, 4)).astype(np.float64)),
            label="probs, y (3, 4)",
        ),
        Case(
            (rng.uniform(0.1, 0.9, size=5), rng.uniform(0.0, 1.0, size=5)), label="soft targets y in [0, 1]"
        ),
    ]


def _bce(p, y):
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


BINARY_CROSS_ENTROPY = register(
    Exercise(
        notebook=NOTEBOOK,
        name="binary_cross_entropy",
        kind="function",
        cases=_bce_cases,
        judge=diagnosing_judge(
            losses.binary_cross_entropy,
            name="binary_cross_entropy(probs, y)",
            outputs=("loss", "dprobs"),
            mistakes=[
                Mistake(
                    lambda p, y: (-_bce(p, y), -(p - y) / (p * (1 - p)) / p.size),
                    "the minus sign is missing: the loss is -mean(y log p + (1 - y) log(1 - p)), always >= 0.",
                ),
                Mistake(
                    lambda p, y: (_bce(p, y) * p.size, (p - y) / (p * (1 - p))),
                    "sum instead of mean: divide by the number of elements.",
                ),
                Mistake(
                    lambda p, y: (_bce(p, y), (p - y) / p.size),
                    "(p - y) / size is the gradient with respect to the *logit*; with respect to p it is "
                    "(p - y) / (p (1 - p)) / size.",
                ),
            ],
            hint="loss = -mean(y log p + (1 - y) log(1 - p)); dprobs = (p - y) / (p (1 - p)) / size.",
        ),
        references=(
            *_refs("losses", "binary_cross_entropy"),
            *_refs("losses", "binary_cross_entropy_with_logits"),
        ),
    )
)


def _sce_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 203)
    if seed == 0:
        return [
            Case((rng.normal(0, 2, size=(4, 3)), np.array([0, 2, 1, 2])), label="logits (4, 3)"),
            Case(
                (np.array([[800.0, 0.0, -5.0], [2.0, -1000.0, 1.0]]), np.array([0, 1])),
                label="large logits (stability)",
            ),
        ]
    return [
        Case((rng.normal(0, 2, size=(6, 5)), rng.integers(0, 5, size=6)), label="logits (6, 5)"),
        Case(
            (np.array([[1000.0, 0.0, -1000.0], [5.0, 800.0, 3.0]]), np.array([1, 1])),
            label="large logits (stability)",
        ),
    ]


def _sce_no_mean_grad(z, labels):
    p = softmax(z)
    p[np.arange(len(labels)), labels] -= 1
    return -np.mean(log_softmax(z)[np.arange(len(labels)), labels]), p


def _sce_sum(z, labels):
    loss, grad = losses.softmax_cross_entropy(z, labels)
    return loss * len(labels), grad * len(labels)


def _sce_no_onehot(z, labels):
    return -np.mean(log_softmax(z)[np.arange(len(labels)), labels]), softmax(z) / len(labels)


SOFTMAX_CROSS_ENTROPY = register(
    Exercise(
        notebook=NOTEBOOK,
        name="softmax_cross_entropy",
        kind="function",
        cases=_sce_cases,
        judge=diagnosing_judge(
            losses.softmax_cross_entropy,
            name="softmax_cross_entropy(logits, labels)",
            outputs=("loss", "dlogits"),
            mistakes=[
                # most specific first: the per-output diagnosis takes the first mistake that matches
                Mistake(
                    _sce_no_mean_grad,
                    "the loss is a mean over N examples, so the gradient is divided by N too.",
                ),
                Mistake(_sce_sum, "sum instead of mean over the batch: divide loss and gradient by N."),
                Mistake(
                    _sce_no_onehot,
                    "the gradient is softmax(logits) - one_hot(labels): subtract 1 at each true class.",
                ),
            ],
            hint="loss = -mean(log softmax(logits)[i, labels[i]]); dlogits = (softmax(logits) - one_hot(labels)) / N. "
            "Compute log softmax as (z - max) - log(sum(exp(z - max))) so that large logits neither overflow nor "
            "give log(0).",
        ),
        references=_refs("losses", "softmax_cross_entropy"),
    )
)


# --- optimizer steps ---------------------------------------------------------------------


def _step_judge(
    reference, *, name: str, state_type: type, fields: tuple[str, ...], mistakes: list[Mistake], hint: str
):
    """Compare new_param, then the named fields of the new state, with ``reference``."""

    def judge(case: Case | None, output: Any) -> None:
        assert case is not None

        def call(fn):
            return fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))

        where = f"{name} [{case.label}]"
        if not isinstance(output, (tuple, list)) or len(output) != 2:
            raise AssertionError(
                f"{where}: expected a tuple (new_param, new_state), got {type(output).__name__}."
            )
        want_param, want_state = call(reference)
        new_param, new_state = output
        try:
            assert_close(new_param, want_param, name=f"{where}: new_param")
        except AssertionError as err:
            diagnosis = hint
            for mistake in mistakes:
                wrong = call(mistake.wrong)[0]
                if not matches(wrong, want_param) and matches(new_param, wrong):
                    diagnosis = f"your output matches a typical mistake: {mistake.hint}"
                    break
            raise AssertionError(f"{err}\nHint: {diagnosis}") from None
        for field in fields:
            if not hasattr(new_state, field):
                raise AssertionError(
                    f"{where}: the new state must be a {state_type.__name__} (from course_lib.np_ref.optim) "
                    f"with a field {field!r}; got {type(new_state).__name__}. The next step reads it back."
                )
            assert_close(
                getattr(new_state, field),
                getattr(want_state, field),
                name=f"{where}: new_state.{field}",
                hint=hint,
            )

    judge.mistakes = tuple(mistakes)  # type: ignore[attr-defined]  # read by register()
    judge.reference = reference  # type: ignore[attr-defined]
    return judge


def _step_cases(salt: int, make_state, *, visible_kwargs: dict, hidden_kwargs: dict):
    """A first step (state=None) and a step from a state built by ``make_state(rng, param)``."""

    def cases(seed: int) -> list[Case]:
        rng = seeded_rng(seed, salt)
        shape = (3,) if seed == 0 else (2, 3)
        kwargs = visible_kwargs if seed == 0 else hidden_kwargs
        param, grad = rng.normal(size=shape), rng.normal(size=shape)
        later_param, later_grad = rng.normal(size=shape), rng.normal(size=shape)
        return [
            Case((param, grad), dict(kwargs), label=f"first step (state=None), param {shape}"),
            Case(
                (later_param, later_grad),
                {**kwargs, "state": make_state(rng, later_param)},
                label=f"a later step, from a given state, param {shape}",
            ),
        ]

    return cases


def _momentum_state(rng, param):
    return optim.MomentumState(rng.normal(size=param.shape))


def _momentum_plain_sgd(param, grad, *, lr, momentum=0.9, state=None):
    return param - lr * grad, None


def _momentum_ema(param, grad, *, lr, momentum=0.9, state=None):
    buf = grad if state is None else momentum * state.velocity + (1 - momentum) * grad
    return param - lr * buf, None


MOMENTUM_STEP = register(
    Exercise(
        notebook=NOTEBOOK,
        name="momentum_step",
        kind="function",
        cases=_step_cases(
            204, _momentum_state, visible_kwargs={"lr": 0.1}, hidden_kwargs={"lr": 0.05, "momentum": 0.5}
        ),
        judge=_step_judge(
            optim.momentum_step,
            name="momentum_step",
            state_type=optim.MomentumState,
            fields=("velocity",),
            mistakes=[
                Mistake(
                    _momentum_plain_sgd,
                    "the step ignores the velocity: move by lr * velocity, not lr * grad.",
                ),
                Mistake(
                    _momentum_ema,
                    "torch's form adds the whole gradient: velocity = momentum * velocity + grad "
                    "(no (1 - momentum) factor).",
                ),
            ],
            hint="velocity = grad on the first step (state None), else momentum * state.velocity + grad; "
            "new_param = param - lr * velocity; return (new_param, MomentumState(velocity)).",
        ),
        references=_refs("optim", "momentum_step"),
    )
)


def _adagrad_state(rng, param):
    return optim.AdagradState(rng.uniform(0.5, 2.0, size=param.shape), 3)


def _adagrad_no_sqrt(param, grad, *, lr=1e-2, eps=1e-10, state=None):
    sum_sq = (0 if state is None else state.sum_sq) + grad * grad
    return param - lr * grad / (sum_sq + eps), None


def _adagrad_no_history(param, grad, *, lr=1e-2, eps=1e-10, state=None):
    return param - lr * grad / (np.abs(grad) + eps), None


ADAGRAD_STEP = register(
    Exercise(
        notebook=NOTEBOOK,
        name="adagrad_step",
        kind="function",
        cases=_step_cases(205, _adagrad_state, visible_kwargs={"lr": 0.1}, hidden_kwargs={"lr": 0.5}),
        judge=_step_judge(
            optim.adagrad_step,
            name="adagrad_step",
            state_type=optim.AdagradState,
            fields=("sum_sq", "step"),
            mistakes=[
                Mistake(
                    _adagrad_no_sqrt, "divide by the square root of the sum of squares: sqrt(sum_sq) + eps."
                ),
                Mistake(
                    _adagrad_no_history,
                    "add this step's grad^2 to the sum carried in state.sum_sq; "
                    "the history is the whole point.",
                ),
            ],
            hint="sum_sq = (0 on the first step, else state.sum_sq) + grad**2; new_param = param - lr * grad / "
            "(sqrt(sum_sq) + eps); return (new_param, AdagradState(sum_sq, step + 1)) with step 0 before the first.",
        ),
        references=_refs("optim", "adagrad_step"),
    )
)


def _rmsprop_state(rng, param):
    zeros = np.zeros_like(param)
    return optim.RMSpropState(rng.uniform(0.1, 1.0, size=param.shape), zeros, zeros)


def _rmsprop_swapped(param, grad, *, lr=1e-2, alpha=0.99, eps=1e-8, state=None):
    old = 0 if state is None else state.square_avg
    sq = (1 - alpha) * old + alpha * grad * grad
    return param - lr * grad / (np.sqrt(sq) + eps), None


def _rmsprop_no_sqrt(param, grad, *, lr=1e-2, alpha=0.99, eps=1e-8, state=None):
    old = 0 if state is None else state.square_avg
    sq = alpha * old + (1 - alpha) * grad * grad
    return param - lr * grad / (sq + eps), None


RMSPROP_STEP = register(
    Exercise(
        notebook=NOTEBOOK,
        name="rmsprop_step",
        kind="function",
        cases=_step_cases(
            206, _rmsprop_state, visible_kwargs={"lr": 0.01}, hidden_kwargs={"lr": 0.003, "alpha": 0.9}
        ),
        judge=_step_judge(
            optim.rmsprop_step,
            name="rmsprop_step",
            state_type=optim.RMSpropState,
            fields=("square_avg",),
            mistakes=[
                Mistake(
                    _rmsprop_swapped,
                    "alpha weighs the *old* average: square_avg = alpha * old + (1 - alpha) * grad**2.",
                ),
                Mistake(_rmsprop_no_sqrt, "divide by the root of the average: sqrt(square_avg) + eps."),
            ],
            hint="square_avg = alpha * (0 on the first step, else state.square_avg) + (1 - alpha) * grad**2; "
            "new_param = param - lr * grad / (sqrt(square_avg) + eps).",
        ),
        references=_refs("optim", "rmsprop_step"),
    )
)


def _adam_state(rng, param):
    return optim.AdamState(rng.normal(0, 0.5, size=param.shape), rng.uniform(0.1, 1.0, size=param.shape), 4)


def _adam_no_correction(param, grad, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, state=None):
    m0, v0 = (0, 0) if state is None else (state.m, state.v)
    m = beta1 * m0 + (1 - beta1) * grad
    v = beta2 * v0 + (1 - beta2) * grad * grad
    return param - lr * m / (np.sqrt(v) + eps), None


def _adam_old_t(param, grad, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, state=None):
    m0, v0, t = (0, 0, 0) if state is None else state
    m = beta1 * m0 + (1 - beta1) * grad
    v = beta2 * v0 + (1 - beta2) * grad * grad
    t_used = max(t, 1)  # the bias correction with the old step count
    return param - lr * (m / (1 - beta1**t_used)) / (np.sqrt(v / (1 - beta2**t_used)) + eps), None


ADAM_STEP = register(
    Exercise(
        notebook=NOTEBOOK,
        name="adam_step",
        kind="function",
        cases=_step_cases(
            207,
            _adam_state,
            visible_kwargs={"lr": 0.01},
            hidden_kwargs={"lr": 0.1, "beta1": 0.8, "beta2": 0.99},
        ),
        judge=_step_judge(
            optim.adam_step,
            name="adam_step",
            state_type=optim.AdamState,
            fields=("m", "v", "t"),
            mistakes=[
                Mistake(
                    _adam_no_correction,
                    "the bias correction is missing: divide m by (1 - beta1**t) and v by (1 - beta2**t).",
                ),
                Mistake(
                    _adam_old_t, "increase the step count first (t = state.t + 1), then correct with that t."
                ),
            ],
            hint="t = state.t + 1 (1 on the first step); m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g**2; "
            "new_param = param - lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - beta1**t), "
            "v_hat = v / (1 - beta2**t); return (new_param, AdamState(m, v, t)).",
        ),
        references=_refs("optim", "adam_step"),
    )
)


check_mse_loss = partial(run_check, MSE_LOSS)
check_binary_cross_entropy = partial(run_check, BINARY_CROSS_ENTROPY)
check_softmax_cross_entropy = partial(run_check, SOFTMAX_CROSS_ENTROPY)
check_momentum_step = partial(run_check, MOMENTUM_STEP)
check_adagrad_step = partial(run_check, ADAGRAD_STEP)
check_rmsprop_step = partial(run_check, RMSPROP_STEP)
check_adam_step = partial(run_check, ADAM_STEP)
