"""The pipeline layer (``autograder.pipeline``), one question per test, in memory.

Only what needs no sandbox is asked here: the secret seed, the digest, submissions that
never reach a kernel (missing, unreadable, a grader error) and the coordinator
(``grade_jobs``) with an engine written in the test. Whole runs are test_runs.py's.
Expected seeds come from the HMAC the docstring of ``submission_seed`` states, computed
here with ``hmac`` directly.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.course import CourseDir
from autograder.intake import Job
from autograder.limits import Limits, Protections
from autograder.pipeline import (
    GradingContext,
    SubmissionResult,
    grade_job,
    grade_jobs,
    read_submission,
    submission_seed,
    thread_engine,
)
from autograder.results import Status

STEM = "a1"
SECRET = 20261127


def _expected_seed(secret: int, key: str, student: str, notebook: bytes) -> int:
    """The seed by the docstring's formula: HMAC-SHA256(secret; key NUL student NUL sha256(nb))."""
    message = f"{key}\0{student}\0{hashlib.sha256(notebook).hexdigest()}".encode()
    mac = hmac.new(str(secret).encode(), message, hashlib.sha256).digest()
    return 1000 + int.from_bytes(mac[:8], "big") % 2**31


def _notebook() -> nbformat.NotebookNode:
    return new_notebook(cells=[new_code_cell("x = 1")])


def _context(tmp_path: Path, *, verify: bool = True, source: str = "x = 1") -> GradingContext:
    # A fixed cell id: nbformat draws a random one, and the digest covers the source's bytes.
    nb = new_notebook(cells=[new_code_cell(source, id="answer")])
    return GradingContext(
        course=CourseDir.at(tmp_path / "course"),
        sources={STEM: nb},
        releases={STEM: nb},
        scratch_root=tmp_path / "scratch",
        hide=[],
        limits=Limits(),
        protections=Protections(namespaces=False, unprivileged_user=False, rlimits=False),
        secret_seed=SECRET,
        verify=verify,
    )


def _handed_in(tmp_path: Path, text: str, name: str = f"{STEM}.ipynb") -> Path:
    path = tmp_path / "class" / "ann" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------ submission_seed


def test_the_secret_seed_is_the_documented_hmac() -> None:
    assert submission_seed(SECRET, STEM, "ann", b"{}") == _expected_seed(SECRET, STEM, "ann", b"{}")


def test_the_secret_seed_changes_with_every_byte_of_the_notebook() -> None:
    assert submission_seed(SECRET, STEM, "ann", b"{}") != submission_seed(SECRET, STEM, "ann", b"{ }")


@pytest.mark.parametrize("secret", [0, 1, 2**63 - 1])
def test_the_secret_seed_stays_in_its_range(secret: int) -> None:
    assert 1000 <= submission_seed(secret, STEM, "ann", b"") < 1000 + 2**31


# -------------------------------------------------------------------- GradingContext


def test_seed_for_is_the_seed_of_the_handed_in_bytes(tmp_path: Path) -> None:
    text = nbformat.writes(_notebook())
    job = Job(student="ann", assignment=STEM, path=_handed_in(tmp_path, text))
    assert _context(tmp_path).seed_for(job) == _expected_seed(SECRET, STEM, "ann", text.encode())


def test_seed_for_a_missing_notebook_is_the_seed_of_no_bytes(tmp_path: Path) -> None:
    job = Job(student="ann", assignment=STEM, path=None, status=Status.MISSING)
    assert _context(tmp_path).seed_for(job) == _expected_seed(SECRET, STEM, "ann", b"")


def test_the_digest_is_the_same_for_the_same_submission(tmp_path: Path) -> None:
    job = Job(student="ann", assignment=STEM, path=_handed_in(tmp_path, nbformat.writes(_notebook())))
    assert _context(tmp_path).digest(job) == _context(tmp_path).digest(job)


def test_the_digest_changes_with_the_notebook_the_source_and_the_options(tmp_path: Path) -> None:
    path = _handed_in(tmp_path, nbformat.writes(_notebook()))
    job = Job(student="ann", assignment=STEM, path=path)
    first = _context(tmp_path).digest(job)
    changed = {
        "options": _context(tmp_path, verify=False).digest(job),
        "source": _context(tmp_path, source="x = 2").digest(job),
    }
    path.write_text(path.read_text() + " ")
    changed["notebook"] = _context(tmp_path).digest(job)
    assert {why: digest != first for why, digest in changed.items()} == dict.fromkeys(changed, True)


def test_the_views_live_in_the_scratch_root(tmp_path: Path) -> None:
    assert _context(tmp_path).views == tmp_path / "scratch" / "views"


# ------------------------------------------------------------------------ grade_job


@pytest.mark.parametrize("status", [Status.MISSING, Status.UNREADABLE])
def test_a_job_refused_at_intake_keeps_its_status_and_first_note(tmp_path: Path, status: Status) -> None:
    job = Job(
        student="ann", assignment=STEM, path=None, status=status, notes=["ann/a1.ipynb: a link", "more"]
    )
    result = grade_job(job, _context(tmp_path))
    assert (result.status, result.reason, result.score, result.retry) == (
        status,
        "ann/a1.ipynb: a link",
        None,
        False,
    )
    assert result.notes == ["ann/a1.ipynb: a link", "more"]


@pytest.mark.parametrize(("text", "why"), [("", "empty file"), ("   \n", "empty file")])
def test_an_empty_file_is_unreadable_and_says_which(tmp_path: Path, text: str, why: str) -> None:
    job = Job(student="ann", assignment=STEM, path=_handed_in(tmp_path, text))
    result = grade_job(job, _context(tmp_path))
    assert (result.status, result.reason, result.score) == (Status.UNREADABLE, f"{STEM}.ipynb: {why}", None)


def test_a_file_that_is_not_a_notebook_is_unreadable_and_names_the_file(tmp_path: Path) -> None:
    job = Job(student="ann", assignment=STEM, path=_handed_in(tmp_path, "=cmd|' /C calc'!A0"))
    result = grade_job(job, _context(tmp_path))
    assert result.status is Status.UNREADABLE and result.reason.startswith(f"{STEM}.ipynb: ")
    assert "calc" not in result.reason  # the reason never quotes the file


def test_a_grader_error_is_a_failed_result_to_retry_never_an_exception(tmp_path: Path) -> None:
    # A readable notebook of an assignment the context has no source for: the grader's fault.
    job = Job(
        student="ann", assignment="b2", path=_handed_in(tmp_path, nbformat.writes(_notebook()), "b2.ipynb")
    )
    result = grade_job(job, _context(tmp_path))
    assert (result.status, result.score, result.retry) == (Status.FAILED, None, True)
    assert result.reason.startswith("grader error: KeyError")


def test_a_result_carries_the_jobs_name_notebook_and_digest(tmp_path: Path) -> None:
    job = Job(
        student="ann",
        assignment=STEM,
        path=None,
        status=Status.MISSING,
        display="Ann Ó",
        notebook_name="part2",
    )
    result = grade_job(job, _context(tmp_path))
    assert (result.display, result.key, result.notebook_id) == ("Ann Ó", f"{STEM}/part2", "part2")
    assert result.digest == _context(tmp_path).digest(job)


# ------------------------------------------------------------------ read_submission


def test_read_submission_reads_a_notebook(tmp_path: Path) -> None:
    nb, why = read_submission(_handed_in(tmp_path, nbformat.writes(_notebook())))
    assert nb is not None and [c.source for c in nb.cells] == ["x = 1"] and why == ""


def test_read_submission_refuses_a_link(tmp_path: Path) -> None:
    target = _handed_in(tmp_path, nbformat.writes(_notebook()), "real.ipynb")
    link = target.with_name(f"{STEM}.ipynb")
    link.symlink_to(target)
    nb, why = read_submission(link)
    assert nb is None and why


# ----------------------------------------------------------------------- grade_jobs


def _jobs(*students: str) -> list[Job]:
    return [Job(student=s, assignment=STEM, path=None, status=Status.MISSING) for s in students]


def _result(student: str, digest: str = "d") -> SubmissionResult:
    return SubmissionResult(student=student, assignment=STEM, status=Status.GRADED, score=1.0, digest=digest)


def _engine(results: list[SubmissionResult]):
    """An engine that delivers ``results`` as they are, in that order (duplicates included)."""

    def run(jobs: list[Job], ctx: GradingContext) -> Iterator[SubmissionResult]:
        yield from results

    return run


def test_grade_jobs_of_an_empty_class_merges_nothing(tmp_path: Path) -> None:
    merged: list[SubmissionResult] = []
    assert grade_jobs([], _context(tmp_path), workers=1, on_result=merged.append) == []
    assert merged == []


def test_grade_jobs_returns_results_in_the_order_of_the_jobs(tmp_path: Path) -> None:
    engine = _engine([_result("cy"), _result("ann"), _result("bo")])
    results = grade_jobs(
        _jobs("ann", "bo", "cy"), _context(tmp_path), workers=1, on_result=lambda r: None, engine=engine
    )
    assert [r.student for r in results] == ["ann", "bo", "cy"]


def test_a_result_delivered_twice_is_merged_and_reported_once(tmp_path: Path) -> None:
    merged: list[str] = []
    shown: list[str] = []
    engine = _engine([_result("ann"), _result("ann"), _result("bo")])
    results = grade_jobs(
        _jobs("ann", "bo"), _context(tmp_path), workers=1, on_result=lambda r: merged.append(r.student),
        progress=lambda r: shown.append(r.student), engine=engine,
    )  # fmt: skip
    assert (merged, shown, len(results)) == (["ann", "bo"], ["ann", "bo"], 2)


def test_a_failed_merge_saves_the_result_as_failed_and_to_retry(tmp_path: Path) -> None:
    calls: list[tuple[Status, float | None]] = []

    def merge(r: SubmissionResult) -> None:
        calls.append((r.status, r.score))
        if len(calls) == 1:
            raise OSError("disk full")

    graded = _result("ann")
    graded.notebook = _notebook()
    [result] = grade_jobs(
        _jobs("ann"), _context(tmp_path), workers=1, on_result=merge, engine=_engine([graded])
    )
    assert calls == [(Status.GRADED, 1.0), (Status.FAILED, None)]
    assert (result.retry, result.notebook) == (True, None)
    assert result.reason == "could not save the result: OSError: disk full"


def test_the_thread_engine_grades_every_job(tmp_path: Path) -> None:
    results = list(thread_engine(2)(_jobs("ann", "bo", "cy"), _context(tmp_path)))
    assert sorted((r.student, r.status) for r in results) == [
        (s, Status.MISSING) for s in ("ann", "bo", "cy")
    ]
