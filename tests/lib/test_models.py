"""course_lib.torch_ref.models: shapes, learning on the course's data, determinism, devices, progress output."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from course_lib import data  # noqa: E402
from course_lib.device import get_device  # noqa: E402
from course_lib.torch_ref.models import (  # noqa: E402
    MLP,
    CharLSTM,
    History,
    LeNet,
    SequenceRNN,
    evaluate,
    sample_chars,
    train,
)


@pytest.fixture(autouse=True)
def one_thread():
    # These models are tiny: on 2 shared cores, intra-op threads only add contention
    # (measured 10-40x slower under load), so run single-threaded and restore afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    return data.load_digits(seed=0)


def _lenet(seed: int = 0) -> LeNet:
    torch.manual_seed(seed)
    return LeNet()


def test_lenet_shapes_follow_the_documented_table():
    model = _lenet()
    x = torch.zeros(5, 1, 8, 8)
    assert model.features[:3](x).shape == (5, 6, 4, 4)
    assert model.features(x).shape == (5, 16, 2, 2)
    assert model(x).shape == (5, 10)
    assert LeNet(3, in_channels=3, image_size=16)(torch.zeros(2, 3, 16, 16)).shape == (2, 3)


def test_lenet_learns_the_digits(digits):
    model = _lenet()
    history = train(model, (digits.x_train, digits.y_train, digits.x_val, digits.y_val),
                    epochs=15, lr=3e-3, batch_size=32, progress=False, device="cpu")
    assert history.val_accuracy[-1] > 0.9, history.val_accuracy
    assert history.train_loss[-1] < 0.25 * history.train_loss[0]
    # evaluate() agrees with an accuracy computed here from the raw scores.
    test_loss, test_acc = evaluate(model, digits.x_test, digits.y_test)
    with torch.no_grad():
        pred = model(torch.as_tensor(digits.x_test, dtype=torch.float32)).argmax(1).numpy()
    assert test_acc == pytest.approx((pred == digits.y_test).mean())
    assert test_acc > 0.9 and test_loss < 0.5


def test_history_has_one_entry_per_epoch_and_nothing_for_missing_validation():
    x, y = data.make_blobs(64, centers=3, seed=1)
    torch.manual_seed(0)
    history = train(MLP([2, 8, 3]), (x, y), epochs=3, lr=1e-2, progress=False, device="cpu")
    assert isinstance(history, History)
    assert len(history.train_loss) == len(history.train_accuracy) == 3
    assert history.val_loss == [] and history.val_accuracy == []
    assert all(0.0 <= a <= 1.0 for a in history.train_accuracy)


def test_one_full_batch_sgd_epoch_is_one_gradient_step():
    x, y = data.make_blobs(30, centers=3, seed=2)
    torch.manual_seed(0)
    model = MLP([2, 5, 3]).double()
    oracle = copy.deepcopy(model)
    history = train(model, (x, y), epochs=1, lr=0.1, batch_size=len(x), optimizer="sgd",
                    progress=False, device="cpu")
    # Oracle: the mean cross-entropy of the untouched copy, differentiated by autograd.
    loss = torch.nn.functional.cross_entropy(oracle(torch.as_tensor(x)), torch.as_tensor(y))
    loss.backward()
    assert history.train_loss[0] == pytest.approx(loss.item(), rel=1e-12)
    for p, q in zip(model.parameters(), oracle.parameters()):
        assert p.dtype == torch.float64
        torch.testing.assert_close(p.detach(), q.detach() - 0.1 * q.grad, rtol=1e-12, atol=1e-14)


def test_clip_grad_norm_bounds_each_step():
    x, _ = data.make_blobs(20, centers=2, seed=0)
    targets = np.full((20, 1), 1000.0)  # far from any initial output: a huge MSE gradient
    torch.manual_seed(0)
    model = MLP([2, 1]).double()
    before = [p.detach().clone() for p in model.parameters()]
    train(model, (x, targets), epochs=1, lr=1.0, batch_size=20, optimizer="sgd", loss="mse",
          clip_grad_norm=0.5, progress=False, device="cpu")
    step = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    # One SGD step of lr 1 moves the parameters by exactly the clipped gradient norm.
    assert float(step) == pytest.approx(0.5, rel=1e-6)


def test_training_is_deterministic_for_a_seed_and_leaves_global_rng_alone(digits):
    subset = (digits.x_train[:300], digits.y_train[:300], digits.x_val, digits.y_val)
    state = torch.get_rng_state()
    runs = [train(_lenet(0), subset, epochs=2, seed=s, progress=False, device="cpu") for s in (3, 3, 4)]
    assert runs[0].train_loss == runs[1].train_loss and runs[0].val_loss == runs[1].val_loss
    assert runs[0].train_loss != runs[2].train_loss
    # _lenet() reseeded the global generator; check train() itself restores it.
    model = MLP([64, 10], dropout=0.5)
    before = torch.get_rng_state()
    train(model, subset, epochs=1, seed=9, progress=False, device="cpu")
    assert torch.equal(torch.get_rng_state(), before)
    torch.set_rng_state(state)


def test_dropout_masks_are_seeded_too():
    x, y = data.make_blobs(80, centers=2, seed=0)

    def run() -> list[float]:
        torch.manual_seed(0)
        model = MLP([2, 16, 2], dropout=0.5)
        return train(model, (x, y), epochs=2, seed=1, progress=False, device="cpu").train_loss

    assert run() == run()


def test_train_uses_get_device_by_default():
    x, y = data.make_xor(40)
    torch.manual_seed(0)
    model = MLP([2, 8, 2], activation="tanh")
    history = train(model, (x, y), epochs=1, progress=False)
    assert history.device == str(get_device())
    assert next(model.parameters()).device.type == get_device().type


def test_mlp_matches_a_hand_written_forward():
    torch.manual_seed(0)
    model = MLP([4, 5, 3], activation="tanh")
    x = np.random.default_rng(0).normal(size=(6, 2, 2))
    (w1, b1), (w2, b2) = [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
                          for m in model.net if isinstance(m, torch.nn.Linear)]
    flat = x.reshape(6, 4)
    expected = np.tanh(flat @ w1.T + b1) @ w2.T + b2  # nn.Linear stores w as (out, in)
    got = model(torch.as_tensor(x, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert len(list(MLP([4, 5, 6, 3]).net)) == 5  # linear, act, linear, act, linear


def test_mlp_on_xor_needs_its_hidden_layer():
    x, y = data.make_xor(400, noise=0.25, seed=0)
    split = (x[:300], y[:300], x[300:], y[300:])
    torch.manual_seed(0)
    linear = train(MLP([2, 2]), split, epochs=40, lr=0.05, progress=False, device="cpu")
    torch.manual_seed(0)
    hidden = train(MLP([2, 16, 2]), split, epochs=40, lr=0.05, progress=False, device="cpu")
    # The best a line can do is cut off one corner cluster: 3 of 4 clusters right.
    assert linear.val_accuracy[-1] < 0.8 < 0.95 < hidden.val_accuracy[-1]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sequence_rnn_shapes_and_state_carry_over(cell):
    torch.manual_seed(0)
    model = SequenceRNN(2, 8, 3, cell=cell)
    x = torch.randn(4, 10, 2)
    out, _ = model(x)
    assert out.shape == (4, 10, 3)
    # Running the two halves with the state carried over equals one run over the whole.
    first, state = model(x[:, :6])
    second, _ = model(x[:, 6:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), out)


def test_sequence_rnn_beats_the_persistence_baseline_on_sine_waves():
    x, y = data.sine_waves(240, steps=30, noise=0.05, seed=0)
    torch.manual_seed(0)
    model = SequenceRNN(1, 32, 1, cell="lstm")
    history = train(model, (x[:200], y[:200], x[200:], y[200:]), epochs=20, lr=1e-2,
                    loss="mse", batch_size=32, progress=False, device="cpu")
    assert history.train_accuracy == [] and len(history.val_loss) == 20
    # Predicting "same as now" is the baseline a sequence model has to beat.
    persistence = float(((x[200:] - y[200:]) ** 2).mean())
    assert history.val_loss[-1] < 0.5 * persistence, (history.val_loss[-1], persistence)


def test_char_lstm_learns_text_and_samples_from_its_vocabulary():
    text = data.load_text()[:3000]
    stoi, itos = data.char_vocab(text)
    ids = data.encode(text, stoi)
    steps = 32
    starts = np.arange(0, len(ids) - steps - 1, 16)
    x = np.stack([ids[s : s + steps] for s in starts])
    y = np.stack([ids[s + 1 : s + steps + 1] for s in starts])
    torch.manual_seed(0)
    model = CharLSTM(len(itos), embed_dim=16, hidden_size=64)
    logits, (h, c) = model(torch.as_tensor(x[:3]))
    assert logits.shape == (3, steps, len(itos)) and h.shape == c.shape == (1, 3, 64)
    history = train(model, (x, y), epochs=8, lr=1e-2, batch_size=32, progress=False, device="cpu")
    # Uniform guessing costs log(V) nats per character; a trained model must do much better.
    assert history.train_loss[-1] < 0.7 * math.log(len(itos)), history.train_loss
    sample = sample_chars(model, "The ", stoi, itos, length=60, seed=1)
    assert sample.startswith("The ") and len(sample) == 64 and set(sample) <= set(itos)
    assert sample == sample_chars(model, "The ", stoi, itos, length=60, seed=1)
    assert sample != sample_chars(model, "The ", stoi, itos, length=60, seed=2)


def test_progress_false_prints_nothing_and_true_shows_a_bar(capfd):
    x, y = data.make_blobs(32, seed=0)
    torch.manual_seed(0)
    train(MLP([2, 2]), (x, y, x, y), epochs=2, progress=False, device="cpu")
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    train(MLP([2, 2]), (x, y), epochs=2, progress=True, device="cpu")
    assert "training" in capfd.readouterr().err


def test_evaluate_restores_training_mode():
    model = MLP([2, 3, 2], dropout=0.5)
    model.train()
    x, y = data.make_blobs(10, seed=0)
    evaluate(model, x, y)
    assert model.training


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: train(MLP([2, 2]), (np.zeros((3, 2)),), progress=False), "data"),
        (lambda: train(MLP([2, 2]), (np.zeros((3, 2)), np.zeros(4)), progress=False), "data"),
        (lambda: train(MLP([2, 2]), (np.zeros((3, 2)), np.zeros(3)), loss="hinge"), "loss"),
        (lambda: train(MLP([2, 2]), (np.zeros((3, 2)), np.zeros(3)), optimizer="lbfgs"), "optimizer"),
        (lambda: train(MLP([2, 2]), (np.zeros((3, 2)), np.zeros(3)), epochs=0), "epochs"),
        (lambda: train(MLP([2, 2]), (np.zeros((3, 2)), np.zeros(3)), lr=-1.0), "lr"),
        (lambda: train(MLP([2, 1]), (np.zeros((3, 2)), np.zeros(3)), loss="mse", progress=False), "data"),
        (lambda: train(MLP([2, 2]), (np.zeros((3, 2)), np.zeros((3, 1))), progress=False), "data"),
        (lambda: evaluate(MLP([2, 1]), np.zeros((3, 2)), np.zeros(3), loss="mse"), "y"),
        (lambda: MLP([2, 2, 2], activation="softplus"), "activation"),
        (lambda: MLP([2]), "sizes"),
        (lambda: LeNet(image_size=10), "image_size"),
        (lambda: SequenceRNN(cell="transformer"), "cell"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, argument):
    with pytest.raises(ValueError, match=f"'{argument}'"):
        call()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_training_on_cuda_matches_the_cpu(digits):  # pragma: no cover - needs a GPU
    subset = (digits.x_train[:200], digits.y_train[:200], digits.x_val, digits.y_val)
    cpu = train(_lenet(0), subset, epochs=2, progress=False, device="cpu")
    model = _lenet(0)
    gpu = train(model, subset, epochs=2, progress=False, device="cuda")
    assert next(model.parameters()).is_cuda and gpu.device.startswith("cuda")
    np.testing.assert_allclose(gpu.train_loss, cpu.train_loss, rtol=1e-3)
