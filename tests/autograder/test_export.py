"""The export layer (``autograder.export``), one question per test, in memory.

Ledger records are built by hand; the gradebook's scores, manual overrides included,
are put in with nbgrader's own API (``small_gradebook`` and ``nbgrader.api.Gradebook``),
so every expected cell of the CSVs is hand-derived from those numbers.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from small_gradebook import (
    ASSIGNMENT,
    HIDDEN_CELL,
    HIDDEN_POINTS,
    VISIBLE_CELL,
    VISIBLE_POINTS,
    new_course,
    venv_path,
)

from autograder.course import CourseDir
from autograder.export import describe_submission, export_grades, gradebook_scores, review_notes
from autograder.gradebook import Ledger
from autograder.pipeline import ExerciseScore, SubmissionResult
from autograder.results import Evidence, Outcome, Status

pytestmark = pytest.mark.filterwarnings("ignore:Object of type")  # nbgrader's SQLAlchemy autoflush chatter

EVIDENCE = Evidence("patched numpy", "cell 4, line 2", "np.allclose = ...")
MAX = VISIBLE_POINTS + HIDDEN_POINTS


@pytest.fixture(autouse=True)
def _alembic_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", venv_path())


def _exercise(outcome: Outcome, score: float, note: str = "", review: str = "") -> ExerciseScore:
    return ExerciseScore("ex", score, MAX, score, outcome is Outcome.VERIFIED, note, outcome, review=review)


def _record(student: str, status: Status = Status.GRADED, *, score: float | None = VISIBLE_POINTS,
            assignment: str = ASSIGNMENT, exercises: tuple[ExerciseScore, ...] = (), **kw) -> SubmissionResult:  # fmt: skip
    return SubmissionResult(
        student=student,
        assignment=assignment,
        status=status,
        score=score,
        max_score=MAX,
        exercises=list(exercises),
        **kw,
    )


def _in_gradebook(course: CourseDir, student: str, *, auto: float, manual: float | None = None) -> None:
    """``student``'s submission in nbgrader's gradebook: the visible test ``auto`` points,
    the hidden test 0 auto points and, given, ``manual`` points set by the instructor."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        gb.add_student(student)
        gb.add_submission(ASSIGNMENT, student)
        gb.find_grade(VISIBLE_CELL, ASSIGNMENT, ASSIGNMENT, student).auto_score = auto
        hidden = gb.find_grade(HIDDEN_CELL, ASSIGNMENT, ASSIGNMENT, student)
        hidden.auto_score, hidden.manual_score = 0.0, manual
        gb.db.commit()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _export(tmp_path: Path, records: list[SubmissionResult], course: CourseDir | None = None):
    (tmp_path / "run").mkdir()  # as ``grade`` leaves it, even for a class with no submissions
    for r in records:
        Ledger(tmp_path / "run").write(r)
    return export_grades(run_dir=tmp_path / "run", course=course or new_course(tmp_path / "course"))


# ------------------------------------------------------------- describe_submission


def test_a_flagged_submission_is_described_by_its_evidence_and_where() -> None:
    flagged = _record(
        "mallory", Status.FLAGGED, score=0.0, evidence=[EVIDENCE], reason="ignored when flagged"
    )
    assert describe_submission(flagged) == "evidence: patched numpy (cell 4, line 2): np.allclose = ..."


def test_a_graded_submission_says_what_to_fix_per_wrong_exercise_only() -> None:
    wrong = _exercise(Outcome.WRONG, 0.0, "returns 2 for 1")
    right = ExerciseScore("other", 1.0, 1.0, 1.0, True, "", Outcome.VERIFIED)
    assert describe_submission(_record("ann", exercises=(wrong, right))) == "ex wrong: returns 2 for 1"


def test_a_failed_submission_is_described_by_its_reason() -> None:
    assert (
        describe_submission(_record("ann", Status.FAILED, score=None, reason="kernel died")) == "kernel died"
    )


def test_review_notes_are_for_the_instructor_only() -> None:
    copied = _record("ann", exercises=(_exercise(Outcome.VERIFIED, MAX, review="reference_ex"),))
    note = "ex: review: answer matches the library's reference (reference_ex)"
    assert (review_notes(copied), describe_submission(copied), describe_submission(copied, instructor=True)) == (
        [note], "", note,
    )  # fmt: skip


# ----------------------------------------------------------------- gradebook_scores


def test_gradebook_scores_are_nbgraders_with_the_manual_score_winning(tmp_path: Path) -> None:
    course = new_course(tmp_path / "course")
    _in_gradebook(course, "ann", auto=VISIBLE_POINTS, manual=1.5)
    scores = gradebook_scores(course, [_record("ann")])
    assert scores == {("ann", ASSIGNMENT): {VISIBLE_CELL: VISIBLE_POINTS, HIDDEN_CELL: 1.5}}


def test_gradebook_scores_skip_what_was_not_graded_or_not_in_the_gradebook(tmp_path: Path) -> None:
    course = new_course(tmp_path / "course")
    _in_gradebook(course, "ann", auto=VISIBLE_POINTS)
    records = [_record("ann", Status.FAILED, score=None), _record("bo")]  # bo: in the ledger only
    assert gradebook_scores(course, records) == {}


# --------------------------------------------------------------------- export_grades


def test_an_empty_class_exports_headers_only(tmp_path: Path) -> None:
    result = _export(tmp_path, [])
    assert result.grades_csv.read_text().splitlines() == ["student,name,total"]
    assert len(result.submissions_csv.read_text().splitlines()) == 1
    assert result.report.is_file()


def test_a_manual_score_in_the_gradebook_is_the_exported_score(tmp_path: Path) -> None:
    course = new_course(tmp_path / "course")
    _in_gradebook(course, "ann", auto=VISIBLE_POINTS, manual=1.5)
    ex = _exercise(Outcome.WRONG, VISIBLE_POINTS, "hidden case wrong")
    result = _export(tmp_path, [_record("ann", exercises=(ex,))], course)
    [row] = _rows(result.grades_csv)
    [exercise] = _rows(result.submissions_csv)
    assert (row[ASSIGNMENT], row["total"], exercise["score"]) == ("3.5", "3.5", "3.5")  # 2 auto + 1.5 manual


def test_a_student_with_no_submission_of_an_assignment_is_blank_and_missing(tmp_path: Path) -> None:
    records = [
        _record("ann", score=4.0, assignment="a2"),
        _record("ann", score=1.0),
        _record("bo", score=1.0),
    ]
    rows = {r["student"]: r for r in _rows(_export(tmp_path, records).grades_csv)}
    assert (rows["bo"]["a2"], rows["bo"]["a2 status"], rows["bo"]["total"]) == ("", "missing", "1")
    assert (rows["ann"]["a2"], rows["ann"]["total"]) == ("4", "5")


@pytest.mark.parametrize("status", [Status.FAILED, Status.TIMED_OUT, Status.UNREADABLE, Status.MISSING])
def test_a_submission_that_was_not_graded_has_no_score_never_a_zero(tmp_path: Path, status: Status) -> None:
    [row] = _rows(_export(tmp_path, [_record("ann", status, score=None, reason="why")]).grades_csv)
    assert (row[ASSIGNMENT], row[f"{ASSIGNMENT} status"]) == ("", str(status))


def test_a_flagged_submission_is_exported_with_its_evidence(tmp_path: Path) -> None:
    ex = ExerciseScore("ex", 0.0, MAX, MAX, False, "patched", Outcome.TAMPERING, (EVIDENCE,))
    flagged = _record("mallory", Status.FLAGGED, score=0.0, exercises=(ex,), evidence=[EVIDENCE])
    [row] = _rows(_export(tmp_path, [flagged]).submissions_csv)
    assert (row["status"], row["outcome"], row["score"]) == ("flagged", "tampering", "0")
    assert row["reason"] == row["evidence"].join(("evidence: ", "")) == f"evidence: {EVIDENCE}"


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_a_name_a_student_controls_never_starts_a_spreadsheet_formula(tmp_path: Path, start: str) -> None:
    name = f'{start}HYPERLINK("http://evil.example","click")'
    [row] = _rows(_export(tmp_path, [_record("ann", display=name)]).grades_csv)
    assert row["name"] == "'" + name


def test_a_note_a_student_controls_stays_in_its_cell_and_row(tmp_path: Path) -> None:
    # An exception message the student raised: a newline must not start a forged row.
    note = "bad\nmallory,Mallory,a1,9,9\r=1+1"
    result = _export(tmp_path, [_record("ann", exercises=(_exercise(Outcome.WRONG, 0.0, note),))])
    lines = result.submissions_csv.read_text(encoding="utf-8").splitlines()
    [row] = _rows(result.submissions_csv)
    assert len(lines) == 2 and row["note"] == "bad\\x0amallory,Mallory,a1,9,9\\x0d=1+1"


def test_a_run_folder_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no-such-run"):
        export_grades(run_dir=tmp_path / "no-such-run", course=new_course(tmp_path / "course"))
