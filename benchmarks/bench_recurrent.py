"""How fast is the NumPy reference LSTM next to torch's own?

Times ``course_lib.np_ref`` ``lstm_forward`` + ``lstm_backward`` against torch's CPU
``nn.LSTM(batch_first=True)`` forward + autograd backward, on the same float32 data
(N=32, T=50, D=H=128), with torch restricted to as many threads as NumPy's BLAS uses.
Both sides compute the gradients of x, h0 and all weights. The target is a ratio of at
most 2. The vanilla RNN against ``nn.RNN`` is reported for information.

The two libraries take turns in blocks of runs, several rounds, so that load from other
processes falls on both; the best run of each is reported.

    python benchmarks/bench_recurrent.py            # prints a table, PASS/FAIL per target
    from benchmarks.bench_recurrent import run      # -> list of dicts for a top-level runner
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make `course_lib` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib.np_ref import recurrent  # noqa: E402

__all__ = ["run", "numpy_blas_threads", "blas_kernel", "main"]

N, T, D, H = 32, 50, 128, 128
DTYPE = np.float32
TARGET = 2.0
ROUNDS = 5
REPEATS = 10
IDLE_PAUSE_S = 0.5

# Entry points that report the thread count of the BLAS NumPy loaded (OpenBLAS builds
# prefix or suffix the name; MKL has its own).
_THREAD_QUERIES = (
    "scipy_openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
    "MKL_Get_Max_Threads",
)


def _blas_library() -> ctypes.CDLL | None:
    """The BLAS shared library NumPy loaded (Linux: found in /proc/self/maps), or None."""
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure it is loaded
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    paths = sorted(set(re.findall(r"\S*(?:openblas|mkl_rt)\S*\.so\S*", maps.read_text())))
    return ctypes.CDLL(paths[0]) if paths else None


def blas_kernel() -> str:
    """OpenBLAS's kernel family (e.g. Haswell = AVX2, SkylakeX = AVX-512), or "unknown"."""
    lib = _blas_library()
    for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
        query = getattr(lib, name, None) if lib is not None else None
        if query is not None:
            query.restype = ctypes.c_char_p
            return query().decode()
    return "unknown"


def numpy_blas_threads() -> int:
    """The number of threads NumPy's BLAS will use for a large matmul."""
    try:
        from threadpoolctl import threadpool_info  # optional; not a course dependency

        counts = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    lib = _blas_library()
    for name in _THREAD_QUERIES:
        query = getattr(lib, name, None) if lib is not None else None
        if query is not None:
            query.restype = ctypes.c_int
            return int(query())
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _best_of(fns: dict[str, Callable[[], object]], *, rounds: int, repeats: int) -> dict[str, float]:
    """Best wall time of each function over ``rounds`` blocks of ``repeats`` runs.

    The libraries take turns block by block, not run by run: each keeps a pool of threads
    (OpenBLAS's for NumPy, OpenMP's for torch) that keep spinning for up to ~0.1 s after
    their last call and would steal a core from the other library. Hence the pause before
    every block, and its first run is a warm-up.
    """
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(IDLE_PAUSE_S)
            fn()
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def _params(gates: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    scale = 1 / np.sqrt(H)  # torch's default init range: keeps the gates out of saturation
    x = rng.standard_normal((N, T, D)).astype(DTYPE)
    h0 = rng.standard_normal((N, H)).astype(DTYPE)
    wx = rng.uniform(-scale, scale, (D, gates * H)).astype(DTYPE)
    wh = rng.uniform(-scale, scale, (H, gates * H)).astype(DTYPE)
    b = rng.uniform(-scale, scale, gates * H).astype(DTYPE)
    dh = rng.standard_normal((N, T, H)).astype(DTYPE)
    return x, h0, wx, wh, b, dh


def _torch_case(kind: str, x, h0, wx, wh, b, dh) -> Callable[[], None]:
    cls = {"lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[kind]
    module = cls(D, H, batch_first=True)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(wx.T))
        module.weight_hh_l0.copy_(torch.from_numpy(wh.T))
        module.bias_ih_l0.copy_(torch.from_numpy(b))
        module.bias_hh_l0.zero_()
    xt = torch.from_numpy(x).requires_grad_(True)
    h0t = torch.from_numpy(h0)[None].clone().requires_grad_(True)
    state = (h0t, torch.zeros_like(h0t)) if kind == "lstm" else h0t
    dht = torch.from_numpy(dh)
    params = [xt, h0t, *module.parameters()]

    def step() -> None:
        for p in params:
            p.grad = None
        out, _ = module(xt, state)
        out.backward(dht)

    return step


def _numpy_case(kind: str, x, h0, wx, wh, b, dh) -> Callable[[], None]:
    forward = getattr(recurrent, f"{kind}_forward")
    backward = getattr(recurrent, f"{kind}_backward")

    def step() -> None:
        _, cache = forward(x, h0, wx, wh, b)
        backward(dh, cache)

    return step


def run(*, rounds: int = ROUNDS, repeats: int = REPEATS) -> list[dict]:
    """Time both recurrent layers; one dict per case: name, numpy_s, torch_s, ratio, target
    (None: for information), threads, blas_kernel."""
    threads = numpy_blas_threads()
    kernel = blas_kernel()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    results = []
    try:
        for kind, gates, target in (("lstm", 4, TARGET), ("rnn", 1, None)):
            data = _params(gates, rng)
            best = _best_of(
                {"numpy": _numpy_case(kind, *data), "torch": _torch_case(kind, *data)},
                rounds=rounds, repeats=repeats,
            )
            results.append({
                "name": f"{kind} forward+backward N={N} T={T} D={D} H={H} float32, {threads} thread(s)",
                "numpy_s": best["numpy"],
                "torch_s": best["torch"],
                "ratio": best["numpy"] / best["torch"],
                "target": target,
                "threads": threads,
                "blas_kernel": kernel,
            })
    finally:
        torch.set_num_threads(previous)
    return results


def main() -> int:
    threads = numpy_blas_threads()
    print(f"NumPy {np.__version__}, BLAS kernel {blas_kernel()}, {threads} BLAS thread(s); "
          f"torch {torch.__version__} set to the same thread count.")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if var in os.environ:
            print(f"  {var}={os.environ[var]}")
    print(f"best of {ROUNDS} rounds x {REPEATS} runs, the libraries taking turns by round")
    if hasattr(os, "getloadavg"):  # other jobs on the machine distort timings of threaded BLAS badly
        print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"\n{'case':<62} {'numpy ms':>9} {'torch ms':>9} {'ratio':>6}  verdict")
    for row in run():
        verdict = "info" if row["target"] is None else (
            f"PASS (<= {row['target']:g}x)" if row["ratio"] <= row["target"] else f"FAIL (> {row['target']:g}x)"
        )
        print(f"{row['name']:<62} {1e3 * row['numpy_s']:9.2f} {1e3 * row['torch_s']:9.2f} "
              f"{row['ratio']:6.2f}  {verdict}")
    if hasattr(os, "getloadavg"):
        print("load average after:  {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
