"""What ``grade_class`` (``autograder.api``) and ``grade_course`` (``autograder.nbcourse``) share.

The options a grading run takes, the run it returns, and the steps around grading that both
ways of grading take in the same order: import the support modules, select the jobs asked
for, preload what the grading threads import (``pipeline.preload``), record the protections, make the scratch
folder, list what the sandbox hides, read the run's secret, then grade what the ledger does
not already hold unchanged.
"""

from __future__ import annotations

import importlib
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from autograder import template
from autograder.gradebook import Ledger
from autograder.intake import Job
from autograder.limits import Limits, Protections
from autograder.pipeline import GradingContext, SubmissionResult, grade_jobs, preload
from autograder.remote import HostReport
from autograder.results import Status
from autograder.sandbox import remove_tree

if TYPE_CHECKING:
    from autograder.cluster import DaskEngine

__all__ = [
    "FINAL",
    "GradeOptions",
    "GradeRun",
    "StatusReport",
    "grade_resumable",
    "hidden_paths",
    "import_support",
    "ready_to_grade",
    "scratch_root",
    "secret_seed",
    "selected",
    "write_protections",
]

REPO = Path(__file__).resolve().parents[1]
FINAL = frozenset(Status)  # every status is final unless the record asks for a retry


@dataclass(frozen=True)
class GradeOptions:
    """How to grade: parallelism, limits, the gradebook, what to regrade, where to run."""

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
    """What a grading run did: every submission's result, in job order, and how it ran."""

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
    """What is graded (with its status) and what is not yet."""

    results: tuple[SubmissionResult, ...]
    pending: tuple[tuple[str, str], ...]  # (student, assignment) not graded yet

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {"pending": len(self.pending)} if self.pending else {}
        for r in self.results:
            out[str(r.status)] = out.get(str(r.status), 0) + 1
        return out


def ready_to_grade(jobs: list[Job], protections: Protections, *, sandboxes_here: bool) -> None:
    """Before the grading threads start: when there is work and the sandboxes start on
    this machine (not a cluster's), start the warm-start template first, so that it
    imports in its own process while this one imports what the threads use (``preload``)."""
    if jobs and sandboxes_here:
        template.warm_up(protections)
    preload()


def import_support(paths: tuple[Path, ...]) -> None:
    """Import each support module (its folder appended to ``sys.path``): support modules
    register their exercises when imported, and the parent process judges."""
    for path in paths:
        folder = str(Path(path).resolve().parent)
        if folder not in sys.path:
            sys.path.append(folder)
        importlib.import_module(Path(path).stem)


def secret_seed(run_dir: Path) -> int:
    """The run's secret, fixed per run folder: the key from which each submission's secret
    seed is derived (``pipeline.submission_seed``), so re-runs agree."""
    path = run_dir / ".secret-seed"
    if not path.exists():
        path.write_text(str(1000 + secrets.randbelow(2**31)))
        os.chmod(path, 0o600)
    return int(path.read_text())


def hidden_paths(run_dir: Path, solutions_dir: Path, submissions: Path, db_url: str) -> list[Path]:
    """The folders the sandbox hides from student code: the run folder, the instructor's
    notebooks, the submissions, this repository's tests and solutions, and a SQLite
    gradebook's folder; each resolved, existing, once, never ``/``."""
    paths = [run_dir, solutions_dir, submissions, REPO / ".git", REPO / "tests", REPO / "solutions"]
    if db_url.startswith("sqlite:///"):
        paths.append(Path(db_url.removeprefix("sqlite:///")).parent)
    unique: list[Path] = []
    for p in (Path(p).resolve() for p in paths):
        if p.exists() and p != Path("/") and p not in unique:
            unique.append(p)
    return unique


def selected(jobs: list[Job], options: GradeOptions) -> list[Job]:
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


def scratch_root(run_dir: Path) -> Path:
    """This grading process's own scratch folder, ``RUN/scratch/run-<pid>``, made empty.
    Two graders may share a run folder (the gradebook lock allows it): each removes only
    its own views and job folders. Views are built anew each run, from the course_lib
    installed now."""
    (run_dir / "scratch").mkdir(exist_ok=True)
    os.chmod(run_dir / "scratch", 0o711)
    root = run_dir / "scratch" / f"run-{os.getpid()}"
    remove_tree(root)
    root.mkdir()
    os.chmod(root, 0o711)
    return root


def write_protections(run_dir: Path, protections: Protections, hosts: tuple[HostReport, ...]) -> None:
    """``RUN/protections.txt``: what isolates student code here, and on each cluster host."""
    lines = [
        f"coordinator: {protections.summary}" if hosts else protections.summary,
        *(h.line() for h in hosts),
    ]
    (run_dir / "protections.txt").write_text("\n".join(lines) + "\n")


def grade_resumable(
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
