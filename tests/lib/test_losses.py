"""Losses and their gradients against torch.nn.functional + autograd, numerical
gradients and hand-computed values, on every backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.gradcheck import numerical_vjp
from course_lib.testing import assert_close
from tests.lib.support import F32_RTOL, F64_ATOL, F64_RTOL, GRADCHECK_ATOL, GRADCHECK_RTOL

N, K = 6, 4


def _hinge_oracle(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.clamp(1.0 - y * s, min=0.0).mean()


def _case(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, target) float64 inputs for each loss; never at a kink."""
    rng = np.random.default_rng(seed)
    if name in ("mse_loss", "mae_loss"):
        return rng.standard_normal((N, 3)), rng.standard_normal((N, 3))
    if name == "binary_cross_entropy":
        return 1.0 / (1.0 + np.exp(-2.0 * rng.standard_normal(N))), rng.uniform(size=N)
    if name == "binary_cross_entropy_with_logits":
        return 3.0 * rng.standard_normal(N), rng.integers(0, 2, N).astype(np.float64)
    if name == "softmax_cross_entropy":
        return 2.0 * rng.standard_normal((N, K)), rng.integers(0, K, N)
    if name == "hinge_loss":
        return 2.0 * rng.standard_normal(N), rng.choice([-1.0, 1.0], N)
    raise KeyError(name)


ORACLES = {
    "mse_loss": F.mse_loss,
    "mae_loss": F.l1_loss,
    "binary_cross_entropy": F.binary_cross_entropy,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    "softmax_cross_entropy": F.cross_entropy,
    "hinge_loss": _hinge_oracle,
}
NAMES = sorted(ORACLES)


def _torch_oracle(name: str, pred: np.ndarray, target: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.from_numpy(pred.copy()).requires_grad_(True)
    loss = ORACLES[name](p, torch.from_numpy(target))
    loss.backward()
    return loss.detach(), p.grad


@pytest.mark.parametrize("name", NAMES)
def test_loss_and_gradient_match_torch(backend, name):
    pred, target = _case(name)
    loss, dpred = getattr(backend.mod, name)(backend.asarray(pred), backend.asarray(target))
    want_loss, want_grad = _torch_oracle(name, pred, target)
    assert backend.to_numpy(loss).shape == (), f"{name}: the loss must be a 0-d scalar"
    assert_close(backend.to_numpy(loss), want_loss, name=f"{name} loss", rtol=F64_RTOL, atol=F64_ATOL)
    assert_close(backend.to_numpy(dpred), want_grad, name=f"{name} dpred", rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_numerical(backend, name):
    pred, target = _case(name, seed=1)
    fn = getattr(backend.mod, name)
    tgt = backend.asarray(target)
    numeric = numerical_vjp(lambda v: backend.to_numpy(fn(backend.asarray(v), tgt)[0]), pred, np.float64(1.0))
    _, dpred = fn(backend.asarray(pred), tgt)
    assert_close(backend.to_numpy(dpred), numeric, name=f"{name} dpred", rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "softmax_cross_entropy"])
def test_float32_in_float32_out(backend, name):
    pred, target = _case(name, seed=2)
    if name == "hinge_loss":
        target = target.astype(np.int64)  # signs may arrive as integers
    else:
        target = target.astype(np.float32)
    loss, dpred = getattr(backend.mod, name)(backend.asarray(pred.astype(np.float32)), backend.asarray(target))
    assert backend.to_numpy(loss).dtype == np.float32
    assert backend.to_numpy(dpred).dtype == np.float32


def test_softmax_cross_entropy_float32(backend):
    logits, labels = _case("softmax_cross_entropy", seed=2)
    loss, dlogits = backend.mod.softmax_cross_entropy(backend.asarray(logits.astype(np.float32)), backend.asarray(labels))
    assert backend.to_numpy(loss).dtype == np.float32
    assert backend.to_numpy(dlogits).dtype == np.float32
    if backend.device is not None:
        assert dlogits.device.type == torch.device(backend.device).type


def test_by_hand(backend):
    a = backend.asarray
    loss, d = backend.mod.mse_loss(a(np.array([1.0, 2.0])), a(np.array([0.0, 0.0])))
    assert_close(backend.to_numpy(loss), 2.5, name="mse (1 + 4) / 2")
    assert_close(backend.to_numpy(d), [1.0, 2.0], name="mse dpred 2 (p - t) / 2")
    loss, d = backend.mod.mae_loss(a(np.array([1.0, -3.0])), a(np.array([0.0, 0.0])))
    assert_close(backend.to_numpy(loss), 2.0, name="mae (1 + 3) / 2")
    assert_close(backend.to_numpy(d), [0.5, -0.5], name="mae dpred sign / 2")
    # All-equal logits over K = 4 classes: every class has probability 1/4, loss = log 4.
    loss, d = backend.mod.softmax_cross_entropy(a(np.zeros((1, 4))), a(np.array([2])))
    assert_close(backend.to_numpy(loss), np.log(4.0), name="cross-entropy of uniform logits")
    assert_close(backend.to_numpy(d), [[0.25, 0.25, -0.75, 0.25]], name="softmax - one_hot")
    # Margins y*s = 2, 0.5, -1 cost 0, 0.5, 2; only the last two push the score.
    loss, d = backend.mod.hinge_loss(a(np.array([2.0, 0.5, 1.0])), a(np.array([1.0, 1.0, -1.0])))
    assert_close(backend.to_numpy(loss), 2.5 / 3, name="hinge")
    assert_close(backend.to_numpy(d), [0.0, -1 / 3, 1 / 3], name="hinge dscores")
    # Exactly on the margin (y*s = 1): no loss and, by our convention, subgradient 0.
    loss, d = backend.mod.hinge_loss(a(np.array([1.0, -1.0])), a(np.array([1.0, -1.0])))
    assert_close(backend.to_numpy(loss), 0.0, name="hinge at the margin")
    assert_close(backend.to_numpy(d), [0.0, 0.0], name="hinge dscores at the kink")
    # p = 1/2 for both samples: loss = log 2 whatever the target.
    loss, _ = backend.mod.binary_cross_entropy(a(np.array([0.5, 0.5])), a(np.array([1.0, 0.0])))
    assert_close(backend.to_numpy(loss), np.log(2.0), name="BCE at p = 1/2")


def test_bce_clamps_like_torch_at_0_and_1(backend):
    probs = np.array([0.0, 1.0, 0.0, 1.0, 0.3])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log(0) must not warn
        loss, d = backend.mod.binary_cross_entropy(backend.asarray(probs), backend.asarray(y))
    want_loss, _ = _torch_oracle("binary_cross_entropy", probs, y)
    assert_close(backend.to_numpy(loss), want_loss, name="BCE loss (log clamped at -100)", rtol=F64_RTOL)
    # At p in {0, 1} the gradient is (p - y) / max(p (1 - p), 1e-12) / N. Some of torch's
    # CPU kernels round that 1e-12 floor to float32 (a 4e-9 relative change), so compare
    # with torch at float32 tolerance, and with the hand-computed float64 value exactly.
    want_grad = _torch_oracle("binary_cross_entropy", probs, y)[1]
    assert_close(backend.to_numpy(d), want_grad, name="BCE dprobs at 0 and 1", rtol=F32_RTOL)
    by_hand = [-1 / 1e-12 / 5, 1 / 1e-12 / 5, 0.0, 0.0, (0.3 - 0.5) / (0.3 * 0.7) / 5]
    assert_close(backend.to_numpy(d), by_hand, name="BCE dprobs by hand", rtol=F64_RTOL)


def test_bce_with_logits_stable_for_huge_logits(backend):
    logits = np.array([-1e3, 1e3, -1e3, 1e3, 0.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, d = backend.mod.binary_cross_entropy_with_logits(backend.asarray(logits), backend.asarray(y))
    want_loss, want_grad = _torch_oracle("binary_cross_entropy_with_logits", logits, y)
    # By hand: two confident mistakes cost 1000 each, two confident hits 0, and log 2 at 0.
    assert_close(backend.to_numpy(loss), (2000.0 + np.log(2.0)) / 5, name="BCE-with-logits by hand")
    assert_close(backend.to_numpy(loss), want_loss, name="BCE-with-logits loss", rtol=F64_RTOL)
    assert_close(backend.to_numpy(d), want_grad, name="BCE-with-logits dlogits", rtol=F64_RTOL, atol=F64_ATOL)


def test_softmax_cross_entropy_stable_for_huge_logits(backend):
    logits = np.array([[1e3, -1e3, 0.0], [-1e3, -1e3, 1e3]])
    labels = np.array([1, 2])
    loss, d = backend.mod.softmax_cross_entropy(backend.asarray(logits), backend.asarray(labels))
    want_loss, want_grad = _torch_oracle("softmax_cross_entropy", logits, labels)
    assert_close(backend.to_numpy(loss), want_loss, name="cross-entropy loss", rtol=F64_RTOL)
    assert_close(backend.to_numpy(d), want_grad, name="cross-entropy dlogits", rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize("name", ["mse_loss", "mae_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_no_broadcasting_of_n_against_n1(backend, name):
    pred, target = _case(name)
    pred = pred[:, :1] if pred.ndim == 2 else pred
    target = target.reshape(-1)[: pred.shape[0]].reshape(-1, 1)
    with pytest.raises(ValueError, match=rf"{name}: arguments '\w+' and '\w+' must have the same shape"):
        getattr(backend.mod, name)(backend.asarray(pred.reshape(-1)), backend.asarray(target))


def test_hinge_shape_mismatch(backend):
    with pytest.raises(ValueError, match="hinge_loss: arguments 'scores' and 'y'"):
        backend.mod.hinge_loss(backend.asarray(np.ones(3)), backend.asarray(np.ones((3, 1))))


@pytest.mark.parametrize("labels", [[0, 4, 1], [0, -1, 1]])
def test_labels_out_of_range(backend, labels):
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: argument 'labels' must be in \[0, 4\)"):
        backend.mod.softmax_cross_entropy(backend.asarray(np.zeros((3, 4))), backend.asarray(np.array(labels)))


def test_bad_label_dtype_and_shape(backend):
    fn = backend.mod.softmax_cross_entropy
    with pytest.raises(ValueError, match="argument 'labels' must hold integer class labels"):
        fn(backend.asarray(np.zeros((3, 4))), backend.asarray(np.array([0.0, 1.0, 2.0])))
    with pytest.raises(ValueError, match="argument 'labels' must have shape"):
        fn(backend.asarray(np.zeros((3, 4))), backend.asarray(np.array([0, 1])))
    with pytest.raises(ValueError, match="argument 'logits' must be 2-D"):
        fn(backend.asarray(np.zeros(4)), backend.asarray(np.array([0])))


def test_bce_probs_outside_unit_interval(backend):
    with pytest.raises(ValueError, match=r"binary_cross_entropy: argument 'probs' must be in \[0, 1\]"):
        backend.mod.binary_cross_entropy(backend.asarray(np.array([0.5, 1.5])), backend.asarray(np.array([1.0, 0.0])))


def test_hinge_labels_must_be_signs(backend):
    with pytest.raises(ValueError, match=r"hinge_loss: argument 'y' must hold labels in \{-1, \+1\}"):
        backend.mod.hinge_loss(backend.asarray(np.array([0.5, 1.5])), backend.asarray(np.array([1.0, 0.0])))


@pytest.mark.parametrize("name", ["mse_loss", "mae_loss", "binary_cross_entropy_with_logits"])
def test_integer_prediction_rejected(backend, name):
    with pytest.raises(ValueError, match=rf"{name}: argument '\w+' must be a floating-point array"):
        getattr(backend.mod, name)(backend.asarray(np.array([1, 0])), backend.asarray(np.array([1.0, 0.0])))
