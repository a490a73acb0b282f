"""Benchmark: our grader (every protection on) vs stock sequential ``nbgrader
autograde`` on the same synthetic class, and where our seconds go, stage by stage.

    python benchmarks/bench_autograder.py                  # 6 students x 7 notebooks = 42
    python benchmarks/bench_autograder.py --students 1     # quick: 7 submissions
    python benchmarks/bench_autograder.py --cold           # the cold start (AUTOGRADER_COLD_START=1)

Prints, from one run:
- stock default (nbgrader runs every cell) / ours with 2 workers, default settings
  (demo cells skipped): target >= 10x on 2 cores;
- like for like: stock / ours with 2 workers and the demo cells run: target >= 4x;
  and its bound: the same run with re-verification off, the notebooks' execution alone
  in our sandboxes (what the demo cells themselves cost sets it);
- the overhead per notebook beyond plain nbclient: ours with 1 worker minus plain
  nbclient on the same graded notebooks, per notebook (target <= 0.3 s);
- per-stage p50/p95 over the 2-worker run: queue (waiting for a worker), start (sandbox
  and kernel start), execute (the cells), re-verify, merge (gradebook + ledger);
- core-seconds per notebook (CPU time of the grader and every process it started,
  which other work on the machine does not inflate) and the projection for 7,000
  notebooks on 4 hosts x 16 cores (target <= 15 min), assuming it scales linearly.

The class alternates perfect and partial students derived from solutions/
(``autograder.sample``). Other work on the machine makes wall times noisy: compare the
ratios of one run.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cpu_meter import CpuMeter  # noqa: E402

import autograder.api as api  # noqa: E402
import autograder.pipeline as pipeline  # noqa: E402
from autograder import template  # noqa: E402
from autograder.api import GradeOptions, grade_class  # noqa: E402
from autograder.canonical import canonicalize  # noqa: E402
from autograder.course import CourseDir, assignment_stems, nbgrader_env, read_notebook  # noqa: E402
from autograder.sample import solution_answers, student_notebook  # noqa: E402


def build_class(solutions: Path, root: Path, students: int) -> tuple[Path, CourseDir, dict, dict]:
    course = CourseDir.at(root / "course")
    stems = assignment_stems(solutions)
    course.install(stems)
    sources = {s: read_notebook(course.source(s)) for s in stems}
    releases = {s: read_notebook(course.release(s)) for s in stems}
    class_dir = root / "class"
    import nbformat

    for i in range(students):
        recipe = "perfect" if i % 2 == 0 else "partial"
        for stem in stems:
            nb = student_notebook(recipe, releases[stem], solution_answers(sources[stem]), {}, index=0)
            path = class_dir / f"s{i:02d}" / f"{stem}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(path))
    return class_dir, course, sources, releases


def stock_nbgrader(course: CourseDir, class_dir: Path, root: Path) -> tuple[float, float]:
    """(wall seconds, core-seconds) of ``nbgrader autograde <assignment>`` once per
    assignment, as an instructor would."""
    stock = root / "stock"
    shutil.copytree(course.root / "source", stock / "source")
    shutil.copyfile(course.root / "nbgrader_config.py", stock / "nbgrader_config.py")
    for student in sorted(class_dir.iterdir()):
        for nb in student.glob("*.ipynb"):
            target = stock / "submitted" / student.name / nb.stem / nb.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(nb, target)
    env = nbgrader_env()
    for stem in sorted(p.name for p in (stock / "source").iterdir()):
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", stem, "--force"], cwd=stock, env=env,
                       check=True, capture_output=True)  # fmt: skip
    start, cpu = time.perf_counter(), _cpu()
    for stem in sorted(p.name for p in (stock / "source").iterdir()):
        subprocess.run([sys.executable, "-m", "nbgrader", "autograde", stem], cwd=stock, env=env, check=True,
                       capture_output=True)  # fmt: skip
    return time.perf_counter() - start, _cpu() - cpu


def plain_execution(class_dir: Path, sources: dict, releases: dict, student: str, drop_demo: bool) -> tuple[float, float]:
    """(wall seconds, core-seconds) plain nbclient takes to run one student's graded
    notebooks (no sandbox, no re-verification, no gradebook)."""
    import nbformat
    from nbclient import NotebookClient

    total, cpu = 0.0, _cpu()
    for path in sorted((class_dir / student).glob("*.ipynb")):
        nb = canonicalize(nbformat.read(str(path), as_version=4), source=sources[path.stem],
                          release=releases[path.stem], drop_demo=drop_demo).notebook  # fmt: skip
        start = time.perf_counter()
        NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3").execute()
        total += time.perf_counter() - start
    return total, _cpu() - cpu


_METER: CpuMeter | None = None  # set by main(): every process the benchmark starts


def _cpu() -> float:
    """CPU seconds of this process and of every process it started (see ``cpu_meter``)."""
    return _METER.seconds() if _METER is not None else CpuMeter().seconds()


class Stages:
    """Per-submission stage times of one ``grade_class`` run (wraps ``grade_job`` and the merge)."""

    def __init__(self) -> None:
        self.queue: list[float] = []
        self.merge: list[float] = []
        self.results: list[pipeline.SubmissionResult] = []

    def __enter__(self) -> Stages:
        self._job, self._merge = pipeline.grade_job, api.merge_result

        @functools.wraps(self._job)
        def job(*a, **k):
            self.queue.append(time.monotonic())
            result = self._job(*a, **k)
            self.results.append(result)
            return result

        @functools.wraps(self._merge)
        def merge(*a, **k):
            start = time.monotonic()
            try:
                return self._merge(*a, **k)
            finally:
                self.merge.append(time.monotonic() - start)

        pipeline.grade_job, api.merge_result = job, merge
        return self

    def __exit__(self, *exc: object) -> None:
        pipeline.grade_job, api.merge_result = self._job, self._merge

    def table(self) -> str:
        def p(values: list[float]) -> str:
            if not values:
                return "      -         -"
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
            return f"{statistics.median(ordered):6.2f} s  {p95:6.2f} s"

        st = [r.stage_seconds for r in self.results if r.stage_seconds]
        first = min(self.queue, default=0.0)  # queue: from the first job's start (setup excluded)
        rows = {
            "queue": [t - first for t in self.queue],
            "start (sandbox, kernel)": [s["launch"] + s["jail"] + s["kernel"] for s in st],
            "  of which launch": [s["launch"] for s in st],
            "  of which jail": [s["jail"] for s in st],
            "  of which kernel": [s["kernel"] for s in st],
            "execute (cells)": [s["cells"] for s in st],
            "exit (shutdown)": [s["exit"] for s in st],
            "re-verify (beside execute)": [r.verify_seconds for r in self.results if r.verify_seconds],
            "merge": self.merge,
            "whole submission": [r.seconds for r in self.results],
        }
        lines = ["  stage                          p50       p95"]
        lines += [f"  {name:26s} {p(values)}" for name, values in rows.items()]
        return "\n".join(lines)


def ours(
    class_dir: Path, run_dir: Path, *, workers: int, drop: bool, verify: bool = True
) -> tuple[float, float, Stages, list]:
    """(wall seconds, core-seconds, stages, results) of grading ``class_dir``. The template
    is stopped at the end, so the CPU of every sandbox it forked is counted."""
    template.shutdown()
    cpu = _cpu()
    options = GradeOptions(workers=workers, drop_demo=drop, force=True, verify=verify)
    with Stages() as stages:
        start = time.perf_counter()
        run = grade_class(submissions=class_dir, run_dir=run_dir, solutions_dir=REPO / "solutions", options=options)
        wall = time.perf_counter() - start
    template.shutdown()
    return wall, _cpu() - cpu, stages, list(run.results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=6, help="students x 7 notebooks (default 6 -> 42)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="the cold start: every sandbox from exec")
    parser.add_argument("--skip-stock", action="store_true", help="only measure our grader")
    args = parser.parse_args()
    global _METER
    _METER = CpuMeter()  # before anything is started, so every descendant is counted
    print(f"core-seconds from: {_METER.source}")
    os.environ.setdefault("MPLBACKEND", "Agg")
    if args.cold:
        os.environ[template.COLD_ENV] = "1"
    root = Path(tempfile.mkdtemp(prefix="bench-autograder-"))
    try:
        class_dir, course, sources, releases = build_class(REPO / "solutions", root, args.students)
        n = sum(1 for _ in class_dir.rglob("*.ipynb"))
        print(f"class: {args.students} students x {len(sources)} notebooks = {n} submissions; cores: {os.cpu_count()}; "
              f"{'cold' if args.cold else 'warm'} start; load average {os.getloadavg()[0]:.1f} at the start")  # fmt: skip
        # Like the stock run, the timings exclude generate_assignment (done once per course).
        CourseDir.at(root / "ours" / "course").install(assignment_stems(REPO / "solutions"))
        CourseDir.at(root / "like" / "course").install(assignment_stems(REPO / "solutions"))
        CourseDir.at(root / "bound" / "course").install(assignment_stems(REPO / "solutions"))

        wall, cpu, stages, results = ours(class_dir, root / "ours", workers=args.workers, drop=True)
        statuses = sorted({str(r.status) for r in results})
        print(f"ours, {args.workers} workers, default (demo cells skipped): {wall:.1f} s, "
              f"{cpu / n:.2f} core-s/notebook  statuses={statuses}")  # fmt: skip
        like_wall, like_cpu, _, _ = ours(class_dir, root / "like", workers=args.workers, drop=False)
        print(f"ours, {args.workers} workers, demo cells run (like for like): {like_wall:.1f} s, {like_cpu / n:.2f} core-s/notebook")
        # The like-for-like bound: the same run with re-verification off (never for real
        # grading) is what executing the notebooks alone costs in our sandboxes.
        bound_wall, bound_cpu, _, _ = ours(class_dir, root / "bound", workers=args.workers, drop=False, verify=False)
        print(f"ours, {args.workers} workers, demo cells run, re-verification off (the execution alone): "
              f"{bound_wall:.1f} s, {bound_cpu / n:.2f} core-s/notebook")  # fmt: skip

        # Overhead: one student graded sequentially vs the same notebooks under plain nbclient.
        one = class_dir.parent / "one"
        shutil.copytree(class_dir / "s00", one / "s00")
        plain, plain_cpu = plain_execution(one, sources, releases, "s00", True)
        seq_wall, seq_cpu, seq_stages, _ = ours(one, root / "ours", workers=1, drop=True)
        per_nb = len(sources)
        print(f"ours, 1 worker: {seq_wall / per_nb:.2f} s/notebook, {seq_cpu / per_nb:.2f} core-s/notebook; "
              f"plain nbclient (no sandbox, no re-verification): {plain / per_nb:.2f} s/notebook, "
              f"{plain_cpu / per_nb:.2f} core-s/notebook")  # fmt: skip
        print(f"overhead per notebook beyond plain nbclient: {(seq_wall - plain) / per_nb:.2f} s wall, "
              f"{(seq_cpu - plain_cpu) / per_nb:.2f} core-s (target <= 0.3 s)")  # fmt: skip
        print(f"stages, {args.workers} workers ({n} submissions):")
        print(stages.table())
        print("stages, 1 worker:")
        print(seq_stages.table())
        minutes = 7000 * (cpu / n) / (4 * 16) / 60
        print(f"core-seconds per notebook: {cpu / n:.2f}; 7,000 notebooks on 4 hosts x 16 cores: "
              f"{minutes:.1f} min at linear scaling (target <= 15 min)")  # fmt: skip

        if not args.skip_stock:
            stock, stock_cpu = stock_nbgrader(course, class_dir, root)
            print(f"stock nbgrader autograde (sequential, every cell): {stock:.1f} s, {stock_cpu / n:.2f} core-s/notebook")
            print(f"speed-up, default settings: {stock / wall:.2f}x (target >= 10x); "
                  f"like for like (demo cells run): {stock / like_wall:.2f}x (target >= 4x)")  # fmt: skip
            print(f"like-for-like bound on this machine: stock / the execution alone = {stock / bound_wall:.2f}x "
                  f"(no grader that re-verifies can pass it: re-verification only adds work)")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
        _METER.close()


if __name__ == "__main__":
    main()
