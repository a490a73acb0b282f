"""The instructor's outputs under attack (security round 2, items 13-15), end to end on
the tiny course: what students control reaches the terminal, the CSV files and the
pages only as inert text, and the honest student graded beside them keeps every point."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_output

import tinycourse
from autograder.api import export_grades, write_feedback
from autograder.cli import main
from autograder.results import Status
from tinycourse import grade, make_class

pytestmark = pytest.mark.slow
STEM = tinycourse.STEM
FORGED_ROW = "mallory  00_tiny  graded  9 of 9"
ESCAPES = f"\x1b[2K\x1b[1A\x1b[2K\r{FORGED_ROW}"
FORMULA = '=HYPERLINK("evil.example","click")'


@pytest.fixture(scope="module")
def attacked_run(tiny_course, tiny_solutions, tmp_path_factory):
    root = tmp_path_factory.mktemp("output-attacks")
    honest = make_class(tiny_course, root / "class", ("perfect",))
    perfect = honest / "perfect" / f"{STEM}.ipynb"
    nb = nbformat.read(str(perfect), as_version=4)

    # A page that tries to run code in the instructor's browser and rewrite a score.
    xss = nbformat.from_dict(json.loads(json.dumps(nb)))
    xss.cells.insert(0, new_markdown_cell("<script>document.title='pwned'</script>\n<img src=x onerror=\"alert(1)\">"))
    answer = next(c for c in xss.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "square")
    answer.source += "\nfrom IPython.display import HTML, Javascript, display\n" \
        "display(HTML('<img src=x onerror=\"this.closest(\\'table\\').rows[1].cells[2].textContent=\\'20 / 20\\'\">'))\n" \
        "display(Javascript('alert(2)'))\n"
    answer.outputs = [new_output("display_data", data={"text/html": "<script>alert(3)</script>"})]
    (honest / "xss").mkdir()
    nbformat.write(xss, str(honest / "xss" / f"{STEM}.ipynb"))

    # A folder and a file name that try to rewrite the terminal, and formula cells for the CSVs.
    (honest / f"eve{ESCAPES}").mkdir()
    nbformat.write(nb, str(honest / f"eve{ESCAPES}" / f"{STEM}.ipynb"))
    (honest / "-1-1").mkdir()
    nbformat.write(nb, str(honest / "-1-1" / f"{STEM}.ipynb"))
    (honest / "formula").mkdir()
    (honest / "formula" / f"{FORMULA} {STEM}.ipynb").write_text("{ not json")  # matched by name, unreadable

    run_dir = root / "run"
    run = grade(honest, run_dir, tiny_solutions)
    return run, run_dir


def _body(page: str) -> str:
    """The page after the grader's own head (its charset and its style sheet)."""
    head, sep, body = page.partition("</style>")
    assert sep and head.count("<style>") == 1 and head.count("<meta") == 1, head
    return body


def _live_markup(page: str) -> list[str]:
    found: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("script", "iframe", "object", "embed", "svg", "style", "base", "meta", "form"):
                found.append(tag)
            found.extend(f"{tag}[{name}]" for name, _ in attrs if name.startswith("on") or name == "style")
            found.extend(f"{tag}[{name}=js]" for name, value in attrs if (value or "").strip().lower().startswith("javascript:"))

    Collect().feed(page)
    return found


def test_the_honest_student_keeps_every_point(attacked_run) -> None:
    run, _ = attacked_run
    perfect = next(r for r in run.results if r.student == "perfect")
    assert (perfect.status, perfect.score) == (Status.GRADED, 9.0)


def test_feedback_pages_are_inert(attacked_run) -> None:
    _, run_dir = attacked_run
    pages = write_feedback(run_dir=run_dir).pages
    assert pages
    for page in pages:
        text = _body(page.read_text())
        assert not _live_markup(text), (page.name, _live_markup(text))
    xss = next(p for p in pages if p.stem.startswith("xss")).read_text()
    assert "&lt;script&gt;document.title" in xss  # shown as text, not dropped silently
    assert "output_javascript" not in xss and "application/javascript" not in xss  # JS outputs: not rendered


def test_the_report_is_inert(attacked_run) -> None:
    _, run_dir = attacked_run
    report = export_grades(run_dir=run_dir).report
    assert not _live_markup(_body(report.read_text()))


def test_csv_cells_are_data(attacked_run) -> None:
    _, run_dir = attacked_run
    result = export_grades(run_dir=run_dir)
    for path in (result.grades_csv, result.submissions_csv):
        rows = list(csv.reader(path.open()))
        for row in rows:
            for cell in row:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (path.name, cell)
        flat = "\n".join(",".join(r) for r in rows)
        assert "'-1-1" in flat  # the student named -1-1 is still there, readable
        if path == result.submissions_csv:  # the unreadable file's name starts its reason
            assert any(c.startswith("'=HYPERLINK") for r in rows for c in r), rows


def test_the_terminal_shows_what_happened(attacked_run, capsys: pytest.CaptureFixture[str]) -> None:
    _, run_dir = attacked_run
    assert main(["status", "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    assert not any(line.startswith("mallory") for line in out.splitlines())  # no forged row
    # The folder name became a safe key (its escape sequences are gone from it)...
    assert any(line.startswith("eve_2K_1A_2K_mallory") for line in out.splitlines())
    # ... and text the grader does print from a submission is shown with visible escapes.
    from autograder.cli import format_table
    from autograder.pipeline import SubmissionResult

    table = format_table([SubmissionResult("eve", STEM, Status.FAILED, reason=f"x{ESCAPES}")])
    assert "\x1b" not in table and "\\x1b[2K" in table and not any(line.startswith("mallory") for line in table.splitlines())


def test_no_student_can_write_outside_its_page(attacked_run) -> None:
    _, run_dir = attacked_run
    pages = write_feedback(run_dir=run_dir).pages
    for page in pages:
        assert page.parent == Path(run_dir).resolve() / "feedback"
        assert "\x1b" not in page.name and "/" not in page.name
