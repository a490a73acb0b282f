"""Intake step: a folder or a zip of submissions -> one job per (student, assignment).

Accepted layouts:

- a folder with one sub-folder per student (any nesting inside it);
- a zip of such folders, or a flat zip as LMS bulk downloads make them
  (``<student>_<ids>_<original name>.ipynb``: the student is the part before the
  first underscore).

Notebooks are matched to assignments by the manifest (``Manifest``: for each
assignment its file name and the grade_ids of its cells): by exact name, by the
assignment name appearing in a renamed file ("01_perceptron (2).ipynb",
"Copy of 01_perceptron.ipynb"), and for files renamed beyond recognition by their
nbgrader grade_ids. Anything that cannot be matched gets a status, never a silent 0.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = ["Job", "Manifest", "collect", "sanitize_student"]

_SKIP = re.compile(r"(^|/)(__MACOSX|\.ipynb_checkpoints|\.)")


@dataclass(frozen=True)
class Manifest:
    """What each assignment looks like: {stem: grade_ids of its nbgrader cells}."""

    grade_ids: dict[str, frozenset[str]]

    @classmethod
    def from_notebooks(cls, notebooks: dict[str, nbformat.NotebookNode]) -> Manifest:
        ids = {}
        for stem, nb in notebooks.items():
            ids[stem] = frozenset(
                c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "grade_id" in c.metadata.get("nbgrader", {})
            )
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


@dataclass
class Job:
    """One (student, assignment) to grade."""

    student: str
    assignment: str
    path: Path | None  # the notebook, None when missing
    status: str = "pending"  # "pending", or "missing" / "unreadable" decided at intake
    notes: list[str] = field(default_factory=list)


def sanitize_student(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.@-]+", "_", name).strip("._")
    return cleaned or "unknown"


def _student_dirs(root: Path) -> dict[str, list[Path]]:
    """Student -> notebook files, for an unpacked folder."""
    files: dict[str, list[Path]] = {}
    entries = [p for p in sorted(root.iterdir()) if not _SKIP.search(p.name)]
    if len(entries) == 1 and entries[0].is_dir() and not any(entries[0].glob("*.ipynb")):
        return _student_dirs(entries[0])  # a zip with one wrapping folder
    for entry in entries:
        if entry.is_dir():
            student = sanitize_student(re.sub(r"_\d+_assignsubmission_file_?$", "", entry.name))
            notebooks = [p for p in sorted(entry.rglob("*.ipynb")) if not _SKIP.search(str(p.relative_to(entry)))]
            files.setdefault(student, []).extend(notebooks)
        elif entry.suffix == ".ipynb" and "_" in entry.name:
            files.setdefault(sanitize_student(entry.name.split("_", 1)[0]), []).append(entry)
    return files


def collect(submissions: Path, manifest: Manifest, *, unpack_dir: Path) -> list[Job]:
    """Every (student, assignment) pair, with the notebook to grade or a status."""
    submissions = Path(submissions)
    if submissions.is_file() and zipfile.is_zipfile(submissions):
        if unpack_dir.exists():
            shutil.rmtree(unpack_dir)
        with zipfile.ZipFile(submissions) as archive:
            for member in archive.infolist():
                target = (unpack_dir / member.filename).resolve()
                if not str(target).startswith(str(unpack_dir.resolve())):
                    continue  # a path-traversal entry ("../../x"): ignored
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.file_size < 200 * 1024**2:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(member))
        root = unpack_dir
    elif submissions.is_dir():
        root = submissions
    else:
        raise FileNotFoundError(f"no submissions folder or zip at {submissions}")

    jobs: list[Job] = []
    for student, paths in sorted(_student_dirs(root).items()):
        jobs.extend(_match_student(student, paths, manifest))
    return jobs


def _grade_ids(path: Path) -> set[str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        return {
            c["metadata"]["nbgrader"]["grade_id"]
            for c in data.get("cells", [])
            if isinstance(c, dict) and isinstance(c.get("metadata", {}).get("nbgrader"), dict)
            and "grade_id" in c["metadata"]["nbgrader"]
        }
    except (ValueError, AttributeError, TypeError, KeyError):
        return None


def _match_student(student: str, paths: list[Path], manifest: Manifest) -> list[Job]:
    candidates: dict[str, list[tuple[int, Path, str]]] = {}
    notes: list[str] = []
    for path in paths:
        stem = manifest.match_name(path.name)
        how, rank = "by name", 0 if path.name in {f"{s}.ipynb" for s in manifest.grade_ids} else 1
        if stem is None:
            ids = _grade_ids(path)
            stem = manifest.match_content(ids) if ids else None
            how, rank = "by its cells", 2
        if stem is None:
            notes.append(f"{path.name}: not matched to any assignment")
            continue
        candidates.setdefault(stem, []).append((rank, path, how))
    jobs = []
    for stem in sorted(manifest.grade_ids):
        found = sorted(candidates.get(stem, []), key=lambda c: (c[0], str(c[1])))
        if not found:
            extra = [n for n in notes]
            jobs.append(Job(student, stem, None, "missing", [f"no notebook for {stem}", *extra]))
            continue
        rank, path, how = found[0]
        job = Job(student, stem, path)
        if rank > 0:
            job.notes.append(f"matched {path.name} {how}")
        for _, other, _ in found[1:]:
            job.notes.append(f"also found {other.name}; graded {path.name}")
        jobs.append(job)
    return jobs
