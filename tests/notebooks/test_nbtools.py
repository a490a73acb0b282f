"""The harness's own helpers, on small notebooks built in memory (fast, no kernel)."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.notebooks.nbtools import drop_demo_cells, exercises_in, revert_answer, strip_solution_markers, student_copy


def _cell(source: str, **nbgrader) -> object:
    cell = new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, "grade": False, "solution": False, "locked": False, **nbgrader}
    return cell


def _solution():
    demo = new_code_cell("plot(f)")
    demo.metadata["tags"] = ["demo"]
    return new_notebook(cells=[
        new_markdown_cell("# intro"),
        _cell("import numpy as np", grade_id="setup", locked=True),
        _cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", grade_id="f", solution=True),
        _cell("check_f(f)", grade_id="test_f", grade=True, locked=True, points=2),
        _cell("### BEGIN HIDDEN TESTS\ncheck_f(f, seed=1)\n### END HIDDEN TESTS", grade_id="test_f_hidden", grade=True, locked=True, points=1),
        demo,
    ])


def _release():
    nb = _solution()
    nb.cells[2].source = "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    nb.cells[4].source = ""
    return nb


def test_exercises_are_read_from_the_cells() -> None:
    (ex,) = exercises_in(_solution())
    assert (ex.name, ex.test_points, ex.points) == ("f", {"test_f": 2.0, "test_f_hidden": 1.0}, 3.0)


def test_strip_solution_markers_keeps_the_code() -> None:
    assert strip_solution_markers(_solution().cells[2].source) == "def f(x):\n    return 2 * x"


def test_student_copy_fills_answers_and_keeps_the_release_tests() -> None:
    nb = student_copy(_release(), _solution())
    assert nb.cells[2].source == "def f(x):\n    return 2 * x"
    assert nb.cells[4].source == ""  # hidden tests stay removed, as in the student's copy


def test_revert_answer_restores_only_that_cell() -> None:
    release = _release()
    nb = revert_answer(student_copy(release, _solution()), release, "f")
    assert nb.cells[2].source == release.cells[2].source
    assert nb.cells[1].source == "import numpy as np"


def test_drop_demo_cells() -> None:
    nb = drop_demo_cells(_solution())
    assert [c.source for c in nb.cells if c.cell_type == "code"][-1] == _solution().cells[4].source
    assert len(nb.cells) == len(_solution().cells) - 1
