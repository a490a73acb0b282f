"""How fast is the NumPy reference LSTM next to torch's own?

Times ``course_lib.np_ref`` ``lstm_forward`` + ``lstm_backward`` against torch's CPU
``nn.LSTM(batch_first=True)`` forward + autograd backward, on the same float32 data
(N=32, T=50, D=H=128). Both sides compute the gradients of x, h0 and all weights. The
target is a ratio of at most 2, on one thread each and on all of the machine's cores
each. The vanilla RNN against ``nn.RNN`` is reported for information.

Each library is timed alone in fresh processes that take turns (``isolated.py`` says why
and how, and which BLAS kernel NumPy runs).

    python benchmarks/bench_recurrent.py [--keep-blas-env]   # prints a table, PASS/FAIL per target
    from bench_recurrent import run                          # -> list of dicts for a top-level runner
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

N, T, D, H = 32, 50, 128, 128
DTYPE = np.float32
TARGET = 2.0
ROUNDS = 20
REPEATS = 6
GATES = {"lstm": 4, "rnn": 1}


def _data(kind: str) -> tuple[np.ndarray, ...]:
    """x, h0, wx, wh, b, dh for a layer with GATES[kind] gates, the same in both processes."""
    rng = np.random.default_rng(0)
    gates = GATES[kind]
    scale = 1 / np.sqrt(H)  # torch's default init range: keeps the gates out of saturation
    x = rng.standard_normal((N, T, D)).astype(DTYPE)
    h0 = rng.standard_normal((N, H)).astype(DTYPE)
    wx = rng.uniform(-scale, scale, (D, gates * H)).astype(DTYPE)
    wh = rng.uniform(-scale, scale, (H, gates * H)).astype(DTYPE)
    b = rng.uniform(-scale, scale, gates * H).astype(DTYPE)
    dh = rng.standard_normal((N, T, H)).astype(DTYPE)
    return x, h0, wx, wh, b, dh


def _numpy_step(kind: str) -> Callable[[], None]:
    from course_lib.np_ref import fast_recurrent as recurrent  # what course_lib.np_ref.lstm_forward is

    forward = getattr(recurrent, f"{kind}_forward")
    backward = getattr(recurrent, f"{kind}_backward")
    x, h0, wx, wh, b, dh = _data(kind)

    def step() -> None:
        _, cache = forward(x, h0, wx, wh, b)
        backward(dh, cache)

    return step


def _torch_step(kind: str) -> Callable[[], None]:
    import torch

    x, h0, wx, wh, b, dh = _data(kind)
    module = {"lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[kind](D, H, batch_first=True)
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


CASES = {
    kind: Case(f"{kind} fwd+bwd N={N} T={T} D={D} H={H} f32", target,
               lambda kind=kind: _numpy_step(kind), lambda kind=kind: _torch_step(kind))
    for kind, target in (("lstm", TARGET), ("rnn", None))
}


def run(*, rounds: int = ROUNDS, repeats: int = REPEATS, keep_blas_env: bool = False) -> list[dict]:
    """One dict per case and thread count (1, then every core): name, numpy_s, torch_s,
    ratio, median_ratio, target (None = for information), threads, blas_kernel."""
    return run_cases("bench_recurrent", rounds=rounds, repeats=repeats, keep_blas_env=keep_blas_env)


def main() -> int:
    return script_main("bench_recurrent", f"N={N}, T={T}, D={D}, H={H}, float32", rounds=ROUNDS, repeats=REPEATS)


if __name__ == "__main__":
    raise SystemExit(main())
