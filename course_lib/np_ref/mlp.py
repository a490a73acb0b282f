"""A multi-layer perceptron: dense layers with an activation between them, in NumPy.

Letters: N batch, D_0 input features, D_l units of layer l, K = D_L output scores.
``params`` is a list of L pairs (w, b) with w (D_{l-1}, D_l) and b (D_l,). The forward
pass is

    a_0 = x,   z_l = a_{l-1} @ w_l + b_l,   a_l = g(z_l) for l < L,   scores = z_L,

i.e. no activation after the last layer: scores are logits, to be fed to a loss such
as ``softmax_cross_entropy``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from course_lib.np_ref import activations as act
from course_lib.np_ref.dense import DenseCache, dense_backward, dense_forward
from course_lib.validation import require_ndim, require_positive_int, require_shape

__all__ = ["MLPCache", "ACTIVATIONS", "init_mlp", "mlp_forward", "mlp_backward"]

Array = np.ndarray


def _identity(z: Array) -> Array:
    return z


def _ones(z: Array) -> Array:
    return np.ones_like(z)


# name -> (g, g'), both taking the pre-activation z.
ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "relu": (act.relu, act.relu_grad),
    "sigmoid": (act.sigmoid, act.sigmoid_grad),
    "tanh": (act.tanh, act.tanh_grad),
    "leaky_relu": (act.leaky_relu, act.leaky_relu_grad),
    "swish": (act.swish, act.swish_grad),
    "linear": (_identity, _ones),
}


class MLPCache(NamedTuple):
    dense: tuple[DenseCache, ...]  # one per layer: its input a_{l-1} and weights w_l
    z: tuple[Array, ...]  # pre-activations z_1 .. z_{L-1} of the hidden layers, for g'(z)
    activation: str


def init_mlp(
    sizes: Sequence[int], *, rng: np.random.Generator, init: str = "he"
) -> list[tuple[Array, Array]]:
    """Random weights for layers of ``sizes`` = [D_0, D_1, ..., D_L] units.

    Returns L pairs (w (D_{l-1}, D_l), b (D_l,)), float64, biases zero. Weights are
    drawn from a normal distribution with mean 0 and standard deviation

    - ``init="he"``:     sqrt(2 / D_in)            (He et al. 2015, for relu; torch's
      ``kaiming_normal_`` with mode="fan_in"),
    - ``init="xavier"``: sqrt(2 / (D_in + D_out))  (Glorot & Bengio 2010, for tanh/sigmoid;
      torch's ``xavier_normal_``),

    so that the variance of the activations stays roughly constant from layer to layer.
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
        std = np.sqrt(2.0 / d_in) if init == "he" else np.sqrt(2.0 / (d_in + d_out))
        params.append((rng.normal(0.0, std, size=(d_in, d_out)), np.zeros(d_out)))
    return params


def mlp_forward(
    params: Sequence[tuple[Array, Array]], x: Array, *, activation: str = "relu"
) -> tuple[Array, MLPCache]:
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
    zs: list[Array] = []
    a = x
    for layer, (w, b) in enumerate(params):
        # Checked here too (dense_forward would catch it) so the message names the layer.
        require_shape(fn, f"params[{layer}][0]", w, [("D_in", a.shape[1]), ("D_out", None)])
        require_shape(fn, f"params[{layer}][1]", b, [("D_out", w.shape[1])])
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


def mlp_backward(dscores: Array, cache: MLPCache) -> list[tuple[Array, Array]]:
    """dscores (N, D_L) -> [(dw_1, db_1), ..., (dw_L, db_L)], shaped like ``params``.

    Backpropagation: walk the layers in reverse; through a dense layer with
    ``dense_backward``, through an activation by multiplying with g'(z) element-wise.
    """
    g_grad = ACTIVATIONS[cache.activation][1]
    grads: list[tuple[Array, Array]] = []
    d = dscores
    for layer in reversed(range(len(cache.dense))):
        d, dw, db = dense_backward(d, cache.dense[layer])
        grads.append((dw, db))
        if layer > 0:
            d = d * g_grad(cache.z[layer - 1])
    grads.reverse()
    return grads
