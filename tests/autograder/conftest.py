"""Fixtures of the autograder tests: the tiny ``00_tiny`` course and its release."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

import tinycourse  # noqa: E402
from tinycourse import grade, make_class  # noqa: E402


@pytest.fixture(scope="session")
def tiny_solutions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("solutions")
    tinycourse.write_solutions(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_course(tiny_solutions: Path, tmp_path_factory: pytest.TempPathFactory):
    """(sources, releases) of 00_tiny as nbgrader generates them."""
    from autograder.course import CourseDir, read_notebook

    course = CourseDir.at(tmp_path_factory.mktemp("course"))
    course.install({tinycourse.STEM: tiny_solutions / f"{tinycourse.STEM}.ipynb"})
    return (
        {tinycourse.STEM: read_notebook(course.source(tinycourse.STEM))},
        {tinycourse.STEM: read_notebook(course.release(tinycourse.STEM))},
    )


@pytest.fixture(scope="session")
def graded_class(tiny_course, tiny_solutions: Path, tmp_path_factory: pytest.TempPathFactory):
    """The whole tiny sample class (every recipe), graded once with 2 workers."""
    root = tmp_path_factory.mktemp("graded")
    submissions = make_class(tiny_course, root / "class", __import__("autograder.sample").sample.RECIPES)
    run = grade(submissions, root / "run", tiny_solutions)
    return run, submissions
