"""A PostgreSQL gradebook (issue #12): the tiny class graded into a real server exports
what the SQLite run exports, two graders sharing one database (as two machines would:
separate run folders, so no local flock orders them) lose nothing, and a manual score
set there survives a regrade.

The server is the fixture's own (``pg_server``): Debian's binaries, a private socket.
The expected scores are the tiny course's points counted by hand: three exercises of
1 visible + 2 hidden points; ``perfect`` earns 9, ``partial`` (square and answer_lr
right, softsign left blank) 6, ``blank`` 0.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tinycourse
from autograder.api import GradeOptions, Limits, export_grades, grade_class, override_grade
from autograder.course import nbgrader_env
from autograder.dblock import database_lock
from autograder.gradebook import ensure_submission
from tests.autograder.pg_server import pg_server, pg_url  # noqa: F401  (fixtures)
from tinycourse import FAST_LIMITS, STEM, SUPPORT, make_class

pytestmark = pytest.mark.postgres
HAND_TOTALS = {"perfect": 9.0, "partial": 6.0, "blank": 0.0}
GRADED_CELLS = 6  # test_<exercise> and test_<exercise>_hidden for three exercises


def _grade(submissions: Path, run_dir: Path, solutions: Path, db_url: str | None, **extra):
    options = GradeOptions(workers=2, limits=Limits(**FAST_LIMITS), support=SUPPORT, db_url=db_url, **extra)
    return grade_class(submissions=submissions, run_dir=run_dir, solutions_dir=solutions, options=options)


def _rows(url: str, sql: str) -> list[tuple]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.mark.slow
def test_postgres_gradebook_exports_what_sqlite_does(graded_class, tiny_solutions, pg_url, tmp_path, monkeypatch) -> None:
    sqlite_run, submissions = graded_class  # the whole sample class, graded into SQLite
    pg_run = tmp_path / "run"
    pg_run.mkdir()
    # The same secret seed: the hidden cases (and so every note) are the SQLite run's.
    shutil.copyfile(sqlite_run.run_dir / ".secret-seed", pg_run / ".secret-seed")
    run = _grade(submissions, pg_run, tiny_solutions, pg_url)
    assert not (pg_run / "course" / "gradebook.db").exists()  # nothing went to SQLite
    graded = {r.student for r in run.results if r.score is not None}
    assert {s for (s,) in _rows(pg_url, "SELECT id FROM student")} == graded

    sqlite_export = export_grades(run_dir=sqlite_run.run_dir)
    monkeypatch.setenv("AUTOGRADER_DB_URL", pg_url)  # how `autograder export` finds a non-default gradebook
    pg_export = export_grades(run_dir=pg_run)
    assert pg_export.grades_csv.read_bytes() == sqlite_export.grades_csv.read_bytes()
    assert pg_export.submissions_csv.read_bytes() == sqlite_export.submissions_csv.read_bytes()
    assert b"\nperfect,perfect,9," in pg_export.grades_csv.read_bytes()  # and it is the hand-counted score


@pytest.mark.slow
def test_two_graders_on_one_postgres_gradebook_lose_nothing(tiny_course, tiny_solutions, pg_url, tmp_path) -> None:
    """Two grader processes, each with its own run folder, start together on an empty
    database: both install the course and merge; ``both`` is graded by the two at once."""
    made = make_class(tiny_course, tmp_path / "made", tuple(HAND_TOTALS))
    halves = {"a": ("perfect", "partial"), "b": ("blank",)}
    for half, students in halves.items():
        for student in (*students, "both"):
            shutil.copytree(made / ("partial" if student == "both" else student), tmp_path / half / student)
    base = [sys.executable, "-m", "autograder", "grade", "--solutions", str(tiny_solutions), "--db", pg_url,
            *[a for p in SUPPORT for a in ("--support", str(p))], "--workers", "1"]  # fmt: skip
    procs = [
        subprocess.Popen([*base, "--run-dir", str(tmp_path / f"run-{h}"), str(tmp_path / h)], env=nbgrader_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        for h in halves
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)

    from nbgrader.api import Gradebook

    expected = {**HAND_TOTALS, "both": HAND_TOTALS["partial"]}
    with Gradebook(pg_url) as gb:
        assert {s: gb.find_submission_notebook(STEM, STEM, s).score for s in expected} == expected
    counts = _rows(pg_url, "SELECT (SELECT count(*) FROM student), (SELECT count(*) FROM submitted_assignment),"
                           " (SELECT count(*) FROM submitted_notebook), (SELECT count(*) FROM grade),"
                           " (SELECT count(*) FROM assignment), (SELECT count(*) FROM grade_cells)")  # fmt: skip
    assert counts == [(4, 4, 4, 4 * GRADED_CELLS, 1, GRADED_CELLS)]  # no duplicate row anywhere


@pytest.mark.slow
def test_manual_score_in_postgres_survives_a_regrade(tiny_course, tiny_solutions, pg_url, tmp_path, monkeypatch) -> None:
    submissions = make_class(tiny_course, tmp_path / "class", ("partial",))
    run_dir = tmp_path / "run"
    _grade(submissions, run_dir, tiny_solutions, pg_url)
    # partial left softsign blank: its visible test earned 0 of 1; the instructor gives 1.
    result = override_grade(run_dir=run_dir, student="partial", assignment=STEM, grade_id="test_softsign", score=1, db_url=pg_url)
    assert (result.manual_score, result.auto_score) == (1, 0)
    again = _grade(submissions, run_dir, tiny_solutions, pg_url, force=True)
    assert again.resumed == 0 and again.results[0].score == 6.0  # graded again, auto score unchanged
    monkeypatch.setenv("AUTOGRADER_DB_URL", pg_url)
    grades = export_grades(run_dir=run_dir).grades_csv.read_text().splitlines()
    assert grades[1].startswith("partial,partial,7,7,")  # 6 earned + the manual point


def test_a_concurrent_insert_of_the_same_student_is_absorbed(pg_url, monkeypatch) -> None:
    """nbgrader's update_or_create_student looks, then inserts: a row another writer
    inserts in between makes the insert fail. Shown first without the retry, then with it."""
    from nbgrader.api import Gradebook, InvalidEntry

    with Gradebook(pg_url) as setup:
        setup.add_assignment(STEM)
    original_student, original_submission = Gradebook.add_student, Gradebook.add_submission

    def racing(original, insert_other):
        def add(self, *args, **kwargs):
            with Gradebook(pg_url) as other:  # the other grader wins the race
                insert_other(other)
            return original(self, *args, **kwargs)

        return add

    # The other writer calls nbgrader's own insert (the class attribute is the racing one).
    monkeypatch.setattr(Gradebook, "add_student", racing(original_student, lambda gb: original_student(gb, "ann")))
    with Gradebook(pg_url) as gb, pytest.raises(InvalidEntry):
        gb.update_or_create_student("ann", last_name="Ann A.")  # nbgrader alone: the race is a crash
    with Gradebook(pg_url) as gb:
        gb.remove_student("ann")

    monkeypatch.setattr(Gradebook, "add_submission", racing(original_submission, lambda gb: original_submission(gb, STEM, "ann")))
    with Gradebook(pg_url) as gb:
        ensure_submission(gb, student="ann", assignment=STEM, display="Ann A.")
    assert _rows(pg_url, "SELECT id, last_name FROM student") == [("ann", "Ann A.")]
    assert _rows(pg_url, "SELECT count(*) FROM submitted_assignment") == [(1,)]


@pytest.mark.slow
def test_a_grader_waits_for_the_database_lock_before_installing(tiny_solutions, pg_url, tmp_path) -> None:
    """The lock is the database's, so a grader with its own run folder (another machine)
    waits for it: while the test holds it, the grader creates no table."""
    (tmp_path / "class").mkdir()
    command = [sys.executable, "-m", "autograder", "grade", str(tmp_path / "class"), "--solutions", str(tiny_solutions),
               "--db", pg_url, "--run-dir", str(tmp_path / "run"), *[a for p in SUPPORT for a in ("--support", str(p))]]  # fmt: skip
    waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    with database_lock(pg_url):
        proc = subprocess.Popen(command, env=nbgrader_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while _rows(pg_url, waiting) != [(1,)]:
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the grader never asked for the lock"
            time.sleep(0.2)
        assert _rows(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out[-3000:]
    assert _rows(pg_url, "SELECT name FROM assignment") == [(STEM,)]
