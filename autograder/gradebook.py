"""Gradebook step: merge one graded submission into nbgrader's gradebook and our ledger.

nbgrader's gradebook (SQLite by default, any URL nbgrader accepts) holds the scores;
merging uses nbgrader's own ``SaveAutoGrades``, which writes ``auto_score`` and never
touches ``manual_score``, so manual overrides survive re-grading. The ledger (one
JSON file per submission under ``<run>/ledger/``) holds what nbgrader has no column
for: status, reason, flags, notes and the digest that lets a re-run skip what is
already graded.

Every merge holds ``GradebookLock`` (an flock on a file beside the ledger, plus a
thread lock), so two graders running at once cannot lose each other's updates.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import nbformat

from autograder.course import CourseDir
from autograder.pipeline import ExerciseScore, SubmissionResult

__all__ = ["GradebookLock", "Ledger", "merge_result"]

_THREAD_LOCK = threading.Lock()


class GradebookLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ".gradebook.lock"

    def __enter__(self) -> GradebookLock:
        _THREAD_LOCK.acquire()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        _THREAD_LOCK.release()


class Ledger:
    """Status records, one JSON file per (student, assignment)."""

    def __init__(self, run_dir: Path) -> None:
        self.root = Path(run_dir) / "ledger"

    def path(self, student: str, assignment: str) -> Path:
        return self.root / student / f"{assignment}.json"

    def read(self, student: str, assignment: str) -> SubmissionResult | None:
        path = self.path(student, assignment)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except ValueError:
            return None
        data["exercises"] = [ExerciseScore(**e) for e in data.get("exercises", [])]
        return SubmissionResult(**data)

    def write(self, result: SubmissionResult) -> None:
        data = asdict(result)
        data.pop("notebook", None)
        data["exercises"] = [asdict(e) for e in result.exercises]
        path = self.path(result.student, result.assignment)
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
        return out


def merge_result(result: SubmissionResult, *, course: CourseDir, run_dir: Path) -> None:
    """Write one result into the gradebook (when something was graded) and the ledger."""
    with GradebookLock(run_dir):
        if result.notebook is not None and result.score is not None:
            _save_autogrades(result, course)
        Ledger(run_dir).write(result)


def _save_autogrades(result: SubmissionResult, course: CourseDir) -> None:
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    nb: Any = result.notebook
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy autoflush chatter
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_student(result.student)
        gb.update_or_create_submission(result.assignment, result.student)
    resources = {
        "nbgrader": {
            "notebook": result.assignment,
            "assignment": result.assignment,
            "student": result.student,
            "db_url": course.db_url,
        }
    }
    SaveAutoGrades().preprocess(nb, resources)
    target = course.autograded(result.student, result.assignment)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(target))
