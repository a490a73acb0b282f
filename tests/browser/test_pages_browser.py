"""Feedback pages and the class report in headless Chromium, opened from ``file://`` with
every network request refused (issue #11, item 6).

The feedback page shows the course's activations notebook (fractions, cases) and the
markdown cells of the CNN and RNN notebooks that hold environments (matrices, an aligned
block); every formula must be an image that loaded, no raw
TeX may be left in the visible text, and the page must not scroll sideways at 1280 px.
One formula's rendering is compared with matplotlib's own PNG of it (an independent
renderer: Agg from the font files, against our SVG paths drawn by Chromium). The report
is built for 1 notebook and for 20 notebooks x 300 students (synthetic ledger records).
Screenshots go to test-output/pages/ (git-ignored).

Skipped, with the reason, only when no Chromium is installed (``make browser``).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "autograder" / "fixtures"))

from synthetic_class import class_records, feedback_run  # noqa: E402

from autograder.export import describe_submission  # noqa: E402
from autograder.feedback import write_feedback  # noqa: E402
from autograder.mathrender import FONT_PX  # noqa: E402
from autograder.report import write_report  # noqa: E402

pytestmark = pytest.mark.browser
OUTPUT_DIR = REPO / "test-output" / "pages"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
WIDTH = 1280
ACTIVATIONS = REPO / "notebooks" / "04_activations.ipynb"  # whole: fractions, cases, text and code
ENVIRONMENTS = [REPO / "notebooks" / n for n in ("06_cnn.ipynb", "07_rnn.ipynb")]  # their matrices, aligned blocks
# The oracle's count of formulas: the plain regular expression used to survey the course,
# not the parser under test (it agrees with it on these notebooks: no $ in code spans).
_NAIVE_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.S)
COMPARED = "g(z) = \\sigma(z) = \\frac{1}{1 + e^{-z}}."  # a display formula of 04_activations


class Offline:
    """A browser context that serves ``file:`` and refuses (and records) everything else."""

    def __init__(self, context) -> None:
        self.context = context
        self.refused: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith("file:"):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()


@pytest.fixture(scope="module")
def offline() -> Iterator[Offline]:
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if executable is None:
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser` (Debian's chromium package) to enable this test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": WIDTH, "height": 900}, service_workers="block")
        try:
            yield Offline(context)
        finally:
            context.close()
            browser.close()


def _open(offline: Offline, path: Path):
    page = offline.context.new_page()
    page.set_default_timeout(20_000)
    page.goto(path.as_uri(), wait_until="load")
    return page


def _no_sideways_scroll(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def _ink_box(png: bytes) -> tuple[int, int]:
    """(width, height) of the dark pixels of an image."""
    from PIL import Image

    gray = Image.open(io.BytesIO(png)).convert("L")
    box = gray.point(lambda v: 255 if v < 160 else 0).getbbox()
    assert box, "no ink"
    return box[2] - box[0], box[3] - box[1]


def _matplotlib_ink(tex: str) -> tuple[int, int]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import math_to_image

    buf = io.BytesIO()
    with matplotlib.rc_context({"mathtext.fontset": "cm"}):
        math_to_image(f"${tex}$", buf, prop=FontProperties(size=FONT_PX), dpi=72, format="png")
    return _ink_box(buf.getvalue())


def test_feedback_page_shows_rendered_math_offline(offline: Offline, tmp_path: Path) -> None:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    notebooks = [ACTIVATIONS]
    for source in ENVIRONMENTS:  # only the cells with environments: the page stays quick to build
        nb = nbformat.read(source, as_version=4)
        nb.cells = [c for c in nb.cells if c.cell_type == "markdown" and "\\begin{" in c.source]
        notebooks.append(tmp_path / source.name)
        nbformat.write(nb, notebooks[-1])
    feedback_run(tmp_path / "run", notebooks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (path,) = write_feedback(run_dir=tmp_path / "run").pages
    expected = sum(len(_NAIVE_MATH.findall(c.source)) for nb in notebooks
                   for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "markdown")  # fmt: skip
    page = _open(offline, path)
    try:
        formulas = page.evaluate("document.querySelectorAll('.math, .math-display').length"
                                 " - document.querySelectorAll('.math .math, .math-display .math, .math .math-display').length")
        broken = page.evaluate("Array.from(document.querySelectorAll('img.math'))"
                               ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)")
        # The markdown's visible text (code cells may hold TeX as code, e.g. a plot label: it stays code).
        text = page.evaluate("Array.from(document.querySelectorAll('.text_cell_render')).map(c => c.innerText).join('\\n')")
        markdown_cells = page.evaluate("document.querySelectorAll('.text_cell_render').length")
        scroll_width, inner_width = _no_sideways_scroll(page)
        page.screenshot(path=str(OUTPUT_DIR / "feedback_top.png"))
        page.locator("span.math-cases").first.scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT_DIR / "feedback_cases.png"))
        page.locator("span.math-bmatrix").first.scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT_DIR / "feedback_matrices.png"))
        page.locator("span.math-aligned").first.scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT_DIR / "feedback_lstm_aligned.png"))
        compared = page.locator(f"img.math[alt={COMPARED!r}]")
        ours = _ink_box(compared.screenshot())
    finally:
        page.close()
    assert offline.refused == [], offline.refused
    assert formulas == expected, (formulas, expected)
    assert broken == [], broken[:5]
    assert markdown_cells > 10 and "$\\hat" not in text and "$" not in text and "\\frac" not in text and "\\begin" not in text
    assert scroll_width <= inner_width, (scroll_width, inner_width)
    reference = _matplotlib_ink(COMPARED)
    assert abs(ours[0] - reference[0]) <= 3 and abs(ours[1] - reference[1]) <= 3, (ours, reference)


@pytest.mark.parametrize(("notebooks", "students"), [(20, 300), (1, 12)])
def test_report_fits_the_window_for_any_class(offline: Offline, tmp_path: Path, notebooks: int, students: int) -> None:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    records = class_records(notebooks=notebooks, students=students)
    report = write_report(report_dir=tmp_path, records=records, score_of=lambda r: r.score, describe=describe_submission)
    page = _open(offline, report.page)
    try:
        scroll_width, inner_width = _no_sideways_scroll(page)
        figures = page.evaluate("Array.from(document.querySelectorAll('.hists figure')).map(f => {"
                                " const r = f.getBoundingClientRect(), i = f.querySelector('img');"
                                " return [Math.round(r.top), r.right, i.complete && i.naturalWidth > 0]; })")
        rows = page.evaluate("document.querySelectorAll('table.students tr').length")
        page.screenshot(path=str(OUTPUT_DIR / f"report_{notebooks}x{students}_top.png"))
        page.evaluate("document.querySelector('table.students').scrollIntoView()")  # its header row at the top
        page.screenshot(path=str(OUTPUT_DIR / f"report_{notebooks}x{students}_students.png"))
    finally:
        page.close()
    assert offline.refused == [], offline.refused
    assert scroll_width <= inner_width, (scroll_width, inner_width)
    assert len(figures) == notebooks and all(loaded and right <= inner_width for _, right, loaded in figures), figures
    if notebooks > 5:
        assert len({top for top, _, _ in figures}) > 1  # the grid wrapped onto several rows
    assert rows == students + 1
