"""What a grading task carries to another host, and how a worker grades it.

Other hosts do not share the coordinator's file system, so a ``SubmissionTask`` is plain
picklable data: the submission's bytes (the notebook and the files handed in beside it,
each with its path relative to the student's folder), the assignment's instructor and
release notebooks (``CourseBundle``, shared by every task of a run), the limits, the
submission's secret seed and ledger digest (both computed by the coordinator, which alone
holds the run's secret), and the sources of the support modules the notebooks import.

On the worker, ``run_task`` lays the files out under its own root (a folder named by a
counter, never by anything the student wrote; every relative path is checked again),
builds its ``GradingContext`` once per course bundle (views built once per worker and
reused) and returns ``TaskDone``: the ``SubmissionResult`` (with the graded notebook) and
which host graded it. The coordinator alone merges it into the gradebook and the ledger.

``code_digest`` (the installed ``course_lib`` + ``autograder`` sources) and
``HostReport`` let the coordinator refuse a worker whose code differs from its own.

``warm_up`` (run by the coordinator on each worker it accepts, as soon as it is seen)
does in the background what a worker's first task would otherwise do on its critical
path: start the warm-start template (``autograder.template``), import what grading
imports (nbgrader, the course_lib exercise registry) and resolve every exercise's
references. ``run_task`` waits for it to end, so a task never imports a module the
warm-up is importing at the same moment.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import importlib
import itertools
import logging
import os
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import nbformat

from autograder.intake import MAX_NOTEBOOK_BYTES, Job, SubmissionError, item_key, read_capped
from autograder.limits import Limits, Protections
from autograder.pipeline import GradingContext, SubmissionResult, grade_job, preload
from autograder.results import Status
from autograder.sandbox import detect_protections, remove_tree

__all__ = [
    "CourseBundle",
    "HandedFile",
    "HostReport",
    "SubmissionTask",
    "TaskDone",
    "WorkerRefused",
    "bundle_course",
    "code_digest",
    "host_report",
    "infrastructure_failure",
    "run_task",
    "task_for",
    "warm_up",
    "warm_wait",
]

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
WORKER_DIR_ENV = "AUTOGRADER_WORKER_DIR"  # where a worker keeps its scratch (default: the temp dir)


class WorkerRefused(RuntimeError):
    """A task reached a worker whose code differs from the coordinator's."""


@dataclass(frozen=True)
class HandedFile:
    """One file of a submission: its path relative to the student's folder and its bytes.
    ``data`` is None for a file too large to carry: the worker recreates it as a sparse
    file of ``size`` bytes, so the size caps decide exactly as on the coordinator."""

    rel: str
    data: bytes | None
    size: int


@dataclass(frozen=True)
class CourseBundle:
    """What every task of a run shares: the course's notebooks and support modules."""

    sources: dict[str, str]  # assignment -> instructor notebook (nbformat JSON)
    releases: dict[str, str]
    support: tuple[HandedFile, ...]  # support module files (name -> source), imported on the worker
    digest: str  # of all the above: the worker's cache key


@dataclass(frozen=True)
class SubmissionTask:
    student: str
    assignment: str
    display: str
    notes: tuple[str, ...]
    notebook: HandedFile  # rel: the notebook's path relative to the student's folder
    beside: tuple[HandedFile, ...]
    alongside: tuple[tuple[int, str], ...]  # (index into beside, path relative to the notebook)
    seed: int  # ``ctx.seed_for(job)`` on the coordinator
    digest: str  # ``ctx.digest(job)`` on the coordinator: the ledger's resume key
    limits: Limits
    drop_demo: bool
    verify: bool
    code_digest: str  # the coordinator's ``code_digest()``
    notebook_name: str = ""  # the notebook, when the assignment holds several (``Job.notebook_name``)
    provided: tuple[HandedFile, ...] = ()  # ``Job.provided``: rel is the path relative to the notebook

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.student, item_key(self.assignment, self.notebook_name), self.digest)


@dataclass(frozen=True)
class TaskDone:
    result: SubmissionResult
    worker: str  # the dask worker's address
    host: str


@dataclass(frozen=True)
class HostReport:
    """One worker as the coordinator saw it: accepted or refused, and what it graded."""

    worker: str
    host: str
    code_digest: str
    protections: Protections | None
    refused: str = ""  # why it gets no tasks; "" when accepted
    graded: int = 0

    def line(self) -> str:
        if self.refused:
            return f"worker {self.worker} ({self.host}): REFUSED — {self.refused}"
        walls = self.protections.summary if self.protections is not None else "protections unknown"
        return f"worker {self.worker} ({self.host}): graded {self.graded}; {walls}"


def code_digest() -> str:
    """SHA-256 of the installed ``course_lib`` and ``autograder`` sources (``.py`` files
    and the nbgrader config), by relative path: two hosts grade alike only if it agrees."""
    h = hashlib.sha256()
    for package in ("course_lib", "autograder"):
        root = REPO / package
        files = sorted(
            p for p in root.rglob("*") if p.is_file() and (p.suffix == ".py" or p.parent.name == "config")
        )
        for path in files:
            if "__pycache__" in path.parts:
                continue
            h.update(path.relative_to(REPO).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def host_report(dask_worker: Any) -> HostReport:
    """This worker's own report (``client.run`` runs it on the worker, passing the worker)."""
    return HostReport(dask_worker.address, socket.gethostname(), _own_digest(), detect_protections())


_DIGEST_LOCK = threading.Lock()
_DIGEST: list[str] = []


def _own_digest() -> str:
    with _DIGEST_LOCK:
        if not _DIGEST:
            _DIGEST.append(code_digest())
        return _DIGEST[0]


# ---------------------------------------------------------------------------------------
# Coordinator side: a Job (paths on this host) -> a task (bytes).


def _handed(path: Path, rel: str) -> HandedFile:
    try:
        data = read_capped(path, MAX_NOTEBOOK_BYTES)
    except SubmissionError:
        try:  # too large (or unreadable): only its size travels, never unbounded bytes
            size = os.lstat(path).st_size
        except OSError:
            size = 0
        return HandedFile(rel, None, size)
    return HandedFile(rel, data, len(data))


def bundle_course(ctx: GradingContext) -> CourseBundle:
    sources = {k: nbformat.writes(v) for k, v in sorted(ctx.sources.items())}
    releases = {k: nbformat.writes(v) for k, v in sorted(ctx.releases.items())}
    support = tuple(_handed(Path(p), Path(p).name) for p in ctx.support if Path(p).is_file())
    if len(support) != len(ctx.support):
        raise ValueError(
            "cluster grading: support modules must be single files (a folder cannot be sent yet)"
        )
    h = hashlib.sha256(repr((sources, releases, [(s.rel, s.data) for s in support])).encode())
    return CourseBundle(sources, releases, support, h.hexdigest())


def task_for(job: Job, ctx: GradingContext, *, code: str) -> SubmissionTask | None:
    """The task of ``job``; None when there is nothing to send (missing or unreadable at
    intake): the coordinator grades those itself, no sandbox needed."""
    if job.status != "pending" or job.path is None:
        return None
    root = job.folder or job.path.parent
    beside_paths = list(job.beside)
    beside = tuple(_handed(p, _rel(p, root, i)) for i, p in enumerate(beside_paths))
    index = {p: i for i, p in enumerate(beside_paths)}
    alongside = tuple((index[p], rel.as_posix()) for p, rel in job.alongside if p in index)
    return SubmissionTask(
        student=job.student, assignment=job.assignment, display=job.display, notes=tuple(job.notes),
        notebook=_handed(job.path, _rel(job.path, root, -1)), beside=beside, alongside=alongside,
        seed=ctx.seed_for(job), digest=ctx.digest(job), limits=ctx.limits, drop_demo=ctx.drop_demo,
        verify=ctx.verify, code_digest=code, notebook_name=job.notebook_name,
        provided=tuple(_handed(p, rel.as_posix()) for p, rel in job.provided),
    )  # fmt: skip


def _rel(path: Path, root: Path, index: int) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:  # not under the student's folder: keep its name, made unique
        return f"_outside{index}/{path.name}"


# ---------------------------------------------------------------------------------------
# Worker side.


@dataclass
class _TaskContext(GradingContext):
    """The worker's context for one task: seed and digest as the coordinator computed them
    (the run's secret never leaves the coordinator)."""

    task_seed: int = 0
    task_digest: str = ""

    def seed_for(self, job: Job) -> int:
        return self.task_seed

    def digest(self, job: Job) -> str:
        return self.task_digest


@dataclass
class _WorkerState:
    root: Path  # root 0700: intake copies, support modules, scratch (hidden from every sandbox)
    contexts: dict[str, GradingContext] = field(default_factory=dict)  # by bundle digest
    counter: itertools.count = field(default_factory=itertools.count)


_STATE_LOCK = threading.Lock()
_STATE: list[_WorkerState] = []


def _state() -> _WorkerState:
    with _STATE_LOCK:
        if not _STATE:
            base = Path(os.environ.get(WORKER_DIR_ENV) or tempfile.gettempdir())
            base.mkdir(parents=True, exist_ok=True)
            root = Path(tempfile.mkdtemp(prefix="autograder-worker-", dir=base)).resolve()
            os.chmod(root, 0o700)
            atexit.register(remove_tree, root)
            _STATE.append(_WorkerState(root))
        return _STATE[0]


def _safe_rel(rel: str) -> PurePosixPath:
    """A relative path with ordinary components only (the coordinator checked it too)."""
    path = PurePosixPath(rel)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") or "\0" in p for p in path.parts):
        raise ValueError(f"task: unsafe relative path {rel!r}")
    return path


def _write(root: Path, handed: HandedFile) -> Path:
    target = root / _safe_rel(handed.rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        if handed.data is not None:
            os.write(fd, handed.data)
        else:
            os.ftruncate(fd, handed.size)  # sparse: the caps see the size it had
    finally:
        os.close(fd)
    return target


def _context(state: _WorkerState, bundle: CourseBundle) -> GradingContext:
    """The worker's context for a course bundle, built once (its views are reused)."""
    from autograder.course import CourseDir

    with _STATE_LOCK:
        ctx = state.contexts.get(bundle.digest)
        if ctx is not None:
            return ctx
        home = state.root / bundle.digest[:16]
        support_dir = home / "support"
        support_dir.mkdir(parents=True, exist_ok=True)
        support = []
        for handed in bundle.support:
            path = support_dir / _safe_rel(handed.rel).name
            path.write_bytes(handed.data or b"")
            support.append(path)
        if str(support_dir) not in sys.path:
            sys.path.append(str(support_dir))
        for path in support:  # support modules register their exercises when imported
            importlib.import_module(path.stem)
        scratch = home / "scratch"
        scratch.mkdir(exist_ok=True)
        os.chmod(scratch, 0o711)
        hidden = [state.root, REPO / ".git", REPO / "tests", REPO / "solutions"]
        ctx = GradingContext(
            course=CourseDir.at(home / "course"),  # unused by grading: the coordinator merges
            sources={k: nbformat.reads(v, as_version=4) for k, v in bundle.sources.items()},
            releases={k: nbformat.reads(v, as_version=4) for k, v in bundle.releases.items()},
            scratch_root=scratch,
            hide=[p for p in hidden if p.exists()],
            limits=Limits(),
            protections=detect_protections(),
            secret_seed=0,  # never used on a worker: each task carries its own seed
            support=support,
        )
        state.contexts[bundle.digest] = ctx
        return ctx


# ---------------------------------------------------------------------------------------
# Worker warm-up.

_WARM_LOCK = threading.Lock()
_WARM: list[threading.Thread] = []  # the one warm-up thread of this worker, once started


def warm_up() -> bool:
    """Start warming this worker in a background thread, once per process, and return at
    once (``client.run`` calls it in the worker's event loop, which must not block).
    True when this call started it."""
    with _WARM_LOCK:
        if _WARM:
            return False
        thread = threading.Thread(target=_warm, name="autograder-warm-up", daemon=True)
        thread.start()
        _WARM.append(thread)
        return True


def warm_wait(timeout: float | None = None) -> bool:
    """Wait for this worker's warm-up (starting it if nobody did); True once it has ended."""
    warm_up()
    _WARM[0].join(timeout)
    return not _WARM[0].is_alive()


def _warm() -> None:
    """What every first task needs and the grading threads of one process share: the
    template (started first: it imports in its own process meanwhile), nbgrader and the
    exercise registry (``pipeline.preload``), every exercise's references resolved
    (what re-verification does before it builds a view), the worker's scratch root."""
    try:
        from autograder import template
        from autograder.views import withheld_for
        from course_lib.checks import exercises

        template.warm_up(detect_protections())
        preload()
        importlib.import_module("autograder.course")  # what ``_context`` imports
        for exercise in exercises():
            withheld_for(exercise)
        _state()
    except Exception as exc:  # the first task then does it itself, and reports what fails
        log.warning("autograder: warming this worker failed: %s: %s", type(exc).__name__, exc)


def run_task(task: SubmissionTask, bundle: CourseBundle) -> TaskDone:
    """Grade one task on this worker (the dask task function). Raises only for the
    infrastructure's failures (a refused worker, a file that cannot be laid out), which
    dask retries; the student's crash or timeout is a result."""
    from distributed import get_worker

    if _own_digest() != task.code_digest:
        raise WorkerRefused(
            f"worker {socket.gethostname()}: code digest {_own_digest()[:12]} differs from the coordinator's {task.code_digest[:12]}"
        )
    warm_wait()
    state = _state()
    base = _context(state, bundle)
    folder = state.root / "intake" / str(next(state.counter))
    remove_tree(folder)
    folder.mkdir(parents=True, mode=0o700)
    theirs = folder.with_name(f"{folder.name}.provided")  # the instructor's files, apart from the student's
    remove_tree(theirs)
    theirs.mkdir(mode=0o700)
    try:
        beside = [_write(folder, f) for f in task.beside]
        provided = tuple((_write(theirs, f), PurePosixPath(f.rel)) for f in task.provided)
        notebook = _write(folder, task.notebook)
        job = Job(
            task.student, task.assignment, notebook, notes=list(task.notes), display=task.display,
            beside=tuple(beside), folder=folder, notebook_name=task.notebook_name,
            alongside=tuple((beside[i], PurePosixPath(rel)) for i, rel in task.alongside), provided=provided,
        )  # fmt: skip
        ctx = _TaskContext(
            **{f.name: getattr(base, f.name) for f in dataclasses.fields(GradingContext)},
            task_seed=task.seed,
            task_digest=task.digest,
        )
        ctx.limits, ctx.drop_demo, ctx.verify = task.limits, task.drop_demo, task.verify
        result = grade_job(job, ctx)
    finally:
        remove_tree(folder)
        remove_tree(theirs)
    return TaskDone(result, get_worker().address, socket.gethostname())


def infrastructure_failure(task: SubmissionTask, why: str) -> SubmissionResult:
    """The result of a task dask gave up on (retried once already): FAILED, and the next
    ``grade`` run grades it again (``retry``)."""
    return SubmissionResult(
        task.student, task.assignment, Status.FAILED, reason=f"grader error: {why}"[:300], notes=list(task.notes),
        retry=True, digest=task.digest, display=task.display, notebook_name=task.notebook_name,
    )  # fmt: skip
