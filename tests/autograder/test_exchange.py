"""The nbgrader exchange round trip with ``grade --course`` in the middle, all through the
real command lines: the instructor generates and releases ``week1`` (holding the tiny
notebook ``00_tiny``); alice (every answer right) and bob (softsign wrong, answer_lr
left as the stub) fetch it and submit, each in their own home; the instructor collects,
grades with ``python -m autograder grade --course``, then stock ``generate_feedback``
and ``release_feedback``; each student's ``fetch_feedback`` finds their own page.

Expected scores by hand from the tiny course's points (per exercise: visible test 1,
hidden tests 2): alice 9/9; bob 3/9 (square only). The oracle for the totals is stock
``nbgrader autograde`` on a copy of the same collected course.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import tinycourse

from .test_course_grade import ASSIGNMENT, WRONG_SOFTSIGN, answer, make_course

pytestmark = pytest.mark.slow

COURSE_ID = "tiny101"
VENV_BIN = str(Path(sys.executable).parent)
REPO = Path(__file__).resolve().parents[2]
EXPECTED = {"alice": 9.0, "bob": 3.0}


def _env(home: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NBGRADER"))}
    env["PATH"] = os.pathsep.join([VENV_BIN, env.get("PATH", "")])  # nbgrader runs alembic from PATH
    if home is not None:
        env["HOME"] = str(home)  # the student's own nbgrader cache (~/.local/share/jupyter)
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def nbgrader(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return _run([str(Path(VENV_BIN) / "nbgrader"), *args], cwd, env or _env())


def _student_args(exchange: Path, student: str) -> list[str]:
    return [f"--course={COURSE_ID}", f"--Exchange.root={exchange}", f"--student={student}"]


def _scores_in_gradebook(root: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gb:
        return {s.student.id: s.score for s in gb.find_assignment(ASSIGNMENT).submissions}


def _formgrader_view(root: Path) -> dict[str, tuple[float, bool]]:
    """{student: (score, needs manual grading)} as formgrader's API reports them."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    return {s["student"]: (s["score"], s["needs_manual_grade"]) for s in api.get_submissions(ASSIGNMENT)}


def test_exchange_round_trip(tmp_path: Path) -> None:
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    os.chmod(exchange, 0o777)
    root = make_course(tmp_path / "course", course_id=COURSE_ID, exchange=exchange, notebooks=(tinycourse.STEM,))
    nbgrader(root, "generate_assignment", ASSIGNMENT)
    nbgrader(root, "release_assignment", ASSIGNMENT)

    answers = {"alice": {}, "bob": {"softsign": WRONG_SOFTSIGN, "answer_lr": "# YOUR CODE HERE\nraise NotImplementedError()"}}
    homes = {}
    for student, overrides in answers.items():
        home = homes[student] = tmp_path / "home" / student
        home.mkdir(parents=True)
        env = _env(home)
        nbgrader(home, "fetch_assignment", ASSIGNMENT, *_student_args(exchange, student), env=env)
        fetched = home / ASSIGNMENT / f"{tinycourse.STEM}.ipynb"
        nbformat.write(answer(nbformat.read(str(fetched), as_version=4), **overrides), str(fetched))
        nbgrader(home, "submit", ASSIGNMENT, *_student_args(exchange, student), env=env)

    nbgrader(root, "collect", ASSIGNMENT)
    for student in answers:
        assert (root / "submitted" / student / ASSIGNMENT / "timestamp.txt").is_file()
    stock = tmp_path / "stock"
    shutil.copytree(root, stock)  # the oracle grades the same collected course

    fixtures = str(tinycourse.FIXTURES)
    support = [a for path in tinycourse.SUPPORT for a in ("--support", str(path))]
    _run([sys.executable, "-m", "autograder", "grade", "--course", str(root), *support, "--workers", "2",
          "--cell-timeout", "10", "--notebook-budget", "30"], REPO, _env())  # fmt: skip
    ours = _scores_in_gradebook(root)
    assert ours == EXPECTED
    for student in answers:  # nbgrader's autograded/ layout, the submission time beside it
        graded = root / "autograded" / student / ASSIGNMENT
        assert (graded / f"{tinycourse.STEM}.ipynb").is_file()
        assert (graded / "timestamp.txt").read_text() == (root / "submitted" / student / ASSIGNMENT / "timestamp.txt").read_text()

    # formgrader's backend (NbGraderAPI) sees the graded submissions, nothing left to grade by hand
    formgrader = _formgrader_view(root)
    assert {s: v[0] for s, v in formgrader.items()} == EXPECTED and not any(v[1] for v in formgrader.values())

    nbgrader(stock, "autograde", ASSIGNMENT, env=_env(PYTHONPATH=fixtures))
    assert _scores_in_gradebook(stock) == ours  # stock nbgrader agrees on these notebooks

    nbgrader(root, "generate_feedback", ASSIGNMENT)
    nbgrader(root, "release_feedback", ASSIGNMENT)
    for student, expected in EXPECTED.items():
        home = homes[student]
        nbgrader(home, "fetch_feedback", ASSIGNMENT, *_student_args(exchange, student), env=_env(home))
        pages = list((home / ASSIGNMENT / "feedback").glob(f"*/{tinycourse.STEM}.html"))
        assert len(pages) == 1, pages
        html = pages[0].read_text()
        total = re.search(r"Score: ([\d.]+) / ([\d.]+)", html)
        assert total is not None and (float(total[1]), float(total[2])) == (expected, 9.0)
        assert "BEGIN HIDDEN TESTS" not in html

    nbgrader(root, "export")
    with (root / "grades.csv").open() as fh:
        exported = {row["student_id"]: (float(row["score"]), row["timestamp"]) for row in csv.DictReader(fh)}
    assert {s: v[0] for s, v in exported.items()} == EXPECTED
    assert all(v[1] for v in exported.values())  # the submission time reached nbgrader's export
