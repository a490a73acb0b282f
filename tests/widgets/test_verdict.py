"""The run verdicts, on hand-built paths over the bowl L = (w1^2 + 2 w2^2) / 2 (gradient (w1, 2 w2))."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.widgets.verdict import GRAD_TOL, classify_run


def bowl_loss(path: np.ndarray) -> np.ndarray:
    return 0.5 * (path[:, 0] ** 2 + 2.0 * path[:, 1] ** 2)


def bowl_grad(w: np.ndarray) -> np.ndarray:
    return np.array([w[0], 2.0 * w[1]])


def verdict_of(path: np.ndarray):
    with np.errstate(all="ignore"):
        losses = bowl_loss(path)
    return classify_run(path, losses, bowl_grad, global_min=(0.0, 0.0))


def geometric(factor: float, steps: int, w0=(1.5, -1.0)) -> np.ndarray:
    return np.asarray(w0) * factor ** np.arange(steps + 1)[:, None]


def test_fast_geometric_decay_converged_at_global_min():
    v = verdict_of(geometric(0.5, 40))
    assert v.kind == "converged" and v.at_global_min
    assert "global minimum" in v.message


def test_stationary_point_other_than_global_min_is_converged_but_flagged():
    path = np.tile([0.0, 0.0], (10, 1))
    v = classify_run(path, bowl_loss(path), bowl_grad, global_min=(1.0, 1.0))
    assert v.kind == "converged" and not v.at_global_min


def test_slow_monotone_decay_is_slow():
    # 0.99^50 = 0.6: still far from the minimum, every step in the same direction.
    v = verdict_of(geometric(0.99, 50))
    assert v.kind == "slow"


def test_sign_flipping_decay_is_oscillated():
    # w_k = (-0.95)^k w0: every step reverses the previous one; 0.95^50 = 0.08 is not at rest.
    v = verdict_of(geometric(-0.95, 50))
    assert v.kind == "oscillated"


def test_loss_rising_often_is_oscillated_even_without_reversals():
    # Walking round an ellipse-crossing circle: steps turn by only 10 degrees (no
    # reversals), but the loss rises on about half of them.
    angles = np.deg2rad(10.0 * np.arange(55))  # ends at 540 degrees, back at the starting loss
    path = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    v = verdict_of(path)
    assert v.kind == "oscillated"


def test_overflow_is_diverged():
    path = geometric(-3.0, 10)
    path[7:] = [np.inf, np.nan]
    v = verdict_of(path)
    assert v.kind == "diverged" and "step 7" in v.message


def test_ending_above_the_start_is_diverged():
    v = verdict_of(geometric(-1.05, 30))  # bounded, finite, but growing
    assert v.kind == "diverged"


def test_small_gradient_but_big_last_step_is_not_converged():
    path = np.array([[1.0, 1.0], [0.5, 0.5], [GRAD_TOL / 10, 0.0]])
    assert verdict_of(path).kind != "converged"


@pytest.mark.parametrize(
    ("path", "losses", "match"),
    [
        (np.zeros((5, 3)), np.zeros(5), "'path'"),
        (np.zeros((1, 2)), np.zeros(1), "'path'"),
        (np.zeros((5, 2)), np.zeros(4), "'losses'"),
    ],
)
def test_bad_shapes_name_the_argument(path, losses, match):
    with pytest.raises(ValueError, match=match):
        classify_run(path, losses, bowl_grad, global_min=(0.0, 0.0))
