"""Session fixtures shared by the notebook tests: one temporary nbgrader course.

The course is built once per test session with the autograder's own course set-up
(``autograder.course.CourseDir``: the repository's nbgrader_config.py, one real
``nbgrader generate_assignment`` per ``solutions/*.ipynb``, assignment = notebook stem).
Tests that autograde add students to the same course and gradebook.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.course import CourseDir, assignment_stems
from tests.notebooks.nbtools import SOLUTIONS, solution_stems


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test taking `stem` runs once per solution notebook, found at collection time.
    if "stem" in metafunc.fixturenames:
        stems = solution_stems()
        params = stems or [pytest.param("", marks=pytest.mark.skip(reason="no solutions/*.ipynb yet"))]
        metafunc.parametrize("stem", params, ids=stems or ["none"])


@pytest.fixture(scope="session")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary nbgrader course with every solution notebook released (stock nbgrader)."""
    course = CourseDir.at(tmp_path_factory.mktemp("course"))
    course.install(assignment_stems(SOLUTIONS))  # the course's own nbgrader_config.py, real generate_assignment
    return course.root


_EXECUTION_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == "execution_seconds" and report.when == "call":
            _EXECUTION_SECONDS[report.nodeid.rsplit("[", 1)[-1].rstrip("]")] = value


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    # The per-notebook execution times recorded by test_execute, in one table at the end.
    if _EXECUTION_SECONDS:
        terminalreporter.section("solution notebook execution time (target 20 s, limit 60 s)")
        for stem, seconds in sorted(_EXECUTION_SECONDS.items()):
            terminalreporter.write_line(f"{stem:<24} {seconds:6.1f} s")
