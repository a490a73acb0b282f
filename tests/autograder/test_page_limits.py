"""Bounds on the work and size of a feedback page (round 4 findings 6-10): mathtext renders
and math HTML per formula and per notebook, oversized formula boxes, the render cache's
size, markdown past its caps, and nbconvert's time per notebook."""

from __future__ import annotations

import html
import os
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

import autograder.feedback as feedback
import autograder.mathrender as mathrender
from autograder.feedback import _render_safely, write_feedback
from autograder.mathrender import MathBudget, MathSlots, render_formula
from autograder.page_limits import MAX_MARKDOWN_CELL_CHARS, cap_markdown, run_with_time_limit
from synthetic_class import feedback_run

REPO = Path(__file__).resolve().parents[2]
_FAKE_SVG = "<svg xmlns='http://www.w3.org/2000/svg'/>"


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every mathtext render, counted with a stub that draws nothing (the cache emptied)."""
    calls: list[str] = []

    def counting(tex: str) -> mathrender._Glyphs:
        calls.append(tex)
        return mathrender._Glyphs(_FAKE_SVG, 10.0, 10.0, 0.0)

    monkeypatch.setattr(mathrender, "_svg_path", counting)
    render_formula.cache_clear()
    yield calls
    render_formula.cache_clear()


def _quiet_render(nb: nbformat.NotebookNode, **kwargs: float) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _render_safely(nb, **kwargs)


# --- math --------------------------------------------------------------------------------


def test_an_honest_matrix_renders_every_cell(renders: list[str]) -> None:
    out = render_formula(r"A = \begin{bmatrix}a&b&c\\d&e&f\\g&h&i\end{bmatrix}")
    assert out.ok and out.html.count("<img") == 10  # "A =" and nine cells
    assert len(renders) == 10


def test_an_environment_past_its_cell_cap_is_source_without_rendering(renders: list[str]) -> None:
    tex = r"\begin{matrix}" + "&".join(["x"] * (mathrender.MAX_ENV_CELLS + 1)) + r"\end{matrix}"
    out = render_formula(tex)
    assert not out.ok and "<img" not in out.html and "math-source" in out.html
    assert renders == []


def test_a_notebook_spends_at_most_its_renders(renders: list[str]) -> None:
    nb = new_notebook(cells=[new_markdown_cell(" ".join(f"$v_{i}$" for i in range(8)))])
    slots = MathSlots()
    slots.take(nb)
    filled = slots.fill(nb.cells[0].source, MathBudget(renders=5))
    assert filled.count("<img") == 5 and len(renders) == 5
    assert filled.count("<code class=math-source>") == 3 and filled.index("v_4") < filled.index("v_5")


def test_a_notebook_past_its_time_shows_source_without_rendering(renders: list[str]) -> None:
    slots = MathSlots()
    nb = slots.take(new_notebook(cells=[new_markdown_cell("$a$ and $b$")]))
    filled = slots.fill(nb.cells[0].source, MathBudget(deadline=time.monotonic() - 1))
    assert renders == [] and filled == "<code class=math-source>a</code> and <code class=math-source>b</code>"


def test_math_html_past_the_notebook_budget_is_source_from_there_on(renders: list[str]) -> None:
    one = len(render_formula("w").html)  # the stub makes every single-symbol formula this long
    slots = MathSlots()
    nb = slots.take(new_notebook(cells=[new_markdown_cell("$a$ $b$ $c$ $d$")]))
    filled = slots.fill(nb.cells[0].source, MathBudget(html_chars=2 * one + 1))
    assert filled.count("<img") == 2
    assert filled.endswith("<code class=math-source>c</code> <code class=math-source>d</code>")


def test_the_cache_is_bounded_by_the_html_it_holds(renders: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    one = len(render_formula("w").html)
    render_formula.cache_clear()
    renders.clear()
    monkeypatch.setattr(mathrender, "MAX_CACHE_CHARS", 2 * one)
    for tex in ("a", "b", "a", "c", "a", "b"):
        render_formula(tex)
    # a, b rendered; a cached; c drops the least recent (b); a cached; b again rendered
    assert renders == ["a", "b", "c", "b"]


def test_a_formula_in_an_attribute_keeps_the_page_rule() -> None:
    body = _quiet_render(new_notebook(cells=[new_markdown_cell('[see](https://example.org "t $x\u202ey$") ok')]))
    assert "\u202e" not in body and "\\u202e" in body


# --- markdown ----------------------------------------------------------------------------


def test_markdown_past_the_cell_cap_is_shown_as_escaped_text() -> None:
    tail = "<b>bold</b> [a](" * 2000
    source = "# Title\n\n" + "word " * (MAX_MARKDOWN_CELL_CHARS // 5) + "\n" + tail
    body = _quiet_render(new_notebook(cells=[new_markdown_cell(source)]))
    assert "<h1" in body and "<b>bold</b>" not in body  # the head as markdown, the rest never as markup
    (shown,) = re.findall(r"<span class=md-overflow>(.*?)</span>", body, re.S)
    assert html.unescape(shown).count("<b>bold</b> [a](") == 2000


def test_a_notebook_past_the_total_cap_keeps_later_cells_as_text() -> None:
    nb = new_notebook(cells=[new_markdown_cell("a" * 9000 + "\n") for _ in range(12)] + [new_markdown_cell("*late*")])
    overflow = cap_markdown(nb)
    assert sum(len(c.source) for c in nb.cells) < 100_000 + 13 * 60  # the kept markdown and placeholders
    assert overflow.pieces[-1] == "*late*" and "<em>" not in overflow.fill(nb.cells[-1].source)


def test_a_notebook_past_its_time_is_shown_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feedback, "_convert", lambda nb: time.sleep(60) or "")
    nb = new_notebook(cells=[new_markdown_cell("<script>alert(1)</script> $x$")])
    start = time.monotonic()
    body = _quiet_render(nb, seconds=1)
    assert time.monotonic() - start < 10
    assert "took longer than 1 s" in body and "<script>" not in body and "&lt;script&gt;alert(1)" in body


def test_a_child_that_fails_or_finishes_is_told_apart() -> None:
    assert run_with_time_limit(lambda: "é \udcff" * 3, seconds=30).text == "é \udcff" * 3
    failed = run_with_time_limit(lambda: str(1 / 0), seconds=30)
    assert failed.text is None and not failed.timed_out
    exited = run_with_time_limit(lambda: os._exit(0) or "", seconds=30)  # exit 0 with nothing said: still a text
    assert exited.text == ""
    slow = run_with_time_limit(lambda: time.sleep(30) or "", seconds=0.5)
    assert slow.text is None and slow.timed_out
    with pytest.raises(ValueError, match="seconds must be positive"):
        run_with_time_limit(lambda: "", seconds=0)


def test_one_stalled_notebook_does_not_stop_the_feedback_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stalled = tmp_path / "stall.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("STALL here")]), str(stalled))
    honest = tmp_path / "honest.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("The loss $x^2$.")]), str(honest))
    feedback_run(tmp_path / "run", [stalled], student="mallory")
    feedback_run(tmp_path / "run", [honest], student="ada")
    convert = feedback._convert
    monkeypatch.setattr(feedback, "_convert", lambda nb: time.sleep(60) or "" if "STALL" in nb.cells[0].source else convert(nb))
    monkeypatch.setattr(feedback, "RENDER_SECONDS", 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pages = {p.stem: p.read_text() for p in write_feedback(run_dir=tmp_path / "run").pages}
    assert set(pages) == {"ada", "mallory"}
    assert "took longer than 3 s" in pages["mallory"] and "2 / 4" in pages["mallory"] and "STALL here" in pages["mallory"]
    assert "took longer" not in pages["ada"] and "<img class='math" in pages["ada"]
