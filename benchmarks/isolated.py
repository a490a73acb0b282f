"""Time a NumPy step against a torch step, each library alone in its own process.

The course_lib targets compare ``course_lib.np_ref`` with torch on the same number of
threads. Both libraries keep a pool of worker threads that spin for a while after each
call (OpenBLAS's for NumPy, OpenMP's for torch). Timed in one process, the pool of the
library that ran last keeps a core busy while the other library runs; on a 2-core
machine that added about 40% to torch's LSTM and 60% to NumPy's conv2d. So each
library runs in a worker process of its own, which imports only that library, sets its
thread count and builds its step once. The parent asks the two workers in turns for a
block of ``repeats`` runs, ``rounds`` blocks each, with a pause before every block so that
the other pool has gone to sleep; which library goes first flips every round. The turns
interleave the two in time, so that load from other processes and the machine's own
slow spells fall on both. The best run of each is compared with the target; the ratio
of the median blocks is reported beside it.

BLAS kernel: some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) because older
OpenBLAS builds mis-detect their CPU; that pins a current NumPy to an older, slower kernel
family (e.g. AVX2 "Haswell" on an AVX-512 CPU). By default the NumPy processes run
without those two variables, i.e. with the kernel OpenBLAS picks itself, as on a
student's laptop, and the kernel is printed. ``keep_blas_env=True`` measures with them.

A benchmark module lists its cases in ``CASES``: name -> ``Case`` whose ``numpy`` and
``torch`` builders take no argument and return the step to time (data made up front).
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
LIBRARIES = ("numpy", "torch")
WARMUP = 3
IDLE_PAUSE_S = 0.2  # longer than OpenBLAS and OpenMP threads spin after a call


@dataclass(frozen=True)
class Case:
    label: str  # the row's description, without the thread count
    target: float | None  # the largest allowed numpy/torch ratio; None = for information
    numpy: Callable[[], Callable[[], object]]
    torch: Callable[[], Callable[[], object]]


def machine_threads() -> int:
    """The number of cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def child_env(threads: int, *, keep_blas_env: bool) -> dict[str, str]:
    env = {**os.environ, **{var: str(threads) for var in THREAD_VARIABLES}}
    if not keep_blas_env:
        for var in BLAS_OVERRIDES:
            env.pop(var, None)
    return env


class Worker:
    """One library in its own interpreter, timing one step whenever it is asked to.

    Protocol over its stdin/stdout, one JSON line each way: it first reports
    {"threads", "kernel"}; then every line "K" makes it time K runs and answer
    {"best_s"}; an empty line ends it.
    """

    def __init__(self, module: str, case: str, library: str, *, threads: int, keep_blas_env: bool):
        self.label = f"{module}:{case} ({library}, {threads} threads)"
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in close()) -- a file, not a pipe: it can never fill up and block
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), module, case, library],
            env=child_env(threads, keep_blas_env=keep_blas_env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.info = self._answer()

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=60)
            self.stderr.seek(0)
            raise RuntimeError(f"benchmark worker {self.label} failed:\n{self.stderr.read()[-2000:]}")
        return json.loads(line)

    def best_of(self, repeats: int) -> float:
        self.process.stdin.write(f"{repeats}\n")
        self.process.stdin.flush()
        return self._answer()["best_s"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)
        self.stderr.close()


def compare(
    module: str, case: str, *, threads: int, rounds: int, repeats: int, keep_blas_env: bool = False
) -> dict:
    """Time both libraries' steps in turns, each in its own worker process; one result row."""
    spec: Case = importlib.import_module(module).CASES[case]
    workers = {
        library: Worker(module, case, library, threads=threads, keep_blas_env=keep_blas_env)
        for library in LIBRARIES
    }
    try:
        for worker in workers.values():  # a library that ignored the thread count would void the row
            if worker.info["threads"] != threads:
                raise RuntimeError(f"{worker.label} runs on {worker.info['threads']} threads")
        blocks: dict[str, list[float]] = {library: [] for library in LIBRARIES}
        for round_ in range(rounds):
            order = LIBRARIES if round_ % 2 == 0 else LIBRARIES[::-1]
            for library in order:
                time.sleep(IDLE_PAUSE_S)  # let the other library's threads stop spinning and sleep
                blocks[library].append(workers[library].best_of(repeats))
    finally:
        for worker in workers.values():
            worker.close()
    best = {library: min(times) for library, times in blocks.items()}
    typical = {library: statistics.median(times) for library, times in blocks.items()}
    return {
        "name": f"{spec.label} ({threads} thr)",
        "numpy_s": best["numpy"],
        "torch_s": best["torch"],
        "ratio": best["numpy"] / best["torch"],
        # For information: the median block of each, which includes the machine's slow spells.
        "median_ratio": typical["numpy"] / typical["torch"],
        "target": spec.target,
        "threads": threads,
        "blas_kernel": workers["numpy"].info["kernel"],
    }


def run_cases(module: str, *, rounds: int, repeats: int, keep_blas_env: bool = False) -> list[dict]:
    """compare() every case in ``module.CASES``, on one thread and then on every core."""
    cases = importlib.import_module(module).CASES
    return [
        compare(module, case, threads=threads, rounds=rounds, repeats=repeats, keep_blas_env=keep_blas_env)
        for threads in sorted({1, machine_threads()})
        for case in cases
    ]


def script_main(module: str, header: str, *, rounds: int, repeats: int) -> int:
    """``python bench_<x>.py [--keep-blas-env]``: print the table of one benchmark module."""
    from results_table import print_rows

    print(f"{header}; best of {rounds} blocks x {repeats} runs per library, taking turns")
    keep = "--keep-blas-env" in sys.argv[1:]
    return print_rows(run_cases(module, rounds=rounds, repeats=repeats, keep_blas_env=keep))


def _numpy_threads_and_kernel() -> tuple[int, str]:
    from bench_blas import blas_kernel, numpy_blas_threads

    return numpy_blas_threads(), blas_kernel()


def _serve(module: str, case: str, library: str) -> None:
    """The worker's side of the protocol (see Worker)."""
    if library == "torch":
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        threads, kernel = torch.get_num_threads(), "torch"
    else:
        threads, kernel = _numpy_threads_and_kernel()
    step = getattr(importlib.import_module(module).CASES[case], library)()
    for _ in range(WARMUP):
        step()
    print(json.dumps({"threads": threads, "kernel": kernel}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        step()  # the first run after a pause wakes the thread pool; it is not counted
        best = float("inf")
        for _ in range(int(line)):
            start = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - start)
        print(json.dumps({"best_s": best}), flush=True)


if __name__ == "__main__":  # a worker: isolated.py MODULE CASE LIBRARY
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))  # course_lib from the checkout
    _serve(*sys.argv[1:4])
