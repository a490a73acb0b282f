"""Every solution notebook runs top to bottom in a fresh python3 kernel, all its test
cells (visible and hidden) pass without writing to stderr, within the time budget."""

from __future__ import annotations

import time

import pytest
from nbclient import NotebookClient

from autograder.course import nbgrader_env
from tests.notebooks.nbtools import SOLUTIONS, is_test, nbgrader_meta, read

# Every solution notebook runs top to bottom in about 20 s on 2 CPU cores; 60 s is the hard limit.
HARD_LIMIT_S = 60.0


def execute(stem: str) -> tuple[object, float]:
    nb = read(SOLUTIONS / f"{stem}.ipynb")
    client = NotebookClient(
        nb,
        timeout=HARD_LIMIT_S,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(SOLUTIONS)}},
    )
    start = time.perf_counter()
    client.execute(env=nbgrader_env())
    return nb, time.perf_counter() - start


@pytest.mark.slow
def test_solution_runs_and_passes_its_tests(stem: str, record_property) -> None:
    nb, seconds = execute(stem)
    record_property("execution_seconds", round(seconds, 2))
    print(f"{stem}: executed in {seconds:.1f} s")
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        label = nbgrader_meta(cell).get("grade_id", f"cell {i}")
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"{label}: {out.ename}: {out.evalue}")
            elif is_test(cell) and out.output_type == "stream" and out.name == "stderr":
                problems.append(f"{label}: test cell wrote to stderr: {out.text[:200]!r}")
    assert not problems, f"{stem}:\n" + "\n".join(problems)
    assert seconds <= HARD_LIMIT_S, f"{stem}: took {seconds:.1f} s (hard limit {HARD_LIMIT_S:.0f} s, target 20 s)"
