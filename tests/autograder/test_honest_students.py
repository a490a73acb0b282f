"""Honest students never lose a point: the corpus in ``honest/`` (students who worked
from the released notebooks alone, each in their own style) graded with the real grader
and every protection on — full marks for every notebook, and no flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.api import GradeOptions, grade_class
from autograder.results import Status

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "honest"
STUDENTS = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
ASSIGNMENTS = sorted(p.stem for p in (REPO / "solutions").glob("*.ipynb"))


@pytest.fixture(scope="module")
def graded_corpus(tmp_path_factory: pytest.TempPathFactory):
    run_dir = tmp_path_factory.mktemp("honest-run")
    run = grade_class(
        submissions=CORPUS, run_dir=run_dir, solutions_dir=REPO / "solutions", options=GradeOptions(workers=2)
    )
    return {(r.student, r.assignment): r for r in run.results}


def test_the_corpus_has_three_students_with_every_notebook() -> None:
    assert len(STUDENTS) >= 3
    for student in STUDENTS:
        assert sorted(p.stem for p in (CORPUS / student).glob("*.ipynb")) == ASSIGNMENTS, student


def test_every_exercise_is_answered_by_every_student() -> None:
    """No stub left: each answer cell differs from the released one."""
    for assignment in ASSIGNMENTS:
        release = json.loads((REPO / "notebooks" / f"{assignment}.ipynb").read_text())
        stubs = {_grade_id(c): "".join(c["source"]) for c in release["cells"] if _is_answer(c)}
        for student in STUDENTS:
            submitted = json.loads((CORPUS / student / f"{assignment}.ipynb").read_text())
            answers = {_grade_id(c): "".join(c["source"]) for c in submitted["cells"] if _is_answer(c)}
            assert answers.keys() == stubs.keys(), (student, assignment)
            assert not [g for g in stubs if answers[g] == stubs[g]], (student, assignment)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.parametrize("student", STUDENTS)
def test_full_marks_and_no_flag(graded_corpus, student: str, assignment: str) -> None:
    result = graded_corpus[(student, assignment)]
    lost = [(e.name, str(getattr(e, "outcome", "")), e.note) for e in result.exercises if e.score < e.max_score]
    assert result.status is Status.GRADED, (result.status, result.reason, lost)
    assert not result.evidence, result.evidence
    assert result.max_score > 0 and result.score == result.max_score, lost


def _grade_id(cell: dict) -> str:
    return cell["metadata"]["nbgrader"]["grade_id"]


def _is_answer(cell: dict) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution")) and not meta.get("grade")
