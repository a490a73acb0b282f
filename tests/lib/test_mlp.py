"""The MLP: initialisation statistics, forward/backward against torch autograd on the
same float64 weights, numerical gradients — for every activation and backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.gradcheck import numerical_vjp
from course_lib.testing import assert_close
from tests.lib.support import F64_ATOL, F64_RTOL, GRADCHECK_ATOL, GRADCHECK_RTOL

# The oracle's activations come from torch, not from course_lib.
TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.01),
    "swish": F.silu,
    "linear": lambda z: z,
}
SIZES = [3, 5, 4, 2]


def _params(seed: int = 0, sizes: list[int] = SIZES) -> list[tuple[np.ndarray, np.ndarray]]:
    # Non-zero biases, so that db and the bias path are really exercised.
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((a, b)), 0.1 * rng.standard_normal(b)) for a, b in zip(sizes[:-1], sizes[1:])]


def _to_backend(backend, params):
    return [(backend.asarray(w), backend.asarray(b)) for w, b in params]


@pytest.mark.parametrize("init, expected_std", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(2 / (400 + 300)))])
def test_init_std_is_right(backend, init, expected_std):
    params = backend.mod.init_mlp([400, 300, 10], rng=backend.rng(0), init=init)
    assert [tuple(backend.to_numpy(w).shape) for w, _ in params] == [(400, 300), (300, 10)]
    w = backend.to_numpy(params[0][0]).astype(np.float64)
    n = w.size  # 120 000 draws: the sample std has relative spread 1/sqrt(2n) = 0.2%
    assert abs(w.std() / expected_std - 1) < 0.01, f"{init}: std {w.std():.5f}, expected {expected_std:.5f}"
    assert abs(w.mean()) < 4 * expected_std / np.sqrt(n), f"{init}: mean {w.mean():.2e} is not ~0"
    for _, b in params:
        np.testing.assert_array_equal(backend.to_numpy(b), 0.0)


def test_init_second_layer_std_and_reproducibility(backend):
    params = backend.mod.init_mlp([400, 300, 200], rng=backend.rng(1), init="xavier")
    w2 = backend.to_numpy(params[1][0]).astype(np.float64)
    assert abs(w2.std() / np.sqrt(2 / 500) - 1) < 0.01
    again = backend.mod.init_mlp([400, 300, 200], rng=backend.rng(1), init="xavier")
    np.testing.assert_array_equal(backend.to_numpy(again[1][0]), backend.to_numpy(params[1][0]))
    if backend.device is None:
        assert params[0][0].dtype == np.float64


def _torch_oracle(params, x, dscores, activation):
    """Scores and parameter gradients by torch autograd, float64, torch's own activations."""
    leaves = [(torch.from_numpy(w.copy()).requires_grad_(True), torch.from_numpy(b.copy()).requires_grad_(True)) for w, b in params]
    a = torch.from_numpy(x)
    for i, (w, b) in enumerate(leaves):
        a = F.linear(a, w.T, b)
        if i < len(leaves) - 1:
            a = TORCH_ACTIVATIONS[activation](a)
    a.backward(torch.from_numpy(dscores))
    return a.detach(), [(w.grad, b.grad) for w, b in leaves]


@pytest.mark.parametrize("activation", sorted(TORCH_ACTIVATIONS))
def test_matches_torch_autograd(backend, activation):
    rng = np.random.default_rng(1)
    params, x, dscores = _params(), rng.standard_normal((6, SIZES[0])), rng.standard_normal((6, SIZES[-1]))
    scores, cache = backend.mod.mlp_forward(_to_backend(backend, params), backend.asarray(x), activation=activation)
    grads = backend.mod.mlp_backward(backend.asarray(dscores), cache)
    want_scores, want_grads = _torch_oracle(params, x, dscores, activation)
    assert_close(backend.to_numpy(scores), want_scores, name=f"{activation} scores", rtol=F64_RTOL, atol=F64_ATOL)
    assert len(grads) == len(params)
    for layer, ((dw, db), (want_dw, want_db)) in enumerate(zip(grads, want_grads), start=1):
        assert_close(backend.to_numpy(dw), want_dw, name=f"{activation} dw{layer}", rtol=F64_RTOL, atol=F64_ATOL)
        assert_close(backend.to_numpy(db), want_db, name=f"{activation} db{layer}", rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize("activation", sorted(TORCH_ACTIVATIONS))
def test_matches_numerical_gradient(backend, activation):
    rng = np.random.default_rng(2)
    params, x, dscores = _params(3), rng.standard_normal((5, SIZES[0])), rng.standard_normal((5, SIZES[-1]))
    _, cache = backend.mod.mlp_forward(_to_backend(backend, params), backend.asarray(x), activation=activation)
    grads = backend.mod.mlp_backward(backend.asarray(dscores), cache)
    for layer, (w, b) in enumerate(params):
        for which, arr in (("w", w), ("b", b)):
            def scores_of(_v: np.ndarray) -> np.ndarray:
                # `arr` is perturbed in place by numerical_vjp, so params sees the change.
                return backend.to_numpy(
                    backend.mod.mlp_forward(_to_backend(backend, params), backend.asarray(x), activation=activation)[0]
                )

            numeric = numerical_vjp(scores_of, arr, dscores)
            got = grads[layer][0 if which == "w" else 1]
            assert_close(backend.to_numpy(got), numeric, name=f"{activation} d{which}{layer + 1}",
                         rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL)


def test_single_layer_is_dense_without_activation(backend):
    # One layer: scores = x @ w + b even with a sigmoid "between" layers (there is none).
    params = _params(4, sizes=[2, 3])
    x = np.array([[1.0, -2.0]])
    scores, _ = backend.mod.mlp_forward(_to_backend(backend, params), backend.asarray(x), activation="sigmoid")
    w, b = params[0]
    assert_close(backend.to_numpy(scores), x @ w + b, name="scores", rtol=F64_RTOL)


def test_float32_kept(backend):
    params = [(w.astype(np.float32), b.astype(np.float32)) for w, b in _params(5)]
    x = np.random.default_rng(5).standard_normal((3, SIZES[0])).astype(np.float32)
    scores, cache = backend.mod.mlp_forward(_to_backend(backend, params), backend.asarray(x))
    grads = backend.mod.mlp_backward(backend.asarray(np.ones((3, SIZES[-1]), dtype=np.float32)), cache)
    assert backend.to_numpy(scores).dtype == np.float32
    assert all(backend.to_numpy(g).dtype == np.float32 for pair in grads for g in pair)


def test_bad_arguments(backend):
    params = _to_backend(backend, _params())
    x = backend.asarray(np.ones((2, SIZES[0])))
    with pytest.raises(ValueError, match="mlp_forward: argument 'activation' must be one of"):
        backend.mod.mlp_forward(params, x, activation="softplus")
    with pytest.raises(ValueError, match="mlp_forward: argument 'params'"):
        backend.mod.mlp_forward([], x)
    with pytest.raises(ValueError, match="mlp_forward: argument 'x' must be 2-D"):
        backend.mod.mlp_forward(params, backend.asarray(np.ones(SIZES[0])))
    with pytest.raises(ValueError, match=r"mlp_forward: argument 'params\[1\]\[0\]' must have shape \(D_in=5, D_out\)"):
        backend.mod.mlp_forward([params[0], params[0]], x)
    with pytest.raises(ValueError, match="init_mlp: argument 'init'"):
        backend.mod.init_mlp([3, 2], rng=backend.rng(0), init="uniform")
    with pytest.raises(ValueError, match="init_mlp: argument 'sizes'"):
        backend.mod.init_mlp([3], rng=backend.rng(0))
    with pytest.raises(ValueError, match="init_mlp: argument 'sizes'"):
        backend.mod.init_mlp([3, 0, 2], rng=backend.rng(0))
