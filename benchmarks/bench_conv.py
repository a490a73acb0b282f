"""How fast is the NumPy reference convolution next to torch's own?

Times ``course_lib.np_ref`` ``conv2d_forward`` + ``conv2d_backward`` against torch's CPU
``F.conv2d`` forward + autograd backward on the same float32 data: the second layer of
a LeNet-style network, N=64 images, C=6 -> F=16 channels, 14x14, 5x5 kernel, pad 2.
Both sides compute out, dx, dw and db. The target is a ratio of at most 2, on one thread
each and on all of the machine's cores each. Max pooling (2x2, stride 2) on the layer's
output is reported for information.

Each library is timed alone in fresh processes that take turns (``isolated.py`` says why
and how, and which BLAS kernel NumPy runs).

    python benchmarks/bench_conv.py [--keep-blas-env]   # prints a table, PASS/FAIL per target
    from bench_conv import run                          # -> list of dicts for a top-level runner
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # isolated, when imported by path
if __package__ in (None, ""):  # run as a script: make `course_lib` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isolated import Case, run_cases, script_main

__all__ = ["CASES", "run", "main"]

N, C, H, W, FILTERS, K, PAD = 64, 6, 14, 14, 16, 5, 2
POOL = 2
DTYPE = np.float32
TARGET = 2.0
ROUNDS = 24
REPEATS = 20


def _conv_data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(DTYPE)
    w = (rng.standard_normal((FILTERS, C, K, K)) / np.sqrt(C * K * K)).astype(DTYPE)
    b = rng.standard_normal(FILTERS).astype(DTYPE)
    dout = rng.standard_normal((N, FILTERS, H, W)).astype(DTYPE)
    return x, w, b, dout


def _conv_numpy() -> Callable[[], None]:
    from course_lib.np_ref import fast_conv as conv  # what course_lib.np_ref.conv2d_forward is

    x, w, b, dout = _conv_data()

    def step() -> None:
        _, cache = conv.conv2d_forward(x, w, b, stride=1, pad=PAD)
        conv.conv2d_backward(dout, cache)

    return step


def _conv_torch() -> Callable[[], None]:
    import torch
    import torch.nn.functional as F

    x, w, b, dout = (torch.from_numpy(a) for a in _conv_data())
    inputs = [t.requires_grad_(True) for t in (x, w, b)]

    def step() -> None:
        for t in inputs:
            t.grad = None
        F.conv2d(*inputs, stride=1, padding=PAD).backward(dout)

    return step


def _pool_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, FILTERS, H, W)).astype(DTYPE)
    dout = rng.standard_normal((N, FILTERS, H // POOL, W // POOL)).astype(DTYPE)
    return x, dout


def _pool_numpy() -> Callable[[], None]:
    from course_lib.np_ref import conv

    x, dout = _pool_data()

    def step() -> None:
        _, cache = conv.max_pool2d_forward(x, kernel=POOL, stride=POOL)
        conv.max_pool2d_backward(dout, cache)

    return step


def _pool_torch() -> Callable[[], None]:
    import torch
    import torch.nn.functional as F

    x, dout = (torch.from_numpy(a) for a in _pool_data())
    x.requires_grad_(True)

    def step() -> None:
        x.grad = None
        F.max_pool2d(x, POOL, POOL).backward(dout)

    return step


CASES = {
    "conv2d": Case(f"conv2d fwd+bwd N={N} {C}->{FILTERS} {H}x{W} k={K} pad={PAD} f32", TARGET,
                   _conv_numpy, _conv_torch),
    "max_pool2d": Case(f"max_pool2d fwd+bwd N={N} C={FILTERS} {H}x{W} k={POOL} s={POOL} f32", None,
                       _pool_numpy, _pool_torch),
}


def run(*, rounds: int = ROUNDS, repeats: int = REPEATS, keep_blas_env: bool = False) -> list[dict]:
    """One dict per case and thread count (1, then every core): name, numpy_s, torch_s,
    ratio, median_ratio, target (None = for information), threads, blas_kernel."""
    return run_cases("bench_conv", rounds=rounds, repeats=repeats, keep_blas_env=keep_blas_env)


def main() -> int:
    return script_main("bench_conv", f"x ({N}, {C}, {H}, {W}), w ({FILTERS}, {C}, {K}, {K}), b ({FILTERS},), stride 1, pad {PAD}, float32", rounds=ROUNDS, repeats=REPEATS)


if __name__ == "__main__":
    raise SystemExit(main())
