"""Notebook helpers for the generic notebook tests: read cells' nbgrader roles, build the
submissions a student could hand in, and drive stock nbgrader in a temporary course.

Every solution notebook in ``solutions/`` is picked up automatically; nothing here knows
about any particular notebook.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

# The cell roles are the autograder's own (one definition), re-exported for the tests.
from autograder.cells import is_answer, is_test, nbgrader_meta, strip_solution_markers
from autograder.course import nbgrader_env

__all__ = [
    "REPO",
    "SOLUTIONS",
    "RELEASED",
    "solution_stems",
    "read",
    "nbgrader_meta",
    "is_answer",
    "is_test",
    "is_demo",
    "Exercise",
    "exercises_in",
    "strip_solution_markers",
    "student_copy",
    "revert_answer",
    "drop_demo_cells",
    "run_nbgrader",
]

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO / "solutions"
RELEASED = REPO / "notebooks"


def solution_stems() -> list[str]:
    return sorted(p.stem for p in SOLUTIONS.glob("*.ipynb"))


def read(path: Path) -> NotebookNode:
    return nbformat.read(path, as_version=4)


def is_demo(cell: NotebookNode) -> bool:
    return "demo" in cell.get("metadata", {}).get("tags", [])


@dataclass(frozen=True)
class Exercise:
    """One graded exercise as the notebook declares it: answer cell + its test cells."""

    name: str
    test_points: dict[str, float]  # grade_id of the visible and the hidden test cell -> points

    @property
    def points(self) -> float:
        return sum(self.test_points.values())


def exercises_in(nb: NotebookNode) -> list[Exercise]:
    """Exercises in notebook order; a test cell ``test_<name>[_hidden]`` belongs to ``<name>``."""
    names = [nbgrader_meta(c)["grade_id"] for c in nb.cells if is_answer(c)]
    tests = {
        nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0)) for c in nb.cells if is_test(c)
    }
    out = []
    for name in names:
        out.append(
            Exercise(name, {t: tests[t] for t in (f"test_{name}", f"test_{name}_hidden") if t in tests})
        )
    return out


def _answer_sources(solution: NotebookNode) -> dict[str, str]:
    return {
        nbgrader_meta(c)["grade_id"]: strip_solution_markers(c.source) for c in solution.cells if is_answer(c)
    }


def student_copy(release: NotebookNode, solution: NotebookNode) -> NotebookNode:
    """The release with every answer cell filled in with the solution's answer."""
    answers = _answer_sources(solution)
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if is_answer(cell):
            cell.source = answers[nbgrader_meta(cell)["grade_id"]]
    return nb


def revert_answer(student: NotebookNode, release: NotebookNode, name: str) -> NotebookNode:
    """``student`` with the answer cell ``name`` put back to its release version."""
    original = {nbgrader_meta(c)["grade_id"]: c.source for c in release.cells if is_answer(c)}
    nb = copy.deepcopy(student)
    for cell in nb.cells:
        if is_answer(cell) and nbgrader_meta(cell)["grade_id"] == name:
            cell.source = original[name]
    return nb


def drop_demo_cells(nb: NotebookNode) -> NotebookNode:
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if not is_demo(c)]
    return out


KERNEL_START_RACE = "Kernel died before replying to kernel_info"
KERNEL_START_ATTEMPTS = 3


def run_nbgrader(course: Path, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    """Stock ``nbgrader <args>`` (the command-line app) in the course directory; raises with its log on failure."""
    nbgrader = Path(sys.executable).parent / "nbgrader"
    for _attempt in range(KERNEL_START_ATTEMPTS):
        proc = subprocess.run(
            [str(nbgrader), *args],
            cwd=course,
            env=nbgrader_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        # Stock nbgrader starts kernels on TCP ports it picks before the kernel binds them;
        # with two graders running at once a port can be taken in between and the kernel
        # dies at start-up. That is the machine, not the notebook: run the step again.
        if proc.returncode == 0 or KERNEL_START_RACE not in proc.stdout + proc.stderr:
            break
    if proc.returncode != 0:
        raise RuntimeError(
            f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
