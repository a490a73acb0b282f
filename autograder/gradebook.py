"""Gradebook step: merge one graded submission into nbgrader's gradebook and our ledger.

nbgrader's gradebook (SQLite by default, any URL nbgrader accepts) holds the scores;
merging uses nbgrader's own ``SaveAutoGrades``, which writes ``auto_score`` and never
touches ``manual_score``, so manual overrides survive re-grading. The ledger (one
JSON file per submission under ``<run>/ledger/``) holds what nbgrader has no column
for: the typed status, each exercise's outcome and evidence, the submission's evidence,
notes, ``retry`` and the digest that lets a re-run skip what is already graded.

Ledger record (JSON, ``sort_keys``)::

    {"student", "assignment", "status": Status value, "reason", "score": float|null,
     "max_score", "retry": bool, "evidence": [{"kind", "where", "detail"}], "notes": [...],
     "digest", "seconds", "execute_seconds", "verify_seconds",
     "exercises": [{"name", "score", "max_score", "nbgrader_score", "verified",
                    "note", "outcome": Outcome value|null, "evidence": [...], "review"}]}

Records written before outcomes existed (no ``outcome``, a ``flags`` list) still read:
``outcome`` is None (shown as "—"), nothing is inferred from the old prose.

Every merge holds ``GradebookLock`` (a thread lock, an flock on a file beside the
ledger and, for a PostgreSQL gradebook that graders on several machines may share, a
lock in the database: ``autograder.dblock``), so two graders running at once cannot
lose each other's updates. Student and submission rows are created with one retry, as
a writer outside these locks (formgrader, stock nbgrader) can insert them in between.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from autograder.course import CourseDir
from autograder.dblock import database_lock
from autograder.pipeline import ExerciseScore, SubmissionResult
from autograder.results import Evidence, Outcome, Status

__all__ = ["GradebookLock", "Ledger", "ensure_submission", "existing_run_dir", "merge_result"]

_THREAD_LOCK = threading.Lock()


class GradebookLock:
    """The writer lock of one run folder's gradebook: this process's threads, then this
    machine's graders (flock), then, given a PostgreSQL ``db_url``, every grader of that
    database. Always taken in that order, so two graders never wait on each other in a cycle."""

    def __init__(self, run_dir: Path, *, db_url: str | None = None) -> None:
        self.path = Path(run_dir) / ".gradebook.lock"
        self.db_url = db_url

    def __enter__(self) -> GradebookLock:
        _THREAD_LOCK.acquire()
        self._stack = ExitStack()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._stack.callback(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._stack.callback(fcntl.flock, fd, fcntl.LOCK_UN)
            if self.db_url is not None:
                self._stack.enter_context(database_lock(self.db_url))
        except BaseException:
            self._stack.close()
            _THREAD_LOCK.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._stack.close()
        finally:
            _THREAD_LOCK.release()


def existing_run_dir(run_dir: Path) -> Path:
    """``run_dir`` resolved, or a ValueError naming it when it is not a folder: exports and
    feedback read a run that ``grade`` made, and must not invent an empty one."""
    resolved = Path(run_dir).resolve()
    if not resolved.is_dir():
        raise ValueError(f"{run_dir}: no such run folder (grade a class into it first)")
    return resolved


class Ledger:
    """Status records, one JSON file per (student, assignment): ``<student>/<assignment>.json``,
    or ``<student>/<assignment>/<notebook>.json`` for a notebook not named after its
    nbgrader assignment (``grade --course``)."""

    def __init__(self, run_dir: Path) -> None:
        self.root = Path(run_dir) / "ledger"

    def path(self, student: str, assignment: str, notebook_name: str = "") -> Path:
        if notebook_name in ("", assignment):
            return self.root / student / f"{assignment}.json"
        return self.root / student / assignment / f"{notebook_name}.json"

    def read(self, student: str, assignment: str, notebook_name: str = "") -> SubmissionResult | None:
        path = self.path(student, assignment, notebook_name)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except ValueError:
            return None
        try:
            return _record(data)
        except (KeyError, TypeError, ValueError):
            return None  # a damaged record: graded again, never half-read

    def write(self, result: SubmissionResult) -> None:
        data = asdict(result)
        data.pop("notebook", None)
        data["status"] = Status(result.status).value
        for e in data["exercises"]:
            e["outcome"] = e["outcome"].value if e["outcome"] is not None else None
        # Evidence is stored as {kind, where, detail}: its cell index served the scoring only.
        for items in (data["evidence"], *(e["evidence"] for e in data["exercises"])):
            for item in items:
                item.pop("cell", None)
        path = self.path(result.student, result.assignment, result.notebook_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)  # atomic: an interrupted run never leaves half a record

    def all(self) -> list[SubmissionResult]:
        out = []
        for path in sorted(self.root.glob("*/*.json")):
            record = self.read(path.parent.name, path.stem)
            if record is not None:
                out.append(record)
        for path in sorted(self.root.glob("*/*/*.json")):
            record = self.read(path.parent.parent.name, path.parent.name, path.stem)
            if record is not None:
                out.append(record)
        return out


def _evidence(items: list[dict]) -> list[Evidence]:
    return [Evidence(str(e["kind"]), str(e["where"]), str(e.get("detail", ""))) for e in items]


def _record(data: dict) -> SubmissionResult:
    """A ledger record -> SubmissionResult; old records (``flags``, no outcomes) included."""
    data.pop("flags", None)  # prose from before evidence was typed: not read back
    data["status"] = Status(data["status"])
    data["evidence"] = _evidence(data.get("evidence", []))
    exercises = []
    for e in data.get("exercises", []):
        outcome = e.get("outcome")
        e["outcome"] = Outcome(outcome) if outcome is not None else None
        e["evidence"] = tuple(_evidence(e.get("evidence", [])))
        exercises.append(ExerciseScore(**e))
    data["exercises"] = exercises
    return SubmissionResult(**data)


def merge_result(
    result: SubmissionResult,
    *,
    course: CourseDir,
    run_dir: Path,
    course_id: str = "default_course",
    timestamp: datetime | None = None,
) -> None:
    """Write one result into the gradebook (when something was graded) and the ledger.
    ``course_id`` and ``timestamp`` (the submission's, from its ``timestamp.txt``) are what
    ``nbgrader autograde`` records for an nbgrader course (``grade --course``)."""
    with GradebookLock(run_dir, db_url=course.db_url):
        if result.notebook is not None and result.score is not None:
            _save_autogrades(result, course, course_id=course_id, timestamp=timestamp)
        Ledger(run_dir).write(result)


def _save_autogrades(
    result: SubmissionResult, course: CourseDir, *, course_id: str, timestamp: datetime | None
) -> None:
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    nb: Any = result.notebook
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy autoflush chatter
    with Gradebook(course.db_url, course_id) as gb:
        ensure_submission(
            gb,
            student=result.student,
            assignment=result.assignment,
            display=result.display,
            timestamp=timestamp,
        )
    resources = {
        "nbgrader": {
            "notebook": result.notebook_id,
            "assignment": result.assignment,
            "student": result.student,
            "db_url": course.db_url,
        }
    }
    SaveAutoGrades().preprocess(nb, resources)
    target = course.autograded(result.student, result.assignment, result.notebook_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(target))


def ensure_submission(
    gb: Any, *, student: str, assignment: str, display: str | None, timestamp: datetime | None = None
) -> None:
    """The student's row and their submission of ``assignment`` (at ``timestamp``, the
    submission's own, when known) in the nbgrader gradebook ``gb``, created when missing.
    An nbgrader course's roster names are the instructor's: only an LMS name (``display``)
    replaces them.

    nbgrader's ``update_or_create_*`` look, then insert: another writer can insert the
    same row in between, and the insert fails on the unique key (nbgrader rolls back and
    raises InvalidEntry). The row then exists, so looking once more finds and updates it."""
    names = {"last_name": display} if display else {}
    when = {"timestamp": timestamp} if timestamp is not None else {}
    _retry_once(lambda: gb.update_or_create_student(student, **names))
    _retry_once(lambda: gb.update_or_create_submission(assignment, student, **when))


def _retry_once(call: Callable[[], object]) -> None:
    from nbgrader.api import InvalidEntry

    try:
        call()
    except InvalidEntry:
        call()  # the row another writer inserted is found this time
