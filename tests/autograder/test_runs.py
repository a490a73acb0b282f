"""Runs: idempotent, sequential == parallel, resumable, manual overrides kept,
two graders at once, the command line, the ledger format, and grader-side failures
(re-run once, retried by the next run, never erasing evidence)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

import tinycourse
from autograder import pipeline
from autograder.cli import format_table, main
from autograder.export import describe_submission
from autograder.gradebook import Ledger
from autograder.pipeline import ExerciseScore, SubmissionResult
from autograder.results import Evidence, Outcome, Status, Verdict, VerifyProblem
from tinycourse import SUPPORT, grade, make_class

pytestmark = pytest.mark.slow
STEM = tinycourse.STEM
SUBSET = ("partial", "patcher", "perfect")


def _scores(results) -> dict:
    return {(r.student, r.status): (r.score, [(e.name, e.score) for e in r.exercises]) for r in results}


def test_sequential_equals_parallel_and_reruns_are_idempotent(graded_class, tiny_course, tiny_solutions, tmp_path) -> None:
    parallel, _ = graded_class
    submissions = make_class(tiny_course, tmp_path / "class", SUBSET)
    sequential = grade(submissions, tmp_path / "run", tiny_solutions, workers=1)
    assert _scores(sequential.results) == _scores([r for r in parallel.results if r.student in SUBSET])

    resumed = grade(submissions, tmp_path / "run", tiny_solutions)
    assert resumed.resumed == len(SUBSET)
    assert _scores(resumed.results) == _scores(sequential.results)

    # A manual override made in the gradebook survives a forced re-grade.
    assert main(["override", "patcher", STEM, "test_square", "1", "--run-dir", str(tmp_path / "run")]) == 0
    again = grade(submissions, tmp_path / "run", tiny_solutions, force=True)
    assert again.resumed == 0
    assert _scores(again.results) == _scores(sequential.results)
    assert main(["export", "--run-dir", str(tmp_path / "run")]) == 0
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "run" / "grades.csv").open())}
    assert rows["patcher"][STEM] == "1" and rows["perfect"][STEM] == "9"


def test_two_graders_at_once_lose_no_updates(tiny_course, tiny_solutions, tmp_path) -> None:
    first = make_class(tiny_course, tmp_path / "a", ("perfect",))
    second = make_class(tiny_course, tmp_path / "b", ("partial",))
    run_dir = tmp_path / "run"
    grade(first, run_dir, tiny_solutions)  # creates the course directory and gradebook
    base = [sys.executable, "-m", "autograder", "grade", "--solutions", str(tiny_solutions), "--run-dir", str(run_dir),
            *[a for p in SUPPORT for a in ("--support", str(p))], "--workers", "1", "--force"]  # fmt: skip
    procs = [subprocess.Popen([*base, str(folder)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for folder in (first, second)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    from nbgrader.api import Gradebook

    from autograder.course import CourseDir

    with Gradebook(CourseDir.at(run_dir / "course").db_url) as gb:
        assert gb.find_submission_notebook(STEM, STEM, "perfect").score == 9.0
        assert gb.find_submission_notebook(STEM, STEM, "partial").score == 6.0


def test_cli_status_feedback_export(graded_class, capsys) -> None:
    run, _ = graded_class
    run_dir = str(run.run_dir)
    assert main(["status", "--run-dir", run_dir]) == 0
    out = capsys.readouterr().out
    assert "corrupt" in out and "unreadable" in out and "flagged" in out
    flagged_rows = [line for line in out.splitlines() if "  flagged  " in line]
    assert flagged_rows and all("evidence: " in line for line in flagged_rows)  # never a bare flag
    assert "flagged" not in next(line for line in out.splitlines() if line.startswith("perfect "))

    assert main(["feedback", "--run-dir", run_dir]) == 0
    page = (run.run_dir / "feedback" / "perfect.html").read_text()
    assert "hidden tests (2 points): source not shown" in page and "HIDDEN TESTS" not in page
    assert main(["feedback", "--show-hidden", "--run-dir", run_dir]) == 0
    assert "BEGIN HIDDEN TESTS" in (run.run_dir / "feedback" / "perfect.html").read_text()

    assert main(["export", "--run-dir", run_dir]) == 0
    rows = {r["student"]: r for r in csv.DictReader((run.run_dir / "grades.csv").open())}
    assert rows["corrupt"][STEM] == "" and rows["corrupt"][f"{STEM} status"] == "unreadable"
    assert rows["blank"][STEM] == "0"
    report = (run.run_dir / "report" / "index.html").read_text()
    assert "Flagged submissions" in report and "patcher" in report
    assert "reference reached (re-verification of square)" in report  # copycat's evidence, with where
    rows = list(csv.DictReader((run.run_dir / "submissions.csv").open()))
    crasher = {r["exercise"]: r for r in rows if r["student"] == "crasher"}
    assert crasher["softsign"]["outcome"] == "could not run" and "Restart the kernel" in crasher["softsign"]["note"]
    assert all(r["status"] != "flagged" or r["reason"].startswith("evidence: ") for r in rows)
    assert (run.run_dir / "report" / f"scores_01_{STEM}.png").stat().st_size > 1000  # one histogram per notebook
    assert "Per-exercise difficulty" in report and "Per student" in report


def test_grade_reports_missing_submissions_folder(tiny_solutions, tmp_path, capsys) -> None:
    code = main(["grade", str(tmp_path / "nope"), "--solutions", str(tiny_solutions), "--run-dir", str(tmp_path / "run"),
                 *[a for p in SUPPORT for a in ("--support", str(p))]])  # fmt: skip
    assert code == 2
    assert "no submissions" in capsys.readouterr().err


def _record() -> SubmissionResult:
    ev = Evidence("reference reached", "re-verification of square", "tiny_refs.reference_square")
    return SubmissionResult(
        "ann", STEM, Status.FLAGGED, "reference reached", 3.0, 9.0,
        [ExerciseScore("square", 0.0, 3.0, 3.0, False, "reference reached", Outcome.TAMPERING, (ev,)),
         ExerciseScore("answer_lr", 3.0, 3.0, 3.0, True, "", Outcome.VERIFIED, (), "tiny_refs.lr")],
        [ev], ["a note"], retry=True, digest="d",
    )  # fmt: skip


def test_ledger_round_trips_typed_fields(tmp_path) -> None:
    ledger = Ledger(tmp_path)
    ledger.write(_record())
    back = ledger.read("ann", STEM)
    assert back == _record()
    assert back.status is Status.FLAGGED and back.exercises[0].outcome is Outcome.TAMPERING
    data = json.loads(ledger.path("ann", STEM).read_text())
    assert data["status"] == "flagged" and data["exercises"][0]["outcome"] == "tampering"
    assert data["evidence"] == [{"kind": "reference reached", "where": "re-verification of square",
                                 "detail": "tiny_refs.reference_square"}]  # fmt: skip


def test_ledger_reads_records_from_before_outcomes(tmp_path) -> None:
    old = {"student": "bob", "assignment": STEM, "status": "flagged", "reason": "square: called the reference",
           "score": 0.0, "max_score": 9.0, "flags": ["square: called the reference"], "notes": [], "digest": "x",
           "seconds": 1.0, "execute_seconds": 1.0, "verify_seconds": 1.0,
           "exercises": [{"name": "square", "score": 0.0, "max_score": 3.0, "nbgrader_score": 3.0,
                          "verified": False, "note": "called"}]}  # fmt: skip
    ledger = Ledger(tmp_path)
    ledger.path("bob", STEM).parent.mkdir(parents=True)
    ledger.path("bob", STEM).write_text(json.dumps(old))
    back = ledger.read("bob", STEM)
    assert back.status is Status.FLAGGED and back.evidence == [] and back.retry is False
    assert back.exercises[0].outcome is None  # nothing inferred from the old prose
    assert "bob" in format_table([back])


def test_review_note_is_for_the_instructor_only() -> None:
    record = _record()
    assert "review: answer matches the library's reference (tiny_refs.lr)" in describe_submission(record, instructor=True)
    assert "review" not in describe_submission(record)
    assert describe_submission(record).startswith("evidence: reference reached (re-verification of square)")


def test_missing_reports_are_rerun_once_then_failed_for_retry_never_erasing_evidence(
    tiny_course, tiny_solutions, tmp_path, monkeypatch
) -> None:
    real, calls = pipeline.reverify, []

    def flaky(notebook, exercises, *, scratch, **kwargs):
        calls.append(scratch.name)
        student = scratch.name.split("__")[0]
        if student in ("partial", "patcher") or scratch.name.endswith("verify0"):
            return {ex.name: Verdict(ex.name, problem=VerifyProblem.NO_REPORT) for ex in exercises}
        return real(notebook, exercises, scratch=scratch, **kwargs)

    patched = Evidence("patched checks", "cell 2", "course_lib.checks._core")

    def scan(cells):  # the patcher's prefix, as the intake helper's scanner would see it
        return [patched for _, source in cells if "_core" in source]

    monkeypatch.setattr(pipeline, "reverify", flaky)
    monkeypatch.setattr(pipeline, "scan_cells", scan)
    submissions = make_class(tiny_course, tmp_path / "class", SUBSET)
    run = grade(submissions, tmp_path / "run", tiny_solutions)
    by = {r.student: r for r in run.results}
    assert sorted(calls) == sorted(f"{s}__{STEM}__verify{i}" for s in SUBSET for i in (0, 1))
    assert (by["perfect"].status, by["perfect"].score, by["perfect"].retry) == (Status.GRADED, 9.0, False)
    assert (by["partial"].status, by["partial"].score, by["partial"].retry) == (Status.FAILED, None, True)
    assert by["partial"].reason.startswith("grader error")
    assert (by["patcher"].status, by["patcher"].retry, by["patcher"].evidence) == (Status.FLAGGED, True, [patched])

    again = grade(submissions, tmp_path / "run", tiny_solutions)
    assert again.resumed == 1  # only perfect; the two with retry are graded again


def test_regrading_one_student_changes_nothing_else(tiny_course, tiny_solutions, tmp_path, capsys) -> None:
    """``grade --student NAME``: only that student is graded again (even unchanged), a
    manual override is kept, and every other record and gradebook score stays as it was."""
    from nbgrader.api import Gradebook

    from autograder.course import CourseDir

    submissions = make_class(tiny_course, tmp_path / "class", ("partial", "perfect"))
    run_dir = tmp_path / "run"
    grade(submissions, run_dir, tiny_solutions)
    assert main(["override", "perfect", STEM, "test_square", "0.5", "--run-dir", str(run_dir)]) == 0
    partial_before = Ledger(run_dir).path("partial", STEM).read_bytes()
    perfect_before = Ledger(run_dir).path("perfect", STEM).read_bytes()

    base = ["grade", str(submissions), "--solutions", str(tiny_solutions), "--run-dir", str(run_dir), "--workers", "1",
            *[a for p in SUPPORT for a in ("--support", str(p))]]  # fmt: skip
    assert main([*base, "--student", "perfect", "--assignment", STEM]) == 0
    out = capsys.readouterr().out
    assert "1 submissions" in out and "0 reused" in out  # graded again although nothing changed
    assert Ledger(run_dir).path("partial", STEM).read_bytes() == partial_before
    assert Ledger(run_dir).path("perfect", STEM).read_bytes() != perfect_before  # a new record (its timings)
    with Gradebook(CourseDir.at(run_dir / "course").db_url) as gb:
        assert gb.find_grade("test_square", STEM, STEM, "perfect").score == 0.5  # the override wins
        assert gb.find_submission_notebook(STEM, STEM, "partial").score == 6.0

    assert main([*base, "--student", "nobody-of-that-name"]) == 2
    assert "no submission from nobody-of-that-name" in capsys.readouterr().err
