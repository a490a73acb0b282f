"""Static evidence of tampering in what a student wrote (placeholder until merge).

The intake helper's scanner replaces this module; the pipeline already calls it with
the final signatures, so merging changes no caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from autograder.results import Evidence

__all__ = ["scan_cells", "scan_files"]


def scan_cells(cells: Sequence[tuple[int, str]]) -> list[Evidence]:
    """Evidence in student-written code cells, given as (cell index, source). Placeholder: none."""
    return []


def scan_files(paths: Sequence[Path], root: Path) -> list[Evidence]:
    """Evidence in files submitted beside the notebook. Placeholder: none."""
    return []
