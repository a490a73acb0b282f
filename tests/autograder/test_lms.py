"""Grades into Canvas and Moodle: synthetic 300-student files written the way the LMS
exports them, filled, read back with ``csv`` and compared cell by cell with the input."""

from __future__ import annotations

import codecs
import csv
import io
import os
import sys
from pathlib import Path

import pytest

from autograder.lms import fill_canvas, scores_from_run, write_moodle

OURS = ("01_perceptron", "02_gradient_descent")
SPECIAL_NAMES = ["王伟", "José Núñez-García", "Zoë", '=HYPERLINK("http://evil.example/x","click me")']
CANVAS_HEADER = [
    "Student", "ID", "SIS User ID", "SIS Login ID", "Section",
    "01_perceptron (1001)", "Quiz 1 (2001)", "02_gradient_descent (1002)",
    "Assignments Current Score", "Current Score", "Unposted Current Score", "Final Score", "Final Grade",
]  # fmt: skip
COL = {name: i for i, name in enumerate(CANVAS_HEADER)}
NO_SCORE = "s0007"  # on the roster, not in our scores
GHOST = "ghost42"  # in our scores, not on the roster


def _login(i: int) -> str:
    return f"s{i:04d}"


def _score(i: int, assignment: str) -> float | None:
    """Hand-made oracle scores: a mix of integers, halves, thirds, zeros and ungraded (None)."""
    if i % 17 == 3 and assignment == OURS[1]:
        return None
    if i % 11 == 5:
        return 0.0
    base = {OURS[0]: 20.0, OURS[1]: 24.0}[assignment]
    return [base, base - 0.5, base / 3, 7.0][i % 4]


def _expected_cell(value: float | None) -> str:
    # Written independently of the code under test: plain decimal text, no trailing ".0".
    if value is None:
        return ""
    return str(int(value)) if value == int(value) else repr(value)


def _scores() -> dict[str, dict[str, float | None]]:
    scores = {_login(i): {a: _score(i, a) for a in OURS} for i in range(300) if _login(i) != NO_SCORE}
    scores[GHOST] = {OURS[0]: 5.0, OURS[1]: 6.0}
    scores[_login(9)]["08_transformers"] = 3.0  # an assignment Canvas has no column for
    return scores


def _canvas_rows() -> list[list[str]]:
    rows = [CANVAS_HEADER]
    blank = [""] * len(CANVAS_HEADER)
    posting = list(blank)
    posting[COL["Quiz 1 (2001)"]] = "Manual Posting"
    rows.append(posting)
    points = ["    Points Possible", "", "", "", "", "20", "10", "24", *["(read only)"] * 5]
    rows.append(points)
    rows.append(["Student, Test", "99999", "", "", "Lab A", "", "", "", "", "", "", "", ""])
    for i in range(300):
        name = SPECIAL_NAMES[i] if i < len(SPECIAL_NAMES) else f"Student{i}, Pat"
        section = f"Lab {'ABC'[i % 3]}" if i % 5 else "Lab A, Lab B"  # a section with a comma: quoted
        old = "12" if i % 7 == 0 else ""  # a grade already in Canvas: ours replaces it
        rows.append([name, str(5000 + i), f"{900000 + i}", _login(i), section, old, f"{i % 10}", "",
                     f"{i % 100}.5", f"{i % 100}", "", f"{i % 90}", "B"])  # fmt: skip
    return rows


def _write_canvas(path: Path, rows: list[list[str]], *, bom: bool = True) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    data = (codecs.BOM_UTF8 if bom else b"") + buffer.getvalue().encode("utf-8")
    path.write_bytes(data)
    return data


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.reader(fh))


def test_fill_canvas_round_trip_changes_only_our_cells(tmp_path: Path) -> None:
    rows = _canvas_rows()
    source = tmp_path / "canvas_export.csv"
    _write_canvas(source, rows)
    out = tmp_path / "canvas_import.csv"
    scores = _scores()

    result = fill_canvas(source, out, scores)

    assert out.read_bytes().startswith(codecs.BOM_UTF8) and b"\r\n" in out.read_bytes()
    back = _read(out)
    assert len(back) == len(rows)
    ours = {COL["01_perceptron (1001)"]: OURS[0], COL["02_gradient_descent (1002)"]: OURS[1]}
    changed = 0
    for r, (want_row, got_row) in enumerate(zip(rows, back)):
        assert len(got_row) == len(want_row), f"row {r} changed length"
        login = want_row[COL["SIS Login ID"]]
        for c, (want, got) in enumerate(zip(want_row, got_row)):
            if r >= 4 and c in ours and login in scores:
                assert got == _expected_cell(scores[login][ours[c]]), (r, c, got)
                changed += 1
            else:
                assert got.encode() == want.encode(), f"untouched cell ({r}, {CANVAS_HEADER[c]}) changed"
    assert changed == 2 * 299
    # Ungraded is an empty cell, never 0; a grade already in Canvas is replaced.
    row_of = {row[COL["SIS Login ID"]]: row for row in back}
    assert row_of[_login(20)][COL["02_gradient_descent (1002)"]] == ""  # 20 % 17 == 3: ungraded
    assert row_of[_login(5)][COL["01_perceptron (1001)"]] == "0"  # graded 0 stays 0
    assert row_of[_login(28)][COL["01_perceptron (1001)"]] == "20"  # was "12" in Canvas
    assert row_of[NO_SCORE][COL["01_perceptron (1001)"]] == "12"  # no scores from us: its Canvas grade stays
    assert row_of[_login(3)][COL["Student"]] == SPECIAL_NAMES[3]  # the formula-like name, as exported
    assert row_of[_login(1)][COL["Student"]] == "José Núñez-García"

    assert result.assignments == OURS
    assert result.unmatched_assignments == ("08_transformers",)
    assert result.not_in_roster == (GHOST,)
    assert result.no_scores == (NO_SCORE,)
    assert len(result.students_written) == 299 and result.students_written[0] == _login(0)
    assert result.escaped == ()


def test_fill_canvas_matches_on_the_canvas_id_and_by_name_only(tmp_path: Path) -> None:
    rows = _canvas_rows()
    rows[0] = [*rows[0][:5], "01_Perceptron  (1001)", *rows[0][6:]]  # Canvas capitalised it
    source = tmp_path / "export.csv"
    _write_canvas(source, rows, bom=False)
    scores = {"5002": {OURS[0]: 13.25}, "5003": {OURS[0]: None}}
    result = fill_canvas(source, tmp_path / "out.csv", scores, match_on="ID")
    back = _read(tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").read_bytes().startswith(codecs.BOM_UTF8)
    assert back[4 + 2][COL["01_perceptron (1001)"]] == "13.25"
    assert back[4 + 3][COL["01_perceptron (1001)"]] == ""
    assert result.students_written == ("5002", "5003")
    assert len(result.no_scores) == 299 and result.no_scores[0] == "99999"  # the test student: an ID, no scores
    assert back[3] == rows[3]


def test_fill_canvas_clear_errors(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    _write_canvas(source, _canvas_rows())
    with pytest.raises(ValueError, match=r"no 'Login' column; its columns are \['Student', 'ID'"):
        fill_canvas(source, tmp_path / "o.csv", _scores(), match_on="Login")
    with pytest.raises(ValueError, match="must be a finite number >= 0 or None, got -1"):
        fill_canvas(source, tmp_path / "o.csv", {_login(2): {OURS[0]: -1}})
    with pytest.raises(ValueError, match="not over the Canvas export"):
        fill_canvas(source, source, _scores())
    rows = _canvas_rows()
    rows[10][COL["SIS Login ID"]] = rows[11][COL["SIS Login ID"]]
    _write_canvas(source, rows)
    with pytest.raises(ValueError, match=r"SIS Login ID 's0007' is on rows 11 and 12"):
        fill_canvas(source, tmp_path / "o.csv", _scores())
    assert not (tmp_path / "o.csv").exists()
    (tmp_path / "latin1.csv").write_bytes("Student,ID\nZo\xeb,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        fill_canvas(tmp_path / "latin1.csv", tmp_path / "o.csv", {})


def _roster(path: Path) -> list[list[str]]:
    rows = [["First name", "Last name", "ID number", "Email address"]]
    for i in range(300):
        first = SPECIAL_NAMES[i] if i < len(SPECIAL_NAMES) else f"Pat{i}"
        rows.append([first, "Ünver" if i % 2 else "Smith", f"{700000 + i}", f"{_login(i)}@uni.example"])
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return rows


def _by_email(scores: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float | None]]:
    return {f"{student}@uni.example": per for student, per in scores.items()}


def test_write_moodle_with_a_roster(tmp_path: Path) -> None:
    roster = _roster(tmp_path / "participants.csv")
    scores = _by_email(_scores())
    out = tmp_path / "moodle.csv"
    result = write_moodle(out, scores, roster=tmp_path / "participants.csv")
    back = _read(out)
    assert back[0] == ["Email address", "01_perceptron", "02_gradient_descent", "08_transformers"]
    emails = [row[3] for row in roster[1:] if row[3] != f"{NO_SCORE}@uni.example"]
    assert [row[0] for row in back[1:]] == emails  # the roster's order, only students with scores
    for row in back[1:]:
        i = int(row[0][1:5])
        assert row[1:3] == [_expected_cell(_score(i, a)) for a in OURS]
        assert row[3] == ("3" if i == 9 else "")
    assert result.not_in_roster == (f"{GHOST}@uni.example",)
    assert result.no_scores == (f"{NO_SCORE}@uni.example",)
    assert len(result.students_written) == 299


def test_write_moodle_without_roster_escapes_formula_like_ids(tmp_path: Path) -> None:
    scores = {"b@x.org": {"01_perceptron": 20.0}, "=cmd|'/C calc'!A0": {"01_perceptron": 1.0},
              "a@x.org": {"01_perceptron": None, "03_backprop": 2.5}}  # fmt: skip
    result = write_moodle(tmp_path / "m.csv", scores, id_field="ID number")
    assert _read(tmp_path / "m.csv") == [
        ["ID number", "01_perceptron", "03_backprop"],
        ["'=cmd|'/C calc'!A0", "1", ""],
        ["a@x.org", "", "2.5"],
        ["b@x.org", "20", ""],
    ]
    assert result.escaped == ("'=cmd|'/C calc'!A0",)
    with pytest.raises(ValueError, match=r"no 'Username' column"):
        write_moodle(tmp_path / "m.csv", scores, roster=_roster_path(tmp_path), id_field="Username")


def _roster_path(tmp_path: Path) -> Path:
    _roster(tmp_path / "r.csv")
    return tmp_path / "r.csv"


@pytest.mark.slow
def test_scores_from_run_reads_the_gradebook_and_ledger(tiny_course, tiny_solutions: Path, tmp_path: Path) -> None:
    from nbgrader.api import Gradebook
    from tinycourse import STEM, grade, make_class

    from autograder.course import CourseDir

    submissions = make_class(tiny_course, tmp_path / "class", ("perfect", "crasher", "corrupt"))
    run = tmp_path / "run"
    grade(submissions, run, tiny_solutions)
    scores = scores_from_run(run)
    by_recipe = {recipe: next(s for s in scores if recipe in s) for recipe in ("perfect", "crasher", "corrupt")}
    perfect = by_recipe["perfect"]
    # The tiny notebook: three exercises, each 1 visible + 2 hidden points.
    assert scores[perfect] == {STEM: 9.0}
    assert scores[by_recipe["corrupt"]] == {STEM: None}  # unreadable: not graded, never 0
    with Gradebook(CourseDir.at(run / "course").db_url) as gb:  # nbgrader's own total for the crasher
        crasher_total = gb.find_submission(STEM, by_recipe["crasher"]).score
    assert 0 < crasher_total < 9 and scores[by_recipe["crasher"]] == {STEM: crasher_total}

    # A manual override in nbgrader's gradebook is what comes out.
    with Gradebook(CourseDir.at(run / "course").db_url) as gb:
        cell = gb.find_grade("test_square_hidden", STEM, STEM, perfect)
        cell.manual_score = 0.5
        gb.db.commit()
    assert scores_from_run(run)[perfect] == {STEM: 7.5}  # 9 - 2 + 0.5
    with pytest.raises(ValueError, match="not a grading run"):
        scores_from_run(tmp_path)


def _hand_made_run(run: Path) -> None:
    """A run folder with ledger records only (no gradebook entries): totals are the ledger's."""
    from autograder.gradebook import Ledger
    from autograder.pipeline import SubmissionResult

    (run / "course").mkdir(parents=True)  # nbgrader makes an empty gradebook there
    ledger = Ledger(run)
    ledger.write(SubmissionResult("ana", "01_perceptron", "graded", score=18.5, max_score=20.0))
    ledger.write(SubmissionResult("ben", "01_perceptron", "failed", reason="kernel died", max_score=20.0))
    ledger.write(SubmissionResult("ben", "02_gradient_descent", "graded", score=0.0, max_score=24.0))


def test_lms_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from autograder.lms import main

    # nbgrader runs `alembic` to create the (empty) gradebook: the venv's bin/ first on PATH.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    run = tmp_path / "run"
    _hand_made_run(run)
    assert main(["moodle", "--out", str(tmp_path / "m.csv"), "--run-dir", str(run), "--id-field", "Username"]) == 0
    assert _read(tmp_path / "m.csv") == [
        ["Username", "01_perceptron", "02_gradient_descent"],
        ["ana", "18.5", ""],
        ["ben", "", "0"],
    ]
    assert "wrote" in capsys.readouterr().out

    source = tmp_path / "export.csv"
    _write_canvas(source, [["Student", "ID", "SIS Login ID", "Section", "01_perceptron (7)"],
                           ["    Points Possible", "", "", "", "20"],
                           ["Ana", "1", "ana", "A", ""], ["Cy", "2", "cy", "A", "3"]])  # fmt: skip
    assert main(["canvas", "--out", str(tmp_path / "c.csv"), "--run-dir", str(run), "--canvas-export", str(source)]) == 0
    assert _read(tmp_path / "c.csv")[2:] == [["Ana", "1", "ana", "A", "18.5"], ["Cy", "2", "cy", "A", "3"]]
    out = capsys.readouterr().out
    assert "graded but not in the roster (not written): ben" in out and "without scores (left as they were): cy" in out

    assert main(["canvas", "--out", str(tmp_path / "c.csv"), "--run-dir", str(run)]) == 2
    assert "--canvas-export FILE" in capsys.readouterr().err
