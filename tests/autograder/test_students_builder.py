"""The tests' one student-notebook builder (``fixtures/students.py``), asked in memory
on a three-cell release written here."""

from __future__ import annotations

import copy

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from students import student_notebook, typed_answers


def _release():
    def graded(gid: str, source: str):
        return new_code_cell(source, id=gid.replace("_", "-"), metadata={"nbgrader": {"grade_id": gid}})

    return new_notebook(
        cells=[new_markdown_cell("# A", id="intro"), graded("ex", "# stub"), graded("test_ex", "check(ex)")]
    )


def test_answers_replace_the_cells_of_their_grade_id_and_nothing_else() -> None:
    nb = student_notebook(_release(), {"ex": "ex = 1", "absent": "x"})
    assert [c.source for c in nb.cells] == ["# A", "ex = 1", "check(ex)"]


def test_cells_of_the_students_own_go_before_and_after_with_no_nbgrader_metadata() -> None:
    nb = student_notebook(_release(), {}, before={"ex": "helper = 1"}, after={"test_ex": "print(ex)"})
    assert [c.source for c in nb.cells] == ["# A", "helper = 1", "# stub", "check(ex)", "print(ex)"]
    assert "nbgrader" not in nb.cells[1].metadata and "nbgrader" not in nb.cells[4].metadata


def test_the_release_is_not_changed() -> None:
    release = _release()
    kept = copy.deepcopy(release)
    student_notebook(release, {"ex": "ex = 1"}, before={"ex": "helper = 1"})
    assert release == kept


@pytest.mark.parametrize(("drop_ids", "expected"), [(True, (4, [False] * 3)), (False, (5, [True] * 3))])
def test_drop_ids_saves_as_nbformat_4_4_without_cell_ids(
    drop_ids: bool, expected: tuple[int, list[bool]]
) -> None:
    nb = student_notebook(_release(), {}, drop_ids=drop_ids)
    assert (nb.nbformat_minor, ["id" in c for c in nb.cells]) == expected


def test_typed_answers_have_no_solution_markers_and_take_overrides() -> None:
    answers = typed_answers(square="def square(x):\n    return x ** 2\n")
    assert answers["answer_lr"] == "answer_lr = 0.1\n"
    assert answers["square"] == "def square(x):\n    return x ** 2\n"


def test_typed_answers_name_an_override_that_is_no_exercise() -> None:
    with pytest.raises(KeyError, match="squares"):
        typed_answers(squares="x")
