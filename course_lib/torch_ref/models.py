"""Ready-made ``nn.Module``s and a small training loop for the notebooks' "now in PyTorch" parts.

Unlike the rest of ``course_lib.torch_ref``, this module uses autograd and ``torch.nn``
on purpose: it is what the course's hand-written layers grow into.

- ``MLP(sizes, activation=...)``: dense layers for flattened inputs.
- ``LeNet()``: a LeNet-5-shaped CNN sized for the 8x8 digits of ``course_lib.data.load_digits``.
- ``SequenceRNN``: an RNN/LSTM/GRU with a linear head on every step (next-value prediction).
- ``CharLSTM``: embedding -> LSTM -> logits over the vocabulary (character-level modelling),
  with ``sample_chars`` to generate text from it.
- ``train(model, data, ...)`` -> ``History``; ``evaluate(model, x, y, ...)`` -> (loss, accuracy).

Letters: N batch, D features, C channels, H/W image height/width, T time steps,
V vocabulary size, K classes.

Models start from torch's global random state: call ``torch.manual_seed(s)`` before
building one to get the same initial weights every time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.validation import require_positive_int

__all__ = [
    "MLP",
    "LeNet",
    "SequenceRNN",
    "CharLSTM",
    "History",
    "train",
    "evaluate",
    "sample_chars",
]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,  # = swish with beta 1
}


def _activation(fn: str, name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"{fn}: argument 'activation' must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


class MLP(nn.Module):
    """Fully connected layers: sizes = [D, H1, ..., K]; activation between layers, none after the last.

    forward: x (N, ...) -> scores (N, K). Inputs are flattened first, so (N, 1, 8, 8)
    digits work as they are. ``dropout`` (a drop probability) follows each hidden activation.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", *, dropout: float = 0.0) -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(
                f"MLP: argument 'sizes' must list at least input and output sizes, got {list(sizes)}"
            )
        for s in sizes:
            require_positive_int("MLP", "sizes", s)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: argument 'dropout' must be in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(d_in, d_out))
            if i < len(sizes) - 2:
                layers.append(_activation("MLP", activation))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class LeNet(nn.Module):
    """A LeNet-5-shaped CNN for small square images: x (N, C, S, S) -> scores (N, K).

    For the 8x8 digits (S = 8):

        conv 5x5, 6 filters, pad 2   (N, 1, 8, 8) -> (N, 6, 8, 8)    "same" size, as LeNet's
        ReLU, max-pool 2x2                        -> (N, 6, 4, 4)    first layer on padded input
        conv 3x3, 16 filters, pad 1               -> (N, 16, 4, 4)   3x3 not 5x5: a 4x4 map has
        ReLU, max-pool 2x2                        -> (N, 16, 2, 2)   no room for a 5x5 window
        flatten                                   -> (N, 64)
        dense 120, ReLU; dense 84, ReLU; dense K  -> (N, K)          LeNet-5's classifier widths

    ``image_size`` S must be divisible by 4 (two 2x2 poolings). About 20k parameters:
    trains to over 95% accuracy on the digits in a few seconds on a CPU.
    """

    def __init__(self, num_classes: int = 10, *, in_channels: int = 1, image_size: int = 8) -> None:
        super().__init__()
        require_positive_int("LeNet", "num_classes", num_classes)
        require_positive_int("LeNet", "in_channels", in_channels)
        require_positive_int("LeNet", "image_size", image_size)
        if image_size % 4:
            raise ValueError(f"LeNet: argument 'image_size' must be divisible by 4, got {image_size}")
        side = image_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


_CELLS: dict[str, type[nn.RNN] | type[nn.LSTM] | type[nn.GRU]] = {
    "rnn": nn.RNN,
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}


def _recurrent(fn: str, cell: str, input_size: int, hidden_size: int, num_layers: int) -> nn.RNNBase:
    if cell not in _CELLS:
        raise ValueError(f"{fn}: argument 'cell' must be one of {sorted(_CELLS)}, got {cell!r}")
    require_positive_int(fn, "hidden_size", hidden_size)
    require_positive_int(fn, "num_layers", num_layers)
    return _CELLS[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True)


class SequenceRNN(nn.Module):
    """A recurrent layer with a linear head applied at every time step.

    forward(x (N, T, D), state=None) -> (y (N, T, M), state), like ``nn.RNN`` returns
    its outputs and final state; pass the state back in to continue a sequence. The
    state is h (layers, N, H), or the pair (h, c) for ``cell="lstm"``.
    """

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 32,
        output_size: int = 1,
        *,
        cell: str = "rnn",
        num_layers: int = 1,
    ) -> None:
        super().__init__()
        require_positive_int("SequenceRNN", "input_size", input_size)
        require_positive_int("SequenceRNN", "output_size", output_size)
        self.rnn = _recurrent("SequenceRNN", cell, input_size, hidden_size, num_layers)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        h, state = self.rnn(x, state)
        return self.head(h), state


class CharLSTM(nn.Module):
    """Character-level language model: ids (N, T) int64 -> (logits (N, T, V), state).

    An embedding of size ``embed_dim``, a recurrent layer (LSTM by default) and a linear
    map back to the V characters. Logits at step t score the character at step t + 1.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        embed_dim: int = 32,
        hidden_size: int = 128,
        num_layers: int = 1,
        cell: str = "lstm",
    ) -> None:
        super().__init__()
        require_positive_int("CharLSTM", "vocab_size", vocab_size)
        require_positive_int("CharLSTM", "embed_dim", embed_dim)
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = _recurrent("CharLSTM", cell, embed_dim, hidden_size, num_layers)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        h, state = self.rnn(self.embed(ids), state)
        return self.head(h), state


@dataclass
class History:
    """Per-epoch record of ``train``. Accuracies are filled only for ``loss="cross_entropy"``;
    validation lists stay empty without validation data."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"


_LOSSES = ("cross_entropy", "mse")
_OPTIMIZERS = ("sgd", "momentum", "adam")


def _float_dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _as_tensor(a: Any, device: torch.device, dtype: torch.dtype, *, labels: bool) -> torch.Tensor:
    """Class labels -> int64; integer inputs (token ids for an embedding) stay int64; floats -> ``dtype``."""
    t = torch.as_tensor(a)
    if labels or not t.is_floating_point():
        return t.to(device=device, dtype=torch.long)
    return t.to(device=device, dtype=dtype)


def _outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    # Sequence models return (outputs, state), like nn.RNN.
    return out[0] if isinstance(out, tuple) else out


def _loss_and_correct(
    fn: str, arg: str, out: torch.Tensor, y: torch.Tensor, loss: str
) -> tuple[torch.Tensor, int | None]:
    """Mean loss over the batch (and over time steps for sequences) and the count of correct argmaxes."""
    # Checked rather than broadcast: an (N,) target against an (N, 1) output would
    # silently average an (N, N) matrix of differences.
    want = tuple(out.shape) if loss == "mse" else tuple(out.shape[:-1])
    if tuple(y.shape) != want:
        raise ValueError(
            f"{fn}: targets y must have shape {want} for model outputs of shape {tuple(out.shape)} "
            f"with loss={loss!r}, got {tuple(y.shape)} (argument {arg!r})"
        )
    if loss == "mse":
        return F.mse_loss(out, y), None
    scores = out.reshape(-1, out.shape[-1])  # (N, K) or (N*T, V) for sequences
    targets = y.reshape(-1)
    correct = int((scores.argmax(dim=1) == targets).sum())
    return F.cross_entropy(scores, targets), correct


def _unpack(data: Any) -> tuple[Any, ...]:
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 4):
        raise ValueError(
            "train: argument 'data' must be (x_train, y_train) or (x_train, y_train, x_val, y_val), "
            f"got {type(data).__name__} of length {len(data) if hasattr(data, '__len__') else '?'}"
        )
    for i in range(0, len(data), 2):
        if len(data[i]) != len(data[i + 1]):
            raise ValueError(
                f"train: argument 'data' pairs x and y of different lengths: {len(data[i])} and {len(data[i + 1])}"
            )
    return tuple(data)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: Any,
    y: Any,
    *,
    loss: str = "cross_entropy",
    batch_size: int = 1024,
    device: torch.device | str | None = None,
) -> tuple[float, float | None]:
    """Mean loss and accuracy (None for ``loss="mse"``) of ``model`` on (x, y), in eval mode.

    The model's train/eval mode is restored afterwards. ``device`` defaults to the
    device of the model's parameters.
    """
    if loss not in _LOSSES:
        raise ValueError(f"evaluate: argument 'loss' must be one of {_LOSSES}, got {loss!r}")
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    was_training = model.training
    model.eval()
    dtype = _float_dtype(model)
    x_t = _as_tensor(x, device, dtype, labels=False)
    y_t = _as_tensor(y, device, dtype, labels=loss != "mse")
    if loss == "mse":
        y_t = y_t.to(dtype)
    total, correct, count, steps = 0.0, 0, 0, 0
    for start in range(0, len(x_t), batch_size):
        xb, yb = x_t[start : start + batch_size], y_t[start : start + batch_size]
        value, ok = _loss_and_correct("evaluate", "y", _outputs(model, xb), yb, loss)
        total += float(value) * len(xb)
        count += len(xb)
        if ok is not None:
            correct += ok
            steps += yb.numel()
    model.train(was_training)
    return total / count, (correct / steps if loss != "mse" else None)


def train(
    model: nn.Module,
    data: Sequence[Any],
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    device: torch.device | str | None = None,
    progress: bool = True,
    loss: str = "cross_entropy",
    batch_size: int = 64,
    seed: int = 0,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    clip_grad_norm: float | None = None,
) -> History:
    """Train ``model`` with mini-batches and return its per-epoch ``History``.

    ``data`` is (x_train, y_train) or (x_train, y_train, x_val, y_val): NumPy arrays or
    tensors. Floating x takes the model's dtype (float32 unless you called ``.double()``);
    integer x (e.g. character ids) stays int64;
    for ``loss="cross_entropy"`` y holds class ids, (N,) for scores (N, K) or (N, T) for
    sequence logits (N, T, V); for ``loss="mse"`` y has the model output's shape.

    ``optimizer`` is "adam" (torch defaults), "sgd" or "momentum" (SGD, momentum 0.9).
    ``clip_grad_norm`` rescales the gradients to at most that global norm (useful for RNNs).
    ``seed`` fixes the batch order and dropout masks, so the same initial weights and
    seed give the same history; torch's global random state is left as it was.
    ``device`` defaults to ``course_lib.device.get_device()``; the model is moved there.
    ``progress=False`` turns the tqdm bar off completely (nothing is printed).
    """
    from tqdm.auto import tqdm

    fn = "train"
    require_positive_int(fn, "epochs", epochs)
    require_positive_int(fn, "batch_size", batch_size)
    if loss not in _LOSSES:
        raise ValueError(f"{fn}: argument 'loss' must be one of {_LOSSES}, got {loss!r}")
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"{fn}: argument 'optimizer' must be one of {_OPTIMIZERS}, got {optimizer!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"{fn}: argument 'lr' must be a positive number, got {lr!r}")
    parts = _unpack(data)
    if device is None:
        from course_lib.device import get_device

        device = get_device()
    device = torch.device(device)
    model.to(device)
    dtype = _float_dtype(model)
    tensors = [
        _as_tensor(a, device, dtype, labels=(i % 2 == 1 and loss != "mse")) for i, a in enumerate(parts)
    ]
    if loss == "mse":
        tensors[1::2] = [t.to(dtype) for t in tensors[1::2]]
    x_train, y_train = tensors[0], tensors[1]
    has_val = len(tensors) == 4

    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        momentum = 0.9 if optimizer == "momentum" else 0.0
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    history = History(device=str(device))
    order_gen = torch.Generator().manual_seed(seed)  # on the CPU: the same order on every device
    n = len(x_train)
    start_time = time.perf_counter()
    # fork_rng restores torch's global state on exit: seeding dropout here must not
    # change what the student's next torch.randn returns. Only the generators that
    # are forked get seeded.
    fork_devices = [device] if device.type == "cuda" else []
    with (
        torch.random.fork_rng(devices=fork_devices),
        tqdm(range(epochs), desc="training", unit="epoch", disable=not progress, leave=True) as bar,
    ):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        for _ in bar:
            model.train()
            total, correct, steps = 0.0, 0, 0
            order = torch.randperm(n, generator=order_gen).to(device)
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                xb, yb = x_train[idx], y_train[idx]
                value, ok = _loss_and_correct(fn, "data", _outputs(model, xb), yb, loss)
                opt.zero_grad(set_to_none=True)
                value.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(params, clip_grad_norm)
                opt.step()
                total += float(value.detach()) * len(idx)
                if ok is not None:
                    correct += ok
                    steps += yb.numel()
            history.train_loss.append(total / n)
            if loss != "mse":
                history.train_accuracy.append(correct / steps)
            postfix = {"loss": f"{total / n:.4f}"}
            if has_val:
                val_loss, val_acc = evaluate(model, tensors[2], tensors[3], loss=loss, device=device)
                history.val_loss.append(val_loss)
                postfix["val_loss"] = f"{val_loss:.4f}"
                if val_acc is not None:
                    history.val_accuracy.append(val_acc)
                    postfix["val_acc"] = f"{val_acc:.3f}"
            bar.set_postfix(postfix)
    model.eval()
    history.seconds = time.perf_counter() - start_time
    return history


@torch.no_grad()
def sample_chars(
    model: nn.Module,
    prompt: str,
    stoi: dict[str, int],
    itos: Sequence[str],
    *,
    length: int = 200,
    temperature: float = 1.0,
    seed: int = 0,
) -> str:
    """Continue ``prompt`` by ``length`` characters sampled from a ``CharLSTM``-style model.

    The model reads the prompt, then feeds back each sampled character. Scores are
    divided by ``temperature`` before the softmax: below 1 the text gets safer and more
    repetitive, above 1 more surprising. Returns the prompt followed by the new text.
    """
    fn = "sample_chars"
    require_positive_int(fn, "length", length)
    if not prompt:
        raise ValueError(f"{fn}: argument 'prompt' must be a non-empty string")
    if not temperature > 0:
        raise ValueError(f"{fn}: argument 'temperature' must be > 0, got {temperature!r}")
    missing = sorted(set(prompt) - set(stoi))
    if missing:
        raise ValueError(f"{fn}: argument 'prompt' has characters not in 'stoi': {missing}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)  # CPU sampling: the same text on every device
    ids = torch.tensor([[stoi[ch] for ch in prompt]], device=device)
    logits, state = model(ids)
    out: list[str] = []
    for _ in range(length):
        probs = torch.softmax(logits[0, -1].double().cpu() / temperature, dim=0)
        nxt = int(torch.multinomial(probs, 1, generator=gen))
        out.append(itos[nxt])
        logits, state = model(torch.tensor([[nxt]], device=device), state)
    model.train(was_training)
    return prompt + "".join(out)
