"""Student-controlled text on its way into the instructor's terminal, CSV files and pages.

Everything a submission controls — file and folder names, notebook text, outputs,
exception messages, reasons built from them — passes through one of these at the edge
where it is rendered, never earlier (the ledger keeps the raw text):

- ``terminal_text``: control characters (ANSI escape sequences, carriage returns,
  backspaces, C1 controls) and Unicode bidirectional overrides are shown as visible
  escapes, so a file name cannot erase lines of ``grade``'s table or forge a row.
- ``csv_cell``: OWASP's CSV-injection rule — a cell starting with ``=``, ``+``, ``-``,
  ``@``, tab or carriage return is prefixed with ``'`` so a spreadsheet shows it as text;
  control characters and bidi overrides are escaped as for the terminal (a CSV is also
  read with ``cat`` and ``less``).
- ``html_text``: text for a page: HTML-escaped, with control characters and bidi
  overrides shown as escapes (they would reorder the row the instructor reads).
- ``sanitize_html``: a page fragment made inert with bleach (a maintained allow-list
  sanitizer): no scripts, no event handlers, no ``javascript:`` URLs, no styles, images
  only as embedded PNG/JPEG/GIF data. A fragment too large or too deeply nested for the
  sanitizer's time (it is quadratic in the nesting) is shown as escaped text instead.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

import bleach

__all__ = ["csv_cell", "csv_row", "html_text", "sanitize_html", "terminal_text"]

# C0 controls (tab and newline included: a table cell must stay on its line), DEL,
# C1 controls (0x9b is a one-byte CSI on some terminals), and the bidi overrides and
# isolates that reorder what the eye reads ("Trojan Source").
# Lone surrogates too: a name that is not UTF-8 reaches Python as U+DC80..U+DCFF (PEP 383),
# and any surrogate makes a strict UTF-8 terminal or file refuse the whole line.
_UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def terminal_text(text: object) -> str:
    """``text`` as one printable line: every unsafe character shown as ``\\xNN``/``\\uNNNN``;
    a raw byte of a non-UTF-8 name (U+DC80..U+DCFF) as ``\\xNN`` of that byte."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte the file name held
            return f"\\x{code - 0xDC00:02x}"
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNSAFE_CHARS.sub(escape, str(text))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading ``'``.

    Numbers pass unchanged (a score is data, and never negative here); text stays readable.
    """
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    return terminal_text(value)


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


def html_text(value: object) -> str:
    """Text for a page: escaped, and every control or bidi character shown as an escape."""
    return html.escape(terminal_text(value))


# In a page, line breaks and tabs are text; every other control character and the bidi
# overrides are shown as escapes.
# Lone surrogates too (a file name that was not UTF-8): a page cannot encode them.
_UNSAFE_IN_PAGE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
MAX_FRAGMENT_CHARS = 8 * 1024**2
MAX_NESTING = 256
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^>]*?(/?)>")
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


def _nesting(fragment: str) -> int:
    """The deepest element nesting of ``fragment`` (a linear scan, no parsing)."""
    depth = deepest = 0
    for match in _TAG.finditer(fragment):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if closing:
            depth = max(0, depth - 1)
        elif name not in _VOID and not self_closing:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def sanitize_html(fragment: str) -> str:
    """``fragment`` with only inert markup left; disallowed tags are removed with their
    text shown escaped (a ``<script>`` becomes visible text, never code)."""
    fragment = _UNSAFE_IN_PAGE.sub(lambda m: f"\\u{ord(m.group()):04x}", fragment)
    if len(fragment) > MAX_FRAGMENT_CHARS or _nesting(fragment) > MAX_NESTING:
        return f"<pre>{html.escape(fragment[:MAX_FRAGMENT_CHARS])}</pre>"
    return bleach.clean(
        fragment,
        tags=_TAGS,
        attributes=_allowed_attribute,
        protocols={"http", "https", "mailto", "data"},
        strip=False,
        strip_comments=True,
    )
