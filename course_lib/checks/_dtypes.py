"""The dtype rule of an exercise, checked before its values: a stated rule, enforced the same way.

An exercise whose text says "a floating-point array" or "integer labels" wraps its judge
with ``with_dtype_rule``; an answer of another dtype fails with a message naming the
dtype it returned. The values are judged first, so a wrong answer still gets the hint for
its mistake; the dtype rule then fails an answer whose values are right.
"""

from __future__ import annotations

import enum

import numpy as np

from course_lib.checks._core import Case, Judge
from course_lib.testing import to_numpy

__all__ = ["DtypeRule", "with_dtype_rule"]


class DtypeRule(enum.Enum):
    """What an exercise's array answer must be; the value is the phrase the message uses."""

    FLOATING = "a floating-point array (float32 or float64)"
    INTEGER = "an integer array (e.g. int64)"


_HINTS = {
    DtypeRule.FLOATING: "comparisons such as z > 0 give bool arrays; turn them into floats, e.g. "
    "(z > 0).astype(z.dtype) or np.where(z > 0, 1.0, 0.0).",
    DtypeRule.INTEGER: "labels are whole numbers: turn a bool or float array into integers, "
    "e.g. (z > 0).astype(np.int64).",
}


def _follows(dtype: np.dtype, rule: DtypeRule) -> bool:
    if rule is DtypeRule.FLOATING:
        return bool(np.issubdtype(dtype, np.floating))
    return bool(np.issubdtype(dtype, np.integer))  # bool is not an integer dtype for NumPy


def with_dtype_rule(judge: Judge, name: str, rule: DtypeRule) -> Judge:
    """``judge``, after checking that the answer's output follows ``rule``."""

    def checked(case: Case | None, output: object) -> None:
        judge(case, output)
        try:
            dtype = to_numpy(output).dtype
        except (TypeError, ValueError):
            dtype = None  # the judge accepted it; nothing array-like to check
        if dtype is not None and not _follows(dtype, rule):
            where = f" [{case.label}]" if case is not None and case.label else ""
            raise AssertionError(
                f"{name}{where}: expected {rule.value}, got dtype {dtype}.\nHint: {_HINTS[rule]}"
            )

    # register() and the registry tests read these from the judge.
    checked.mistakes = getattr(judge, "mistakes", ())  # type: ignore[attr-defined]
    checked.reference = getattr(judge, "reference", None)  # type: ignore[attr-defined]
    return checked
