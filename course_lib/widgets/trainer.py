"""The playground's model: an MLP with dropout and L2, trained by mini-batch SGD, in np_ref.

Letters: N points, D = 2 input features, H_l units of hidden layer l, K classes.
``params`` is a list of (w (D_in, D_out), b (D_out,)) pairs as in ``np_ref.mlp``; the
forward pass is

    a_0 = x,  z_l = a_{l-1} @ w_l + b_l,  a_l = dropout(g(z_l))  (hidden layers),
    scores = z_L  (N, K) -> softmax cross-entropy.

It is built from np_ref's dense, activation, dropout, loss and penalty pieces rather
than ``mlp_forward`` because dropout sits between the layers. The L2 penalty
``lam / 2 * sum ||w_l||^2`` covers the weights, not the biases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from course_lib.np_ref.dense import DenseCache, dense_backward, dense_forward
from course_lib.np_ref.losses import softmax_cross_entropy
from course_lib.np_ref.mlp import ACTIVATIONS, init_mlp
from course_lib.np_ref.optim import iterate_minibatches, sgd_step
from course_lib.np_ref.regularization import DropoutCache, dropout_backward, dropout_forward, l2_penalty

__all__ = ["Params", "LayerCache", "init_params", "forward", "backward", "data_loss", "train_epoch"]

Array = np.ndarray
Params = list[tuple[Array, Array]]


class LayerCache(NamedTuple):
    dense: DenseCache  # the layer's input a_{l-1} and weights w_l
    z: Array | None  # pre-activation (N, H_l) of a hidden layer; None for the output layer
    dropout: DropoutCache | None  # None for the output layer


def init_params(
    hidden: Sequence[int], n_classes: int, *, activation: str, rng: np.random.Generator
) -> Params:
    """Weights for 2 -> hidden... -> n_classes: He init for relu-like units, Xavier for the others."""
    init = "xavier" if activation in ("tanh", "sigmoid", "linear") else "he"
    return init_mlp([2, *hidden, n_classes], rng=rng, init=init)


def forward(
    params: Params, x: Array, *, activation: str, p_drop: float, train: bool, rng: np.random.Generator | None
) -> tuple[Array, list[LayerCache]]:
    """x (N, 2) -> scores (N, K), one LayerCache per layer. Dropout acts only with train=True."""
    g = ACTIVATIONS[activation][0]
    caches: list[LayerCache] = []
    a = x
    for layer, (w, b) in enumerate(params):
        z, dense_cache = dense_forward(a, w, b)
        if layer == len(params) - 1:
            caches.append(LayerCache(dense_cache, None, None))
            return z, caches
        a, drop_cache = dropout_forward(g(z), p_drop=p_drop, train=train, rng=rng)
        caches.append(LayerCache(dense_cache, z, drop_cache))
    raise ValueError("forward: argument 'params' must hold at least one (w, b) layer, got none")


def backward(dscores: Array, caches: list[LayerCache], *, activation: str) -> Params:
    """dscores (N, K) -> [(dw_l, db_l)] shaped like params."""
    g_grad = ACTIVATIONS[activation][1]
    grads: Params = []
    d = dscores
    for cache in reversed(caches):
        if cache.z is not None:
            assert cache.dropout is not None  # every hidden layer (z given) has a dropout cache
            d = dropout_backward(d, cache.dropout) * g_grad(cache.z)
        d, dw, db = dense_backward(d, cache.dense)
        grads.append((dw, db))
    grads.reverse()
    return grads


def data_loss(params: Params, x: Array, y: Array, *, activation: str) -> float:
    """Mean cross-entropy on (x (N, 2), y (N,)) in evaluation mode (no dropout, no penalty)."""
    scores, _ = forward(params, x, activation=activation, p_drop=0.0, train=False, rng=None)
    return float(softmax_cross_entropy(scores, y)[0])


def train_epoch(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: str,
    lr: float,
    l2: float,
    p_drop: float,
    batch_size: int,
    rng: np.random.Generator,
) -> Params:
    """One pass of mini-batch SGD over (x (N, 2), y (N,)); returns the new params."""
    for xb, yb in iterate_minibatches(x, y, batch_size=batch_size, rng=rng):
        scores, caches = forward(params, xb, activation=activation, p_drop=p_drop, train=True, rng=rng)
        _, dscores = softmax_cross_entropy(scores, yb)
        grads = backward(dscores, caches, activation=activation)
        if l2 > 0:
            _, penalty_grads = l2_penalty([w for w, _ in params], lam=l2)
            grads = [(dw + pw, db) for (dw, db), pw in zip(grads, penalty_grads, strict=True)]
        params = [
            (sgd_step(w, dw, lr=lr)[0], sgd_step(b, db, lr=lr)[0])
            for (w, b), (dw, db) in zip(params, grads, strict=True)
        ]
    return params
