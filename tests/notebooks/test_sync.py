"""notebooks/ is exactly what releasing solutions/ produces (never edited by hand)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.release import clean_notebook
from tests.notebooks.nbtools import RELEASED, read


@pytest.mark.slow
def test_release_is_in_sync(course: Path, stem: str) -> None:
    # The session course ran the same generate_assignment as `python -m autograder release`;
    # clean_notebook is the release step's own last touch.
    fresh = clean_notebook(read(course / "release" / stem / f"{stem}.ipynb"))
    committed_path = RELEASED / f"{stem}.ipynb"
    hint = f"notebooks/{stem}.ipynb is out of date with solutions/{stem}.ipynb: run `python -m autograder release`"
    assert committed_path.exists(), hint
    committed = read(committed_path)
    assert len(committed.cells) == len(fresh.cells), f"{hint} (cell count {len(committed.cells)} != {len(fresh.cells)})"
    for i, (a, b) in enumerate(zip(committed.cells, fresh.cells)):
        assert (a.cell_type, a.source) == (b.cell_type, b.source), f"{hint} (cell {i} source differs)"
        assert a.metadata == b.metadata, f"{hint} (cell {i} metadata differs)"
    assert committed.metadata == fresh.metadata, f"{hint} (notebook metadata differs)"
    assert committed_path.read_text() == nbformat.writes(fresh) + "\n", f"{hint} (bytes differ)"
