"""Student-controlled text is inert in the instructor's terminal, CSV files and pages
(security round 2, items 13-15). In memory: each attack string from the observed
failures, and the honest text beside it that must stay readable."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pytest

from autograder.safe_output import MAX_NESTING, csv_cell, csv_row, html_text, sanitize_html, terminal_text

# --- the terminal ---------------------------------------------------------------------------


def test_a_forged_table_row_in_a_file_name_is_shown_not_obeyed() -> None:
    # Observed: this file name erased lines of `grade`'s table and printed a forged row.
    name = "x.ipynb\x1b[2K\x1b[1A\x1b[2K\rmallory  01_perceptron  graded  20/20\n"
    shown = terminal_text(name)
    assert "\x1b" not in shown and "\r" not in shown and "\n" not in shown
    assert shown == "x.ipynb\\x1b[2K\\x1b[1A\\x1b[2K\\x0dmallory  01_perceptron  graded  20/20\\x0a"


@pytest.mark.parametrize(
    "char, shown",
    [("\x07", "\\x07"), ("\x08", "\\x08"), ("\x7f", "\\x7f"), ("\x9b", "\\x9b"), ("\u202e", "\\u202e"), ("\u2066", "\\u2066")],
)
def test_every_kind_of_control_character_is_escaped(char: str, shown: str) -> None:
    assert terminal_text(f"a{char}b") == f"a{shown}b"


def test_honest_names_print_unchanged() -> None:
    for name in ("Alice Smith", "王伟", "José Núñez-García", "o'brien", "01_perceptron (2).ipynb"):
        assert terminal_text(name) == name


# --- CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-1-1", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_formula_cells_become_text(text: str) -> None:
    assert csv_cell(text) == "'" + terminal_text(text)  # a leading tab or CR is also shown escaped


def test_a_csv_round_trip_keeps_the_text_readable_and_numbers_as_numbers() -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(csv_row(["-1-1", "=HYPERLINK(\"u\")", "Alice", 12.5, 0, "a,b \"c\"", "José 王伟"]))
    (row,) = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert row == ["'-1-1", "'=HYPERLINK(\"u\")", "Alice", "12.5", "0", "a,b \"c\"", "José 王伟"]


def test_csv_cells_carry_no_terminal_escapes_or_bidi_overrides() -> None:
    # A CSV is also read with cat and less in a terminal, and U+202E reverses what a
    # spreadsheet shows: both are escaped as for the terminal.
    assert csv_cell("\x1b[2J\x1b]0;pwned\x07\u202eevil") == "\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil"


# --- HTML -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attack",
    [
        "<script>document.title='pwned'</script>",
        "<img src=x onerror=\"this.closest('table').rows[1].cells[2].textContent='20 / 20'\">",
        "<a href=\"javascript:alert(1)\">click</a>",
        "<a href=\" jAvAsCrIpT:alert(1)\">click</a>",
        "<svg onload=alert(1)></svg>",
        "<iframe src=\"data:text/html,<script>alert(1)</script>\"></iframe>",
        "<div style=\"background:url(javascript:alert(1))\">x</div>",
        "<form action=\"http://evil\"><input name=x></form>",
        "<meta http-equiv=\"refresh\" content=\"0;url=http://evil\">",
        "<object data=\"x.swf\"></object>",
        "<img src=\"data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+\">",
        "<!--><script>alert(1)</script>-->",
        "<style>td{display:none}</style>",
        "<base href=\"http://evil/\">",
    ],
)
def test_no_markup_that_can_run_or_restyle_survives(attack: str) -> None:
    clean = sanitize_html(f"<p>before</p>{attack}<p>after</p>")
    # Parsed as a browser would: which elements and attributes are live?
    elements = _elements(clean)
    tags = {tag for tag, _ in elements}
    assert not tags & {"script", "iframe", "svg", "form", "input", "meta", "object", "style", "base"}, clean
    for tag, attrs in elements:
        for name, value in attrs:
            assert not name.startswith("on") and name != "style", (tag, name, clean)
            assert not (value or "").strip().lower().startswith(("javascript:", "data:image/svg")), (tag, value)
    assert "<p>before</p>" in clean and "<p>after</p>" in clean


def _elements(fragment: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    Collect().feed(fragment)
    return found


def test_an_escaped_script_stays_visible_as_text() -> None:
    assert sanitize_html("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_what_a_rendered_notebook_needs_is_kept() -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    fragment = (
        f"<div class=\"cell\"><pre><span class=\"k\">def</span> f(x):</pre><img src=\"{png}\" alt=\"plot\">"
        "<table><tbody><tr><th>a</th><td colspan=\"2\">1</td></tr></tbody></table><a href=\"https://docs.python.org\">docs</a></div>"
    )
    assert sanitize_html(fragment) == fragment


def test_page_text_is_escaped_with_its_control_and_bidi_characters_visible() -> None:
    assert html_text("<b>\u202eevil\x1b[31m") == "&lt;b&gt;\\u202eevil\\x1b[31m"
    assert sanitize_html("<p>a\u202eb\x1bc</p>\n<pre>x\ty</pre>") == "<p>a\\u202eb\\u001bc</p>\n<pre>x\ty</pre>"


def test_a_pathologically_nested_fragment_is_shown_as_text_in_linear_time() -> None:
    # bleach (html5lib) is quadratic in the nesting: 100,000 nested <div> took minutes.
    import time

    start = time.perf_counter()
    shown = sanitize_html("<div>" * 100_000 + "<script>x</script>")
    assert shown.startswith("<pre>&lt;div&gt;") and "<script" not in shown and "<div" not in shown
    assert time.perf_counter() - start < 5.0  # the fallback is one linear scan, not a parse
    nested = "<div>" * MAX_NESTING + "ok" + "</div>" * MAX_NESTING
    assert sanitize_html(nested) == nested  # up to the limit, sanitized as usual


def test_a_name_that_is_not_utf8_is_shown_by_its_bytes_and_encodes_strictly() -> None:
    # os.fsdecode(b"\xff") is "\udcff" (PEP 383); a strict UTF-8 encoder refuses it.
    name = "mall\udcffory\ud800"
    assert terminal_text(name) == "mall\\xffory\\ud800"
    assert csv_cell("=" + name) == "'=mall\\xffory\\ud800"
    assert html_text("<" + name) == "&lt;mall\\xffory\\ud800"
    for shown in (terminal_text(name), csv_cell(name), html_text(name)):
        shown.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate


def test_a_fragment_with_a_lone_surrogate_is_a_page_that_encodes() -> None:
    # A notebook's HTML output naming a file that was not UTF-8 (PEP 383: b"\xff" -> "\udcff").
    page = sanitize_html("<p>mall\udcffory</p>")
    page.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
    assert "mall" in page and "\\udcff" in page
