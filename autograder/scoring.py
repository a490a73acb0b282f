"""Scoring step: nbgrader's cell scores + re-verification + evidence -> typed outcomes.

Pure functions over plain dataclasses (no notebook, no sandbox), tested in memory as
nbgrader tests its preprocessors. The pipeline gathers the facts; this module decides:

- ``score_exercise``: one exercise from its test cells, its ``Verdict`` and the static
  evidence that applies to it -> ``ExerciseOutcome``.
- ``evidence_for``: which located static evidence applies to which exercise.
- ``decide_submission``: the submission's ``Status`` from the notebook run, the
  exercise outcomes and the static evidence. FLAGGED iff there is evidence.

Messages are rendered here from the typed facts, for people; nothing reads them back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from autograder.results import Evidence, Outcome, SeedResult, Status, Verdict, VerifyProblem

__all__ = [
    "CellScore",
    "Decision",
    "ExerciseOutcome",
    "LocatedEvidence",
    "NotebookRun",
    "RunEnd",
    "TestCell",
    "decide_submission",
    "evidence_for",
    "score_exercise",
]

# Cell outcomes from best to worst: an exercise takes the worst of its cells.
_SEVERITY = {Outcome.VERIFIED: 0, Outcome.WRONG: 1, Outcome.COULD_NOT_RUN: 2, Outcome.TAMPERING: 3}
_RESTART = "Restart the kernel and run every cell from the top: the grader runs your cells in that order in a fresh process."


@dataclass(frozen=True)
class TestCell:
    """One nbgrader test cell of an exercise, as graded."""

    __test__ = False  # not a pytest class, despite its name

    grade_id: str
    points: float
    seeds: frozenset[int]  # what re-verification checks for this cell (hidden cells: + the secret seed)
    nbgrader_score: float | None  # None: never ran (the notebook timed out / the kernel died earlier)
    nbgrader_message: str = ""  # nbgrader's failure (the error output), when it failed
    hidden: bool = False  # source withheld from the student's kernel: points from re-verification alone

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError(f"test cell {self.grade_id!r}: no seeds to re-verify")
        if self.points < 0:
            raise ValueError(f"test cell {self.grade_id!r}: negative points {self.points}")

    @property
    def nbgrader_passed(self) -> bool:
        return self.nbgrader_score is not None and self.nbgrader_score >= self.points


@dataclass(frozen=True)
class CellScore:
    grade_id: str
    score: float
    max_score: float
    outcome: Outcome
    message: str = ""  # what to fix, safe to show the student


@dataclass(frozen=True)
class ExerciseOutcome:
    name: str
    outcome: Outcome
    score: float
    max_score: float
    nbgrader_score: float  # what nbgrader alone gave (hidden cells: the placeholder's)
    message: str = ""
    evidence: tuple[Evidence, ...] = ()
    cells: tuple[CellScore, ...] = ()
    review: str = ""  # instructor only: the reference the answer reproduces (never a flag)


@dataclass(frozen=True)
class LocatedEvidence:
    """Static evidence and where it applies: in one exercise's answer cell, in an
    inserted cell (``answer_of`` None) at ``cell``, or in a submitted file (``cell`` None)."""

    evidence: Evidence
    cell: int | None
    answer_of: str | None = None


def evidence_for(name: str, first_test: int, located: Sequence[LocatedEvidence]) -> tuple[Evidence, ...]:
    """The static evidence that zeroes exercise ``name`` (its first test cell at index
    ``first_test``): any student cell before that test — its own answer cell, an earlier
    answer cell or a cell the student inserted, since a patch made there is still in force
    when the test runs — and any file submitted beside the notebook."""
    return tuple(item.evidence for item in located if item.cell is None or item.cell < first_test)


def score_exercise(
    name: str,
    cells: Sequence[TestCell],
    verdict: Verdict | None,
    *,
    registered: bool,
    answered: bool,
    stub: bool = False,
    evidence: Sequence[Evidence] = (),
) -> ExerciseOutcome:
    """One exercise's outcome. ``registered``: course_lib has an Exercise for it;
    ``answered``: the graded notebook has an answer cell for it; ``stub``: that cell is
    the released stub (scored as usual, since another cell may define the answer, and
    called UNANSWERED if it earns nothing); ``evidence``: static evidence that applies
    to it (see ``evidence_for``)."""
    if not cells:
        raise ValueError(f"exercise {name!r}: no test cells")
    max_score = sum(c.points for c in cells)
    nb_score = sum(c.nbgrader_score or 0.0 for c in cells)
    review = verdict.copied_from if verdict is not None else ""

    def zero(outcome: Outcome, message: str, found: Sequence[Evidence] = ()) -> ExerciseOutcome:
        return ExerciseOutcome(
            name, outcome, 0.0, max_score, nb_score, message, tuple(found),
            tuple(CellScore(c.grade_id, 0.0, c.points, outcome, message) for c in cells), review,
        )  # fmt: skip

    if evidence:
        return zero(Outcome.TAMPERING, "tampering: " + "; ".join(map(str, evidence)), evidence)
    if registered and not answered:
        passed = [c for c in cells if not c.hidden and (c.nbgrader_score or 0.0) > 0]
        if passed:
            found = [
                Evidence("tests passed with no answer", c.grade_id, f"{name} has no answer cell")
                for c in passed
            ]
            return zero(Outcome.TAMPERING, "tests passed with no answer", found)
        return zero(Outcome.UNANSWERED, f"{name} is not answered")
    problem = verdict.problem if verdict is not None else None
    if not registered or verdict is None or problem is VerifyProblem.UNVERIFIABLE:
        why = (
            "no registered check"
            if not registered or verdict is None
            else verdict.problem_detail or str(problem)
        )
        return _nbgrader_only(
            name, cells, max_score, nb_score, f"not re-verified ({why}): nbgrader's score", review
        )
    if verdict.reached:
        found = [Evidence("reference reached", f"re-verification of {name}", ", ".join(verdict.reached))]
        return zero(Outcome.TAMPERING, f"reference reached: {', '.join(verdict.reached)}", found)
    if problem in (VerifyProblem.SETUP_FAILED, VerifyProblem.NO_REPORT):
        detail = f": {verdict.problem_detail}" if verdict.problem_detail else ""
        return zero(
            Outcome.NOT_VERIFIED, f"not checked, the grader's re-verification failed ({problem}{detail})"
        )

    scored = [_score_cell(name, c, verdict) for c in cells]
    worst = max(scored, key=lambda s: _SEVERITY[s.outcome]).outcome
    message = next((s.message for s in scored if s.outcome is worst), "")
    if worst is Outcome.TAMPERING:
        found = [
            Evidence("passed only in the notebook", s.grade_id, f"re-verification of {name}: {verdict.message[:200]}")
            for s in scored if s.outcome is Outcome.TAMPERING
        ]  # fmt: skip
        return zero(Outcome.TAMPERING, message, found)
    if stub and worst is not Outcome.VERIFIED and not any(s.score for s in scored):
        return zero(Outcome.UNANSWERED, f"{name} is not answered (the released stub)")
    return ExerciseOutcome(
        name, worst, sum(s.score for s in scored), max_score, nb_score, message, (), tuple(scored), review
    )


def _nbgrader_only(
    name: str, cells: Sequence[TestCell], max_score: float, nb_score: float, message: str, review: str
) -> ExerciseOutcome:
    """nbgrader's score, said so; a withheld hidden cell was never really run, so it earns nothing."""
    scored = []
    for c in cells:
        if c.hidden:
            scored.append(CellScore(c.grade_id, 0.0, c.points, Outcome.NOT_VERIFIED,
                                    "hidden tests could not be run by the grader; the instructor scores them"))  # fmt: skip
        else:
            scored.append(
                CellScore(c.grade_id, c.nbgrader_score or 0.0, c.points, Outcome.NOT_VERIFIED, message)
            )
    score = sum(s.score for s in scored)
    return ExerciseOutcome(
        name, Outcome.NOT_VERIFIED, score, max_score, nb_score, message, (), tuple(scored), review
    )


# A real number (1.5, .25, 3e-4, 1.2E+03) or an integer of 3 digits or more.
_VALUE = re.compile(
    r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?|(?<![\w.])\d{3,}(?![\w.])"
)


def _without_values(message: str) -> str:
    """A cell issue's message with its numbers replaced: the message comes from student code
    in the re-verification process, which can hold the grader's cases, and it is shown to
    the student (the cell is theirs: run it after a restart to see the full error)."""
    return _VALUE.sub("…", message)


def _score_cell(name: str, cell: TestCell, verdict: Verdict) -> CellScore:
    def out(outcome: Outcome, message: str = "") -> CellScore:
        score = cell.points if outcome is Outcome.VERIFIED else 0.0
        return CellScore(cell.grade_id, score, cell.points, outcome, message)

    if not cell.hidden and cell.nbgrader_score is not None and not cell.nbgrader_passed:
        return out(Outcome.WRONG, cell.nbgrader_message or f"{cell.grade_id} failed in the notebook")
    if verdict.problem is VerifyProblem.NOT_DEFINED:
        detail = f" ({verdict.problem_detail})" if verdict.problem_detail else ""
        return out(
            Outcome.COULD_NOT_RUN,
            f"{name} was not defined after your cells ran in a fresh process{detail}. {_RESTART}",
        )
    results = [verdict.seeds.get(seed, SeedResult.NOT_RUN) for seed in sorted(cell.seeds)]
    if all(r is SeedResult.PASSED for r in results):
        return out(Outcome.VERIFIED)
    if verdict.cell_issues or any(r in (SeedResult.RAISED, SeedResult.NOT_RUN) for r in results):
        issues = "; ".join(
            f"cell {i.index} {i.kind}: {_without_values(i.message)}" for i in verdict.cell_issues
        )
        what = issues or f"{name} raised on the grader's inputs: {verdict.message or 'no message'}"
        return out(Outcome.COULD_NOT_RUN, f"{what}. {_RESTART}")
    # Every failing seed returned a value the judge rejected, and every cell ran.
    if not cell.hidden and cell.nbgrader_passed:
        return out(
            Outcome.TAMPERING,
            "passed in the notebook, but the same answer fails the same inputs in a clean process",
        )
    return out(Outcome.WRONG, verdict.message or f"{name} is wrong on the grader's inputs")


class RunEnd(str, Enum):
    """How the notebook's run in the execution sandbox ended."""

    COMPLETED = "completed"
    TIMED_OUT = "timed out"
    KERNEL_DIED = "kernel died"
    ERROR = "error"  # the sandbox or kernel failed, with a result notebook
    NO_RESULT = "no result"  # no executed notebook at all

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class NotebookRun:
    end: RunEnd
    message: str = ""  # the sandbox's own words (time-out, kernel death, error)
    stopped_at: int | None = None
    anything_ran: bool = True  # some code cell got an execution count


@dataclass(frozen=True)
class Decision:
    status: Status
    reason: str  # rendered for people
    evidence: tuple[Evidence, ...]
    retry: bool  # a grader-side failure: a later ``grade`` run grades it again
    scored: bool  # False: no score at all (never an honest-looking 0)
    notes: tuple[str, ...] = ()


def decide_submission(
    run: NotebookRun,
    exercises: Sequence[ExerciseOutcome],
    static: Sequence[Evidence],
    problems: Sequence[VerifyProblem] = (),
) -> Decision:
    """The submission's status. ``static``: every piece of static evidence found (cells and
    files); ``problems``: re-verification problems left after the one re-run of NO_REPORT."""
    evidence = tuple(dict.fromkeys([*static, *(e for ex in exercises for e in ex.evidence)]))
    setup_failed = VerifyProblem.SETUP_FAILED in problems
    no_report = VerifyProblem.NO_REPORT in problems
    retry = setup_failed or no_report
    run_note = _run_reason(run)
    grader = ""
    if setup_failed:
        grader = "grader error: re-verification could not run the assignment's setup cell"
    elif no_report:
        grader = "grader error: re-verification did not report (retried once); a later grade run retries"
    if evidence:
        notes = tuple(n for n in (run_note, grader) if n)
        return Decision(
            Status.FLAGGED,
            "; ".join(map(str, evidence)),
            evidence,
            retry,
            run.end is not RunEnd.NO_RESULT,
            notes,
        )
    if grader:
        return Decision(Status.FAILED, grader, (), True, False, (run_note,) if run_note else ())
    if run.end is RunEnd.NO_RESULT:
        return Decision(Status.FAILED, run_note, (), False, False)
    if run.end is RunEnd.TIMED_OUT:
        return Decision(Status.TIMED_OUT, run_note, (), False, True)
    if run.end is RunEnd.KERNEL_DIED:
        return Decision(Status.FAILED, run_note, (), False, True)
    if run.end is RunEnd.ERROR:
        return Decision(Status.FAILED, run_note, (), False, run.anything_ran)
    return Decision(Status.GRADED, "", (), False, True)


def _run_reason(run: NotebookRun) -> str:
    if run.end is RunEnd.COMPLETED:
        return ""
    if run.end is RunEnd.TIMED_OUT:
        return (
            run.message
            or f"timed out: stopped at cell {run.stopped_at}; the exercises it never reached were scored by re-verification"
        )
    if run.end is RunEnd.KERNEL_DIED:
        return f"kernel died at cell {run.stopped_at}; the exercises it never reached were scored by re-verification"
    return run.message or (
        "no result from the sandbox" if run.end is RunEnd.NO_RESULT else "execution failed"
    )
