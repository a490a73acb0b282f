"""Intake: folders and LMS zips, matched to assignments by the manifest."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

import tinycourse
from autograder.intake import Manifest, collect
from autograder.scan import scan_files

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
    # Canvas names carry the user id: it stays in the key
    assert jobs[("ann_1234", STEM)].path is not None and jobs[("bob_99", STEM)].path is not None
    assert jobs[("ann_1234", STEM)].display == "ann"
    assert not (tmp_path.parent / "escape.ipynb").exists()


def test_two_candidates_prefer_the_exact_name(tiny_course, manifest, tmp_path: Path) -> None:
    _, releases = tiny_course
    _write(tmp_path / "subs" / "ann" / f"{STEM}.ipynb", releases[STEM])
    _write(tmp_path / "subs" / "ann" / f"Copy of {STEM}.ipynb", releases[STEM])
    job = _jobs(collect(tmp_path / "subs", manifest, unpack_dir=tmp_path / "u"))[("ann", STEM)]
    assert job.path.name == f"{STEM}.ipynb"
    assert any("also found" in n for n in job.notes)


# --- distinct students stay distinct (security round 2, item 1) ---------------------------

SAFE_KEY = re.compile(r"^[A-Za-z0-9_.@-]+$")


def _sha8(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _class(tmp_path: Path, release, folders: list[str]) -> Path:
    for folder in folders:
        _write(tmp_path / "subs" / folder / f"{STEM}.ipynb", release)
    return tmp_path / "subs"


def _graded_paths(jobs) -> dict[str, Path]:
    return {j.student: j.path for j in jobs if j.assignment == STEM}


def test_names_differing_by_punctuation_are_two_students(tiny_course, manifest, tmp_path: Path) -> None:
    _, releases = tiny_course
    subs = _class(tmp_path, releases[STEM], ["Alice Smith", "Alice Smith."])
    jobs = collect(subs, manifest, unpack_dir=tmp_path / "u")
    paths = _graded_paths(jobs)
    # "Alice Smith" is not a safe key itself: slug + hash of the name as given
    assert paths == {
        f"Alice_Smith-{_sha8('Alice Smith')}": subs / "Alice Smith" / f"{STEM}.ipynb",
        f"Alice_Smith-{_sha8('Alice Smith.')}": subs / "Alice Smith." / f"{STEM}.ipynb",
    }
    assert {j.display for j in jobs} == {"Alice Smith", "Alice Smith."}
    assert not any("also found" in n for j in jobs for n in j.notes)


def test_moodle_folders_keep_the_participant_id(tiny_course, manifest, tmp_path: Path) -> None:
    _, releases = tiny_course
    subs = _class(
        tmp_path,
        releases[STEM],
        ["Wei Wang_1001_assignsubmission_file_", "Wei Wang_0999_assignsubmission_file_"],
    )
    jobs = collect(subs, manifest, unpack_dir=tmp_path / "u")
    assert set(_graded_paths(jobs)) == {"Wei_Wang_1001", "Wei_Wang_0999"}
    assert {j.display for j in jobs} == {"Wei Wang"}
    assert all(p is not None for p in _graded_paths(jobs).values())


def test_non_ascii_names_keep_their_display_and_get_distinct_safe_keys(
    tiny_course, manifest, tmp_path: Path
) -> None:
    _, releases = tiny_course
    subs = _class(tmp_path, releases[STEM], ["王伟", "李娜", "José Núñez"])
    jobs = collect(subs, manifest, unpack_dir=tmp_path / "u")
    by_display = {j.display: j.student for j in jobs if j.assignment == STEM}
    assert by_display == {
        "王伟": f"student-{_sha8('王伟')}",
        "李娜": f"student-{_sha8('李娜')}",
        "José Núñez": f"Jose_Nunez-{_sha8('José Núñez')}",  # accents dropped by decomposition only
    }
    assert all(SAFE_KEY.match(key) for key in by_display.values())
    again = collect(subs, manifest, unpack_dir=tmp_path / "u")
    assert {j.display: j.student for j in again if j.assignment == STEM} == by_display  # stable keys


def test_names_equal_but_for_case_or_crafted_to_collide_stay_apart(
    tiny_course, manifest, tmp_path: Path
) -> None:
    _, releases = tiny_course
    crafted = f"Alice_Smith-{_sha8('Alice Smith')}"  # what "Alice Smith" would become
    subs = _class(tmp_path, releases[STEM], ["ann", "Ann", "Alice Smith", crafted])
    jobs = collect(subs, manifest, unpack_dir=tmp_path / "u")
    keys = [j.student for j in jobs if j.assignment == STEM]
    assert len(keys) == 4 and len({k.casefold() for k in keys}) == 4
    graded = {j.display: j.path for j in jobs if j.assignment == STEM}
    assert all(
        graded[name] == subs / name / f"{STEM}.ipynb" for name in ["ann", "Ann", "Alice Smith", crafted]
    )


def test_canvas_blackboard_and_gradescope_names(tiny_course, manifest, tmp_path: Path) -> None:
    _, releases = tiny_course
    text = nbformat.writes(releases[STEM])
    archive = tmp_path / "bulk.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"smithjohn_1234_5678_{STEM}.ipynb", text)
        zf.writestr(f"smithjohn_4321_5679_{STEM}.ipynb", text)  # another John Smith
        zf.writestr(f"doejane_LATE_777_5680_{STEM}.ipynb", text)
        zf.writestr(f"doejane_LATE_777_5680_numpy.py", "x = 1\n")
        zf.writestr(f"Homework 1_jdoe_attempt_2026-01-02-10-00-00_{STEM}.ipynb", text)
    jobs = {(j.student, j.assignment): j for j in collect(archive, manifest, unpack_dir=tmp_path / "u")}
    for key, display in [
        ("smithjohn_1234", "smithjohn"),
        ("smithjohn_4321", "smithjohn"),
        ("doejane_777", "doejane"),
        ("jdoe", "jdoe"),
    ]:
        assert jobs[(key, STEM)].path is not None and jobs[(key, STEM)].display == display
    assert [p.name for p in jobs[("doejane_777", STEM)].beside] == ["doejane_LATE_777_5680_numpy.py"]
    assert jobs[("doejane_777", STEM)].folder == tmp_path / "u"  # flat: the unpacked root

    folder = tmp_path / "gradescope"
    _write(folder / "submission_111" / f"{STEM}.ipynb", releases[STEM])
    _write(folder / "submission_222" / "hw.ipynb", releases[STEM])
    jobs = _jobs(collect(folder, manifest, unpack_dir=tmp_path / "u2"))
    assert jobs[("submission_111", STEM)].path is not None and jobs[("submission_222", STEM)].path is not None


def test_files_beside_the_notebook_are_listed_for_the_scan(tiny_course, manifest, tmp_path: Path) -> None:
    _, releases = tiny_course
    subs = _class(tmp_path, releases[STEM], ["ann"])
    (subs / "ann" / "numpy.py").write_text("allclose = None\n")
    _write(subs / "ann" / "lib" / "course_lib" / "__init__.py", "")
    _write(subs / "ann" / ".ipynb_checkpoints" / f"{STEM}-checkpoint.ipynb", releases[STEM])
    jobs = _jobs(collect(subs, manifest, unpack_dir=tmp_path / "u"))
    beside = {p.relative_to(subs / "ann").as_posix() for p in jobs[("ann", STEM)].beside}
    assert beside == {"numpy.py", "lib/course_lib/__init__.py"}
    assert jobs[("ann", "01_other")].beside == jobs[("ann", STEM)].beside
    job = jobs[("ann", STEM)]
    assert job.folder == subs / "ann"
    found = scan_files(job.beside, job.folder)  # what the pipeline does with them
    assert sorted(e.where for e in found) == ["file lib/course_lib/__init__.py", "file numpy.py"]


def test_walk_is_iterative_and_bounded_in_depth(tmp_path: Path) -> None:
    """A chain of folders deeper than the recursion limit is walked without RecursionError;
    past MAX_WALK_DEPTH the folder is a problem named, not read; order is os.walk's."""
    import os
    import sys

    from autograder.intake import MAX_WALK_DEPTH, Handed, walk

    root = tmp_path / "hw"
    (root / "b").mkdir(parents=True)
    (root / "z.csv").write_text("z")
    (root / "a.csv").write_text("a")
    (root / "b" / "c.csv").write_text("c")
    deep = root / "d"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(sys.getrecursionlimit() + 100):
            os.mkdir("a", dir_fd=fd)
            nxt = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        with open(os.open("x.csv", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "w") as fh:
            fh.write("too deep")
    finally:
        os.close(fd)
    handed = Handed(folder=root)
    try:
        walk(root, "hw", handed)
        deepest = "hw/d" + "/a" * MAX_WALK_DEPTH  # d is at depth 1: this folder is at MAX_WALK_DEPTH + 1
        assert [p.relative_to(root).as_posix() for p in handed.beside] == ["a.csv", "z.csv", "b/c.csv"]
        assert handed.problems == [
            (deepest, f"folder nested too deep (over {MAX_WALK_DEPTH} levels): not read")
        ]
    finally:
        from autograder.removal import remove_tree

        remove_tree(deep)
