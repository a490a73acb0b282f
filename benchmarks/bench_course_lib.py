"""The course_lib performance targets, measured in one run.

    python benchmarks/bench_course_lib.py

Prints one row per target: the NumPy reference's time, the reference's time (torch on
the same number of threads, or the 0.5 s budget for the import), their ratio and
PASS/FAIL. The conv and LSTM rows come from bench_conv.py and bench_recurrent.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_conv  # noqa: E402
import bench_recurrent  # noqa: E402

IMPORT_BUDGET_S = 0.5


def import_time(repeats: int = 5) -> dict:
    """Wall time of `python -c "import course_lib.np_ref"` in a fresh interpreter, best of `repeats`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import course_lib.np_ref"], check=True)
        best = min(best, time.perf_counter() - start)
    return {
        "name": "python -c 'import course_lib.np_ref'",
        "numpy_s": best,
        "torch_s": IMPORT_BUDGET_S,
        "ratio": best / IMPORT_BUDGET_S,
        "target": 1.0,
    }


def main() -> int:
    rows = [*bench_conv.run(), *bench_recurrent.run(), import_time()]
    print()
    print(f"{'benchmark':<58} {'numpy':>9} {'reference':>10} {'ratio':>7} {'target':>7}  result")
    failed = 0
    for row in rows:
        ok = row["ratio"] <= row["target"] if row.get("target") else True
        failed += not ok
        target = f"<={row['target']:.1f}x" if row.get("target") else "info"
        print(
            f"{row['name']:<58} {row['numpy_s'] * 1e3:>7.1f}ms {row['torch_s'] * 1e3:>8.1f}ms "
            f"{row['ratio']:>6.2f}x {target:>7}  {'PASS' if ok else 'FAIL'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
