"""nbgrader's cell roles, read from ``cell.metadata.nbgrader``, in one place.

nbgrader marks each graded cell with metadata (``grade_id``, ``solution``, ``grade``,
``locked``, ``points``). Its own roles, as its create-assignment toolbar names them:

- an *autograded answer*: ``solution`` and not ``grade`` (the student writes it);
- an *autograder test*: ``grade`` and not ``solution`` (locked, carries the points);
- a *manually graded answer*: both (not used by this course).

Cells come from the instructor's notebooks and from students' submissions, so every reader
here accepts any mapping and treats metadata of the wrong type as absent: a submission's
JSON may hold anything. (``autograder/bundle_files/selfcheck.py`` ships to students
without the autograder, so it keeps its own copy of ``nbgrader_meta``.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "HIDDEN_TEST_MARKERS",
    "SOLUTION_MARKERS",
    "grade_id",
    "is_answer",
    "is_grade",
    "is_solution",
    "is_test",
    "nbgrader_meta",
    "strip_solution_markers",
]

# The delimiters nbgrader's ClearSolutions and ClearHiddenTests look for (its defaults, and
# autograder/config/nbgrader_config.py's): a line containing one of them is a marker line.
SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_TEST_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def nbgrader_meta(cell: Mapping[str, Any]) -> dict[str, Any]:
    """``cell.metadata.nbgrader``, or ``{}`` when it is missing or not a dict."""
    metadata = cell.get("metadata")
    meta = metadata.get("nbgrader") if isinstance(metadata, Mapping) else None
    return meta if isinstance(meta, dict) else {}


def grade_id(cell: Mapping[str, Any]) -> str | None:
    """The cell's nbgrader ``grade_id`` if it is a string, else None."""
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def is_solution(cell: Mapping[str, Any]) -> bool:
    """nbgrader's ``solution`` flag: the student writes in this cell."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_grade(cell: Mapping[str, Any]) -> bool:
    """nbgrader's ``grade`` flag: the cell is graded (it carries points)."""
    return bool(nbgrader_meta(cell).get("grade"))


def is_answer(cell: Mapping[str, Any]) -> bool:
    """An autograded answer cell: ``solution`` and not ``grade``."""
    return is_solution(cell) and not is_grade(cell)


def is_test(cell: Mapping[str, Any]) -> bool:
    """An autograder test cell: ``grade`` and not ``solution``."""
    return is_grade(cell) and not is_solution(cell)


def strip_solution_markers(source: str) -> str:
    """The answer as a student would type it: ``source`` without the lines holding a
    ``BEGIN SOLUTION`` or ``END SOLUTION`` delimiter (found anywhere in the line, split on
    ``\\n`` and joined again, as nbgrader's ClearSolutions reads a cell)."""
    lines = source.split("\n")
    return "\n".join(line for line in lines if not any(marker in line for marker in SOLUTION_MARKERS))
