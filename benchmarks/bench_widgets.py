"""How long does one interaction with the course widgets take to redraw?

Each interaction is what a student's click or slider move triggers in the kernel, from
the control's new value to fresh PNG bytes in the ``ipywidgets.Image`` (re-running
gradient descent or training, updating the matplotlib artists, rendering, encoding).
Default settings throughout. The target is a median of at most 200 ms per interaction;
the 90th percentile is printed too, since a slider drag is many interactions in a row.
Browser-side decoding and the websocket hop are not included (a few ms on loopback).

    python benchmarks/bench_widgets.py         # prints a table, PASS/FAIL per interaction
    from bench_widgets import run              # -> list of dicts for a top-level runner
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")
if __package__ in (None, ""):  # run as a script: make `course_lib` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib.widgets import learning_rate_explorer, playground

__all__ = ["run", "main"]

TARGET_S = 0.2
REPEATS = 15


def _times(interact: Callable[[int], None], repeats: int) -> np.ndarray:
    interact(0)  # warm-up: first-use costs (font cache, imports) are not an interaction
    out = []
    for i in range(1, repeats + 1):
        start = time.perf_counter()
        interact(i)
        out.append(time.perf_counter() - start)
    return np.array(out)


def _interactions() -> list[tuple[str, Callable[[int], None]]]:
    ex = learning_rate_explorer(static=False)
    lrs = np.geomspace(1e-3, 5.0, REPEATS + 1)
    optimizers = ["sgd", "momentum", "adam", "rmsprop", "nesterov", "adagrad"]
    pg = playground(static=False)
    units = [4, 8]
    datasets = ["xor", "circles", "spirals", "blobs"]

    def lr_move(i: int) -> None:
        ex.lr_slider.value = float(lrs[i])

    def optimizer_pick(i: int) -> None:
        ex.optimizer_menu.value = optimizers[i % len(optimizers)]

    def momentum_move(i: int) -> None:
        ex.optimizer_menu.value = "momentum"
        ex.momentum_slider.value = 0.5 + 0.02 * i

    def surface_pick(i: int) -> None:
        ex.surface_menu.value = ["bowl", "ravine", "wells"][i % 3]

    def step_click(i: int) -> None:
        pg.step_button.click()

    def train_frame(i: int) -> None:
        pg.step(pg.epochs_per_frame)  # what one frame of the Train loop does

    def units_move(i: int) -> None:
        pg.units_slider.value = units[i % 2]

    def dataset_pick(i: int) -> None:
        pg.dataset_menu.value = datasets[i % len(datasets)]

    return [
        ("explorer: move the learning-rate slider", lr_move),
        ("explorer: pick another optimizer", optimizer_pick),
        ("explorer: move the momentum slider", momentum_move),
        ("explorer: pick another surface (new contours)", surface_pick),
        ("playground: Step button (1 epoch)", step_click),
        (f"playground: one Train frame ({pg.epochs_per_frame} epochs)", train_frame),
        ("playground: units slider (new model)", units_move),
        ("playground: pick another data set (new model)", dataset_pick),
    ]


def run(*, repeats: int = REPEATS) -> list[dict]:
    """One dict per interaction: name, median_s, p90_s, target_s."""
    rows = []
    for name, interact in _interactions():
        t = _times(interact, repeats)
        rows.append({"name": name, "median_s": float(np.median(t)), "p90_s": float(np.quantile(t, 0.9)),
                     "target_s": TARGET_S})
    return rows


def main() -> int:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"redraw latency per interaction, default settings, {REPEATS} repeats after a warm-up; "
          f"target median <= {TARGET_S * 1e3:.0f} ms; load average {load:.1f} on {os.cpu_count()} CPUs")
    failed = 0
    for row in run():
        ok = row["median_s"] <= row["target_s"]
        failed += not ok
        print(f"{row['name']:<50} median {row['median_s'] * 1e3:6.1f} ms  p90 {row['p90_s'] * 1e3:6.1f} ms  "
              f"{'PASS' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
