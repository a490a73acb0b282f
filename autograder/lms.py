"""Grades into a learning-management system: Canvas's gradebook CSV and Moodle's grade import.

Scores come in as ``{student: {assignment: score or None}}`` (``scores_from_run`` builds
that from a grading run); ``None`` is a submission that was not graded, and is written
as an empty cell, never as 0.

Canvas — ``fill_canvas`` fills the instructor's own gradebook export (Grades → Export).
The layout followed (Canvas's "How do I export/import grades in the Gradebook?" guides,
and the notes of tools that round-trip it, e.g. PrairieLearn issue #4547 and nemogb's
"Detailed Canvas Export Info"):

- row 1: ``Student, ID, SIS User ID, SIS Login ID, [Integration ID,] Section``, then one
  column per assignment named ``<Assignment name> (<assignment id>)``, then read-only
  columns (``Current Score``, ``Final Grade``, assignment-group totals, ...);
- then rows that are not students: an optional posting-policy row (``Manual Posting``
  under some assignments) and the ``Points Possible`` row, whose ``ID`` cell is empty;
- then one row per student (the ``Student, Test`` row of the test student included).

Only the assignment columns matching our assignment names are written, and only in
student rows, matched on ``match_on`` (``SIS Login ID`` by default; ``ID`` or ``SIS User
ID`` work too). Every other cell stays exactly as Canvas wrote it: Canvas matches rows
and columns on them when the file is imported again.

Moodle — ``write_moodle`` writes the CSV that Grades → Import → CSV file reads: one
identifier column (``Email address`` by default; pick it in "Map from" and the same user
field in "Map to") and one column per assignment, mapped to grade items on the import
page. Moodle aborts the whole import on an identifier it does not know, so with a roster
only the roster's students are written; an empty cell is "no grade" to Moodle
(``gradeimport_csv_load_data::update_grade_item``).

Cells this module writes go through ``autograder.safe_output.csv_cell`` (OWASP's
CSV-injection rule): a value that starts like a formula gets a leading ``'``.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder.course import CourseDir
from autograder.safe_output import csv_cell, terminal_text

__all__ = [
    "LmsResult", "Scores", "add_arguments", "describe", "fill_canvas", "main", "run_cli", "scores_from_run",
    "write_moodle",
]  # fmt: skip

Scores = Mapping[str, Mapping[str, float | None]]  # student -> assignment -> score (None: not graded)

_CANVAS_ASSIGNMENT = re.compile(r"^(?P<name>.*\S)\s*\((?P<id>\d+)\)$")
_POINTS_POSSIBLE = "Points Possible"


@dataclass(frozen=True)
class LmsResult:
    out: Path
    students_written: tuple[str, ...]  # students whose cells were written (file order)
    assignments: tuple[str, ...]  # our assignments that have a column in the file
    unmatched_assignments: tuple[str, ...]  # our assignments with no column (nothing written)
    not_in_roster: tuple[str, ...]  # students we have scores for who are not in the roster
    no_scores: tuple[str, ...]  # roster students we have no scores for (their row is untouched / left out)
    escaped: tuple[str, ...]  # cells written with a leading ' because they looked like formulas


def _format_score(student: str, assignment: str, value: float | None) -> str:
    if value is None:
        return ""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"score of {student!r} for {assignment!r} must be a finite number >= 0 or None, got {value!r}"
        )
    text = repr(float(value))  # the shortest text that reads back as the same float
    return text.removesuffix(".0")


def _read_csv(path: Path, what: str) -> tuple[list[list[str]], str, bool]:
    """(rows, line terminator, has BOM) of a UTF-8 CSV file."""
    raw = Path(path).read_bytes()
    bom = raw.startswith(codecs.BOM_UTF8)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{what} {path} is not UTF-8 text (byte {err.start}); export it again as CSV"
        ) from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise ValueError(f"{what} {path} is empty")
    return rows, ("\r\n" if "\r\n" in text else "\n"), bom


def _write_csv(
    out: Path, rows: Sequence[Sequence[str]], *, lineterminator: str = "\r\n", bom: bool = False
) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=lineterminator).writerows(rows)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes((codecs.BOM_UTF8 if bom else b"") + buffer.getvalue().encode("utf-8"))
    os.replace(tmp, out)  # an interrupted run never leaves half a file


def _column(header: Sequence[str], name: str, what: str) -> int:
    stripped = [h.strip() for h in header]
    if name not in stripped:
        raise ValueError(f"{what} has no {name!r} column; its columns are {stripped}")
    if stripped.count(name) > 1:
        raise ValueError(f"{what} has the column {name!r} more than once")
    return stripped.index(name)


def _assignments_of(scores: Scores) -> list[str]:
    return sorted({a for per_student in scores.values() for a in per_student})


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def fill_canvas(
    gradebook_csv_in: Path, out: Path, scores: Scores, *, match_on: str = "SIS Login ID"
) -> LmsResult:
    """Write ``out``: the Canvas export ``gradebook_csv_in`` with our scores in its assignment columns."""
    gradebook_csv_in, out = Path(gradebook_csv_in), Path(out)
    if out.resolve() == gradebook_csv_in.resolve():
        raise ValueError(f"fill_canvas: write to a new file, not over the Canvas export {gradebook_csv_in}")
    what = f"the Canvas export {gradebook_csv_in}"
    rows, lineterminator, bom = _read_csv(gradebook_csv_in, "fill_canvas:")
    header = rows[0]
    id_col = _column(header, match_on, what)
    canvas_id_col = _column(header, "ID", what) if "ID" in (h.strip() for h in header) else None

    # Our assignment names -> Canvas columns, by the name before " (<id>)".
    by_name: dict[str, list[int]] = {}
    for index, title in enumerate(header):
        match = _CANVAS_ASSIGNMENT.match(title.strip())
        if match:
            by_name.setdefault(_key(match.group("name")), []).append(index)
    columns: dict[str, int] = {}
    unmatched = []
    for assignment in _assignments_of(scores):
        found = by_name.get(_key(assignment), [])
        if len(found) > 1:
            titles = [header[i] for i in found]
            raise ValueError(
                f"fill_canvas: assignment {assignment!r} matches several Canvas columns {titles}"
            )
        if found:
            columns[assignment] = found[0]
        else:
            unmatched.append(assignment)

    def is_student_row(row: list[str]) -> bool:
        if len(row) <= id_col or not row[id_col].strip():
            return False
        if row and row[0].strip() == _POINTS_POSSIBLE:
            return False
        return canvas_id_col is None or (len(row) > canvas_id_col and bool(row[canvas_id_col].strip()))

    seen: dict[str, int] = {}
    written, no_scores, escaped = [], [], []
    out_rows = [list(row) for row in rows]
    for number, row in enumerate(out_rows[1:], start=2):
        if not is_student_row(row):
            continue
        student = row[id_col].strip()
        if student in seen:
            raise ValueError(
                f"fill_canvas: {match_on} {student!r} is on rows {seen[student]} and {number} of {what}"
            )
        seen[student] = number
        if student not in scores:
            no_scores.append(student)
            continue
        row.extend([""] * (len(header) - len(row)))
        for assignment, col in columns.items():
            value = csv_cell(_format_score(student, assignment, scores[student].get(assignment)))
            if value.startswith("'"):
                escaped.append(value)
            row[col] = value
        written.append(student)
    _write_csv(out, out_rows, lineterminator=lineterminator, bom=bom)
    return LmsResult(
        out=out,
        students_written=tuple(written),
        assignments=tuple(columns),
        unmatched_assignments=tuple(unmatched),
        not_in_roster=tuple(sorted(s for s in scores if s not in seen)),
        no_scores=tuple(no_scores),
        escaped=tuple(escaped),
    )


def write_moodle(
    out: Path, scores: Scores, *, roster: Path | None = None, id_field: str = "Email address"
) -> LmsResult:
    """Write ``out`` for Moodle's Grades → Import → CSV file: ``id_field`` + one column per assignment.

    With ``roster`` (a CSV with an ``id_field`` column, e.g. Moodle's own grade or
    participants export) rows follow the roster's order and only its students are
    written; without it, every student in ``scores``, sorted.
    """
    if not id_field.strip():
        raise ValueError("write_moodle: id_field must name the identifier column, e.g. 'Email address'")
    assignments = _assignments_of(scores)
    if roster is not None:
        rows, _, _ = _read_csv(Path(roster), "write_moodle: roster")
        col = _column(rows[0], id_field, f"the roster {roster}")
        order = [row[col].strip() for row in rows[1:] if len(row) > col and row[col].strip()]
    else:
        order = sorted(scores)
    in_roster = set(order)
    escaped: list[str] = []

    def cell(text: str) -> str:
        safe = csv_cell(text)
        if safe != text:
            escaped.append(safe)
        return safe

    out_rows = [[cell(id_field), *(cell(a) for a in assignments)]]
    written, no_scores = [], []
    for student in order:
        if student not in scores:
            no_scores.append(student)  # left out: a row of empty cells would clear their grades in Moodle
            continue
        values = [_format_score(student, a, scores[student].get(a)) for a in assignments]
        out_rows.append([cell(student), *values])
        written.append(student)
    _write_csv(Path(out), out_rows)
    return LmsResult(
        out=Path(out),
        students_written=tuple(written),
        assignments=tuple(assignments),
        unmatched_assignments=(),
        not_in_roster=tuple(sorted(s for s in scores if s not in in_roster)),
        no_scores=tuple(no_scores),
        escaped=tuple(escaped),
    )


def scores_from_run(
    run_dir: Path, *, course: CourseDir | None = None, course_id: str = "default_course"
) -> dict[str, dict[str, float | None]]:
    """{student: {assignment: total}} of a grading run, as ``grades.csv`` has them.

    Totals are the sum of nbgrader's grades (manual overrides included) when the
    gradebook of ``course`` (default: the run folder's own, ``<run_dir>/course``) has the
    submission, else the ledger's score; ``None`` when nothing was graded (missing,
    unreadable, failed, timed out). Read-only: nothing is written.
    """
    from autograder.export import gradebook_scores
    from autograder.gradebook import Ledger
    from autograder.nbcourse import NOT_AN_ASSIGNMENT

    run_dir = Path(run_dir).resolve()
    needed = ("ledger",) if course is not None else ("ledger", "course")
    missing = [name for name in needed if not (run_dir / name).is_dir()]
    if missing:
        raise ValueError(
            f"scores_from_run: {run_dir} is not a grading run (no {' or '.join(missing)}/ folder)"
        )
    records = Ledger(run_dir).all()
    grades = gradebook_scores(course or CourseDir.at(run_dir / "course"), records, course_id=course_id)
    out: dict[str, dict[str, float | None]] = {}
    for record in records:
        if record.assignment == NOT_AN_ASSIGNMENT:  # no grade item for entries that are not assignments
            continue
        total: float | None = None
        if record.score is not None:
            per_grade = grades.get((record.student, record.key))
            total = sum(per_grade.values()) if per_grade is not None else record.score
        out.setdefault(record.student, {})[record.key] = total
    return out


def describe(result: LmsResult) -> str:
    """What was written and what the instructor should look at, for the terminal."""

    def names(items: Sequence[str]) -> str:
        shown = ", ".join(terminal_text(x) for x in items[:10])
        return shown + (f" and {len(items) - 10} more" if len(items) > 10 else "")

    lines = [
        f"wrote {result.out}: {len(result.students_written)} students, assignments {names(result.assignments)}"
    ]
    if result.unmatched_assignments:
        lines.append(f"no column for (not written): {names(result.unmatched_assignments)}")
    if result.not_in_roster:
        lines.append(f"graded but not in the roster (not written): {names(result.not_in_roster)}")
    if result.no_scores:
        lines.append(f"in the roster without scores (left as they were): {names(result.no_scores)}")
    if result.escaped:
        lines.append(f"written with a leading ' (looked like formulas): {names(result.escaped)}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m autograder lms`` (also ``python -m autograder.lms``)."""
    parser.add_argument("target", choices=["canvas", "moodle"], help="which LMS to write for")
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    parser.add_argument(
        "--run-dir", type=Path, default=Path("course_run"), help="run folder (default: course_run/)"
    )
    parser.add_argument("--canvas-export", type=Path, help="canvas: the gradebook CSV exported from Canvas")
    parser.add_argument("--match-on", default="SIS Login ID", help="canvas: column holding our student ids")
    parser.add_argument(
        "--roster", type=Path, help="moodle: a CSV with the identifier column; only its students are written"
    )
    parser.add_argument(
        "--id-field", default="Email address", help="moodle: the identifier column (default: Email address)"
    )


def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``lms``: scores of ``--run-dir`` into the chosen LMS file; 2 on bad input."""
    try:
        scores = scores_from_run(args.run_dir)
        if args.target == "canvas":
            if args.canvas_export is None:
                raise ValueError(
                    "lms canvas: --canvas-export FILE (the gradebook exported from Canvas) is required"
                )
            result = fill_canvas(args.canvas_export, args.out, scores, match_on=args.match_on)
        else:
            result = write_moodle(args.out, scores, roster=args.roster, id_field=args.id_field)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(describe(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.lms", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
