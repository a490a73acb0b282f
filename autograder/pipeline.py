"""The grading pipeline: intake -> canonicalize -> execute + re-verify -> score -> merge.

``grade_job`` grades one (student, assignment) in its own scratch directory and
returns a ``SubmissionResult``; ``grade_jobs`` runs many in parallel and merges each
result into the gradebook as it finishes (under ``gradebook.GradebookLock``), so an
interrupted run keeps everything merged so far and a re-run resumes.

This module gathers facts (nbgrader's cell scores, re-verification verdicts, static
evidence); ``autograder.scoring`` decides, as pure functions. The hidden test cells of
re-verified exercises never reach the student's kernel: their source is replaced by a
placeholder, their points come from re-verification, and the outcome is written into
the cell before nbgrader's ``SaveAutoGrades`` reads it.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_output

from autograder.beside import prepare_beside
from autograder.canonical import canonicalize
from autograder.cells import is_grade, nbgrader_meta
from autograder.course import CourseDir
from autograder.execute import ExecutionResult, prepare_scratch, run_notebook
from autograder.intake import (
    MAX_NOTEBOOK_BYTES,
    Job,
    NotebookItem,
    SubmissionError,
    read_capped,
    read_submission,
)
from autograder.limits import Limits, Protections
from autograder.results import Evidence, Outcome, Status, Verdict, VerifyProblem
from autograder.sandbox import remove_tree
from autograder.scan import scan_cells, scan_files
from autograder.scoring import (
    CellScore,
    ExerciseOutcome,
    LocatedEvidence,
    NotebookRun,
    RunEnd,
    TestCell,
    decide_submission,
    evidence_for,
    score_exercise,
)
from autograder.verify import reverify, test_seeds

__all__ = [
    "HIDDEN_PLACEHOLDER",
    "Engine",
    "ExerciseScore",
    "GradingContext",
    "SubmissionResult",
    "grade_job",
    "grade_jobs",
    "preload",
    "read_submission",
    "submission_seed",
    "thread_engine",
]

GRADER_VERSION = "2"
HIDDEN_PLACEHOLDER = "# Hidden tests: run by the autograder in a separate process.\n"
_HIDDEN_MARK = "BEGIN HIDDEN TESTS"


@dataclass(frozen=True)
class ExerciseScore:
    name: str
    score: float
    max_score: float
    nbgrader_score: float  # what nbgrader alone gave
    verified: bool | None  # True: verified; None: nbgrader only; False: anything else
    note: str = ""  # the outcome's message: what to fix, or what was found
    outcome: Outcome | None = None  # None only in ledger records written before outcomes existed
    evidence: tuple[Evidence, ...] = ()
    review: str = ""  # instructor only: the reference the answer reproduces (never a flag)


@dataclass
class SubmissionResult(NotebookItem):
    student: str
    assignment: str
    status: Status
    reason: str = ""  # rendered from the typed fields, for people
    score: float | None = None  # None when nothing could be graded
    max_score: float = 0.0
    exercises: list[ExerciseScore] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)  # why it is flagged; empty unless flagged
    notes: list[str] = field(default_factory=list)
    retry: bool = False  # a grader-side failure: the next ``grade`` run grades it again
    digest: str = ""
    seconds: float = 0.0
    execute_seconds: float = 0.0
    verify_seconds: float = 0.0
    # Seconds per stage of the notebook run (launch, jail, kernel, cells, exit: see
    # ``execute.ExecutionResult.stages``), for profiling; empty when it never ran.
    stage_seconds: dict[str, float] = field(default_factory=dict)
    notebook: Any = None  # the graded notebook (not stored in the ledger)
    display: str = ""  # the student's name as the LMS gave it (``student`` is the safe key)
    notebook_name: str = ""  # the nbgrader notebook when not named after the assignment (``grade --course``)


@dataclass
class GradingContext:
    course: CourseDir
    sources: dict[str, nbformat.NotebookNode]  # instructor notebooks by ``Job.key``
    releases: dict[str, nbformat.NotebookNode]
    scratch_root: Path  # per-job scratch folders, and views/ (course_lib views shared by the run)
    hide: list[Path]
    limits: Limits
    protections: Protections
    secret_seed: int  # the run's secret: the key of every submission's secret seed (``seed_for``)
    support: list[Path] = field(default_factory=list)
    drop_demo: bool = True
    verify: bool = True

    @property
    def views(self) -> Path:
        """The run's course_lib views (one per exercise, built once, shared by the grading threads)."""
        return self.scratch_root / "views"

    def seed_for(self, job: Job) -> int:
        """The secret seed of this submission's hidden cases (see ``submission_seed``)."""
        try:  # never follows a link, never reads more than a notebook may hold
            data = read_capped(job.path, MAX_NOTEBOOK_BYTES) if job.path is not None else b""
        except SubmissionError as exc:
            data = str(exc).encode()
        return submission_seed(self.secret_seed, job.key, job.student, data)

    def digest(self, job: Job) -> str:
        h = hashlib.sha256(GRADER_VERSION.encode())
        source = self.sources.get(job.key)  # None for a row refused at intake (no such assignment)
        h.update(nbformat.writes(source).encode() if source is not None else b"")
        h.update(str((self.secret_seed, self.drop_demo, self.verify)).encode())
        for path in (
            job.path,
            *job.beside,
            *(p for p, _ in job.provided),
        ):  # a changed data file of the instructor's re-grades
            if path is None:
                continue
            try:  # never follows a link, never reads more than a notebook may hold
                h.update(read_capped(path, MAX_NOTEBOOK_BYTES))
            except SubmissionError as exc:
                h.update(str(exc).encode())
        return h.hexdigest()


def preload() -> None:
    """Import what the grading threads use before they start: concurrent first imports
    of one package can see it half-initialized."""
    import nbgrader.api
    import nbgrader.preprocessors
    import nbgrader.utils  # noqa: F401

    from course_lib.checks import exercises

    exercises()


def submission_seed(run_secret: int, assignment: str, student: str, notebook: bytes) -> int:
    """The secret seed of one submission: an HMAC (keyed by the run's secret) of the
    assignment, the student and the SHA-256 of the notebook's bytes, in [1000, 1000 + 2**31).

    Why per submission: a student's code can read the hidden cases in the re-verification
    process; with one seed per run folder, a resubmission could hard-code their answers.
    The same bytes re-graded get the same seed (a re-run or resume agrees with itself);
    any change to the notebook draws new hidden cases."""
    message = f"{assignment}\0{student}\0{hashlib.sha256(notebook).hexdigest()}".encode()
    mac = hmac.new(str(run_secret).encode(), message, hashlib.sha256).digest()
    return 1000 + int.from_bytes(mac[:8], "big") % 2**31


def _exercise_registry(assignment: str) -> dict[str, Any]:
    from course_lib.checks import exercises

    return {ex.name: ex for ex in exercises(assignment)}


def _exercise_of(grade_id: str) -> str:
    return grade_id.removeprefix("test_").removesuffix("_hidden")


def _is_test(cell: nbformat.NotebookNode) -> bool:
    """A graded code cell (nbgrader's test cells; ``cells.is_test`` also excludes a graded
    solution cell, which nbgrader grades by hand and this pipeline treats as a test)."""
    return cell.cell_type == "code" and is_grade(cell)


def grade_job(job: Job, ctx: GradingContext) -> SubmissionResult:
    """Grade one submission; never raises (an internal error becomes FAILED, retried by the next run)."""
    start = time.monotonic()
    result = SubmissionResult(
        job.student,
        job.assignment,
        Status.FAILED,
        notes=list(job.notes),
        digest=ctx.digest(job),
        display=job.display,
        notebook_name=job.notebook_name,
    )
    try:
        _grade(job, ctx, result)
    except Exception as exc:
        result.status, result.score, result.retry = Status.FAILED, None, True
        result.reason = f"grader error: {type(exc).__name__}: {exc}"
        result.notes.append(traceback.format_exc(limit=3)[-600:])
    result.seconds = time.monotonic() - start
    return result


@dataclass(frozen=True)
class _Layout:
    """What the pipeline knows about the graded notebook before running it."""

    tests: dict[str, list[int]]  # exercise -> indices of its test cells, in order
    hidden: frozenset[int]  # indices of test cells whose source is withheld
    answered: frozenset[str]  # exercises with an answer cell
    stubs: frozenset[str]  # ... that is still the released stub
    answer_cells: dict[int, str]  # index -> exercise, for the answer cells


def _grade_id(cell: nbformat.NotebookNode) -> str:
    """The cell's nbgrader grade_id ("" for a cell without one)."""
    return str(nbgrader_meta(cell).get("grade_id") or "")


def _layout(canon: Any, release: nbformat.NotebookNode, registry: dict[str, Any]) -> _Layout:
    nb = canon.notebook
    stubs = {nbgrader_meta(c).get("grade_id"): c.source.strip() for c in release.cells}
    tests: dict[str, list[int]] = {}
    hidden, answer_cells = set(), {}
    for index, cell in enumerate(nb.cells):
        gid = _grade_id(cell)
        if _is_test(cell):
            tests.setdefault(_exercise_of(gid), []).append(index)
            # Only a registered exercise can be scored without nbgrader running its hidden tests.
            if _HIDDEN_MARK in cell.source and _exercise_of(gid) in registry:
                hidden.add(index)
        elif gid in canon.answers:
            answer_cells[index] = gid
    answered = {name for name in canon.answers if name not in canon.missing_answers}
    unchanged = {name for name in answered if canon.answers[name].strip() == stubs.get(name)}
    return _Layout(tests, frozenset(hidden), frozenset(answered), frozenset(unchanged), answer_cells)


def _static_evidence(nb: nbformat.NotebookNode, layout: _Layout, job: Job) -> list[LocatedEvidence]:
    """Scan the student-written code cells (answers and cells without nbgrader metadata)
    in notebook order, as the kernel runs them — so an alias made in one cell is known in
    the next — and the files submitted beside the notebook. Each piece of evidence names
    its cell (a typed field), which places it before or after each exercise's tests."""
    cells = [
        (index, cell.source)
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (not nbgrader_meta(cell) or index in layout.answer_cells)
    ]
    located = [
        LocatedEvidence(ev, ev.cell, layout.answer_cells.get(ev.cell) if ev.cell is not None else None)
        for ev in scan_cells(cells)
    ]
    if job.beside:
        root = job.folder or (job.path.parent if job.path is not None else Path("."))
        located.extend(LocatedEvidence(ev, None) for ev in scan_files(job.beside, root))
    return located


def _withhold_hidden(nb: nbformat.NotebookNode, layout: _Layout) -> nbformat.NotebookNode:
    """The notebook the student's kernel runs: hidden test source replaced by a placeholder."""
    shown = copy.deepcopy(nb)
    for index in layout.hidden:
        shown.cells[index].source = HIDDEN_PLACEHOLDER
    return shown


def _grade(job: Job, ctx: GradingContext, result: SubmissionResult) -> None:
    if job.status == Status.UNREADABLE:  # intake could not take it (a link, a fifo, a damaged zip entry)
        result.status, result.reason = Status.UNREADABLE, "; ".join(job.notes[:1]) or "not a readable file"
        return
    if job.status == Status.MISSING or job.path is None:
        result.status, result.reason = Status.MISSING, "; ".join(job.notes[:1]) or "no notebook"
        return
    submitted, why = read_submission(job.path)
    if submitted is None:
        result.status, result.reason = Status.UNREADABLE, f"{job.path.name}: {why}"
        return
    source, release = ctx.sources[job.key], ctx.releases[job.key]
    canon = canonicalize(submitted, source=source, release=release, drop_demo=ctx.drop_demo)
    result.notes.extend(canon.notes)
    registry = _exercise_registry(job.notebook_id) if ctx.verify else {}
    layout = _layout(canon, release, registry)
    graded = _withhold_hidden(canon.notebook, layout)
    located = _static_evidence(canon.notebook, layout, job)
    secret = ctx.seed_for(job)
    seeds = _seeds(source, secret)

    # Execution and re-verification are independent, so they run at the same time,
    # each in its own fresh sandbox.
    scratch = ctx.scratch_root / _job_folder(job)
    beside = _beside_dir(ctx, job)
    verdicts: dict[str, Verdict] = {}
    to_verify = [ex for name, ex in registry.items() if name in layout.answered and name in layout.tests]
    try:
        course_modules = frozenset(p.name.split(".")[0] for p in ctx.support)
        handed = prepare_beside(job.alongside, beside, root=job.folder or job.path.parent, course_modules=course_modules,
                                provided=job.provided)  # fmt: skip
        result.notes.extend(handed.notes())
        prepare_scratch(scratch, support=ctx.support, protections=ctx.protections, beside=beside)
        with ThreadPoolExecutor(max_workers=1) as side:
            t0 = time.monotonic()
            pending = (
                side.submit(_reverify, ctx, job, graded, to_verify, seeds, secret) if to_verify else None
            )
            run = run_notebook(
                graded, scratch=scratch, hide=ctx.hide, limits=ctx.limits, protections=ctx.protections
            )
            if pending is not None:
                verdicts = pending.result()
                result.verify_seconds = time.monotonic() - t0
        result.execute_seconds = run.seconds
        result.stage_seconds = dict(run.stages)
    finally:
        remove_tree(scratch)
        remove_tree(beside)

    executed = run.notebook if run.notebook is not None else graded
    not_run = _not_run(executed, run)
    outcomes = []
    for name, indices in layout.tests.items():
        cells = [_test_cell(executed.cells[i], i, seeds, not_run, layout) for i in indices]
        evidence = evidence_for(name, indices[0], located)
        outcome = score_exercise(
            name, cells, verdicts.get(name), registered=name in registry, answered=name in layout.answered,
            stub=name in layout.stubs, evidence=evidence,
        )  # fmt: skip
        _write_outcome(executed, indices, outcome, layout, not_run)
        outcomes.append(outcome)

    problems = [
        v.problem
        for v in verdicts.values()
        if v.problem in (VerifyProblem.SETUP_FAILED, VerifyProblem.NO_REPORT)
    ]
    decision = decide_submission(
        _run_facts(run, executed), outcomes, [item.evidence for item in located], problems
    )
    result.exercises = [_exercise_score(o) for o in outcomes]
    result.status, result.reason, result.retry = decision.status, decision.reason, decision.retry
    result.evidence = list(decision.evidence)
    result.notes.extend(decision.notes)
    result.notes.extend(f"{o.name}: {o.message}" for o in outcomes if o.outcome is Outcome.NOT_VERIFIED)
    result.max_score = sum(o.max_score for o in outcomes)
    result.score = sum(o.score for o in outcomes) if decision.scored else None
    result.notebook = executed if run.notebook is not None and decision.scored else None


def _job_folder(job: Job) -> str:
    """The job's scratch folder name: one per (student, notebook)."""
    return f"{job.student}__{job.assignment}" + (
        f"__{job.notebook_name}" if job.key != job.assignment else ""
    )


def _beside_dir(ctx: GradingContext, job: Job) -> Path:
    """The job's files handed in beside the notebook, prepared once for all its sandboxes."""
    return ctx.scratch_root / f"{_job_folder(job)}__beside"


def _seeds(source: nbformat.NotebookNode, secret: int) -> dict[str, frozenset[int]]:
    """grade_id -> the seeds its canonical cell checks (hidden cells: + the secret seed)."""
    out = {}
    for cell in source.cells:
        gid = _grade_id(cell)
        if _is_test(cell):
            extra = {secret} if gid.endswith("_hidden") or _HIDDEN_MARK in cell.source else set()
            out[gid] = frozenset(test_seeds(cell.source)) | extra
    return out


def _reverify(
    ctx: GradingContext,
    job: Job,
    graded: nbformat.NotebookNode,
    exercises: list[Any],
    seeds: dict[str, frozenset[int]],
    secret: int,
) -> dict[str, Verdict]:
    per_exercise: dict[str, set[int]] = {ex.name: {secret} for ex in exercises}
    for gid, cell_seeds in seeds.items():
        if _exercise_of(gid) in per_exercise:
            per_exercise[_exercise_of(gid)].update(cell_seeds)

    def once(todo: list[Any], attempt: int) -> dict[str, Verdict]:
        scratch = ctx.scratch_root / f"{_job_folder(job)}__verify{attempt}"
        prepare_scratch(
            scratch, support=ctx.support, protections=ctx.protections, beside=_beside_dir(ctx, job)
        )
        try:
            return reverify(
                graded, todo, seeds={ex.name: tuple(sorted(per_exercise[ex.name])) for ex in todo},
                scratch=scratch, hide=ctx.hide, limits=ctx.limits, protections=ctx.protections,
                views=ctx.views,
            )  # fmt: skip
        finally:
            remove_tree(scratch)

    try:
        verdicts = once(exercises, 0)
    except SystemError:  # the interpreter's own failure (see autograder.pyast), never the student's
        verdicts = once(exercises, 2)
    # No report is the infrastructure's failure (a killed process), not the student's:
    # one more try for exactly those exercises.
    again = [
        ex
        for ex in exercises
        if verdicts.get(ex.name) is None or verdicts[ex.name].problem is VerifyProblem.NO_REPORT
    ]
    if again:
        verdicts.update(once(again, 1))
    for ex in exercises:
        verdicts.setdefault(ex.name, Verdict(ex.name, problem=VerifyProblem.NO_REPORT))
    return verdicts


def _not_run(nb: nbformat.NotebookNode, run: ExecutionResult) -> frozenset[int]:
    """Indices of test cells nbgrader never ran (the run stopped earlier)."""
    if run.notebook is not None and run.completed:
        return frozenset()
    out = set()
    for index, cell in enumerate(nb.cells):
        if not _is_test(cell):
            continue
        # Without a known stop (hard kill), a cell that never got an execution count never ran.
        if (index > run.stopped_at) if run.stopped_at is not None else cell.get("execution_count") is None:
            out.add(index)
    return frozenset(out)


def _test_cell(
    cell: nbformat.NotebookNode,
    index: int,
    seeds: dict[str, frozenset[int]],
    not_run: frozenset[int],
    layout: _Layout,
) -> TestCell:
    from nbgrader.utils import determine_grade

    meta = nbgrader_meta(cell)
    gid = meta["grade_id"]
    score = None if index in not_run else float(determine_grade(cell)[0] or 0.0)
    message = next(
        (
            f"{o.get('ename', 'Error')}: {o.get('evalue', '')}"[:500]
            for o in cell.get("outputs", [])
            if o.output_type == "error"
        ),
        "",
    )
    return TestCell(
        gid,
        float(meta.get("points", 0)),
        seeds.get(gid, frozenset({0})),
        score,
        message,
        index in layout.hidden,
    )


def _write_outcome(
    nb: nbformat.NotebookNode,
    indices: list[int],
    outcome: ExerciseOutcome,
    layout: _Layout,
    not_run: frozenset[int],
) -> None:
    """Make each test cell say what scoring decided, so ``SaveAutoGrades`` (which reads
    outputs: an error output is 0, none is full marks) stores the same score."""
    for index, scored in zip(indices, outcome.cells, strict=True):
        cell = nb.cells[index]
        if index in layout.hidden or index in not_run:
            cell.outputs = []  # never ran the real test here: only our verdict stands
            if scored.score > 0:
                cell.outputs.append(
                    new_output("stream", name="stdout", text="autograder: checked in a separate process\n")
                )
        if scored.score == 0 < scored.max_score and not _has_error(cell):
            _error(cell, scored)
        elif scored.score >= scored.max_score:
            cell.outputs = [o for o in cell.outputs if not _is_failure(o)]


def _is_failure(output: Any) -> bool:
    return output.output_type == "error" or (
        output.output_type == "stream" and output.get("name") == "stderr"
    )


def _has_error(cell: nbformat.NotebookNode) -> bool:
    return any(_is_failure(o) for o in cell.outputs)


def _error(cell: nbformat.NotebookNode, scored: CellScore) -> None:
    ename = {Outcome.TAMPERING: "AutograderTampering", Outcome.COULD_NOT_RUN: "AutograderCouldNotRun"}.get(
        scored.outcome, "AutograderCheckFailed"
    )
    message = scored.message or str(scored.outcome)
    cell.outputs.append(new_output("error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"]))


def _run_facts(run: ExecutionResult, nb: nbformat.NotebookNode) -> NotebookRun:
    if run.notebook is None:
        end = RunEnd.NO_RESULT
    elif run.timed_out:
        end = RunEnd.TIMED_OUT
    elif run.kernel_died:
        end = RunEnd.KERNEL_DIED
    elif run.error or not run.completed:
        end = RunEnd.ERROR
    else:
        end = RunEnd.COMPLETED
    ran = any(c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    message = run.error
    if end is RunEnd.TIMED_OUT and not message:
        message = (
            f"stopped at cell {run.stopped_at}; the exercises it never reached were scored by re-verification"
        )
    return NotebookRun(end, message, run.stopped_at, ran)


def _exercise_score(o: ExerciseOutcome) -> ExerciseScore:
    verified = True if o.outcome is Outcome.VERIFIED else None if o.outcome is Outcome.NOT_VERIFIED else False
    return ExerciseScore(
        o.name, o.score, o.max_score, o.nbgrader_score, verified, o.message, o.outcome, o.evidence, o.review
    )


Engine = Callable[[list[Job], GradingContext], Iterable[SubmissionResult]]
"""Grades jobs and yields each result as it ends (any order): local threads by default,
``autograder.cluster.DaskEngine`` on a dask cluster."""


def thread_engine(workers: int) -> Engine:
    """The local engine: ``workers`` grading threads in this process."""

    def run(jobs: list[Job], ctx: GradingContext) -> Iterator[SubmissionResult]:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(grade_job, job, ctx) for job in jobs]
            for future in as_completed(futures):
                yield future.result()

    return run


def grade_jobs(
    jobs: list[Job],
    ctx: GradingContext,
    *,
    workers: int,
    on_result: Callable[[SubmissionResult], None],
    progress: Callable[[SubmissionResult], None] | None = None,
    engine: Engine | None = None,
) -> list[SubmissionResult]:
    """Grade with ``engine`` (default: ``workers`` threads); ``on_result`` (the gradebook
    merge) runs here, in the coordinator, as each job ends, once per (student, assignment,
    digest) even if an engine delivers a result twice."""
    results: list[SubmissionResult] = []
    merged: set[tuple[str, str, str]] = set()
    for res in (engine or thread_engine(workers))(jobs, ctx):
        key = (res.student, res.key, res.digest)
        if key in merged:  # a retried task that had already finished: merge once
            continue
        merged.add(key)
        try:
            on_result(res)
        except Exception as exc:  # one failed merge must not stop the batch
            res.status, res.score, res.retry = Status.FAILED, None, True
            res.reason = f"could not save the result: {type(exc).__name__}: {exc}"[:300]
            res.notebook = None
            on_result(res)
        results.append(res)
        if progress is not None:
            progress(res)
    order = {(j.student, j.key): i for i, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order[(r.student, r.key)])
