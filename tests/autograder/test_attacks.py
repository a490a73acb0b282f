"""The attack and fault corpus (autograder.sample recipes) on the tiny course, graded
once with 2 workers: each submission gets its safe outcome, the rest of the class is
graded, and nothing leaks or persists. Honest recipes are never flagged; every
dishonest one is flagged with evidence. Two test-local students join them: one whose
answers lean on helper cells and her own earlier answer (full marks, no flag), and
one whose pre_run_cell hook prints every cell it sees (hidden tests stay hidden)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nbformat
import pytest

import tinycourse
from students import student_notebook

import autograder
from autograder.course import CourseDir
from autograder.results import Outcome, Status
from autograder.sample import EXPECTED, solution_answers

pytestmark = pytest.mark.slow
STEM = tinycourse.STEM

# recipe -> (status, score or None when nothing could be graded)
OUTCOMES = {
    "perfect": (Status.GRADED, 9.0),
    "partial": (Status.GRADED, 6.0),  # square and answer_lr right, softsign left as released
    "blank": (Status.GRADED, 0.0),
    "corrupt": (Status.UNREADABLE, None),
    "renamed": (Status.GRADED, 9.0),  # "my final version.ipynb", matched by its cells
    "messy": (Status.GRADED, 9.0),  # duplicated/deleted/stripped cells, forged outputs, old schema
    # The notebook stops in softsign's cell (it defines softsign, then loops). Re-verification
    # stops that cell too, after the def, and verifies softsign and answer_lr, whose tests
    # the notebook never reached: a correct answer keeps its points, the status says why.
    "looper": (Status.TIMED_OUT, 9.0),
    # The kernel is killed in softsign's cell, and so is the fresh process replaying it for
    # softsign (could not run, 0); answer_lr, which does not need that cell, is replayed
    # without it and verified.
    "crasher": (Status.FAILED, 6.0),
    "hog": (Status.GRADED, 9.0),  # MemoryError under the rlimit, after the answer was defined (see below)
    "flood": (Status.GRADED, 9.0),
    "patcher": (Status.FLAGGED, 0.0),
    "equalizer": (Status.FLAGGED, 0.0),
    "copycat": (Status.FLAGGED, 3.0),  # answer_lr is a value: copying 0.1 is not a reference call
    "hooker": (Status.FLAGGED, 0.0),
    # The snoop's reads and the vandal's writes find nothing in the jail, but each attempt is
    # evidence (in the first answer cell: every exercise tested after it earns 0).
    "snoop": (Status.FLAGGED, 0.0),
    "vandal": (Status.FLAGGED, 0.0),
    "shadower": (Status.FLAGGED, 0.0),  # a numpy.py beside perfect answers: every exercise
}
HONEST = ("perfect", "partial", "blank", "messy", "renamed", "flood", "hog")
# What re-verification must find for each dishonest recipe (by the evidence kind).
DISHONEST = {
    "patcher": "patched module",
    "equalizer": "patched module",
    "copycat": "reference reached",
    "hooker": "ipython hook",
    "snoop": "reads protected path",
    "vandal": "writes protected path",
    "shadower": "shadowing module file",
}


def _result(graded_class, student: str):
    run, _ = graded_class
    return next(r for r in run.results if r.student == student and r.assignment == STEM)


@pytest.mark.parametrize("student", sorted(set(OUTCOMES) - {"hog"}))
def test_every_submission_gets_its_safe_outcome(graded_class, student: str) -> None:
    status, score = OUTCOMES[student]
    result = _result(graded_class, student)
    assert (result.status, result.score) == (status, score), result.reason


def test_hog_is_graded_and_only_its_replayed_allocation_can_cost_points(graded_class) -> None:
    # The clean process replays the hog's cell (it fills the address space) before each
    # later exercise; on a loaded machine that replay can outlast the per-exercise budget.
    # Then that exercise could not run (0, not a flag); nothing else may differ.
    result = _result(graded_class, "hog")
    outcomes = {e.name: e for e in result.exercises}
    assert result.status is Status.GRADED and not result.evidence
    assert outcomes["square"].outcome is Outcome.VERIFIED  # before the hog's cell: never replays it
    for later in (outcomes["softsign"], outcomes["answer_lr"]):
        # The replayed allocation may be cut by the time box or the memory limits: then
        # that exercise could not run (0, with what to fix) — never a flag.
        assert (later.outcome, later.score) == (Outcome.VERIFIED, 3.0) or (
            later.outcome is Outcome.COULD_NOT_RUN and later.score == 0 and later.note
        ), later
    assert result.score == sum(e.score for e in result.exercises)


def test_expected_statuses_in_sample_agree() -> None:
    for recipe, (status, _) in OUTCOMES.items():
        assert EXPECTED[recipe] in (None, status), recipe


@pytest.mark.parametrize("student", HONEST)
def test_honest_students_are_never_flagged(graded_class, student: str) -> None:
    result = _result(graded_class, student)
    assert result.status is not Status.FLAGGED and result.evidence == [], result.reason
    assert all(e.outcome is not Outcome.TAMPERING for e in result.exercises)


@pytest.mark.parametrize("student", sorted(DISHONEST))
def test_every_tampering_recipe_is_flagged_with_evidence(graded_class, student: str) -> None:
    result = _result(graded_class, student)
    assert result.status is Status.FLAGGED
    assert DISHONEST[student] in [e.kind for e in result.evidence]
    assert all(e.where for e in result.evidence)
    tampered = [e for e in result.exercises if e.outcome is Outcome.TAMPERING]
    assert tampered and all(e.score == 0 and e.evidence for e in tampered)


def test_reasons_say_what_happened(graded_class) -> None:
    assert "kernel died" in _result(graded_class, "crasher").reason
    assert "not a readable notebook" in _result(graded_class, "corrupt").reason
    assert "reference reached" in _result(graded_class, "copycat").reason
    assert "patched module (cell" in _result(graded_class, "patcher").reason
    partial = {e.name: e.outcome for e in _result(graded_class, "partial").exercises}
    assert partial == {"square": Outcome.VERIFIED, "softsign": Outcome.UNANSWERED, "answer_lr": Outcome.VERIFIED}
    looper = {e.name: e for e in _result(graded_class, "looper").exercises}
    assert [looper[n].outcome for n in ("square", "softsign", "answer_lr")] == [Outcome.VERIFIED] * 3
    assert "never reached were scored by re-verification" in _result(graded_class, "looper").reason
    notes = " ".join(_result(graded_class, "messy").notes)
    assert "restored" in notes and "found by its definition" in notes and "duplicated" in notes


def test_unreadable_and_crashed_are_never_an_honest_zero_in_the_gradebook(graded_class) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    run, _ = graded_class
    with Gradebook(CourseDir.at(run.run_dir / "course").db_url) as gb:
        with pytest.raises(MissingEntry):
            gb.find_submission(STEM, "corrupt")
        assert gb.find_submission_notebook(STEM, STEM, "perfect").score == 9.0


def _outputs(run_dir: Path, student: str) -> str:
    nb = json.loads(CourseDir.at(run_dir / "course").autograded(student, STEM).read_text())
    return json.dumps([c.get("outputs", []) for c in nb["cells"]])


def test_snoop_reads_nothing_of_the_course(graded_class) -> None:
    run, _ = graded_class
    nb = json.loads(CourseDir.at(run.run_dir / "course").autograded("snoop", STEM).read_text())
    # What the snoop's own code printed (the grader's evidence notes name what it tried).
    text = json.dumps([o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "stream"])
    assert "snoop found" in text
    assert "solutions" not in text and "gradebook" not in text and "source/" not in text


def test_vandal_writes_nothing_outside_its_scratch(graded_class) -> None:
    run, _ = graded_class
    text = _outputs(run.run_dir, "vandal")
    # The course's packages are mounted read-only inside the jail (OSError: read-only file
    # system); without the jail, file permissions stop nobody (PermissionError).
    package = Path(autograder.__file__).resolve().parent
    assert re.search(rf"blocked {re.escape(str(package))}/PWNED (PermissionError|OSError|FileNotFoundError)", text)
    for path in ("/tmp/PWNED", "/var/tmp/PWNED", "/dev/shm/PWNED", str(package / "PWNED")):
        assert not Path(path).exists(), path
    assert not list(run.run_dir.rglob("PWNED")) and not list(run.run_dir.rglob("00-pwned.py"))
    assert not any((run.run_dir / "scratch").iterdir())  # every scratch directory removed


def test_flood_output_is_cut_in_bytes(graded_class) -> None:
    run, _ = graded_class
    text = _outputs(run.run_dir, "flood")
    assert "output cut at" in text
    assert len(text) < 2 * 256 * 1024


def test_protections_are_reported(graded_class) -> None:
    run, _ = graded_class
    assert (run.run_dir / "protections.txt").read_text().strip() == run.protections.summary


# ---------------------------------------------------------------- test-local students

HIDDEN_SOURCE = ("BEGIN HIDDEN TESTS", "seed=1", "seed=2")
_RATE = "def _rate():\n    return 0.1\n"  # a helper in an inserted cell before every answer
_MAGNITUDE = "def _magnitude(x):\n    return np.sqrt(square(x))  # her own earlier answer\n"
_SPY = """\
def _spy(info):
    print("SAW:", info.raw_cell)
get_ipython().events.register("pre_run_cell", _spy)
"""


@pytest.fixture(scope="module")
def local_class(tiny_course, tiny_solutions, tmp_path_factory):
    sources, releases = tiny_course
    source, release = sources[STEM], releases[STEM]
    answers = solution_answers(source)
    helper = {**answers, "softsign": "def softsign(x):\n    return x / (1.0 + _magnitude(x))\n",
              "answer_lr": "answer_lr = _rate()\n"}  # fmt: skip
    root = tmp_path_factory.mktemp("local")
    notebooks = {
        "helper": student_notebook(release, helper, before={"square": _RATE, "softsign": _MAGNITUDE}, drop_ids=True),
        "spy": student_notebook(release, answers, before={"square": _SPY}, drop_ids=True),
    }
    for student, nb in notebooks.items():
        (root / "class" / student).mkdir(parents=True)
        nbformat.write(nb, str(root / "class" / student / f"{STEM}.ipynb"))
    run = tinycourse.grade(root / "class", root / "run", tiny_solutions)
    return run


def _local(run, student):
    return next(r for r in run.results if r.student == student)


def test_honest_helpers_and_calls_to_earlier_answers_earn_full_marks(local_class) -> None:
    result = _local(local_class, "helper")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), result.reason
    assert [e.outcome for e in result.exercises] == [Outcome.VERIFIED] * 3


def test_hidden_tests_never_reach_the_students_kernel(local_class) -> None:
    result = _local(local_class, "spy")
    # The hook itself is evidence of tampering; what it could see is tested below.
    assert result.status is Status.FLAGGED and [e.kind for e in result.evidence] == ["ipython hook"]
    text = _outputs(local_class.run_dir, "spy")
    assert "SAW:" in text and "check_square(square)" in text  # the hook ran and saw the visible tests
    for needle in HIDDEN_SOURCE:
        assert needle not in text
    nb = nbformat.read(str(CourseDir.at(local_class.run_dir / "course").autograded("spy", STEM)), as_version=4)
    for needle in HIDDEN_SOURCE:
        assert not any(needle in cell.source for cell in nb.cells)


def test_gradebook_holds_the_reverified_hidden_scores(local_class) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(CourseDir.at(local_class.run_dir / "course").db_url) as gb:
        nb = gb.find_submission_notebook(STEM, STEM, "helper")  # hidden points come from re-verification
        assert {g.name: g.score for g in nb.grades}["test_square_hidden"] == 2.0
        assert nb.score == 9.0


def test_feedback_and_report_never_show_hidden_source(local_class) -> None:
    from autograder.export import export_grades
    from autograder.feedback import write_feedback

    write_feedback(run_dir=local_class.run_dir)
    export_grades(run_dir=local_class.run_dir)
    page = (local_class.run_dir / "feedback" / "spy.html").read_text()
    report = (local_class.run_dir / "report" / "index.html").read_text()
    assert "hidden tests (2 points): source not shown" in page
    for text in (page, report):
        for needle in HIDDEN_SOURCE:
            assert needle not in text
    rows = list(csv.DictReader((local_class.run_dir / "submissions.csv").open()))
    assert {r["outcome"] for r in rows if r["student"] == "helper"} == {"verified"}
