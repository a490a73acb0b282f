"""The table every benchmark script prints: one row per target, and whether it was met.

A row is a dict with ``name``, ``numpy_s``, ``torch_s`` (the reference's seconds),
``ratio`` and ``target`` (None: for information), and optionally ``median_ratio`` and
``blas_kernel`` (see isolated.compare).
"""

from __future__ import annotations

from typing import Any

__all__ = ["print_rows"]


def print_rows(rows: list[dict[str, Any]]) -> int:
    """Print a result table; return 1 if a row misses its target, else 0."""
    kernels = sorted({row["blas_kernel"] for row in rows if "blas_kernel" in row})
    if kernels:
        print(f"NumPy's BLAS kernel: {', '.join(kernels)}")
    print(
        f"\n{'benchmark':<62} {'numpy':>9} {'reference':>10} {'ratio':>7} {'target':>7}  result"
        f"  {'median ratio':>12}"
    )
    failed = 0
    for row in rows:
        ok = row["ratio"] <= row["target"] if row.get("target") else True
        failed += not ok
        target = f"<={row['target']:.1f}x" if row.get("target") else "info"
        verdict = ("PASS" if ok else "FAIL") if row.get("target") else "-"
        typical = f"{row['median_ratio']:>11.2f}x" if "median_ratio" in row else ""
        print(
            f"{row['name']:<62} {row['numpy_s'] * 1e3:>7.2f}ms {row['torch_s'] * 1e3:>8.2f}ms "
            f"{row['ratio']:>6.2f}x {target:>7}  {verdict:<6}  {typical}"
        )
    print(
        "ratio: best block of each library, judged against the target; median ratio: the "
        "median blocks, for information (it includes the machine's slow spells)"
    )
    return 1 if failed else 0
