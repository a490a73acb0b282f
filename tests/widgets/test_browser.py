"""The learning-rate explorer in a real JupyterLab, driven in Debian's Chromium by Playwright.

The test starts its own JupyterLab on 127.0.0.1 (free port, a token it chooses, a temp
root and temp config/data/runtime/IPython dirs, so nothing is read from the user's
Jupyter set-up), opens the gradient-descent notebook, runs the setup cell and the cell
that builds the explorer, drags the learning-rate slider to the far right, and checks
that the rendered plot changed and the verdict became "diverged". A screenshot goes to
test-output/widgets/ (git-ignored).

Notebook: notebooks/02_gradient_descent.ipynb when one of its code cells builds
``learning_rate_explorer(``, else a two-cell fixture notebook written here; the test
prints which. Only the setup and explorer cells are run, so the student release (whose
answer cells raise NotImplementedError) works as well as the instructor version.

Skipped, with the reason, only when no Chromium is installed (``make browser`` installs
Debian's package); Playwright never downloads a browser here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.lab_server import jupyter_lab

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_02 = REPO / "notebooks" / "02_gradient_descent.ipynb"
OUTPUT_DIR = REPO / "test-output" / "widgets"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
EXPLORER_CALL = "learning_rate_explorer("
TIMEOUT_MS = 45_000

pytestmark = pytest.mark.browser


def _fixture_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%matplotlib inline\nimport numpy as np", metadata={"nbgrader": {"grade_id": "setup"}}),
        nbformat.v4.new_code_cell("from course_lib.widgets import learning_rate_explorer\n\n"
                                  "learning_rate_explorer(surface=\"ravine\", optimizer=\"sgd\", lr=0.01)"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


def _choose_notebook() -> tuple[str, nbformat.NotebookNode]:
    if NOTEBOOK_02.exists():
        nb = nbformat.read(NOTEBOOK_02, as_version=4)
        if any(c.cell_type == "code" and EXPLORER_CALL in c.source for c in nb.cells):
            return "notebooks/02_gradient_descent.ipynb", nb
    return "fixture notebook (notebooks/02 has no learning_rate_explorer cell yet)", _fixture_notebook()


def _cells_to_run(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the setup cell (grade_id "setup") and the first cell that builds the explorer."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    setup = [i for i in code if nb.cells[i].metadata.get("nbgrader", {}).get("grade_id") == "setup"]
    explorer = next(i for i in code if EXPLORER_CALL in nb.cells[i].source)
    return [*setup[:1], explorer]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path, Path]]:
    """A JupyterLab server of our own: (base_url, token, root_dir, log_file); stopped afterwards."""
    tmp_path = tmp_path_factory.mktemp("lab")
    root = tmp_path / "root"
    home = tmp_path / "jupyter"
    root.mkdir()
    (home / "config" / "labconfig").mkdir(parents=True)
    # The "official Jupyter news?" toast would cover part of the page.
    (home / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    # No virtual windowing: every cell stays in the DOM, so the test can address cells by index.
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_WIDGETS", "JUPYTER_TOKEN", "JUPYTER_CONFIG_PATH")}
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])), MPLBACKEND="Agg")
    try:
        with jupyter_lab(root=root, home=home, env=env, log=tmp_path / "lab.log", start_timeout=30) as server:
            yield server.base_url, server.token, root, server.log
    except RuntimeError as exc:  # the server did not start: the test fails, with its log
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """A headless Chromium (Debian's, never a downloaded one) with a fresh profile."""
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if executable is None:
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser` (Debian's chromium package) to enable this test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=executable, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()


def _open_and_run(browser, lab, nb: nbformat.NotebookNode, name: str, run: list[int]):
    """Open ``nb`` (saved as ``name``) in JupyterLab and run the cells ``run`` one by one."""
    base, token, root, _ = lab
    nbformat.write(nb, root / name)
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/lab/tree/{name}?token={token}&reset")
    page.wait_for_selector("#jp-main-statusbar >> text=Idle")  # kernel started and connected
    cells = page.locator(".jp-Notebook .jp-Cell")
    for index in run:
        cells.nth(index).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
    return page


def test_learning_rate_slider_redraws_the_plot_in_jupyterlab(browser, lab):  # browser first: skip before starting a server
    which, nb = _choose_notebook()
    print(f"browser test notebook: {which}")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page = _open_and_run(browser, lab, nb, "gradient_descent.ipynb", _cells_to_run(nb))
    try:
        plot = page.locator(".course-explorer-plot")
        plot.wait_for(state="visible")
        verdict = page.locator(".course-explorer-verdict")
        page.wait_for_function("document.querySelector('.course-explorer-plot').naturalWidth > 0")
        plot.scroll_into_view_if_needed()
        before_src = plot.get_attribute("src")
        before_png = plot.screenshot()
        assert "diverged" not in verdict.inner_text()

        # Drag the learning-rate handle to the right end of its track (lr ~ 10).
        handle = page.locator(".course-lr-slider .noUi-handle")
        track = page.locator(".course-lr-slider .noUi-target").bounding_box()
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(track["x"] + track["width"] * 0.98, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()

        page.wait_for_function("document.querySelector('.course-explorer-verdict').innerText.includes('diverged')")
        page.wait_for_function(f"document.querySelector('.course-explorer-plot').src !== {json.dumps(before_src)}")
        page.wait_for_timeout(300)  # let the new image decode before the screenshot
        after_png = plot.screenshot()
        readout = page.locator(".course-lr-slider .widget-readout").inner_text()
        page.screenshot(path=str(OUTPUT_DIR / "lr_explorer_jupyterlab.png"), full_page=True)
        (OUTPUT_DIR / "lr_explorer_plot_before.png").write_bytes(before_png)
        (OUTPUT_DIR / "lr_explorer_plot_after.png").write_bytes(after_png)
    finally:
        page.close()

    assert after_png != before_png, "the plot's pixels did not change after moving the slider"
    assert float(readout) > 1.0, f"slider readout {readout!r}: the drag did not move the learning rate"
    assert "Traceback" not in lab[3].read_text()


def _epoch(page) -> int:
    return int(page.locator(".course-playground-status").inner_text().split()[-1])


def test_playground_trains_live_and_pauses_in_jupyterlab(browser, lab):
    nb = _fixture_notebook()
    nb.cells[1] = nbformat.v4.new_code_cell("from course_lib.widgets import playground\n\nplayground(dataset=\"xor\")")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    page = _open_and_run(browser, lab, nb, "playground.ipynb", [0, 1])
    try:
        plot = page.locator(".course-playground-plot")
        plot.wait_for(state="visible")
        page.wait_for_function("document.querySelector('.course-playground-plot').naturalWidth > 0")
        plot.scroll_into_view_if_needed()
        before_png = plot.screenshot()
        assert _epoch(page) == 0
        page.locator(".course-playground-train").click()
        # Epochs advance while the kernel stays responsive to the next click.
        page.wait_for_function("parseInt(document.querySelector('.course-playground-status').innerText.split(' ').pop()) >= 30")
        page.locator(".course-playground-train").click()  # Pause
        page.wait_for_function("document.querySelector('.course-playground-train').innerText.includes('Train')")
        paused_at = _epoch(page)
        page.wait_for_timeout(1000)
        still = _epoch(page)
        page.wait_for_timeout(300)
        after_png = plot.screenshot()
        page.screenshot(path=str(OUTPUT_DIR / "playground_jupyterlab.png"), full_page=True)
    finally:
        page.close()

    assert paused_at >= 30 and still == paused_at, f"paused at epoch {paused_at}, one second later {still}"
    assert after_png != before_png, "the decision boundary did not change while training"
