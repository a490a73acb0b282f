"""Student-controlled text on its way into the instructor's terminal, CSV files and pages.

Everything a submission controls — file and folder names, notebook text, outputs,
exception messages, reasons built from them — passes through one of these at the edge
where it is rendered, never earlier (the ledger keeps the raw text):

- ``terminal_text``: control characters (ANSI escape sequences, carriage returns,
  backspaces, C1 controls) and Unicode bidirectional overrides are shown as visible
  escapes, so a file name cannot erase lines of ``grade``'s table or forge a row.
- ``csv_cell``: OWASP's CSV-injection rule — a cell starting with ``=``, ``+``, ``-``,
  ``@``, tab or carriage return is prefixed with ``'`` so a spreadsheet shows it as text.
- ``sanitize_html``: a page fragment made inert with bleach (a maintained allow-list
  sanitizer): no scripts, no event handlers, no ``javascript:`` URLs, no styles, images
  only as embedded PNG/JPEG/GIF data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import bleach

__all__ = ["csv_cell", "csv_row", "sanitize_html", "terminal_text"]

# C0 controls (tab and newline included: a table cell must stay on its line), DEL,
# C1 controls (0x9b is a one-byte CSI on some terminals), and the bidi overrides and
# isolates that reorder what the eye reads ("Trojan Source").
_UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: object) -> str:
    """``text`` as one printable line: every unsafe character shown as ``\\xNN``/``\\uNNNN``."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE_CHARS.sub(escape, str(text))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading ``'``.

    Numbers pass unchanged (a score is data, and never negative here); text stays readable.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre",
    "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "u", "ul", "var",
})  # fmt: skip
_IMAGE_DATA = re.compile(r"^data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*$")


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "title", "colspan", "rowspan", "align"):
        return True
    if tag == "a" and name == "href":
        return value.startswith(("http://", "https://", "mailto:", "#"))
    if tag == "img" and name in ("alt", "width", "height"):
        return True
    if tag == "img" and name == "src":
        return bool(_IMAGE_DATA.match(value))
    return False


def sanitize_html(fragment: str) -> str:
    """``fragment`` with only inert markup left; disallowed tags are removed with their
    text shown escaped (a ``<script>`` becomes visible text, never code)."""
    return bleach.clean(
        fragment,
        tags=_TAGS,
        attributes=_allowed_attribute,
        protocols={"http", "https", "mailto", "data"},
        strip=False,
        strip_comments=True,
    )
