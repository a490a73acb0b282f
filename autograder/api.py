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
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.course import CourseDir, assignment_stems, read_notebook
from autograder.export import ExportResult, export_grades
from autograder.feedback import FeedbackResult, write_feedback
from autograder.gradebook import Ledger, merge_result
from autograder.intake import Job, Manifest, collect
from autograder.pipeline import GradingContext, SubmissionResult, grade_jobs
from autograder.release import ReleaseResult, release_course
from autograder.remote import HostReport
from autograder.results import Status
from autograder.sandbox import Limits, Protections, detect_protections, remove_tree

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

REPO = Path(__file__).resolve().parents[1]
FINAL = frozenset(Status)  # every status is final unless the record asks for a retry


@dataclass(frozen=True)
class GradeOptions:
    workers: int = os.cpu_count() or 1
    limits: Limits = field(default_factory=Limits)
    db_url: str | None = None  # default: SQLite in the run folder
    force: bool = False  # re-grade even what the ledger says is done
    drop_demo: bool = True  # skip ungraded `demo` cells (plots, training runs)
    verify: bool = True  # re-verification (never turn off for real grading)
    support: tuple[Path, ...] = ()  # extra modules the notebooks import (tests)
    # Regrade only these students (safe key or name as the LMS gave it) / assignments;
    # they are graded again even if unchanged, and nothing else in the gradebook is touched.
    students: tuple[str, ...] = ()
    assignments: tuple[str, ...] = ()
    # Grading on a dask cluster (``autograder.cluster``): an existing scheduler's address,
    # or "local:N" for a LocalCluster of N workers on this machine. Unset: local threads.
    scheduler: str | None = None
    cluster: str | None = None
    insecure: bool = False  # allow plain tcp:// to a scheduler that is not loopback
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None


@dataclass(frozen=True)
class GradeRun:
    results: tuple[SubmissionResult, ...]
    protections: Protections
    run_dir: Path
    resumed: int  # results reused from an earlier run
    seconds: float
    hosts: tuple[HostReport, ...] = ()  # cluster workers (accepted or refused) and what each graded

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[str(r.status)] = out.get(str(r.status), 0) + 1
        return out


@dataclass(frozen=True)
class StatusReport:
    results: tuple[SubmissionResult, ...]
    pending: tuple[tuple[str, str], ...]  # (student, assignment) not graded yet

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {"pending": len(self.pending)} if self.pending else {}
        for r in self.results:
            out[str(r.status)] = out.get(str(r.status), 0) + 1
        return out


def _preload() -> None:
    """Import what the grading threads use before they start: concurrent first imports
    of one package can see it half-initialized."""
    import nbgrader.api
    import nbgrader.preprocessors
    import nbgrader.utils  # noqa: F401

    from course_lib.checks import exercises

    exercises()


def _import_support(paths: tuple[Path, ...]) -> None:
    """Support modules register their exercises when imported (the parent judges)."""
    import importlib
    import sys

    for path in paths:
        folder = str(Path(path).resolve().parent)
        if folder not in sys.path:
            sys.path.append(folder)
        importlib.import_module(Path(path).stem)


def _secret_seed(run_dir: Path) -> int:
    """The run's secret, fixed per run folder: the key from which each submission's secret
    seed is derived (``pipeline.submission_seed``), so re-runs agree."""
    path = run_dir / ".secret-seed"
    if not path.exists():
        path.write_text(str(1000 + secrets.randbelow(2**31)))
        os.chmod(path, 0o600)
    return int(path.read_text())


def _hidden_paths(run_dir: Path, solutions_dir: Path, submissions: Path, db_url: str) -> list[Path]:
    paths = [run_dir, solutions_dir, submissions, REPO / ".git", REPO / "tests", REPO / "solutions"]
    if db_url.startswith("sqlite:///"):
        paths.append(Path(db_url.removeprefix("sqlite:///")).parent)
    unique: list[Path] = []
    for p in (Path(p).resolve() for p in paths):
        if p.exists() and p != Path("/") and p not in unique:
            unique.append(p)
    return unique


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


def _selected(jobs: list[Job], options: GradeOptions) -> list[Job]:
    """The jobs ``options.students``/``options.assignments`` ask for; an unknown name is an error."""
    if options.assignments:
        unknown = sorted(set(options.assignments) - {j.assignment for j in jobs})
        if unknown:
            raise ValueError(f"grade: no assignment {', '.join(unknown)} in this course")
        jobs = [j for j in jobs if j.assignment in options.assignments]
    if options.students:
        wanted = set(options.students)
        found = {j.student for j in jobs if j.student in wanted or j.display in wanted}
        missing = sorted(wanted - found - {j.display for j in jobs if j.student in found})
        if missing:
            raise ValueError(f"grade: no submission from {', '.join(missing)}")
        jobs = [j for j in jobs if j.student in found]
    return jobs


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


def _scratch_root(run_dir: Path) -> Path:
    """This grading process's own scratch folder, ``RUN/scratch/run-<pid>``, made empty.
    Two graders may share a run folder (the gradebook lock allows it): each removes only
    its own views and job folders. Views are built anew each run, from the course_lib
    installed now."""
    (run_dir / "scratch").mkdir(exist_ok=True)
    os.chmod(run_dir / "scratch", 0o711)
    scratch_root = run_dir / "scratch" / f"run-{os.getpid()}"
    remove_tree(scratch_root)
    scratch_root.mkdir()
    os.chmod(scratch_root, 0o711)
    return scratch_root


def _write_protections(run_dir: Path, protections: Protections, hosts: tuple[HostReport, ...]) -> None:
    lines = [
        f"coordinator: {protections.summary}" if hosts else protections.summary,
        *(h.line() for h in hosts),
    ]
    (run_dir / "protections.txt").write_text("\n".join(lines) + "\n")


def grade_class(
    *,
    submissions: Path,
    run_dir: Path,
    solutions_dir: Path,
    options: GradeOptions = GradeOptions(),
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
    _import_support(options.support)
    course, sources, releases = _prepare(run_dir, solutions_dir, options.db_url)
    hosts = engine.hosts() if engine is not None else ()
    _write_protections(run_dir, protections, hosts)
    jobs = collect(submissions, Manifest.from_notebooks(releases), unpack_dir=run_dir / "unpacked")
    jobs = _selected(jobs, options)
    _preload()
    scratch_root = _scratch_root(run_dir)
    ctx = GradingContext(
        course=course,
        sources=sources,
        releases=releases,
        scratch_root=scratch_root,
        hide=_hidden_paths(run_dir, solutions_dir, submissions, course.db_url),
        limits=options.limits,
        protections=protections,
        secret_seed=_secret_seed(run_dir),
        support=list(options.support),
        drop_demo=options.drop_demo,
        verify=options.verify,
    )
    try:
        results, resumed = _grade_resumable(
            jobs, ctx, run_dir=run_dir, options=options, merge=lambda r: merge_result(r, course=course, run_dir=run_dir),
            progress=progress, on_start=on_start, engine=engine,
        )  # fmt: skip
    finally:
        remove_tree(scratch_root)
    if engine is not None:  # now with what each host graded
        hosts = engine.hosts()
        _write_protections(run_dir, protections, hosts)
    return GradeRun(tuple(results), protections, run_dir, resumed, time.monotonic() - start, hosts)


def _grade_resumable(
    jobs: list[Job],
    ctx: GradingContext,
    *,
    run_dir: Path,
    options: GradeOptions,
    merge: Callable[[SubmissionResult], None],
    progress: Callable[[SubmissionResult], None] | None,
    on_start: Callable[[int, Protections], None] | None,
    engine: DaskEngine | None = None,
) -> tuple[list[SubmissionResult], int]:
    """Grade the jobs the ledger does not already hold unchanged (results in job order,
    how many were reused); ``merge`` saves each fresh result as it ends."""
    ledger = Ledger(run_dir)
    todo: list[Job] = []
    done: list[SubmissionResult] = []
    regrade = options.force or bool(options.students or options.assignments)
    for job in jobs:
        old = None if regrade else ledger.read(job.student, job.assignment, job.notebook_name)
        if old is not None and old.status in FINAL and not old.retry and old.digest == ctx.digest(job):
            done.append(old)
        else:
            todo.append(job)
    if on_start is not None:
        on_start(len(todo), ctx.protections)
    fresh = grade_jobs(todo, ctx, workers=options.workers, on_result=merge, progress=progress, engine=engine)
    order = {(j.student, j.key): i for i, j in enumerate(jobs)}
    return sorted([*done, *fresh], key=lambda r: order[(r.student, r.key)]), len(done)


def grade_course(
    *,
    course_dir: Path,
    run_dir: Path | None = None,
    options: GradeOptions = GradeOptions(),
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
