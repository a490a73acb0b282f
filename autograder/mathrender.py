"""LaTeX math in notebook markdown, rendered to images at export time: no script, no network.

A feedback page is opened from disk, often offline, and the notebook it shows is the
student's: its math is typeset here, by matplotlib's mathtext (installed with the course),
into self-contained SVG images embedded as ``data:`` URLs. An SVG loaded by ``<img>`` runs
no script, so a formula a student wrote can only ever become a picture of itself.

- ``find_math``: the ``$...$`` and ``$$...$$`` spans of a markdown text (code spans,
  fenced code and ``\\$`` are text, as in Jupyter).
- ``to_mathtext``: the course's notation that mathtext lacks rewritten into what it has
  (``\\bigl(`` -> ``\\left(``, ``\\lVert`` -> ``\\Vert``, ``\\frac1N`` -> ``\\frac{1}{N}``, ...).
- ``render_formula``: one formula as inline HTML; ``matrix``/``bmatrix``/``pmatrix``/
  ``cases``/``aligned`` environments are laid out as HTML tables of rendered cells.
  A formula mathtext still cannot read is shown as its TeX source in ``<code>``, escaped
  (``page_text``: the page's rule for control and bidi characters, as ``safe_output``).
- ``MathSlots``: markdown cells' formulas swapped for unforgeable placeholders before
  nbconvert and the sanitizer run, and the rendered images put back after.

The work and size of a student's math are bounded, since the page is built in the
instructor's run: each formula may use MAX_RENDERS_PER_FORMULA mathtext renders (~10 ms
each), an environment MAX_ENV_CELLS cells, a box MAX_IMAGE_WIDTH_PX x MAX_IMAGE_HEIGHT_PX;
each notebook (``MathBudget``) MAX_MATH_RENDERS renders, MAX_MATH_HTML_CHARS of HTML and
MAX_MATH_SECONDS. Past a bound, a formula is shown as its source. The cache of rendered
formulas (shared by the students of a class, who mostly carry the course's formulas) holds
at most MAX_CACHE_CHARS of HTML.

The HTML uses the classes of ``MATH_CSS`` (vertical offsets are classes, never ``style``
attributes, so pages keep their no-inline-style rule).
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import quote

import nbformat

from autograder.safe_output import html_text

__all__ = [
    "MATH_CSS", "MathBudget", "MathSlots", "MathSpan", "RenderedMath", "find_math", "page_text", "render_formula",
    "split_tags", "to_mathtext",
]  # fmt: skip

FONT_PX = 18  # Computer Modern at the body text's 16 px looks a size smaller than the sans-serif around it
MAX_FORMULA_CHARS = 2000  # a longer "formula" is shown as source (mathtext's parser is slow on huge input)
MAX_MATH_CHARS = (
    50_000  # TeX rendered per notebook (a course notebook holds under 2000): up to ~1 ms a character
)
MAX_DEPTH_CLASS = 60  # descents are classes .md0 .. .md60 (px below the baseline)
# Each mathtext render builds a parser and converts glyphs to paths (~10 ms): the work a
# formula or a notebook may ask for is counted in renders, not only in TeX characters.
MAX_RENDERS_PER_FORMULA = 40  # a course formula needs at most ~20 (a matrix of 17 cells)
MAX_MATH_RENDERS = 1000  # per notebook (a course notebook needs ~150): ~10 s at most
MAX_MATH_SECONDS = 20.0  # per notebook, wall clock: past it, the remaining formulas are shown as source
MAX_ENV_CELLS = 256  # cells of one matrix/cases/aligned environment (the course's largest has 17)
MAX_MATH_HTML_CHARS = 4 * 1024**2  # HTML of a notebook's math (a course notebook makes ~1 MB at most)
MAX_CACHE_CHARS = 32 * 1024**2  # HTML kept by render_formula's cache across notebooks
MAX_CACHED_FORMULA_CHARS = 512 * 1024  # a larger formula is not cached (it would push out hundreds)
# A formula's box past these is refused (shown as source): \hspace{1e29} or a huge \genfrac rule
# would otherwise ask the browser for an image of 1e30 px. The widest honest formula of
# MAX_FORMULA_CHARS characters is ~36,000 px wide.
MAX_IMAGE_WIDTH_PX = 50_000
MAX_IMAGE_HEIGHT_PX = 5_000

MATH_CSS = (
    "span.math{white-space:nowrap}"  # no line break between a formula's images and tables
    "img.math{display:inline;max-width:none}"
    # an inline formula wider than its paragraph is shrunk to fit (display formulas scroll, and
    # matrix cells keep their size: a percentage max-width in a table cell collapses it)
    ":not(.math-cell)>span.math>img.math{max-width:100%;height:auto}"
    ".math-display{display:block;text-align:center;margin:.6em 0;overflow-x:auto;overflow-y:hidden}"
    "span.math-env{display:inline-block;position:relative;vertical-align:middle;margin:0 .2em;padding:0 .3em}"
    # rows and cells are spans shown as a table: a <table> would close the paragraph it sits in
    "span.math-grid{display:table}span.math-row{display:table-row}"
    "span.math-cell{display:table-cell;padding:.1em .4em;text-align:center;vertical-align:baseline}"
    "span.math-bmatrix,span.math-pmatrix{border-left:1.5px solid #000;border-right:1.5px solid #000}"
    "span.math-bmatrix::before,span.math-bmatrix::after{content:'';position:absolute;top:0;bottom:0;width:.35em;"
    "border-top:1.5px solid #000;border-bottom:1.5px solid #000}"
    "span.math-bmatrix::before{left:0}span.math-bmatrix::after{right:0}"
    "span.math-pmatrix{border-radius:.7em/50%}"
    "span.math-cases{border-left:2px solid #000;border-radius:.6em 0 0 .6em}"
    "span.math-cases span.math-cell{text-align:left}"
    "span.math-aligned span.r{text-align:right;padding-right:0}span.math-aligned span.l{text-align:left;padding-left:0}"
    "code.math-source{white-space:pre-wrap}"
    + "".join(f"img.md{d}{{vertical-align:-{d}px}}" for d in range(MAX_DEPTH_CLASS + 1))
)


@dataclass(frozen=True)
class MathSpan:
    """One formula in a markdown text: ``text[start:end]`` is the formula with its dollars."""

    tex: str
    display: bool
    start: int
    end: int


@dataclass(frozen=True)
class RenderedMath:
    html: str
    ok: bool  # False: mathtext could not read (part of) it and its source is shown instead


# Fenced code, inline code spans (any run of backticks, closed by the same run), escaped
# dollars, display math, inline math ($ not followed by a space, closed on the same line).
_MARKDOWN_MATH = re.compile(
    r"(?P<fence>^[ \t]*(?P<ticks>```+|~~~+)[^\n]*\n.*?(?:^[ \t]*(?P=ticks)[ \t]*$|\Z))"
    r"|(?P<code>(?P<run>`+).+?(?P=run))"
    r"|(?P<escaped>\\\$)"
    r"|\$\$(?P<display>.+?)\$\$"
    r"|\$(?P<inline>[^\s$](?:[^$\n]*?[^\s$\\])?)\$",
    re.S | re.M,
)


def find_math(markdown: str) -> list[MathSpan]:
    """The formulas of a markdown text, in order."""
    spans = []
    for m in _MARKDOWN_MATH.finditer(markdown):
        if m.group("display") is not None:
            spans.append(MathSpan(m.group("display").strip(), True, m.start(), m.end()))
        elif m.group("inline") is not None:
            spans.append(MathSpan(m.group("inline"), False, m.start(), m.end()))
    return spans


# --- rewriting the course's notation into mathtext's ---------------------------------

_SIMPLE = {
    r"\lVert": r"\Vert", r"\rVert": r"\Vert", r"\lvert": "|", r"\rvert": "|",
    r"\lor": r"\vee", r"\land": r"\wedge", r"\lnot": r"\neg", r"\texttt": r"\mathtt",
    r"\textstyle": "", r"\displaystyle": "", r"\scriptstyle": "", r"\tfrac": r"\frac",
    r"\mathstrut": "", r"\notag": "", r"\nonumber": "", r"\colon": ":",
    r"\vert": "|", r"\implies": r"\Rightarrow", r"\iff": r"\Leftrightarrow",
}  # fmt: skip
_CONTROL_WORD = re.compile(r"\\[A-Za-z]+")
# Commands whose arguments TeX lets go unbraced when they are one token (\frac1N, \mathbf W).
_ARITY = {
    r"\frac": 2, r"\dfrac": 2, r"\mathbf": 1, r"\mathbb": 1, r"\mathcal": 1, r"\mathrm": 1,
    r"\mathit": 1, r"\mathsf": 1, r"\mathtt": 1, r"\boldsymbol": 1, r"\bm": 1, r"\hat": 1,
    r"\tilde": 1, r"\bar": 1, r"\vec": 1, r"\dot": 1, r"\ddot": 1, r"\widehat": 1,
    r"\widetilde": 1, r"\sqrt": 1, r"\overline": 1,
}  # fmt: skip
_SIZER = re.compile(r"\\(?:big|Big|bigg|Bigg)([lrm]?)\s*(\\[A-Za-z]+|\\[{}|]|[()\[\]|./<>])")
_OPENERS = {"(", "[", r"\{", r"\lfloor", r"\lceil", r"\langle", r"\lVert", r"\lvert"}


def _token_end(tex: str, i: int) -> int:
    """The end of the one token starting at ``tex[i]`` (a control word, ``\\x``, a group, a char)."""
    if tex[i] == "\\":
        word = _CONTROL_WORD.match(tex, i)
        return word.end() if word else min(i + 2, len(tex))
    if tex[i] == "{":
        depth, j = 0, i
        while j < len(tex):
            if tex[j] == "\\":
                j += 2
                continue
            depth += {"{": 1, "}": -1}.get(tex[j], 0)
            if depth == 0:
                return j + 1
            j += 1
        return len(tex)
    return i + 1


def _brace_arguments(tex: str) -> str:
    r"""``\frac1N`` -> ``\frac{1}{N}``, ``\mathbf W`` -> ``\mathbf{W}`` (mathtext wants braces)."""
    out, i = [], 0
    while i < len(tex):
        word = _CONTROL_WORD.match(tex, i)
        if not word:
            out.append(tex[i])
            i += 1
            continue
        out.append(word.group())
        i = word.end()
        for _ in range(_ARITY.get(word.group(), 0)):
            j = i
            while j < len(tex) and tex[j] == " ":
                j += 1
            if j >= len(tex) or tex[j] in "[}":  # \sqrt[n]{x}, or a malformed formula: left as written
                break
            end = _token_end(tex, j)
            arg = tex[j:end]
            out.append(arg if arg.startswith("{") else "{" + _brace_arguments(arg) + "}")
            i = end
    return "".join(out)


def _xarrow(tex: str) -> str:
    r"""``\xrightarrow{f}`` -> ``\overset{f}{\longrightarrow}`` (and the left arrow)."""
    for name, arrow in ((r"\xrightarrow", r"\longrightarrow"), (r"\xleftarrow", r"\longleftarrow")):
        while (i := tex.find(name + "{")) >= 0:
            end = _token_end(tex, i + len(name))
            tex = tex[:i] + r"\overset" + tex[i + len(name) : end] + "{" + arrow + "}" + tex[end:]
    return tex


def to_mathtext(tex: str, *, sized_delimiters: bool = True) -> str:
    """``tex`` in the dialect matplotlib's mathtext reads. With ``sized_delimiters``,
    ``\\bigl(``/``\\bigr)`` become ``\\left(``/``\\right)`` (they size to their content);
    without, the size is dropped (for a formula whose sizers do not pair up)."""
    tex = tex.replace("\n", " ")
    tex = re.sub(r"\\mathrel\{([^{}]*)\}", r"\1", tex)
    tex = re.sub(r"\\operatorname\*", r"\\operatorname", tex)

    def sizer(m: re.Match[str]) -> str:
        side, delim = m.group(1), m.group(2)
        if not sized_delimiters:
            return delim
        opening = side == "l" or (side == "" and delim in _OPENERS)
        return (r"\left" if opening else r"\right") + delim

    tex = _SIZER.sub(sizer, tex)
    tex = _CONTROL_WORD.sub(lambda m: _SIMPLE.get(m.group(), m.group()), tex)
    tex = _xarrow(tex)
    return _brace_arguments(tex).strip()


# --- rendering -----------------------------------------------------------------------

_LOCK = threading.Lock()  # mathtext's parser keeps state: one formula at a time


@dataclass(frozen=True)
class _Glyphs:
    svg: str
    width: float
    height: float
    depth: float


class _TooLarge(ValueError):
    """A formula's box is past MAX_IMAGE_WIDTH_PX x MAX_IMAGE_HEIGHT_PX (or not finite)."""


class _OutOfRenders(Exception):
    """The formula (or its notebook) has used its mathtext renders or its time."""


def _check_size(width: float, height: float, depth: float) -> None:
    if not all(math.isfinite(v) for v in (width, height, depth)):
        raise _TooLarge(f"box {width} x {height} px")
    if (
        abs(width) > MAX_IMAGE_WIDTH_PX
        or abs(height) > MAX_IMAGE_HEIGHT_PX
        or abs(depth) > MAX_IMAGE_HEIGHT_PX
    ):
        raise _TooLarge(f"box {width:.0f} x {height:.0f} px")


@dataclass
class MathBudget:
    """What a notebook's formulas may still cost: mathtext renders, HTML characters, and
    wall-clock time (``deadline`` on ``time.monotonic``). Spent as formulas are rendered."""

    renders: int = MAX_MATH_RENDERS
    html_chars: int = MAX_MATH_HTML_CHARS
    deadline: float = math.inf

    @classmethod
    def per_notebook(cls) -> MathBudget:
        """The budget of one notebook, its clock started now."""
        return cls(
            renders=MAX_MATH_RENDERS,
            html_chars=MAX_MATH_HTML_CHARS,
            deadline=time.monotonic() + MAX_MATH_SECONDS,
        )

    def spend_render(self) -> None:
        if self.renders <= 0 or time.monotonic() > self.deadline:
            raise _OutOfRenders()
        self.renders -= 1


def page_text(text: str) -> str:
    """``text`` for a page, its lines kept: each line through ``safe_output.html_text`` (escaped,
    control and bidi characters shown as escapes)."""
    return "\n".join(html_text(line) for line in text.split("\n"))


def _source(tex: str) -> RenderedMath:
    return RenderedMath(f"<code class=math-source>{page_text(tex)}</code>", False)


def _path_data(verts, codes) -> str:
    """SVG path data for matplotlib path vertices (y flipped: SVG's y grows downwards)."""
    from matplotlib.path import Path as MplPath

    letters = {MplPath.MOVETO: "M", MplPath.LINETO: "L", MplPath.CURVE3: "Q", MplPath.CURVE4: "C"}
    out = []
    for seg, code in MplPath(verts, codes).iter_segments(curves=True, simplify=False):
        if code == MplPath.CLOSEPOLY:
            out.append("Z")
        else:
            out.append(letters[code] + " ".join(f"{x:.0f} {-y:.0f}" for x, y in seg.reshape(-1, 2)))
    return "".join(out)


def _svg_path(mathtext: str) -> _Glyphs:
    """One formula as an SVG document of filled paths, each glyph defined once and placed
    with ``<use>`` (no fonts, no text, no script). Units are mathtext's at size 100."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser
    from matplotlib.textpath import TextToPath

    with matplotlib.rc_context({"mathtext.fontset": "cm"}):
        to_path = TextToPath()
        prop = FontProperties(size=to_path.FONT_SCALE)
        box = MathTextParser("path").parse(f"${mathtext}$", 72, prop)
        _check_size(box.width * FONT_PX / to_path.FONT_SCALE, box.height * FONT_PX / to_path.FONT_SCALE,
                    box.depth * FONT_PX / to_path.FONT_SCALE)  # fmt: skip
        placed, glyph_map, rects = to_path.get_glyphs_mathtext(prop, f"${mathtext}$")
    ids = {name: f"g{i}" for i, name in enumerate(glyph_map)}
    defs = "".join(f'<path id="{ids[name]}" d="{_path_data(*glyph_map[name])}"/>' for name in glyph_map)
    uses = "".join(
        f'<use href="#{ids[name]}" x="{x:.0f}" y="{-y:.0f}"/>' if scale == 1
        else f'<use href="#{ids[name]}" transform="translate({x:.0f} {-y:.0f}) scale({scale:.3f})"/>'
        for name, x, y, scale in placed)  # fmt: skip
    bars = "".join(f'<path d="{_path_data(verts, codes)}"/>' for verts, codes in rects)
    px = FONT_PX / to_path.FONT_SCALE
    width, height, depth = box.width + 4, box.height, box.depth
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * px:.1f}" height="{height * px:.1f}" '
           f'viewBox="-2 {depth - height:.0f} {width:.0f} {height:.0f}"><defs>{defs}</defs>{uses}{bars}</svg>')  # fmt: skip
    return _Glyphs(svg, width * px, height * px, depth * px)


def _image(tex: str, budget: MathBudget) -> RenderedMath:
    if not tex.strip():
        return RenderedMath("", True)
    glyphs = None
    for sized in (True, False):
        budget.spend_render()
        try:
            with _LOCK:
                glyphs = _svg_path(to_mathtext(tex, sized_delimiters=sized))
            break
        except _TooLarge:
            break
        except Exception:  # mathtext raises ValueError/ParseException variants: the source is shown
            continue
    if glyphs is None:
        return _source(tex)
    data = quote(glyphs.svg, safe=" =/:.,-")  # percent-encoded: a third smaller than base64
    depth = min(MAX_DEPTH_CLASS, max(0, round(glyphs.depth)))
    return RenderedMath(
        f"<img class='math md{depth}' alt='{page_text(tex)}' width='{glyphs.width:.0f}' "
        f"height='{glyphs.height:.0f}' src='data:image/svg+xml,{data}'>",
        True,
    )


_BEGIN = re.compile(r"\\begin\{(matrix|bmatrix|pmatrix|cases|aligned|align\*?|gathered|array)\}")


def _split_top(tex: str, sep: str) -> list[str]:
    """``tex`` split at ``sep`` outside braces and nested environments."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(tex):
        if tex.startswith(r"\begin{", i):
            depth += 1
        elif tex.startswith(r"\end{", i):
            depth -= 1
        elif tex[i] == "\\" and not tex.startswith(sep, i):
            i += 2
            continue
        elif tex[i] in "{}":
            depth += 1 if tex[i] == "{" else -1
        if depth == 0 and tex.startswith(sep, i):
            out.append(tex[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    out.append(tex[start:])
    return out


def _environment(name: str, body: str, budget: MathBudget) -> RenderedMath | None:
    """An environment's cells laid out as a grid, or None when it has over MAX_ENV_CELLS cells."""
    if name == "array":
        body = re.sub(r"^\s*\{[^{}]*\}", "", body)  # the column spec
    rows = [[cell.strip() for cell in _split_top(row, "&")] for row in _split_top(body, r"\\") if row.strip()]
    if sum(map(len, rows)) > MAX_ENV_CELLS:
        return None
    ok, out = True, []
    for row in rows:
        cells = []
        for col, cell in enumerate(row):
            rendered = _render(cell, False, budget)
            ok &= rendered.ok
            side = (" r" if col % 2 == 0 else " l") if name.startswith("align") else ""
            cells.append(f"<span class='math-cell{side}'>{rendered.html}</span>")
        out.append("<span class=math-row>" + "".join(cells) + "</span>")
    kind = "aligned" if name.startswith("align") else name
    return RenderedMath(
        f"<span class='math-env math-{kind}'><span class=math-grid>{''.join(out)}</span></span>", ok
    )


def _render(tex: str, display: bool, budget: MathBudget) -> RenderedMath:
    """``render_formula``'s work, each mathtext call spent from ``budget`` (raises _OutOfRenders)."""
    if len(tex) > MAX_FORMULA_CHARS:
        return _source(tex)
    parts, ok, pos = [], True, 0
    while m := _BEGIN.search(tex, pos):
        name = m.group(1)
        end_tag = r"\end{" + name + "}"
        depth, i = 1, m.end()
        while depth and i < len(tex):  # the matching \end, past nested environments of the same name
            nxt_begin, nxt_end = tex.find(m.group(), i), tex.find(end_tag, i)
            if nxt_end < 0:
                break
            if 0 <= nxt_begin < nxt_end:
                depth, i = depth + 1, nxt_begin + len(m.group())
            else:
                depth, i = depth - 1, nxt_end + len(end_tag)
        if depth:
            break  # unclosed: the rest goes to mathtext, which says it cannot read it
        env = _environment(name, tex[m.end() : i - len(end_tag)], budget)
        if env is None:
            return _source(tex)
        before = _image(tex[pos : m.start()], budget)
        parts += [before.html, env.html]
        ok &= before.ok and env.ok
        pos = i
    rest = _image(tex[pos:], budget)
    parts.append(rest.html)
    ok &= rest.ok
    inner = "".join(parts)
    return RenderedMath(
        f"<span class=math-display>{inner}</span>" if display else f"<span class=math>{inner}</span>", ok
    )


class _FormulaRenderer:
    """``render_formula``: a function with a cache of whole formulas, bounded by the HTML it
    holds (MAX_CACHE_CHARS), least recently used dropped first. A formula cut short by its
    budget is shown as source and not cached (a later notebook may have the budget)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[str, bool], RenderedMath] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def cache_clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._chars = 0

    def __call__(self, tex: str, *, display: bool = False, budget: MathBudget | None = None) -> RenderedMath:
        """One formula (without its dollars) as inline HTML, or a centred block when ``display``.
        At most MAX_RENDERS_PER_FORMULA mathtext renders, and those ``budget`` still has (no
        budget: only the per-formula bound); past either, the formula is shown as source."""
        key = (tex, display)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        outer = budget if budget is not None else MathBudget()
        granted = max(0, min(MAX_RENDERS_PER_FORMULA, outer.renders))
        mine = MathBudget(renders=granted, deadline=outer.deadline)
        try:
            rendered = _render(tex, display, mine)
        except _OutOfRenders:
            return _source(tex)
        finally:
            outer.renders -= granted - mine.renders
        with self._lock:
            if len(rendered.html) <= MAX_CACHED_FORMULA_CHARS and key not in self._cache:
                self._cache[key] = rendered
                self._chars += len(rendered.html)
                while self._chars > MAX_CACHE_CHARS:
                    _, dropped = self._cache.popitem(last=False)
                    self._chars -= len(dropped.html)
        return rendered


render_formula = _FormulaRenderer()
# --- markdown cells ------------------------------------------------------------------


def split_tags(page_html: str) -> list[tuple[bool, str]]:
    """``page_html`` cut into (is_text, piece): text between tags, and tags with their
    attributes (quotes followed, so a ``>`` inside a quoted value stays in its tag). The
    input is the sanitizer's serialized output: no comments, no raw-text elements."""
    runs, start, i, quote, in_tag = [], 0, 0, "", False
    while i < len(page_html):
        ch = page_html[i]
        if not in_tag and ch == "<":
            runs.append((True, page_html[start:i]))
            start, in_tag = i, True
        elif in_tag and quote:
            quote = "" if ch == quote else quote
        elif in_tag and ch in "\"'":
            quote = ch
        elif in_tag and ch == ">":
            runs.append((False, page_html[start : i + 1]))
            start, in_tag = i + 1, False
        i += 1
    runs.append((not in_tag, page_html[start:]))
    return runs


@dataclass
class MathSlots:
    """Formulas of markdown cells swapped for placeholders, then rendered in their place.

    The placeholder carries a random key drawn per notebook, so text a student writes
    cannot name a slot; it is letters and digits only, so markdown leaves it alone. It is
    filled only where it stands in text: in an attribute (a link's title, an image's alt
    text) the formula goes back as the student wrote it, escaped. A notebook's formulas are rendered up to
    ``MAX_MATH_CHARS`` of TeX (25 times a course notebook's) and within a ``MathBudget``;
    past either, as source.
    """

    key: str = field(default_factory=lambda: "mathslot" + secrets.token_hex(8))
    spans: list[MathSpan] = field(default_factory=list)

    def take(self, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
        """Each markdown cell's formulas replaced by placeholders (``nb`` is changed and returned)."""
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            source, out, pos = cell.source, [], 0
            for span in find_math(source):
                out += [source[pos : span.start], f"{self.key}n{len(self.spans)}x"]
                self.spans.append(span)
                pos = span.end
            cell.source = "".join(out) + source[pos:]
        return nb

    def fill(self, page_html: str, budget: MathBudget | None = None) -> str:
        """The rendered formulas in place of their placeholders (in sanitized HTML), within
        ``budget`` (default: a notebook's, its clock started now) and MAX_MATH_CHARS of TeX:
        past either, formulas are shown as source. Each formula's HTML is charged to the
        budget, so the math cannot make the page larger than the sanitizer allows."""
        slot = re.compile(re.escape(self.key) + r"n(\d+)x")
        budget = budget if budget is not None else MathBudget.per_notebook()
        tex_left = MAX_MATH_CHARS

        def one(m: re.Match[str]) -> str:
            nonlocal tex_left
            index = int(m.group(1))
            if index >= len(self.spans):
                return m.group()
            span = self.spans[index]
            tex_left -= len(span.tex)
            if tex_left < 0 or budget.html_chars <= 0:
                return _source(span.tex).html
            rendered = render_formula(span.tex, display=span.display, budget=budget)
            if len(rendered.html) > budget.html_chars:
                budget.html_chars = 0  # later formulas too are shown as source: the page stays in order
                return _source(span.tex).html
            budget.html_chars -= len(rendered.html)
            return rendered.html

        def as_written(
            m: re.Match[str],
        ) -> str:  # inside an attribute: the TeX as the student wrote it, escaped
            index = int(m.group(1))
            if index >= len(self.spans):
                return m.group()
            span = self.spans[index]
            return page_text(f"$${span.tex}$$" if span.display else f"${span.tex}$")

        return "".join(
            slot.sub(one if is_text else as_written, piece) for is_text, piece in split_tags(page_html)
        )
