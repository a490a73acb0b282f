"""``make demo``: release the course, grade the sample class, write feedback and report.

The sample class (see ``autograder.sample``) is generated from solutions/ into the
run folder and zipped the way an LMS bulk download is, so the demo also exercises
the zip intake. Honest students hand in every notebook; each faulty or dishonest
student hands in the one notebook it plays its trick in (a different one per
student), so the rest of its row is "missing".
"""

from __future__ import annotations

import shutil
import time
import zipfile
from functools import partial
from pathlib import Path

from autograder.api import GradeOptions, export_grades, grade_class, write_feedback
from autograder.console import grade_with_progress
from autograder.course import CourseDir, assignment_stems, read_notebook
from autograder.limits import Limits
from autograder.release import release_course
from autograder.sample import EXPECTED, write_sample_class

__all__ = ["run_demo", "build_sample_zip"]

REPO = Path(__file__).resolve().parents[1]
HONEST = ("perfect", "partial", "blank")


def build_sample_zip(*, solutions_dir: Path, run_dir: Path) -> Path:
    """Generate the sample class from the instructor notebooks; returns the zip."""
    from course_lib.checks import exercises

    course = CourseDir.at(run_dir / "course")
    stems = assignment_stems(solutions_dir)
    course.install(stems)
    sources = {s: read_notebook(course.source(s)) for s in stems}
    releases = {s: read_notebook(course.release(s)) for s in stems}
    folder = run_dir / "sample_class"
    if folder.exists():
        shutil.rmtree(folder)
    ordered = sorted(stems)
    for offset, recipe in enumerate(EXPECTED):
        if recipe in HONEST:
            picked = ordered
        elif recipe in ("corrupt", "renamed"):  # these need two notebooks to show their fault
            picked = ordered[:2]
        else:  # the trick in one notebook (a different one per student); nothing else handed in
            picked = [ordered[offset % len(ordered)]]
        write_sample_class(
            sources={s: sources[s] for s in picked},
            releases={s: releases[s] for s in picked},
            out_dir=folder,
            exercises=lambda stem: {e.name: e for e in exercises(stem)},
            recipes=(recipe,),
        )
    archive = run_dir / "sample_class.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(str(path.relative_to(folder)), date_time=(2026, 1, 1, 0, 0, 0))
                zf.writestr(info, path.read_bytes())
    return archive


def run_demo(
    *, run_dir: Path, workers: int, solutions_dir: Path | None = None, notebooks_dir: Path | None = None
) -> int:
    start = time.monotonic()
    solutions_dir = solutions_dir or REPO / "solutions"
    notebooks_dir = notebooks_dir or REPO / "notebooks"
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    released = release_course(solutions_dir=solutions_dir, notebooks_dir=notebooks_dir)
    print(
        f"released {len(released.notebooks)} notebooks into {notebooks_dir} ({len(released.changed)} changed)"
    )
    archive = build_sample_zip(solutions_dir=solutions_dir, run_dir=run_dir)
    print(f"sample class: {archive}")
    options = GradeOptions(workers=workers, limits=Limits(cell_timeout=20, notebook_budget=90), force=True)
    grade = partial(grade_class, submissions=archive, run_dir=run_dir, solutions_dir=solutions_dir)
    run = grade_with_progress(grade, options)
    feedback = write_feedback(run_dir=run_dir)
    report = export_grades(run_dir=run_dir, protections_summary=run.protections.summary)
    print(f"\nfeedback: {len(feedback.pages)} pages in {run_dir / 'feedback'}")
    print(f"gradebook CSV: {report.grades_csv}\nreport: {report.report}")
    print(f"demo finished in {time.monotonic() - start:.0f} s")
    return 0
