"""A formula wider than the page (under the size bound, so it is an image) keeps the page
from scrolling sideways in headless Chromium: an inline one is shrunk to its paragraph,
a display one scrolls inside its own block (round 4, finding 8)."""

from __future__ import annotations

import warnings
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from tests.browser.test_pages_browser import WIDTH, _no_sideways_scroll, _open, feedback_run, offline  # noqa: F401

from autograder.feedback import write_feedback

pytestmark = pytest.mark.browser
WIDE = r"a\hspace{1500}b"  # ~27,000 px: under MAX_IMAGE_WIDTH_PX, far over the window


def test_a_formula_wider_than_the_page_does_not_widen_it(offline, tmp_path: Path) -> None:  # noqa: F811
    source = tmp_path / "wide.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell(f"Before ${WIDE}$ after.\n\n$${WIDE}$$\n\nand $x^2$.")]), source)
    feedback_run(tmp_path / "run", [source])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (path,) = write_feedback(run_dir=tmp_path / "run").pages
    page = _open(offline, path)
    try:
        boxes = page.evaluate("Array.from(document.querySelectorAll('img.math')).map(i => {"
                              " const r = i.getBoundingClientRect(); return [i.alt, r.width, r.height,"
                              " i.getAttribute('width') * 1]; })")
        scroll_width, inner_width = _no_sideways_scroll(page)
    finally:
        page.close()
    assert offline.refused == [], offline.refused
    inline, display, small = boxes
    assert inline[3] > 20_000 and display[3] > 20_000  # both are images of the full width
    assert inline[1] <= WIDTH and inline[2] <= 30  # shrunk to the paragraph, its height with it
    assert small[0] == "x^2" and small[1] == small[3]  # an ordinary formula keeps its size
    assert scroll_width <= inner_width, (scroll_width, inner_width)
