"""Typed outcomes of grading: what happened to each exercise and to each submission.

Decisions travel as these enums and dataclasses from the step that makes them to the
edges that render them (CLI table, CSV, report, feedback); nothing is ever parsed back
out of a message. "Flagged" means evidence of tampering and nothing else.

The re-verification step (``autograder.verify``) produces one ``Verdict`` per exercise;
the scoring step (``autograder.scoring``) turns nbgrader's cell scores, the verdict and
any static evidence into one ``ExerciseOutcome``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "CellIssue",
    "Evidence",
    "Outcome",
    "SeedResult",
    "Status",
    "Verdict",
    "VerifyProblem",
]


class Status(str, Enum):
    """One submission (student, assignment). The values are what the CSV and ledger store."""

    GRADED = "graded"
    FLAGGED = "flagged"  # evidence of tampering, and nothing else
    TIMED_OUT = "timed out"
    FAILED = "failed"  # the notebook could not be run to the end (or a grader error)
    MISSING = "missing"
    UNREADABLE = "unreadable"

    def __str__(self) -> str:
        return self.value


class Outcome(str, Enum):
    """One exercise of one submission."""

    VERIFIED = "verified"  # re-verification agrees with nbgrader: nbgrader's points stand
    WRONG = "wrong"  # fails on the grader's cases; the message says how
    COULD_NOT_RUN = "could not run"  # the student's own code raised in the fresh process; not a flag
    TAMPERING = "tampering"  # evidence attached; the exercise earns 0 and the submission is flagged
    UNANSWERED = "unanswered"  # no answer cell, or the released stub
    NOT_VERIFIED = "not verified"  # no registered exercise or a grader limit: nbgrader's score, said so

    def __str__(self) -> str:
        return self.value


class SeedResult(str, Enum):
    """What the answer did on every case of one seed, in the fresh process."""

    PASSED = "passed"
    WRONG = "wrong"  # returned, and the trusted judge rejected the value
    RAISED = "raised"  # the student's code raised (or timed out) on a case
    NOT_RUN = "not run"

    def __str__(self) -> str:
        return self.value


class VerifyProblem(str, Enum):
    """Why an exercise has no per-seed results (``Verdict.problem``)."""

    SETUP_FAILED = "setup failed"  # the canonical setup cell failed: the grader's fault, never a flag
    UNVERIFIABLE = "unverifiable"  # the grader cannot send this exercise's cases: its limit, said
    NO_REPORT = "no report"  # the verification process died or said nothing: infrastructure, retried
    NOT_DEFINED = "not defined"  # after the student's cells ran, the answer's name did not exist

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence of tampering, with where it was found."""

    kind: str  # short and stable, e.g. "reference reached", "patched numpy", "shadowing module file"
    where: str  # "cell 12, line 3", "file numpy.py", "re-verification of rnn_cell"
    detail: str = ""  # what exactly (never file contents, never generator state)
    cell: int | None = field(default=None, compare=False)  # the graded notebook's cell, when in a cell

    def __str__(self) -> str:
        return f"{self.kind} ({self.where})" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class CellIssue:
    """A student cell that did not complete in the fresh process; the run went on, as in the notebook."""

    index: int  # cell index in the graded notebook
    kind: str  # "raised" | "timed out" | "skipped"
    message: str


@dataclass(frozen=True)
class Verdict:
    """Re-verification of one exercise: the student's cells replayed in a fresh process
    without the exercise's references, the answer called on the grader's cases, and the
    outputs judged in the trusted parent."""

    name: str
    seeds: Mapping[int, SeedResult] = field(default_factory=dict)
    message: str = ""  # the first failure (judge text or exception), safe to show the student
    problem: VerifyProblem | None = None
    problem_detail: str = ""
    reached: tuple[str, ...] = ()  # withheld references or checks the student's code called
    cell_issues: tuple[CellIssue, ...] = ()
    copied_from: str = ""  # the reference whose code the answer reproduces, for the instructor to review

    def passed(self, seeds: set[int] | frozenset[int]) -> bool:
        return bool(seeds) and all(self.seeds.get(s) is SeedResult.PASSED for s in seeds)
