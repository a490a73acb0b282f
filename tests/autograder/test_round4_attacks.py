"""Round 4 red-team attacks on ``grade --course``, offline math in feedback pages and the
report. Each test performs an attack and asserts the SAFE outcome: a failing test here is
an open hole (see the docstring of each for the root cause)."""

from __future__ import annotations

import csv
import os
import re
import warnings
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from .test_course_grade import ASSIGNMENT, DUE, answer, grade_options, make_course

LATE = "2026-11-20 10:00:00.000000 UTC"  # a day after DUE


# --- 1. forged timestamp.txt: "unreadable" means "on time" --------------------------


def test_an_unreadable_timestamp_is_never_graded_as_on_time(tmp_path: Path) -> None:
    """A late student makes ``timestamp.txt`` something ``read_timestamp`` will not read:
    the job is graded with no timestamp, so the submission is on time and the course's
    late penalty never applies. Stock nbgrader reads every one of these as late (a late
    time padded past 1 KiB, a link to her own file holding it, a hard link to it) or
    refuses to autograde (``Invalid timestamp string``, a directory); only a missing or
    empty file is "no timestamp" in nbgrader too (that baseline is not tested here).

    Root cause: nbcourse.course_jobs/_assignment_jobs (read_timestamp's failure is only a
    note; the job is graded and no stamp is stored)."""
    from autograder.nbcourse import course_jobs, load_course, source_manifest

    root = make_course(tmp_path / "course", notebooks=("00_tiny",))
    release = tinycourse_release()
    sub = root / "submitted"

    def student(name: str) -> Path:
        folder = sub / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(release, str(folder / "00_tiny.ipynb"))
        return folder

    (student("padded") / "timestamp.txt").write_text(LATE + " " * 2000 + "\n")  # stock: strip() -> late
    linked = student("linked")
    (linked / "when.txt").write_text(LATE)
    os.symlink("when.txt", linked / "timestamp.txt")  # stock follows it -> late
    hard = student("hardlinked")
    (hard / "when.txt").write_text(LATE)
    os.link(hard / "when.txt", hard / "timestamp.txt")  # stock reads it -> late
    (student("garbage") / "timestamp.txt").write_text("submitted on time, honest")  # stock: Invalid timestamp -> fail
    (student("folder") / "timestamp.txt").mkdir()  # stock: IsADirectoryError -> fail

    course = load_course(root)
    jobs, stamps = course_jobs(course, source_manifest(course))
    dodged = [j.student for j in jobs if j.status == "pending" and (j.student, j.key) not in stamps]
    assert dodged == [], f"graded with no timestamp (on time) although timestamp.txt is there: {dodged}"


def tinycourse_release() -> nbformat.NotebookNode:
    import tinycourse

    return answer(tinycourse.solution_notebook())


@pytest.mark.slow
def test_a_padded_late_timestamp_still_costs_the_late_penalty(tmp_path: Path) -> None:
    """End to end: the course zeroes late work (``penalty_method = "zero"``). alice and
    mallory both submit a day late; mallory pads her (true) timestamp with 2000 spaces.
    Stock ``nbgrader autograde`` strips the padding and zeroes her like alice; here the
    file is over read_timestamp's 1 KiB cap, so the submission has no timestamp and keeps
    full marks. Root cause: nbcourse._assignment_jobs / read_timestamp (see above). Fix:
    strip before capping (read up to the cap, then refuse only if non-whitespace follows),
    and refuse to grade (as nbgrader does) or grade as late when timestamp.txt exists but
    cannot be read."""
    from nbgrader.api import Gradebook

    from autograder.api import grade_course
    from autograder.nbcourse import ensure_released, load_course, source_manifest

    root = make_course(tmp_path / "course", notebooks=("00_tiny",), extra='c.LateSubmissionPlugin.penalty_method = "zero"\n')
    course = load_course(root)
    ensure_released(course, source_manifest(course))
    with Gradebook(course.db_url, course.course_id) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=DUE)
    release = nbformat.read(str(root / "release" / ASSIGNMENT / "00_tiny.ipynb"), as_version=4)
    for name, stamp in (("alice", LATE), ("mallory", LATE + " " * 2000)):
        folder = root / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(answer(release), str(folder / "00_tiny.ipynb"))
        (folder / "timestamp.txt").write_text(stamp)
    grade_course(course_dir=root, options=grade_options())
    with Gradebook(course.db_url, course.course_id) as gb:
        penalty = {s: gb.find_submission(ASSIGNMENT, s).late_submission_penalty for s in ("alice", "mallory")}
    assert penalty["alice"] == 9, penalty  # the honest late student loses her 9 points
    assert penalty["mallory"] == penalty["alice"], penalty


# --- 2. one student's folder widens every class-wide export --------------------------


@pytest.mark.slow
def test_junk_entries_in_one_submission_do_not_widen_the_class_exports(tmp_path: Path) -> None:
    """mallory hands in her assignment plus 40 empty files ``hw_00`` .. ``hw_39`` beside it in
    ``submitted/mallory/``. Each is an "assignment not in source/" row with its own key
    in the ledger, so grades.csv gets 80 extra columns for every student of the class,
    the report draws 40 more histograms and widens the per-student table by 40 columns
    (thousands of names cost minutes of matplotlib and an unreadable report for the
    whole class). Nothing nbgrader would grade should add a column.

    Root cause: nbcourse._assignment_jobs (one refused row per unknown entry, keyed by
    the entry's name) feeding export.export_grades/report.write_report, which take their
    columns from every key in the ledger. Fix: one row per student for all unknown
    entries (keyed e.g. ``<student>/(other)``), or keep refused unknown-assignment rows out
    of the column set (columns from source_manifest). The same keys reach the LMS export
    (lms.scores_from_run -> write_moodle: one Moodle grade item per key)."""
    from autograder.api import grade_course
    from autograder.export import export_grades
    from autograder.nbcourse import load_course

    root = make_course(tmp_path / "course", notebooks=("00_tiny",))
    from autograder.nbcourse import ensure_released, source_manifest

    course = load_course(root)
    ensure_released(course, source_manifest(course))
    release = nbformat.read(str(root / "release" / ASSIGNMENT / "00_tiny.ipynb"), as_version=4)
    for name in ("alice", "mallory"):
        folder = root / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(answer(release), str(folder / "00_tiny.ipynb"))
    for i in range(40):
        (root / "submitted" / "mallory" / f"hw_{i:02d}").write_text("")
    grade_course(course_dir=root, options=grade_options())
    result = export_grades(run_dir=course.run_dir, course=course.dir, course_id=course.course_id)
    with result.grades_csv.open() as fh:
        header = next(csv.reader(fh))
    from autograder import lms

    scores = lms.scores_from_run(course.run_dir, course=course.dir, course_id=course.course_id)
    lms.write_moodle(tmp_path / "moodle.csv", scores)
    with (tmp_path / "moodle.csv").open() as fh:
        moodle_header = next(csv.reader(fh))
    widths = {"grades.csv columns": len(header), "histograms": len(list((course.run_dir / "report").glob("*.png"))), "moodle columns": len(moodle_header)}
    # student, name, week1, total, week1 status; one histogram; Moodle's id column and week1
    assert widths == {"grades.csv columns": 5, "histograms": 1, "moodle columns": 2}, widths


def test_a_deep_folder_in_one_submission_does_not_stop_the_course(tmp_path: Path) -> None:
    """mallory's submission folder holds a 1200-deep chain of folders. ``course_jobs``
    walks it with ``os.walk`` (recursive on Python 3.11) and RecursionError, not an
    OSError, escapes: ``grade --course`` (and ``status --course``) stop for the whole
    class before anything is graded. (Stock ``nbgrader collect`` copies with
    ``shutil.copytree``, which itself fails past ~500 levels, so such a tree reaches
    submitted/ only when submissions are put there by other means: partly a baseline.)
    The folder mode already survives the same depth inside a zip.

    Root cause: intake._walk (os.walk) called from nbcourse._assignment_jobs, whose
    ``except OSError`` in course_jobs does not cover RecursionError. Fix: walk with an
    explicit stack (as removal.remove_tree does), or catch RecursionError per student."""
    from autograder.nbcourse import course_jobs, load_course, source_manifest
    from autograder.removal import remove_tree

    root = make_course(tmp_path / "course", notebooks=("00_tiny",))
    release = tinycourse_release()
    for name in ("alice", "mallory"):
        folder = root / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(release, str(folder / "00_tiny.ipynb"))
    deep = root / "submitted" / "mallory" / ASSIGNMENT / "deep"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(1200):
            os.mkdir("a", dir_fd=fd)
            nxt = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)
    course = load_course(root)
    try:
        jobs, _ = course_jobs(course, source_manifest(course))
    finally:
        remove_tree(deep)  # pytest's own clean-up (shutil.rmtree) would hit the same recursion
    assert {(j.student, j.status) for j in jobs} >= {("alice", "pending")}


# --- 3. offline math: amplification and characters the page rules forbid -----------


def _render(markdown: str) -> str:
    from autograder.feedback import _render_safely

    nb = new_notebook()
    nb.cells = [new_markdown_cell(markdown)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _render_safely(nb)


def test_math_within_its_budget_does_not_blow_up_the_page() -> None:
    """A notebook of 25 ``matrix`` formulas of ~2000 characters each (inside
    MAX_MATH_CHARS) made of one symbol repeated: each cell is rendered once (lru_cache)
    and pasted ~1000 times, ~1 MB of HTML per formula, so the student's page grows to
    ~25 MB in a second or so (the sanitizer refuses fragments over 8 MB: the math is put
    back after it, with no size check). Several notebooks or an ``@`` cell (~600 bytes
    of HTML per TeX character) make it more.

    Root cause: mathrender.MathSlots.fill charges a formula by its TeX length only, and
    mathrender._environment expands each cell into a full SVG image. Fix: charge the
    budget by the HTML produced (stop at e.g. MAX_FRAGMENT_CHARS), or cap the cells of an
    environment."""
    from autograder.mathrender import MAX_FORMULA_CHARS, MAX_MATH_CHARS
    from autograder.safe_output import MAX_FRAGMENT_CHARS

    body = "&".join(["x"] * 2000)[: MAX_FORMULA_CHARS - 40]
    formula = r"\begin{matrix}" + body.rsplit("&", 1)[0] + r"\end{matrix}"
    assert len(formula) <= MAX_FORMULA_CHARS
    count = MAX_MATH_CHARS // len(formula)
    page = _render("\n\n".join(f"${formula}$" for _ in range(count)))
    assert len(page) <= MAX_FRAGMENT_CHARS, f"{len(page) / 1e6:.1f} MB of HTML from {count * len(formula)} characters of TeX"


def test_one_formula_costs_a_bounded_number_of_mathtext_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2000-character ``matrix`` of distinct two-letter cells makes ~650 mathtext renders
    (each builds a parser, parses twice and converts glyphs to paths: ~10 ms), so it takes
    ~6 s here where the budget assumes ~1 ms a character; 25 of them per notebook are ~3
    minutes of the instructor's feedback run per notebook, per student, with no timeout.
    (Counted with a stub renderer, so the test itself is quick.)

    Root cause: mathrender._environment renders each cell through render_formula/_image
    while MathSlots.fill charges only the TeX length. Fix: charge each mathtext call a
    fixed cost (e.g. 100 characters) against MAX_MATH_CHARS, or cap cells per environment."""
    import string

    import autograder.mathrender as mathrender

    calls = []

    def counting(tex: str):
        calls.append(tex)
        return mathrender._Glyphs("<svg xmlns='http://www.w3.org/2000/svg'/>", 1.0, 1.0, 0.0)

    monkeypatch.setattr(mathrender, "_svg_path", counting)
    mathrender.render_formula.cache_clear()
    cells = [a + b for a in string.ascii_letters for b in string.ascii_letters]
    body = ""
    for cell in cells:
        if len(body) + len(cell) + 1 > mathrender.MAX_FORMULA_CHARS - 30:
            break
        body += ("&" if body else "") + cell
    try:
        mathrender.render_formula(r"\begin{matrix}" + body + r"\end{matrix}")
    finally:
        mathrender.render_formula.cache_clear()
    # one formula of MAX_FORMULA_CHARS characters: as many renders as ~40 ordinary formulas at most
    assert len(calls) <= 40, f"{len(calls)} mathtext renders for one formula"


@pytest.mark.parametrize("bad", ["\u202e", "\u2066", "\x1b", "\x07"])
def test_math_tex_keeps_the_page_rule_for_control_and_bidi_characters(bad: str) -> None:
    """The page rule (safe_output: every control character but newline/tab and the bidi
    overrides are shown as escapes) holds for all of the student's markdown except math:
    formulas are taken out before the sanitizer and put back after it, so a bidi override
    or escape in a formula lands raw in the page, as the image's alt text and, when
    mathtext cannot read the formula, as the ``<code>`` source ("Trojan Source" in the
    feedback page, raw ESC in a page the instructor may ``cat``).

    Root cause: mathrender._image / render_formula / MathSlots.fill use html.escape where
    the rest of the page uses safe_output.html_text. Fix: html_text for the alt text and
    the source shown."""
    page = _render(f"readable: $x{bad}y$ and unreadable: $\\frac{{{bad}$")
    assert bad not in page, f"raw {bad!r} in the page: {page[page.index(bad) - 60 : page.index(bad) + 10]!r}"
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]", page)


@pytest.mark.parametrize(
    "tex",
    [r"x\hspace{99999999999999999999999999999}y", r"\genfrac{}{}{999999999999999999999}{0}{1}{2}", r"\sqrt{x\hspace{9999999999}}"],
    ids=["hspace-wide", "genfrac-tall", "sqrt-wide"],
)
def test_a_formula_cannot_make_an_enormous_image(tex: str) -> None:
    """mathtext takes ``\\hspace`` and ``\\genfrac``'s rule thickness at any size, and the
    image gets that size: ``x\\hspace{1e29}y`` is an ``<img width='18000051...'>`` (1.8e30
    px) and a huge ``\\genfrac`` thickness a solid black bar 1.26e21 px tall, with
    ``img.math{max-width:none}`` keeping it unshrunk: the student's page (which the
    instructor opens too) becomes a black bar or a line wider than any browser lays out,
    and the browser is asked to rasterize an SVG of that size. The widest honest formula of
    MAX_FORMULA_CHARS characters is ~36,000 px wide.

    Root cause: mathrender._svg_path/_image take mathtext's box as is. Fix: refuse (show as
    source) a formula whose box exceeds a bound (e.g. 50,000 x 5,000 px), or clamp
    ``\\hspace``/``\\genfrac`` arguments in to_mathtext."""
    from autograder.mathrender import render_formula

    rendered = render_formula(tex)
    sizes = [(float(w), float(h)) for w, h in re.findall(r"width='([0-9.]+)' height='([0-9.]+)'", rendered.html)]
    assert all(w <= 100_000 and h <= 100_000 for w, h in sizes), sizes


@pytest.mark.slow
def test_a_raw_byte_folder_name_in_submitted_does_not_break_the_instructors_terminal(tmp_path: Path) -> None:
    """A hostile exchange submission collected as ``submitted/<0xff>/`` (a name that is no
    UTF-8: Python sees the lone surrogate ``\\udcff``). It is refused as "not a valid
    nbgrader student id", but the reason quotes the folder name raw, and terminal_text
    leaves lone surrogates alone: the table ``grade --course`` prints at the end (and
    ``status --course`` prints every time) cannot be encoded for a UTF-8 terminal with
    Python's default strict error handler (en_US.UTF-8 and similar locales), so the CLI
    dies with UnicodeEncodeError after grading and ``status`` never works again until the
    folder is removed by hand.

    Root cause: nbcourse.course_jobs (``shown = f"submitted/{entry.name}"`` in the reason)
    and safe_output.terminal_text (no escape for U+DC80..U+DCFF). Fix: escape lone
    surrogates in terminal_text (``\\xNN`` of the raw byte), or ``!r`` the name."""
    from autograder.api import grade_course
    from autograder.cli import format_table

    root = make_course(tmp_path / "course", notebooks=("00_tiny",))
    raw = root / "submitted" / os.fsdecode(b"\xff") / ASSIGNMENT
    raw.mkdir(parents=True)
    nbformat.write(tinycourse_release(), str(raw / "00_tiny.ipynb"))
    run = grade_course(course_dir=root, options=grade_options())
    table = format_table(run.results)
    table.encode("utf-8")  # what print() does on a UTF-8 terminal: UnicodeEncodeError today


_RENDER_LINKS = """
import warnings
warnings.simplefilter("ignore")
from nbformat.v4 import new_markdown_cell, new_notebook
from autograder.feedback import _render_safely
_render_safely(new_notebook(cells=[new_markdown_cell({source})]))
print("rendered")
"""


@pytest.mark.slow
@pytest.mark.parametrize("source", ["'[a](' * 200_000", "'[a]: ' * 160_000"], ids=["open-links", "link-refs"])
def test_feedback_for_a_markdown_cell_of_unclosed_links_is_bounded(source: str) -> None:
    """An 800 kB markdown cell (far under the 64 MB notebook cap, no nesting at all) of
    unclosed links ``[a](`` or empty link definitions ``[a]: ``: nbconvert's markdown
    parser (mistune 3.4) is quadratic on both (80 kB ~25 s, 100 kB ~33 s here), so this
    one cell is ~40 minutes, and ``write_feedback`` renders every student in one loop with
    no time bound: one student stops the feedback run of the class. Round 3's fix bounded
    only the sanitizer's nesting (safe_output.MAX_NESTING), not the markdown step.

    Root cause: feedback._render (HTMLExporter on the student's markdown, in the
    instructor's process, unbounded). Fix: render each notebook in a subprocess with a
    time limit (as grading does), or cap the markdown a notebook may hand to nbconvert."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    try:
        proc = subprocess.run([sys.executable, "-c", _RENDER_LINKS.format(source=source)], cwd=repo,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("rendering one student's notebook did not finish in 30 s")
    assert "rendered" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.slow
def test_the_instructors_assignment_files_are_what_the_tests_read(tmp_path: Path) -> None:
    """The instructor's ``source/week1/`` holds ``expected.json``, which a test cell reads to
    check the answer. Stock ``nbgrader autograde`` copies the assignment's files from
    ``source/`` over the student's ("Overwriting files with master versions from the source
    directory") before it runs the notebook. Here the notebook runs beside the student's
    files only: honest alice, who did not hand the file back, loses the test
    (FileNotFoundError), and mallory, whose softsign is wrong, hands in her own
    ``expected.json`` agreeing with it and gets the point (the notebook is not registered,
    so nbgrader's score stands; a registered one is re-verified, but its tests' data files
    are still the student's). The instructor's copy reaches ``autograded/`` only after
    grading (nbcourse._copy_assignment_files).

    Root cause: nbcourse._assignment_jobs builds ``alongside`` from the student's folder
    alone; pipeline.grade_job/beside.prepare_beside never add ``source/<assignment>/``'s
    files. Fix: put the source folder's non-notebook files into ``beside`` over the
    student's (honouring ``Autograde.exclude_overwriting``), as nbgrader does."""
    from nbformat.v4 import new_code_cell
    from nbgrader.api import Gradebook

    import tinycourse
    from autograder.api import grade_course
    from autograder.nbcourse import ensure_released, load_course, source_manifest

    root = make_course(tmp_path / "course", notebooks=())
    nb = tinycourse.solution_notebook()
    check = ('import json\nwith open("expected.json") as fh:\n    expected = json.load(fh)\n'
             'assert abs(softsign(2.0) - expected["softsign(2)"]) < 1e-9\n')  # fmt: skip
    cell = new_code_cell(check, metadata={"nbgrader": {"grade_id": "test_table", "solution": False, "grade": True,
                                                       "locked": True, "schema_version": 3, "points": 1}})  # fmt: skip
    cell["id"] = "cell-table"
    nb.cells.insert(len(nb.cells) - 1, cell)
    nbformat.write(nb, str(root / "source" / ASSIGNMENT / "01_tiny.ipynb"))
    (root / "source" / ASSIGNMENT / "expected.json").write_text('{"softsign(2)": 0.6666666666666666}')
    course = load_course(root)
    ensure_released(course, source_manifest(course))
    release = nbformat.read(str(root / "release" / ASSIGNMENT / "01_tiny.ipynb"), as_version=4)
    alice = root / "submitted" / "alice" / ASSIGNMENT
    alice.mkdir(parents=True)
    nbformat.write(answer(release), str(alice / "01_tiny.ipynb"))
    mallory = root / "submitted" / "mallory" / ASSIGNMENT
    mallory.mkdir(parents=True)
    nbformat.write(answer(release, softsign="def softsign(x):\n    return x\n"), str(mallory / "01_tiny.ipynb"))
    (mallory / "expected.json").write_text('{"softsign(2)": 2.0}')  # agrees with her wrong softsign
    grade_course(course_dir=root, options=grade_options())
    with Gradebook(course.db_url, course.course_id) as gb:
        table = {s: gb.find_grade("test_table", "01_tiny", ASSIGNMENT, s).score for s in ("alice", "mallory")}
    assert table == {"alice": 1, "mallory": 0}, table
