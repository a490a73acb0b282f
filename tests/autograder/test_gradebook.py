"""The gradebook layer (``autograder.gradebook``), one question per test, in memory.

Results are built by hand from ``autograder.results`` types; the gradebook is a SQLite
file made by nbgrader's own ``SaveCells`` (``small_gradebook``) and every score is read
back through ``nbgrader.api.Gradebook``, never through the code under test.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from datetime import datetime
from pathlib import Path

import pytest
from small_gradebook import (
    ASSIGNMENT,
    HIDDEN_CELL,
    HIDDEN_POINTS,
    VISIBLE_CELL,
    VISIBLE_POINTS,
    graded_notebook,
    new_course,
    venv_path,
)

from autograder.gradebook import GradebookLock, Ledger, ensure_submission, merge_result
from autograder.pipeline import ExerciseScore, SubmissionResult
from autograder.results import Evidence, Outcome, Status

pytestmark = pytest.mark.filterwarnings("ignore:Object of type")  # nbgrader's SQLAlchemy autoflush chatter
WAIT_S = 5.0  # how long a thread may take to get a lock just released (a loaded 2-core machine)


@pytest.fixture(autouse=True)
def _alembic_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", venv_path())


def _flagged() -> SubmissionResult:
    """A flagged submission with one exercise, evidence in a cell, notes and timings."""
    evidence = Evidence("patched numpy", "cell 4, line 2", "np.allclose = ...", cell=4)
    exercise = ExerciseScore(
        "ex", 0.0, 5.0, 5.0, False, "the answer patched numpy", Outcome.TAMPERING, (evidence,), review=""
    )
    return SubmissionResult(
        student="mallory",
        assignment=ASSIGNMENT,
        status=Status.FLAGGED,
        reason="evidence of tampering",
        score=0.0,
        max_score=5.0,
        exercises=[exercise],
        evidence=[evidence],
        notes=["a cell was inserted"],
        digest="abc",
        seconds=1.5,
    )


def _graded(
    student: str = "alice", *, failed: tuple[str, ...] = (HIDDEN_CELL,), display: str = ""
) -> SubmissionResult:
    """A graded submission carrying its notebook: the cells in ``failed`` scored 0."""
    return SubmissionResult(
        student=student,
        assignment=ASSIGNMENT,
        status=Status.GRADED,
        score=VISIBLE_POINTS,
        max_score=VISIBLE_POINTS + HIDDEN_POINTS,
        notebook=graded_notebook(failed=failed),
        display=display,
    )


# --------------------------------------------------------------------------- Ledger


def test_a_result_written_to_the_ledger_reads_back_equal(tmp_path: Path) -> None:
    Ledger(tmp_path).write(_flagged())
    assert Ledger(tmp_path).read("mallory", ASSIGNMENT) == _flagged()


def test_a_notebook_not_named_after_its_assignment_has_its_own_ledger_file(tmp_path: Path) -> None:
    assert (
        Ledger(tmp_path).path("bob", "week1", "part2") == tmp_path / "ledger" / "bob" / "week1" / "part2.json"
    )
    assert Ledger(tmp_path).path("bob", "week1", "week1") == tmp_path / "ledger" / "bob" / "week1.json"


def test_the_ledger_stores_enum_values_and_not_the_notebook_or_evidence_cells(tmp_path: Path) -> None:
    result = _flagged()
    result.notebook = graded_notebook()
    Ledger(tmp_path).write(result)
    data = json.loads((tmp_path / "ledger" / "mallory" / f"{ASSIGNMENT}.json").read_text())
    assert "notebook" not in data
    assert (data["status"], data["exercises"][0]["outcome"]) == ("flagged", "tampering")
    assert data["evidence"] == [
        {"kind": "patched numpy", "where": "cell 4, line 2", "detail": "np.allclose = ..."}
    ]


def test_an_old_record_with_flags_and_no_outcome_reads_with_no_outcome(tmp_path: Path) -> None:
    old = {"student": "carol", "assignment": ASSIGNMENT, "status": "graded", "score": 1.0, "max_score": 2.0,
           "flags": ["looked odd"], "exercises": [{"name": "ex", "score": 1.0, "max_score": 2.0,
                                                   "nbgrader_score": 1.0, "verified": None}]}  # fmt: skip
    path = Ledger(tmp_path).path("carol", ASSIGNMENT)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    record = Ledger(tmp_path).read("carol", ASSIGNMENT)
    assert record is not None
    assert record.exercises == [ExerciseScore("ex", 1.0, 2.0, 1.0, None)]
    assert record.exercises[0].outcome is None and record.evidence == []


@pytest.mark.parametrize(
    "text", ["{", '{"student": "dan"}', '{"student": "dan", "assignment": "a1", "status": "odd"}']
)
def test_a_damaged_record_reads_as_nothing(tmp_path: Path, text: str) -> None:
    path = Ledger(tmp_path).path("dan", ASSIGNMENT)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert Ledger(tmp_path).read("dan", ASSIGNMENT) is None


def test_a_record_never_written_reads_as_nothing(tmp_path: Path) -> None:
    assert Ledger(tmp_path).read("nobody", ASSIGNMENT) is None


def test_the_ledger_of_an_empty_class_is_empty(tmp_path: Path) -> None:
    assert Ledger(tmp_path).all() == []


def test_the_ledger_lists_records_of_both_layouts(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.write(
        SubmissionResult(student="eve", assignment="week1", status=Status.MISSING, notebook_name="part2")
    )
    ledger.write(SubmissionResult(student="eve", assignment=ASSIGNMENT, status=Status.MISSING))
    assert sorted((r.student, r.key) for r in ledger.all()) == [("eve", ASSIGNMENT), ("eve", "week1/part2")]


# ---------------------------------------------------------------------- merge_result


def test_a_result_with_no_score_reaches_the_ledger_and_not_the_gradebook(tmp_path: Path) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    course = new_course(tmp_path / "course")
    missing = SubmissionResult(
        student="frank", assignment=ASSIGNMENT, status=Status.MISSING, reason="no notebook"
    )
    merge_result(missing, course=course, run_dir=tmp_path / "run")
    assert Ledger(tmp_path / "run").read("frank", ASSIGNMENT) == missing
    with Gradebook(course.db_url) as gb, pytest.raises(MissingEntry):
        gb.find_student("frank")


def test_merge_stores_each_cells_auto_score_in_nbgraders_gradebook(tmp_path: Path) -> None:
    from nbgrader.api import Gradebook

    course = new_course(tmp_path / "course")
    merge_result(_graded(), course=course, run_dir=tmp_path / "run")
    with Gradebook(course.db_url) as gb:
        visible = gb.find_grade(VISIBLE_CELL, ASSIGNMENT, ASSIGNMENT, "alice")
        hidden = gb.find_grade(HIDDEN_CELL, ASSIGNMENT, ASSIGNMENT, "alice")
        assert (visible.auto_score, hidden.auto_score) == (VISIBLE_POINTS, 0.0)
    assert course.autograded("alice", ASSIGNMENT).is_file()


def test_a_manual_score_survives_a_second_merge(tmp_path: Path) -> None:
    from nbgrader.api import Gradebook

    course = new_course(tmp_path / "course")
    merge_result(_graded(), course=course, run_dir=tmp_path / "run")
    with Gradebook(course.db_url) as gb:
        gb.find_grade(HIDDEN_CELL, ASSIGNMENT, ASSIGNMENT, "alice").manual_score = 1.5
        gb.db.commit()
    merge_result(_graded(failed=()), course=course, run_dir=tmp_path / "run")  # re-graded: now passes
    with Gradebook(course.db_url) as gb:
        hidden = gb.find_grade(HIDDEN_CELL, ASSIGNMENT, ASSIGNMENT, "alice")
        assert (hidden.manual_score, hidden.auto_score, hidden.score) == (1.5, HIDDEN_POINTS, 1.5)


def test_merge_records_the_lms_name_and_the_submissions_timestamp(tmp_path: Path) -> None:
    from nbgrader.api import Gradebook

    course = new_course(tmp_path / "course")
    when = datetime(2026, 11, 20, 10, 0, 0)
    merge_result(_graded(display="Alice Liddell"), course=course, run_dir=tmp_path / "run", timestamp=when)
    with Gradebook(course.db_url) as gb:
        assert gb.find_student("alice").last_name == "Alice Liddell"
        assert gb.find_submission(ASSIGNMENT, "alice").timestamp == when


# ----------------------------------------------------------------- ensure_submission


def test_ensure_submission_twice_makes_one_student_and_one_submission(tmp_path: Path) -> None:
    from nbgrader.api import Gradebook

    course = new_course(tmp_path / "course")
    with Gradebook(course.db_url) as gb:
        for _ in range(2):
            ensure_submission(gb, student="gina", assignment=ASSIGNMENT, display=None)
        assert [s.id for s in gb.students] == ["gina"]
        assert [s.student.id for s in gb.find_assignment(ASSIGNMENT).submissions] == ["gina"]


def test_ensure_submission_keeps_the_rosters_name_unless_the_lms_gives_one(tmp_path: Path) -> None:
    from nbgrader.api import Gradebook

    course = new_course(tmp_path / "course")
    with Gradebook(course.db_url) as gb:
        gb.add_student("hal", last_name="Roster Name")
        ensure_submission(gb, student="hal", assignment=ASSIGNMENT, display="")
        kept = gb.find_student("hal").last_name
        ensure_submission(gb, student="hal", assignment=ASSIGNMENT, display="LMS Name")
        assert (kept, gb.find_student("hal").last_name) == ("Roster Name", "LMS Name")


# -------------------------------------------------------------------- GradebookLock


def test_the_lock_keeps_another_thread_out_until_released(tmp_path: Path) -> None:
    entered = threading.Event()

    def other() -> None:
        with GradebookLock(tmp_path):
            entered.set()

    with GradebookLock(tmp_path):
        thread = threading.Thread(target=other)
        thread.start()
        waited = not entered.wait(0.3)
    thread.join(WAIT_S)
    assert waited and entered.is_set()


def test_the_lock_holds_an_flock_other_graders_see(tmp_path: Path) -> None:
    with GradebookLock(tmp_path) as lock:
        # flock belongs to an open file description: a second open is another grader's.
        fd = os.open(lock.path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(tmp_path / ".gradebook.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: taken at once
    finally:
        os.close(fd)
