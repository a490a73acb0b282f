"""Grade real submissions with stock ``nbgrader autograde`` in the session's temp course.

Per notebook, one ``nbgrader autograde`` call grades, as separate students:

- ``solution``: the release with every answer filled in (no hidden tests, as a student
  holds it; autograde restores the hidden tests from the gradebook) -> full marks;
- ``release``: the untouched release -> 0 points, without crashing;
- ``without_<name>`` for every exercise: the solution with exactly that answer cell
  reverted to its release version, demo cells dropped (to keep it fast) -> loses
  exactly that exercise's points, in exactly that exercise's test cells.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from tests.notebooks.nbtools import (
    SOLUTIONS,
    drop_demo_cells,
    exercises_in,
    read,
    revert_answer,
    run_nbgrader,
    student_copy,
)

_GRADED: dict[str, dict[str, dict[str, float]]] = {}


def _submit(course: Path, stem: str, student: str, nb) -> None:
    folder = course / "submitted" / student / stem
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{stem}.ipynb")


def autograde(course: Path, stem: str) -> dict[str, dict[str, float]]:
    """student -> grade_id -> score, for the three kinds of submission (cached per notebook)."""
    if stem in _GRADED:
        return _GRADED[stem]
    release = read(course / "release" / stem / f"{stem}.ipynb")
    solved = student_copy(release, read(SOLUTIONS / f"{stem}.ipynb"))
    _submit(course, stem, "solution", solved)
    _submit(course, stem, "release", release)
    lean = drop_demo_cells(solved)
    for ex in exercises_in(release):
        _submit(course, stem, f"without_{ex.name}", revert_answer(lean, release, ex.name))
    start = time.perf_counter()
    run_nbgrader(course, "autograde", stem, "--force")
    print(f"{stem}: nbgrader autograde of {len(exercises_in(release)) + 2} submissions in {time.perf_counter() - start:.1f} s")
    scores: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.find_assignment(stem).submissions:
            notebook = gb.find_submission_notebook(stem, stem, sub.student.id)
            scores[sub.student.id] = {g.name: float(g.score) for g in notebook.grades}
    _GRADED[stem] = scores
    return scores


def _max_points(stem: str) -> dict[str, float]:
    """grade_id -> points of every test cell of the notebook."""
    return {t: p for ex in exercises_in(read(SOLUTIONS / f"{stem}.ipynb")) for t, p in ex.test_points.items()}


@pytest.mark.slow
def test_solution_scores_full_marks(course: Path, stem: str) -> None:
    got = autograde(course, stem)["solution"]
    want = _max_points(stem)
    lost = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    assert not lost, f"{stem}: the solution lost points (grade_id: (score, max)): {lost}"


@pytest.mark.slow
def test_untouched_release_scores_zero(course: Path, stem: str) -> None:
    got = autograde(course, stem)["release"]
    assert set(got) == set(_max_points(stem)), f"{stem}: the release was not graded cell by cell: {sorted(got)}"
    earned = {k: v for k, v in got.items() if v != 0}
    assert not earned, f"{stem}: the untouched release earned points: {earned}"


@pytest.mark.slow
def test_each_missing_answer_loses_exactly_its_points(course: Path, stem: str) -> None:
    scores = autograde(course, stem)
    full = _max_points(stem)
    wrong = []
    for ex in exercises_in(read(SOLUTIONS / f"{stem}.ipynb")):
        got = scores[f"without_{ex.name}"]
        want = {k: (0.0 if k in ex.test_points else v) for k, v in full.items()}
        diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        if diff:
            wrong.append(f"without {ex.name} (worth {ex.points:g}): (score, expected) {diff}")
    assert not wrong, f"{stem}:\n" + "\n".join(wrong)
