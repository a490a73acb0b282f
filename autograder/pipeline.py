"""The grading pipeline: intake -> canonicalize -> execute -> re-verify -> reconcile -> merge.

``grade_job`` grades one (student, assignment) in its own scratch directory and
returns a ``SubmissionResult``; ``grade_jobs`` runs many in parallel and merges each
result into the gradebook as it finishes (under ``gradebook.GradebookLock``), so an
interrupted run keeps everything merged so far and a re-run resumes.

Scoring rule: nbgrader's score for a test cell counts only if re-verification of the
exercise agrees (same seeds pass, plus a secret seed for hidden tests, and no trapped
call to the course_lib reference). Otherwise the exercise gets 0 and the submission
is flagged with the reason.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_output

from autograder.canonical import canonicalize, nbgrader_meta
from autograder.course import CourseDir
from autograder.execute import prepare_scratch, run_notebook
from autograder.intake import Job
from autograder.sandbox import Limits, Protections
from autograder.verify import SETUP_FAILED, UNVERIFIABLE, Verdict, VerifyItem, run_verification, test_seeds

__all__ = ["ExerciseScore", "GradingContext", "SubmissionResult", "grade_job", "grade_jobs", "read_submission"]

GRADER_VERSION = "1"


@dataclass(frozen=True)
class ExerciseScore:
    name: str
    score: float
    max_score: float
    nbgrader_score: float  # before reconciliation with re-verification
    verified: bool | None  # None: no registered Exercise, nbgrader only
    note: str = ""


@dataclass
class SubmissionResult:
    student: str
    assignment: str
    status: str  # graded | failed | timed out | missing | unreadable | flagged
    reason: str = ""
    score: float | None = None  # None when nothing could be graded
    max_score: float = 0.0
    exercises: list[ExerciseScore] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digest: str = ""
    seconds: float = 0.0
    execute_seconds: float = 0.0
    verify_seconds: float = 0.0
    notebook: Any = None  # the graded notebook (not stored in the ledger)


@dataclass
class GradingContext:
    course: CourseDir
    sources: dict[str, nbformat.NotebookNode]  # instructor notebooks by assignment
    releases: dict[str, nbformat.NotebookNode]
    scratch_root: Path
    hide: list[Path]
    limits: Limits
    protections: Protections
    secret_seed: int
    support: list[Path] = field(default_factory=list)
    drop_demo: bool = True
    verify: bool = True

    def digest(self, job: Job) -> str:
        h = hashlib.sha256(GRADER_VERSION.encode())
        h.update(nbformat.writes(self.sources[job.assignment]).encode())
        h.update(str((self.secret_seed, self.drop_demo, self.verify)).encode())
        if job.path is not None and job.path.exists():
            h.update(job.path.read_bytes())
        return h.hexdigest()


def read_submission(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """The notebook, or None and why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror}"
    if not raw.strip():
        return None, "empty file"
    try:
        nb = nbformat.reads(raw.decode("utf-8", errors="replace"), as_version=4)
    except Exception as exc:
        return None, f"not a readable notebook ({type(exc).__name__}: {str(exc)[:120]})"
    if not isinstance(nb.get("cells"), list):
        return None, "not a notebook (no cells)"
    return nb, ""


def _exercise_registry(assignment: str) -> dict[str, Any]:
    from course_lib.checks import exercises

    return {ex.name: ex for ex in exercises(assignment)}


def _error(cell: nbformat.NotebookNode, ename: str, message: str) -> None:
    cell.outputs.append(new_output("error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"]))


def grade_job(job: Job, ctx: GradingContext) -> SubmissionResult:
    """Grade one submission; never raises (an internal error becomes status 'failed')."""
    start = time.monotonic()
    result = SubmissionResult(job.student, job.assignment, job.status, notes=list(job.notes), digest=ctx.digest(job))
    try:
        _grade(job, ctx, result)
    except Exception as exc:
        result.status, result.score = "failed", None
        result.reason = f"grader error: {type(exc).__name__}: {exc}"
        result.notes.append(traceback.format_exc(limit=3)[-600:])
    result.seconds = time.monotonic() - start
    return result


def _grade(job: Job, ctx: GradingContext, result: SubmissionResult) -> None:
    if job.status == "missing" or job.path is None:
        result.status, result.reason = "missing", "; ".join(job.notes[:1]) or "no notebook"
        return
    submitted, why = read_submission(job.path)
    if submitted is None:
        result.status, result.reason = "unreadable", f"{job.path.name}: {why}"
        return
    source, release = ctx.sources[job.assignment], ctx.releases[job.assignment]
    canon = canonicalize(submitted, source=source, release=release, drop_demo=ctx.drop_demo)
    result.notes.extend(canon.notes)

    # Execution and re-verification are independent (re-verification needs only the
    # answer cells), so they run at the same time, each in its own fresh sandbox.
    scratch = ctx.scratch_root / f"{job.student}__{job.assignment}"
    verify_scratch = ctx.scratch_root / f"{job.student}__{job.assignment}__verify"
    prepare_scratch(scratch, support=ctx.support, protections=ctx.protections)
    verdicts: dict[str, Verdict] = {}
    try:
        with ThreadPoolExecutor(max_workers=1) as side:
            if ctx.verify:
                prepare_scratch(verify_scratch, support=ctx.support, protections=ctx.protections)
                t0 = time.monotonic()
                pending = side.submit(_reverify, ctx, job.assignment, canon.answers, verify_scratch)
            run = run_notebook(
                canon.notebook, scratch=scratch, hide=ctx.hide, limits=ctx.limits, protections=ctx.protections
            )
            if ctx.verify:
                verdicts = pending.result()
                result.verify_seconds = time.monotonic() - t0
        result.execute_seconds = run.seconds
        executed = run.notebook if run.notebook is not None else canon.notebook
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(verify_scratch, ignore_errors=True)

    broken = next((v.error for v in verdicts.values() if v.error.startswith(SETUP_FAILED)), "")
    if broken:  # the grader's fault, not the student's: never a flag, never a silent pass
        result.status, result.reason = "failed", f"re-verification could not run: {broken}"
        return
    _mark_unexecuted(executed, run.stopped_at if not run.completed else None, run)
    _reconcile(executed, source, verdicts, ctx, result, job.assignment)
    result.notebook = executed
    result.max_score = sum(e.max_score for e in result.exercises)
    result.score = sum(e.score for e in result.exercises)
    if run.notebook is None:
        result.status, result.reason, result.score = "failed", run.error or "no result from the sandbox", None
    elif result.flags:
        result.status, result.reason = "flagged", "; ".join(result.flags)
    elif run.timed_out:
        result.status = "timed out"
        result.reason = run.error or f"stopped at cell {run.stopped_at}; points before it kept"
    elif run.kernel_died:
        result.status, result.reason = "failed", f"kernel died at cell {run.stopped_at}; points before it kept"
    elif run.error:
        result.status, result.reason = "failed", run.error
        if not any(c.get("execution_count") for c in executed.cells if c.cell_type == "code"):
            result.score = None  # nothing ran: no score at all, never an honest-looking 0
    else:
        result.status = "graded"


def _mark_unexecuted(nb: nbformat.NotebookNode, stopped_at: int | None, run: Any) -> None:
    """Test cells that never ran must not score: nbgrader gives full marks to a grade
    cell without an error output."""
    if stopped_at is None and run.notebook is not None and run.completed:
        return
    why = "the kernel died" if run.kernel_died else "the notebook ran out of time" if run.timed_out else "execution failed"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not nbgrader_meta(cell).get("grade"):
            continue
        # Without a known stop (hard kill), a cell that never got an execution count never ran.
        if (index > stopped_at) if stopped_at is not None else cell.get("execution_count") is None:
            cell.outputs = []
            _error(cell, "NotExecuted", f"autograder: not run because {why} earlier")


def _reverify(ctx: GradingContext, assignment: str, answers: dict[str, str], scratch: Path) -> dict[str, Verdict]:
    registry = _exercise_registry(assignment)
    source = ctx.sources[assignment]
    setup = next((c.source for c in source.cells if nbgrader_meta(c).get("grade_id") == "setup"), "")
    items = []
    for name, ex in registry.items():
        if name not in answers:
            continue
        seeds: set[int] = {ctx.secret_seed}
        for cell in source.cells:
            if nbgrader_meta(cell).get("grade_id") in (f"test_{name}", f"test_{name}_hidden"):
                seeds.update(test_seeds(cell.source))
        items.append(VerifyItem(exercise=ex, answer=answers[name], seeds=tuple(sorted(seeds))))
    return run_verification(
        items, setup=setup, scratch=scratch, hide=ctx.hide, limits=ctx.limits, protections=ctx.protections
    )


def _reconcile(
    nb: nbformat.NotebookNode,
    source: nbformat.NotebookNode,
    verdicts: dict[str, Verdict],
    ctx: GradingContext,
    result: SubmissionResult,
    assignment: str,
) -> None:
    from nbgrader.utils import determine_grade

    canonical = {nbgrader_meta(c).get("grade_id"): c for c in source.cells}
    groups: dict[str, list[nbformat.NotebookNode]] = {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade") and cell.cell_type == "code":
            gid = meta["grade_id"]
            name = gid.removeprefix("test_").removesuffix("_hidden")
            groups.setdefault(name, []).append(cell)
    registry = _exercise_registry(assignment) if ctx.verify else {}
    for name, cells in groups.items():
        scores = [determine_grade(c)[0] or 0.0 for c in cells]
        max_score = sum(float(nbgrader_meta(c)["points"]) for c in cells)
        nb_score = float(sum(scores))
        verdict = verdicts.get(name)
        if name not in registry:
            result.exercises.append(ExerciseScore(name, nb_score, max_score, nb_score, None, "not re-verified"))
            continue
        if verdict is None:  # no answer cell found: the tests ran against nothing
            result.exercises.append(ExerciseScore(name, nb_score, max_score, nb_score, nb_score == 0, "no answer"))
            if nb_score > 0:
                result.flags.append(f"{name}: tests passed but no answer cell was found")
                _zero(cells, "no answer cell for this exercise")
                result.exercises[-1] = ExerciseScore(name, 0.0, max_score, nb_score, False, "no answer")
            continue
        if verdict.error.startswith(UNVERIFIABLE):  # the grader's limit: said, never hidden
            result.notes.append(f"{name}: {verdict.error}; nbgrader's score kept")
            result.exercises.append(ExerciseScore(name, nb_score, max_score, nb_score, None, verdict.error[:200]))
            continue
        problem = ""
        if verdict.trapped:
            problem = f"called course_lib's reference {', '.join(verdict.trapped)}"
        else:
            for cell, score in zip(cells, scores, strict=True):
                gid = nbgrader_meta(cell)["grade_id"]
                seeds = set(test_seeds(canonical[gid].source)) if gid in canonical else {0}
                if gid.endswith("_hidden"):
                    seeds.add(ctx.secret_seed)
                agrees = all(verdict.seeds.get(s, False) for s in seeds)
                if score > 0 and not agrees:
                    why = verdict.error or verdict.message or "different result"
                    problem = f"{gid} passed in the notebook but not on re-verification ({why[:200]})"
                    break
        if problem:
            _zero(cells, problem)
            result.flags.append(f"{name}: {problem}")
            result.exercises.append(ExerciseScore(name, 0.0, max_score, nb_score, False, problem))
        else:
            result.exercises.append(ExerciseScore(name, nb_score, max_score, nb_score, True))


def _zero(cells: list[nbformat.NotebookNode], why: str) -> None:
    for cell in cells:
        _error(cell, "AutograderVerificationError", why)


def grade_jobs(
    jobs: list[Job],
    ctx: GradingContext,
    *,
    workers: int,
    on_result: Callable[[SubmissionResult], None],
    progress: Callable[[SubmissionResult], None] | None = None,
) -> list[SubmissionResult]:
    """Grade in parallel; ``on_result`` (the gradebook merge) runs as each job ends."""
    results: list[SubmissionResult] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(grade_job, job, ctx) for job in jobs]
        for future in as_completed(futures):
            res = future.result()
            try:
                on_result(res)
            except Exception as exc:  # one failed merge must not stop the batch
                res.status, res.score = "failed", None
                res.reason = f"could not save the result: {type(exc).__name__}: {exc}"[:300]
                res.notebook = None
                on_result(res)
            results.append(res)
            if progress is not None:
                progress(res)
    order = {(j.student, j.assignment): i for i, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order[(r.student, r.assignment)])
