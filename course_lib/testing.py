"""Comparison with messages that teach.

``assert_close`` is the single formatter behind the test suite and the notebook
checks: when a value is wrong it says what was checked, the expected and actual
shape and dtype, the largest absolute and relative difference, and the first index
where the two disagree, with both values there. A hint for the typical mistake can
be appended.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["assert_close", "scrub", "to_numpy", "DEFAULT_RTOL", "DEFAULT_ATOL"]

# float64 references agree with a correct answer to ~1e-12; these defaults leave room
# for float32 inputs and a different summation order while still catching sign,
# scale and off-by-one mistakes.
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-7


def to_numpy(value: Any) -> np.ndarray:
    """An ndarray view of a NumPy array, torch tensor (any device), or Python scalar/list."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)


# A random generator rendered as text — ``Generator(PCG64) at 0x..``, a bit generator,
# or its ``state`` dict — can give away the seed of hidden cases: messages never show one.
_GENERATOR_TEXT = re.compile(
    r"(Generator|BitGenerator|PCG64DXSM|PCG64|Philox|SFC64|MT19937|RandomState)\s*\([^)]*\)(\s*at\s*0x[0-9a-fA-F]+)?"
    r"|<numpy\.random\.[\w.]+ object at 0x[0-9a-fA-F]+>"
    r"|\{[^{}]*'(bit_generator|state|inc|has_uint32|uinteger)'[^{}]*(\{[^{}]*\}[^{}]*)*\}"
)


def scrub(text: str) -> str:
    """``text`` with every rendering of a random generator (or its state) replaced."""
    return _GENERATOR_TEXT.sub("<random generator>", text)


def _describe(arr: np.ndarray) -> str:
    return f"shape {arr.shape}, dtype {arr.dtype}"


def assert_close(
    actual: Any,
    expected: Any,
    *,
    name: str = "value",
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    hint: str | None = None,
    check_dtype: bool = False,
) -> None:
    """Raise ``AssertionError`` unless ``actual`` matches ``expected`` elementwise.

    Passes when ``|actual - expected| <= atol + rtol * |expected|`` everywhere and the
    shapes are identical (no broadcasting: (N,) never equals (N, 1)). NaNs match only NaNs.
    """
    name = scrub(name)
    if actual is None:
        raise AssertionError(
            f"{name}: got None — did the function forget to `return` its result?"
            + (f"\nHint: {hint}" if hint else "")
        )
    try:
        got = to_numpy(actual)
    except Exception as exc:  # e.g. a ragged list
        raise AssertionError(scrub(f"{name}: could not read the answer as an array ({exc})")) from None
    want = to_numpy(expected)
    lines: list[str] = []
    if got.shape != want.shape:
        lines.append(f"{name}: wrong shape.")
        lines.append(f"  expected {_describe(want)}")
        lines.append(f"  got      {_describe(got)}")
        if got.size == want.size:
            lines.append("  (same number of elements: a transpose or a missing reshape?)")
    elif check_dtype and got.dtype != want.dtype:
        lines.append(f"{name}: wrong dtype.")
        lines.append(f"  expected {_describe(want)}")
        lines.append(f"  got      {_describe(got)}")
    elif not (np.issubdtype(got.dtype, np.number) or got.dtype == bool):
        what = (
            "a random generator"
            if isinstance(actual, (np.random.Generator, np.random.BitGenerator))
            else f"an array of dtype {got.dtype}"
        )
        lines.append(f"{name}: expected numbers, got {what}.")
    else:
        g = got.astype(np.float64)
        w = want.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(g - w)
            bad = ~((diff <= atol + rtol * np.abs(w)) | (np.isnan(g) & np.isnan(w)))
            bad |= np.isnan(g) != np.isnan(w)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0]) if got.ndim else ()
            finite = np.isfinite(diff)
            max_abs = float(diff[finite].max()) if finite.any() else float("nan")
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = diff / np.maximum(np.abs(w), np.finfo(np.float64).tiny)
            max_rel = float(rel[np.isfinite(rel)].max()) if np.isfinite(rel).any() else float("nan")
            where = f"index {first}" if first else "the value"
            lines.append(f"{name}: values differ ({int(bad.sum())} of {bad.size} elements).")
            lines.append(f"  {_describe(want)}")
            lines.append(f"  max abs difference {max_abs:.3g}, max rel difference {max_rel:.3g}")
            lines.append(f"  first mismatch at {where}: expected {w[first]:.8g}, got {g[first]:.8g}")
            lines.append(f"  tolerance: rtol={rtol:g}, atol={atol:g}")
    if lines:
        if hint:
            lines.append(f"Hint: {hint}")
        raise AssertionError(scrub("\n".join(lines)))
