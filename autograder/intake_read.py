"""Reading one submitted file: never through a link, never unbounded, never quoting contents.

``read_capped`` opens without following links and reads up to a cap; ``read_submission``
reads a notebook and says why not when it cannot (a ``SubmissionError`` message is safe to
show: it never quotes the file). Part of the intake (``autograder.intake``).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import nbformat

__all__ = ["MAX_NOTEBOOK_BYTES", "SubmissionError", "file_kind", "read_capped", "read_submission"]


MAX_NOTEBOOK_BYTES = 64 * 1024**2  # far above any honest notebook without outputs


class SubmissionError(Exception):
    """A file that cannot be read as submitted; the message is safe to show (no contents)."""


# ---------------------------------------------------------------------------------------
# Reading one file: never through a link, never unbounded, never quoting contents.


def file_kind(mode: int) -> str:
    """What a file mode is, in words for a reason shown to the instructor ("symbolic link", "fifo"...)."""
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def read_capped(path: Path, cap: int) -> bytes:
    """The bytes of the regular file ``path`` (at most ``cap``); raises ``SubmissionError``.

    Opened with O_NOFOLLOW (a link is refused, not followed) and O_NONBLOCK (a fifo
    cannot hang the batch), then checked to be a regular file on the opened descriptor,
    so nothing can be swapped in between the check and the read.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SubmissionError("not a regular file (symbolic link)") from None
        raise SubmissionError(f"cannot read file ({exc.strerror or type(exc).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError(f"not a regular file ({file_kind(info.st_mode)})")
        if info.st_nlink > 1:  # a hard link may be any file on the host (a solution, say)
            raise SubmissionError("not a regular file of its own (it has other hard links)")
        if info.st_size > cap:
            raise SubmissionError(f"too large ({info.st_size} bytes; the limit is {cap})")
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, cap + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:  # grew while we read it
                raise SubmissionError(f"too large (over {cap} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        raise SubmissionError(f"cannot read file ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)


def _json_position(exc: BaseException) -> str:
    """Line and column of a JSON syntax error (nbformat's own message quotes the file)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, json.JSONDecodeError):
            return f" at line {exc.lineno}, column {exc.colno}"
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return ""


def read_submission(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """The notebook at ``path``, or None and why it cannot be read.

    Never follows a link, reads at most ``MAX_NOTEBOOK_BYTES``, survives any decoder
    failure (deep nesting, memory), and the reason never quotes the file's contents.
    """
    try:
        raw = read_capped(Path(path), MAX_NOTEBOOK_BYTES)
    except SubmissionError as exc:
        return None, str(exc)
    if not raw.strip():
        return None, "empty file"
    try:
        nb = nbformat.reads(raw.decode("utf-8", errors="replace"), as_version=4)
    except RecursionError:
        return None, "not a readable notebook (nested too deeply)"
    except MemoryError:
        return None, "not a readable notebook (too large to decode)"
    except Exception as exc:  # any decoder or validator failure: this file only
        return None, f"not a readable notebook ({type(exc).__name__}{_json_position(exc)})"
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return None, "not a notebook (no cells)"
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or not isinstance(cell.get("source", ""), str):
            return None, f"not a notebook (cell {index} is malformed)"
    return nb, ""
