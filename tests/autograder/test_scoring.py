"""Scoring rules in memory: hand-built test cells, verdicts and evidence, one question each.

Every expected value is derived by hand from the rule it tests (points of the cells
listed, the status the rule names), never from running the code under test."""

from __future__ import annotations

import pytest

from autograder.results import CellIssue, Evidence, Outcome, SeedResult, Status, Verdict, VerifyProblem
from autograder.scoring import (
    LocatedEvidence,
    NotebookRun,
    RunEnd,
    TestCell,
    decide_submission,
    evidence_for,
    score_exercise,
)

P, W, R, N = SeedResult.PASSED, SeedResult.WRONG, SeedResult.RAISED, SeedResult.NOT_RUN
SECRET = 4242
PATCH = Evidence("patched numpy", "cell 3, line 2", "numpy.allclose replaced")


def cells(visible=1.0, hidden=2.0, *, nb_visible=1.0, nb_hidden=2.0, message=""):
    """square's two test cells: visible seed 0 (1 point), hidden seeds 1, 2 + secret (2 points)."""
    return [
        TestCell("test_square", 1.0, frozenset({0}), nb_visible, message),
        TestCell("test_square_hidden", 2.0, frozenset({1, 2, SECRET}), nb_hidden, hidden=True),
    ]


def verdict(**seeds_and_fields):
    seeds = {0: P, 1: P, 2: P, SECRET: P}
    seeds.update({int(k[1:]): v for k, v in seeds_and_fields.items() if k.startswith("s")})
    fields = {k: v for k, v in seeds_and_fields.items() if not k.startswith("s")}
    return Verdict("square", seeds, **fields)


def score(cs=None, v=None, *, registered=True, answered=True, evidence=()):
    return score_exercise("square", cs or cells(), v, registered=registered, answered=answered, evidence=evidence)


def test_verified_when_every_seed_of_every_cell_passes():
    out = score(v=verdict())
    assert (out.outcome, out.score, out.max_score, out.evidence) == (Outcome.VERIFIED, 3.0, 3.0, ())


def test_registered_without_answer_is_unanswered_zero():
    out = score(cells(nb_visible=0.0, nb_hidden=2.0), None, answered=False)  # the hidden placeholder "passes"
    assert (out.outcome, out.score) == (Outcome.UNANSWERED, 0.0)


def test_tests_passing_with_no_answer_is_tampering():
    out = score(cells(nb_visible=1.0), None, answered=False)
    assert (out.outcome, out.score) == (Outcome.TAMPERING, 0.0)
    assert [e.kind for e in out.evidence] == ["tests passed with no answer"]
    assert out.evidence[0].where == "test_square"


def test_released_stub_that_earns_nothing_is_unanswered_not_wrong():
    out = score_exercise("square", cells(nb_visible=0.0), verdict(s0=R, s1=R, s2=R, **{f"s{SECRET}": R}),
                         registered=True, answered=True, stub=True)  # fmt: skip
    assert (out.outcome, out.score, out.evidence) == (Outcome.UNANSWERED, 0.0, ())


def test_released_stub_with_the_answer_defined_in_another_cell_is_scored_as_usual():
    out = score_exercise("square", cells(), verdict(), registered=True, answered=True, stub=True)
    assert (out.outcome, out.score) == (Outcome.VERIFIED, 3.0)


def test_not_registered_keeps_nbgrader_score_and_says_so():
    cs = [TestCell("test_square", 1.0, frozenset({0}), 1.0), TestCell("test_square_hidden", 2.0, frozenset({1}), 0.0)]
    out = score(cs, None, registered=False)
    assert (out.outcome, out.score) == (Outcome.NOT_VERIFIED, 1.0)
    assert "not re-verified" in out.message


def test_unverifiable_keeps_visible_nbgrader_score_but_not_a_withheld_hidden_cell():
    out = score(v=Verdict("square", problem=VerifyProblem.UNVERIFIABLE, problem_detail="cases too large"))
    # visible: nbgrader's 1 point; hidden: the placeholder never tested anything -> 0
    assert (out.outcome, out.score) == (Outcome.NOT_VERIFIED, 1.0)
    assert "cases too large" in out.message and not out.evidence


def test_reference_reached_is_tampering_with_its_names():
    out = score(v=verdict(reached=("tiny_refs.reference_square",)))
    assert (out.outcome, out.score) == (Outcome.TAMPERING, 0.0)
    assert out.evidence == (Evidence("reference reached", "re-verification of square", "tiny_refs.reference_square"),)


def test_static_evidence_zeroes_an_otherwise_verified_exercise():
    out = score(v=verdict(), evidence=[PATCH])
    assert (out.outcome, out.score, out.evidence) == (Outcome.TAMPERING, 0.0, (PATCH,))


def test_evidence_applies_to_every_exercise_tested_after_its_cell_and_files_to_all():
    file_ev = Evidence("shadowing module file", "file numpy.py")
    own = Evidence("patched checks", "cell 2, line 1")
    other = Evidence("patched checks", "cell 6, line 1")
    early = Evidence("ipython hook", "cell 1, line 1")
    late = Evidence("ipython hook", "cell 9, line 1")
    located = [
        LocatedEvidence(own, 2, "square"),
        LocatedEvidence(other, 6, "softsign"),
        LocatedEvidence(early, 1),
        LocatedEvidence(late, 9),
        LocatedEvidence(file_ev, None),
    ]
    # square's first test cell is cell 3; softsign's is cell 7
    assert evidence_for("square", 3, located) == (own, early, file_ev)
    # square's patch (cell 2) is still in force when softsign's and answer_lr's tests run
    assert evidence_for("softsign", 7, located) == (own, other, early, file_ev)
    assert evidence_for("answer_lr", 11, located) == (own, other, early, late, file_ev)


def test_nbgrader_failure_is_wrong_with_nbgraders_message():
    out = score(cells(nb_visible=0.0, message="AssertionError: square: max diff 3"), verdict(s0=W))
    assert (out.outcome, out.score) == (Outcome.WRONG, 2.0)  # the hidden cell passed re-verification
    assert out.message == "AssertionError: square: max diff 3"


def test_cell_never_run_by_nbgrader_scores_from_reverification():
    out = score(cells(nb_visible=None, nb_hidden=None), verdict())
    assert (out.outcome, out.score) == (Outcome.VERIFIED, 3.0)


def test_cell_never_run_and_wrong_in_reverification_is_wrong_not_tampering():
    out = score(cells(nb_visible=None), verdict(s0=W, message="max diff 1.5"))
    assert (out.outcome, out.score, out.evidence) == (Outcome.WRONG, 2.0, ())


def test_passed_in_notebook_but_wrong_in_clean_process_is_tampering():
    out = score(cells(), verdict(s0=W, message="max diff 2"))
    assert (out.outcome, out.score) == (Outcome.TAMPERING, 0.0)  # the whole exercise, hidden cell included
    assert [e.kind for e in out.evidence] == ["passed only in the notebook"]
    assert out.evidence[0].where == "test_square"
    assert "same answer fails the same inputs in a clean process" in out.message


def test_wrong_with_a_cell_issue_could_not_run_and_names_the_cell():
    issue = CellIssue(4, "raised", "NameError: name 'helper' is not defined")
    out = score(cells(), verdict(s0=W, cell_issues=(issue,)))
    # the visible cell's seed is wrong after a cell failed: 0 for it, not a flag; the hidden cell passed
    assert (out.outcome, out.score, out.evidence) == (Outcome.COULD_NOT_RUN, 2.0, ())
    assert "cell 4 raised: NameError: name 'helper' is not defined" in out.message


def test_raised_in_clean_process_could_not_run_not_flagged():
    out = score(cells(), verdict(s0=R, message="ZeroDivisionError: division by zero"))
    assert (out.outcome, out.score, out.evidence) == (Outcome.COULD_NOT_RUN, 2.0, ())
    assert "ZeroDivisionError" in out.message


def test_not_defined_could_not_run_every_cell():
    v = Verdict("square", problem=VerifyProblem.NOT_DEFINED, problem_detail="cell 2 raised SyntaxError")
    out = score(cells(), v)
    assert (out.outcome, out.score, out.evidence) == (Outcome.COULD_NOT_RUN, 0.0, ())
    assert "cell 2 raised SyntaxError" in out.message


def test_hidden_cell_needs_the_secret_seed():
    out = score(cells(), verdict(**{f"s{SECRET}": W}))
    # hidden cells are never run by nbgrader (placeholder): wrong, not tampering
    assert (out.outcome, out.score, out.evidence) == (Outcome.WRONG, 1.0, ())


def test_hidden_cell_seed_missing_from_the_verdict_earns_nothing():
    v = Verdict("square", {0: P, 1: P, 2: P})  # the secret seed was not checked
    out = score(cells(), v)
    assert (out.outcome, out.score) == (Outcome.COULD_NOT_RUN, 1.0)


def test_worst_cell_wins_and_scores_sum():
    cs = [*cells(), TestCell("test_square_more", 4.0, frozenset({7}), 0.0, "failed")]
    out = score(cs, verdict(s7=W))
    assert (out.outcome, out.score, out.max_score) == (Outcome.WRONG, 3.0, 7.0)
    out = score(cs, verdict(s7=W, s1=R))
    assert (out.outcome, out.score) == (Outcome.COULD_NOT_RUN, 1.0)


def test_grader_problems_never_flag_an_exercise():
    for problem in (VerifyProblem.SETUP_FAILED, VerifyProblem.NO_REPORT):
        out = score(cells(), Verdict("square", problem=problem))
        assert (out.outcome, out.evidence) == (Outcome.NOT_VERIFIED, ())


def test_copied_from_is_a_review_note_not_a_flag():
    out = score(v=verdict(copied_from="tiny_refs.reference_square"))
    assert (out.outcome, out.score, out.evidence) == (Outcome.VERIFIED, 3.0, ())
    assert out.review == "tiny_refs.reference_square"


def test_empty_seed_set_is_a_clear_error():
    with pytest.raises(ValueError, match="test_x.*no seeds"):
        TestCell("test_x", 1.0, frozenset(), 1.0)


# ---------------------------------------------------------------- submission status

DONE = NotebookRun(RunEnd.COMPLETED)


def outcome(kind: Outcome, evidence=()):
    return score_exercise(
        "square", cells(), verdict(reached=("r",)) if kind is Outcome.TAMPERING else verdict(),
        registered=True, answered=True, evidence=evidence,
    )  # fmt: skip


def test_graded_without_evidence():
    d = decide_submission(DONE, [outcome(Outcome.VERIFIED)], [])
    assert (d.status, d.evidence, d.retry, d.scored) == (Status.GRADED, (), False, True)


def test_flagged_iff_evidence_static_or_dynamic():
    assert decide_submission(DONE, [outcome(Outcome.VERIFIED)], [PATCH]).status is Status.FLAGGED
    d = decide_submission(DONE, [outcome(Outcome.TAMPERING)], [])
    assert d.status is Status.FLAGGED and d.evidence[0].kind == "reference reached"
    assert "reference reached" in d.reason


def test_wrong_and_could_not_run_never_flag():
    wrong = score(cells(nb_visible=0.0), verdict(s0=W))
    broken = score(cells(), verdict(s0=R))
    assert decide_submission(DONE, [wrong, broken], []).status is Status.GRADED


def test_flagged_and_timed_out_stays_flagged_with_the_time_out_in_notes():
    run = NotebookRun(RunEnd.TIMED_OUT, "cell 5 ran out of time", stopped_at=5)
    d = decide_submission(run, [outcome(Outcome.VERIFIED)], [PATCH])
    assert d.status is Status.FLAGGED and d.notes == ("cell 5 ran out of time",)
    assert decide_submission(run, [outcome(Outcome.VERIFIED)], []).status is Status.TIMED_OUT


def test_kernel_death_and_sandbox_failure_fail():
    d = decide_submission(NotebookRun(RunEnd.KERNEL_DIED, stopped_at=4), [], [])
    assert (d.status, d.scored, d.reason) == (Status.FAILED, True, "kernel died at cell 4; the exercises it never reached were scored by re-verification")
    d = decide_submission(NotebookRun(RunEnd.NO_RESULT, "sandbox exit 1"), [], [])
    assert (d.status, d.scored) == (Status.FAILED, False)
    d = decide_submission(NotebookRun(RunEnd.ERROR, "kernel did not start", anything_ran=False), [], [])
    assert (d.status, d.scored) == (Status.FAILED, False)


def test_setup_failed_is_the_graders_failure_retried_never_a_flag():
    d = decide_submission(DONE, [outcome(Outcome.VERIFIED)], [], [VerifyProblem.SETUP_FAILED])
    assert (d.status, d.retry, d.scored, d.evidence) == (Status.FAILED, True, False, ())


def test_missing_report_fails_for_retry_but_never_erases_evidence():
    d = decide_submission(DONE, [], [], [VerifyProblem.NO_REPORT])
    assert (d.status, d.retry) == (Status.FAILED, True)
    d = decide_submission(DONE, [], [PATCH], [VerifyProblem.NO_REPORT])
    assert (d.status, d.retry, d.evidence) == (Status.FLAGGED, True, (PATCH,))
