"""Static checks of every solution notebook and its committed release (no kernel needed).

- no outputs or execution counts are committed;
- nbgrader metadata is valid: current schema, unique grade_ids, points > 0 on graded
  cells, the course's cell layout (setup cell; per exercise an answer, a visible and a hidden test);
- the notebook's exercises and the check registry (course_lib.checks) agree both ways;
- the points add up to the total the notebook's introduction states.
"""

from __future__ import annotations

import re

import pytest

from course_lib.checks import exercises as registered_exercises
from tests.notebooks.nbtools import (
    RELEASED,
    SOLUTIONS,
    exercises_in,
    is_answer,
    is_test,
    nbgrader_meta,
    read,
    solution_stems,
)

SCHEMA_VERSION = 3


def _all_committed() -> list:
    paths = sorted(SOLUTIONS.glob("*.ipynb")) + sorted(RELEASED.glob("*.ipynb"))
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in paths] or [
        pytest.param(None, marks=pytest.mark.skip(reason="no notebooks yet"))
    ]


@pytest.mark.parametrize("path", _all_committed())
def test_committed_without_outputs(path) -> None:
    nb = read(path)
    dirty = [
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"


def test_every_solution_has_a_release() -> None:
    released = sorted(p.stem for p in RELEASED.glob("*.ipynb"))
    assert released == solution_stems(), "notebooks/ must hold exactly one release per solutions/*.ipynb"


def test_nbgrader_metadata_is_valid(stem: str) -> None:
    nb = read(SOLUTIONS / f"{stem}.ipynb")
    ids = []
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if not meta:
            continue
        where = f"{stem} cell {i}"
        assert meta.get("schema_version") == SCHEMA_VERSION, f"{where}: nbgrader schema_version must be {SCHEMA_VERSION}"
        assert meta.get("grade_id"), f"{where}: nbgrader cell without grade_id"
        ids.append(meta["grade_id"])
        if meta.get("grade"):
            assert float(meta.get("points", 0)) > 0, f"{where} ({meta['grade_id']}): graded cell needs points > 0"
    duplicates = sorted({g for g in ids if ids.count(g) > 1})
    assert not duplicates, f"{stem}: duplicate grade_ids {duplicates}"

    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = nbgrader_meta(code[0])
    assert setup.get("grade_id") == "setup" and setup.get("locked"), f"{stem}: first code cell must be the locked `setup` cell"


def test_exercise_cells_follow_the_contract(stem: str) -> None:
    nb = read(SOLUTIONS / f"{stem}.ipynb")
    by_id = {nbgrader_meta(c)["grade_id"]: c for c in nb.cells if nbgrader_meta(c)}
    for cell in nb.cells:
        if is_answer(cell):
            name = nbgrader_meta(cell)["grade_id"]
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, f"{stem}/{name}: answer without solution markers"
            visible, hidden = by_id.get(f"test_{name}"), by_id.get(f"test_{name}_hidden")
            assert visible is not None and hidden is not None, f"{stem}/{name}: needs test_{name} and test_{name}_hidden cells"
            assert re.search(rf"\bcheck_{name}\({name}\)", visible.source), f"{stem}/test_{name}: must call check_{name}({name})"
            assert "### BEGIN HIDDEN TESTS" in hidden.source and "### END HIDDEN TESTS" in hidden.source
            assert f"check_{name}({name}, seed=" in hidden.source, f"{stem}/test_{name}_hidden: must call the check with other seeds"
        if is_test(cell):
            assert nbgrader_meta(cell).get("locked"), f"{stem}/{nbgrader_meta(cell)['grade_id']}: test cells must be locked"


def test_exercises_match_the_registry(stem: str) -> None:
    nb = read(SOLUTIONS / f"{stem}.ipynb")
    in_notebook = sorted(e.name for e in exercises_in(nb))
    in_registry = sorted(e.name for e in registered_exercises(stem))
    assert in_notebook == in_registry, (
        f"{stem}: answer cells {in_notebook} but course_lib.checks registers {in_registry}"
    )
    graded = {nbgrader_meta(c)["grade_id"] for c in nb.cells if is_test(c)}
    claimed = {t for e in exercises_in(nb) for t in e.test_points}
    assert graded == claimed, f"{stem}: test cells not tied to an exercise: {sorted(graded - claimed)}"


def test_intro_states_the_total(stem: str) -> None:
    nb = read(SOLUTIONS / f"{stem}.ipynb")
    total = sum(e.points for e in exercises_in(nb))
    first_answer = next(i for i, c in enumerate(nb.cells) if is_answer(c))
    intro = "\n".join(c.source for c in nb.cells[:first_answer] if c.cell_type == "markdown")
    assert re.search(rf"\b{total:g} points\b", intro), f"{stem}: the introduction must state the total, {total:g} points"
