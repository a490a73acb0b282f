"""nbgrader's formgrader on a course our grader graded, in a real JupyterLab driven by
Playwright in Debian's Chromium (issue #11, item 3).

A tiny class (perfect, partial, blank), handed in to an nbgrader course's ``submitted/``,
is graded in place with ``autograder.api.grade_course`` (``grade --course``; sandbox and
re-verification on). JupyterLab is started inside that course directory; the test opens Nbgrader → Formgrader from Lab's menu, reads the scores our
grader wrote on the Manage Submissions page, opens ``partial``'s submission in the
grading view, gives the hidden softsign test 1.5 of its 2 points (auto score 0) and the
visible answer_lr test 1 point of extra credit, and waits for each save. Then
``python -m autograder export --course`` and stock ``nbgrader export`` must both show the new
total: 6 + 1.5 + 1 = 8.5 (hand-derived; see ``graded_course``).

Screenshots (test-output/formgrader/, git-ignored): ``submissions.png`` (the list with
our scores), ``grading_view.png`` (the saved manual score and extra credit),
``submissions_after.png`` (the list with the new total).

Skipped, with the reason, only when no Chromium is installed (``make browser``).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tinycourse
from graded_course import EXPECTED_SCORES, MAX_SCORE, STUDENTS, graded_course
from instructor_lab import instructor_env, instructor_lab
from tests.widgets.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
OUTPUT_DIR = REPO / "test-output" / "formgrader"
STEM = tinycourse.STEM
TIMEOUT_MS = 45_000
PANEL_IFRAME = "#jp-main-dock-panel iframe"  # formgrader's Lab panel embeds its pages in an iframe
EXPORT_TIMEOUT_S = 120
COURSE_ID = "dl-course"  # autograder/config/nbgrader_config.py, which the course's config starts from

STUDENT = "partial"
MANUAL_CELL, MANUAL_SCORE, AUTO_SCORE = "test_softsign_hidden", 1.5, 0.0  # partial left softsign as the stub
EXTRA_CELL, EXTRA_CREDIT = "test_answer_lr", 1.0
NEW_TOTAL = EXPECTED_SCORES[STUDENT] - AUTO_SCORE + MANUAL_SCORE + EXTRA_CREDIT  # 8.5


def _shown(score: float) -> str:
    """How formgrader prints a score and the maximum (roundToPrecision: no trailing .0)."""
    return f"{score:g} / {MAX_SCORE:g}"


@pytest.fixture(scope="module")
def chromium() -> str:
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if executable is None:
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser` (Debian's chromium package) to enable this test")
    return executable


@pytest.fixture(scope="module")
def course(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:  # chromium first: skip before grading
    start = time.monotonic()
    course_dir, run_dir = graded_course(tmp_path_factory.mktemp("formgrader-class"))
    print(f"timing: graded {len(STUDENTS)} students in {time.monotonic() - start:.1f} s")
    yield course_dir, run_dir


def _submission_scores(frame) -> dict[str, str]:
    """{student id: "score / max"} as the Manage Submissions table shows them, once its
    script has filled the table (it sets ``models.loaded`` last)."""
    frame.wait_for_function("() => window.models !== undefined && window.models.loaded === true")
    rows = frame.locator("tr:has(td.student-id)")
    return {rows.nth(i).locator("td.student-id").inner_text().strip(): rows.nth(i).locator("td.score").inner_text().strip()
            for i in range(rows.count())}  # fmt: skip


def _save(page, field, value: str) -> dict:
    """Type ``value`` into a formgrader score field, leave it (formgrader saves on change)
    and return the gradebook's answer to the save."""
    with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT") as saved:
        field.fill(value)
        field.press("Tab")
    assert saved.value.status == 200, f"formgrader's save answered {saved.value.status}: {saved.value.text()[:500]}"
    return saved.value.json()


def _grade_in_formgrader(chromium: str, lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(lab.url("/lab"))
            page.wait_for_selector("#jp-main-statusbar")
            # The instructor's way in: Lab's Nbgrader menu (the lab extension) opens formgrader in a panel.
            page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
            page.locator(".lm-Menu-itemLabel", has_text="Formgrader").first.click()
            panel = page.frame_locator(PANEL_IFRAME).first
            panel.locator("td", has_text=STEM).first.wait_for()  # Manage Assignments lists the course's notebook
            frame = page.locator(PANEL_IFRAME).first.element_handle().content_frame()

            # Manage Submissions does not link from Manage Assignments here: its "# Submissions" counts
            # submitted/ folders, which our grader does not write (see the report); the URL is formgrader's own.
            frame.goto(f"{lab.base_url}/formgrader/manage_submissions/{STEM}")
            before = _submission_scores(frame)
            page.screenshot(path=str(OUTPUT_DIR / "submissions.png"))
            assert before == {s: _shown(EXPECTED_SCORES[s]) for s in STUDENTS}

            # Student name → the student's notebooks → the grading view of this notebook.
            panel.locator(f"tr:has(td.student-id:text-is('{STUDENT}')) td.student-name a").click()
            panel.locator("td a", has_text=STEM).click()
            manual = panel.locator(f"input.score#{MANUAL_CELL}")
            # Formgrader's script shows the auto score as the field's placeholder once it has
            # loaded the grades and bound its save handlers: typing before that saves nothing.
            expect(manual).to_have_attribute("placeholder", f"{AUTO_SCORE:g}", timeout=TIMEOUT_MS)
            assert manual.input_value() == "", "a manual score was there before the test entered one"
            manual.scroll_into_view_if_needed()
            saved = _save(page, manual, f"{MANUAL_SCORE:g}")
            assert (saved["name"], saved["student"], saved["manual_score"], saved["auto_score"]) == (
                MANUAL_CELL, STUDENT, MANUAL_SCORE, AUTO_SCORE)
            extra = panel.locator(f"input.extra-credit#{EXTRA_CELL}_extra_credit")
            saved = _save(page, extra, f"{EXTRA_CREDIT:g}")
            assert (saved["name"], saved["extra_credit"], saved["manual_score"]) == (EXTRA_CELL, EXTRA_CREDIT, None)
            manual.scroll_into_view_if_needed()
            page.wait_for_timeout(300)  # the saved tick's fade-in
            page.screenshot(path=str(OUTPUT_DIR / "grading_view.png"))

            frame.goto(f"{lab.base_url}/formgrader/manage_submissions/{STEM}")
            after = _submission_scores(frame)
            page.screenshot(path=str(OUTPUT_DIR / "submissions_after.png"))
            assert after == {**before, STUDENT: _shown(NEW_TOTAL)}
        finally:
            browser.close()


def _run_exports(course_dir: Path, run_dir: Path, env: dict[str, str]) -> Path:
    """Our export and stock ``nbgrader export`` side by side (both only read the gradebook);
    returns nbgrader's CSV."""
    nbgrader_csv = run_dir.parent / "nbgrader-grades.csv"
    commands = {
        "python -m autograder export": ([sys.executable, "-m", "autograder", "export", "--course", str(course_dir)], REPO),
        "nbgrader export": ([str(Path(sys.executable).parent / "nbgrader"), "export", "--to", str(nbgrader_csv)], course_dir),
    }
    procs = {name: subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, (cmd, cwd) in commands.items()}  # fmt: skip
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=EXPORT_TIMEOUT_S)
        assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{out[-3000:]}"
    return nbgrader_csv


def test_manual_score_from_formgrader_reaches_both_exports(chromium: str, course: tuple[Path, Path], tmp_path: Path) -> None:
    from autograder.course import CourseDir
    from autograder.gradebook import Ledger
    from autograder.lms import scores_from_run

    course_dir, run_dir = course
    ledger = {s: Ledger(run_dir).read(s, STEM) for s in STUDENTS}
    assert {s: r.score for s, r in ledger.items()} == EXPECTED_SCORES  # our grader, against the hand count

    start = time.monotonic()
    with instructor_lab(course_dir, tmp_path / "jupyter") as lab:
        _grade_in_formgrader(chromium, lab)
        log = lab.log.read_text()
    print(f"timing: JupyterLab + formgrader session {time.monotonic() - start:.1f} s")
    assert "Traceback" not in log, f"the Jupyter server logged an error:\n{log[-3000:]}"

    start = time.monotonic()
    nbgrader_csv = _run_exports(course_dir, run_dir, instructor_env(tmp_path / "jupyter"))
    print(f"timing: both exports {time.monotonic() - start:.1f} s")

    ours = {r["student"]: r for r in csv.DictReader((run_dir / "grades.csv").open(encoding="utf-8"))}
    assert {s: (float(ours[s][STEM]), float(ours[s]["total"])) for s in STUDENTS} == {
        s: (t, t) for s, t in {**EXPECTED_SCORES, STUDENT: NEW_TOTAL}.items()}
    per_exercise = {r["exercise"]: float(r["score"]) for r in csv.DictReader((run_dir / "submissions.csv").open(encoding="utf-8"))
                    if r["student"] == STUDENT}  # fmt: skip
    # softsign: 0 visible + 1.5 manual; answer_lr: 1 visible + 1 extra credit + 2 hidden.
    assert per_exercise == {"square": 3.0, "softsign": MANUAL_SCORE, "answer_lr": 3.0 + EXTRA_CREDIT}

    stock = {r["student_id"]: r for r in csv.DictReader(nbgrader_csv.open(encoding="utf-8"))}
    assert {s: (r["assignment"], float(r["score"]), float(r["max_score"])) for s, r in stock.items()} == {
        s: (STEM, t, MAX_SCORE) for s, t in {**EXPECTED_SCORES, STUDENT: NEW_TOTAL}.items()}

    # The LMS imports read the same total.
    assert scores_from_run(run_dir, course=CourseDir.at(course_dir), course_id=COURSE_ID)[STUDENT][STEM] == NEW_TOTAL
