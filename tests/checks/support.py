"""Shared helpers for the check tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

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
