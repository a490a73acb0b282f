"""Benchmark: our grader (2 workers, every protection on) vs stock sequential
``nbgrader autograde`` on the same synthetic class.

    python benchmarks/bench_autograder.py                  # 6 students x 7 notebooks = 42
    python benchmarks/bench_autograder.py --students 1     # quick: 7 submissions
    python benchmarks/bench_autograder.py --keep-demo-cells  # run the ungraded demo cells too

Prints, from one run:
- the ratio stock time / our time (target >= 1.6x with 2 workers on 2 cores);
- the overhead per notebook beyond executing it: our sequential time (1 worker:
  start-up, sandbox, canonicalization, re-verification, gradebook merge) minus the time
  plain nbclient takes to execute the very same graded notebooks (target <= 1 s).

The class alternates perfect and partial students derived from solutions/
(``autograder.sample``). Our grader skips the ungraded ``demo`` cells by default (that
is part of its speed); ``--keep-demo-cells`` compares like for like.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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


def stock_nbgrader(course: CourseDir, class_dir: Path, root: Path) -> float:
    """``nbgrader autograde <assignment>`` once per assignment, as an instructor would."""
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
    start = time.perf_counter()
    for stem in sorted(p.name for p in (stock / "source").iterdir()):
        subprocess.run([sys.executable, "-m", "nbgrader", "autograde", stem], cwd=stock, env=env, check=True,
                       capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def plain_execution(class_dir: Path, sources: dict, releases: dict, student: str, drop_demo: bool) -> float:
    """Seconds plain nbclient takes to run one student's graded notebooks (no sandbox)."""
    import nbformat
    from nbclient import NotebookClient

    total = 0.0
    for path in sorted((class_dir / student).glob("*.ipynb")):
        nb = canonicalize(nbformat.read(str(path), as_version=4), source=sources[path.stem],
                          release=releases[path.stem], drop_demo=drop_demo).notebook  # fmt: skip
        start = time.perf_counter()
        NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3").execute()
        total += time.perf_counter() - start
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=6, help="students x 7 notebooks (default 6 -> 42)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep-demo-cells", action="store_true")
    parser.add_argument("--skip-stock", action="store_true", help="only measure our grader")
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    root = Path(tempfile.mkdtemp(prefix="bench-autograder-"))
    try:
        class_dir, course, sources, releases = build_class(REPO / "solutions", root, args.students)
        n = sum(1 for _ in class_dir.rglob("*.ipynb"))
        drop = not args.keep_demo_cells
        print(f"class: {args.students} students x {len(sources)} notebooks = {n} submissions; demo cells "
              f"{'skipped' if drop else 'run'}; cores: {os.cpu_count()}")  # fmt: skip

        # Like the stock run below, the timing excludes generate_assignment (done once per course).
        CourseDir.at(root / "ours" / "course").install(assignment_stems(REPO / "solutions"))
        options = GradeOptions(workers=args.workers, drop_demo=drop, force=True)
        start = time.perf_counter()
        run = grade_class(submissions=class_dir, run_dir=root / "ours", solutions_dir=REPO / "solutions", options=options)
        ours = time.perf_counter() - start
        statuses = {r.status for r in run.results}
        print(f"ours ({args.workers} workers, {run.protections.summary}): {ours:.1f} s  statuses={sorted(statuses)}")

        # Overhead: one student graded sequentially vs the same notebooks under plain nbclient.
        one = class_dir.parent / "one"
        shutil.copytree(class_dir / "s00", one / "s00")
        plain = plain_execution(one, sources, releases, "s00", drop)
        start = time.perf_counter()
        grade_class(submissions=one, run_dir=root / "ours", solutions_dir=REPO / "solutions",
                    options=GradeOptions(workers=1, drop_demo=drop, force=True))  # fmt: skip
        sequential = time.perf_counter() - start
        per_nb = len(sources)
        print(f"overhead per notebook beyond executing it: {(sequential - plain) / per_nb:.2f} s "
              f"(ours sequential {sequential / per_nb:.2f} s/notebook, plain nbclient {plain / per_nb:.2f} s)")  # fmt: skip

        if not args.skip_stock:
            stock = stock_nbgrader(course, class_dir, root)
            print(f"stock nbgrader autograde (sequential): {stock:.1f} s")
            print(f"speed-up: {stock / ours:.2f}x  (target >= 1.6x)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
