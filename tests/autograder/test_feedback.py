"""The feedback layer (``autograder.feedback``), one question per test, in memory.

Ledger records are built by hand from ``autograder.results`` types and the graded
notebooks are small nbformat notebooks (``small_gradebook``); the expected page text is
hand-written, and what a student controls (reasons, notes, markdown, outputs) is attack
text that must reach the page as inert text.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
from small_gradebook import ASSIGNMENT, HIDDEN_CELL, HIDDEN_POINTS, course_notebook, graded_notebook

from autograder.course import CourseDir
from autograder.feedback import hide_hidden_tests, show_hidden_tests, write_feedback
from autograder.gradebook import Ledger
from autograder.pipeline import HIDDEN_PLACEHOLDER, ExerciseScore, SubmissionResult
from autograder.results import Evidence, Outcome, Status

SECRET = "secret case"  # in the hidden test's source only
SHOWN = re.compile(rf"# hidden tests \({HIDDEN_POINTS:g}(\.0)? points\): source not shown")
SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img src=x onerror=alert(2)>"


def _cell(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _withheld() -> nbformat.NotebookNode:
    """The graded notebook as the pipeline leaves it: the hidden test's source withheld."""
    nb = graded_notebook()
    _cell(nb, HIDDEN_CELL).source = HIDDEN_PLACEHOLDER
    return nb


def _record(student: str = "ann", **kw) -> SubmissionResult:
    fields = {"status": Status.GRADED, "score": 2.0, "max_score": 5.0, **kw}
    return SubmissionResult(student=student, assignment=ASSIGNMENT, **fields)


def _run(
    tmp_path: Path, records: list[SubmissionResult], notebooks: dict[str, nbformat.NotebookNode] | None = None
) -> CourseDir:
    """A run folder with ``records`` in its ledger and, per student, a graded notebook."""
    (tmp_path / "run").mkdir(exist_ok=True)  # as `grade` makes it, even for an empty class
    course = CourseDir.at(tmp_path / "run" / "course")
    for r in records:
        Ledger(tmp_path / "run").write(r)
    for student, nb in (notebooks or {}).items():
        path = course.autograded(student, ASSIGNMENT)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
    return course


def _page(tmp_path: Path, student: str = "ann") -> str:
    return (tmp_path / "run" / "feedback" / f"{student}.html").read_text(encoding="utf-8")


# ------------------------------------------------------------ hide / show hidden tests


def test_a_withheld_hidden_test_is_shown_as_source_not_shown_with_its_points() -> None:
    hidden = _cell(hide_hidden_tests(_withheld()), HIDDEN_CELL)
    assert SHOWN.fullmatch(hidden.source.strip()), hidden.source


def test_a_hidden_section_inside_a_test_cell_is_cut_and_the_visible_part_kept() -> None:
    hidden = _cell(hide_hidden_tests(graded_notebook()), HIDDEN_CELL)
    assert hidden.source.startswith("assert ex == 1\n") and SECRET not in hidden.source
    assert SHOWN.search(hidden.source)


def test_a_cell_that_is_not_a_test_keeps_text_naming_hidden_tests() -> None:
    nb = graded_notebook()
    nb.cells.append(new_code_cell("# BEGIN HIDDEN TESTS\nmine = 1\n# END HIDDEN TESTS\n"))
    assert hide_hidden_tests(copy.deepcopy(nb)).cells[-1].source == nb.cells[-1].source


def test_show_hidden_tests_puts_the_instructors_source_back() -> None:
    shown = show_hidden_tests(_withheld(), course_notebook())
    assert _cell(shown, HIDDEN_CELL).source == _cell(course_notebook(), HIDDEN_CELL).source
    assert [c.source for c in shown.cells[:3]] == [c.source for c in course_notebook().cells[:3]]


# ---------------------------------------------------------------------- write_feedback


def test_an_empty_class_has_no_pages(tmp_path: Path) -> None:
    course = _run(tmp_path, [])
    assert write_feedback(run_dir=tmp_path / "run", course=course).pages == ()


def test_a_run_folder_that_does_not_exist_is_a_clear_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-run"
    with pytest.raises(ValueError, match="no-such-run: no such run folder"):
        write_feedback(run_dir=missing, course=CourseDir.at(tmp_path / "course"))
    assert not missing.exists()


def test_pages_are_written_for_the_students_asked_for_only(tmp_path: Path) -> None:
    course = _run(tmp_path, [_record("ann"), _record("bo"), _record("cy")])
    result = write_feedback(run_dir=tmp_path / "run", course=course, students=["bo"])
    assert [p.name for p in result.pages] == ["bo.html"]
    assert not (tmp_path / "run" / "feedback" / "ann.html").exists()


def test_a_student_with_no_submissions_gets_no_page(tmp_path: Path) -> None:
    course = _run(tmp_path, [_record("ann")])
    assert write_feedback(run_dir=tmp_path / "run", course=course, students=["zed"]).pages == ()


def test_a_submission_that_was_not_graded_shows_no_score(tmp_path: Path) -> None:
    course = _run(tmp_path, [_record(status=Status.MISSING, score=None, reason="no notebook")])
    write_feedback(run_dir=tmp_path / "run", course=course)
    assert "<td>—</td><td>no notebook</td>" in _page(tmp_path)


def test_a_flagged_submission_shows_its_evidence_and_where(tmp_path: Path) -> None:
    evidence = Evidence("patched numpy", "cell 4, line 2")
    course = _run(tmp_path, [_record(status=Status.FLAGGED, score=0.0, evidence=[evidence])])
    write_feedback(run_dir=tmp_path / "run", course=course)
    assert "<td class='flagged'>flagged</td>" in _page(tmp_path)
    assert "evidence: patched numpy (cell 4, line 2)" in _page(tmp_path)


def test_only_the_first_line_of_a_note_is_shown(tmp_path: Path) -> None:
    course = _run(
        tmp_path,
        [_record(notes=["cell 3 was inserted", ""]), _record("bo", notes=["first\nTraceback: secret"])],
    )
    write_feedback(run_dir=tmp_path / "run", course=course)
    assert "<p><em>first</em></p>" in _page(tmp_path, "bo") and "Traceback" not in _page(tmp_path, "bo")


def test_text_a_student_controls_reaches_the_table_escaped(tmp_path: Path) -> None:
    ex = ExerciseScore(f"ex{IMAGE}", 0.0, 5.0, 0.0, False, f"raised {SCRIPT}", Outcome.COULD_NOT_RUN)
    course = _run(
        tmp_path, [_record(status=Status.FAILED, score=None, reason=f"kernel said {SCRIPT}", exercises=[ex])]
    )
    write_feedback(run_dir=tmp_path / "run", course=course)
    page = _page(tmp_path)
    assert SCRIPT not in page and IMAGE not in page
    assert "kernel said &lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_a_student_controls_in_the_notebook_is_inert_on_the_page(tmp_path: Path) -> None:
    nb = _withheld()
    nb.cells.append(new_markdown_cell(f"Look: {SCRIPT} {IMAGE} [x](javascript:alert(3))"))
    outputs = {"text/html": IMAGE, "application/javascript": "alert(4)", "text/plain": "shown"}
    nb.cells.append(new_code_cell("show()", outputs=[new_output("display_data", data=outputs)]))
    course = _run(tmp_path, [_record()], {"ann": nb})
    write_feedback(run_dir=tmp_path / "run", course=course)
    page = _page(tmp_path).lower()
    assert "<script" not in page and "onerror" not in page and "javascript:" not in page
    assert "alert(4)" not in page


def test_the_hidden_source_stays_off_the_page_unless_asked_for(tmp_path: Path) -> None:
    course = _run(tmp_path, [_record()], {"ann": _withheld()})
    course.source(ASSIGNMENT).parent.mkdir(parents=True)
    nbformat.write(course_notebook(), str(course.source(ASSIGNMENT)))
    write_feedback(run_dir=tmp_path / "run", course=course)
    hidden = _page(tmp_path)
    write_feedback(run_dir=tmp_path / "run", course=course, show_hidden=True)
    assert (SECRET in hidden, "source not shown" in hidden, SECRET in _page(tmp_path)) == (False, True, True)


def test_the_page_names_the_exercise_score_outcome_and_note(tmp_path: Path) -> None:
    ex = ExerciseScore("ex", 2.0, 5.0, 2.0, False, "returns 2 for 1", Outcome.WRONG)
    course = _run(tmp_path, [_record(exercises=[ex])])
    write_feedback(run_dir=tmp_path / "run", course=course)
    assert "<tr><td>ex</td><td>2 / 5</td><td>wrong</td><td>returns 2 for 1</td></tr>" in _page(tmp_path)
