"""The attack and fault corpus (autograder.sample recipes) on the tiny course, graded
once with 2 workers: each submission gets its safe outcome, the rest of the class is
graded, and nothing leaks or persists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import tinycourse

import autograder
from autograder.course import CourseDir

pytestmark = pytest.mark.slow
STEM = tinycourse.STEM

# recipe -> (status, score or None when nothing could be graded)
OUTCOMES = {
    "perfect": ("graded", 9.0),
    "partial": ("graded", 6.0),  # square and answer_lr right, softsign left as released
    "blank": ("graded", 0.0),
    "corrupt": ("unreadable", None),
    "renamed": ("graded", 9.0),  # "my final version.ipynb", matched by its cells
    "messy": ("graded", 9.0),  # duplicated/deleted/stripped cells, forged outputs, old schema
    "looper": ("timed out", 3.0),  # square's tests ran before the loop and keep their points
    "crasher": ("failed", 3.0),  # kernel killed in the softsign cell
    "hog": ("graded", 9.0),  # MemoryError under the rlimit, after the answer was defined
    "flood": ("graded", 9.0),
    "patcher": ("flagged", 0.0),
    "equalizer": ("flagged", 0.0),
    "copycat": ("flagged", 3.0),  # answer_lr is a value: copying 0.1 is not a reference call
    "hooker": ("flagged", 0.0),
    "snoop": ("graded", 9.0),
    "vandal": ("graded", 9.0),
}


def _result(graded_class, student: str):
    run, _ = graded_class
    return next(r for r in run.results if r.student == student and r.assignment == STEM)


@pytest.mark.parametrize("student", sorted(OUTCOMES))
def test_every_submission_gets_its_safe_outcome(graded_class, student: str) -> None:
    status, score = OUTCOMES[student]
    result = _result(graded_class, student)
    assert (result.status, result.score) == (status, score), result.reason


def test_reasons_say_what_happened(graded_class) -> None:
    assert "kernel died" in _result(graded_class, "crasher").reason
    assert "not a readable notebook" in _result(graded_class, "corrupt").reason
    assert "reference" in _result(graded_class, "copycat").reason
    assert "re-verification" in _result(graded_class, "patcher").reason
    notes = " ".join(_result(graded_class, "messy").notes)
    assert "restored" in notes and "found by its definition" in notes and "duplicated" in notes


def test_unreadable_and_crashed_are_never_an_honest_zero_in_the_gradebook(graded_class) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    run, _ = graded_class
    with Gradebook(CourseDir.at(run.run_dir / "course").db_url) as gb:
        with pytest.raises(MissingEntry):
            gb.find_submission(STEM, "corrupt")
        assert gb.find_submission_notebook(STEM, STEM, "perfect").score == 9.0


def _outputs(run_dir: Path, student: str) -> str:
    nb = json.loads(CourseDir.at(run_dir / "course").autograded(student, STEM).read_text())
    return json.dumps([c.get("outputs", []) for c in nb["cells"]])


def test_snoop_reads_nothing_of_the_course(graded_class) -> None:
    run, _ = graded_class
    text = _outputs(run.run_dir, "snoop")
    assert "snoop found" in text
    assert "solutions" not in text and "gradebook" not in text and "source/" not in text


def test_vandal_writes_nothing_outside_its_scratch(graded_class) -> None:
    run, _ = graded_class
    text = _outputs(run.run_dir, "vandal")
    # The course's packages are mounted read-only inside the jail (OSError: read-only file
    # system); without the jail, file permissions stop nobody (PermissionError).
    package = Path(autograder.__file__).resolve().parent
    assert re.search(rf"blocked {re.escape(str(package))}/PWNED (PermissionError|OSError|FileNotFoundError)", text)
    for path in ("/tmp/PWNED", "/var/tmp/PWNED", "/dev/shm/PWNED", str(package / "PWNED")):
        assert not Path(path).exists(), path
    assert not list(run.run_dir.rglob("PWNED")) and not list(run.run_dir.rglob("00-pwned.py"))
    assert not any((run.run_dir / "scratch").iterdir())  # every scratch directory removed


def test_flood_output_is_cut_in_bytes(graded_class) -> None:
    run, _ = graded_class
    text = _outputs(run.run_dir, "flood")
    assert "output cut at" in text
    assert len(text) < 2 * 256 * 1024


def test_protections_are_reported(graded_class) -> None:
    run, _ = graded_class
    assert (run.run_dir / "protections.txt").read_text().strip() == run.protections.summary
