"""Intake: folders and LMS zips, matched to assignments by the manifest."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nbformat
import pytest

import tinycourse
from autograder.intake import Manifest, collect

STEM = tinycourse.STEM


@pytest.fixture()
def manifest(tiny_course) -> Manifest:
    _, releases = tiny_course
    return Manifest.from_notebooks({**releases, "01_other": nbformat.v4.new_notebook()})


def _write(path: Path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb) if not isinstance(nb, str) else nb)


def _jobs(jobs):
    return {(j.student, j.assignment): j for j in jobs}


def test_folder_per_student_with_renamed_missing_and_corrupt(tiny_course, manifest, tmp_path: Path) -> None:
    _, releases = tiny_course
    release = releases[STEM]
    _write(tmp_path / "subs" / "ann" / f"{STEM}.ipynb", release)
    _write(tmp_path / "subs" / "bob" / "my homework FINAL.ipynb", release)  # matched by its cells
    _write(tmp_path / "subs" / "cat" / f"{STEM} (1).ipynb", release)  # matched by its name
    _write(tmp_path / "subs" / "dan" / "notes.txt", "nothing here")
    _write(tmp_path / "subs" / "eve" / f"{STEM}.ipynb", '{"cells": [')
    jobs = _jobs(collect(tmp_path / "subs", manifest, unpack_dir=tmp_path / "unpacked"))
    assert jobs[("ann", STEM)].status == "pending"
    assert jobs[("bob", STEM)].path.name == "my homework FINAL.ipynb"
    assert any("by its cells" in n for n in jobs[("bob", STEM)].notes)
    assert jobs[("cat", STEM)].path is not None
    assert jobs[("dan", STEM)].status == "missing"
    assert jobs[("ann", "01_other")].status == "missing"
    assert jobs[("eve", STEM)].path is not None  # matched by name; unreadable is decided when grading


def test_lms_flat_zip_with_path_traversal_entry(tiny_course, manifest, tmp_path: Path) -> None:
    _, releases = tiny_course
    archive = tmp_path / "bulk.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"ann_1234_5678_{STEM}.ipynb", nbformat.writes(releases[STEM]))
        zf.writestr(f"bob_99_{STEM}-2.ipynb", nbformat.writes(releases[STEM]))
        zf.writestr("../../escape.ipynb", json.dumps({"cells": []}))
    jobs = _jobs(collect(archive, manifest, unpack_dir=tmp_path / "unpacked"))
    assert jobs[("ann", STEM)].path is not None and jobs[("bob", STEM)].path is not None
    assert not (tmp_path.parent / "escape.ipynb").exists()


def test_two_candidates_prefer_the_exact_name(tiny_course, manifest, tmp_path: Path) -> None:
    _, releases = tiny_course
    _write(tmp_path / "subs" / "ann" / f"{STEM}.ipynb", releases[STEM])
    _write(tmp_path / "subs" / "ann" / f"Copy of {STEM}.ipynb", releases[STEM])
    job = _jobs(collect(tmp_path / "subs", manifest, unpack_dir=tmp_path / "u"))[("ann", STEM)]
    assert job.path.name == f"{STEM}.ipynb"
    assert any("also found" in n for n in job.notes)
