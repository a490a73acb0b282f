"""Command line: ``python -m autograder {release,grade,feedback,export,status,override,demo}``.

A thin layer: parse arguments, call ``autograder.api``, print the result.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.console import format_table, grade_with_progress
from autograder.safe_output import terminal_text

if TYPE_CHECKING:
    from autograder.course import CourseDir

__all__ = ["main", "format_table"]

RUN_DIR = Path("course_run")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def run_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run-dir", type=Path, default=RUN_DIR, help="run folder (default: course_run/)")

    def course(p: argparse.ArgumentParser) -> None:
        p.add_argument("--course", type=Path, default=None, metavar="COURSE_DIR",
                       help="an nbgrader course folder: grade its submitted/ into its own gradebook "
                            "(run folder: COURSE_DIR/.autograder unless --run-dir)")  # fmt: skip

    p = sub.add_parser("release", help="generate the student notebooks from the instructor sources")
    p.add_argument(
        "--solutions", type=Path, default=Path("solutions"), help="instructor notebooks (default: solutions/)"
    )
    p.add_argument(
        "--notebooks", type=Path, default=Path("notebooks"), help="where to write (default: notebooks/)"
    )
    p.add_argument("assignments", nargs="*", help="only these assignments (default: all)")

    p = sub.add_parser("grade", help="grade a folder (one sub-folder per student) or a zip of submissions")
    p.add_argument("submissions", type=Path, nargs="?", help="(not with --course)")
    p.add_argument("--solutions", type=Path, default=Path("solutions"))
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="parallel graders (default: cores)"
    )
    p.add_argument("--db", default=None, help="gradebook URL (default: SQLite in the run folder)")
    p.add_argument("--force", action="store_true", help="re-grade what is already graded")
    p.add_argument("--keep-demo-cells", action="store_true", help="also run the ungraded `demo` cells")
    p.add_argument("--cell-timeout", type=float, default=60.0)
    p.add_argument("--notebook-budget", type=float, default=300.0)
    p.add_argument("--support", type=Path, action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--student", action="append", default=[], help="regrade only this student (repeatable)")
    p.add_argument(
        "--assignment", action="append", default=[], help="regrade only this assignment (repeatable)"
    )
    _cluster_arguments(p)
    run_dir(p)
    course(p)

    p = sub.add_parser("feedback", help="write an HTML feedback page per student")
    p.add_argument("--show-hidden", action="store_true", help="show the source of hidden tests")
    run_dir(p)
    course(p)

    p = sub.add_parser("export", help="gradebook CSV + HTML report with plots, and LMS imports")
    p.add_argument("--lms", choices=["canvas", "moodle"], help="also write the LMS's grade import")
    p.add_argument(
        "--roster", type=Path, help="canvas: its gradebook export to fill; moodle: a roster CSV (optional)"
    )
    p.add_argument("--lms-out", type=Path, help="the LMS file to write (default: RUN_DIR/<lms>_import.csv)")
    p.add_argument("--match-on", default="SIS Login ID", help="canvas: the column holding our student ids")
    p.add_argument("--id-field", default="Email address", help="moodle: the identifier column")
    run_dir(p)
    course(p)

    from autograder import bundle

    bundle.add_arguments(
        sub.add_parser("bundle", help="write the students' copy of the course (no answers, no grader)")
    )

    p = sub.add_parser("status", help="what is graded, pending or failed")
    p.add_argument("submissions", type=Path, nargs="?")
    p.add_argument("--solutions", type=Path, default=Path("solutions"))
    run_dir(p)
    course(p)

    p = sub.add_parser("override", help="set a manual score for one test cell (kept across re-grading)")
    p.add_argument("student")
    p.add_argument("assignment")
    p.add_argument("grade_id", help="e.g. test_sigmoid_hidden")
    p.add_argument("score", type=float)
    p.add_argument(
        "--notebook",
        default="",
        help="the notebook, when an assignment holds several (default: the assignment's name)",
    )
    p.add_argument("--db", default=None, help="gradebook URL (default: the run folder's or the course's)")
    run_dir(p)
    course(p)

    p = sub.add_parser("demo", help="release the course and grade the bundled sample class")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    run_dir(p)
    return parser


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    """Grading on a dask cluster (``autograder.cluster``)."""
    group = p.add_argument_group("cluster (dask.distributed)")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="send each submission to this dask scheduler (tls://host:8786)"
    )
    where.add_argument("--cluster", metavar="local:N", help="start a LocalCluster of N worker processes here")
    group.add_argument(
        "--insecure", action="store_true", help="allow plain tcp:// to a scheduler that is not loopback"
    )
    group.add_argument(
        "--tls-ca", type=Path, help="CA certificate that signed the scheduler's and workers' certificates"
    )
    group.add_argument("--tls-cert", type=Path, help="this coordinator's certificate")
    group.add_argument("--tls-key", type=Path, help="this coordinator's private key")


def _release(args: argparse.Namespace) -> int:
    from autograder.release import release_course

    result = release_course(
        solutions_dir=args.solutions, notebooks_dir=args.notebooks, assignments=args.assignments or None
    )
    for path in result.notebooks:
        print(f"{'written  ' if path in result.changed else 'unchanged'} {path}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from autograder.api import GradeOptions, Limits

    options = GradeOptions(
        workers=args.workers,
        limits=Limits(cell_timeout=args.cell_timeout, notebook_budget=args.notebook_budget),
        db_url=args.db,
        force=args.force,
        drop_demo=not args.keep_demo_cells,
        support=tuple(args.support),
        students=tuple(args.student),
        assignments=tuple(args.assignment),
        scheduler=args.scheduler,
        cluster=args.cluster,
        insecure=args.insecure,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    if args.course is not None:
        if args.submissions is not None:
            raise ValueError("grade: give a submissions folder or --course COURSE_DIR, not both")
        from autograder.api import grade_course

        grade_with_progress(
            partial(grade_course, course_dir=args.course, run_dir=_course_run_dir(args)), options
        )
        return 0
    if args.submissions is None:
        raise ValueError("grade: give a submissions folder (or zip), or --course COURSE_DIR")
    from autograder.api import grade_class

    grade = partial(
        grade_class, submissions=args.submissions, run_dir=args.run_dir, solutions_dir=args.solutions
    )
    grade_with_progress(grade, options)
    return 0


def _course_run_dir(args: argparse.Namespace) -> Path | None:
    """With --course, the run folder is COURSE_DIR/.autograder unless --run-dir names another."""
    return None if args.run_dir == RUN_DIR else args.run_dir


def _course_paths(args: argparse.Namespace) -> tuple[Path, CourseDir | None, str]:
    """(run folder, the course's CourseDir, its nbgrader course_id) for --course; run folder alone otherwise."""
    if args.course is None:
        return args.run_dir, None, "default_course"
    from autograder.nbcourse import load_course

    course = load_course(args.course, run_dir=_course_run_dir(args), db_url=getattr(args, "db", None))
    return course.run_dir, course.dir, course.course_id


def _feedback(args: argparse.Namespace) -> int:
    from autograder.api import write_feedback

    run_dir, course, _ = _course_paths(args)
    result = write_feedback(run_dir=run_dir, show_hidden=args.show_hidden, course=course)
    print(f"{len(result.pages)} feedback pages in {run_dir / 'feedback'}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from autograder.api import export_grades

    run_dir, course, course_id = _course_paths(args)
    result = export_grades(run_dir=run_dir, course=course, course_id=course_id)
    print(f"gradebook: {result.grades_csv}\nper exercise: {result.submissions_csv}\nreport: {result.report}")
    if args.lms is None:
        return 0
    from autograder import lms

    scores = lms.scores_from_run(run_dir, course=course, course_id=course_id)
    out = args.lms_out or run_dir / f"{args.lms}_import.csv"
    if args.lms == "canvas":
        if args.roster is None:
            raise ValueError(
                "export --lms canvas: --roster FILE (the gradebook exported from Canvas) is required"
            )
        written = lms.fill_canvas(args.roster, out, scores, match_on=args.match_on)
    else:
        written = lms.write_moodle(out, scores, roster=args.roster, id_field=args.id_field)
    print(terminal_text(lms.describe(written)))
    return 0


def _status(args: argparse.Namespace) -> int:
    from autograder.api import course_status

    if args.course is not None:
        from autograder.nbcourse import course_status_in

        report = course_status_in(course_dir=args.course, run_dir=_course_run_dir(args))
    else:
        report = course_status(
            run_dir=args.run_dir, submissions=args.submissions, solutions_dir=args.solutions
        )
    print(format_table(report.results))
    for student, assignment in report.pending:
        print(terminal_text(f"{student}  {assignment}  pending"))
    print(", ".join(f"{k}: {v}" for k, v in sorted(report.counts().items())) or "nothing graded yet")
    return 0


def _override(args: argparse.Namespace) -> int:
    from autograder.api import override_grade

    run_dir, course, course_id = _course_paths(args)
    result = override_grade(
        run_dir=run_dir, student=args.student, assignment=args.assignment, grade_id=args.grade_id, score=args.score,
        db_url=args.db, course=course, course_id=course_id, notebook=args.notebook,
    )  # fmt: skip
    print(
        f"{args.student}/{args.assignment}/{args.grade_id}: manual score {result.manual_score:g} (auto {result.auto_score})"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from autograder.demo import run_demo

    return run_demo(run_dir=args.run_dir, workers=args.workers)


class _ShownNotObeyed(logging.Filter):
    """Log messages name submitted files: their control characters are shown as escapes."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = terminal_text(record.getMessage()), None
        return True


def _log_to_stderr() -> None:
    logger = logging.getLogger("autograder")
    if not any(isinstance(f, _ShownNotObeyed) for h in logger.handlers for f in h.filters):
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(_ShownNotObeyed())
        logger.addHandler(handler)
        logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    from autograder import bundle

    _log_to_stderr()
    args = _parser().parse_args(argv)
    handlers = {
        "release": _release,
        "grade": _grade,
        "feedback": _feedback,
        "export": _export,
        "status": _status,
        "override": _override,
        "demo": _demo,
        "bundle": bundle.run_cli,
    }
    try:
        return handlers[args.command](args)
    except (ValueError, RuntimeError, FileNotFoundError, KeyError) as exc:
        print(terminal_text(f"error: {exc}"), file=sys.stderr)
        return 2
