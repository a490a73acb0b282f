"""Feedback pages with math rendered offline, and a report that fits any class (issue #11,
item 6), checked in memory: the HTML is parsed, never run. The layout in a browser is
checked by tests/browser/test_pages_browser.py."""

from __future__ import annotations

import re
import time
import warnings
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.export import describe_submission
from autograder.feedback import _render_safely, write_feedback
from autograder.mathrender import MathSlots, find_math, render_formula, to_mathtext
from autograder.pipeline import ExerciseScore, SubmissionResult
from autograder.report import ExerciseDifficulty, ScoreCell, exercise_difficulty, student_rows, write_report
from autograder.results import Evidence, Outcome, Status
from synthetic_class import class_records, feedback_run

REPO = Path(__file__).resolve().parents[2]
COURSE_NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SVG = "{http://www.w3.org/2000/svg}"


class _Page(HTMLParser):
    """What a page holds that could act or load: scripts, frames, remote sources, handlers, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.live: list[str] = []
        self.math_images: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "iframe", "object", "embed", "svg", "base", "form", "link"):
            self.live.append(tag)
        self.live += [f"{tag}[{k}]" for k in a if k.startswith("on") or k == "style"]
        # Loads from the network (a link the reader may click is not one), and javascript: URLs.
        self.live += [f"{tag}[src={v[:30]}]" for k, v in a.items() if k == "src" and re.match(r"\s*(https?:|//)", v)]
        self.live += [f"{tag}[{k}=js]" for k, v in a.items() if re.match(r"\s*javascript:", v, re.I)]
        if tag == "img" and "math" in a.get("class", "").split():
            self.math_images.append(a)


def _parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    return parsed


def _svg_of(img: dict[str, str]) -> ET.Element:
    prefix = "data:image/svg+xml,"
    assert img["src"].startswith(prefix), img["src"][:40]
    return ET.fromstring(unquote(img["src"][len(prefix):]))


# --- finding math in markdown ---------------------------------------------------------


def test_find_math_follows_jupyter_markdown() -> None:
    text = ("Inline $\\hat y = g(z)$ and display $$\\frac{1}{n}\n\\sum_i x_i$$; costs \\$5 and \\$6; "
            "`code $x$ span` and ``a $b$ c``; a lone $ 5 is money;\n```\n$not = math$\n```\nlast $k$.")  # fmt: skip
    spans = find_math(text)
    assert [(s.tex, s.display) for s in spans] == [
        ("\\hat y = g(z)", False), ("\\frac{1}{n}\n\\sum_i x_i", True), ("k", False)]  # fmt: skip
    assert text[spans[0].start : spans[0].end] == "$\\hat y = g(z)$"


@pytest.mark.parametrize(("tex", "expected"), [
    ("\\frac1N\\sum_n x_n", "\\frac{1}{N}\\sum_n x_n"),
    ("\\mathbf W_{xh}\\ (D\\times H)", "\\mathbf{W}_{xh}\\ (D\\times H)"),
    ("\\mathbb E[x]", "\\mathbb{E}[x]"),
    ("g\\Bigl(w_0 + x\\Bigr) = g\\bigl(z\\bigr)", "g\\left(w_0 + x\\right) = g\\left(z\\right)"),
    ("\\operatorname{sign}\\big(\\nabla_x J\\big)", "\\operatorname{sign}\\left(\\nabla_x J\\right)"),
    ("\\lVert g\\rVert", "\\Vert g\\Vert"),
    ("x \\xrightarrow{\\;\\sigma\\;} y", "x \\overset{\\;\\sigma\\;}{\\longrightarrow} y"),
    ("\\texttt{dh}_t \\mathrel{+}= \\textstyle\\sum a", "\\mathtt{dh}_t += \\sum a"),
    ("x_1 \\lor x_2 \\land \\lnot y", "x_1 \\vee x_2 \\wedge \\neg y"),
])  # fmt: skip
def test_course_notation_is_rewritten_for_mathtext(tex: str, expected: str) -> None:
    assert to_mathtext(tex) == expected


# --- rendering ------------------------------------------------------------------------


def test_a_formula_becomes_an_inert_svg_image_sized_by_its_content() -> None:
    small, frac, wide = (_parse(render_formula(t).html).math_images for t in ("x", "\\frac{a}{b}", "x + y + z + w + v"))
    assert len(small) == len(frac) == len(wide) == 1
    svg = _svg_of(frac[0])
    assert svg.tag == f"{SVG}svg" and svg.findall(f".//{SVG}path")  # glyphs as paths: no font, no text
    kinds = {el.tag.removeprefix(SVG) for el in svg.iter()}
    assert kinds <= {"svg", "defs", "path", "use", "g"}, kinds  # nothing that runs or loads
    assert frac[0]["alt"] == "\\frac{a}{b}"  # the source, for copying and screen readers
    assert int(frac[0]["height"]) > int(small[0]["height"])  # a fraction is taller than a letter
    assert int(wide[0]["width"]) > 3 * int(small[0]["width"])


def test_environments_are_laid_out_as_grids_of_rendered_cells() -> None:
    out = render_formula("X = \\begin{bmatrix}0&1&2\\\\3&4&5\\end{bmatrix}")
    assert out.ok and "math-bmatrix" in out.html
    assert out.html.count("math-row") == 2 and out.html.count("math-cell") == 6
    assert "<table" not in out.html  # a table would close the paragraph the formula sits in
    cases = render_formula("g'(z) = \\begin{cases} 1, & z > 0 \\\\ 0, & \\text{otherwise.} \\end{cases}")
    assert cases.ok and cases.html.count("math-cell") == 4 and "math-cases" in cases.html


def test_a_formula_mathtext_cannot_read_is_shown_as_escaped_source() -> None:
    out = render_formula("\\unknownmacro{<b>x</b>}")
    assert not out.ok
    assert "<code class=math-source>" in out.html and "&lt;b&gt;x&lt;/b&gt;" in out.html and "<b>" not in out.html


def test_every_formula_of_the_course_renders() -> None:
    """The coverage the README states: every $...$ of the student notebooks (each is parsed
    by mathtext after the rewrites; a failure would be shown as source)."""
    spans = [s for path in COURSE_NOTEBOOKS for c in nbformat.read(path, as_version=4).cells
             if c.cell_type == "markdown" for s in find_math(c.source)]  # fmt: skip
    failed = [s.tex for s in spans if not render_formula(s.tex, display=s.display).ok]
    assert len(spans) > 300 and not failed, (len(spans), failed)


# --- math in feedback pages -----------------------------------------------------------


def _student_notebook() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("The model $\\hat y = g(z)$ with\n\n$$J = \\frac{1}{n}\\sum_i (\\hat y_i - y_i)^2$$\n\n"
                          "<script>document.title='pwned'</script> and $<img src=x onerror=alert(1)>$ "
                          "and the literal text mathslot0123456789abcdefn0x."),
        new_code_cell("x = '$\\\\hat y$ in code stays code'", outputs=[
            new_output("display_data", data={"text/markdown": "$\\\\alpha$", "text/html": "<b onclick=x>$\\alpha$</b>"})]),
    ]  # fmt: skip
    return nb


def test_feedback_math_is_images_and_student_markup_stays_inert() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = _render_safely(_student_notebook())
    page = _parse(body)
    assert not page.live, page.live
    assert len(page.math_images) == 3  # the two formulas and the student's "$<img ...>$", as a picture
    assert [img["alt"] for img in page.math_images][:2] == ["\\hat y = g(z)", "J = \\frac{1}{n}\\sum_i (\\hat y_i - y_i)^2"]
    assert "&lt;script&gt;" in body  # shown, never obeyed
    assert "mathslot0123456789abcdefn0x" in body  # a forged placeholder names no formula
    text = re.sub(r"<[^>]+>", "", body)
    assert "$\\hat y = g" not in text and "\\frac{1}" not in text  # no raw TeX left in the page's text


def test_placeholders_are_random_per_notebook() -> None:
    a, b = MathSlots(), MathSlots()
    assert a.key != b.key and re.fullmatch(r"mathslot[0-9a-f]{16}", a.key)


def test_write_feedback_pages_load_nothing_from_the_network(tmp_path: Path) -> None:
    feedback_run(tmp_path, [REPO / "notebooks" / "04_activations.ipynb"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (page,) = write_feedback(run_dir=tmp_path).pages
    html = page.read_text()
    parsed = _parse(html)
    assert not parsed.live, parsed.live
    assert "mathjax" not in html.lower() and "cdn" not in html.lower()
    assert len(parsed.math_images) > 30


# --- the report -----------------------------------------------------------------------


def _ex(name: str, score: float, outcome: Outcome) -> ExerciseScore:
    return ExerciseScore(name, score, 2.0, score, outcome is Outcome.VERIFIED, "", outcome)


def test_exercise_difficulty_by_hand() -> None:
    records = [
        SubmissionResult("a", "nb1", Status.GRADED, score=3.0, max_score=4.0,
                         exercises=[_ex("e1", 2.0, Outcome.VERIFIED), _ex("e2", 1.0, Outcome.WRONG)]),
        SubmissionResult("b", "nb1", Status.GRADED, score=0.0, max_score=4.0,
                         exercises=[_ex("e1", 0.0, Outcome.WRONG), _ex("e2", 0.0, Outcome.COULD_NOT_RUN)]),
        SubmissionResult("c", "nb1", Status.FLAGGED, score=1.0, max_score=4.0,
                         exercises=[_ex("e1", 0.0, Outcome.TAMPERING), _ex("e2", 1.0, Outcome.VERIFIED)]),
        SubmissionResult("d", "nb1", Status.FAILED, max_score=4.0, exercises=[_ex("e1", 0.0, Outcome.WRONG)]),
    ]  # fmt: skip
    assert exercise_difficulty(records) == [
        ExerciseDifficulty("nb1", "e1", 3, mean_score=2 / 3, max_score=2.0, verified=1 / 3, wrong=1 / 3, could_not_run=0.0),
        ExerciseDifficulty("nb1", "e2", 3, mean_score=2 / 3, max_score=2.0, verified=1 / 3, wrong=1 / 3, could_not_run=1 / 3),
    ]  # fmt: skip


def test_student_rows_by_hand() -> None:
    records = [
        SubmissionResult("bo", "nb1", Status.GRADED, score=3.0, max_score=4.0, display="Bo B."),
        SubmissionResult("al", "nb1", Status.FLAGGED, score=1.0, max_score=4.0),
        SubmissionResult("al", "nb2", Status.MISSING, max_score=4.0),
    ]
    rows = student_rows(records, ["nb1", "nb2"], lambda r: r.score)
    assert [(r.student, r.name, r.cells, r.total) for r in rows] == [
        ("al", "al", (ScoreCell(1.0, Status.FLAGGED), ScoreCell(None, Status.MISSING)), 1.0),
        ("bo", "Bo B.", (ScoreCell(3.0, Status.GRADED), ScoreCell(None, None)), 3.0),
    ]


@pytest.mark.parametrize(("notebooks", "students"), [(1, 5), (20, 300)])
def test_the_report_lays_out_any_class(tmp_path: Path, notebooks: int, students: int) -> None:
    records = class_records(notebooks=notebooks, students=students)
    start = time.monotonic()
    result = write_report(report_dir=tmp_path, records=records, score_of=lambda r: r.score, describe=describe_submission)
    seconds = time.monotonic() - start
    html = result.page.read_text()
    parsed = _parse(html)
    assert not parsed.live, parsed.live[:5]
    assert len(result.histograms) == notebooks and all(p.stat().st_size > 1000 for p in result.histograms)
    assert html.count("<figure>") == notebooks and "class=hists" in html
    students_table = html[html.index("<table class=students>") :].split("</table>")[0]
    assert students_table.count("<tr>") == students + 1  # header + one row per student
    first_row = students_table.split("<tr>")[2]
    assert first_row.count("<td") == notebooks + 2  # student, one per notebook, total
    flagged = html[html.index("<h2>Flagged submissions</h2>") :].split("</table>")[0]
    expected = sum(r.status is Status.FLAGGED for r in records)  # the first student, unless missing or failed
    assert expected and flagged.count("<li>patched numpy (cell 4, line 2): np.allclose replaced</li>") == expected
    difficulty = html[html.index("<h2>Per-exercise difficulty</h2>") :].split("</table>")[0]
    assert difficulty.count("<meter") == 3 * notebooks
    assert seconds < 60, seconds


def test_the_flagged_list_shows_exercise_evidence_when_the_submission_lists_none(tmp_path: Path) -> None:
    ev = Evidence("reference reached", "re-verification of square", "tiny_refs.reference_square")
    record = SubmissionResult("ann", "nb1", Status.FLAGGED, score=0.0, max_score=2.0,
                              exercises=[ExerciseScore("square", 0.0, 2.0, 2.0, False, "", Outcome.TAMPERING, (ev,))])  # fmt: skip
    html = write_report(report_dir=tmp_path, records=[record], score_of=lambda r: r.score, describe=describe_submission).page.read_text()
    assert "<li>reference reached (re-verification of square): tiny_refs.reference_square</li>" in html


def test_a_formula_markdown_puts_in_an_attribute_stays_text() -> None:
    nb = new_notebook()
    nb.cells = [new_markdown_cell('[see](https://example.org "the $x$ title") and ![pic $y$](data:image/png;base64,iVBORw0KGgo=) '
                                  "then $z$ in text.")]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = _render_safely(nb)
    parsed = _parse(body)
    assert not parsed.live, parsed.live
    assert [img["alt"] for img in parsed.math_images] == ["z"]  # only the formula that stands in text
    assert 'title="the $x$ title"' in body and 'alt="pic $y$"' in body  # the others as written
    for tag in re.findall(r"<[a-z][^>]*>", body):
        assert "<" not in tag[1:], tag  # no markup was put inside an attribute


def test_a_notebook_renders_math_up_to_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import autograder.mathrender as mathrender

    monkeypatch.setattr(mathrender, "MAX_MATH_CHARS", 10)
    nb = new_notebook()
    nb.cells = [new_markdown_cell("$abcdef$ then $ghijkl$")]  # 6 + 6 characters of TeX: the second is over 10
    slots = MathSlots()
    slots.take(nb)
    filled = slots.fill(f"<p>{nb.cells[0].source}</p>")
    assert [img["alt"] for img in _parse(filled).math_images] == ["abcdef"]
    assert "<code class=math-source>ghijkl</code>" in filled
