"""Fixtures of the autograder tests: the tiny ``00_tiny`` course and its release."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

import tinycourse  # noqa: E402


@pytest.fixture(scope="session")
def tiny_solutions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("solutions")
    tinycourse.write_solutions(directory)
    return directory
