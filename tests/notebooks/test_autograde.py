"""Grade real submissions with stock ``nbgrader autograde`` in the session's temp course.

Per notebook, one ``nbgrader autograde`` call grades, as separate students:

- ``solution``: the release with every answer filled in (no hidden tests, as a student
  holds it; autograde restores the hidden tests from the gradebook) -> full marks;
- ``release``: the untouched release -> 0 points, without crashing;
- ``without_<name>`` for every exercise: the solution with exactly that answer cell
  reverted to its release version, demo cells dropped (to keep it fast) -> loses
  exactly that exercise's points, in exactly that exercise's test cells.

The notebooks are graded concurrently (one worker per CPU core), each into its own copy of
the course's SQLite gradebook so that two nbgrader processes never write to the same file.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
    solution_stems,
    student_copy,
)

Scores = dict[str, dict[str, float]]  # student -> grade_id -> score


def _submit(course: Path, stem: str, student: str, nb) -> None:
    folder = course / "submitted" / student / stem
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{stem}.ipynb")


def _gradebook(course: Path, stem: str) -> Path:
    return course / f"gradebook-{stem}.db"


def autograde(course: Path, stem: str) -> Scores:
    """Submit the three kinds of submission for ``stem``, run ``nbgrader autograde`` once, read the scores."""
    release = read(course / "release" / stem / f"{stem}.ipynb")
    solved = student_copy(release, read(SOLUTIONS / f"{stem}.ipynb"))
    _submit(course, stem, "solution", solved)
    _submit(course, stem, "release", release)
    lean = drop_demo_cells(solved)
    for ex in exercises_in(release):
        _submit(course, stem, f"without_{ex.name}", revert_answer(lean, release, ex.name))
    db_url = f"sqlite:///{_gradebook(course, stem)}"
    start = time.perf_counter()
    run_nbgrader(course, "autograde", stem, "--force", f"--CourseDirectory.db_url={db_url}")
    print(f"{stem}: nbgrader autograde of {len(exercises_in(release)) + 2} submissions in {time.perf_counter() - start:.1f} s")
    scores: Scores = {}
    with Gradebook(db_url) as gb:
        for sub in gb.find_assignment(stem).submissions:
            notebook = gb.find_submission_notebook(stem, stem, sub.student.id)
            scores[sub.student.id] = {g.name: float(g.score) for g in notebook.grades}
    return scores


@pytest.fixture(scope="session")
def grading(course: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, Future]]:
    """The autograde run of every notebook the selected tests ask for, started at once on a
    pool of one worker per core."""
    wanted = {item.callspec.params.get("stem") for item in request.session.items
              if item.path == Path(__file__) and hasattr(item, "callspec")}
    stems = [stem for stem in solution_stems() if stem in wanted]
    for stem in stems:
        shutil.copyfile(course / "gradebook.db", _gradebook(course, stem))
    # Biggest notebooks first, so the longest run does not start last.
    stems.sort(key=lambda stem: (SOLUTIONS / f"{stem}.ipynb").stat().st_size, reverse=True)
    with ThreadPoolExecutor(max_workers=max(1, min(len(stems), os.cpu_count() or 1))) as pool:
        yield {stem: pool.submit(autograde, course, stem) for stem in stems}


def _max_points(stem: str) -> dict[str, float]:
    """grade_id -> points of every test cell of the notebook."""
    return {t: p for ex in exercises_in(read(SOLUTIONS / f"{stem}.ipynb")) for t, p in ex.test_points.items()}


@pytest.mark.slow
def test_solution_scores_full_marks(grading: dict[str, Future], stem: str) -> None:
    got = grading[stem].result()["solution"]
    want = _max_points(stem)
    lost = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    assert not lost, f"{stem}: the solution lost points (grade_id: (score, max)): {lost}"


@pytest.mark.slow
def test_untouched_release_scores_zero(grading: dict[str, Future], stem: str) -> None:
    got = grading[stem].result()["release"]
    assert set(got) == set(_max_points(stem)), f"{stem}: the release was not graded cell by cell: {sorted(got)}"
    earned = {k: v for k, v in got.items() if v != 0}
    assert not earned, f"{stem}: the untouched release earned points: {earned}"


@pytest.mark.slow
def test_each_missing_answer_loses_exactly_its_points(grading: dict[str, Future], stem: str) -> None:
    scores = grading[stem].result()
    full = _max_points(stem)
    wrong = []
    for ex in exercises_in(read(SOLUTIONS / f"{stem}.ipynb")):
        got = scores[f"without_{ex.name}"]
        want = {k: (0.0 if k in ex.test_points else v) for k, v in full.items()}
        diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        if diff:
            wrong.append(f"without {ex.name} (worth {ex.points:g}): (score, expected) {diff}")
    assert not wrong, f"{stem}:\n" + "\n".join(wrong)
