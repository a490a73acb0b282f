"""The benchmark harness still runs (a smoke test: one tiny block per library, no timing claims)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def isolated(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import isolated

    yield isolated
    for name in (
        "isolated",
        "bench_conv",
        "bench_recurrent",
        "bench_blas",
        "bench_course_lib",
        "results_table",
    ):
        sys.modules.pop(name, None)


def test_compare_runs_each_library_in_its_own_worker(isolated):
    row = isolated.compare("bench_conv", "max_pool2d", threads=1, rounds=1, repeats=1)
    assert row["threads"] == 1
    assert row["numpy_s"] > 0 and row["torch_s"] > 0
    assert row["ratio"] == pytest.approx(row["numpy_s"] / row["torch_s"])
    assert row["target"] is None and row["name"].endswith("(1 thr)")
    assert isinstance(row["blas_kernel"], str) and row["blas_kernel"]


def test_the_numpy_worker_drops_the_machines_blas_overrides_unless_asked(isolated, monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    dropped = isolated.child_env(2, keep_blas_env=False)
    kept = isolated.child_env(2, keep_blas_env=True)
    assert "OPENBLAS_CORETYPE" not in dropped and kept["OPENBLAS_CORETYPE"] == "Haswell"
    assert dropped["OPENBLAS_NUM_THREADS"] == dropped["OMP_NUM_THREADS"] == "2"
