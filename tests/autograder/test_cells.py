"""autograder.cells: nbgrader's cell roles, on cells built in memory.

Well-formed cells are checked against nbgrader's own ``nbgrader.utils`` (the oracle);
malformed metadata, which a submission may hold, against hand-written expectations.
"""

from __future__ import annotations

from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader import utils as nbgrader_utils

from autograder.cells import (
    grade_id,
    is_answer,
    is_grade,
    is_solution,
    is_test,
    nbgrader_meta,
    strip_solution_markers,
)


def _cell(**nbgrader: Any) -> Any:
    cell = new_code_cell("x = 1")
    cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, **nbgrader}
    return cell


# The three cell types of nbgrader's create-assignment toolbar, and a read-only cell.
ANSWER = _cell(grade_id="f", solution=True, grade=False)
TEST = _cell(grade_id="test_f", solution=False, grade=True, points=2, locked=True)
MANUAL = _cell(grade_id="essay", solution=True, grade=True, points=5)
READ_ONLY = _cell(grade_id="setup", solution=False, grade=False, locked=True)
PLAIN = new_code_cell("print(1)")


@pytest.mark.parametrize(
    "cell", [ANSWER, TEST, MANUAL, READ_ONLY, PLAIN], ids=["answer", "test", "manual", "read-only", "plain"]
)
def test_the_flags_agree_with_nbgrader(cell: Any) -> None:
    assert is_solution(cell) is bool(nbgrader_utils.is_solution(cell))
    assert is_grade(cell) is bool(nbgrader_utils.is_grade(cell))


def test_the_roles() -> None:
    assert [is_answer(c) for c in (ANSWER, TEST, MANUAL, READ_ONLY, PLAIN)] == [
        True,
        False,
        False,
        False,
        False,
    ]
    assert [is_test(c) for c in (ANSWER, TEST, MANUAL, READ_ONLY, PLAIN)] == [
        False,
        True,
        False,
        False,
        False,
    ]


def test_grade_id_and_metadata() -> None:
    assert grade_id(TEST) == "test_f" and grade_id(PLAIN) is None
    assert nbgrader_meta(TEST)["points"] == 2 and nbgrader_meta(PLAIN) == {}
    # The same on plain JSON dicts, as read from a submission without nbformat.
    raw = {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "g", "solution": True}}, "source": ""}
    assert grade_id(raw) == "g" and is_answer(raw)


@pytest.mark.parametrize(
    "metadata",
    [
        {"nbgrader": ["grade_id", "f"]},  # not a dict
        {"nbgrader": "solution"},
        {"nbgrader": None},
        {"nbgrader": {"grade_id": 7, "solution": True}},  # a grade_id that is no string
    ],
)
def test_malformed_metadata_reads_as_absent(metadata: dict[str, Any]) -> None:
    cell = new_code_cell("x = 1")
    cell.metadata = metadata
    assert grade_id(cell) is None
    assert not is_test(cell)
    if not isinstance(metadata["nbgrader"], dict):
        assert nbgrader_meta(cell) == {} and not is_answer(cell)


def test_metadata_that_is_not_a_dict_reads_as_absent() -> None:
    assert nbgrader_meta({"metadata": ["nbgrader"]}) == {} and nbgrader_meta({}) == {}


def test_a_markdown_cell_has_the_same_roles() -> None:
    cell = new_markdown_cell("text")
    cell.metadata["nbgrader"] = {"grade_id": "w", "solution": True, "grade": False}
    assert is_answer(cell) and grade_id(cell) == "w"


def test_strip_solution_markers_keeps_the_code_and_the_indentation() -> None:
    source = "def f(x):\n    ### BEGIN SOLUTION\n    y = 2 * x\n    return y\n    ### END SOLUTION\n"
    assert strip_solution_markers(source) == "def f(x):\n    y = 2 * x\n    return y\n"


def test_strip_solution_markers_leaves_other_comments_and_no_marker_source() -> None:
    source = "# BEGIN here\nx = 1  # the END\n### BEGIN HIDDEN TESTS\ncheck()\n### END HIDDEN TESTS"
    assert strip_solution_markers(source) == source
    assert strip_solution_markers("### BEGIN SOLUTION\n### END SOLUTION") == ""
