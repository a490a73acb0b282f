"""Feedback step: one HTML page per student from the graded notebooks.

The page lists, per assignment, the status (flagged only with its evidence and where
it was found), the score, outcome and what to fix per exercise, and the repairs made
to the notebook, followed by the graded notebooks rendered with nbconvert. Hidden test
source never reached the student's kernel (the graded notebook holds a placeholder);
the page says "source not shown" unless ``show_hidden``, which restores the
instructor's source from the course. Instructor-only review notes are not shown.

Math in markdown cells is typeset here (``autograder.mathrender``: SVG images made by
matplotlib's mathtext), so a page shows its formulas opened from disk with no network and
no script; the page loads nothing from elsewhere.

A notebook is the student's, so showing it is bounded (``autograder.page_limits``):
markdown past its size caps is shown as text, nbconvert and the sanitizer run in a forked
child with RENDER_SECONDS (past them, the notebook's cells are shown as text), and the
math has its budget. One student's notebook cannot stall the feedback run of the class.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from autograder.cells import is_grade, nbgrader_meta
from autograder.course import CourseDir
from autograder.export import describe_submission
from autograder.gradebook import Ledger, existing_run_dir
from autograder.mathrender import MATH_CSS, MathSlots, page_text
from autograder.page_limits import (
    MARKDOWN_CSS,
    MAX_TEXT_SHOWN,
    RENDER_SECONDS,
    cap_markdown,
    run_with_time_limit,
)
from autograder.pipeline import HIDDEN_PLACEHOLDER
from autograder.safe_output import html_text, sanitize_html

if TYPE_CHECKING:
    from nbconvert import HTMLExporter

__all__ = ["FeedbackResult", "hide_hidden_tests", "show_hidden_tests", "write_feedback"]

_HIDDEN = re.compile(r"^[ \t]*#+\s*BEGIN HIDDEN TESTS.*?^[ \t]*#+\s*END HIDDEN TESTS[^\n]*\n?", re.S | re.M)


@dataclass(frozen=True)
class FeedbackResult:
    pages: tuple[Path, ...]  # one per student


def hide_hidden_tests(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        points = nbgrader_meta(cell).get("points", 0)
        shown = f"# hidden tests ({points} points): source not shown\n"
        if is_grade(cell) and cell.source == HIDDEN_PLACEHOLDER:
            cell.source = shown
        elif is_grade(cell) and "HIDDEN TESTS" in cell.source:
            cell.source = _HIDDEN.sub(shown, cell.source)
    return nb


def show_hidden_tests(nb: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The instructor's hidden test source back in place of the placeholder."""
    canonical = {nbgrader_meta(c).get("grade_id"): c.source for c in source.cells}
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if is_grade(cell) and cell.source == HIDDEN_PLACEHOLDER and gid in canonical:
            cell.source = canonical[gid]
    return nb


def _convert(nb: nbformat.NotebookNode) -> str:
    """The notebook through nbconvert and the sanitizer: an inert HTML fragment, its
    placeholders (math, long markdown) still in place. The notebook is the student's, so
    its markdown, HTML and JavaScript outputs are sanitized like any untrusted page."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            for mime in [
                m for m in data if "javascript" in m or m.startswith("application/vnd.jupyter.widget")
            ]:
                del data[mime]
    body, _ = _exporter().from_notebook_node(nb)
    return sanitize_html(body)


@functools.cache
def _exporter() -> HTMLExporter:
    """nbconvert's exporter, its templates loaded and compiled once in this process (by an
    empty notebook of ours), so each forked child starts with them: ~0.4 s saved a notebook."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="basic")
    exporter.from_notebook_node(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("*a*")]))
    return exporter


def _render(nb: nbformat.NotebookNode, slots: MathSlots | None = None) -> str:
    """The graded notebook as an inert HTML fragment, in this process and with no time
    bound (``_render_safely`` bounds it). The formulas of its markdown cells (swapped for
    ``slots``' placeholders, here when no ``slots`` are given) are put back after the
    sanitizer, as images we rendered: never as the student's markup."""
    if slots is None:
        slots = MathSlots()
        slots.take(nb)
    return slots.fill(_convert(nb))


_ATTACHMENT = re.compile(r"\(attachment:[^)]*\)")


def _convert_safely(nb: nbformat.NotebookNode) -> str:
    """``_convert``, never failing: a markdown cell naming an attachment it does not carry
    (left by copying a cell between notebooks) is converted without the image; a notebook
    nbconvert still cannot convert is said so."""
    try:
        return _convert(nb)
    except Exception:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _ATTACHMENT.sub("()", cell.source)
                cell.pop("attachments", None)
    try:
        return _convert(nb)
    except Exception as exc:
        return f"<p><em>This notebook could not be shown ({html_text(type(exc).__name__)}); its scores above stand.</em></p>"


def _as_text(sources: list[str], seconds: float | None) -> str:
    """The page of a notebook nbconvert did not convert in ``seconds`` (None: its child
    process failed): its cells as escaped text."""
    shown, left = [], MAX_TEXT_SHOWN
    for source in sources:
        piece = source[: max(0, left)]
        left -= len(piece)
        shown.append(f"<pre>{page_text(piece)}</pre>")
        if left <= 0:
            shown.append("<p><em>(the rest of the notebook is not shown)</em></p>")
            break
    why = "could not be shown" if seconds is None else f"took longer than {seconds:g} s to show"
    return (
        f"<p><em>This notebook {why}; its cells follow as text. Its scores above stand.</em></p>"
        + "".join(shown)
    )


def _render_safely(nb: nbformat.NotebookNode, *, seconds: float = RENDER_SECONDS) -> str:
    """The notebook as an inert HTML fragment, in bounded time: markdown past the size caps
    is shown as text (``cap_markdown``), nbconvert and the sanitizer run in a forked child
    given ``seconds`` (past them, the notebook's cells are shown as text), and the math is
    typeset here within its budget (``MathSlots.fill``; rendered formulas stay cached for
    the next student)."""
    sources = [cell.source for cell in nb.cells]
    overflow = cap_markdown(nb)
    slots = MathSlots()
    slots.take(nb)
    _exporter()  # loaded here, before the fork: every child shares it
    child = run_with_time_limit(lambda: _convert_safely(nb), seconds=seconds)
    if child.text is None:
        return _as_text(sources, seconds if child.timed_out else None)
    return overflow.fill(slots.fill(child.text))


_STYLE = (
    """<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:left}
.flagged{color:#a00}.graded{color:#060}.nb{border-top:2px solid #888;margin-top:2rem}
pre{white-space:pre-wrap;overflow-wrap:anywhere}img{max-width:100%}
.nb table{display:block;overflow-x:auto}"""
    + MATH_CSS
    + MARKDOWN_CSS
    + "</style>"
)


def write_feedback(
    *,
    run_dir: Path,
    show_hidden: bool = False,
    students: list[str] | None = None,
    course: CourseDir | None = None,
) -> FeedbackResult:
    """One page per student under ``<run_dir>/feedback``; graded notebooks from ``course``
    (default: the run folder's own course, ``<run_dir>/course``)."""
    run_dir = existing_run_dir(run_dir)
    course = course or CourseDir.at(run_dir / "course")
    by_student: dict[str, list] = {}
    for record in Ledger(run_dir).all():
        if students is None or record.student in students:
            by_student.setdefault(record.student, []).append(record)
    out_dir = run_dir / "feedback"
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = []
    for student, records in sorted(by_student.items()):
        parts = [
            f"<!doctype html><meta charset=utf-8><title>Feedback: {html_text(student)}</title>{_STYLE}",
            f"<h1>Feedback for {html_text(student)}</h1>",
        ]
        rows = []
        for r in records:
            score = "—" if r.score is None else f"{r.score:g} / {r.max_score:g}"
            status = str(r.status)
            rows.append(
                f"<tr><td>{html_text(r.key)}</td><td class='{status.split()[0]}'>{html_text(status)}</td>"
                f"<td>{score}</td><td>{html_text(describe_submission(r))}</td></tr>"
            )
        parts.append(
            "<table><tr><th>notebook</th><th>status</th><th>score</th><th>why</th></tr>"
            + "".join(rows)
            + "</table>"
        )
        for r in records:
            parts.append(f"<div class=nb><h2>{html_text(r.key)}</h2>")
            if r.exercises:
                parts.append(
                    "<table><tr><th>exercise</th><th>score</th><th>outcome</th><th>note</th></tr>"
                    + "".join(
                        f"<tr><td>{html_text(e.name)}</td><td>{e.score:g} / {e.max_score:g}</td>"
                        f"<td>{html_text('—' if e.outcome is None else str(e.outcome))}</td><td>{html_text(e.note)}</td></tr>"
                        for e in r.exercises
                    )
                    + "</table>"
                )
            for note in r.notes:
                parts.append(f"<p><em>{html_text(note.splitlines()[0] if note else '')}</em></p>")
            graded = course.autograded(student, r.assignment, r.notebook_name)
            if graded.exists():
                nb = nbformat.read(str(graded), as_version=4)
                if show_hidden:
                    source = course.source(r.assignment, r.notebook_name)
                    nb = (
                        show_hidden_tests(nb, nbformat.read(str(source), as_version=4))
                        if source.exists()
                        else nb
                    )
                parts.append(
                    _render_safely(nb if show_hidden else hide_hidden_tests(nb), seconds=RENDER_SECONDS)
                )
            parts.append("</div>")
        page = out_dir / f"{student}.html"
        page.write_text("\n".join(parts), encoding="utf-8", errors="replace")
        pages.append(page)
    return FeedbackResult(tuple(pages))
