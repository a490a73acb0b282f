"""The checks of notebook 05_regularization pass correct answers and fail typical wrong ones
with a message that names the mistake."""

from __future__ import annotations

import numpy as np
import pytest

from tests.checks.support import answer_tests
from course_lib.checks.nb05_regularization import (
    check_batchnorm,
    check_dropout,
    check_early_stopping,
    check_l2_penalty,
    check_precision_recall_f1,
)

SEEDS = (0, 1, 2)


# --- correct answers, written as a student would (no course_lib) --------------------------------


def l2_penalty(weights, *, lam, half=True, grad_scale=1.0):
    penalty = (0.5 if half else 1.0) * lam * sum(np.sum(w**2) for w in weights)
    return penalty, [grad_scale * lam * w for w in weights]


def dropout(x, *, p_drop, train, rng, rescale=True, drop_in_eval=False, flip_p=False):
    if not train and not drop_in_eval:
        return x.copy()
    p = 1.0 - p_drop if flip_p else p_drop
    keep = rng.random(x.shape) >= p
    return x * keep / ((1.0 - p_drop) if rescale else 1.0)


def batchnorm(x, gamma, beta, *, train, running_mean, running_var, momentum=0.1, eps=1e-5,
              ddof_norm=0, eval_batch_stats=False, flip_momentum=False):
    if train:
        mu, var = x.mean(axis=0), x.var(axis=0, ddof=ddof_norm)
        m = 1 - momentum if flip_momentum else momentum
        new_mean = (1 - m) * running_mean + m * mu
        new_var = (1 - m) * running_var + m * x.var(axis=0, ddof=1)
    elif eval_batch_stats:
        mu, var, new_mean, new_var = x.mean(axis=0), x.var(axis=0), running_mean, running_var
    else:
        mu, var, new_mean, new_var = running_mean, running_var, running_mean, running_var
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, new_mean, new_var


def early_stopping(val_losses, *, patience, min_delta=0.0, reset=True, off_by_one=False):
    best, best_epoch, bad = float("inf"), None, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best - min_delta:
            best, best_epoch = loss, epoch
            if reset:
                bad = 0
        else:
            bad += 1
        if bad > patience if off_by_one else bad >= patience:
            return epoch + 1, best_epoch
    return len(val_losses), best_epoch


def precision_recall_f1(pred_labels, labels, *, positive=1, swap=False, arithmetic=False):
    tp = np.sum((pred_labels == positive) & (labels == positive))
    n_pred, n_true = np.sum(pred_labels == positive), np.sum(labels == positive)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    if swap:
        p, r = r, p
    f = (p + r) / 2 if arithmetic else (2 * p * r / (p + r) if p + r else 0.0)
    return float(p), float(r), float(f)


CORRECT = [
    (check_l2_penalty, l2_penalty),
    (check_dropout, dropout),
    (check_batchnorm, batchnorm),
    (check_early_stopping, early_stopping),
    (check_precision_recall_f1, precision_recall_f1),
]


def test_the_library_reference_passes() -> None:
    from course_lib import metrics
    from course_lib.np_ref import regularization as reg

    for seed in SEEDS:
        check_l2_penalty(reg.l2_penalty, seed=seed)
        check_dropout(lambda x, **kw: reg.dropout_forward(x, **kw)[0], seed=seed)
        check_batchnorm(lambda *a, **kw: (lambda r: (r[0], r[2], r[3]))(reg.batchnorm_forward(*a, **kw)), seed=seed)
        check_precision_recall_f1(lambda *a, **kw: tuple(metrics.precision_recall_f1(*a, **kw)), seed=seed)


def test_dropout_with_a_different_draw_passes() -> None:
    # The judge checks properties, not the reference's random numbers: any fair draw from rng is fine.
    def dropout_binomial(x, *, p_drop, train, rng):
        if not train:
            return x
        return x * rng.binomial(1, 1.0 - p_drop, size=x.shape) / (1.0 - p_drop)

    for seed in SEEDS:
        check_dropout(dropout_binomial, seed=seed)


WRONG = [
    (check_l2_penalty, lambda w, **kw: l2_penalty(w, half=False, **kw), "missing the 1/2"),
    (check_l2_penalty, lambda w, **kw: l2_penalty(w, grad_scale=2.0, **kw), "twice too large"),
    (check_l2_penalty, lambda w, **kw: l2_penalty(w, **kw)[0], "expected a tuple (penalty, grads)"),
    (check_dropout, lambda x, **kw: dropout(x, rescale=False, **kw), "not rescaled"),
    (check_dropout, lambda x, **kw: dropout(x, flip_p=True, **kw), "probability of DROPPING"),
    (check_dropout, lambda x, **kw: dropout(x, drop_in_eval=True, **kw), "evaluation mode must return x unchanged"),
    (check_dropout, lambda x, *, p_drop, **kw: np.where(np.arange(x.size).reshape(x.shape) < p_drop * x.size, 0.0,
                                                        x / (1 - p_drop)),
     "not spread over the array"),
    (check_batchnorm, lambda *a, **kw: batchnorm(*a, ddof_norm=1, **kw), "biased one"),
    (check_batchnorm, lambda *a, **kw: batchnorm(*a, eval_batch_stats=True, **kw), "RUNNING statistics"),
    (check_batchnorm, lambda *a, **kw: batchnorm(*a, flip_momentum=True, **kw), "momentum weighs the NEW"),
    (check_early_stopping, lambda v, **kw: early_stopping(v, off_by_one=True, **kw), "one epoch too long"),
    (check_early_stopping, lambda v, **kw: early_stopping(v, reset=False, **kw), "not reset"),
    (check_precision_recall_f1, lambda p, y, **kw: precision_recall_f1(p, y, swap=True, **kw), "swapped"),
    (check_precision_recall_f1, lambda p, y, **kw: precision_recall_f1(p, y, arithmetic=True, **kw), "HARMONIC"),
]


# the correct answers pass (also across the autograder wire); the typical mistakes fail with their hint
(test_a_correct_answer_passes, test_cases_and_outputs_cross_the_autograder_wire,
 test_a_typical_mistake_fails_with_a_hint) = answer_tests(CORRECT, WRONG, seeds=SEEDS)


def test_ignoring_min_delta_is_caught_in_the_visible_cases() -> None:
    def no_delta(v, *, patience, min_delta=0.0):
        return early_stopping(v, patience=patience)

    with pytest.raises(AssertionError, match="min_delta is ignored"):
        check_early_stopping(no_delta, seed=0)


def test_dropout_failure_message_shows_index_and_values() -> None:
    with pytest.raises(AssertionError) as err:
        check_dropout(lambda x, **kw: dropout(x, rescale=False, **kw))
    text = str(err.value)
    assert "at index (" in text and "expected" in text and "got" in text
