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

IMPORT_BUDGET_S = 0.5


def import_time(repeats: int = 5) -> dict:
    """Wall time of `python -c "import course_lib.np_ref"` in a fresh interpreter, best of `repeats`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import course_lib.np_ref"], check=True,
                       cwd=Path(__file__).resolve().parents[1])
        best = min(best, time.perf_counter() - start)
    return {
        "name": "python -c 'import course_lib.np_ref'",
        "numpy_s": best,
        "torch_s": IMPORT_BUDGET_S,
        "ratio": best / IMPORT_BUDGET_S,
        "target": 1.0,
    }


def print_rows(rows: list[dict]) -> int:
    """Print a result table; return 1 if a row misses its target, else 0."""
    kernels = sorted({row["blas_kernel"] for row in rows if "blas_kernel" in row})
    if kernels:
        print(f"NumPy's BLAS kernel: {', '.join(kernels)}")
    print(f"\n{'benchmark':<62} {'numpy':>9} {'reference':>10} {'ratio':>7} {'target':>7}  result"
          f"  {'median ratio':>12}")
    failed = 0
    for row in rows:
        ok = row["ratio"] <= row["target"] if row.get("target") else True
        failed += not ok
        target = f"<={row['target']:.1f}x" if row.get("target") else "info"
        verdict = ("PASS" if ok else "FAIL") if row.get("target") else "-"
        typical = f"{row['median_ratio']:>11.2f}x" if "median_ratio" in row else ""
        print(f"{row['name']:<62} {row['numpy_s'] * 1e3:>7.2f}ms {row['torch_s'] * 1e3:>8.2f}ms "
              f"{row['ratio']:>6.2f}x {target:>7}  {verdict:<6}  {typical}")
    print("ratio: best block of each library, judged against the target; median ratio: the "
          "median blocks, for information (it includes the machine's slow spells)")
    return 1 if failed else 0


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
