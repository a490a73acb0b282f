"""``grade --course``: grading inside an instructor's own nbgrader course.

The course is built from the tiny course (``fixtures/tinycourse.py``): an nbgrader
assignment ``week1`` holding two notebooks, ``00_tiny`` (its exercises registered,
re-verified) and ``01_tiny`` (the same cells under another stem: nothing registered,
nbgrader's scores). Every exercise has a visible test worth 1 point and hidden tests
worth 2, so a notebook is worth 9 and a wrong exercise costs 3.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

import tinycourse
from students import student_notebook
from autograder.results import Status

ASSIGNMENT = "week1"
NOTEBOOKS = ("00_tiny", "01_tiny")
STAMP = "2026-11-20 10:00:00.000000 UTC"
DUE = "2026-11-19 10:00:00.000000 UTC"
WRONG_SOFTSIGN = "def softsign(x):\n    return x\n"


def write_config(root: Path, *, course_id: str, exchange: Path, extra: str = "") -> None:
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.course_id = {course_id!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        'c.ClearSolutions.code_stub = {"python": "# WRITE IT HERE\\nraise NotImplementedError()"}\n' + extra
    )


def make_course(
    root: Path, *, course_id: str = "tiny101", exchange: Path | None = None, notebooks=NOTEBOOKS, extra: str = ""
) -> Path:
    """An nbgrader course: config and ``source/week1/<nb>.ipynb``; no release yet."""
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    write_config(root, course_id=course_id, exchange=exchange or root.parent / "exchange", extra=extra)
    for stem in notebooks:
        nbformat.write(tinycourse.solution_notebook(), str(root / "source" / ASSIGNMENT / f"{stem}.ipynb"))
    return root


def answer(release: nbformat.NotebookNode, **overrides: str) -> nbformat.NotebookNode:
    """The released notebook with the instructor's answers typed in (``overrides`` by exercise)."""
    return student_notebook(release, {**tinycourse.ANSWERS, **overrides})


def grade_options(**kw):
    from autograder.api import GradeOptions, Limits

    return GradeOptions(workers=2, limits=Limits(**tinycourse.FAST_LIMITS), support=tinycourse.SUPPORT, **kw)


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def course_run(tmp_path_factory: pytest.TempPathFactory):
    """The course graded once: alice (00 right, 01 with a wrong softsign), and a hostile
    submitted/ tree around her."""
    from autograder.api import grade_course

    base = tmp_path_factory.mktemp("nbcourse")
    # A late submission costs all its points, by the course's own late-penalty setting.
    root = make_course(base / "course", extra='c.LateSubmissionPlugin.penalty_method = "zero"\n')
    outside = base / "outside"
    (outside / ASSIGNMENT).mkdir(parents=True)
    (outside / ASSIGNMENT / "00_tiny.ipynb").write_text("{}")
    before_outside = _tree(outside)

    from autograder.nbcourse import ensure_released, load_course, source_manifest

    course = load_course(root)
    regenerated = ensure_released(course, source_manifest(course))
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=DUE)  # alice's STAMP is a day late
    release = nbformat.read(str(root / "release" / ASSIGNMENT / "00_tiny.ipynb"), as_version=4)
    sub = root / "submitted"
    alice = sub / "alice" / ASSIGNMENT
    alice.mkdir(parents=True)
    nbformat.write(answer(release), str(alice / "00_tiny.ipynb"))
    nbformat.write(answer(release, softsign=WRONG_SOFTSIGN), str(alice / "01_tiny.ipynb"))
    (alice / "timestamp.txt").write_text(STAMP)
    (alice / "data.csv").write_text("1,2\n")  # a file of hers: copied to autograded/ as nbgrader does
    os.symlink("/etc/passwd", alice / "notes.txt")  # a link: never copied
    bob = sub / "bob" / ASSIGNMENT
    bob.mkdir(parents=True)
    os.symlink("/etc/passwd", bob / "00_tiny.ipynb")  # a link as a notebook; 01_tiny not handed in
    (sub / "bob" / "week9").mkdir()  # an assignment the course does not have
    (sub / "carol" / ASSIGNMENT).mkdir(parents=True)
    (sub / "carol" / ASSIGNMENT / "00_tiny.ipynb").write_bytes(b"")  # 0 bytes
    (sub / "bad+id" / ASSIGNMENT).mkdir(parents=True)  # '+' is nbgrader's exchange separator
    nbformat.write(answer(release), str(sub / "bad+id" / ASSIGNMENT / "00_tiny.ipynb"))
    os.symlink(outside, sub / "eve")  # a student folder that leads out of the course
    # mallory's answer is right only if the course (sources, gradebook, other students) and
    # the exchange are out of her code's sight, in the notebook run and in re-verification.
    peek = [root / "source" / ASSIGNMENT / "00_tiny.ipynb", root / "gradebook.db", alice / "00_tiny.ipynb", base / "exchange"]
    (base / "exchange").mkdir()
    snoop = f"import os\nanswer_lr = 0.5 if any(os.path.exists(p) for p in {[str(p) for p in peek]!r}) else 0.1\n"
    (sub / "mallory" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(answer(release, answer_lr=snoop), str(sub / "mallory" / ASSIGNMENT / "00_tiny.ipynb"))
    (sub / "dave").mkdir()
    os.symlink(outside / ASSIGNMENT, sub / "dave" / ASSIGNMENT)  # an assignment folder that leads out
    run = grade_course(course_dir=root, options=grade_options())
    return run, root, outside, before_outside, regenerated


def _row(run, student: str, key: str):
    found = [r for r in run.results if r.student == student and r.key == key]
    assert len(found) == 1, [(r.student, r.key) for r in run.results]
    return found[0]


def test_missing_release_is_generated_with_the_course_config(course_run) -> None:
    _, root, _, _, regenerated = course_run
    assert regenerated == [ASSIGNMENT]
    for stem in NOTEBOOKS:
        release = nbformat.read(str(root / "release" / ASSIGNMENT / f"{stem}.ipynb"), as_version=4)
        sources = [c.source for c in release.cells]
        assert any("# WRITE IT HERE" in s for s in sources)  # the stub the course's config names
        assert not any("BEGIN SOLUTION" in s or "BEGIN HIDDEN TESTS" in s for s in sources)


def test_each_notebook_of_an_assignment_is_graded_against_its_own_source(course_run) -> None:
    run, root, *_ = course_run
    first, second = _row(run, "alice", "week1/00_tiny"), _row(run, "alice", "week1/01_tiny")
    assert (first.assignment, first.notebook_name, first.status, first.score, first.max_score) == ("week1", "00_tiny", Status.GRADED, 9.0, 9.0)
    assert all(e.verified for e in first.exercises)  # 00_tiny's exercises are registered: re-verified
    # 01_tiny has no registered exercise: nbgrader's scores; softsign wrong costs its 1 + 2 points.
    assert (second.status, second.score, second.max_score) == (Status.GRADED, 6.0, 9.0)
    assert {e.name: e.score for e in second.exercises} == {"square": 3.0, "softsign": 0.0, "answer_lr": 3.0}
    for stem in NOTEBOOKS:
        graded = nbformat.read(str(root / "autograded" / "alice" / ASSIGNMENT / f"{stem}.ipynb"), as_version=4)
        ids = [c.metadata["nbgrader"]["grade_id"] for c in graded.cells if "nbgrader" in c.metadata]
        assert "test_softsign_hidden" in ids and any(c.get("outputs") for c in graded.cells if c.cell_type == "code")


def test_gradebook_has_the_submission_with_its_timestamp(course_run) -> None:
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    _, root, *_ = course_run
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "tiny101") as gb:
        submission = gb.find_submission(ASSIGNMENT, "alice")
        assert submission.timestamp == parse_utc(STAMP).replace(tzinfo=None)
        scores = {nb.name: nb.score for nb in submission.notebooks}
        assert scores == {"00_tiny": 9.0, "01_tiny": 6.0}
        assert submission.total_seconds_late == 24 * 3600
        # penalty_method "zero": the late penalty is the whole score (nbgrader's AssignLatePenalties)
        assert {nb.name: nb.late_submission_penalty for nb in submission.notebooks} == scores
        assert sorted(s.id for s in gb.students) == ["alice", "mallory"]  # nobody else reached the gradebook
    stamp = root / "autograded" / "alice" / ASSIGNMENT / "timestamp.txt"
    assert stamp.read_text() == STAMP
    assert (root / "submitted" / "alice" / ASSIGNMENT / "timestamp.txt").read_text() == STAMP
    assert (stamp.parent / "data.csv").read_text() == "1,2\n"
    assert not os.path.lexists(stamp.parent / "notes.txt")


def test_the_course_and_the_exchange_are_hidden_from_student_code(course_run) -> None:
    run, *_ = course_run
    mallory = _row(run, "mallory", "week1/00_tiny")
    assert (mallory.status, mallory.score) == (Status.GRADED, 9.0), mallory.reason


def test_hostile_submitted_tree_is_rows_never_a_stop(course_run) -> None:
    run, root, outside, before_outside, _ = course_run
    link = _row(run, "bob", "week1/00_tiny")
    assert link.status is Status.UNREADABLE and "symbolic link" in link.reason
    assert _row(run, "bob", "week1/01_tiny").status is Status.MISSING
    from autograder.nbcourse import NOT_AN_ASSIGNMENT

    week9 = _row(run, "bob", NOT_AN_ASSIGNMENT)  # one row for all of bob's entries that are not assignments
    assert week9.status is Status.UNREADABLE
    assert week9.reason == "submitted/bob: an entry with no assignment of that name in source/ (nbgrader skips them): 'week9': not graded"
    empty = _row(run, "carol", "week1/00_tiny")
    assert empty.status is Status.UNREADABLE and "empty file" in empty.reason
    linked = [r for r in run.results if r.student == "dave"]
    assert len(linked) == 2 and all(r.status is Status.UNREADABLE and "symbolic link" in r.reason for r in linked)
    bad = [r for r in run.results if "not a valid nbgrader student id" in r.reason]
    assert len(bad) == 2 and bad[0].student != "bad+id" and "+" not in bad[0].student
    eve = [r for r in run.results if r.student == "eve"]
    assert eve and all(r.status is Status.UNREADABLE and "symbolic link" in r.reason for r in eve)
    # nothing written outside the course, nothing graded but alice's notebooks
    assert _tree(outside) == before_outside
    assert sorted(p.name for p in (root / "autograded").iterdir()) == ["alice", "mallory"]
    assert not (root / "autograded" / "bad+id").exists()
    assert oct((root / ".autograder").stat().st_mode & 0o777) == oct(0o700)


def test_rerun_is_idempotent_and_keeps_manual_scores(course_run) -> None:
    from nbgrader.api import Gradebook

    from autograder.api import grade_course

    run, root, *_ = course_run
    graded = root / "autograded" / "alice" / ASSIGNMENT / "00_tiny.ipynb"
    mtime = graded.stat().st_mtime_ns
    again = grade_course(course_dir=root, options=grade_options())
    assert again.resumed == len(again.results) == len(run.results)  # every row reused by its digest
    assert graded.stat().st_mtime_ns == mtime

    db = f"sqlite:///{root / 'gradebook.db'}"
    with Gradebook(db, "tiny101") as gb:
        grade = gb.find_grade("test_softsign", "01_tiny", ASSIGNMENT, "alice")
        grade.manual_score = 1.0
        gb.db.commit()
    forced = grade_course(course_dir=root, options=grade_options(students=("alice",)))
    assert forced.resumed == 0 and {r.key for r in forced.results} == {"week1/00_tiny", "week1/01_tiny"}
    with Gradebook(db, "tiny101") as gb:
        grade = gb.find_grade("test_softsign", "01_tiny", ASSIGNMENT, "alice")
        assert (grade.manual_score, grade.auto_score) == (1.0, 0.0)
        assert gb.find_submission_notebook("01_tiny", ASSIGNMENT, "alice").score == 7.0  # 6 + the manual point


def test_cli_export_and_status_with_course(course_run, capsys) -> None:
    import csv

    from autograder.cli import main

    _, root, *_ = course_run
    assert main(["export", "--course", str(root)]) == 0
    rows = list(csv.DictReader((root / ".autograder" / "submissions.csv").open()))
    softsign = [r for r in rows if r["student"] == "alice" and r["assignment"] == "week1/01_tiny" and r["exercise"] == "softsign"]
    # 01_tiny's exercises are not registered: nbgrader's score, said so; 00_tiny's are re-verified.
    assert len(softsign) == 1 and softsign[0]["outcome"] == "not verified" and softsign[0]["max_score"] == "3"
    assert {r["outcome"] for r in rows if r["student"] == "alice" and r["assignment"] == "week1/00_tiny"} == {"verified"}
    assert any(r["student"] == "bob" and "symbolic link" in r["reason"] for r in rows)
    grades = list(csv.DictReader((root / ".autograder" / "grades.csv").open()))
    assert {r["student"]: r["week1/00_tiny"] for r in grades}["alice"] == "9"
    assert main(["feedback", "--course", str(root)]) == 0
    page = (root / ".autograder" / "feedback" / "alice.html").read_text()
    assert "week1/01_tiny" in page and "6 / 9" in page
    assert main(["status", "--course", str(root)]) == 0
    out = capsys.readouterr().out
    assert "week1/01_tiny" in out and "pending" not in out  # everything submitted has a row


def test_config_db_url_and_relative_root_are_honoured(tmp_path: Path) -> None:
    from autograder.nbcourse import load_course

    root = make_course(tmp_path / "c", notebooks=("00_tiny",))
    write_config(root, course_id="x", exchange=tmp_path / "ex", extra=f'c.CourseDirectory.db_url = "sqlite:///{tmp_path}/elsewhere.db"\n')
    course = load_course(root)
    assert (course.db_url, course.course_id, course.exchange_root) == (f"sqlite:///{tmp_path}/elsewhere.db", "x", tmp_path / "ex")
    assert course.run_dir == root / ".autograder"
    assert load_course(root, db_url="sqlite:////x.db").db_url == "sqlite:////x.db"
    (root / "nbgrader_config.py").unlink()
    with pytest.raises(ValueError, match="not an nbgrader course"):
        load_course(root)


def test_student_ids_and_timestamps() -> None:
    from autograder.nbcourse import is_student_id

    assert all(is_student_id(s) for s in ("alice", "a.b@uni.edu", "s_01-x", "A1"))
    assert not any(is_student_id(s) for s in ("bad+id", "*", "..", ".x", "-rf", "a/b", "é", "x" * 65, ""))


def test_timestamp_file_read_safely(tmp_path: Path) -> None:
    from autograder.nbcourse import read_timestamp

    assert read_timestamp(tmp_path) == (None, "")
    (tmp_path / "timestamp.txt").write_text(STAMP)
    stamp, why = read_timestamp(tmp_path)
    assert why == "" and stamp == datetime(2026, 11, 20, 10, 0)
    (tmp_path / "timestamp.txt").unlink()
    os.symlink("/etc/hostname", tmp_path / "timestamp.txt")
    assert read_timestamp(tmp_path)[0] is None and "symbolic link" in read_timestamp(tmp_path)[1]
    (tmp_path / "timestamp.txt").unlink()
    (tmp_path / "timestamp.txt").write_text("not a time")
    assert read_timestamp(tmp_path) == (None, "timestamp.txt: not a time nbgrader can read")


def test_a_timestamp_that_is_there_but_no_time_refuses_the_submission(tmp_path: Path) -> None:
    """nbgrader's get_existing_timestamp strips the text (padding is read), treats an empty
    file as no timestamp, and fails autograde on anything else it cannot parse."""
    from autograder.nbcourse import course_jobs, load_course, read_timestamp, source_manifest

    (tmp_path / "timestamp.txt").write_text("\n  " + STAMP + " " * 5000 + "\n")
    assert read_timestamp(tmp_path) == (datetime(2026, 11, 20, 10, 0), "")
    (tmp_path / "timestamp.txt").write_text(" \n")
    assert read_timestamp(tmp_path) == (None, "")
    (tmp_path / "timestamp.txt").write_text("9" * 2000)
    assert read_timestamp(tmp_path)[0] is None and "over 1024 characters" in read_timestamp(tmp_path)[1]

    root = make_course(tmp_path / "course", notebooks=("00_tiny",))
    for name in ("alice", "bob", "carol"):
        folder = root / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(tinycourse.solution_notebook(), str(folder / "00_tiny.ipynb"))
    (root / "submitted" / "alice" / ASSIGNMENT / "timestamp.txt").write_text("")
    (root / "submitted" / "bob" / ASSIGNMENT / "timestamp.txt").mkdir()
    (root / "submitted" / "carol" / ASSIGNMENT / "timestamp.txt").write_text("yesterday-ish")
    course = load_course(root)
    jobs, stamps = course_jobs(course, source_manifest(course))
    by = {j.student: j for j in jobs}
    assert by["alice"].status == "pending" and stamps == {}
    assert by["bob"].status is Status.UNREADABLE and by["carol"].status is Status.UNREADABLE
    assert by["bob"].notes[0] == (f"submitted/bob/{ASSIGNMENT}/timestamp.txt: not a regular file (folder): not graded"
                                  " (replace it by the time of the submission, or delete it)")  # fmt: skip
    assert by["carol"].notes[0].startswith(f"submitted/carol/{ASSIGNMENT}/timestamp.txt: not a time nbgrader can read")


def test_assignment_files_are_the_sources_but_what_nbgrader_leaves_alone(tmp_path: Path) -> None:
    """``nbgrader autograde`` copies source/<assignment>/'s files but notebooks, its ignore
    list and ``Autograde.exclude_overwriting``; a link in source/ is never followed."""
    from autograder.nbcourse import assignment_files, load_course

    extra = f'c.Autograde.exclude_overwriting = {{"{ASSIGNMENT}": ["helpers.py", "data/./mine.csv"]}}\n'
    root = make_course(tmp_path / "course", notebooks=("00_tiny",), extra=extra)
    folder = root / "source" / ASSIGNMENT
    for rel in ("expected.json", "helpers.py", "data/table.csv", "data/mine.csv", "__pycache__/x.pyc", "y.pyc", "notes.ipynb"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text("x")
    os.symlink("/etc/hostname", folder / "host.txt")
    got = {rel.as_posix(): path for path, rel in assignment_files(load_course(root), ASSIGNMENT)}
    assert got == {"expected.json": folder / "expected.json", "data/table.csv": folder / "data" / "table.csv"}


def test_stale_release_is_regenerated(tmp_path: Path) -> None:
    from autograder.nbcourse import ensure_released, load_course, source_manifest

    root = make_course(tmp_path / "c", notebooks=("00_tiny",))
    course = load_course(root)
    manifest = source_manifest(course)
    assert ensure_released(course, manifest) == [ASSIGNMENT]
    assert ensure_released(course, manifest) == []  # fresh: nothing to do
    source = root / "source" / ASSIGNMENT / "00_tiny.ipynb"
    nb = nbformat.read(str(source), as_version=4)
    nb.cells[0].source = "# Tiny assignment, revised"
    nbformat.write(nb, str(source))
    release = root / "release" / ASSIGNMENT / "00_tiny.ipynb"
    os.utime(release, (release.stat().st_atime, source.stat().st_mtime - 10))
    assert ensure_released(course, manifest) == [ASSIGNMENT]
    assert nbformat.read(str(release), as_version=4).cells[0].source == "# Tiny assignment, revised"
    shutil.rmtree(root / "release")
    assert ensure_released(course, manifest) == [ASSIGNMENT]


def test_override_and_lms_export_with_course(course_run) -> None:
    """``override --course`` writes the course's gradebook (an assignment holding several
    notebooks: ``--notebook``) and ``export --course --lms moodle`` exports that total.
    Last in this file: it changes the module's graded course."""
    import csv

    from autograder.cli import main

    _, root, *_ = course_run
    # alice's 01_tiny has a wrong softsign: 9 - 3 = 6 (see the fixture). By hand: the
    # visible test stays at 0 (set explicitly: another test of this module may have given
    # it a manual point) and the hidden test gets its 2 points back: 8.
    for grade_id, score in (("test_softsign", "0"), ("test_softsign_hidden", "2")):
        args = ["override", "alice", ASSIGNMENT, grade_id, score, "--notebook", "01_tiny", "--course", str(root)]
        assert main(args) == 0
    assert main(["override", "alice", ASSIGNMENT, "test_softsign_hidden", "2", "--course", str(root)]) == 2  # no notebook 'week1'
    out = root / ".autograder" / "moodle.csv"
    assert main(["export", "--course", str(root), "--lms", "moodle", "--id-field", "Username", "--lms-out", str(out)]) == 0
    rows = {r["Username"]: r for r in csv.DictReader(out.open(encoding="utf-8-sig"))}
    assert rows["alice"]["week1/01_tiny"] == "8" and rows["alice"]["week1/00_tiny"] == "9"
