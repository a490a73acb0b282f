"""Files a student handed in beside the notebook, made ready for grading (trusted side).

Stock ``nbgrader autograde`` copies the whole submission folder next to the notebook, so
an honest ``import helpers`` or ``np.loadtxt("data.csv")`` works when graded. Here the
pipeline copies those files once per job into a root-only ``beside`` folder
(``prepare_beside``); inside each sandbox, before privileges are dropped,
``sandbox.fill_work`` copies them into the fresh work dir for the sandbox uid.

What is left out, and why (``LeftOut``): other notebooks, files whose name would shadow
a module (the tampering scan flags them; they are never run) or one of the course's
support modules (the kernel imports from its cwd before ``lib/``), anything not a regular
file (read with O_NOFOLLOW: a link is never followed), unsafe paths, a second file of
the same name, and whatever is beyond the caps on count and total size.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath

from autograder.intake import SubmissionError, read_capped
from autograder.scan import scan_files

__all__ = ["BesideCopy", "BesideLimits", "LeftOut", "link_beside", "prepare_beside"]


class LeftOut(Enum):
    """Why a file handed in beside the notebook is not put next to it when graded."""

    NOTEBOOK = "another notebook"
    SHADOWS_A_MODULE = "its name shadows a module"
    SHADOWS_COURSE_MODULE = "its name shadows one of the course's support modules"
    NOT_READABLE = "not a readable regular file"
    UNSAFE_PATH = "an unsafe path"
    SAME_PATH = "a second file of the same name"
    TOO_MANY = "beyond the limit on the number of files"
    TOO_LARGE = "beyond the limit on their total size"
    HIDDEN = "a hidden system file"
    REPLACED = "the instructor's copy from source/ is used"


@dataclass(frozen=True)
class BesideLimits:
    """Caps on what is copied next to one notebook (the work dir is a small tmpfs)."""

    max_files: int = 200
    max_bytes: int = 64 * 1024**2


@dataclass(frozen=True)
class BesideCopy:
    """What ``prepare_beside`` put in the folder, and what it left out."""

    copied: tuple[PurePosixPath, ...] = ()
    left_out: tuple[tuple[PurePosixPath, LeftOut], ...] = ()

    def notes(self) -> list[str]:
        """One line per file left out, for the result's notes (files the scan flags are
        reported as evidence already, so they are not repeated here)."""
        return [
            f"{path.as_posix()}: not put beside the notebook when graded ({why.value})"
            for path, why in self.left_out
            if why not in (LeftOut.SHADOWS_A_MODULE, LeftOut.HIDDEN)
        ]


# Resource forks and Finder files: macOS noise, never something the notebook reads.
_HIDDEN_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def _module_of(dest: PurePosixPath) -> str:
    """The top-level name ``import`` would find ``dest`` under, from the work dir."""
    return dest.parts[0].split(".")[0] if len(dest.parts) > 1 else dest.name.split(".")[0]


def _why_not(path: Path, dest: PurePosixPath, root: Path, course_modules: frozenset[str]) -> LeftOut | None:
    parts = dest.parts
    if not parts or dest.is_absolute() or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        return LeftOut.UNSAFE_PATH
    if dest.name.startswith("._") or dest.name in _HIDDEN_NAMES:
        return LeftOut.HIDDEN
    if dest.name.endswith(".ipynb"):
        return LeftOut.NOTEBOOK
    # By its name as handed in and by its place next to the notebook: either may shadow.
    if scan_files([path], root) or scan_files([Path(*parts)], Path()):
        return LeftOut.SHADOWS_A_MODULE
    if _module_of(dest) in course_modules:
        return LeftOut.SHADOWS_COURSE_MODULE
    return None


def prepare_beside(
    files: Sequence[tuple[Path, PurePosixPath]],
    into: Path,
    *,
    root: Path,
    course_modules: frozenset[str] = frozenset(),
    limits: BesideLimits = BesideLimits(),
    provided: Sequence[tuple[Path, PurePosixPath]] = (),
) -> BesideCopy:
    """Copy ``files`` (each: a file handed in, its path relative to the notebook) into the
    fresh folder ``into`` (root-only), within ``limits``, in a stable order.

    ``root`` is the student's folder, as the tampering scan sees names;
    ``course_modules`` the top-level names of the course's support modules (``tiny_checks``).
    ``provided`` are the instructor's files (``Job.provided``): copied first, within the same
    caps, and a student's file of the same path is left out (``LeftOut.REPLACED``) — nbgrader
    autograde overwrites the submission with them. They are trusted: no name rule applies
    but a safe path. Re-running replaces ``into`` as a whole."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(mode=0o700, parents=True)
    os.chmod(into, 0o700)
    copied: list[PurePosixPath] = []
    left: list[tuple[PurePosixPath, LeftOut]] = []
    taken: set[str] = set()
    budget = limits.max_bytes
    mine = {dest.as_posix().casefold() for _, dest in provided}
    # The instructor's first; then shallow paths first, then by name: the caps keep the files nearest the notebook.
    ordered = [(p, d, True) for p, d in sorted(provided, key=lambda f: (len(f[1].parts), f[1].as_posix()))]
    ordered += [(p, d, False) for p, d in sorted(files, key=lambda f: (len(f[1].parts), f[1].as_posix()))]
    for path, dest, trusted in ordered:
        unsafe = _why_not(path, dest, root, course_modules)
        why = (unsafe if unsafe is LeftOut.UNSAFE_PATH else None) if trusted else unsafe
        if why is None and not trusted and dest.as_posix().casefold() in mine:
            why = LeftOut.REPLACED
        if why is None and dest.as_posix().casefold() in taken:
            why = LeftOut.SAME_PATH
        if why is None and len(copied) >= limits.max_files:
            why = LeftOut.TOO_MANY
        if why is None:
            try:
                data = read_capped(path, budget)
            except SubmissionError as exc:
                why = LeftOut.TOO_LARGE if str(exc).startswith("too large") else LeftOut.NOT_READABLE
        if why is not None:
            left.append((dest, why))
            continue
        target = into.joinpath(*dest.parts)
        if any(p.is_file() for p in target.parents if p.is_relative_to(into) and p != into):
            left.append((dest, LeftOut.SAME_PATH))  # a file already holds a folder's name
            continue
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        budget -= len(data)
        taken.add(dest.as_posix().casefold())
        taken.update(PurePosixPath(*dest.parts[:n]).as_posix().casefold() for n in range(1, len(dest.parts)))
        copied.append(dest)
    return BesideCopy(tuple(copied), tuple(left))


def link_beside(beside: Path, scratch: Path) -> None:
    """Put the prepared ``beside`` folder into a job's scratch as ``scratch/beside``
    (hard links where the file system allows: one copy serves every sandbox of the job)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError:
            shutil.copy2(src, dst, follow_symlinks=False)

    shutil.copytree(beside, scratch / "beside", symlinks=True, copy_function=link)
    os.chmod(scratch / "beside", 0o700)
