"""Intake step: a folder or a zip of submissions -> one job per (student, assignment).

Accepted layouts:

- a folder with one sub-folder per student (any nesting inside it), including the
  LMS folder names ``<Name>_<id>_assignsubmission_file_`` (Moodle) and
  ``submission_<id>`` (Gradescope export);
- a zip of such folders, or a flat zip as LMS bulk downloads make them:
  ``<lastfirst>[_LATE]_<userid>_<submissionid>_<file>`` (Canvas),
  ``<Name>_<id>_assignsubmission_file_<file>`` (Moodle),
  ``<Assignment>_<username>_attempt_<date>_<file>`` (Blackboard), else
  ``<student>_<anything>.ipynb`` (the student is the part before the first underscore).

Every student is graded as themself: the LMS's id is kept in the key where the name
carries one, names that are not already safe ASCII get a stable hash of the original,
and keys that would still collide get distinct suffixes, never a silent merge.

The submissions are untrusted: links, devices and fifos are reported and never read or
descended into, every file is opened without following links and read up to a cap, zips
are bounded (entries, total expanded size, names) and unpacked by path components, and a
failure on one file or zip entry becomes that student's status, never the batch's.

A zip a student handed in (inside their own folder, or as a flat LMS file) is unpacked
too, one level deep, within the same limits, beside the run's unpack folder; its
notebooks are graded like loose ones. A zip inside that zip is only a file.

Files beside the notebook (``Job.alongside``) are the regular files under the graded
notebook's own folder, each with its path relative to the notebook, as nbgrader would
put them next to it when grading.

Notebooks are matched to assignments by the manifest (``Manifest``: for each
assignment its file name and the grade_ids of its cells): by exact name, by the
assignment name appearing in a renamed file ("01_perceptron (2).ipynb",
"Copy of 01_perceptron.ipynb"), and for files renamed beyond recognition by their
nbgrader grade_ids. Anything that cannot be matched gets a status, never a silent 0.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import nbformat

from autograder.cells import grade_id
from autograder.results import Status

__all__ = [
    "MAX_NOTEBOOK_BYTES",
    "MAX_WALK_DEPTH",
    "Handed",
    "Identity",
    "IntakeLimits",
    "Job",
    "Manifest",
    "SubmissionError",
    "alongside",
    "collect",
    "identify",
    "item_key",
    "lms_file_name",
    "read_capped",
    "read_submission",
    "safe_key",
    "walk",
]

log = logging.getLogger(__name__)

MAX_NOTEBOOK_BYTES = 64 * 1024**2  # far above any honest notebook without outputs
_SKIP_DIRS = frozenset({"__MACOSX", ".ipynb_checkpoints"})
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.@-]+")
_MAX_KEY = 64


class SubmissionError(Exception):
    """A file that cannot be read as submitted; the message is safe to show (no contents)."""


# ---------------------------------------------------------------------------------------
# Reading one file: never through a link, never unbounded, never quoting contents.


def _kind(mode: int) -> str:
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
            raise SubmissionError(f"not a regular file ({_kind(info.st_mode)})")
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


# ---------------------------------------------------------------------------------------
# Who a folder or file belongs to, as the LMS named it.

_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assign(?:submission|feedback)_[a-z]+_?(?P<rest>.*)$")
_CANVAS = re.compile(r"^(?P<name>[^_]+?)(?:_LATE)?_(?P<id>\d+)_(?P<sub>\d+)_(?P<rest>.+)$")
# The first "_<user>_attempt_<date>" names the student (the assignment name is
# Blackboard's); what follows is the student's own file name and may contain anything.
_BLACKBOARD = re.compile(
    r"^(?P<assign>.+?)_(?P<name>[^_]+)_attempt_(?P<date>\d{4}(?:-\d{2}){5})(?:_(?P<rest>.+))?$"
)
_GRADESCOPE = re.compile(r"^submission_(?P<id>\d+)$")


@dataclass(frozen=True)
class Identity:
    """One student as the LMS gave them: ``origin`` tells students apart, ``display`` is shown."""

    display: str  # the name exactly as given, non-ASCII kept
    lms_id: str = ""  # the LMS's id or username, "" when the name carries none
    lms: Literal["moodle", "canvas", "blackboard", "gradescope", ""] = ""

    @property
    def origin(self) -> str:
        return f"{self.lms}:{self.lms_id}" if self.lms_id else f"name:{self.display}"


def readable_name(name: str) -> str:
    """A file name as text: bytes that were not UTF-8 (os.listdir keeps them as lone
    surrogates, e.g. "Jos\\udce9" from a cp1252 zip) decoded as cp1252, the LMSs' usual
    legacy encoding, so that a name can be stored, written to a CSV and shown."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "surrogateescape")
        return raw.decode("cp1252", errors="replace")


def identify(name: str, *, folder: bool) -> tuple[Identity, str] | None:
    """(student, the file's own name) for an entry of the submissions root; None if no student.

    A folder is always a student; a flat file needs an LMS prefix, or the legacy
    ``<student>_<anything>.ipynb`` form.
    """
    name = readable_name(name)
    if m := _MOODLE.match(name):
        return Identity(m["name"], m["id"], "moodle"), m["rest"]
    if folder:
        if m := _GRADESCOPE.match(name):
            return Identity(name, name, "gradescope"), ""
        return Identity(name), ""
    if m := _CANVAS.match(name):
        return Identity(m["name"], m["id"], "canvas"), m["rest"]
    if m := _BLACKBOARD.match(name):
        return Identity(m["name"], m["name"], "blackboard"), m["rest"] or ""
    if name.endswith(".ipynb") and "_" in name and not name.startswith("_"):
        return Identity(name.split("_", 1)[0]), name
    return None


def lms_file_name(name: str) -> str:
    """The name the student gave a file, without an LMS's flat-download prefix."""
    found = identify(name, folder=False)
    return found[1] if found is not None and found[1] else name


def _slug(text: str) -> str:
    # Accents are dropped by decomposition only; other scripts leave nothing, and the hash
    # added by ``safe_key`` keeps such students apart.
    ascii_only = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _KEY_CHARS.sub("_", ascii_only).strip("._-")[:_MAX_KEY].strip("._-")


def _short_hash(text: str) -> str:
    # NFC first: one name in composed or decomposed form (macOS zips) hashes alike
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8", "surrogateescape")).hexdigest()[
        :8
    ]


def safe_key(identity: Identity) -> str:
    """An ASCII file-name-safe key: the name itself when already safe, else slug + id or hash."""
    slug = _slug(identity.display)
    if identity.lms_id:
        lms_id = _slug(identity.lms_id) or _short_hash(identity.lms_id)
        return lms_id if slug == lms_id else f"{slug or 'student'}_{lms_id}"
    if slug == identity.display:
        return slug
    return f"{slug or 'student'}-{_short_hash(identity.display)}"


def _assign_keys(identities: Iterable[Identity]) -> dict[Identity, str]:
    """Distinct identities -> distinct keys (case-insensitively, for case-folding file systems)."""
    keys = {ident: safe_key(ident) for ident in identities}
    for _ in range(2):
        groups: dict[str, list[Identity]] = {}
        for ident, key in keys.items():
            groups.setdefault(key.casefold(), []).append(ident)
        clashes = [group for group in groups.values() if len(group) > 1]
        if not clashes:
            return keys
        for group in clashes:
            for ident in group:
                keys[ident] = f"{keys[ident]}-{_short_hash(ident.origin)}"
    # Only a hash collision or a deliberately crafted name gets here: number them in a stable order.
    taken: set[str] = set()
    for ident in sorted(keys, key=lambda i: i.origin):
        key, n = keys[ident], 1
        while key.casefold() in taken:
            n += 1
            key = f"{keys[ident]}-{n}"
        keys[ident] = key
        taken.add(key.casefold())
    return keys


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


def _unpack(archive_path: Path, unpack_dir: Path, limits: IntakeLimits) -> dict[tuple[str, ...], str]:
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
                if not parts or parts[0] in _SKIP_DIRS:
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
                    raise SubmissionError(f"not a regular file ({_kind(kind)}): not extracted")
                else:
                    _extract_one(archive, info, fresh.joinpath(*parts), budget, limits)
            except Exception as exc:  # this entry only: the rest is unpacked and graded
                if owner:
                    problems[owner] = _extract_reason(exc)
                else:
                    log.warning("intake: zip entry %r refused: %s", name[:200], _extract_reason(exc))
    return problems


# ---------------------------------------------------------------------------------------
# Walking the submissions: what each student handed in.


@dataclass
class Handed:
    """What one student handed in, before matching (filled by ``walk``; an nbgrader course's
    folders are walked the same way, see ``autograder.nbcourse``)."""

    folder: Path | None = None  # the student's folder; None for flat downloads
    notebooks: list[Path] = field(default_factory=list)
    beside: list[Path] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (name shown, why not read)
    zips: list[tuple[Path, str]] = field(default_factory=list)  # (zip handed in, name shown)
    flat: set[Path] = field(default_factory=set)  # files given as flat LMS entries (names carry a prefix)


def _is_zip(path: Path) -> bool:
    return path.name.lower().endswith(".zip") and not path.name.startswith(".")


MAX_WALK_DEPTH = 64  # folders below a hand-in; far past any honest one, far under the recursion limit


def walk(folder: Path, shown: str, handed: Handed, *, zips: bool = True) -> None:
    """Regular files under ``folder``; links and special files become problems, never followed.
    Zips are also noted for unpacking when ``zips`` (the student's own files, not a zip's).

    An explicit stack, not ``os.walk`` (recursive: a deep enough chain of folders raises
    RecursionError), and no deeper than ``MAX_WALK_DEPTH``: a deeper folder is a problem.
    Order as ``os.walk`` top-down with sorted names: a folder's files, then its folders."""
    stack: list[tuple[Path, int]] = [(folder, 0)]
    while stack:
        here, depth = stack.pop()
        try:
            with os.scandir(here) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            where = here.relative_to(folder.parent)  # as os.walk's onerror named it
            handed.problems.append((str(where), f"cannot list folder ({exc.strerror or type(exc).__name__})"))
            continue
        folders = []
        for entry in entries:
            path = here / entry.name
            rel = f"{shown}/{path.relative_to(folder)}"
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                if entry.name in _SKIP_DIRS:
                    continue
                if depth + 1 > MAX_WALK_DEPTH:
                    handed.problems.append(
                        (rel, f"folder nested too deep (over {MAX_WALK_DEPTH} levels): not read")
                    )
                else:
                    folders.append(path)
                continue
            try:
                info = path.lstat()
            except OSError as exc:
                handed.problems.append((rel, f"cannot read file ({exc.strerror})"))
                continue
            mode = info.st_mode
            if not stat.S_ISREG(mode):
                handed.problems.append((rel, f"not a regular file ({_kind(mode)}): not read"))
            elif info.st_nlink > 1:  # a hard link may be any file on the host (a solution, say)
                handed.problems.append(
                    (rel, "not a regular file of its own (it has other hard links): not read")
                )
            elif entry.name.endswith(".ipynb"):
                hidden = any(p.startswith(".") for p in path.relative_to(folder).parts)
                if not hidden:  # "._x.ipynb" resource forks and hidden copies are not hand-ins
                    handed.notebooks.append(path)
            else:
                handed.beside.append(path)
                if zips and _is_zip(path):
                    handed.zips.append((path, rel))
        stack.extend((sub, depth + 1) for sub in reversed(folders))


def _unpack_handed(handed: Handed, inner_root: Path, limits: IntakeLimits) -> None:
    """Unpack the zips a student handed in (one level) into ``inner_root`` and walk them."""
    for path, shown in handed.zips:
        # Named by the zip's path, so a re-run replaces the same folder (``_unpack`` is atomic).
        target = inner_root / hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        try:
            problems = _unpack(path, target, limits)
        except ValueError as exc:  # not a readable zip, or far too many entries: this file only
            why = str(exc).removeprefix(f"{path.name}: ")
            handed.problems.append((shown, why))
            continue
        except OSError as exc:
            handed.problems.append((shown, f"cannot unpack ({exc.strerror or type(exc).__name__})"))
            continue
        for parts, why in sorted(problems.items()):
            handed.problems.append((f"{shown}/{'/'.join(parts)}", why))
        walk(target, shown, handed, zips=False)


def _handed_in(root: Path, zip_problems: dict[tuple[str, ...], str]) -> dict[Identity, Handed]:
    """Student -> what they handed in, for an unpacked folder."""
    entries = [p for p in sorted(root.iterdir()) if p.name not in _SKIP_DIRS and not p.name.startswith(".")]
    wrapper = entries[0] if len(entries) == 1 else None
    # An LMS student folder (Moodle's "<name>_<id>_assignsubmission_file_") is never a wrapper,
    # even when it is the only one and keeps its notebook in a sub-folder.
    lms_folder = wrapper is not None and bool((found := identify(wrapper.name, folder=True)) and found[0].lms)
    if (
        wrapper is not None
        and not lms_folder
        and not wrapper.is_symlink()
        and wrapper.is_dir()
        and not any(wrapper.glob("*.ipynb"))
    ):
        inner = {
            parts[1:]: why
            for parts, why in zip_problems.items()
            if parts[:1] == (wrapper.name,) and parts[1:]
        }
        for parts, why in zip_problems.items():
            if parts[1:] not in inner:
                log.warning("intake: zip entry %s belongs to no student: %s", "/".join(parts), why)
        return _handed_in(wrapper, inner)  # a zip with one wrapping folder

    students: dict[str, tuple[Identity, Handed]] = {}  # by Identity.origin

    def of(name: str, *, folder: bool) -> tuple[Handed, str] | None:
        found = identify(name, folder=folder)
        if found is None:
            return None
        return students.setdefault(found[0].origin, (found[0], Handed()))[1], found[1]

    for entry in entries:
        try:
            info = entry.lstat()
        except OSError as exc:  # vanished or unreadable meanwhile: this entry only
            log.warning("intake: cannot read %s (%s); ignored", entry.name, exc.strerror)
            continue
        mode = info.st_mode
        target = of(entry.name, folder=stat.S_ISDIR(mode) or stat.S_ISLNK(mode))
        if target is None:
            log.warning("intake: %s belongs to no student; ignored", entry.name)
            continue
        handed, _ = target
        if stat.S_ISDIR(mode):
            handed.folder = handed.folder or entry
            walk(entry, entry.name, handed)
        elif not stat.S_ISREG(mode):
            handed.problems.append((entry.name, f"not a regular file ({_kind(mode)}): not read"))
        elif info.st_nlink > 1:
            handed.problems.append(
                (entry.name, "not a regular file of its own (it has other hard links): not read")
            )
        elif entry.name.endswith(".ipynb"):
            handed.notebooks.append(entry)
        else:
            handed.beside.append(entry)
            handed.flat.add(entry)
            if _is_zip(entry):
                handed.zips.append((entry, entry.name))
    for parts, why in sorted(zip_problems.items()):
        if parts[0] in _SKIP_DIRS:
            continue
        target = of(parts[0], folder=len(parts) > 1)
        if target is None:
            log.warning("intake: zip entry %s belongs to no student: %s", "/".join(parts), why)
            continue
        target[0].problems.append(("/".join(parts), why))
    return dict(students.values())


def _add_batches(
    root: Path, students: dict[Identity, Handed], batches_root: Path, limits: IntakeLimits
) -> None:
    """A zip at the top of a submissions folder that belongs to no student is another LMS
    download (a late batch, say): its students are graded with the others, never dropped."""
    for entry in sorted(root.iterdir()):
        if not entry.name.lower().endswith(".zip") or identify(entry.name, folder=False) is not None:
            continue
        try:
            if not stat.S_ISREG(entry.lstat().st_mode):
                continue
            target = (
                batches_root / hashlib.sha256(entry.name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
            )
            problems = _unpack(entry, target, limits)
            batch = _handed_in(target, problems)
        except Exception as exc:  # an unreadable batch is said, and costs nobody else
            log.warning(
                "intake: %s at the top of the submissions could not be unpacked (%s)",
                entry.name,
                type(exc).__name__,
            )
            continue
        log.warning(
            "intake: %s at the top of the submissions holds %d students; graded with the others",
            entry.name,
            len(batch),
        )
        for ident, handed in batch.items():
            if ident in students:  # the same student in both: everything is considered
                students[ident].notebooks.extend(handed.notebooks)
                students[ident].beside.extend(handed.beside)
                students[ident].problems.extend(handed.problems)
            else:
                students[ident] = handed


def collect(
    submissions: Path, manifest: Manifest, *, unpack_dir: Path, limits: IntakeLimits = IntakeLimits()
) -> list[Job]:
    """Every (student, assignment) pair, with the notebook to grade or a status.

    The submissions root may itself be (or sit behind) a link, the instructor's choice;
    nothing inside it is followed.
    """
    submissions = Path(submissions).resolve()
    zip_problems: dict[tuple[str, ...], str] = {}
    if submissions.is_file() and zipfile.is_zipfile(submissions):
        zip_problems = _unpack(submissions, Path(unpack_dir), limits)
        root = Path(unpack_dir)
    elif submissions.is_dir():
        root = submissions
    else:
        raise FileNotFoundError(f"no submissions folder or zip at {submissions}")

    students = _handed_in(root, zip_problems)
    if submissions.is_dir():
        _add_batches(root, students, Path(unpack_dir).with_name(Path(unpack_dir).name + "-batches"), limits)
    inner_root = Path(unpack_dir).with_name(Path(unpack_dir).name + "-inner")
    for handed in students.values():
        try:
            _unpack_handed(handed, inner_root, limits)
        except Exception as exc:  # one student's zip must not cost the others
            handed.problems.append(("zip", f"cannot unpack ({type(exc).__name__})"))
    keys = _assign_keys(students)
    jobs: list[Job] = []
    for ident in sorted(students, key=lambda i: keys[i]):
        handed, key = students[ident], keys[ident]
        try:
            jobs.extend(_match_student(key, ident.display, handed, manifest, root))
        except Exception as exc:  # a grader bug on one student must not cost the others
            why = f"intake error ({type(exc).__name__})"
            jobs.extend(
                Job(key, stem, None, Status.UNREADABLE, [why], ident.display)
                for stem in sorted(manifest.grade_ids)
            )
    return jobs


# ---------------------------------------------------------------------------------------
# Matching notebooks to assignments.


@dataclass(frozen=True)
class Manifest:
    """What each assignment looks like: {stem: grade_ids of its nbgrader cells}."""

    grade_ids: dict[str, frozenset[str]]

    @classmethod
    def from_notebooks(cls, notebooks: dict[str, nbformat.NotebookNode]) -> Manifest:
        ids = {}
        for stem, nb in notebooks.items():
            ids[stem] = frozenset(gid for c in nb.cells if (gid := grade_id(c)) is not None)
        return cls(grade_ids=ids)

    def match_name(self, name: str) -> str | None:
        lowered = re.sub(r"[\s\-]+", "_", name.lower())
        for stem in sorted(self.grade_ids, key=len, reverse=True):
            if lowered == f"{stem.lower()}.ipynb":
                return stem
        for stem in sorted(self.grade_ids, key=len, reverse=True):
            if stem.lower() in lowered:
                return stem
        return None

    def match_content(self, ids: set[str]) -> str | None:
        best, score = None, 0.0
        for stem, known in self.grade_ids.items():
            if known:
                overlap = len(ids & known) / len(known)
                if overlap > score:
                    best, score = stem, overlap
        return best if score >= 0.5 else None


def item_key(assignment: str, notebook_name: str = "") -> str:
    """What one graded notebook is called across the run (sources, ledger, report columns):
    the assignment itself when the notebook is named after it (every notebook of
    ``grade FOLDER``), else ``assignment/notebook`` — an nbgrader course's assignment
    folder may hold several notebooks, and "/" cannot occur in either name."""
    return assignment if notebook_name in ("", assignment) else f"{assignment}/{notebook_name}"


class NotebookItem:
    """What a submission (``Job``) and its result (``pipeline.SubmissionResult``) say of
    where they belong: ``assignment`` and ``notebook_name`` ("" when the notebook is named
    after its assignment)."""

    assignment: str
    notebook_name: str

    @property
    def notebook_id(self) -> str:
        """The notebook's stem: the exercise registry's and nbgrader's notebook id."""
        return self.notebook_name or self.assignment

    @property
    def key(self) -> str:
        """``item_key``: the assignment, or ``assignment/notebook``."""
        return item_key(self.assignment, self.notebook_name)


@dataclass
class Job(NotebookItem):
    """One (student, assignment) to grade."""

    student: str  # the collision-free safe key (ASCII, file-name safe): gradebook id, folders
    assignment: str
    path: Path | None  # the notebook, None when missing or unreadable
    status: Status | Literal["pending"] = "pending"  # or MISSING / UNREADABLE, decided at intake
    notes: list[str] = field(default_factory=list)
    display: str = ""  # the name as the LMS gave it, non-ASCII kept
    beside: tuple[Path, ...] = ()  # other regular files the student handed in, for the tampering scan
    folder: Path | None = None  # what ``beside`` is relative to: the student's folder, or the flat root
    # The files of ``beside`` that sit in the notebook's own folder (or below it), each with
    # its path relative to the notebook: what grading puts next to it, as nbgrader does.
    alongside: tuple[tuple[Path, PurePosixPath], ...] = ()
    # The nbgrader notebook (stem) when it is not named after the assignment (``grade --course``).
    notebook_name: str = ""
    # The instructor's files of the assignment (``grade --course``: ``source/<assignment>/``'s
    # other files), each with its path relative to the notebook: put next to it over the
    # student's, as ``nbgrader autograde`` does. Trusted; never scanned as the student's.
    provided: tuple[tuple[Path, PurePosixPath], ...] = ()


def alongside(notebook: Path, handed: Handed) -> tuple[tuple[Path, PurePosixPath], ...]:
    """(file, path relative to ``notebook``) for the files handed in next to it or below it."""
    here, out = notebook.parent, []
    for path in handed.beside:
        if path in handed.flat:  # a flat LMS entry: only beside a flat notebook, by its own name
            if notebook.parent == path.parent:
                out.append((path, PurePosixPath(lms_file_name(path.name))))
        elif path.is_relative_to(here):
            out.append((path, PurePosixPath(path.relative_to(here).as_posix())))
    return tuple(out)


def _grade_ids(path: Path) -> set[str] | None:
    """The grade_ids of a notebook's nbgrader cells; None when it cannot be read (never raises)."""
    try:
        data = json.loads(read_capped(path, MAX_NOTEBOOK_BYTES).decode("utf-8", errors="replace"))
        return {
            gid for c in data.get("cells", []) if isinstance(c, dict) and (gid := grade_id(c)) is not None
        }
    except Exception:  # RecursionError, MemoryError, a link, any decoder error: this file only
        return None


def _match_student(student: str, display: str, handed: Handed, manifest: Manifest, root: Path) -> list[Job]:
    # (rank, path or None for a file that cannot be read, shown name, how matched or why unread)
    candidates: dict[str, list[tuple[int, Path | None, str, str]]] = {}
    notes: list[str] = []
    for path in handed.notebooks:
        own = lms_file_name(path.name)
        stem = manifest.match_name(own) or manifest.match_name(path.name)
        how, rank = "by name", 0 if own in {f"{s}.ipynb" for s in manifest.grade_ids} else 1
        if stem is None:
            ids = _grade_ids(path)
            stem = manifest.match_content(ids) if ids else None
            how, rank = "by its cells", 2
        if stem is None:
            notes.append(f"{path.name}: not matched to any assignment")
            continue
        candidates.setdefault(stem, []).append((rank, path, path.name, how))
    for shown, why in handed.problems:
        stem = (
            manifest.match_name(lms_file_name(PurePosixPath(shown).name))
            if shown.endswith(".ipynb")
            else None
        )
        if stem is None:
            notes.append(f"{shown}: {why}")
        else:
            candidates.setdefault(stem, []).append((3, None, shown, why))
    beside, folder = tuple(handed.beside), handed.folder or root
    jobs = []
    for stem in sorted(manifest.grade_ids):
        found = sorted(candidates.get(stem, []), key=lambda c: (c[0], c[2]))
        if not found:
            jobs.append(
                Job(
                    student,
                    stem,
                    None,
                    Status.MISSING,
                    [f"no notebook for {stem}", *notes],
                    display,
                    beside,
                    folder,
                )
            )
            continue
        rank, chosen, shown, how = found[0]
        if chosen is None:
            jobs.append(
                Job(
                    student,
                    stem,
                    None,
                    Status.UNREADABLE,
                    [f"{shown}: {how}", *notes],
                    display,
                    beside,
                    folder,
                )
            )
            continue
        job = Job(
            student,
            stem,
            chosen,
            display=display,
            beside=beside,
            folder=folder,
            alongside=alongside(chosen, handed),
        )
        if rank > 0:
            job.notes.append(f"matched {chosen.name} {how}")
        for _, other, other_name, why in found[1:]:
            job.notes.append(
                f"also found {other_name}; graded {chosen.name}" + ("" if other else f" ({why})")
            )
        job.notes.extend(notes)
        jobs.append(job)
    return jobs
