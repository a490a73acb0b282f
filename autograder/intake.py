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

Reading one file is ``autograder.intake_read``, naming students ``autograder.intake_names``,
unpacking zips ``autograder.intake_zip``; their public names are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import nbformat

from autograder.cells import grade_id
from autograder.intake_names import Identity, assign_keys, identify, lms_file_name, safe_key
from autograder.intake_read import (
    MAX_NOTEBOOK_BYTES,
    SubmissionError,
    file_kind,
    read_capped,
    read_submission,
)
from autograder.intake_zip import SKIP_DIRS, IntakeLimits, unpack
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
_DEFAULT_LIMITS = IntakeLimits()  # frozen: one shared default is safe


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
                if entry.name in SKIP_DIRS:
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
                handed.problems.append((rel, f"not a regular file ({file_kind(mode)}): not read"))
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
        # Named by the zip's path, so a re-run replaces the same folder (``unpack`` is atomic).
        target = inner_root / hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        try:
            problems = unpack(path, target, limits)
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
    entries = [p for p in sorted(root.iterdir()) if p.name not in SKIP_DIRS and not p.name.startswith(".")]
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
            handed.problems.append((entry.name, f"not a regular file ({file_kind(mode)}): not read"))
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
        if parts[0] in SKIP_DIRS:
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
            problems = unpack(entry, target, limits)
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
    submissions: Path, manifest: Manifest, *, unpack_dir: Path, limits: IntakeLimits = _DEFAULT_LIMITS
) -> list[Job]:
    """Every (student, assignment) pair, with the notebook to grade or a status.

    The submissions root may itself be (or sit behind) a link, the instructor's choice;
    nothing inside it is followed.
    """
    submissions = Path(submissions).resolve()
    zip_problems: dict[tuple[str, ...], str] = {}
    if submissions.is_file() and zipfile.is_zipfile(submissions):
        zip_problems = unpack(submissions, Path(unpack_dir), limits)
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
    keys = assign_keys(students)
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
