"""A single neuron and Rosenblatt's perceptron learning rule, in torch ops.

Mirrors ``course_lib.np_ref.perceptron``: x (N, D) or (D,), w (D,), scalar bias w0,
z = w0 + x @ w, y_hat = g(z); perceptron labels y in {0, 1}. Tensors stay on their device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib.torch_ref.activations import sigmoid
from course_lib.validation import require_float, require_labels, require_ndim, require_positive_int

__all__ = ["neuron_forward", "perceptron_predict", "perceptron_train"]


def _pre_activation(fn: str, x: torch.Tensor, w: torch.Tensor, w0: float | torch.Tensor) -> torch.Tensor:
    """z = w0 + x @ w for x (N, D) -> (N,) or x (D,) -> 0-d, after checking the shapes."""
    require_float(fn, "x", x)
    require_float(fn, "w", w)
    require_ndim(fn, "w", w, 1, "(D,)")
    if x.dim() not in (1, 2) or x.shape[-1] != w.shape[0]:
        raise ValueError(
            f"{fn}: argument 'x' must have shape (N, D={w.shape[0]}) or (D={w.shape[0]},) "
            f"to match w, got {tuple(x.shape)}"
        )
    if len(getattr(w0, "shape", ())) != 0:
        raise ValueError(
            f"{fn}: argument 'w0' must be a scalar bias, got shape {tuple(getattr(w0, 'shape', ()))}"
        )
    if not isinstance(w0, torch.Tensor):
        w0 = float(w0)  # a NumPy scalar on the left of `+` would turn the result into an ndarray
    return w0 + x @ w


def neuron_forward(
    x: torch.Tensor,
    w: torch.Tensor,
    w0: float | torch.Tensor,
    *,
    g: Callable[[torch.Tensor], torch.Tensor] = sigmoid,
) -> torch.Tensor:
    """y_hat = g(w0 + x @ w).  x (N, D) -> (N,); x (D,) -> 0-d.  w (D,), w0 a scalar."""
    return g(_pre_activation("neuron_forward", x, w, w0))


def perceptron_predict(x: torch.Tensor, w: torch.Tensor, w0: float | torch.Tensor) -> torch.Tensor:
    """1 where w0 + x @ w > 0, else 0 (ties -> 0).  x (N, D) -> (N,) int64; x (D,) -> 0-d."""
    return (_pre_activation("perceptron_predict", x, w, w0) > 0).to(torch.int64)


def perceptron_train(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float = 1.0,
    epochs: int,
    rng: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Rosenblatt's perceptron rule from w = 0, w0 = 0 (see ``np_ref.perceptron_train``).

    x (N, D) floats, y (N,) integer labels in {0, 1} -> (w (D,), w0 0-d tensor,
    mistakes_per_epoch: list of ``epochs`` ints). Samples in order, or in a fresh
    ``torch.randperm(N, generator=rng)`` every epoch when ``rng`` is given.
    Prediction 1 iff w0 + x_i @ w > 0; on a mistake w += lr (y_i - p) x_i, w0 += lr (y_i - p).
    """
    fn = "perceptron_train"
    require_float(fn, "x", x)
    require_ndim(fn, "x", x, 2, "(N, D)")
    n, d = x.shape
    require_labels(fn, "y", y, 2, n)
    require_positive_int(fn, "epochs", epochs)
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ValueError(f"{fn}: argument 'lr' must be a positive number, got {lr!r}")
    w = torch.zeros(d, dtype=x.dtype, device=x.device)
    w0 = torch.zeros((), dtype=x.dtype, device=x.device)
    labels = y.tolist()  # one transfer, instead of one device sync per sample
    mistakes_per_epoch: list[int] = []
    for _ in range(epochs):
        if rng is None:
            order: range | list[int] = range(n)
        else:
            order = torch.randperm(n, generator=rng, device=rng.device).tolist()
        mistakes = 0
        for i in order:
            pred = 1 if bool(w0 + x[i] @ w > 0) else 0
            err = int(labels[i]) - pred
            if err:
                w += lr * err * x[i]
                w0 += lr * err
                mistakes += 1
        mistakes_per_epoch.append(mistakes)
    return w, w0, mistakes_per_epoch
