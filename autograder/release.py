"""Release step: instructor notebooks (solutions/) -> student notebooks (notebooks/).

Each ``solutions/<stem>.ipynb`` is one nbgrader assignment named ``<stem>``. Real
``nbgrader generate_assignment`` runs in a temporary course directory (with its own
SQLite gradebook), so solutions and hidden tests are stripped exactly as nbgrader
does it; the released notebooks are then written without outputs or execution
counts, byte-identical from one run to the next.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.course import CourseDir, assignment_stems, read_notebook

__all__ = ["ReleaseResult", "release_course", "clean_notebook"]


@dataclass(frozen=True)
class ReleaseResult:
    notebooks: tuple[Path, ...]  # the student notebooks written
    changed: tuple[Path, ...]  # those whose bytes differ from what was there before


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop outputs, execution counts and per-run cell metadata (in place)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            cell.metadata.pop(key, None)
    return nb


def release_course(
    *,
    solutions_dir: Path,
    notebooks_dir: Path,
    assignments: Sequence[str] | None = None,
) -> ReleaseResult:
    """Generate the student version of every (or the named) instructor notebook."""
    sources = assignment_stems(Path(solutions_dir))
    if assignments is not None:
        unknown = sorted(set(assignments) - set(sources))
        if unknown:
            raise ValueError(f"release_course: no notebook in {solutions_dir} for assignments {unknown}")
        sources = {stem: sources[stem] for stem in assignments}
    if not sources:
        raise ValueError(f"release_course: no *.ipynb in {solutions_dir}")
    out_dir = Path(notebooks_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, changed = [], []
    with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
        course = CourseDir.at(Path(tmp))
        course.install(sources)
        for stem in sorted(sources):
            nb = clean_notebook(read_notebook(course.release(stem)))
            data = nbformat.writes(nb) + "\n"
            target = out_dir / f"{stem}.ipynb"
            if not target.exists() or target.read_text() != data:
                target.write_text(data)
                changed.append(target)
            written.append(target)
    return ReleaseResult(notebooks=tuple(written), changed=tuple(changed))
