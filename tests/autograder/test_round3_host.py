"""Round 3, host/batch/outputs: a hostile student and a messy LMS download.

Each test performs one attack that succeeds today and asserts the SAFE outcome, so it
fails until the hole is closed.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

import tinycourse
from autograder.intake import Manifest, collect
from autograder.results import Status

pytestmark = pytest.mark.slow
STEM = tinycourse.STEM
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def manifest(tiny_course) -> Manifest:
    _, releases = tiny_course
    return Manifest.from_notebooks(releases)


@pytest.fixture()
def release_text(tiny_course) -> str:
    _, releases = tiny_course
    return nbformat.writes(releases[STEM])


def _jobs(jobs):
    return {(j.student, j.assignment): j for j in jobs}


# ---------------------------------------------------------------------------------------
# Intake


def test_intake_log_line_never_writes_raw_escapes_to_the_terminal(tiny_solutions, release_text, tmp_path: Path) -> None:
    """A stray file at the root of the download, named with ANSI/OSC sequences, is
    logged by intake (``log.warning("intake: %s belongs to no student")``) with its name
    raw: ``grade`` and ``status`` clear the instructor's screen / set its title."""
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / f"{STEM}.ipynb").write_text(release_text)
    (subs / "\x1b[2J\x1b[1;31mALL GRADED\x1b]0;pwned\x07").write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "status", str(subs), "--run-dir", str(tmp_path / "run"),
         "--solutions", str(tiny_solutions)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "ALL GRADED" in proc.stdout + proc.stderr  # the name is shown ...
    assert "\x1b" not in proc.stdout + proc.stderr  # ... never obeyed by the terminal
    assert "\x07" not in proc.stdout + proc.stderr


def test_hardlink_to_a_file_outside_the_submissions_is_not_graded(manifest, tiny_solutions, release_text, tmp_path: Path) -> None:
    """A hard link is a regular file to lstat/O_NOFOLLOW: a student with write access to
    the shared submissions folder (or a tool that preserved links) hands in the
    instructor's solution notebook, or any host file, as their own."""
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "bob").mkdir()
    os.link(tiny_solutions / f"{STEM}.ipynb", subs / "alice" / f"{STEM}.ipynb")
    (subs / "bob" / f"{STEM}.ipynb").write_text(release_text)
    jobs = _jobs(collect(subs, manifest, unpack_dir=tmp_path / "unpacked"))
    alice = jobs[("alice", STEM)]
    assert alice.path is None and alice.status is Status.UNREADABLE, "a file with other links must not be read"
    assert any("link" in n for n in alice.notes)


def test_lone_moodle_student_with_a_subfolder_keeps_their_identity(manifest, release_text, tmp_path: Path) -> None:
    """A download holding one Moodle participant whose notebook sits in a sub-folder is
    taken for a wrapping folder: the participant (name and Moodle id) is replaced by the
    student's own sub-folder name, so the grade lands on a student the LMS never had."""
    subs = tmp_path / "subs"
    inner = subs / "Alice Smith_4242_assignsubmission_file_" / "my work"
    inner.mkdir(parents=True)
    (inner / f"{STEM}.ipynb").write_text(release_text)
    jobs = collect(subs, manifest, unpack_dir=tmp_path / "unpacked")
    assert [(j.student, j.display) for j in jobs] == [("Alice_Smith_4242", "Alice Smith")]


def test_a_zip_inside_a_students_folder_is_not_a_silent_missing(manifest, release_text, tmp_path: Path) -> None:
    """Students often zip their work again; the inner zip is treated as a file beside the
    notebook and the student is 'missing' with 'no notebook' — nothing tells the
    instructor the notebook is in the zip they handed in."""
    subs = tmp_path / "subs"
    (subs / "carol").mkdir(parents=True)
    with zipfile.ZipFile(subs / "carol" / "submission.zip", "w") as archive:
        archive.writestr(f"{STEM}.ipynb", release_text)
    (subs / "dave").mkdir()
    (subs / "dave" / f"{STEM}.ipynb").write_text(release_text)
    carol = _jobs(collect(subs, manifest, unpack_dir=tmp_path / "unpacked"))[("carol", STEM)]
    assert carol.path is not None or any("submission.zip" in n for n in carol.notes), (carol.status, carol.notes)


def test_a_zip_of_students_at_the_root_is_not_dropped_silently(manifest, release_text, tmp_path: Path) -> None:
    """A download folder holding the LMS zip next to already-unpacked folders (or a
    second batch zipped inside): the zip's students get no job at all — only a log line."""
    subs = tmp_path / "subs"
    (subs / "yan").mkdir(parents=True)
    (subs / "yan" / f"{STEM}.ipynb").write_text(release_text)
    with zipfile.ZipFile(subs / "late_batch.zip", "w") as archive:
        archive.writestr(f"zed/{STEM}.ipynb", release_text)
    students = {j.student for j in collect(subs, manifest, unpack_dir=tmp_path / "unpacked")}
    assert "zed" in students or any("late_batch" in s for s in students), students


def test_a_blackboard_file_name_cannot_hand_in_for_another_student(manifest, release_text, tiny_course, tmp_path: Path) -> None:
    """Blackboard names a download ``<Assignment>_<username>_attempt_<date>_<file name>``
    and the file name is the student's. ``_BLACKBOARD``'s greedy ``(?P<assign>.+)`` takes
    the *last* ``_<user>_attempt_<date>`` in the name: alice uploads
    ``x_mallory_attempt_<date>_00_tiny.ipynb`` and her (blank) file is graded as
    mallory's — in place of mallory's own notebook — while alice has no job at all."""
    subs = tmp_path / "subs"
    subs.mkdir()
    forged = f"HW1_alice_attempt_2024-03-01-10-00-00_x_mallory_attempt_2024-03-01-09-00-00_{STEM}.ipynb"
    (subs / forged).write_text(release_text)
    mallorys = f"HW1_mallory_attempt_2024-03-01-09-00-00_{STEM}.ipynb"
    (subs / mallorys).write_text(nbformat.writes(_answered(tiny_course)))
    jobs = _jobs(collect(subs, manifest, unpack_dir=tmp_path / "unpacked"))
    assert jobs[("mallory", STEM)].path is not None and jobs[("mallory", STEM)].path.name == mallorys
    assert ("alice", STEM) in jobs and jobs[("alice", STEM)].path is not None and jobs[("alice", STEM)].path.name == forged


# ---------------------------------------------------------------------------------------
# Feedback rendering


_RENDER = """
import sys
from nbformat.v4 import new_markdown_cell, new_notebook
from autograder.feedback import _render
_render(new_notebook(cells=[new_markdown_cell("<div>" * 100_000)]))
print("rendered")
"""


def test_feedback_for_a_deeply_nested_markdown_cell_is_bounded(tmp_path: Path) -> None:
    """A 500 kB markdown cell of nested ``<div>`` (far under the 64 MB notebook cap) makes
    ``sanitize_html`` (bleach/html5lib) quadratic: 20 000 levels take ~30 s, 100 000 many
    minutes — and ``write_feedback`` renders every student in one loop without a time
    bound, so one student stops the feedback of the whole class."""
    try:
        proc = subprocess.run([sys.executable, "-c", _RENDER], cwd=REPO, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("rendering one student's notebook did not finish in 30 s")
    assert "rendered" in proc.stdout, proc.stderr[-2000:]


# ---------------------------------------------------------------------------------------
# Grading runs: what reaches the gradebook, the CSVs and the instructor's terminal


def _answered(tiny_course, **sources: str) -> nbformat.NotebookNode:
    """The release with the instructor's answers, some replaced by ``sources``."""
    from students import student_notebook, typed_answers

    _, releases = tiny_course
    return student_notebook(releases[STEM], typed_answers(**sources))


def test_a_latin1_folder_name_neither_fails_its_student_nor_crashes_export(tiny_course, tiny_solutions, tmp_path: Path) -> None:
    """An LMS zip unpacked by a tool that keeps the raw (cp1252) bytes of "José": the
    name reaches Python as a lone surrogate. The student's result cannot be saved
    ("could not save the result: UnicodeEncodeError", failed on every re-run), and
    ``export`` then dies on grades.csv for the whole class."""
    from autograder.export import export_grades

    subs = tmp_path / "subs"
    latin1 = subs / os.fsdecode(b"Jos\xe9")  # "Jos\udce9": the raw byte, as os.listdir returns it
    latin1.mkdir(parents=True)
    (subs / "honest").mkdir()
    text = nbformat.writes(_answered(tiny_course))
    (latin1 / f"{STEM}.ipynb").write_text(text)
    (subs / "honest" / f"{STEM}.ipynb").write_text(text)
    run = tinycourse.grade(subs, tmp_path / "run", tiny_solutions)
    statuses = {r.student: (r.status, r.reason) for r in run.results}
    assert all(status is Status.GRADED for status, _ in statuses.values()), statuses
    result = export_grades(run_dir=tmp_path / "run")  # raises UnicodeEncodeError today
    with result.grades_csv.open(newline="") as fh:
        assert len(list(csv.reader(fh))) == 3  # header + both students


@pytest.fixture(scope="module")
def escapes_run(tiny_course, tiny_solutions, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class with a flat download file named with ESC/OSC/U+202E and a student whose
    answer raises an exception carrying them; graded, then feedback and export."""
    from autograder.export import export_grades
    from autograder.feedback import write_feedback

    root = tmp_path_factory.mktemp("escapes")
    subs = root / "subs"
    subs.mkdir()
    honest = nbformat.writes(_answered(tiny_course))
    (subs / f"\x1b[2J\x1b]0;pwned\x07\u202eevil_{STEM}.ipynb").write_text(honest)
    raising = "def softsign(x):\n    raise ValueError('\\x1b[2J\\x1b[32mALL TESTS PASSED\\u202e')\n"
    (subs / "mallory").mkdir()
    (subs / "mallory" / f"{STEM}.ipynb").write_text(nbformat.writes(_answered(tiny_course, softsign=raising)))
    tinycourse.grade(subs, root / "run", tiny_solutions)
    export_grades(run_dir=root / "run")
    write_feedback(run_dir=root / "run")
    return root / "run"


def test_csv_cells_carry_no_terminal_escapes_or_bidi_overrides(escapes_run: Path) -> None:
    """The name of a flat download file and a student's exception message are written
    raw into grades.csv / submissions.csv: ``cat``/``less -R``/``column`` of the CSV in the
    instructor's terminal obeys ESC sequences, and U+202E reverses what a spreadsheet
    shows in the name column (CSV escaping covers formulas only)."""
    for path in (escapes_run / "grades.csv", escapes_run / "submissions.csv"):
        text = path.read_text()
        for bad in ("\x1b", "\x07", "\u202e"):
            assert bad not in text, f"{path.name} holds {bad!r}"


def test_report_and_feedback_pages_carry_no_bidi_overrides(escapes_run: Path) -> None:
    """html.escape leaves U+202E (and raw ESC) in the report's and feedback pages' "why"
    and "note" cells: the student's exception message reorders the instructor's row."""
    for path in [escapes_run / "report" / "index.html", *sorted((escapes_run / "feedback").glob("*.html"))]:
        text = path.read_text()
        for bad in ("\x1b", "\u202e"):
            assert bad not in text, f"{path.relative_to(escapes_run)} holds {bad!r}"


def test_a_background_process_does_not_hold_every_exercise_until_its_timeout(tiny_course, tiny_solutions, tmp_path: Path) -> None:
    """An answer cell that leaves a sleeping grandchild (double fork + setsid) behind: it
    inherits the re-verification child's report and progress pipes, so
    ``jail.verify._watch`` waits for an EOF that never comes and every exercise of the
    notebook costs the whole ``verify_timeout`` (30 s by default) though its report was
    complete — 3 exercises: ~99 s instead of ~10 s; a class of such notebooks multiplies
    the batch's time by ten, and the student is still graded in full."""
    daemon = (
        "def square(x):\n    return x * x\n"
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(600)\n    os._exit(0)\n"
        "os.wait()\n"
    )
    subs = tmp_path / "subs"
    (subs / "daemon").mkdir(parents=True)
    (subs / "daemon" / f"{STEM}.ipynb").write_text(nbformat.writes(_answered(tiny_course, square=daemon)))
    run = tinycourse.grade(subs, tmp_path / "run", tiny_solutions)
    (result,) = run.results
    assert result.status is Status.GRADED, (result.status, result.reason)
    limit = tinycourse.FAST_LIMITS["verify_timeout"]
    assert result.verify_seconds < limit, f"re-verification took {result.verify_seconds:.0f} s (verify_timeout {limit} s per exercise)"


def test_a_markdown_cell_naming_a_missing_attachment_does_not_stop_everyones_feedback(
    tiny_course, tiny_solutions, tmp_path: Path
) -> None:
    """``![plot](attachment:plot.png)`` without the attachment (what copying a cell between
    notebooks leaves; no tampering needed) makes nbconvert raise ``InvalidNotebook`` in
    ``feedback._render``; ``write_feedback`` has no per-student guard, so ``feedback``
    ends in a traceback and no student gets a page."""
    from autograder.feedback import write_feedback

    nb = _answered(tiny_course)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("My plot: ![plot](attachment:plot.png)"))
    subs = tmp_path / "subs"
    (subs / "aaa").mkdir(parents=True)
    (subs / "aaa" / f"{STEM}.ipynb").write_text(nbformat.writes(nb))
    (subs / "zzz").mkdir()
    (subs / "zzz" / f"{STEM}.ipynb").write_text(nbformat.writes(_answered(tiny_course)))
    tinycourse.grade(subs, tmp_path / "run", tiny_solutions)
    result = write_feedback(run_dir=tmp_path / "run")  # raises InvalidNotebook today
    assert sorted(p.name for p in result.pages) == ["aaa.html", "zzz.html"]
