"""Intake under attack: each test performs one attack and asserts the safe outcome.

Links are never followed, one bad file or zip entry never stops the batch, zips are
bounded, and no status reason ever quotes a file's contents.
"""

from __future__ import annotations

import os
import stat
import threading
import warnings
import zipfile
from pathlib import Path

import nbformat
import pytest

import tinycourse
from autograder import intake, intake_read
from autograder.intake import IntakeLimits, Manifest, collect, read_submission
from autograder.results import Status

STEM = tinycourse.STEM
SECRET = "TOP-SECRET-ANSWER-KEY-0042"


@pytest.fixture()
def manifest(tiny_course) -> Manifest:
    _, releases = tiny_course
    return Manifest.from_notebooks({**releases, "01_other": nbformat.v4.new_notebook()})


@pytest.fixture()
def release_text(tiny_course) -> str:
    return nbformat.writes(tiny_course[1][STEM])


@pytest.fixture()
def solution(tmp_path: Path, release_text: str) -> Path:
    """A file the grader can read and the student must not: the instructor's notebook."""
    path = tmp_path / "solutions" / f"{STEM}.ipynb"
    path.parent.mkdir()
    path.write_text(release_text.replace('"cells"', f'"{SECRET}": 1, "cells"', 1))
    return path


def _by_key(jobs) -> dict[tuple[str, str], intake.Job]:
    return {(j.student, j.assignment): j for j in jobs}


def _honest(subs: Path, release_text: str, name: str = "honest") -> Path:
    path = subs / name / f"{STEM}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(release_text)
    return path


def _no_secret(jobs) -> None:
    assert not any(SECRET in n for j in jobs for n in j.notes)


# --- links, devices and fifos are never followed (item 2) --------------------------------


def test_linked_notebook_is_reported_never_graded(manifest, release_text, solution, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    honest = _honest(subs, release_text)
    (subs / "mallory").mkdir()
    (subs / "mallory" / f"{STEM}.ipynb").symlink_to(solution)
    jobs = _by_key(collect(subs, manifest, unpack_dir=tmp_path / "u"))
    mallory = jobs[("mallory", STEM)]
    assert mallory.status == Status.UNREADABLE and mallory.path is None
    assert mallory.notes[0] == f"mallory/{STEM}.ipynb: not a regular file (symbolic link): not read"
    assert jobs[("honest", STEM)].path == honest and jobs[("honest", STEM)].status == "pending"
    _no_secret(jobs.values())


def test_linked_folder_is_not_descended_and_linked_student_folder_not_read(
    manifest, release_text, solution, tmp_path: Path
) -> None:
    subs = tmp_path / "subs"
    _honest(subs, release_text)
    (subs / "mallory").mkdir()
    (subs / "mallory" / "extra").symlink_to(solution.parent, target_is_directory=True)
    (subs / "trudy").symlink_to(solution.parent, target_is_directory=True)
    jobs = _by_key(collect(subs, manifest, unpack_dir=tmp_path / "u"))
    assert jobs[("mallory", STEM)].status == Status.MISSING and jobs[("mallory", STEM)].path is None
    assert "mallory/extra: not a regular file (symbolic link): not read" in jobs[("mallory", STEM)].notes
    assert jobs[("trudy", STEM)].path is None
    assert "trudy: not a regular file (symbolic link): not read" in jobs[("trudy", STEM)].notes
    assert jobs[("honest", STEM)].status == "pending"


def test_fifo_and_device_are_reported_without_hanging(manifest, release_text, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    _honest(subs, release_text)
    (subs / "mallory").mkdir()
    os.mkfifo(subs / "mallory" / f"{STEM}.ipynb")  # reading a fifo blocks until a writer comes
    os.mkfifo(subs / "mallory" / "renamed.ipynb")
    try:
        os.mknod(subs / "mallory" / "zero.ipynb", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
    except PermissionError:
        pass
    done: list = []
    worker = threading.Thread(target=lambda: done.append(collect(subs, manifest, unpack_dir=tmp_path / "u")), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done, "collect hung on a fifo"
    jobs = _by_key(done[0])
    assert jobs[("mallory", STEM)].status == Status.UNREADABLE
    assert jobs[("mallory", STEM)].notes[0] == f"mallory/{STEM}.ipynb: not a regular file (fifo): not read"
    assert jobs[("honest", STEM)].status == "pending"


def test_the_submissions_root_may_be_a_link(manifest, release_text, tmp_path: Path) -> None:
    honest = _honest(tmp_path / "real", release_text)
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    jobs = _by_key(collect(tmp_path / "link", manifest, unpack_dir=tmp_path / "u"))
    assert jobs[("honest", STEM)].path == honest


# --- read_submission: never a link, bounded, never quoting contents ---------------------


def test_read_submission_refuses_a_link_and_never_quotes_contents(solution, tmp_path: Path) -> None:
    link = tmp_path / "link.ipynb"
    link.symlink_to(solution)
    assert read_submission(link) == (None, "not a regular file (symbolic link)")
    hidden = tmp_path / "notes.ipynb"
    hidden.write_text(f"{SECRET} is not JSON")
    nb, why = read_submission(hidden)
    assert nb is None and SECRET not in why and why.startswith("not a readable notebook (")
    truncated = tmp_path / "truncated.ipynb"
    truncated.write_text('{"cells": [\n  {"x": "' + SECRET)
    nb, why = read_submission(truncated)
    assert nb is None and SECRET not in why and "line 2" in why


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[" * 100_000, "not a readable notebook (nested too deeply)"),
        ("", "empty file"),
        (
            '{"cells": [{"id": "a", "cell_type": "code", "source": 5, "metadata": {}}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
            "not a notebook (cell 0 is malformed)",
        ),
    ],
    ids=["deep-nesting", "empty", "source-not-text"],
)
def test_read_submission_survives_hostile_json(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    assert read_submission(path) == (None, reason)


def test_read_submission_caps_the_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release_text: str) -> None:
    path = tmp_path / "big.ipynb"
    path.write_text(release_text)
    monkeypatch.setattr(intake_read, "MAX_NOTEBOOK_BYTES", 100)  # where read_submission reads it
    nb, why = read_submission(path)
    assert nb is None and why == f"too large ({len(release_text.encode())} bytes; the limit is 100)"


def test_read_submission_reads_an_honest_notebook(tmp_path: Path, release_text: str) -> None:
    path = tmp_path / "ok.ipynb"
    path.write_text(release_text)
    nb, why = read_submission(path)
    assert why == "" and nb is not None and nb == nbformat.reads(release_text, as_version=4)


# --- one entry never aborts the batch (item 3) -------------------------------------------


def test_deeply_nested_stray_file_does_not_stop_the_batch(manifest, release_text, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    _honest(subs, release_text)
    (subs / "mallory").mkdir()
    (subs / "mallory" / "weird.ipynb").write_text("[" * 100_000)  # read by _grade_ids to match by content
    jobs = _by_key(collect(subs, manifest, unpack_dir=tmp_path / "u"))
    assert jobs[("mallory", STEM)].status == Status.MISSING
    assert "weird.ipynb: not matched to any assignment" in jobs[("mallory", STEM)].notes
    assert jobs[("honest", STEM)].status == "pending"


def _crc_damaged(path: Path, entries: dict[str, str], damaged: str) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    data = path.read_bytes()
    marker = entries[damaged].encode()
    at = data.index(marker) + len(marker) // 2
    path.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])


def test_zip_entries_that_cannot_be_extracted_become_that_students_status(manifest, release_text, tmp_path: Path) -> None:
    archive = tmp_path / "bulk.zip"
    damaged = release_text.replace('"cells"', '"damaged": 1, "cells"', 1)
    _crc_damaged(archive, {f"honest/{STEM}.ipynb": release_text, f"crc/{STEM}.ipynb": damaged}, f"crc/{STEM}.ipynb")
    with zipfile.ZipFile(archive, "a") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on the duplicate name, as it should
        zf.writestr(f"dup/{STEM}.ipynb", release_text)
        zf.writestr(f"dup/{STEM}.ipynb", "{}")
        zf.writestr("long/" + "a" * 300 + ".ipynb", release_text)
        zf.writestr(f"long/{STEM}.ipynb", release_text)
    jobs = _by_key(collect(archive, manifest, unpack_dir=tmp_path / "u"))
    assert jobs[("crc", STEM)].status == Status.UNREADABLE
    assert jobs[("crc", STEM)].notes[0] == f"crc/{STEM}.ipynb: damaged in the zip (CRC check failed)"
    dup = jobs[("dup", STEM)]
    assert dup.status == "pending" and dup.path.read_text() == release_text  # the first is kept...
    assert f"also found dup/{STEM}.ipynb; graded {STEM}.ipynb (refused: a second entry of the same name (the first was kept))" in dup.notes
    assert jobs[("long", STEM)].status == "pending"
    assert any(n.endswith("refused: a name longer than 255 bytes") for n in jobs[("long", STEM)].notes)
    assert jobs[("honest", STEM)].status == "pending" and jobs[("honest", STEM)].path.read_text() == release_text


# --- zips are bounded (item 4) ----------------------------------------------------------


def test_zip_total_size_is_measured_while_extracting(manifest, release_text, tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"aaa/{STEM}.ipynb", release_text)
        for i in range(5):  # each entry under the per-entry cap, together far over the total
            zf.writestr(f"bomb/pad{i}.bin", b"\0" * 400_000)
        zf.writestr(f"zed/{STEM}.ipynb", release_text)
    limits = IntakeLimits(max_total_bytes=1_000_000, max_entry_bytes=500_000)
    jobs = _by_key(collect(archive, manifest, unpack_dir=tmp_path / "u", limits=limits))
    unpacked = sum(p.stat().st_size for p in (tmp_path / "u").rglob("*") if p.is_file())
    assert unpacked <= 1_000_000
    assert jobs[("aaa", STEM)].status == "pending"
    refused = [n for n in jobs[("bomb", STEM)].notes if "expands beyond 1000000 bytes in all" in n]
    assert len(refused) >= 3
    assert jobs[("zed", STEM)].status == Status.UNREADABLE  # after the budget: reported, not silently dropped


def test_zip_entry_count_and_entry_size_are_capped(manifest, release_text, tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"aaa/{STEM}.ipynb", release_text)
        zf.writestr("aaa/huge.bin", b"\0" * 300_000)
        for i in range(10):
            zf.writestr(f"many/f{i}.txt", "x")
    limits = IntakeLimits(max_entries=6, max_entry_bytes=200_000)
    jobs = _by_key(collect(archive, manifest, unpack_dir=tmp_path / "u", limits=limits))
    assert not (tmp_path / "u" / "aaa" / "huge.bin").exists()
    assert "aaa/huge.bin: refused: expands beyond 200000 bytes" in jobs[("aaa", STEM)].notes
    assert len(list((tmp_path / "u" / "many").iterdir())) == 4
    assert sum("more than 6 entries" in n for n in jobs[("many", STEM)].notes) == 6


def test_zip_declaring_a_huge_directory_is_refused_before_it_is_loaded(manifest, release_text, tmp_path: Path) -> None:
    archive = tmp_path / "dir-bomb.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(70):
            zf.writestr(f"s{i}/x.txt", "")
    with pytest.raises(ValueError, match=r"dir-bomb.zip: declares 70 entries; the limit is 6"):
        collect(archive, manifest, unpack_dir=tmp_path / "u", limits=IntakeLimits(max_entries=6))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir-bomb.zip"]


@pytest.mark.parametrize(
    "name",
    ["../unpacked-evil/x.ipynb", "/tmp/abs-evil.ipynb", "C:/evil.ipynb", "C:\\evil2.ipynb", "ann/../../../evil.ipynb"],
)
def test_zip_paths_are_checked_by_component(manifest, release_text, tmp_path: Path, name: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"ann/{STEM}.ipynb", release_text)
        zf.writestr(name, release_text)
    before = set(tmp_path.rglob("*")) | set(Path("/tmp").glob("abs-evil*"))
    jobs = _by_key(collect(archive, manifest, unpack_dir=tmp_path / "unpacked", limits=IntakeLimits()))
    after = set(tmp_path.rglob("*")) | set(Path("/tmp").glob("abs-evil*"))
    escaped = [p for p in after - before if (tmp_path / "unpacked") not in p.parents and p != tmp_path / "unpacked"]
    assert escaped == []
    assert [p.name for p in (tmp_path / "unpacked").rglob("*.ipynb")] == [f"{STEM}.ipynb"]
    assert jobs[("ann", STEM)].status == "pending"


def test_zip_symlink_entry_is_never_extracted(manifest, release_text, solution, tmp_path: Path) -> None:
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo(f"mallory/{STEM}.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, str(solution))
        zf.writestr(f"ann/{STEM}.ipynb", release_text)
    jobs = _by_key(collect(archive, manifest, unpack_dir=tmp_path / "u"))
    assert not (tmp_path / "u" / "mallory" / f"{STEM}.ipynb").exists()
    assert not (tmp_path / "u" / "mallory" / f"{STEM}.ipynb").is_symlink()
    assert jobs[("mallory", STEM)].status == Status.UNREADABLE
    assert jobs[("mallory", STEM)].notes[0] == f"mallory/{STEM}.ipynb: not a regular file (symbolic link): not extracted"
    _no_secret(jobs.values())


def test_rerun_replaces_the_unpack_dir(manifest, release_text, tmp_path: Path) -> None:
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    with zipfile.ZipFile(first, "w") as zf:
        zf.writestr(f"ann/{STEM}.ipynb", release_text)
    with zipfile.ZipFile(second, "w") as zf:
        zf.writestr(f"bob/{STEM}.ipynb", release_text)
    collect(first, manifest, unpack_dir=tmp_path / "u")
    jobs = _by_key(collect(second, manifest, unpack_dir=tmp_path / "u"))
    assert {s for s, _ in jobs} == {"bob"}
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == ["bob"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.zip", "second.zip", "u"]  # no leftovers
