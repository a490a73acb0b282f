"""The NumPy reference implementation: every layer with an explicit forward and backward.

Conventions (shared with ``course_lib.torch_ref``):

- ``<op>_forward(inputs, *, hyper) -> (out, cache)``; ``<op>_backward(dout, cache)``
  returns gradients in forward-argument order. Caches are small NamedTuples.
- Letters: N batch, D input features, M output features, H hidden units (or image
  height in ``conv``), C channels, F filters, KH/KW kernel size, T time steps, K classes.
- Layouts follow torch: images (N, C, H, W), conv weights (F, C, KH, KW), sequences
  (N, T, D), dense ``out = x @ w + b`` with ``w`` (D, M).
- Hyperparameters are keyword-only; randomness arrives as ``rng: np.random.Generator``.
- Arrays the library creates are float64; a float32 input gives float32 outputs.

Names are re-exported lazily from the topic modules (see ``course_lib._api``), so
``from course_lib.np_ref import conv2d_forward`` works and importing stays fast.

Plain first, fast beside it: ``conv.py`` and ``recurrent.py`` are the references to read.
The package-level ``conv2d_forward``/``conv2d_backward`` come from ``fast_conv.py`` and the
sequence functions ``rnn_forward``/``rnn_backward``/``lstm_forward``/``lstm_backward`` from
``fast_recurrent.py`` (``_api.NP_FAST``): the same numbers, computed faster. A cache goes
back to the backward of the module whose forward made it.
"""

from __future__ import annotations

from typing import Any

from course_lib._api import API, NAME_TO_MODULE, NP_FAST, lazy_export

__all__ = sorted([*API, *NAME_TO_MODULE])


def __getattr__(name: str) -> Any:
    value = lazy_export(__name__, name, NP_FAST)
    globals()[name] = value  # cache: the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return __all__
