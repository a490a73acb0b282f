"""The single neuron (lecture's worked example) and Rosenblatt's rule: hand-checked
updates, convergence on separable data, none on XOR — on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.testing import assert_close
from tests.lib.support import F64_ATOL, F64_RTOL

CORNERS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
GATES = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}


def test_lecture_example(backend):
    # w0 = 1, w = [3, -2], x = [-1, 2]:  z = 1 + 3*(-1) + (-2)*2 = -6,  g(-6) = 1 / (1 + e^6).
    x = backend.asarray(np.array([-1.0, 2.0]))
    w = backend.asarray(np.array([3.0, -2.0]))
    y_hat = backend.to_numpy(backend.mod.neuron_forward(x, w, 1.0))
    assert y_hat.shape == (), "a single x (D,) gives a scalar output"
    assert_close(y_hat, 1 / (1 + math.exp(6)), name="g(-6)", rtol=F64_RTOL)
    assert abs(float(y_hat) - 0.00247) < 5e-6  # the slide's 0.002, to three significant figures


def test_neuron_forward_batch_and_custom_activation(backend):
    x = backend.asarray(np.array([[-1.0, 2.0], [0.0, 0.0], [1.0, 1.0]]))
    w = backend.asarray(np.array([3.0, -2.0]))
    # z = [-6, 1, 2] by hand.
    sig = 1 / (1 + np.exp([6.0, -1.0, -2.0]))
    assert_close(backend.to_numpy(backend.mod.neuron_forward(x, w, 1.0)), sig, name="sigmoid neuron", rtol=F64_RTOL)
    out = backend.mod.neuron_forward(x, w, 1.0, g=backend.mod.relu)
    assert_close(backend.to_numpy(out), [0.0, 1.0, 2.0], name="relu neuron", atol=F64_ATOL)


def test_perceptron_predict_and_tie_convention(backend):
    x = backend.asarray(np.array([[-1.0, 2.0], [1.0, 0.0], [0.0, 0.5]]))
    w = backend.asarray(np.array([3.0, -2.0]))
    # z = [-6, 4, 0]: the point exactly on the boundary (z = 0) is predicted 0.
    pred = backend.to_numpy(backend.mod.perceptron_predict(x, w, 1.0))
    np.testing.assert_array_equal(pred, [0, 1, 0])
    assert pred.dtype == np.int64
    zero = backend.to_numpy(backend.mod.perceptron_predict(x, w * 0, 0.0))
    np.testing.assert_array_equal(zero, [0, 0, 0])


def _train(backend, x, y, **kwargs):
    w, w0, mistakes = backend.mod.perceptron_train(backend.asarray(x), backend.asarray(np.asarray(y)), **kwargs)
    return backend.to_numpy(w), float(backend.to_numpy(w0)), mistakes


TINY_X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
TINY_Y = [1, 0, 1]


def test_first_epoch_by_hand(backend):
    # From w = [0, 0], w0 = 0, lr = 1, samples in order:
    #   x=[1,0], y=1: z = 0 -> p = 0 (tie), mistake: w = [1, 0],  w0 = 1
    #   x=[0,1], y=0: z = 1 -> p = 1, mistake:       w = [1, -1], w0 = 0
    #   x=[1,1], y=1: z = 0 -> p = 0, mistake:       w = [2, 0],  w0 = 1
    w, w0, mistakes = _train(backend, TINY_X, TINY_Y, epochs=1)
    assert mistakes == [3]
    assert_close(w, [2.0, 0.0], name="w after epoch 1")
    assert_close(w0, 1.0, name="w0 after epoch 1")
    # Epoch 2: only x=[0,1] is wrong (z = 1): w = [2, -1], w0 = 0. Epoch 3: no mistakes.
    w, w0, mistakes = _train(backend, TINY_X, TINY_Y, epochs=4)
    assert mistakes == [3, 1, 0, 0]
    assert_close(w, [2.0, -1.0], name="w after convergence")
    assert_close(w0, 0.0, name="w0 after convergence")


def test_learning_rate_scales_the_weights(backend):
    # From zero weights every z is scaled by lr, so its sign and the mistakes are unchanged.
    w, w0, mistakes = _train(backend, TINY_X, TINY_Y, lr=0.5, epochs=3)
    assert mistakes == [3, 1, 0]
    assert_close(w, [1.0, -0.5], name="w with lr=0.5")
    assert_close(w0, 0.0, name="w0 with lr=0.5")


@pytest.mark.parametrize("gate", ["AND", "OR"])
def test_converges_on_linearly_separable_gates(backend, gate):
    w, w0, mistakes = _train(backend, CORNERS, GATES[gate], epochs=20)
    assert mistakes[-1] == 0, f"{gate}: mistakes per epoch {mistakes}"
    pred = backend.to_numpy(backend.mod.perceptron_predict(backend.asarray(CORNERS), backend.asarray(w), w0))
    np.testing.assert_array_equal(pred, GATES[gate])


def test_never_converges_on_xor(backend):
    # An epoch without mistakes would mean a line separates XOR, and none does.
    _, _, mistakes = _train(backend, CORNERS, GATES["XOR"], epochs=30)
    assert len(mistakes) == 30
    assert min(mistakes) > 0, f"XOR mistakes per epoch {mistakes}"


def _blobs(seed: int = 0, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs around (2.5, 2.5) and (-2.5, -2.5), each centre 3.54 from the
    line x1 + x2 = 0; noise is clipped to radius 2.5, so that line separates the blobs
    with a margin of at least 1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    noise = rng.normal(0.0, 0.7, (n, 2))
    noise *= np.minimum(1.0, 2.5 / np.linalg.norm(noise, axis=1, keepdims=True))
    centres = np.where(y[:, None] == 1, [2.5, 2.5], [-2.5, -2.5])
    return centres + noise, y


@pytest.mark.parametrize("shuffle", [False, True])
def test_converges_on_separable_blobs(backend, shuffle):
    x, y = _blobs()
    rng = backend.rng(0) if shuffle else None
    w, w0, mistakes = _train(backend, x, y, epochs=50, rng=rng)
    assert mistakes[-1] == 0, f"mistakes per epoch {mistakes}"
    pred = backend.to_numpy(backend.mod.perceptron_predict(backend.asarray(x), backend.asarray(w), w0))
    np.testing.assert_array_equal(pred, y)


def test_shuffling_is_reproducible(backend):
    x, y = _blobs(1)
    first = _train(backend, x, y, epochs=5, rng=backend.rng(3))
    again = _train(backend, x, y, epochs=5, rng=backend.rng(3))
    assert first[2] == again[2]
    assert_close(again[0], first[0], name="w with the same seed")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_and_device_kept(backend, dtype):
    w, w0, _ = backend.mod.perceptron_train(
        backend.asarray(TINY_X.astype(dtype)), backend.asarray(np.array(TINY_Y)), epochs=2
    )
    assert backend.to_numpy(w).dtype == np.dtype(dtype)
    out = backend.mod.neuron_forward(backend.asarray(TINY_X.astype(dtype)), w, w0)
    assert backend.to_numpy(out).dtype == np.dtype(dtype)
    if backend.device is not None:
        assert w.device.type == out.device.type == torch.device(backend.device).type


def test_bad_arguments(backend):
    a = backend.asarray
    x, w = a(TINY_X), a(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="perceptron_train: argument 'y' must be in \\[0, 2\\)"):
        backend.mod.perceptron_train(x, a(np.array([1, 2, 0])), epochs=1)
    with pytest.raises(ValueError, match="perceptron_train: argument 'y' must hold integer class labels"):
        backend.mod.perceptron_train(x, a(np.array([1.0, 0.0, 1.0])), epochs=1)
    with pytest.raises(ValueError, match="perceptron_train: argument 'epochs'"):
        backend.mod.perceptron_train(x, a(np.array(TINY_Y)), epochs=0)
    with pytest.raises(ValueError, match="perceptron_train: argument 'lr'"):
        backend.mod.perceptron_train(x, a(np.array(TINY_Y)), lr=-1.0, epochs=1)
    with pytest.raises(ValueError, match="perceptron_train: argument 'x' must be a floating-point"):
        backend.mod.perceptron_train(a(np.array([[1, 0], [0, 1]])), a(np.array([1, 0])), epochs=1)
    with pytest.raises(ValueError, match=r"neuron_forward: argument 'x' must have shape \(N, D=2\)"):
        backend.mod.neuron_forward(a(np.ones((3, 3))), w, 0.0)
    with pytest.raises(ValueError, match="perceptron_predict: argument 'w' must be 1-D"):
        backend.mod.perceptron_predict(x, a(np.ones((2, 1))), 0.0)
    with pytest.raises(ValueError, match="neuron_forward: argument 'w0' must be a scalar"):
        backend.mod.neuron_forward(x, w, a(np.zeros(2)))
