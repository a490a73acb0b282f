"""Two-parameter loss surfaces for the learning-rate explorer.

Each surface is a loss L(w) over w = (w1, w2) with its gradient, a start point and a
view window. Losses are shifted so that the global minimum is exactly 0, which lets
the explorer plot the loss per step on a log scale.

- ``bowl``: L = (w1^2 + 2 w2^2) / 2. Convex, Hessian eigenvalues 1 and 2, so plain
  gradient descent converges for every lr < 2 / 2 = 1 and diverges above it.
- ``ravine``: the same kind of quadratic, rotated by 30 degrees, with eigenvalues 1 and
  20 (condition number 20). Stable only for lr < 2 / 20 = 0.1, and at such an lr the
  flat direction shrinks by only (1 - lr) per step: the classic zig-zag that
  momentum and adaptive methods fix.
- ``wells``: L = (w1^2 - 1)^2 + (w2^2 - 1)^2 + 0.3 w1 + 0.2 w2 - L*. Four minima near
  (+-1, +-1); the tilt makes (-1, -1) the global one and the other three local.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Surface", "SURFACES"]

Array = np.ndarray


@dataclass(frozen=True)
class Surface:
    key: str
    title: str
    loss: Callable[[Array, Array], Array]  # (w1, w2) arrays of one shape -> losses of that shape
    grad: Callable[[Array], Array]  # w (2,) -> dL/dw (2,)
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    global_min: tuple[float, float]


def _quadratic(eigenvalues: tuple[float, float], angle_deg: float) -> tuple[Callable, Callable]:
    """L(w) = w^T A w / 2 with A = R diag(eigenvalues) R^T, R a rotation."""
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    a = rot @ np.diag(eigenvalues) @ rot.T

    def loss(w1: Array, w2: Array) -> Array:
        return 0.5 * (a[0, 0] * w1 * w1 + 2.0 * a[0, 1] * w1 * w2 + a[1, 1] * w2 * w2)

    def grad(w: Array) -> Array:
        return a @ w

    return loss, grad


_TILT = np.array([0.3, 0.2])


def _wells_raw(w1: Array, w2: Array) -> Array:
    return (w1 * w1 - 1.0) ** 2 + (w2 * w2 - 1.0) ** 2 + _TILT[0] * w1 + _TILT[1] * w2


def _wells_grad(w: Array) -> Array:
    return 4.0 * w * (w * w - 1.0) + _TILT


def _wells_minimum() -> Array:
    """The global minimum, by Newton's method per coordinate (the loss is separable)."""
    w = np.array([-1.0, -1.0])
    for _ in range(50):
        w = w - _wells_grad(w) / (12.0 * w * w - 4.0)
    return w


_WELLS_MIN = _wells_minimum()
_WELLS_MIN_LOSS = float(_wells_raw(_WELLS_MIN[0], _WELLS_MIN[1]))


def _wells_loss(w1: Array, w2: Array) -> Array:
    return _wells_raw(w1, w2) - _WELLS_MIN_LOSS


_bowl_loss, _bowl_grad = _quadratic((1.0, 2.0), 0.0)
_ravine_loss, _ravine_grad = _quadratic((1.0, 20.0), 30.0)

SURFACES: dict[str, Surface] = {
    "bowl": Surface(
        "bowl",
        "convex bowl",
        _bowl_loss,
        _bowl_grad,
        start=(-1.6, 1.2),
        xlim=(-2.0, 2.0),
        ylim=(-2.0, 2.0),
        global_min=(0.0, 0.0),
    ),
    "ravine": Surface(
        "ravine",
        "ill-conditioned ravine",
        _ravine_loss,
        _ravine_grad,
        start=(-1.7, 0.3),
        xlim=(-2.0, 2.0),
        ylim=(-2.0, 2.0),
        global_min=(0.0, 0.0),
    ),
    "wells": Surface(
        "wells",
        "non-convex: local minima",
        _wells_loss,
        _wells_grad,
        start=(1.8, 1.7),
        xlim=(-2.0, 2.0),
        ylim=(-2.0, 2.0),
        global_min=(float(_WELLS_MIN[0]), float(_WELLS_MIN[1])),
    ),
}
