"""The class report: one HTML page (``report/index.html``) and a PNG histogram per notebook.

Laid out for any class size, 1 notebook or 20, without horizontal scrolling at a laptop's
width: the histograms sit in a CSS grid that wraps, the tables wrap their text and the
per-student table has fixed-width columns. The page carries no script, loads nothing
from the network, and shows every student-controlled text through ``html_text``.

Sections: the sandbox's protections and status counts; score histograms (one per
notebook); per-exercise difficulty (``exercise_difficulty``); the flagged submissions with
each piece of evidence and where it was found; the per-student table (``student_rows``);
what was not graded; the exercises that were wrong or could not run; answers to review.

The numbers are computed by the pure functions below from ledger records (tested in
memory); ``write_report`` only renders them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder.nbcourse import column_keys
from autograder.pipeline import ExerciseScore, SubmissionResult
from autograder.results import Outcome, Status
from autograder.safe_output import html_text

__all__ = [
    "ExerciseDifficulty",
    "ReportResult",
    "ScoreCell",
    "StudentRow",
    "exercise_difficulty",
    "student_rows",
    "write_report",
]

_TO_FIX = (Outcome.WRONG, Outcome.COULD_NOT_RUN)
_NOT_GRADED = (Status.FAILED, Status.TIMED_OUT, Status.MISSING, Status.UNREADABLE)


@dataclass(frozen=True)
class ExerciseDifficulty:
    """One exercise over the class: how many points it earned and how it went.

    Counted over the submissions that were scored (graded or flagged) and hold the
    exercise; the shares are fractions of those submissions, in [0, 1].
    """

    assignment: str
    exercise: str
    submissions: int
    mean_score: float
    max_score: float
    verified: float
    wrong: float
    could_not_run: float


def exercise_difficulty(records: Sequence[SubmissionResult]) -> list[ExerciseDifficulty]:
    """Per (assignment, exercise), in assignment order then the notebook's exercise order."""
    groups: dict[tuple[str, str], list[ExerciseScore]] = {}
    for r in sorted(records, key=lambda r: r.key):
        if r.score is None:
            continue  # not graded: its exercises earned nothing and say nothing about difficulty
        for e in r.exercises:
            groups.setdefault((r.key, e.name), []).append(e)
    out = []
    for (assignment, name), scores in groups.items():
        n = len(scores)
        out.append(ExerciseDifficulty(
            assignment, name, n,
            mean_score=sum(e.score for e in scores) / n,
            max_score=max(e.max_score for e in scores),
            verified=sum(e.outcome is Outcome.VERIFIED for e in scores) / n,
            wrong=sum(e.outcome is Outcome.WRONG for e in scores) / n,
            could_not_run=sum(e.outcome is Outcome.COULD_NOT_RUN for e in scores) / n,
        ))  # fmt: skip
    return out


@dataclass(frozen=True)
class ScoreCell:
    """One (student, notebook): its score (None when not graded) and status (None: no record)."""

    score: float | None
    status: Status | None


@dataclass(frozen=True)
class StudentRow:
    student: str
    name: str  # as the LMS gave it; the key when it gave none
    cells: tuple[ScoreCell, ...]  # one per assignment, in the report's assignment order
    total: float  # the sum of the scores that exist (a notebook not graded adds 0)


def student_rows(
    records: Sequence[SubmissionResult],
    assignments: Sequence[str],
    score_of: Callable[[SubmissionResult], float | None],
) -> list[StudentRow]:
    """One row per student (sorted by key), one cell per assignment; ``score_of`` gives a
    submission's score (the export passes the gradebook's, with manual overrides)."""
    by_key = {(r.student, r.key): r for r in records}
    names = {r.student: r.display for r in records if r.display}
    rows = []
    for student in sorted({r.student for r in records}):
        cells = []
        for a in assignments:
            r = by_key.get((student, a))
            cells.append(ScoreCell(None, None) if r is None else ScoreCell(score_of(r), Status(r.status)))
        total = sum(c.score for c in cells if c.score is not None)
        rows.append(StudentRow(student, names.get(student, student), tuple(cells), total))
    return rows


@dataclass(frozen=True)
class ReportResult:
    page: Path
    histograms: tuple[Path, ...]  # one per assignment, in order


_CSS = """<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:100%;box-sizing:border-box}
table{border-collapse:collapse;max-width:100%}td,th{border:1px solid #ccc;padding:.2rem .4rem;text-align:left;
vertical-align:top;overflow-wrap:anywhere}th{background:#f3f3f3}
.hists{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:.8rem}
.hists figure{margin:0;border:1px solid #ddd;padding:.3rem}.hists img{width:100%;height:auto;display:block}
.hists figcaption{font-size:.85rem;overflow-wrap:anywhere}
td.num{text-align:right;white-space:nowrap}meter{width:4rem;vertical-align:middle}
table.students{table-layout:fixed;width:100%;font-size:.8rem}table.students th{font-weight:600;font-size:.7rem}
table.students col.who{width:11rem}table.students col.total{width:3.5rem}
table.students td.flagged{background:#fbe3e3}table.students td.none{color:#888;text-align:center;background:#f4f4f4}
ul.evidence{margin:0;padding-left:1.1rem}.legend{font-size:.85rem;color:#444}
</style>"""


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def _slug(index: int, assignment: str) -> str:
    """A file name for the assignment's histogram: its index keeps it unique whatever the name."""
    return f"scores_{index:02d}_{re.sub(r'[^A-Za-z0-9_.-]', '_', assignment)[:60]}.png"


def _histograms(report_dir: Path, records: Sequence[SubmissionResult], assignments: Sequence[str],
                score_of: Callable[[SubmissionResult], float | None]) -> list[tuple[Path, str]]:  # fmt: skip
    """One small PNG per assignment: (path, caption)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for i, a in enumerate(assignments, start=1):
        mine = [r for r in records if r.key == a]
        vals = [s for r in mine if (s := score_of(r)) is not None]
        top = max([r.max_score for r in mine if r.max_score] or [1.0])
        fig, ax = plt.subplots(figsize=(3.2, 2.2))
        ax.hist(vals, bins=10, range=(0, top), color="#4477aa")
        ax.set_xlabel("score")
        ax.set_ylabel("students")
        fig.tight_layout()
        path = report_dir / _slug(i, a)
        fig.savefig(path, dpi=80)
        plt.close(fig)
        mean = f", mean {sum(vals) / len(vals):.3g} / {top:g}" if vals else ""
        out.append((path, f"{a}: {len(vals)} scored of {len(mine)}{mean}"))
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "", cols: str = "") -> str:
    """A table of already-escaped cells (``cols``: its ``<colgroup>``, when widths are set)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f"<table{f' class={cls}' if cls else ''}>{cols}<tr>{head}</tr>{body}</table>"


def _difficulty_table(rows: Sequence[ExerciseDifficulty]) -> str:
    return _table(
        ["notebook", "exercise", "scored", "mean / max", "verified", "wrong", "could not run"],
        [[f"<td>{html_text(d.assignment)}</td>", f"<td>{html_text(d.exercise)}</td>", f"<td class=num>{d.submissions}</td>",
          f"<td class=num><meter min=0 max=1 value='{d.mean_score / d.max_score if d.max_score else 0:.3f}'></meter> "
          f"{d.mean_score:.3g} / {d.max_score:g}</td>",
          f"<td class=num>{_pct(d.verified)}</td>", f"<td class=num>{_pct(d.wrong)}</td>",
          f"<td class=num>{_pct(d.could_not_run)}</td>"] for d in rows],
    )  # fmt: skip


def _flagged_table(flagged: Sequence[SubmissionResult]) -> str:
    def evidence(r: SubmissionResult) -> str:
        items = r.evidence or [x for e in r.exercises for x in e.evidence]
        return "<ul class=evidence>" + "".join(f"<li>{html_text(str(x))}</li>" for x in items) + "</ul>"

    return _table(["student", "notebook", "evidence (where it was found)"],
                  [[f"<td>{html_text(r.student)}</td>", f"<td>{html_text(r.key)}</td>", f"<td>{evidence(r)}</td>"]
                   for r in flagged])  # fmt: skip


# Not-graded statuses as one letter (a column of 20 notebooks is ~3 characters wide); the
# legend spells them out and each cell's title holds the full word.
_SHORT = {Status.MISSING: "M", Status.FAILED: "F", Status.TIMED_OUT: "T", Status.UNREADABLE: "U"}


def _student_cell(c: ScoreCell) -> str:
    if c.status is None:
        return "<td class=none title='no submission record'>·</td>"
    if c.score is None:
        return f"<td class=none title='{html_text(str(c.status))}'>{_SHORT.get(c.status, '?')}</td>"
    flag = " class='num flagged'" if c.status is Status.FLAGGED else " class=num"
    return f"<td{flag}>{c.score:g}</td>"


def _student_table(rows: Sequence[StudentRow], assignments: Sequence[str]) -> str:
    header = ["student", *(html_text(a) for a in assignments), "total"]
    body = []
    for row in rows:
        who = html_text(row.student) + (
            "" if row.name == row.student else f"<br><small>{html_text(row.name)}</small>"
        )
        body.append(
            [
                f"<td>{who}</td>",
                *(_student_cell(c) for c in row.cells),
                f"<td class=num><b>{row.total:g}</b></td>",
            ]
        )
    cols = "<colgroup><col class=who>" + "<col>" * len(assignments) + "<col class=total></colgroup>"
    return _table(header, body, "students", cols)


def _exercise_rows(
    rows: Sequence[tuple[SubmissionResult, ExerciseScore]], text: Callable[[ExerciseScore], str]
) -> str:
    return _table(["student", "notebook", "exercise", "outcome", "note"],
                  [[f"<td>{html_text(r.student)}</td>", f"<td>{html_text(r.key)}</td>", f"<td>{html_text(e.name)}</td>",
                    f"<td>{html_text('—' if e.outcome is None else str(e.outcome))}</td>", f"<td>{html_text(text(e))}</td>"]
                   for r, e in rows])  # fmt: skip


def _none_or(items: Sequence[object], render: Callable[[], str]) -> str:
    return render() if items else "<p>None.</p>"


def write_report(
    *,
    report_dir: Path,
    records: Sequence[SubmissionResult],
    score_of: Callable[[SubmissionResult], float | None],
    describe: Callable[[SubmissionResult], str],
    protections_summary: str = "",
) -> ReportResult:
    """``report_dir/index.html`` and one histogram PNG per assignment; ``score_of`` gives a
    submission's score (None: not graded), ``describe`` why it has its status."""
    report_dir.mkdir(parents=True, exist_ok=True)
    assignments = column_keys(records)  # never a column for entries that are not assignments
    hists = _histograms(report_dir, records, assignments, score_of)
    counts: dict[str, int] = {}
    for r in records:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    flagged = [r for r in records if r.status is Status.FLAGGED]
    problems = [r for r in records if r.status in _NOT_GRADED]
    to_fix = [(r, e) for r in records for e in r.exercises if e.outcome in _TO_FIX]
    review = [(r, e) for r in records for e in r.exercises if e.review]
    students = student_rows(records, assignments, score_of)
    figures = "".join(f"<figure><img src='{p.name}' alt='{html_text(caption)}'><figcaption>{html_text(caption)}</figcaption></figure>"
                      for p, caption in hists)  # fmt: skip
    problem_rows = [[f"<td>{html_text(r.student)}</td>", f"<td>{html_text(r.key)}</td>",
                     f"<td>{html_text(str(r.status))}</td>", f"<td>{html_text(describe(r))}</td>"] for r in problems]  # fmt: skip
    parts = [
        "<!doctype html><meta charset=utf-8><title>Grading report</title>",
        _CSS,
        "<h1>Grading report</h1>",
        f"<p><b>Sandbox:</b> {html_text(protections_summary or 'see the grading log')}</p>",
        f"<p>{len({r.student for r in records})} students, {len(assignments)} notebooks. "
        + ", ".join(f"{html_text(k)}: {v}" for k, v in sorted(counts.items()))
        + "</p>",
        "<h2>Scores per notebook</h2>",
        f"<div class=hists>{figures}</div>" if figures else "<p>No submissions.</p>",
        "<h2>Per-exercise difficulty</h2>",
        "<p class=legend>Over the scored submissions (graded or flagged) holding the exercise; "
        "verified: re-verification agreed with nbgrader.</p>",
        _none_or(records, lambda: _difficulty_table(exercise_difficulty(records))),
        "<h2>Flagged submissions</h2>",
        _none_or(flagged, lambda: _flagged_table(flagged)),
        "<h2>Per student</h2>",
        "<p class=legend>Scores per notebook; a red cell is flagged. Not graded: M missing, F failed, "
        "T timed out, U unreadable; · no record. The total adds the scores that exist.</p>",
        _none_or(students, lambda: _student_table(students, assignments)),
        "<h2>Not graded or cut short</h2>",
        _none_or(problems, lambda: _table(["student", "notebook", "status", "why"], problem_rows)),
        "<h2>Exercises that were wrong or could not run</h2>",
        _none_or(
            to_fix,
            lambda: (
                f"<details><summary>{len(to_fix)} exercises</summary>"
                + _exercise_rows(to_fix, lambda e: e.note)
                + "</details>"
            ),
        ),
        "<h2>To review (not flagged)</h2>",
        _none_or(
            review,
            lambda: _exercise_rows(review, lambda e: f"answer matches the library's reference ({e.review})"),
        ),
    ]
    page = report_dir / "index.html"
    page.write_text("\n".join(parts), encoding="utf-8", errors="replace")
    return ReportResult(page, tuple(p for p, _ in hists))
