"""Canonicalization: the instructor's cells win, answers are found, nothing is silently lost."""

from __future__ import annotations

import copy

import pytest

import tinycourse
from autograder.canonical import answer_defines, canonicalize, nbgrader_meta
from autograder.sample import solution_answers, student_notebook


@pytest.fixture()
def course(tiny_course):
    sources, releases = tiny_course
    return sources[tinycourse.STEM], releases[tinycourse.STEM]


def _ids(nb) -> list[str]:
    return [nbgrader_meta(c).get("grade_id") for c in nb.cells if nbgrader_meta(c).get("grade_id")]


def _perfect(course):
    source, release = course
    return student_notebook("perfect", release, solution_answers(source), {}, index=0)


def test_graded_notebook_has_every_canonical_cell_once_in_order(course) -> None:
    source, release = course
    result = canonicalize(_perfect(course), source=source, release=release)
    assert _ids(result.notebook) == _ids(source)
    assert result.notes == []


def test_deleted_test_cell_is_restored_with_hidden_tests(course) -> None:
    source, release = course
    nb = _perfect(course)
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") != "test_square_hidden"]
    result = canonicalize(nb, source=source, release=release)
    restored = [c for c in result.notebook.cells if nbgrader_meta(c).get("grade_id") == "test_square_hidden"]
    assert len(restored) == 1 and "seed=1" in restored[0].source
    assert _ids(result.notebook) == _ids(source)
    assert any("test_square_hidden" in n and "restored" in n for n in result.notes)


def test_edited_test_cell_is_replaced_by_the_instructors(course) -> None:
    source, release = course
    nb = _perfect(course)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == "test_softsign":
            cell.source = "pass  # tests? what tests"
            cell.metadata["nbgrader"]["points"] = 100
    graded = canonicalize(nb, source=source, release=release).notebook
    cell = next(c for c in graded.cells if nbgrader_meta(c).get("grade_id") == "test_softsign")
    assert cell.source == "check_softsign(softsign)"
    assert nbgrader_meta(cell)["points"] == 1


def test_duplicated_graded_cell_counts_once(course) -> None:
    source, release = course
    nb = _perfect(course)
    test = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "test_square")
    nb.cells.insert(3, copy.deepcopy(test))
    result = canonicalize(nb, source=source, release=release)
    assert _ids(result.notebook).count("test_square") == 1
    assert any("duplicated" in n for n in result.notes)


def test_answer_without_metadata_is_found_by_its_definition(course) -> None:
    source, release = course
    nb = _perfect(course)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == "softsign":
            del cell.metadata["nbgrader"]
    result = canonicalize(nb, source=source, release=release)
    assert "np.abs" in result.answers["softsign"]
    assert result.missing_answers == []


def test_missing_answer_is_reported_and_graded_as_unanswered(course) -> None:
    source, release = course
    nb = _perfect(course)
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") != "answer_lr"]
    result = canonicalize(nb, source=source, release=release)
    assert result.missing_answers == ["answer_lr"]
    assert "NotImplementedError" in result.answers["answer_lr"]


def test_other_schema_versions_and_kernels_are_normalized(course) -> None:
    source, release = course
    nb = student_notebook("messy", release, solution_answers(source), {}, index=0)
    graded = canonicalize(nb, source=source, release=release).notebook
    assert graded.metadata["kernelspec"]["name"] == "python3"
    assert {nbgrader_meta(c)["schema_version"] for c in graded.cells if nbgrader_meta(c)} == {3}
    assert all(not c.get("outputs") for c in graded.cells if c.cell_type == "code")


def test_demo_cells_can_be_dropped(course) -> None:
    source, release = course
    kept = canonicalize(_perfect(course), source=source, release=release).notebook
    dropped = canonicalize(_perfect(course), source=source, release=release, drop_demo=True).notebook
    assert len(dropped.cells) == len(kept.cells) - 1


def test_answer_defines_reads_defs_and_assignments() -> None:
    assert answer_defines("import numpy as np\ndef f(x):\n    return x\nlr = 0.1\n%matplotlib inline") == {"f", "lr"}
    assert answer_defines("def broken(:") == set()
