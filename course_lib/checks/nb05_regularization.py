"""Checks for notebook 05_regularization: weight penalties, inverted dropout, batch
normalization, early stopping and precision/recall/F1.

Answers are compared with ``course_lib.np_ref.regularization`` and ``course_lib.metrics``
on small deterministic inputs, except dropout: its mask is random, so the judge checks
properties of the output (see ``_dropout_judge``) instead of one particular draw.
Seed 0 holds the visible cases; seeds >= 1 add hidden ones and edge cases.

Letters: N batch, D features.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from course_lib import metrics
from course_lib.checks._core import Case, Exercise, register, run_check, seeded_rng
from course_lib.checks._mistakes import Mistake, diagnosing_judge, matches
from course_lib.np_ref import regularization
from course_lib.testing import assert_close, to_numpy

__all__ = [
    "check_l2_penalty",
    "check_dropout",
    "check_batchnorm",
    "check_early_stopping",
    "check_precision_recall_f1",
]

NOTEBOOK = "05_regularization"


def _refs(module: str, *names: str) -> tuple[str, ...]:
    return tuple(f"course_lib.{lib}.{module}.{name}" for name in names for lib in ("np_ref", "torch_ref"))


# --- l2_penalty ----------------------------------------------------------------------------------


def _l2_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 500)

    def weights(*shapes: tuple[int, ...]) -> list[np.ndarray]:
        return [rng.normal(size=s) for s in shapes]

    if seed == 0:
        return [Case((weights((4, 3), (3, 2)),), {"lam": 0.1}, label="two weight matrices, lam=0.1")]
    return [
        Case((weights((5, 4)),), {"lam": 0.01}, label="one matrix, lam=0.01"),
        Case(
            (weights((2, 3, 2, 2), (3, 6), (6, 1)),),
            {"lam": 1.5},
            label="a conv kernel and two matrices, lam=1.5",
        ),
        Case((weights((3, 3)),), {"lam": 0.0}, label="lam=0: no penalty"),
    ]


def _l2_judge(case: Case | None, output: object) -> None:
    assert case is not None
    weights, lam = case.args[0], case.kwargs["lam"]
    penalty, grads = regularization.l2_penalty([w.copy() for w in weights], lam=lam)
    where = f"l2_penalty [{case.label}]"
    if not (isinstance(output, (tuple, list)) and len(output) == 2 and isinstance(output[1], (tuple, list))):
        raise AssertionError(
            f"{where}: expected a tuple (penalty, grads) with grads a list of {len(weights)} arrays, "
            f"got {type(output).__name__}."
        )
    got_penalty, got_grads = output
    squares = sum(float(np.sum(w * w)) for w in weights)
    penalty_hints = [
        (
            lam * squares,
            "the penalty is missing the 1/2: penalty = lam / 2 * sum of all squared weights "
            "(the 1/2 makes its gradient exactly lam * w).",
        ),
        (lam * np.sqrt(squares), "the norm must be SQUARED: ||W||^2 = sum of w**2, not its square root."),
        (lam * sum(float(np.sum(np.abs(w))) for w in weights), "that is the L1 penalty (sum of |w|)."),
        (0.5 * squares, "the penalty is not multiplied by lam."),
    ]
    hint = next(
        (
            h
            for value, h in penalty_hints
            if lam and matches(got_penalty, value) and not matches(value, penalty)
        ),
        "penalty = lam / 2 * sum over all arrays of sum(w**2).",
    )
    assert_close(got_penalty, penalty, name=f"{where}: penalty", hint=hint)
    if len(got_grads) != len(weights):
        raise AssertionError(
            f"{where}: expected one gradient per weight array ({len(weights)}), got {len(got_grads)}."
        )
    for i, (got, want, w) in enumerate(zip(got_grads, grads, weights, strict=False)):
        hint = "the gradient of lam / 2 * sum(w**2) with respect to w is lam * w."
        if lam and matches(got, 2 * lam * w):
            hint = "the gradient is twice too large: d/dw (lam / 2 * w**2) = lam * w (the 2 cancels the 1/2)."
        elif lam and matches(got, lam * np.sign(w)):
            hint = "lam * sign(w) is the L1 gradient; the L2 gradient is lam * w."
        assert_close(got, want, name=f"{where}: grads[{i}]", hint=hint)


def _l2_variant(weights, *, lam, penalty, grad):
    return penalty(weights, lam), [grad(w, lam) for w in weights]


def _squares(weights) -> float:
    return sum(float(np.sum(w * w)) for w in weights)


_l2_judge.reference = regularization.l2_penalty  # type: ignore[attr-defined]

L2_PENALTY = register(
    Exercise(
        notebook=NOTEBOOK,
        name="l2_penalty",
        kind="function",
        cases=_l2_cases,
        judge=_l2_judge,
        mistakes=(
            Mistake(
                partial(_l2_variant, penalty=lambda ws, lam: lam * _squares(ws), grad=lambda w, lam: lam * w),
                "the penalty is missing the 1/2.",
            ),
            Mistake(
                partial(
                    _l2_variant,
                    penalty=lambda ws, lam: lam * np.sqrt(_squares(ws)),
                    grad=lambda w, lam: lam * w,
                ),
                "the norm must be squared.",
            ),
            Mistake(
                partial(
                    _l2_variant,
                    penalty=lambda ws, lam: lam * sum(float(np.sum(np.abs(w))) for w in ws),
                    grad=lambda w, lam: lam * np.sign(w),
                ),
                "that is the L1 penalty.",
            ),
            Mistake(
                partial(_l2_variant, penalty=lambda ws, lam: 0.5 * _squares(ws), grad=lambda w, lam: w),
                "the penalty is not multiplied by lam.",
            ),
            Mistake(
                partial(
                    _l2_variant,
                    penalty=lambda ws, lam: 0.5 * lam * _squares(ws),
                    grad=lambda w, lam: 2 * lam * w,
                ),
                "the gradient is twice too large.",
            ),
        ),
        references=_refs("regularization", "l2_penalty"),
    )
)
check_l2_penalty = partial(run_check, L2_PENALTY)

# --- dropout (inverted) -----------------------------------------------------------------------
# The draw is the student's choice (any use of `rng` is fine), so the judge checks what every
# correct inverted dropout satisfies: in evaluation mode the output is x itself; in training
# mode every entry is either 0 or x / (1 - p_drop), the dropped fraction is p_drop up to
# binomial noise, and the dropped entries are spread over the whole array.


def _dropout_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 501)

    def x_of(shape: tuple[int, ...]) -> np.ndarray:
        # No entry is 0 (or close to it), so a 0 in the output always means "dropped".
        z = rng.normal(size=shape)
        return np.where(z >= 0, z + 0.5, z - 0.5)

    def case(shape: tuple[int, ...], p: float, train: bool, label: str) -> Case:
        return Case(
            (x_of(shape),),
            {"p_drop": p, "train": train, "rng": np.random.default_rng([seed, 7, len(label)])},
            label=label,
        )

    if seed == 0:
        return [
            case((40, 50), 0.3, True, "x (40, 50), p_drop=0.3, train=True"),
            case((6, 5), 0.5, False, "x (6, 5), p_drop=0.5, train=False"),
        ]
    return [
        case((100, 30), 0.75, True, "x (100, 30), p_drop=0.75, train=True"),
        case((30, 8, 5), 0.1, True, "x (30, 8, 5), p_drop=0.1, train=True"),
        case((20, 10), 0.0, True, "p_drop=0: nothing is dropped"),
        case((4, 3, 2), 0.9, False, "x (4, 3, 2), p_drop=0.9, train=False"),
    ]


def _dropout_judge(case: Case | None, output: object) -> None:
    assert case is not None
    (x,) = case.args
    p, train = case.kwargs["p_drop"], case.kwargs["train"]
    where = f"dropout [{case.label}]"
    if isinstance(output, tuple):
        raise AssertionError(f"{where}: return only the output array, got a tuple of {len(output)}.")
    if not train:
        assert_close(
            output,
            x,
            name=f"{where}: evaluation mode must return x unchanged",
            hint="when train=False dropout is the identity: no mask and no scaling "
            "(the scaling by 1 / (1 - p_drop) already happened during training).",
        )
        return
    got = to_numpy(output).astype(np.float64)
    if got.shape != x.shape:
        raise AssertionError(f"{where}: expected shape {x.shape}, got {got.shape}.")
    dropped = np.isclose(got, 0.0, atol=1e-12)
    kept = ~dropped
    scaled = x / (1.0 - p)
    if not np.allclose(got[kept], scaled[kept], rtol=1e-6, atol=1e-9):
        if np.allclose(got[kept], x[kept], rtol=1e-6, atol=1e-9):
            hint = (
                f"the kept entries are not rescaled. Inverted dropout divides them by (1 - p_drop) = {1 - p:g} "
                "so that the expected output equals x and nothing changes at test time."
            )
        elif np.allclose(got[kept], x[kept] * (1.0 - p), rtol=1e-6, atol=1e-9):
            hint = "the kept entries are multiplied by (1 - p_drop); divide by it instead."
        elif np.allclose(got[kept], x[kept] / p if p else x[kept], rtol=1e-6, atol=1e-9):
            hint = "the kept entries are divided by p_drop; divide by the KEEP probability 1 - p_drop."
        else:
            hint = "every entry must be either 0 (dropped) or x / (1 - p_drop) (kept)."
        bad = np.argwhere(kept & ~np.isclose(got, scaled, rtol=1e-6, atol=1e-9))[0]
        raise AssertionError(
            f"{where}: a kept entry has the wrong value: at index {tuple(int(i) for i in bad)} "
            f"x = {x[tuple(bad)]:.6g}, expected {scaled[tuple(bad)]:.6g} (or 0 if dropped), got {got[tuple(bad)]:.6g}."
            f"\nHint: {hint}"
        )
    n = x.size
    frac = float(dropped.mean())
    # Five binomial standard deviations: a correct answer fails this by chance < 1e-6 of the time.
    tol = 5.0 * np.sqrt(p * (1.0 - p) / n) + 1.0 / n
    if abs(frac - p) > tol:
        hint = "drop each entry independently with probability p_drop, e.g. keep = rng.random(x.shape) >= p_drop."
        if abs(frac - (1.0 - p)) <= tol:
            hint = "p_drop is the probability of DROPPING an entry; you dropped with probability 1 - p_drop."
        raise AssertionError(
            f"{where}: {frac:.3f} of the entries were dropped, expected about p_drop = {p:g} "
            f"(within +-{tol:.3f}).\nHint: {hint}"
        )
    halves = np.array_split(dropped.reshape(-1), 2)
    if p > 0 and any(abs(float(h.mean()) - p) > 2 * tol for h in halves):
        raise AssertionError(
            f"{where}: the dropped entries are not spread over the array (first half "
            f"{halves[0].mean():.2f}, second half {halves[1].mean():.2f}, expected about {p:g} each)."
            "\nHint: draw an independent random number per entry from `rng`."
        )


def _dropout_variant(x, *, p_drop, train, rng, swap_p=False, scale=None, in_eval=False):
    """Dropout with one typical slip: p_drop read as the keep probability, the wrong scale of the
    kept entries, or a mask applied in evaluation mode too."""
    if not train and not in_eval:
        return x
    keep = rng.random(x.shape) >= (1.0 - p_drop if swap_p else p_drop)
    return x * keep * (1.0 / (1.0 - p_drop) if scale is None else scale(p_drop))


_dropout_judge.reference = None  # type: ignore[attr-defined]  # the mask is random: judged by properties

DROPOUT = register(
    Exercise(
        notebook=NOTEBOOK,
        name="dropout",
        kind="function",
        cases=_dropout_cases,
        judge=_dropout_judge,
        mistakes=(
            Mistake(partial(_dropout_variant, scale=lambda p: 1.0), "the kept entries are not rescaled."),
            Mistake(
                partial(_dropout_variant, scale=lambda p: 1.0 - p),
                "multiplied by (1 - p_drop) instead of divided.",
            ),
            Mistake(
                partial(_dropout_variant, swap_p=True),
                "p_drop is the probability of dropping, not of keeping.",
            ),
            Mistake(partial(_dropout_variant, in_eval=True), "evaluation mode must return x unchanged."),
        ),
        references=_refs("regularization", "dropout_forward"),
    )
)
check_dropout = partial(run_check, DROPOUT)


# --- batchnorm (forward, training and evaluation mode) ------------------------------------------


def _batchnorm_reference(x, gamma, beta, *, train, running_mean, running_var, momentum=0.1, eps=1e-5):
    out, _, new_mean, new_var = regularization.batchnorm_forward(
        x,
        gamma,
        beta,
        train=train,
        running_mean=running_mean,
        running_var=running_var,
        momentum=momentum,
        eps=eps,
    )
    return out, new_mean, new_var


def _batchnorm_variant(
    x,
    gamma,
    beta,
    *,
    train,
    running_mean,
    running_var,
    momentum=0.1,
    eps=1e-5,
    norm_ddof=0,
    running_ddof=1,
    flip_momentum=False,
    batch_stats_in_eval=False,
    eps_outside=False,
):
    if train or batch_stats_in_eval:
        mean, var = x.mean(axis=0), x.var(axis=0, ddof=norm_ddof)
    else:
        mean, var = running_mean, running_var
    std = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
    out = gamma * (x - mean) / std + beta
    if not train:
        return out, running_mean, running_var
    m = 1.0 - momentum if flip_momentum else momentum
    new_mean = (1.0 - m) * running_mean + m * x.mean(axis=0)
    new_var = (1.0 - m) * running_var + m * x.var(axis=0, ddof=running_ddof)
    return out, new_mean, new_var


def _batchnorm_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 503)

    def case(n: int, d: int, train: bool, momentum: float = 0.1, eps: float = 1e-5) -> Case:
        # Features with their own offset and scale, and small batches, so that every mistake shows.
        x = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d) * 2.0
        kwargs = {
            "train": train,
            "running_mean": rng.normal(size=d),
            "running_var": rng.uniform(0.5, 2.0, size=d),
            "momentum": momentum,
            "eps": eps,
        }
        return Case(
            (x, rng.uniform(0.5, 2.0, size=d), rng.normal(size=d)),
            kwargs,
            label=f"x ({n}, {d}), train={train}, momentum={momentum}, eps={eps}",
        )

    if seed == 0:
        return [case(6, 4, True), case(5, 3, False)]
    return [
        case(4, 5, True, momentum=0.3),
        case(3, 2, True, eps=0.5),
        case(8, 3, False, eps=0.1),
        case(2, 3, True, momentum=0.5),
    ]


BATCHNORM = register(
    Exercise(
        notebook=NOTEBOOK,
        name="batchnorm",
        kind="function",
        cases=_batchnorm_cases,
        judge=diagnosing_judge(
            _batchnorm_reference,
            name="batchnorm(x, gamma, beta, ...)",
            outputs=("out", "new_running_mean", "new_running_var"),
            mistakes=[
                Mistake(
                    partial(_batchnorm_variant, batch_stats_in_eval=True),
                    "in evaluation mode normalise with the RUNNING statistics, not the batch's own; "
                    "the running statistics are returned unchanged.",
                ),
                Mistake(
                    partial(_batchnorm_variant, norm_ddof=1),
                    "the batch variance used for normalising is the biased one, mean((x - mu)**2) (ddof=0).",
                ),
                Mistake(
                    partial(_batchnorm_variant, running_ddof=0),
                    "torch's running variance is updated with the UNBIASED batch variance (divide by N - 1).",
                ),
                Mistake(
                    partial(_batchnorm_variant, flip_momentum=True),
                    "momentum weighs the NEW batch statistic: running = (1 - momentum) * running + momentum * batch.",
                ),
                Mistake(
                    partial(_batchnorm_variant, eps_outside=True),
                    "eps goes inside the square root: (x - mu) / sqrt(var + eps).",
                ),
            ],
            hint="train: out = gamma * (x - mu) / sqrt(var + eps) + beta with the batch mean and biased variance "
            "over axis 0; running = (1 - momentum) * running + momentum * batch (unbiased variance). "
            "eval: use the running statistics.",
        ),
        references=_refs("regularization", "batchnorm_forward"),
    )
)
check_batchnorm = partial(run_check, BATCHNORM)


# --- early_stopping ----------------------------------------------------------------------------------


def _early_stopping_reference(val_losses, *, patience, min_delta=0.0):
    stopper = regularization.EarlyStopping(patience, min_delta=min_delta)
    for epoch, loss in enumerate(val_losses):
        if stopper.step(loss):
            return epoch + 1, stopper.best_epoch
    return len(val_losses), stopper.best_epoch


def _early_stopping_variant(
    val_losses, *, patience, min_delta=0.0, strict=True, reset=True, use_delta=True, off_by_one=False
):
    best, best_epoch, bad = np.inf, None, 0
    delta = min_delta if use_delta else 0.0
    for epoch, loss in enumerate(val_losses):
        improved = loss < best - delta if strict else loss <= best - delta
        if improved:
            best, best_epoch = loss, epoch
            bad = 0 if reset else bad
        else:
            bad += 1
        if (bad > patience) if off_by_one else (bad >= patience):
            return epoch + 1, best_epoch
    return len(val_losses), best_epoch


def _val_curve(rng: np.random.Generator, epochs: int, turn: int) -> list[float]:
    # A typical validation curve: falls, bottoms out around `turn`, then creeps up, with noise
    # that produces a few false "improvements" along the way.
    t = np.arange(epochs)
    curve = 1.0 / (1.0 + 0.4 * t) + 0.02 * np.maximum(t - turn, 0) + 0.03 * rng.normal(size=epochs)
    return [float(v) for v in curve]


def _early_stopping_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 504)
    if seed == 0:
        return [
            Case((_val_curve(rng, 30, 10),), {"patience": 3}, label="30 epochs, patience=3"),
            Case(
                ([1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.71, 0.69, 0.8],),
                {"patience": 3},
                label="an improvement resets the count",
            ),
            Case(
                ([1.0, 0.9, 0.895, 0.89, 0.7, 0.69],),
                {"patience": 3, "min_delta": 0.05},
                label="min_delta=0.05: gains of 0.05 or less do not count",
            ),
            Case(([0.6, 0.5, 0.5, 0.5, 0.4],), {"patience": 2}, label="an equal loss is not an improvement"),
        ]
    return [
        Case((_val_curve(rng, 40, 15),), {"patience": 5}, label="40 epochs, patience=5"),
        Case(
            ([1.0, 0.95, 0.94, 0.935, 0.93, 0.929, 0.928],),
            {"patience": 2, "min_delta": 0.01},
            label="min_delta=0.01: tiny gains do not count",
        ),
        Case(([0.5, 0.5, 0.5, 0.4],), {"patience": 2}, label="an equal loss is not an improvement"),
        Case(([1.0, 0.9, 0.8, 0.7],), {"patience": 2}, label="never stops: all epochs run"),
        Case(([0.3, 0.4, 0.2, 0.5, 0.6],), {"patience": 1}, label="patience=1"),
    ]


EARLY_STOPPING = register(
    Exercise(
        notebook=NOTEBOOK,
        name="early_stopping",
        kind="function",
        cases=_early_stopping_cases,
        judge=diagnosing_judge(
            _early_stopping_reference,
            name="early_stopping(val_losses, patience, min_delta)",
            outputs=("epochs_run", "best_epoch"),
            mistakes=[
                Mistake(
                    partial(_early_stopping_variant, use_delta=False),
                    "min_delta is ignored: an epoch improves only if loss < best_loss - min_delta.",
                ),
                Mistake(
                    partial(_early_stopping_variant, off_by_one=True),
                    "training runs one epoch too long: stop as soon as `patience` epochs in a row brought no "
                    "improvement (count >= patience).",
                ),
                Mistake(
                    partial(_early_stopping_variant, reset=False),
                    "the count of bad epochs is not reset when the loss improves: it counts epochs in a ROW.",
                ),
                Mistake(
                    partial(_early_stopping_variant, strict=False),
                    "an equal loss counts as an improvement; it must be strictly lower (loss < best - min_delta).",
                ),
            ],
            hint="keep best_loss (start at inf), best_epoch and a count of epochs without improvement; an epoch "
            "improves when loss < best_loss - min_delta (reset the count), otherwise the count grows; stop after the "
            "epoch where count reaches patience. Return (number of epochs run, 0-based best epoch).",
        ),
        references=(
            "course_lib.np_ref.regularization.EarlyStopping",
            "course_lib.torch_ref.regularization.EarlyStopping",
        ),
    )
)
check_early_stopping = partial(run_check, EARLY_STOPPING)

# --- precision_recall_f1 ---------------------------------------------------------------------------


def _prf_reference(pred_labels, labels, *, positive=1):
    return tuple(metrics.precision_recall_f1(pred_labels, labels, positive=positive))


def _prf_swapped(pred_labels, labels, *, positive=1):
    p, r, f = _prf_reference(pred_labels, labels, positive=positive)
    return r, p, f


def _prf_arithmetic(pred_labels, labels, *, positive=1):
    p, r, _ = _prf_reference(pred_labels, labels, positive=positive)
    return p, r, (p + r) / 2


def _prf_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 505)

    def imbalanced(n: int, k: int, share: float, positive: int, label: str) -> Case:
        # A rare positive class and a classifier that finds some of it and raises some false alarms.
        true = np.where(rng.random(n) < share, positive, rng.integers(0, k, size=n))
        pred = true.copy()
        flip = rng.random(n) < 0.25
        pred[flip] = rng.integers(0, k, size=int(flip.sum()))
        return Case((pred.astype(np.int64), true.astype(np.int64)), {"positive": positive}, label=label)

    if seed == 0:
        return [imbalanced(60, 2, 0.1, 1, "60 labels, about 15% positives")]
    never = np.zeros(12, dtype=np.int64)
    truth = np.array([0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    return [
        imbalanced(80, 3, 0.15, 2, "3 classes, positive=2"),
        imbalanced(50, 2, 0.6, 0, "positive=0"),
        Case((never, truth), {"positive": 1}, label="positive class never predicted (0 / 0 counts as 0)"),
    ]


PRECISION_RECALL_F1 = register(
    Exercise(
        notebook=NOTEBOOK,
        name="precision_recall_f1",
        kind="function",
        cases=_prf_cases,
        judge=diagnosing_judge(
            _prf_reference,
            name="precision_recall_f1(pred_labels, labels, positive)",
            outputs=("precision", "recall", "f1"),
            mistakes=[
                Mistake(
                    _prf_swapped,
                    "precision and recall are swapped. precision = TP / (TP + FP): of the predicted positives, how "
                    "many are right; recall = TP / (TP + FN): of the real positives, how many were found.",
                ),
                Mistake(
                    _prf_arithmetic,
                    "F1 is the HARMONIC mean 2 / (1/p + 1/r) = 2 p r / (p + r), not (p + r) / 2.",
                ),
            ],
            hint="count TP, FP, FN for the class `positive`; precision = TP / (TP + FP), recall = TP / (TP + FN), "
            "f1 = 2 p r / (p + r); a ratio with denominator 0 is 0.",
        ),
        references=("course_lib.metrics.precision_recall_f1", "course_lib.metrics.confusion_matrix"),
    )
)
check_precision_recall_f1 = partial(run_check, PRECISION_RECALL_F1)
