"""A single neuron and Rosenblatt's perceptron learning rule, in NumPy.

Notation of the lecture: inputs x (N, D) (or a single x (D,)), weights w (D,), bias w0
(a scalar), pre-activation z = w0 + x @ w and output y_hat = g(z). Labels of the
perceptron are y in {0, 1}.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.np_ref.activations import sigmoid
from course_lib.validation import require_float, require_labels, require_ndim, require_positive_int

__all__ = ["neuron_forward", "perceptron_predict", "perceptron_train"]


def _pre_activation(fn: str, x: np.ndarray, w: np.ndarray, w0: float | np.ndarray) -> np.ndarray:
    """z = w0 + x @ w for x (N, D) -> (N,) or x (D,) -> 0-d, after checking the shapes."""
    require_float(fn, "x", x)
    require_float(fn, "w", w)
    require_ndim(fn, "w", w, 1, "(D,)")
    if x.ndim not in (1, 2) or x.shape[-1] != w.shape[0]:
        raise ValueError(
            f"{fn}: argument 'x' must have shape (N, D={w.shape[0]}) or (D={w.shape[0]},) "
            f"to match w, got {tuple(x.shape)}"
        )
    if np.ndim(w0) != 0:
        raise ValueError(f"{fn}: argument 'w0' must be a scalar bias, got shape {np.shape(w0)}")
    return w0 + x @ w


def neuron_forward(
    x: np.ndarray,
    w: np.ndarray,
    w0: float | np.ndarray,
    *,
    g: Callable[[np.ndarray], np.ndarray] = sigmoid,
) -> np.ndarray:
    """y_hat = g(w0 + x @ w).

    x (N, D) -> y_hat (N,); a single x (D,) -> 0-d y_hat. w (D,), w0 a scalar;
    ``g`` is the activation (sigmoid by default).
    """
    z = np.asarray(_pre_activation("neuron_forward", x, w, w0))
    return g(z)


def perceptron_predict(x: np.ndarray, w: np.ndarray, w0: float | np.ndarray) -> np.ndarray:
    """Step-function neuron: 1 where w0 + x @ w > 0, else 0.

    x (N, D) -> (N,) int64; x (D,) -> 0-d int64. Ties go to 0: a point exactly on
    the hyperplane is predicted negative (so zero weights predict 0 everywhere).
    """
    z = _pre_activation("perceptron_predict", x, w, w0)
    return (np.asarray(z) > 0).astype(np.int64)


def perceptron_train(
    x: np.ndarray,
    y: np.ndarray,
    *,
    lr: float = 1.0,
    epochs: int,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.floating, list[int]]:
    """Rosenblatt's perceptron rule, starting from w = 0, w0 = 0.

    x (N, D) floats, y (N,) integer labels in {0, 1} -> (w (D,), w0 scalar,
    mistakes_per_epoch: list of ``epochs`` ints).

    Samples are visited one at a time, in order, or in a fresh ``rng.permutation(N)``
    every epoch when ``rng`` is given. For each sample the prediction is
    p = 1 if w0 + x_i @ w > 0 else 0 (ties -> 0, as in ``perceptron_predict``), and
    if p != y_i:  w += lr (y_i - p) x_i,  w0 += lr (y_i - p).
    All ``epochs`` epochs run; once an epoch makes no mistake nothing changes any more.
    On linearly separable data the mistakes reach 0 after finitely many updates
    (Novikoff's theorem); on XOR they never do.
    """
    fn = "perceptron_train"
    require_float(fn, "x", x)
    require_ndim(fn, "x", x, 2, "(N, D)")
    n, d = x.shape
    require_labels(fn, "y", y, 2, n)
    require_positive_int(fn, "epochs", epochs)
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating)) or not lr > 0:
        raise ValueError(f"{fn}: argument 'lr' must be a positive number, got {lr!r}")
    w = np.zeros(d, dtype=x.dtype)
    w0 = x.dtype.type(0)
    mistakes_per_epoch: list[int] = []
    for _ in range(epochs):
        order = np.arange(n) if rng is None else rng.permutation(n)
        mistakes = 0
        for i in order:
            pred = 1 if w0 + x[i] @ w > 0 else 0
            err = int(y[i]) - pred  # -1, 0 or +1
            if err:
                w += lr * err * x[i]
                w0 += lr * err
                mistakes += 1
        mistakes_per_epoch.append(mistakes)
    return w, w0, mistakes_per_epoch
