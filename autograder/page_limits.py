"""Bounds on the work of showing one student's notebook on a feedback page.

nbconvert's markdown parser (mistune 3.4) is quadratic on some input a student can
write (unclosed links ``[a](``, empty link definitions ``[a]: ``: 80 kB ~25 s, 800 kB
~40 minutes), and the sanitizer is quadratic in nesting. One student's notebook must
never stall the feedback run of the class, so:

- ``cap_markdown``: markdown past MAX_MARKDOWN_CELL_CHARS in a cell, or past
  MAX_MARKDOWN_CHARS in a notebook, never reaches the parser: it is swapped for a
  placeholder and shown as escaped text (``MarkdownOverflow.fill``).
- ``run_with_time_limit``: nbconvert and the sanitizer run in a forked child that is
  killed after its time; the caller then shows the notebook as text.
"""

from __future__ import annotations

import os
import re
import secrets
import selectors
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import nbformat

from autograder.mathrender import page_text, split_tags

__all__ = [
    "MARKDOWN_CSS", "MAX_MARKDOWN_CELL_CHARS", "MAX_MARKDOWN_CHARS", "MAX_TEXT_SHOWN", "RENDER_SECONDS",
    "MarkdownOverflow", "cap_markdown", "run_with_time_limit",
]  # fmt: skip

# The course's largest markdown cell is ~2,500 characters and its largest notebook holds
# ~12,500 of markdown. At these caps the worst markdown the parser sees costs ~0.2 s a cell.
MAX_MARKDOWN_CELL_CHARS = 10_000
MAX_MARKDOWN_CHARS = 100_000
MAX_TEXT_SHOWN = 1_000_000  # characters of a notebook shown as text (overflow, or a notebook past its time)
RENDER_SECONDS = 60.0  # nbconvert + sanitizer for one notebook (a course notebook takes ~1 s)
MAX_CHILD_OUTPUT = (
    64 * 1024**2
)  # bytes of HTML the child may hand back (the sanitizer's cap is 8 M characters)

MARKDOWN_CSS = "span.md-overflow{display:block;white-space:pre-wrap;font-family:monospace}"


@dataclass
class MarkdownOverflow:
    """Markdown kept from the parser, each piece behind a placeholder with a random key (as
    ``MathSlots``: text a student writes cannot name a piece; letters and digits only, so
    markdown leaves it alone)."""

    key: str = field(default_factory=lambda: "mdslot" + secrets.token_hex(8))
    pieces: list[str] = field(default_factory=list)

    def hold(self, text: str) -> str:
        """The placeholder standing for ``text``, in a paragraph of its own."""
        self.pieces.append(text)
        return f"\n\n{self.key}n{len(self.pieces) - 1}x\n"

    def fill(self, page_html: str) -> str:
        """Each placeholder standing in text replaced by its piece as escaped text, up to
        MAX_TEXT_SHOWN characters in all (in an attribute, by an ellipsis)."""
        slot = re.compile(re.escape(self.key) + r"n(\d+)x")
        left = MAX_TEXT_SHOWN

        def as_text(m: re.Match[str]) -> str:
            nonlocal left
            index = int(m.group(1))
            if index >= len(self.pieces):
                return m.group()
            piece = self.pieces[index]
            shown = piece[: max(0, left)]
            left -= len(shown)
            more = (
                f"\n(… {len(piece) - len(shown)} more characters not shown)"
                if len(shown) < len(piece)
                else ""
            )
            return f"<span class=md-overflow>{page_text(shown + more)}</span>"

        def in_attribute(m: re.Match[str]) -> str:
            return "…" if int(m.group(1)) < len(self.pieces) else m.group()

        return "".join(
            slot.sub(as_text if is_text else in_attribute, piece) for is_text, piece in split_tags(page_html)
        )


def _cut(source: str, limit: int) -> int:
    """Where to cut ``source`` to keep at most ``limit`` characters: at a line break in the
    second half of the window when there is one, so the kept markdown ends with a whole line."""
    if limit <= 0:
        return 0
    newline = source.rfind("\n", limit // 2, limit)
    return newline + 1 if newline >= 0 else limit


def cap_markdown(nb: nbformat.NotebookNode) -> MarkdownOverflow:
    """``nb``'s markdown cells cut to MAX_MARKDOWN_CELL_CHARS each and MAX_MARKDOWN_CHARS in
    all (``nb`` is changed); the cut text is held by the returned overflow."""
    overflow = MarkdownOverflow()
    left = MAX_MARKDOWN_CHARS
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        source, limit = cell.source, min(MAX_MARKDOWN_CELL_CHARS, left)
        kept = len(source)
        if kept > limit:
            kept = _cut(source, limit)
            cell.source = source[:kept] + overflow.hold(source[kept:])
        left -= kept
    return overflow


@dataclass(frozen=True)
class ChildResult:
    """What a time-limited child handed back: ``text`` when it finished, else None, and
    ``timed_out`` when it was killed for its time (else it failed, or said too much)."""

    text: str | None
    timed_out: bool


def _child(work: Callable[[], str], read_fd: int, write_fd: int) -> None:
    """In the forked child: ``work``'s text down the pipe, then exit. Never returns, so the
    caller's code (a test runner, the CLI) never runs twice."""
    code = 1
    try:
        os.close(read_fd)
        view = memoryview(work().encode("utf-8", "surrogatepass"))
        while view:
            view = view[os.write(write_fd, view) :]
        code = 0
    except BaseException:  # the parent sees the failure as the exit status
        pass
    finally:
        os._exit(code)


def run_with_time_limit(work: Callable[[], str], *, seconds: float) -> ChildResult:
    """``work()`` run in a forked child (it sees this process's memory as it is now; what it
    changes stays in the child), killed when it takes longer than ``seconds``."""
    if seconds <= 0:
        raise ValueError(f"run_with_time_limit: seconds must be positive, got {seconds!r}")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(work, read_fd, write_fd)
    os.close(write_fd)
    chunks: list[bytes] = []
    received, deadline, killed, timed_out = 0, time.monotonic() + seconds, False, False
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(read_fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    killed = timed_out = True
                    break
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
                if received > MAX_CHILD_OUTPUT:
                    killed = True
                    break
    finally:
        os.close(read_fd)
        if killed:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if killed or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return ChildResult(None, timed_out)
    return ChildResult(b"".join(chunks).decode("utf-8", "surrogatepass"), False)
