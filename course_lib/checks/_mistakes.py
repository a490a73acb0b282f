"""Judges that recognise a typical mistake and name it in the failure message.

A plain comparison says *that* an answer is wrong; a judge built here also says *why*
when the wrong output equals what a known mistake produces (a flipped kernel, a
forgotten bias, a hidden state that is not carried forward, ...). Each ``Mistake``
recomputes the output a student making that mistake would return, from the same case,
with the reference building blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course_lib.checks._core import Case, Judge, Mistake
from course_lib.testing import DEFAULT_ATOL, DEFAULT_RTOL, assert_close, to_numpy

__all__ = ["Mistake", "diagnosing_judge", "matches"]


def matches(got: Any, want: Any, *, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> bool:
    """True when ``got`` equals ``want`` within tolerance, with identical shapes."""
    try:
        g, w = to_numpy(got).astype(np.float64), to_numpy(want).astype(np.float64)
    except (TypeError, ValueError):
        return False
    return g.shape == w.shape and bool(np.allclose(g, w, rtol=rtol, atol=atol))


def _pick(value: Any, index: int | None) -> Any:
    return value if index is None else value[index]


def diagnosing_judge(
    reference: Callable[..., Any],
    *,
    name: str,
    outputs: Sequence[str] | None = None,
    mistakes: Sequence[Mistake] = (),
    hint: str = "",
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> Judge:
    """Compare the answer's output with ``reference`` on the case; on a mismatch, name the
    first mistake in ``mistakes`` whose output the answer reproduces, else give ``hint``.

    ``outputs`` names the elements of a tuple output in order (``None``: one array).
    """

    def judge(case: Case | None, output: Any) -> None:
        assert case is not None
        where = f" [{case.label}]" if case.label else ""

        def call(fn: Callable[..., Any]) -> Any:
            return fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))

        expected = call(reference)
        if outputs is not None and (not isinstance(output, (tuple, list)) or len(output) != len(outputs)):
            got = type(output).__name__ + (
                f" of length {len(output)}" if isinstance(output, (tuple, list)) else ""
            )
            raise AssertionError(
                f"{name}{where}: expected a tuple of {len(outputs)} ({', '.join(outputs)}), got {got}."
            )
        slots: list[tuple[int | None, str]] = (
            [(None, f"{name}{where}")]
            if outputs is None
            else [(i, f"{name}{where}: {label}") for i, label in enumerate(outputs)]
        )
        for index, label in slots:
            got, want = _pick(output, index), _pick(expected, index)
            try:
                assert_close(got, want, name=label, rtol=rtol, atol=atol)
            except AssertionError as err:
                diagnosis = hint
                for mistake in mistakes:
                    try:
                        wrong = _pick(call(mistake.wrong), index)
                    except Exception:  # a mistake that cannot even run on this case is not the one
                        continue
                    if not matches(wrong, want, rtol=rtol, atol=atol) and matches(
                        got, wrong, rtol=rtol, atol=atol
                    ):
                        diagnosis = f"your output matches a typical mistake: {mistake.hint}"
                        break
                raise AssertionError(f"{err}" + (f"\nHint: {diagnosis}" if diagnosis else "")) from None

    judge.mistakes = tuple(mistakes)  # type: ignore[attr-defined]  # read by register()
    judge.reference = reference  # type: ignore[attr-defined]  # read by the references test
    return judge
