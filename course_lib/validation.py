"""Argument checks shared by ``np_ref`` and ``torch_ref``.

Every check raises ``ValueError`` naming the function, the argument and what was
expected versus what arrived, e.g.::

    conv2d_forward: argument 'w' must have shape (F, C=3, KH, KW), got (8, 1, 5, 5)

They accept NumPy arrays and torch tensors alike (duck-typed on ``.shape``/``.dtype``)
so that this module never imports torch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
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
    "require_in_range",
    "require_bool",
    "require_kernel_fits",
    "check_conv",
    "check_pool",
    "check_recurrent",
    "require_cache",
    "check_step_args",
    "check_optimizer_state",
    "resolve_optimizer",
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
        raise ValueError(f"{fn}: argument {name!r} must be a floating-point array, got dtype {x.dtype}")


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
        raise ValueError(f"{fn}: argument {name!r} must be {ndim}-D{want}, got shape {tuple(x.shape)}")


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
        for actual, entry in zip(shape, pattern, strict=True):
            size = entry[1] if isinstance(entry, tuple) else entry
            if size is not None and actual != size:
                ok = False
                break
    if not ok:
        raise ValueError(f"{fn}: argument {name!r} must have shape {_format_pattern(pattern)}, got {shape}")


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
        raise ValueError(f"{fn}: argument {name!r} must be a non-negative integer, got {value!r}")


def require_probability(fn: str, name: str, p: Any) -> None:
    """p in [0, 1): a drop probability of 1 would divide by zero in inverted dropout."""
    if not isinstance(p, (int, float, np.floating)) or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{fn}: argument {name!r} must be in [0, 1), got {p!r}")


def require_labels(fn: str, name: str, labels: Any, num_classes: int, n: int | None = None) -> None:
    """Integer class labels of shape (N,) with values in [0, num_classes)."""
    if not hasattr(labels, "shape"):
        raise ValueError(f"{fn}: argument {name!r} must be an array, got {type(labels).__name__}")
    if _is_floating(labels) or str(labels.dtype).startswith(("bool", "torch.bool")):
        raise ValueError(f"{fn}: argument {name!r} must hold integer class labels, got dtype {labels.dtype}")
    if n is not None:
        require_shape(fn, name, labels, [("N", n)])
    if labels.shape[0]:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"{fn}: argument {name!r} must be in [0, {num_classes}), got values from {lo} to {hi}"
            )


def require_in_range(
    fn: str, name: str, value: Any, lo: float, hi: float = float("inf"), *, hi_open: bool = False
) -> None:
    """A real hyperparameter in [lo, hi] (or [lo, hi) with hi_open)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = lo <= v and (v < hi if hi_open else v <= hi)
    if not ok:
        interval = f"[{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{fn}: argument {name!r} must be a number in {interval}, got {value!r}")


def require_bool(fn: str, name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{fn}: argument {name!r} must be True or False, got {value!r}")


# --- convolution and pooling ------------------------------------------------------------


def require_kernel_fits(fn: str, name: str, size: int, kernel: int, pad: int) -> None:
    """The kernel must fit in the padded input along one axis; ``name`` is the caller's
    argument that carries the kernel size ('w' for conv2d, 'kernel' for pooling)."""
    if size + 2 * pad < kernel:
        raise ValueError(
            f"{fn}: argument {name!r} (kernel size {kernel}) does not fit in the padded input: "
            f"size + 2*pad = {size} + 2*{pad} = {size + 2 * pad} < {kernel}"
        )


def check_conv(fn: str, x: Any, w: Any, b: Any, stride: Any, pad: Any) -> None:
    """conv2d arguments: x (N, C, H, W), w (F, C, KH, KW), b (F,) floating, stride >= 1, pad >= 0,
    and a kernel that fits in the padded image."""
    for name, arr in (("x", x), ("w", w), ("b", b)):
        require_float(fn, name, arr)
    require_ndim(fn, "x", x, 4, "(N, C, H, W)")
    require_ndim(fn, "w", w, 4, "(F, C, KH, KW)")
    require_shape(fn, "w", w, [("F", None), ("C", x.shape[1]), ("KH", None), ("KW", None)])
    require_shape(fn, "b", b, [("F", w.shape[0])])
    require_positive_int(fn, "stride", stride)
    require_nonnegative_int(fn, "pad", pad)
    _, _, kh, kw = w.shape
    if kh == 0 or kw == 0:
        raise ValueError(f"{fn}: argument 'w' must have a positive kernel size, got shape {tuple(w.shape)}")
    require_kernel_fits(fn, "w", x.shape[2], kh, pad)
    require_kernel_fits(fn, "w", x.shape[3], kw, pad)


def check_pool(fn: str, x: Any, kernel: Any, stride: Any) -> None:
    """Pooling arguments: x (N, C, H, W) floating, kernel and stride >= 1, a window that fits (no padding)."""
    require_float(fn, "x", x)
    require_ndim(fn, "x", x, 4, "(N, C, H, W)")
    require_positive_int(fn, "kernel", kernel)
    require_positive_int(fn, "stride", stride)
    require_kernel_fits(fn, "kernel", x.shape[2], kernel, 0)
    require_kernel_fits(fn, "kernel", x.shape[3], kernel, 0)


# --- recurrent layers -------------------------------------------------------------------


def check_recurrent(
    fn: str,
    x: Any,
    h_prev: Any,
    wx: Any,
    wh: Any,
    b: Any,
    *,
    gates: int,
    h_name: str,
) -> None:
    """x (N, D) for a step or (N, T, D) for a sequence (``h_name == "h0"``), h_prev (N, H),
    wx (D, G*H), wh (H, G*H), b (G*H,) with G = ``gates`` (1 for the RNN, 4 for the LSTM).

    H is read off wh's rows, so a wrong wh is blamed on wh and not on everything else.
    """
    for name, arr in (("x", x), (h_name, h_prev), ("wx", wx), ("wh", wh), ("b", b)):
        require_float(fn, name, arr)
    g_label = "H" if gates == 1 else f"{gates}H"
    require_ndim(fn, "wh", wh, 2, f"(H, {g_label})")
    hidden = wh.shape[0]
    require_shape(fn, "wh", wh, [("H", hidden), (g_label, gates * hidden)])
    if h_name == "h0":
        require_ndim(fn, "x", x, 3, "(N, T, D)")
        if x.shape[1] == 0:
            raise ValueError(
                f"{fn}: argument 'x' must have at least one time step, got shape {tuple(x.shape)}"
            )
    else:
        require_ndim(fn, "x", x, 2, "(N, D)")
    n, d = x.shape[0], x.shape[-1]
    require_shape(fn, "wx", wx, [("D", d), (g_label, gates * hidden)])
    require_shape(fn, "b", b, [(g_label, gates * hidden)])
    require_shape(fn, h_name, h_prev, [("N", n), ("H", hidden)])


def require_cache(fn: str, cache: Any, kind: type, forward: str) -> None:
    """``cache`` must be the ``kind`` that ``forward`` (a dotted name) returns: two modules with
    the same layer (plain and speed-tuned) keep different caches."""
    if not isinstance(cache, kind):
        raise ValueError(
            f"{fn}: argument 'cache' must be the {kind.__name__} returned by {forward}, got "
            f"{type(cache).__name__} (a cache goes back to the backward of the module whose forward made it)"
        )


# --- optimizers ---------------------------------------------------------------------------


def check_step_args(fn: str, param: Any, grad: Any, lr: Any, weight_decay: Any) -> None:
    """The arguments every optimizer step takes: floating param and grad of one shape, lr >= 0, weight_decay >= 0."""
    require_float(fn, "param", param)
    require_float(fn, "grad", grad)
    require_same_shape(fn, "param", param, "grad", grad)
    require_in_range(fn, "lr", lr, 0.0)
    require_in_range(fn, "weight_decay", weight_decay, 0.0)


def check_optimizer_state(fn: str, state: Any, kind: type[tuple], param: Any) -> None:
    """A state handed back must come from the same rule and match param's shape."""
    if not isinstance(state, kind):
        raise ValueError(
            f"{fn}: argument 'state' must be None on the first step or the {kind.__name__} "
            f"returned by the previous {fn} call, got {type(state).__name__}"
        )
    if tuple(state[0].shape) != tuple(param.shape):
        raise ValueError(
            f"{fn}: argument 'state' holds arrays of shape {tuple(state[0].shape)}, but 'param' "
            f"has shape {tuple(param.shape)} (state of another parameter?)"
        )


def _hyperparameters(step_fn: Callable[..., Any]) -> list[str]:
    """The keyword-only hyperparameters of a step function, without lr and state."""
    params = inspect.signature(step_fn).parameters.values()
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in ("lr", "state")]


def resolve_optimizer(fn: str, optimizer: Any, hyper: Mapping[str, Any], table: Mapping[str, Any]) -> Any:
    """Look ``optimizer`` up in ``table``; reject unknown names and unknown hyperparameters."""
    step_fn = table.get(optimizer) if isinstance(optimizer, str) else None
    if step_fn is None:
        raise ValueError(
            f"{fn}: argument 'optimizer' must be one of {', '.join(map(repr, table))}, got {optimizer!r}"
        )
    valid = _hyperparameters(step_fn)
    for key in hyper:
        if key not in valid:
            raise ValueError(
                f"{fn}: optimizer {optimizer!r} has no hyperparameter {key!r} "
                f"(valid: {', '.join(valid) or 'none'})"
            )
    return step_fn
