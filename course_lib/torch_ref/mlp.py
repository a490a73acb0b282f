"""A multi-layer perceptron in torch ops, with backpropagation written out (no autograd).

Mirrors ``course_lib.np_ref.mlp``: ``params`` is a list of (w (D_{l-1}, D_l), b (D_l,));
z_l = a_{l-1} @ w_l + b_l, a_l = g(z_l) between layers, scores = z_L (no final activation).
Letters: N batch, D_0 inputs, D_l units of layer l.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from course_lib.torch_ref import activations as act
from course_lib.torch_ref.dense import DenseCache, dense_backward, dense_forward
from course_lib.validation import require_ndim, require_positive_int, require_shape

__all__ = ["MLPCache", "ACTIVATIONS", "init_mlp", "mlp_forward", "mlp_backward"]

Tensor = torch.Tensor


def _identity(z: Tensor) -> Tensor:
    return z


def _ones(z: Tensor) -> Tensor:
    return torch.ones_like(z)


# name -> (g, g'), both taking the pre-activation z.
ACTIVATIONS: dict[str, tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "relu": (act.relu, act.relu_grad),
    "sigmoid": (act.sigmoid, act.sigmoid_grad),
    "tanh": (act.tanh, act.tanh_grad),
    "leaky_relu": (act.leaky_relu, act.leaky_relu_grad),
    "swish": (act.swish, act.swish_grad),
    "linear": (_identity, _ones),
}


class MLPCache(NamedTuple):
    dense: tuple[DenseCache, ...]  # one per layer
    z: tuple[Tensor, ...]  # hidden pre-activations z_1 .. z_{L-1}
    activation: str


def init_mlp(sizes: Sequence[int], *, rng: torch.Generator, init: str = "he") -> list[tuple[Tensor, Tensor]]:
    """Random weights for layers of ``sizes`` = [D_0, ..., D_L] units, on ``rng``'s device.

    Returns L pairs (w (D_{l-1}, D_l), b (D_l,)) in torch's default dtype (float32
    unless changed), biases zero, weights normal with mean 0 and std sqrt(2 / D_in)
    for ``init="he"`` or sqrt(2 / (D_in + D_out)) for ``init="xavier"``
    (see ``np_ref.mlp.init_mlp``).
    """
    fn = "init_mlp"
    if len(sizes) < 2:
        raise ValueError(f"{fn}: argument 'sizes' needs at least 2 entries [D_in, D_out], got {list(sizes)}")
    for size in sizes:
        require_positive_int(fn, "sizes", size)
    if init not in ("he", "xavier"):
        raise ValueError(f"{fn}: argument 'init' must be 'he' or 'xavier', got {init!r}")
    params = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        std = math.sqrt(2.0 / d_in) if init == "he" else math.sqrt(2.0 / (d_in + d_out))
        w = torch.randn(d_in, d_out, generator=rng, device=rng.device) * std
        params.append((w, torch.zeros(d_out, device=rng.device)))
    return params


def mlp_forward(
    params: Sequence[tuple[Tensor, Tensor]], x: Tensor, *, activation: str = "relu"
) -> tuple[Tensor, MLPCache]:
    """x (N, D_0) -> scores (N, D_L), cache.  ``activation`` is applied between layers only.

    activation: "relu", "sigmoid", "tanh", "leaky_relu" (alpha 0.01), "swish" or "linear".
    """
    fn = "mlp_forward"
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{fn}: argument 'activation' must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    if len(params) == 0:
        raise ValueError(f"{fn}: argument 'params' must hold at least one (w, b) layer, got none")
    require_ndim(fn, "x", x, 2, "(N, D_0)")
    g = ACTIVATIONS[activation][0]
    dense_caches: list[DenseCache] = []
    zs: list[Tensor] = []
    a = x
    for layer, (w, b) in enumerate(params):
        # Checked here too (dense_forward would catch it) so the message names the layer.
        require_shape(fn, f"params[{layer}][0]", w, [("D_in", a.shape[1]), ("D_out", None)])
        require_shape(fn, f"params[{layer}][1]", b, [("D_out", w.shape[1])])
        z, cache = dense_forward(a, w, b)
        dense_caches.append(cache)
        if layer < len(params) - 1:
            zs.append(z)
            a = g(z)
        else:
            a = z
    return a, MLPCache(tuple(dense_caches), tuple(zs), activation)


def mlp_backward(dscores: Tensor, cache: MLPCache) -> list[tuple[Tensor, Tensor]]:
    """dscores (N, D_L) -> [(dw_1, db_1), ..., (dw_L, db_L)], shaped like ``params``."""
    g_grad = ACTIVATIONS[cache.activation][1]
    grads: list[tuple[Tensor, Tensor]] = []
    d = dscores
    for layer in reversed(range(len(cache.dense))):
        d, dw, db = dense_backward(d, cache.dense[layer])
        grads.append((dw, db))
        if layer > 0:
            d = d * g_grad(cache.z[layer - 1])
    grads.reverse()
    return grads
