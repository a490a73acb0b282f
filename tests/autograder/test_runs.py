"""Runs: idempotent, sequential == parallel, resumable, manual overrides kept,
two graders at once, and the command line."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import tinycourse
from autograder.cli import main
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
    assert (run.run_dir / "report" / "scores_per_notebook.png").stat().st_size > 1000
    assert (run.run_dir / "report" / "scores_per_exercise.png").exists()


def test_grade_reports_missing_submissions_folder(tiny_solutions, tmp_path, capsys) -> None:
    code = main(["grade", str(tmp_path / "nope"), "--solutions", str(tiny_solutions), "--run-dir", str(tmp_path / "run"),
                 *[a for p in SUPPORT for a in ("--support", str(p))]])  # fmt: skip
    assert code == 2
    assert "no submissions" in capsys.readouterr().err
