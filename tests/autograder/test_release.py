"""Release: nbgrader strips solutions and hidden tests; output is deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.cli import main
from autograder.release import release_course


@pytest.mark.slow
def test_release_strips_solutions_and_is_byte_identical(tiny_solutions: Path, tmp_path: Path) -> None:
    out = tmp_path / "notebooks"
    first = release_course(solutions_dir=tiny_solutions, notebooks_dir=out)
    assert [p.name for p in first.notebooks] == ["00_tiny.ipynb"]
    data = (out / "00_tiny.ipynb").read_bytes()
    text = data.decode()
    assert "BEGIN SOLUTION" not in text and "return x * x" not in text
    assert "HIDDEN TESTS" not in text and "seed=1" not in text
    assert "raise NotImplementedError()" in text
    nb = json.loads(text)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)

    second = release_course(solutions_dir=tiny_solutions, notebooks_dir=out)
    assert second.changed == ()
    assert (out / "00_tiny.ipynb").read_bytes() == data


def test_release_unknown_assignment_is_a_clear_error(tiny_solutions: Path, tmp_path: Path, capsys) -> None:
    code = main(["release", "--solutions", str(tiny_solutions), "--notebooks", str(tmp_path), "99_nope"])
    assert code == 2
    assert "99_nope" in capsys.readouterr().err
