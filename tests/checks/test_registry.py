"""Properties every registered exercise holds, over the whole registry:

- every typical mistake in an exercise's catalogue fails its *visible* check (seed 0): the
  hidden seeds add inputs and edge cases, never a mistake the student could not see;
- the function the judge compares with is registered in ``references`` (so the autograder's
  re-verification traps it), and when it is a check-side helper its name is private (starts
  with ``_``) and the module does not export it;
- every registered reference names a course_lib function or class that exists.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import pytest

from course_lib.checks import Exercise, exercises, run_check

# The course's own notebooks: other suites (the autograder's tiny test course) may have
# registered exercises of their own in this process.
COURSE = {p.stem for p in (Path(__file__).resolve().parents[2] / "solutions").glob("*.ipynb")}
EXERCISES = [ex for ex in exercises() if ex.notebook in COURSE]
FUNCTIONS = [ex for ex in EXERCISES if ex.kind == "function"]
CATALOGUE = [
    pytest.param(ex, i, id=f"{ex.notebook}/{ex.name}/{i}") for ex in FUNCTIONS for i in range(len(ex.mistakes))
]


def test_the_registry_is_loaded() -> None:
    assert len(FUNCTIONS) >= 30, f"expected the seven notebooks' exercises, found {len(FUNCTIONS)}"


@pytest.mark.parametrize("exercise", FUNCTIONS, ids=lambda ex: f"{ex.notebook}/{ex.name}")
def test_every_function_exercise_has_a_catalogue(exercise: Exercise) -> None:
    assert exercise.mistakes, f"{exercise.name}: no typical mistakes registered"


@pytest.mark.parametrize(("exercise", "index"), CATALOGUE)
def test_every_catalogued_mistake_fails_the_visible_check(exercise: Exercise, index: int) -> None:
    mistake = exercise.mistakes[index]
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # some mistakes overflow on purpose
        warnings.simplefilter("ignore")
        with pytest.raises(AssertionError):
            run_check(exercise, mistake.wrong, seed=0)


def _resolve(path: str) -> object:
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("exercise", FUNCTIONS, ids=lambda ex: f"{ex.notebook}/{ex.name}")
def test_the_judges_reference_is_registered_and_check_side_helpers_are_private(exercise: Exercise) -> None:
    assert hasattr(exercise.judge, "reference"), f"{exercise.name}: the judge does not say what it compares with"
    reference = exercise.judge.reference
    if reference is None:  # judged by properties only (a random mask)
        assert exercise.name == "dropout"
        return
    module = reference.__module__
    dotted = f"{module}.{reference.__qualname__}"
    assert dotted in exercise.references, f"{exercise.name}: compares with {dotted}, not in {exercise.references}"
    if module.startswith("course_lib.checks"):
        owner = importlib.import_module(module)
        assert reference.__name__.startswith("_"), f"{exercise.name}: check-side helper {reference.__name__} must be private"
        assert reference.__name__ not in getattr(owner, "__all__", ()), f"{reference.__name__} is exported"


@pytest.mark.parametrize("exercise", FUNCTIONS, ids=lambda ex: f"{ex.notebook}/{ex.name}")
def test_a_library_reference_comes_first(exercise: Exercise) -> None:
    # The first reference is the one a copying student would reach for: the library's own, where it has one.
    library = [r for r in exercise.references if not r.startswith("course_lib.checks.")]
    if library:
        assert exercise.references[0] == library[0]


@pytest.mark.parametrize("exercise", [ex for ex in FUNCTIONS if ex.references], ids=lambda ex: ex.name)
def test_every_registered_reference_exists(exercise: Exercise) -> None:
    for path in exercise.references:
        assert path.startswith("course_lib."), path
        assert callable(_resolve(path)), path


def test_no_check_module_exports_a_reference() -> None:
    for ex in EXERCISES:
        module = importlib.import_module(ex.judge.__module__) if ex.judge.__module__.startswith("course_lib.checks") else None
        for name in getattr(module, "__all__", ()):
            assert "reference" not in name.lower(), f"{ex.notebook}: exports {name}"


def test_a_withheld_np_ref_function_takes_its_speed_tuned_twin_along() -> None:
    # course_lib.np_ref.<name> resolves to np_ref/fast_<topic>.py for these names: a view that
    # withheld only the plain np_ref/<topic>.py function would leave the answer one import away.
    from course_lib._api import NP_FAST

    checked = 0
    for exercise in exercises():
        for dotted in exercise.references:
            module, _, name = dotted.rpartition(".")
            if module.startswith("course_lib.np_ref.") and name in NP_FAST and "fast_" not in module:
                twin = f"course_lib.np_ref.{NP_FAST[name]}.{name}"
                assert twin in exercise.references, f"{exercise.name}: references {dotted} but not {twin}"
                checked += 1
    assert checked >= 5  # conv2d, corr2d, conv2d_grads, rnn_unroll, rnn_bptt, lstm_cell ... all name one
