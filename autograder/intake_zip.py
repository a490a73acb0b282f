"""Unpacking a zip of submissions: bounded, by path components, never a link, atomically replaced.

``IntakeLimits`` bounds the entries, the expanded size and the names; ``unpack`` extracts
what it can and returns, per entry it refused, why. Part of the intake (``autograder.intake``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from autograder.intake_read import SubmissionError, file_kind

__all__ = ["IntakeLimits", "SKIP_DIRS", "unpack"]

log = logging.getLogger("autograder.intake")  # the intake's log, as before the split


SKIP_DIRS = frozenset({"__MACOSX", ".ipynb_checkpoints"})


# ---------------------------------------------------------------------------------------
# Unpacking a zip: bounded, by path components, never a link, atomically replaced.


@dataclass(frozen=True)
class IntakeLimits:
    """Bounds on what one zip may cost: sizes are measured while extracting (headers can lie);
    the end record's entry count is used only to refuse a zip early."""

    max_entries: int = 20_000
    max_total_bytes: int = 2 * 1024**3
    max_entry_bytes: int = 200 * 1024**2


def _entry_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:  # no UTF-8 flag: zipfile decoded cp437; most tools wrote UTF-8
        try:
            name = name.encode("cp437").decode("utf-8")
        except UnicodeError:
            pass
    return name.replace("\\", "/")


def _entry_parts(name: str) -> tuple[str, ...]:
    """The safe path components of a zip entry; raises ``SubmissionError`` for a refused one."""
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise SubmissionError("refused: absolute path in the zip")
    if "\x00" in name:
        raise SubmissionError("refused: NUL in its name")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise SubmissionError("refused: '..' in its path")
    if any(len(p.encode("utf-8", "surrogateescape")) > 255 for p in parts):
        raise SubmissionError("refused: a name longer than 255 bytes")
    return parts


def _extract_one(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: list[int], limits: IntakeLimits
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise SubmissionError("refused: a second entry of the same name (the first was kept)") from None
    written = 0
    try:
        with os.fdopen(fd, "wb") as out, archive.open(info) as src:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > limits.max_entry_bytes:
                    raise SubmissionError(f"refused: expands beyond {limits.max_entry_bytes} bytes")
                if written > budget[0]:
                    budget[0] = -1
                    raise SubmissionError(
                        f"refused: the zip expands beyond {limits.max_total_bytes} bytes in all"
                    )
                out.write(chunk)
        budget[0] -= written
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _extract_reason(exc: Exception) -> str:
    if isinstance(exc, SubmissionError):
        return str(exc)
    if isinstance(exc, zipfile.BadZipFile) and "CRC" in str(exc):
        return "damaged in the zip (CRC check failed)"
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return "encrypted in the zip"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot extract ({exc.strerror})"
    return f"cannot extract ({type(exc).__name__})"


def _declared_entries(archive_path: Path) -> int | None:
    """The entry count the zip's end record declares, read before zipfile loads every entry."""
    try:
        with open(archive_path, "rb") as fp:
            end = zipfile._EndRecData(fp)  # type: ignore[attr-defined]  # stable since Python 2
        return int(end[zipfile._ECD_ENTRIES_TOTAL]) if end else None  # type: ignore[attr-defined]
    except Exception:  # a private helper: without it, the per-entry cap below still holds
        return None


def unpack(archive_path: Path, unpack_dir: Path, limits: IntakeLimits) -> dict[tuple[str, ...], str]:
    """Unpack into a fresh folder that then replaces ``unpack_dir``; {entry parts: why refused}."""
    declared = _declared_entries(archive_path)
    if declared is not None and declared > 10 * limits.max_entries:  # its directory alone would fill memory
        raise ValueError(
            f"{archive_path.name}: declares {declared} entries; the limit is {limits.max_entries}"
        )
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{archive_path.name}: not a readable zip ({type(exc).__name__})") from None
    unpack_dir.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{unpack_dir.name}.", dir=unpack_dir.parent))
    try:
        problems = _extract_all(archive, fresh, limits)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    # Replace the previous unpack (a re-run) only once the new one is complete.
    if unpack_dir.is_symlink() or unpack_dir.is_file():
        unpack_dir.unlink()
    if unpack_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{unpack_dir.name}.old.", dir=unpack_dir.parent))
        os.replace(unpack_dir, old / "x")
        os.replace(fresh, unpack_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(fresh, unpack_dir)
    return problems


def _extract_all(archive: zipfile.ZipFile, fresh: Path, limits: IntakeLimits) -> dict[tuple[str, ...], str]:
    problems: dict[tuple[str, ...], str] = {}
    budget = [limits.max_total_bytes]
    with archive:
        for count, info in enumerate(archive.infolist()):
            name = _entry_name(info)
            owner = tuple(p for p in name.split("/") if p not in ("", "."))
            if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or not owner or owner[0] == "..":
                owner = ()  # outside every student's folder: nobody to tell but the log
            try:
                parts = _entry_parts(name)
                if not parts or parts[0] in SKIP_DIRS:
                    continue
                if count >= limits.max_entries:
                    raise SubmissionError(f"refused: the zip has more than {limits.max_entries} entries")
                if budget[0] < 0:
                    raise SubmissionError(
                        f"refused: the zip expands beyond {limits.max_total_bytes} bytes in all"
                    )
                kind = stat.S_IFMT(info.external_attr >> 16)
                if info.is_dir():
                    fresh.joinpath(*parts).mkdir(parents=True, exist_ok=True)
                elif kind not in (0, stat.S_IFREG):  # a link (or fifo, device) stored in the zip
                    raise SubmissionError(f"not a regular file ({file_kind(kind)}): not extracted")
                else:
                    _extract_one(archive, info, fresh.joinpath(*parts), budget, limits)
            except Exception as exc:  # this entry only: the rest is unpacked and graded
                if owner:
                    problems[owner] = _extract_reason(exc)
                else:
                    log.warning("intake: zip entry %r refused: %s", name[:200], _extract_reason(exc))
    return problems
