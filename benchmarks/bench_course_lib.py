"""The course_lib performance targets, measured in one run.

    python benchmarks/bench_course_lib.py [--keep-blas-env]

Prints one row per target and thread count: the NumPy reference's time, the reference's
time (torch on the same number of threads, or the 0.5 s budget for the import), their
ratio and PASS/FAIL. The conv and LSTM rows come from bench_conv.py and
bench_recurrent.py; each library is timed alone in fresh processes (see isolated.py,
also for ``--keep-blas-env``). The exit status is 1 if a target is missed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_table import print_rows

IMPORT_BUDGET_S = 0.5


def import_time(repeats: int = 5) -> dict:
    """Wall time of `python -c "import course_lib.np_ref"` in a fresh interpreter, best of `repeats`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import course_lib.np_ref"],
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        best = min(best, time.perf_counter() - start)
    return {
        "name": "python -c 'import course_lib.np_ref'",
        "numpy_s": best,
        "torch_s": IMPORT_BUDGET_S,
        "ratio": best / IMPORT_BUDGET_S,
        "target": 1.0,
    }


def main() -> int:
    import bench_conv
    import bench_recurrent

    keep = "--keep-blas-env" in sys.argv[1:]
    if hasattr(os, "getloadavg"):  # other jobs on the machine distort threaded timings badly
        print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    rows = [*bench_conv.run(keep_blas_env=keep), *bench_recurrent.run(keep_blas_env=keep), import_time()]
    status = print_rows(rows)
    if hasattr(os, "getloadavg"):
        print("load average after:  {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
