"""Argument checks shared by ``np_ref`` and ``torch_ref``.

Every check raises ``ValueError`` naming the function, the argument and what was
expected versus what arrived, e.g.::

    conv2d_forward: argument 'w' must have shape (F, C=3, KH, KW), got (8, 1, 5, 5)

They accept NumPy arrays and torch tensors alike (duck-typed on ``.shape``/``.dtype``)
so that this module never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "require_float",
    "scalar_as_float_array",
    "require_ndim",
    "require_shape",
    "require_same_shape",
    "require_positive_int",
    "require_nonnegative_int",
    "require_probability",
    "require_labels",
]

# A shape pattern entry is an int (must match), None (any size) or a (name, size)
# pair used only to make the message readable: ("C", 3).
ShapeEntry = int | None | tuple[str, int | None]


def _is_floating(x: Any) -> bool:
    if hasattr(x, "is_floating_point"):  # torch.Tensor
        return bool(x.is_floating_point())
    return np.issubdtype(np.asarray(x).dtype, np.floating)


def require_float(fn: str, name: str, x: Any) -> None:
    """Reject integer/bool arrays where floats are needed (silent truncation is a classic bug)."""
    if not hasattr(x, "shape"):
        raise ValueError(f"{fn}: argument {name!r} must be an array, got {type(x).__name__}")
    if not _is_floating(x):
        raise ValueError(
            f"{fn}: argument {name!r} must be a floating-point array, got dtype {x.dtype}"
        )


def scalar_as_float_array(fn: str, name: str, x: Any) -> np.ndarray | None:
    """A scalar input of an element-wise function as a 0-d floating array; None if ``x`` is no scalar.

    Scalars are Python ints and floats, NumPy scalars and 0-d NumPy arrays: element-wise
    functions take them as NumPy's ufuncs do (``np.tanh(0.5)``). Integers become float64,
    as in NumPy; a floating scalar keeps its dtype. Booleans are rejected (True is almost
    always a comparison that lost its values). Tensors and arrays of 1 or more dimensions
    return None: the caller checks those itself.
    """
    if isinstance(x, (bool, np.bool_)) or (isinstance(x, np.ndarray) and x.dtype == np.bool_):
        raise ValueError(f"{fn}: argument {name!r} must be a number or a floating-point array, got a bool")
    if isinstance(x, (int, float, np.integer, np.floating)):
        arr = np.asarray(x)
    elif isinstance(x, np.ndarray) and x.ndim == 0:
        arr = x
    else:
        return None
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float64)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{fn}: argument {name!r} must be a real number, got dtype {arr.dtype}")
    return arr


def require_ndim(fn: str, name: str, x: Any, ndim: int, layout: str = "") -> None:
    if not hasattr(x, "shape"):
        raise ValueError(f"{fn}: argument {name!r} must be an array, got {type(x).__name__}")
    if len(x.shape) != ndim:
        want = f" {layout}" if layout else ""
        raise ValueError(
            f"{fn}: argument {name!r} must be {ndim}-D{want}, got shape {tuple(x.shape)}"
        )


def _format_pattern(pattern: Sequence[ShapeEntry]) -> str:
    parts = []
    for entry in pattern:
        if isinstance(entry, tuple):
            label, size = entry
            parts.append(label if size is None else f"{label}={size}")
        else:
            parts.append("*" if entry is None else str(entry))
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def require_shape(fn: str, name: str, x: Any, pattern: Sequence[ShapeEntry]) -> None:
    """Check ``x.shape`` against ``pattern`` (ints must match, None matches anything).

    No broadcasting is ever assumed: (N,) does not match (N, 1).
    """
    if not hasattr(x, "shape"):
        raise ValueError(f"{fn}: argument {name!r} must be an array, got {type(x).__name__}")
    shape = tuple(x.shape)
    ok = len(shape) == len(pattern)
    if ok:
        for actual, entry in zip(shape, pattern):
            size = entry[1] if isinstance(entry, tuple) else entry
            if size is not None and actual != size:
                ok = False
                break
    if not ok:
        raise ValueError(
            f"{fn}: argument {name!r} must have shape {_format_pattern(pattern)}, got {shape}"
        )


def require_same_shape(fn: str, name_a: str, a: Any, name_b: str, b: Any) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{fn}: arguments {name_a!r} and {name_b!r} must have the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)} (no broadcasting is done)"
        )


def require_positive_int(fn: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{fn}: argument {name!r} must be a positive integer, got {value!r}")


def require_nonnegative_int(fn: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(
            f"{fn}: argument {name!r} must be a non-negative integer, got {value!r}"
        )


def require_probability(fn: str, name: str, p: Any) -> None:
    """p in [0, 1): a drop probability of 1 would divide by zero in inverted dropout."""
    if not isinstance(p, (int, float, np.floating)) or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{fn}: argument {name!r} must be in [0, 1), got {p!r}")


def require_labels(fn: str, name: str, labels: Any, num_classes: int, n: int | None = None) -> None:
    """Integer class labels of shape (N,) with values in [0, num_classes)."""
    if not hasattr(labels, "shape"):
        raise ValueError(f"{fn}: argument {name!r} must be an array, got {type(labels).__name__}")
    if _is_floating(labels) or str(labels.dtype).startswith(("bool", "torch.bool")):
        raise ValueError(
            f"{fn}: argument {name!r} must hold integer class labels, got dtype {labels.dtype}"
        )
    if n is not None:
        require_shape(fn, name, labels, [("N", n)])
    if labels.shape[0]:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"{fn}: argument {name!r} must be in [0, {num_classes}), "
                f"got values from {lo} to {hi}"
            )
