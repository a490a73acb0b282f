"""Execution time of every solution notebook, measured in one run.

    python benchmarks/bench_notebooks.py [stem ...]

Runs each ``solutions/*.ipynb`` (or the named ones) top to bottom in a fresh python3
kernel, as the notebook tests and the autograder do, and prints one row per notebook: the
wall time of the whole run, of the kernel start-up alone, of the slowest cell, and the
verdict against the course's budget (target 20 s, hard limit 60 s on 2 CPU cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from autograder.course import nbgrader_env

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
TARGET_S = 20.0
HARD_LIMIT_S = 60.0


def run(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=int(HARD_LIMIT_S), kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    cell_times: list[tuple[float, int]] = []
    start = time.perf_counter()
    with client.setup_kernel(env=nbgrader_env()):
        started = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            before = time.perf_counter()
            client.execute_cell(cell, index)
            cell_times.append((time.perf_counter() - before, index))
    total = time.perf_counter() - start
    errors = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)]
    slowest, slowest_index = max(cell_times, default=(0.0, -1))
    return {"stem": path.stem, "total": total, "kernel": started - start, "slowest": slowest,
            "slowest_cell": slowest_index, "errors": errors}


def main(argv: list[str]) -> int:
    paths = [SOLUTIONS / f"{stem}.ipynb" for stem in argv] or sorted(SOLUTIONS.glob("*.ipynb"))
    print(f"{'notebook':<24} {'total s':>8} {'kernel s':>9} {'slowest cell':>17}  verdict")
    failed = False
    for path in paths:
        r = run(path)
        verdict = "ok" if r["total"] <= TARGET_S else ("over target" if r["total"] <= HARD_LIMIT_S else "OVER LIMIT")
        if r["errors"]:
            verdict = f"ERRORS in cells {r['errors']}"
        failed |= verdict not in ("ok", "over target")
        print(f"{r['stem']:<24} {r['total']:>8.1f} {r['kernel']:>9.1f} {r['slowest']:>8.1f} (cell {r['slowest_cell']:>2})  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
