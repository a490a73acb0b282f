"""The playground, driven headless, and its np_ref model checked against oracles.

The model's backward pass is checked against central differences in float64 and
against torch autograd on the same weights (with the same dropout mask).
"""

from __future__ import annotations

import asyncio
import warnings

import numpy as np
import pytest

from course_lib.data import make_xor
from course_lib.gradcheck import numerical_gradient, rel_error
from course_lib.widgets import playground
from course_lib.widgets.playground import ACTIVATION_CHOICES, DATASETS
from course_lib.widgets.trainer import backward, forward, init_params
from course_lib.np_ref.losses import softmax_cross_entropy
from tests.lib.support import F64_ATOL, F64_RTOL, GRADCHECK_RTOL


@pytest.fixture()
def pg():
    return playground(dataset="xor", hidden_layers=2, units=8, activation="tanh", lr=0.1, static=True)


def test_training_loss_falls_on_xor(pg):
    start = pg.train_loss[0]
    pg.step(100)
    losses = np.asarray(pg.train_line.get_ydata())
    np.testing.assert_array_equal(losses, pg.train_loss)
    assert len(losses) == 101
    assert losses[-1] < 0.2 * start, f"train loss {start:.3f} -> {losses[-1]:.3f}"
    val = np.asarray(pg.val_line.get_ydata())
    assert val[-1] < 0.5 * val[0]
    # The corners of the XOR square: opposite corners share a class (make_xor's rule).
    corners = np.array([[1.0, 1.0], [-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]])
    np.testing.assert_array_equal(pg.predict_proba(corners).argmax(axis=1), [0, 0, 1, 1])


def test_a_linear_model_cannot_fit_xor(pg):
    pg.set(hidden_layers=0)
    pg.step(100)
    assert min(pg.train_loss) > 0.6  # ln 2 = 0.69 is chance; no line does much better


def test_decision_region_image_follows_the_model(pg):
    before = np.array(pg.region_image.get_array())
    pg.step(50)
    after = np.array(pg.region_image.get_array())
    assert after.shape == before.shape == (60, 60, 3)
    assert np.abs(after - before).max() > 0.1


def test_buttons_step_and_reset(pg):
    initial = pg.train_loss[0]
    pg.step_button.click()
    pg.step_button.click()
    assert pg.epoch == 2 and len(pg.val_loss) == 3
    pg.reset_button.click()
    assert pg.epoch == 0
    assert pg.train_loss[0] == pytest.approx(initial, rel=F64_RTOL)  # same seed, same start


def test_train_button_without_event_loop_trains_a_burst(pg):
    pg.train_button.click()
    assert pg.epoch == pg.epochs_per_frame


def test_train_button_runs_in_the_event_loop_and_pauses(pg):
    async def scenario() -> tuple[int, int, str]:
        pg.train_button.click()  # starts a task and returns at once
        assert pg.train_button.description == "Train"  # the task has not started yet
        for _ in range(200):
            await asyncio.sleep(0.01)
            if pg.epoch >= 3 * pg.epochs_per_frame:
                break
        label_while_running = pg.train_button.description
        pg.train_button.click()  # pause
        for _ in range(200):
            await asyncio.sleep(0.01)
            if pg._task is None:
                break
        paused_at = pg.epoch
        await asyncio.sleep(0.05)
        return paused_at, pg.epoch, label_while_running

    paused_at, later, label = asyncio.run(scenario())
    assert label == "Pause"
    assert paused_at >= 3 * pg.epochs_per_frame
    assert later == paused_at
    assert pg.train_button.description == "Train"


def test_reset_button_stops_training(pg):
    async def scenario() -> int:
        pg.train_button.click()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if pg.epoch >= pg.epochs_per_frame:
                break
        pg.reset_button.click()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if pg._task is None:
                break
        return pg.epoch

    assert asyncio.run(scenario()) == 0
    assert pg.train_button.description == "Train"


def test_architecture_changes_reset_hyperparameters_do_not(pg):
    pg.step(3)
    pg.set(lr=0.5, l2=1e-3, p_drop=0.2)
    assert pg.epoch == 3
    pg.units_slider.value = 4
    assert pg.epoch == 0
    assert [w.shape for w, _ in pg.params] == [(2, 4), (4, 4), (4, 2)]
    pg.set(dataset="spirals")
    assert pg.params[-1][0].shape == (4, 3) and pg.n_classes == 3


def test_l2_keeps_weights_smaller(pg):
    norms = {}
    for lam in (0.0, 0.1):
        pg.set(l2=lam)
        pg.reset()
        pg.step(100)
        norms[lam] = sum(float(np.sum(w * w)) for w, _ in pg.params)
    assert norms[0.1] < 0.5 * norms[0.0]


def test_every_dataset_and_activation_trains_quietly(pg):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        combos = [(d, "relu") for d in DATASETS] + [("spirals", a) for a in ACTIVATION_CHOICES]
        for dataset, activation in combos:
            pg.set(dataset=dataset, activation=activation, hidden_layers=1, p_drop=0.3, lr=1.0)
            pg.step(3)
            assert np.isfinite(pg.train_loss).all()


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "swish"])
@pytest.mark.parametrize("p_drop", [0.0, 0.4])
def test_backward_matches_numerical_gradient(activation, p_drop):
    x, y = make_xor(12, seed=3)
    params = init_params([5, 4], 2, activation=activation, rng=np.random.default_rng(1))
    params = [(w, b + 0.1) for w, b in params]  # non-zero biases

    def loss_of(_: np.ndarray) -> float:  # arr is perturbed in place; re-seeded rng: the same mask every call
        scores, _ = forward(params, x, activation=activation, p_drop=p_drop, train=True, rng=np.random.default_rng(7))
        return float(softmax_cross_entropy(scores, y)[0])

    scores, caches = forward(params, x, activation=activation, p_drop=p_drop, train=True, rng=np.random.default_rng(7))
    grads = backward(softmax_cross_entropy(scores, y)[1], caches, activation=activation)
    for layer, ((w, b), (dw, db)) in enumerate(zip(params, grads)):
        for name, arr, grad in (("w", w, dw), ("b", b, db)):
            num = numerical_gradient(loss_of, arr)
            assert rel_error(grad, num) < GRADCHECK_RTOL, f"layer {layer} d{name}"


def test_backward_matches_torch_autograd_with_the_same_dropout_mask():
    torch = pytest.importorskip("torch")
    x, y = make_xor(16, seed=5)
    params = init_params([6, 5], 2, activation="tanh", rng=np.random.default_rng(2))
    scores, caches = forward(params, x, activation="tanh", p_drop=0.3, train=True, rng=np.random.default_rng(9))
    grads = backward(softmax_cross_entropy(scores, y)[1], caches, activation="tanh")

    tparams = [(torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) for w, b in params]
    a = torch.tensor(x)
    for layer, (w, b) in enumerate(tparams):
        z = a @ w + b
        if layer < len(tparams) - 1:
            a = torch.tanh(z) * torch.tensor(caches[layer].dropout.mask)  # the mask np_ref drew
        else:
            a = z
    torch.nn.functional.cross_entropy(a, torch.tensor(y)).backward()
    np.testing.assert_allclose(scores, a.detach().numpy(), rtol=F64_RTOL, atol=F64_ATOL)
    for (dw, db), (w, b) in zip(grads, tparams):
        np.testing.assert_allclose(dw, w.grad.numpy(), rtol=F64_RTOL, atol=F64_ATOL)
        np.testing.assert_allclose(db, b.grad.numpy(), rtol=F64_RTOL, atol=F64_ATOL)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"dataset": "moons"}, "'dataset'"), ({"hidden_layers": 9}, "'hidden_layers'"), ({"units": 0}, "'units'"),
     ({"activation": "gelu"}, "'activation'"), ({"lr": 5.0}, "'lr'"), ({"l2": 0.5}, "'l2'"), ({"p_drop": 0.9}, "'p_drop'")],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        playground(**kwargs)
