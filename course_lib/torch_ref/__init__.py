"""The Torch path: the same API as ``course_lib.np_ref``, in torch ops, on any device.

Backward passes are written out explicitly in torch operations (not autograd), so the
Torch path mirrors the plain NumPy references (``np_ref/<topic>.py``, not the speed-tuned
``np_ref/fast_*.py``) and ``torch.autograd`` stays an
independent oracle in the tests. Tensors stay on the device they arrive on; pick one
with ``course_lib.device.get_device()``. Randomness arrives as ``rng: torch.Generator``
on the same device as the data.

Models (``nn.Module``s) and ``train`` live in ``course_lib.torch_ref.models``.

Conventions (shared with ``course_lib.np_ref``):

- ``<op>_forward(inputs, *, hyper) -> (out, cache)``; ``<op>_backward(dout, cache)``
  returns gradients in forward-argument order. Caches are small NamedTuples.
- Letters: N batch, D input features, M output features, H hidden units (or image
  height in ``conv``), C channels, F filters, KH/KW kernel size, T time steps, K classes.
- Layouts follow torch: images (N, C, H, W), conv weights (F, C, KH, KW), sequences
  (N, T, D), dense ``out = x @ w + b`` with ``w`` (D, M).
- Hyperparameters are keyword-only; randomness arrives as ``rng: torch.Generator``.
- Tensors the library creates are float32 by default (torch's default dtype) unless an
  input fixes the dtype; a float64 input gives float64 outputs.

Names are re-exported lazily from the topic modules (see ``course_lib._api``), so
``from course_lib.torch_ref import conv2d_forward`` works and importing stays fast.
"""

from __future__ import annotations

from typing import Any

from course_lib._api import API, NAME_TO_MODULE, lazy_export

__all__ = sorted([*API, *NAME_TO_MODULE, "models"])


def __getattr__(name: str) -> Any:
    if name == "models":
        import importlib

        return importlib.import_module(f"{__name__}.models")
    value = lazy_export(__name__, name)
    globals()[name] = value  # cache: the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return __all__
