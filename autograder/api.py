"""The autograder's Python API: keyword-only functions returning dataclasses.

    release_course(solutions_dir=..., notebooks_dir=...)        -> ReleaseResult
    grade_class(submissions=..., run_dir=..., solutions_dir=...) -> GradeRun
    grade_course(course_dir=...)                                 -> GradeRun  (an nbgrader course, in place)
    write_feedback(run_dir=...)                                  -> FeedbackResult
    export_grades(run_dir=...)                                   -> ExportResult
    course_status(run_dir=...)                                   -> StatusReport

The run folder (``course_run/`` by default) holds everything a grading run makes:
``course/`` (an nbgrader course directory with the gradebook), ``ledger/``,
``feedback/``, ``report/``; all of it is hidden from student code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.course import CourseDir, assignment_stems, read_notebook
from autograder.export import ExportResult, export_grades
from autograder.feedback import FeedbackResult, write_feedback
from autograder.gradebook import Ledger, merge_result
from autograder.grading_run import (
    GradeOptions,
    GradeRun,
    StatusReport,
    grade_resumable,
    hidden_paths,
    import_support,
    ready_to_grade,
    scratch_root,
    secret_seed,
    selected,
    write_protections,
)
from autograder.intake import Manifest, collect
from autograder.limits import Limits, Protections
from autograder.pipeline import GradingContext, SubmissionResult
from autograder.release import ReleaseResult, release_course
from autograder.sandbox import detect_protections, remove_tree

if TYPE_CHECKING:
    from autograder.cluster import ClusterSpec, DaskEngine

__all__ = [
    "ExportResult",
    "FeedbackResult",
    "GradeOptions",
    "GradeRun",
    "Limits",
    "ReleaseResult",
    "StatusReport",
    "SubmissionResult",
    "Override",
    "course_status",
    "override_grade",
    "export_grades",
    "grade_class",
    "grade_course",
    "release_course",
    "write_feedback",
]

DEFAULT_OPTIONS = GradeOptions()  # frozen: one shared default is safe


def _prepare(run_dir: Path, solutions_dir: Path, db_url: str | None) -> tuple[CourseDir, dict, dict]:
    run_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)
    course = CourseDir.at(run_dir / "course", db_url=db_url)
    stems = assignment_stems(solutions_dir)
    if not stems:
        raise ValueError(f"grade: no instructor notebooks (*.ipynb) in {solutions_dir}")
    course.install(stems)
    sources = {s: read_notebook(course.source(s)) for s in stems}
    releases = {s: read_notebook(course.release(s)) for s in stems}
    return course, sources, releases


def _cluster_spec(options: GradeOptions) -> ClusterSpec | None:
    """The cluster ``options`` ask for (checked before anything is done), or None."""
    from autograder.cluster import ClusterSpec, TlsFiles, check_address, parse_local

    if options.scheduler and options.cluster:
        raise ValueError("grade: give --scheduler or --cluster, not both")
    tls_files = (options.tls_ca, options.tls_cert, options.tls_key)
    if any(tls_files) and not all(tls_files):
        raise ValueError("grade: TLS needs all three of --tls-ca, --tls-cert and --tls-key")
    tls = TlsFiles(*tls_files) if all(tls_files) else None  # type: ignore[arg-type]
    if options.cluster:
        return ClusterSpec(local_workers=parse_local(options.cluster))
    if options.scheduler:
        check_address(options.scheduler, insecure=options.insecure, tls=tls)
        return ClusterSpec(scheduler=options.scheduler, insecure=options.insecure, tls=tls)
    return None


def grade_class(
    *,
    submissions: Path,
    run_dir: Path,
    solutions_dir: Path,
    options: GradeOptions = DEFAULT_OPTIONS,
    progress: Callable[[SubmissionResult], None] | None = None,
    on_start: Callable[[int, Protections], None] | None = None,
) -> GradeRun:
    """Grade every submission in ``submissions`` (a folder or a zip)."""
    start = time.monotonic()
    run_dir, solutions_dir, submissions = (
        Path(run_dir).resolve(),
        Path(solutions_dir).resolve(),
        Path(submissions).resolve(),
    )
    spec = _cluster_spec(options)
    if spec is None:
        return _grade_class(
            submissions, run_dir, solutions_dir, options, progress, on_start, start, engine=None
        )
    from autograder.cluster import open_engine

    with open_engine(spec) as engine:
        return _grade_class(
            submissions, run_dir, solutions_dir, options, progress, on_start, start, engine=engine
        )


def _grade_class(
    submissions: Path,
    run_dir: Path,
    solutions_dir: Path,
    options: GradeOptions,
    progress: Callable[[SubmissionResult], None] | None,
    on_start: Callable[[int, Protections], None] | None,
    start: float,
    *,
    engine: DaskEngine | None,
) -> GradeRun:
    protections = detect_protections()
    import_support(options.support)
    course, sources, releases = _prepare(run_dir, solutions_dir, options.db_url)
    hosts = engine.hosts() if engine is not None else ()
    write_protections(run_dir, protections, hosts)
    jobs = collect(submissions, Manifest.from_notebooks(releases), unpack_dir=run_dir / "unpacked")
    jobs = selected(jobs, options)
    ready_to_grade(jobs, protections, sandboxes_here=engine is None)
    scratch = scratch_root(run_dir)
    ctx = GradingContext(
        course=course,
        sources=sources,
        releases=releases,
        scratch_root=scratch,
        hide=hidden_paths(run_dir, solutions_dir, submissions, course.db_url),
        limits=options.limits,
        protections=protections,
        secret_seed=secret_seed(run_dir),
        support=list(options.support),
        drop_demo=options.drop_demo,
        verify=options.verify,
    )
    try:
        results, resumed = grade_resumable(
            jobs, ctx, run_dir=run_dir, options=options, merge=lambda r: merge_result(r, course=course, run_dir=run_dir),
            progress=progress, on_start=on_start, engine=engine,
        )  # fmt: skip
    finally:
        remove_tree(scratch)
    if engine is not None:  # now with what each host graded
        hosts = engine.hosts()
        write_protections(run_dir, protections, hosts)
    return GradeRun(tuple(results), protections, run_dir, resumed, time.monotonic() - start, hosts)


def grade_course(
    *,
    course_dir: Path,
    run_dir: Path | None = None,
    options: GradeOptions = DEFAULT_OPTIONS,
    progress: Callable[[SubmissionResult], None] | None = None,
    on_start: Callable[[int, Protections], None] | None = None,
) -> GradeRun:
    """Grade an instructor's nbgrader course in place: ``COURSE_DIR/submitted/`` into the
    gradebook its ``nbgrader_config.py`` names and ``COURSE_DIR/autograded/``; the run
    folder defaults to ``COURSE_DIR/.autograder`` (see ``autograder.nbcourse``)."""
    from autograder.nbcourse import grade_course as grade

    spec = _cluster_spec(options)
    if spec is None:
        return grade(
            course_dir=Path(course_dir),
            run_dir=run_dir,
            options=options,
            progress=progress,
            on_start=on_start,
        )
    from autograder.cluster import open_engine

    with open_engine(spec) as engine:
        return grade(course_dir=Path(course_dir), run_dir=run_dir, options=options, progress=progress, on_start=on_start,
                     engine=engine)  # fmt: skip


def course_status(
    *, run_dir: Path, submissions: Path | None = None, solutions_dir: Path | None = None
) -> StatusReport:
    """What is graded (with its status) and, given the submissions, what is pending."""
    run_dir = Path(run_dir).resolve()
    results = tuple(Ledger(run_dir).all())
    pending: list[tuple[str, str]] = []
    if submissions is not None and solutions_dir is not None:
        releases = {}
        course = CourseDir.at(run_dir / "course")
        for stem in assignment_stems(Path(solutions_dir)):
            path = course.release(stem)
            if path.exists():
                releases[stem] = read_notebook(path)
        seen = {(r.student, r.assignment) for r in results}
        jobs = collect(
            Path(submissions), Manifest.from_notebooks(releases), unpack_dir=run_dir / "unpacked-status"
        )
        pending = [(j.student, j.assignment) for j in jobs if (j.student, j.assignment) not in seen]
    return StatusReport(results, tuple(pending))


@dataclass(frozen=True)
class Override:
    student: str
    assignment: str
    grade_id: str
    manual_score: float
    auto_score: float | None


def override_grade(
    *,
    run_dir: Path,
    student: str,
    assignment: str,
    grade_id: str,
    score: float,
    db_url: str | None = None,
    course: CourseDir | None = None,
    course_id: str = "default_course",
    notebook: str = "",
) -> Override:
    """Set nbgrader's manual score for one graded cell; re-grading keeps it. ``course``
    (default: the run folder's own) and ``notebook`` (default: the assignment's name)
    address an instructor's nbgrader course, where an assignment may hold several notebooks."""
    from nbgrader.api import Gradebook, MissingEntry

    from autograder.gradebook import GradebookLock

    run_dir = Path(run_dir).resolve()
    course = course or CourseDir.at(run_dir / "course", db_url=db_url)
    notebook = notebook or assignment
    with GradebookLock(run_dir, db_url=course.db_url), Gradebook(course.db_url, course_id) as gb:
        try:
            grade = gb.find_grade(grade_id, notebook, assignment, student)
        except MissingEntry:
            where = assignment if notebook == assignment else f"{assignment}/{notebook}"
            raise KeyError(f"override: no graded cell {grade_id!r} for {student}/{where}") from None
        if not 0 <= score <= grade.max_score:
            raise ValueError(f"override: score must be in [0, {grade.max_score:g}], got {score:g}")
        grade.manual_score = score
        gb.db.commit()
        return Override(student, assignment, grade_id, score, grade.auto_score)
