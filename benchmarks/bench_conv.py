"""How fast is the NumPy reference convolution next to torch's own?

Times ``course_lib.np_ref`` ``conv2d_forward`` + ``conv2d_backward`` against torch's CPU
``F.conv2d`` forward + autograd backward on the same float32 data: the second layer of
a LeNet-style network, N=64 images, C=6 -> F=16 channels, 14x14, 5x5 kernel, pad 2.
Both sides compute out, dx, dw and db. The target is a ratio of at most 2.
Max pooling (2x2, stride 2) on the layer's output is reported for information.

Threads: torch is set to as many threads as NumPy's BLAS uses
(``bench_recurrent.numpy_blas_threads``: threadpoolctl if installed, else the count
OpenBLAS itself reports). NumPy's own elementwise copies run on one thread whatever
that number is; that is part of what is being measured. When NumPy's BLAS has more
than one thread, the cases are measured a second time in a child process started
with OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1, both libraries on one thread (OpenBLAS
takes its thread count from the environment when it loads). The two libraries take
turns in blocks of runs, several rounds, so that load from other processes falls on
both; the best run of each is reported.

    python benchmarks/bench_conv.py            # prints a table, PASS/FAIL per target
    from bench_conv import run                 # -> list of dicts for a top-level runner
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_recurrent, when imported by path
if __package__ in (None, ""):  # run as a script: make `course_lib` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_recurrent import numpy_blas_threads  # noqa: E402

from course_lib.np_ref import conv  # noqa: E402

__all__ = ["run", "main"]

N, C, H, W, FILTERS, K, PAD = 64, 6, 14, 14, 16, 5, 2
POOL = 2
DTYPE = np.float32
TARGET = 2.0
ROUNDS = 8
REPEATS = 10


def _best_of(fns: dict[str, Callable[[], object]], *, rounds: int, repeats: int) -> dict[str, float]:
    """Best wall time of each function over ``rounds`` blocks of ``repeats`` runs.

    The libraries take turns block by block, not run by run: each keeps a pool of
    threads that spin for a while after their last call, and alternating single runs
    would make the two pools fight over the cores. The first run of a block is a warm-up.
    """
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def _conv_case(rng: np.random.Generator) -> dict[str, Callable[[], None]]:
    x = rng.standard_normal((N, C, H, W)).astype(DTYPE)
    w = (rng.standard_normal((FILTERS, C, K, K)) / np.sqrt(C * K * K)).astype(DTYPE)
    b = rng.standard_normal(FILTERS).astype(DTYPE)
    dout = rng.standard_normal((N, FILTERS, H, W)).astype(DTYPE)

    def numpy_step() -> None:
        _, cache = conv.conv2d_forward(x, w, b, stride=1, pad=PAD)
        conv.conv2d_backward(dout, cache)

    xt, wt, bt = (torch.from_numpy(a).requires_grad_(True) for a in (x, w, b))
    dt = torch.from_numpy(dout)

    def torch_step() -> None:
        for t in (xt, wt, bt):
            t.grad = None
        F.conv2d(xt, wt, bt, stride=1, padding=PAD).backward(dt)

    return {"numpy": numpy_step, "torch": torch_step}


def _pool_case(rng: np.random.Generator) -> dict[str, Callable[[], None]]:
    x = rng.standard_normal((N, FILTERS, H, W)).astype(DTYPE)
    dout = rng.standard_normal((N, FILTERS, H // POOL, W // POOL)).astype(DTYPE)

    def numpy_step() -> None:
        _, cache = conv.max_pool2d_forward(x, kernel=POOL, stride=POOL)
        conv.max_pool2d_backward(dout, cache)

    xt = torch.from_numpy(x).requires_grad_(True)
    dt = torch.from_numpy(dout)

    def torch_step() -> None:
        xt.grad = None
        F.max_pool2d(xt, POOL, POOL).backward(dt)

    return {"numpy": numpy_step, "torch": torch_step}


def _measure(*, rounds: int, repeats: int) -> list[dict]:
    """Both cases in this process, torch on as many threads as NumPy's BLAS."""
    threads = numpy_blas_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rng = np.random.default_rng(0)
        rows = []
        cases = [
            (f"conv2d fwd+bwd N={N} {C}->{FILTERS} {H}x{W} k={K} pad={PAD} f32 ({threads} thr)",
             _conv_case(rng), TARGET),
            (f"max_pool2d fwd+bwd N={N} C={FILTERS} {H}x{W} k={POOL} s={POOL} f32 ({threads} thr)",
             _pool_case(rng), None),
        ]
        for name, fns, target in cases:
            best = _best_of(fns, rounds=rounds, repeats=repeats)
            rows.append({
                "name": name,
                "numpy_s": best["numpy"],
                "torch_s": best["torch"],
                "ratio": best["numpy"] / best["torch"],
                "target": target,
            })
        return rows
    finally:
        torch.set_num_threads(previous)


def _measure_single_thread(*, rounds: int, repeats: int) -> list[dict]:
    """The same cases in a child process started with one BLAS/OpenMP thread.

    OpenBLAS reads its thread count when it loads, and we do not change it behind
    NumPy's back (no threadpoolctl dependency), so a fresh interpreter it is.
    """
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--json", str(rounds), str(repeats)],
        env=env, check=True, capture_output=True, text=True,
    )
    return json.loads(done.stdout)


def run(*, rounds: int = ROUNDS, repeats: int = REPEATS) -> list[dict]:
    """One dict per case: name, numpy_s, torch_s, ratio, target (None = info).

    Measured at NumPy's own BLAS thread count and, when that is more than one, again
    with both libraries on a single thread.
    """
    rows = _measure(rounds=rounds, repeats=repeats)
    if numpy_blas_threads() > 1:
        rows += _measure_single_thread(rounds=rounds, repeats=repeats)
    return rows


def main() -> int:
    print(f"x ({N}, {C}, {H}, {W}), w ({FILTERS}, {C}, {K}, {K}), b ({FILTERS},), stride 1, pad {PAD}, "
          f"{np.dtype(DTYPE).name}; best of {ROUNDS} rounds x {REPEATS} runs")
    failed = 0
    for row in run():
        verdict = "info"
        if row["target"] is not None:
            ok = row["ratio"] <= row["target"]
            failed += not ok
            verdict = f"{'PASS' if ok else 'FAIL'} (target <= {row['target']:.1f}x)"
        print(f"{row['name']:<62} numpy {row['numpy_s'] * 1e3:7.2f} ms  torch {row['torch_s'] * 1e3:7.2f} ms  "
              f"ratio {row['ratio']:5.2f}x  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--json"]:  # the single-thread child of run()
        print(json.dumps(_measure(rounds=int(sys.argv[2]), repeats=int(sys.argv[3]))))
    else:
        raise SystemExit(main())
