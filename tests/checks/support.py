"""Shared helpers for the check tests."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pytest

from autograder import wire


def judge_after_wire_round_trip(check: Callable[..., None], answer: Callable[..., Any], seeds: Iterable[int]) -> None:
    """Judge a correct answer as the autograder's re-verification does.

    Re-verification sends the cases into its sandbox and the outputs back by value
    (``autograder.wire``, no pickle); the judge must still accept the answer after that
    round trip. ``check`` is a ``check_<name>``: a partial of run_check over the Exercise.
    """
    exercise = check.args[0]
    for seed in seeds:
        for case in exercise.cases(seed):
            args, kwargs = wire.loads(wire.dumps((case.args, case.kwargs)))
            exercise.judge(case, wire.loads(wire.dumps(answer(*args, **kwargs))))


# A correct answer: (check_<name>, answer). A typical mistake: (check, answer, hint) with the
# hint as literal text, judged on seed 0, or (check, answer, seed, pattern) with a regex.
Correct = tuple[Callable[..., None], Callable[..., Any]]
Mistake = tuple[Callable[..., None], Any, str] | tuple[Callable[..., None], Any, int, str]


def _as_pattern(mistake: Mistake) -> tuple[Callable[..., None], Any, int, str]:
    """(check, answer, seed, regex) for either form of a mistake."""
    if len(mistake) == 3:
        check, answer, hint = mistake
        return check, answer, 0, re.escape(hint)
    if len(mistake) == 4:
        return mistake
    raise ValueError(f"a mistake is (check, answer, hint) or (check, answer, seed, pattern), got {len(mistake)} items")


def answer_tests(
    correct: Sequence[Correct], wrong: Sequence[Mistake], *, seeds: Sequence[int], quiet_numpy: bool = False
) -> tuple[Callable[..., None], Callable[..., None], Callable[..., None]]:
    """The three tests every notebook's checks get, parametrized over that notebook's tables.

    Assign the result to module-level names starting with ``test_`` and pytest collects them:

    1. ``test_a_correct_answer_passes``: every correct answer passes on every seed;
    2. ``test_cases_and_outputs_cross_the_autograder_wire``: and still passes after the
       autograder's wire round trip;
    3. ``test_a_typical_mistake_fails_with_a_hint``: every typical mistake fails with an
       AssertionError whose text matches its hint.

    ``quiet_numpy`` silences NumPy's floating-point warnings while the mistakes run (an
    unstable answer that overflows on purpose).
    """
    correct_ids = [answer.__name__ for _, answer in correct]
    mistakes = [_as_pattern(m) for m in wrong]

    @pytest.mark.parametrize("seed", seeds)
    @pytest.mark.parametrize(("check", "answer"), correct, ids=correct_ids)
    def test_a_correct_answer_passes(check: Callable[..., None], answer: Any, seed: int) -> None:
        check(answer, seed=seed)

    @pytest.mark.parametrize(("check", "answer"), correct, ids=correct_ids)
    def test_cases_and_outputs_cross_the_autograder_wire(check: Callable[..., None], answer: Any) -> None:
        judge_after_wire_round_trip(check, answer, seeds)

    @pytest.mark.parametrize(("check", "answer", "seed", "pattern"), mistakes, ids=[p for *_, p in mistakes])
    def test_a_typical_mistake_fails_with_a_hint(check: Callable[..., None], answer: Any, seed: int, pattern: str) -> None:
        quiet = np.errstate(all="ignore") if quiet_numpy else contextlib.nullcontext()
        with quiet, pytest.raises(AssertionError) as err:
            check(answer, seed=seed)
        assert re.search(pattern, str(err.value)), f"message does not match {pattern!r}:\n{err.value}"

    return test_a_correct_answer_passes, test_cases_and_outputs_cross_the_autograder_wire, test_a_typical_mistake_fails_with_a_hint
