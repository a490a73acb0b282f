"""Export step: the gradebook as CSV for the LMS, and an HTML report with PNG plots.

Scores come from nbgrader's gradebook, so manual overrides made there (formgrader,
``autograder override``) are what is exported; statuses and flags come from the
ledger. A submission that was not graded (missing, unreadable, failed) has an empty
score and its status — never a 0 that looks earned.

- ``grades.csv``: one row per student, one score column per assignment + total.
- ``submissions.csv``: one row per (student, assignment, exercise) with status, the
  exercise's outcome, what to fix, its evidence and the instructor-only review note.
- ``report/index.html`` with ``*.png``: score distribution per notebook and per
  exercise, status counts, the flagged submissions with their evidence, what could
  not run, answers to review, the sandbox's protections.

"Flagged" is rendered only from evidence, each piece with where it was found.
"""

from __future__ import annotations

import csv

from dataclasses import dataclass
from pathlib import Path

from autograder.course import CourseDir
from autograder.gradebook import Ledger
from autograder.pipeline import ExerciseScore, SubmissionResult
from autograder.results import Outcome, Status
from autograder.safe_output import csv_row, html_text

__all__ = ["ExportResult", "describe_submission", "export_grades", "gradebook_scores", "review_notes"]

_TO_FIX = (Outcome.WRONG, Outcome.COULD_NOT_RUN)


def _outcome(e: ExerciseScore) -> str:
    return "—" if e.outcome is None else str(e.outcome)


def review_notes(r: SubmissionResult) -> list[str]:
    """Instructor only: answers that reproduce the library's reference (never a flag)."""
    return [f"{e.name}: review: answer matches the library's reference ({e.review})" for e in r.exercises if e.review]


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
    plots: tuple[Path, ...]


def gradebook_scores(
    course: CourseDir, records: list[SubmissionResult], *, course_id: str = "default_course"
) -> dict[tuple[str, str], dict[str, float]]:
    """{(student, key): {grade_id: score}} from nbgrader (manual overrides win); ``key`` is
    ``SubmissionResult.key`` (the assignment, or ``assignment/notebook``)."""
    from nbgrader.api import Gradebook, MissingEntry

    out: dict[tuple[str, str], dict[str, float]] = {}
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


def export_grades(
    *, run_dir: Path, protections_summary: str = "", course: CourseDir | None = None, course_id: str = "default_course"
) -> ExportResult:
    """Write the CSVs and the report of ``run_dir``; scores from ``course``'s gradebook
    (default: the run folder's own course, ``<run_dir>/course``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir).resolve()
    course = course or CourseDir.at(run_dir / "course")
    records = Ledger(run_dir).all()
    saved = run_dir / "protections.txt"
    if not protections_summary and saved.exists():
        protections_summary = saved.read_text().strip()
    scores = gradebook_scores(course, records, course_id=course_id)
    assignments = sorted({r.key for r in records})
    students = sorted({r.student for r in records})
    by_key = {(r.student, r.key): r for r in records}
    names = {r.student: r.display for r in records if r.display}

    def total(r: SubmissionResult) -> float | None:
        if r.score is None:
            return None
        grades = scores.get((r.student, r.key))
        return sum(grades.values()) if grades is not None else r.score

    grades_csv = run_dir / "grades.csv"
    with grades_csv.open("w", newline="", encoding="utf-8", errors="replace") as fh:
        w = csv.writer(fh)
        w.writerow(csv_row(["student", "name", *assignments, "total", *[f"{a} status" for a in assignments]]))
        for s in students:
            row_scores, statuses, tot = [], [], 0.0
            for a in assignments:
                r = by_key.get((s, a))
                t = total(r) if r else None
                row_scores.append("" if t is None else f"{t:g}")
                statuses.append(str(r.status) if r else "missing")
                tot += t or 0.0
            w.writerow(csv_row([s, names.get(s, s), *row_scores, f"{tot:g}", *statuses]))

    submissions_csv = run_dir / "submissions.csv"
    with submissions_csv.open("w", newline="", encoding="utf-8", errors="replace") as fh:
        w = csv.writer(fh)
        w.writerow(csv_row(["student", "name", "assignment", "status", "reason", "exercise", "score", "max_score", "verified",
                    "outcome", "note", "evidence", "review"]))  # fmt: skip
        for r in records:
            grades = scores.get((r.student, r.key), {})
            why = describe_submission(r)
            if not r.exercises:
                w.writerow(csv_row([r.student, r.display or r.student, r.key, r.status, why, "", "", r.max_score, "", "", "", "", ""]))
            for e in r.exercises:
                manual = sum(v for k, v in grades.items() if _exercise_of(k) == e.name) if grades else e.score
                evidence = "; ".join(str(x) for x in e.evidence)
                review = f"answer matches the library's reference ({e.review})" if e.review else ""
                w.writerow(csv_row([r.student, r.display or r.student, r.key, r.status, why, e.name, f"{manual:g}", f"{e.max_score:g}",
                            e.verified, _outcome(e), e.note, evidence, review]))  # fmt: skip

    report_dir = run_dir / "report"
    report_dir.mkdir(exist_ok=True)
    plots = []
    if assignments:
        fig, axes = plt.subplots(1, len(assignments), figsize=(3.2 * len(assignments), 2.8), squeeze=False)
        for ax, a in zip(axes[0], assignments, strict=True):
            vals = [t for r in records if r.key == a and (t := total(r)) is not None]
            maxes = [r.max_score for r in records if r.key == a and r.max_score]
            ax.hist(vals, bins=10, range=(0, max(maxes or [1])), color="#4477aa")
            ax.set_title(a, fontsize=9)
            ax.set_xlabel("score")
        axes[0][0].set_ylabel("students")
        fig.tight_layout()
        plots.append(report_dir / "scores_per_notebook.png")
        fig.savefig(plots[-1], dpi=80)
        plt.close(fig)

        names, fractions = [], []
        for a in assignments:
            per: dict[str, list[float]] = {}
            for r in records:
                if r.key == a and r.score is not None:
                    for e in r.exercises:
                        if e.max_score:
                            per.setdefault(e.name, []).append(e.score / e.max_score)
            for name, vals in per.items():
                names.append(f"{a}:{name}")
                fractions.append(sum(vals) / len(vals))
        fig, ax = plt.subplots(figsize=(6, 0.25 * len(names) + 1))
        ax.barh(names, fractions, color="#66aa55")
        ax.set_xlim(0, 1)
        ax.set_xlabel("mean fraction of points")
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        plots.append(report_dir / "scores_per_exercise.png")
        fig.savefig(plots[-1], dpi=80)
        plt.close(fig)

    counts: dict[str, int] = {}
    for r in records:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    flagged = [r for r in records if r.status is Status.FLAGGED]
    problems = [r for r in records if r.status in (Status.FAILED, Status.TIMED_OUT, Status.MISSING, Status.UNREADABLE)]
    to_fix = [(r, e) for r in records for e in r.exercises if e.outcome in _TO_FIX]
    review = [(r, e) for r in records for e in r.exercises if e.review]
    parts = [
        "<!doctype html><meta charset=utf-8><title>Grading report</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
        "table{border-collapse:collapse}</style>",
        "<h1>Grading report</h1>",
        f"<p><b>Sandbox:</b> {html_text(protections_summary or 'see the grading log')}</p>",
        "<p>" + ", ".join(f"{html_text(k)}: {v}" for k, v in sorted(counts.items())) + "</p>",
        *[f"<h2>{p.stem.replace('_', ' ')}</h2><img src='{p.name}'>" for p in plots],
        "<h2>Flagged submissions</h2>",
        _table(flagged) if flagged else "<p>None.</p>",
        "<h2>Not graded or cut short</h2>",
        _table(problems) if problems else "<p>None.</p>",
        "<h2>Exercises that were wrong or could not run</h2>",
        _exercise_table(to_fix, lambda e: e.note) if to_fix else "<p>None.</p>",
        "<h2>To review (not flagged)</h2>",
        _exercise_table(review, lambda e: f"answer matches the library's reference ({e.review})") if review else "<p>None.</p>",
    ]
    report = report_dir / "index.html"
    report.write_text("\n".join(parts), encoding="utf-8", errors="replace")
    return ExportResult(grades_csv, submissions_csv, report, tuple(plots))


def _table(records: list[SubmissionResult]) -> str:
    rows = "".join(
        f"<tr><td>{html_text(r.student)}</td><td>{html_text(r.key)}</td>"
        f"<td>{html_text(str(r.status))}</td><td>{html_text(describe_submission(r))}</td></tr>"
        for r in records
    )
    return f"<table><tr><th>student</th><th>notebook</th><th>status</th><th>why</th></tr>{rows}</table>"


def _exercise_table(rows: list[tuple[SubmissionResult, ExerciseScore]], text) -> str:
    body = "".join(
        f"<tr><td>{html_text(r.student)}</td><td>{html_text(r.key)}</td><td>{html_text(e.name)}</td>"
        f"<td>{html_text(_outcome(e))}</td><td>{html_text(text(e))}</td></tr>"
        for r, e in rows
    )
    return f"<table><tr><th>student</th><th>notebook</th><th>exercise</th><th>outcome</th><th>note</th></tr>{body}</table>"
