"""Benchmark: ``--cluster local:2`` (dask LocalCluster, two worker processes) against
``--workers 2`` (two grading threads) on this machine, on the same synthetic class.

    python benchmarks/bench_cluster.py                 # 2 students x every notebook
    python benchmarks/bench_cluster.py --students 1    # quick
    python benchmarks/bench_cluster.py --rounds 2      # alternate the order, keep the best of each

Prints, from one run: each engine's wall time (the cluster's includes starting its
LocalCluster and every worker building its own course_lib views; each worker warms up,
``remote.warm_up``, while the coordinator prepares the course), the ratio cluster /
threads (target <= 1.15), each engine's core-seconds (CPU of everything it started,
which other work on the machine does not inflate), whether the two gave the same status and score for every
submission (they must), and the load average before and after (other work on the
machine makes wall times noisy). Both runs share one run secret, so they draw the same
hidden cases.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_autograder import build_class  # noqa: E402
from cpu_meter import CpuMeter  # noqa: E402

from autograder.api import GradeOptions, GradeRun, grade_class  # noqa: E402

TARGET = 1.15
SECRET = "777001"


def _grade(
    class_dir: Path, run_dir: Path, solutions: Path, options: GradeOptions, meter: CpuMeter
) -> tuple[GradeRun, float, float]:
    """The run, its wall seconds and its core-seconds (this process and all it started)."""
    run_dir.mkdir(parents=True)
    (run_dir / ".secret-seed").write_text(SECRET)
    start, cpu = time.perf_counter(), meter.seconds()
    run = grade_class(submissions=class_dir, run_dir=run_dir, solutions_dir=solutions, options=options)
    return run, time.perf_counter() - start, meter.seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--students", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=1, help="each engine this many times, alternating who goes first"
    )
    parser.add_argument("--solutions", type=Path, default=REPO / "solutions")
    args = parser.parse_args()

    engines = {
        "threads (--workers 2)": GradeOptions(workers=2),
        "cluster (--cluster local:2)": GradeOptions(cluster="local:2"),
    }
    meter = CpuMeter()  # before anything starts: every worker and sandbox is counted
    print(f"core-seconds from {meter.source}")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        class_dir, _, sources, _ = build_class(args.solutions, root, args.students)
        n = args.students * len(sources)
        print(f"class: {args.students} students x {len(sources)} notebooks = {n} submissions")
        print(f"load average before: {_load()}")
        best: dict[str, float] = {}
        outcomes: dict[str, list[tuple[str, str, str, float | None]]] = {}
        for r in range(args.rounds):
            order = list(engines) if r % 2 == 0 else list(reversed(engines))
            for name in order:
                run, seconds, cpu = _grade(
                    class_dir, root / f"run-{r}-{len(best)}-{name[:7]}", args.solutions, engines[name], meter
                )
                best[name] = min(seconds, best.get(name, seconds))
                outcomes[name] = [(x.student, x.assignment, str(x.status), x.score) for x in run.results]
                print(f"  round {r + 1}: {name}: {seconds:.1f} s, {cpu:.1f} core-seconds")
                for host in run.hosts:
                    print(f"    {host.line()}")
        threads, cluster = (best[name] for name in engines)
        print(f"threads: {threads:.1f} s   cluster: {cluster:.1f} s   ratio cluster/threads: {cluster / threads:.2f} "
              f"(target <= {TARGET:.2f}: {'met' if cluster / threads <= TARGET else 'NOT met'})")  # fmt: skip
        same = len({tuple(v) for v in outcomes.values()}) == 1
        print(f"same status and score for every submission: {same}")
        print(f"load average after: {_load()}")
    meter.close()


def _load() -> str:
    """The 1, 5 and 15 minute load averages (2 cores here: above 2 means others are busy)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
