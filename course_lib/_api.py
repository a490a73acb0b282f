"""The public API shared by ``np_ref`` and ``torch_ref``: module -> function names.

Both back-ends expose exactly these names with the same signatures; the package
``__init__`` files re-export them lazily from this table, and a test checks that
every name exists in both back-ends.
"""

from __future__ import annotations

import importlib
from typing import Any

API: dict[str, tuple[str, ...]] = {
    "activations": (
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "swish",
        "softmax",
        "log_softmax",
        "sigmoid_grad",
        "tanh_grad",
        "relu_grad",
        "leaky_relu_grad",
        "swish_grad",
        "maxout",
    ),
    "losses": (
        "mse_loss",
        "mae_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "softmax_cross_entropy",
        "hinge_loss",
    ),
    "perceptron": ("neuron_forward", "perceptron_predict", "perceptron_train"),
    "dense": ("dense_forward", "dense_backward"),
    "mlp": ("init_mlp", "mlp_forward", "mlp_backward"),
    "optim": (
        "sgd_step",
        "momentum_step",
        "adagrad_step",
        "rmsprop_step",
        "adadelta_step",
        "adam_step",
        "gradient_descent",
        "iterate_minibatches",
    ),
    "regularization": (
        "l2_penalty",
        "l1_penalty",
        "dropout_forward",
        "dropout_backward",
        "batchnorm_forward",
        "batchnorm_backward",
        "EarlyStopping",
    ),
    "conv": (
        "conv2d_forward",
        "conv2d_backward",
        "conv2d_forward_naive",
        "max_pool2d_forward",
        "max_pool2d_backward",
        "avg_pool2d_forward",
        "avg_pool2d_backward",
        "conv_output_size",
    ),
    "recurrent": (
        "rnn_step_forward",
        "rnn_step_backward",
        "rnn_forward",
        "rnn_backward",
        "lstm_step_forward",
        "lstm_step_backward",
        "lstm_forward",
        "lstm_backward",
        "clip_grad_norm",
    ),
}

NAME_TO_MODULE: dict[str, str] = {name: module for module, names in API.items() for name in names}

# np_ref's package-level names that come from a speed-tuned module instead of the topic
# module: ``np_ref/<topic>.py`` stays the plain reference a student reads, and
# ``np_ref/fast_<topic>.py`` computes the same numbers faster (tested equal to it).
NP_FAST: dict[str, str] = {
    "conv2d_forward": "fast_conv",
    "conv2d_backward": "fast_conv",
    "rnn_forward": "fast_recurrent",
    "rnn_backward": "fast_recurrent",
    "lstm_forward": "fast_recurrent",
    "lstm_backward": "fast_recurrent",
}


def lazy_export(package: str, name: str, fast: dict[str, str] | None = None) -> Any:
    """Resolve ``package.<name>`` from the topic module that defines it, or from the
    module ``fast`` names for it."""
    if name in API:
        return importlib.import_module(f"{package}.{name}")
    module = (fast or {}).get(name) or NAME_TO_MODULE.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{package}.{module}"), name)
