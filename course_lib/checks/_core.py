"""The exercise registry behind every graded notebook cell and the autograder.

An exercise asks the student for one function (or one value). Its ``Exercise`` record
says how to produce trusted inputs (``cases``) and how to judge an answer's output on
one case (``judge``). The same record serves three callers:

- the notebook's visible test cell: ``check_<name>(answer)`` with seed 0;
- the hidden test cell: the same check with other seeds and edge cases;
- the autograder's re-verification, which calls the student's function in a sandbox on
  cases it generated itself and judges the outputs in the trusted grading process.

A judge raises ``AssertionError`` with a message that teaches (see
``course_lib.testing.assert_close``); it must accept NumPy arrays, Python scalars and
tuples of those as the output.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from course_lib.testing import DEFAULT_ATOL, DEFAULT_RTOL, assert_close

__all__ = ["Case", "Exercise", "Mistake", "register", "get", "exercises", "run_check", "reference_judge"]


@dataclass(frozen=True)
class Case:
    """One trusted input: the answer is called as ``answer(*args, **kwargs)``."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # shown in failure messages, e.g. "z of shape (4, 5) with large |z|"


Judge = Callable[[Case | None, Any], None]


class Mistake(NamedTuple):
    """A typical wrong answer: ``wrong(*args, **kwargs)`` returns what a student making this
    mistake outputs (same structure as the reference), and ``hint`` says what to fix.

    ``wrong`` is itself an answer: the visible check (seed 0) must fail it."""

    wrong: Callable[..., Any]
    hint: str


@dataclass(frozen=True)
class Exercise:
    notebook: str  # e.g. "01_perceptron"
    name: str  # what the student defines: a function name or a variable name
    kind: Literal["function", "value"]
    judge: Judge
    cases: Callable[[int], Sequence[Case]] = lambda seed: ()
    # Dotted paths of course_lib references that compute this very answer; the
    # autograder's re-verification replaces them with a trap so calling them earns nothing.
    references: tuple[str, ...] = ()
    # The typical mistakes the judge recognises; each must fail the visible cases (seed 0):
    # hidden seeds add inputs and edge cases, never a mistake the student could not see.
    mistakes: tuple[Mistake, ...] = ()


_REGISTRY: dict[tuple[str, str], Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to the registry. A judge built by ``diagnosing_judge`` lends it its catalogue
    of mistakes when the record names none itself, and the check-side function a judge compares
    with (``judge.reference``) joins ``references``."""
    lent: Sequence[Mistake] | None = getattr(exercise.judge, "mistakes", None)
    if not exercise.mistakes and lent:
        exercise = dataclasses.replace(exercise, mistakes=tuple(lent))
    reference = getattr(exercise.judge, "reference", None)
    if reference is not None and reference.__module__.startswith("course_lib.checks."):
        # A check-side helper computes the answer too (and a student can import it by name):
        # withhold it during re-verification like the library's own references.
        dotted = f"{reference.__module__}.{reference.__name__}"
        if dotted not in exercise.references:
            exercise = dataclasses.replace(exercise, references=(*exercise.references, dotted))
    key = (exercise.notebook, exercise.name)
    if key in _REGISTRY and _REGISTRY[key] != exercise:
        raise ValueError(f"register: exercise {key} is registered twice")
    _REGISTRY[key] = exercise
    return exercise


def get(notebook: str, name: str) -> Exercise:
    """The registered exercise ``name`` of ``notebook`` (e.g. ``get("07_rnn", "rnn_bptt")``);
    KeyError naming both when there is none. The registry's lookup by key: the autograder
    walks ``exercises()``; the tests ask for one exercise by name."""
    _load_all()
    try:
        return _REGISTRY[(notebook, name)]
    except KeyError:
        raise KeyError(f"no exercise {name!r} in notebook {notebook!r}") from None


def exercises(notebook: str | None = None) -> list[Exercise]:
    """Every registered exercise (of ``notebook`` only, if given), sorted by (notebook, name)."""
    _load_all()
    return [ex for (nb, _), ex in sorted(_REGISTRY.items()) if notebook in (None, nb)]


def _load_all() -> None:
    # Importing the per-notebook modules registers their exercises.
    import importlib
    import pkgutil

    import course_lib.checks as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def call_answer(answer: Callable[..., Any], case: Case) -> Any:
    """Call the answer on a private copy, so an answer that mutates its inputs cannot
    change what the judge compares against."""
    return answer(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))


def run_check(exercise: Exercise, answer: Any, *, seed: int = 0) -> None:
    """Judge ``answer`` on every case for ``seed``; raises AssertionError on the first failure."""
    if exercise.kind == "value":
        exercise.judge(None, answer)
        return
    if not callable(answer):
        raise AssertionError(
            f"{exercise.name}: expected a function, got {type(answer).__name__}. "
            f"Did you overwrite `{exercise.name}` with a value?"
        )
    for case in exercise.cases(seed):
        try:
            output = call_answer(answer, case)
        except NotImplementedError:
            raise AssertionError(
                f"{exercise.name}: not implemented yet — replace `raise NotImplementedError()` with your code."
            ) from None
        exercise.judge(case, output)


def reference_judge(
    reference: Callable[..., Any],
    *,
    name: str,
    outputs: Sequence[str] | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    hint: str = "",
) -> Judge:
    """A judge comparing the answer's output with ``reference`` on the same case.

    ``outputs`` names the elements of a tuple output to compare, in order (e.g.
    ``("out",)`` for a forward pass whose cache is not graded, ``("dx", "dw", "db")`` for
    a backward pass); ``None`` compares a single array output.
    """

    def judge(case: Case | None, output: Any) -> None:
        assert case is not None
        expected = reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        where = f" [{case.label}]" if case.label else ""
        if outputs is None:
            assert_close(output, expected, name=f"{name}{where}", rtol=rtol, atol=atol, hint=hint or None)
            return
        if not isinstance(output, (tuple, list)) or len(output) < len(outputs):
            raise AssertionError(
                f"{name}{where}: expected a tuple ({', '.join(outputs)}), "
                f"got {type(output).__name__}"
                + (f" of length {len(output)}" if isinstance(output, (tuple, list)) else "")
                + (f"\nHint: {hint}" if hint else "")
            )
        for i, label in enumerate(outputs):
            assert_close(
                output[i],
                expected[i],
                name=f"{name}{where}: {label}",
                rtol=rtol,
                atol=atol,
                hint=hint or None,
            )

    return judge


def seeded_rng(seed: int, salt: int) -> np.random.Generator:
    """A generator per (exercise, seed), so cases never depend on call order."""
    return np.random.default_rng([seed, salt])
