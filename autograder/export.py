"""Export step: the gradebook as CSV for the LMS, and an HTML report with PNG plots.

Scores come from nbgrader's gradebook, so manual overrides made there (formgrader,
``autograder override``) are what is exported; statuses and flags come from the
ledger. A submission that was not graded (missing, unreadable, failed) has an empty
score and its status — never a 0 that looks earned.

- ``grades.csv``: one row per student, one score column per assignment + total.
- ``submissions.csv``: one row per (student, assignment, exercise) with status, the
  exercise's outcome, what to fix, its evidence and the instructor-only review note.
- ``report/index.html`` with one ``*.png`` histogram per notebook (``autograder.report``):
  status counts, per-exercise difficulty, the flagged submissions with their evidence,
  the per-student table, what could not run, answers to review, the sandbox's protections.

"Flagged" is rendered only from evidence, each piece with where it was found.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from autograder.course import CourseDir
from autograder.gradebook import Ledger, existing_run_dir
from autograder.nbcourse import column_keys
from autograder.pipeline import ExerciseScore, SubmissionResult
from autograder.report import write_report
from autograder.results import Outcome, Status
from autograder.safe_output import csv_row

__all__ = ["ExportResult", "describe_submission", "export_grades", "gradebook_scores", "review_notes"]

_TO_FIX = (Outcome.WRONG, Outcome.COULD_NOT_RUN)
Scores = dict[tuple[str, str], dict[str, float]]  # (student, key) -> {grade_id: score} from nbgrader


def _outcome(e: ExerciseScore) -> str:
    return "—" if e.outcome is None else str(e.outcome)


def review_notes(r: SubmissionResult) -> list[str]:
    """Instructor only: answers that reproduce the library's reference (never a flag)."""
    return [
        f"{e.name}: review: answer matches the library's reference ({e.review})"
        for e in r.exercises
        if e.review
    ]


def describe_submission(r: SubmissionResult, *, instructor: bool = False) -> str:
    """Why a submission has its status: the evidence (with where) when flagged; otherwise
    the run's reason and, per exercise that was wrong or could not run, what to fix."""
    if r.status is Status.FLAGGED:
        parts = ["evidence: " + "; ".join(str(e) for e in r.evidence)]
    else:
        parts = [r.reason] if r.reason else []
        parts += [f"{e.name} {e.outcome}: {e.note}" for e in r.exercises if e.outcome in _TO_FIX]
    if instructor:
        parts += review_notes(r)
    return "; ".join(p for p in parts if p)


@dataclass(frozen=True)
class ExportResult:
    grades_csv: Path
    submissions_csv: Path
    report: Path
    plots: tuple[Path, ...]  # the score histograms, one per notebook


def gradebook_scores(
    course: CourseDir, records: list[SubmissionResult], *, course_id: str = "default_course"
) -> Scores:
    """{(student, key): {grade_id: score}} from nbgrader (manual overrides win); ``key`` is
    ``SubmissionResult.key`` (the assignment, or ``assignment/notebook``)."""
    from nbgrader.api import Gradebook, MissingEntry

    out: Scores = {}
    with Gradebook(course.db_url, course_id) as gb:
        for r in records:
            if r.score is None:
                continue
            try:
                nb = gb.find_submission_notebook(r.notebook_id, r.assignment, r.student)
            except MissingEntry:
                continue
            out[(r.student, r.key)] = {g.name: float(g.score or 0.0) for g in nb.grades}
    return out


def _exercise_of(grade_id: str) -> str:
    return grade_id.removeprefix("test_").removesuffix("_hidden")


def _saved_protections(run_dir: Path, given: str) -> str:
    """``given``, or else what the grading run wrote to ``RUN/protections.txt`` (or "")."""
    saved = run_dir / "protections.txt"
    if not given and saved.exists():
        return saved.read_text().strip()
    return given


def _total(r: SubmissionResult, scores: Scores) -> float | None:
    """The submission's score: the gradebook's (manual overrides win), else the ledger's;
    None when it was not graded."""
    if r.score is None:
        return None
    grades = scores.get((r.student, r.key))
    return sum(grades.values()) if grades is not None else r.score


def _write_grades_csv(path: Path, records: list[SubmissionResult], scores: Scores) -> Path:
    """``grades.csv``: one row per student, a score and a status column per assignment."""
    assignments = column_keys(records)  # never a column for entries that are not assignments
    students = sorted({r.student for r in records})
    by_key = {(r.student, r.key): r for r in records}
    names = {r.student: r.display for r in records if r.display}
    with path.open("w", newline="", encoding="utf-8", errors="replace") as fh:
        w = csv.writer(fh)
        w.writerow(csv_row(["student", "name", *assignments, "total", *[f"{a} status" for a in assignments]]))
        for s in students:
            row_scores, statuses, tot = [], [], 0.0
            for a in assignments:
                r = by_key.get((s, a))
                t = _total(r, scores) if r else None
                row_scores.append("" if t is None else f"{t:g}")
                statuses.append(str(r.status) if r else "missing")
                tot += t or 0.0
            w.writerow(csv_row([s, names.get(s, s), *row_scores, f"{tot:g}", *statuses]))
    return path


def _write_submissions_csv(path: Path, records: list[SubmissionResult], scores: Scores) -> Path:
    """``submissions.csv``: one row per (student, assignment, exercise); a submission with no
    exercise graded has one row with its status and reason."""
    with path.open("w", newline="", encoding="utf-8", errors="replace") as fh:
        w = csv.writer(fh)
        w.writerow(csv_row(["student", "name", "assignment", "status", "reason", "exercise", "score", "max_score", "verified",
                    "outcome", "note", "evidence", "review"]))  # fmt: skip
        for r in records:
            grades = scores.get((r.student, r.key), {})
            why = describe_submission(r)
            if not r.exercises:
                w.writerow(csv_row([r.student, r.display or r.student, r.key, r.status, why, "", "", r.max_score,
                                    "", "", "", "", ""]))  # fmt: skip
            for e in r.exercises:
                manual = sum(v for k, v in grades.items() if _exercise_of(k) == e.name) if grades else e.score
                evidence = "; ".join(str(x) for x in e.evidence)
                review = f"answer matches the library's reference ({e.review})" if e.review else ""
                w.writerow(csv_row([r.student, r.display or r.student, r.key, r.status, why, e.name, f"{manual:g}", f"{e.max_score:g}",
                            e.verified, _outcome(e), e.note, evidence, review]))  # fmt: skip
    return path


def export_grades(
    *,
    run_dir: Path,
    protections_summary: str = "",
    course: CourseDir | None = None,
    course_id: str = "default_course",
) -> ExportResult:
    """Write the CSVs and the report of ``run_dir``; scores from ``course``'s gradebook
    (default: the run folder's own course, ``<run_dir>/course``)."""
    run_dir = existing_run_dir(run_dir)
    course = course or CourseDir.at(run_dir / "course")
    records = Ledger(run_dir).all()
    scores = gradebook_scores(course, records, course_id=course_id)
    grades_csv = _write_grades_csv(run_dir / "grades.csv", records, scores)
    submissions_csv = _write_submissions_csv(run_dir / "submissions.csv", records, scores)
    report = write_report(report_dir=run_dir / "report", records=records, score_of=lambda r: _total(r, scores),
                          describe=describe_submission,
                          protections_summary=_saved_protections(run_dir, protections_summary))  # fmt: skip
    return ExportResult(grades_csv, submissions_csv, report.page, report.histograms)
