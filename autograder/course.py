"""nbgrader course directories: create one, put the instructor sources in, run nbgrader.

A course directory is what nbgrader expects (``source/``, ``release/``,
``submitted/``, ``autograded/``, ``feedback/``, ``nbgrader_config.py`` and the
gradebook). ``release`` builds a throw-away one; ``grade`` keeps one in the run
folder (``course_run/`` by default) so that nbgrader's own tools (formgrader,
``nbgrader export``) work on it too.

The gradebook is SQLite in the course directory unless a URL says otherwise. A
SQLite gradebook on a network file system is refused before anything is created:
SQLite's locking is not reliable there (nbgrader issue #1854 left a 0-byte database).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.dblock import database_lock
from autograder.mounts import check_sqlite_location

__all__ = [
    "CONFIG_DIR",
    "CourseDir",
    "assignment_stems",
    "nbgrader_env",
    "generate_assignments",
    "source_digest",
]

CONFIG_DIR = Path(__file__).resolve().parent / "config"
_DIGEST_FILE = ".source-digest"


@dataclass(frozen=True)
class CourseDir:
    """Paths of one nbgrader course directory."""

    root: Path
    db_url: str

    @classmethod
    def at(cls, root: Path, *, db_url: str | None = None) -> CourseDir:
        root = Path(root).resolve()
        url = db_url or os.environ.get("AUTOGRADER_DB_URL") or f"sqlite:///{root / 'gradebook.db'}"
        check_sqlite_location(url)  # before nbgrader creates the file
        return cls(root=root, db_url=url)

    # ``notebook`` names a notebook not named after its assignment (an nbgrader course's).
    def source(self, stem: str, notebook: str = "") -> Path:
        return self.root / "source" / stem / f"{notebook or stem}.ipynb"

    def release(self, stem: str, notebook: str = "") -> Path:
        return self.root / "release" / stem / f"{notebook or stem}.ipynb"

    def autograded(self, student: str, stem: str, notebook: str = "") -> Path:
        return self.root / "autograded" / student / stem / f"{notebook or stem}.ipynb"

    def submitted(self, student: str, stem: str) -> Path:
        return self.root / "submitted" / student / stem / f"{stem}.ipynb"

    def feedback(self, student: str, stem: str) -> Path:
        return self.root / "feedback" / student / stem / f"{stem}.html"

    def install(self, solutions: dict[str, Path]) -> list[str]:
        """Copy the course config and the instructor notebooks in; run
        ``nbgrader generate_assignment`` for every assignment whose source changed.
        Returns the stems that were (re)generated."""
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CONFIG_DIR / "nbgrader_config.py", self.root / "nbgrader_config.py")
        changed = []
        for stem, path in sorted(solutions.items()):
            digest = source_digest(path)
            marker = self.root / "source" / stem / _DIGEST_FILE
            if marker.exists() and marker.read_text() == digest and self.release(stem).exists():
                continue
            self.source(stem).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.source(stem))
            changed.append(stem)
        if changed:
            # Graders on several machines sharing a PostgreSQL gradebook each install their
            # course: one at a time, or two would create the same tables and rows at once.
            with database_lock(self.db_url):
                generate_assignments(self, changed)
            for stem in changed:
                (self.root / "source" / stem / _DIGEST_FILE).write_text(source_digest(solutions[stem]))
        return changed


def assignment_stems(solutions_dir: Path) -> dict[str, Path]:
    """Instructor notebooks by assignment name (= notebook stem)."""
    return {p.stem: p for p in sorted(Path(solutions_dir).glob("*.ipynb"))}


def source_digest(path: Path) -> str:
    return hashlib.sha256(
        Path(path).read_bytes() + (CONFIG_DIR / "nbgrader_config.py").read_bytes()
    ).hexdigest()


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader subprocesses: it runs ``alembic`` from PATH, so the
    interpreter's own bin/ comes first."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("MPLBACKEND", "Agg")
    return env


# One nbgrader process generates every changed assignment: its start-up (traitlets,
# sqlalchemy, alembic) costs more than generating a notebook.
_GENERATE = r"""
import sys
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config.loader import PyFileConfigLoader

root, db_url, *stems = sys.argv[1:]
config = PyFileConfigLoader("nbgrader_config.py", path=root).load_config()
config.CourseDirectory.root = root
config.CourseDirectory.db_url = db_url
api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
failed = 0
for stem in stems:
    result = api.generate_assignment(stem, force=True, create=True)
    if not result["success"]:
        failed += 1
        sys.stderr.write(f"generate_assignment {stem} failed:\n{result.get('error', '')}\n{result.get('log', '')}\n")
sys.exit(1 if failed else 0)
"""


def generate_assignments(course: CourseDir, stems: Sequence[str]) -> None:
    """``nbgrader generate_assignment`` for each of ``stems`` in ``course``, with the course's
    own ``nbgrader_config.py``, in one subprocess; raises RuntimeError with its log on failure."""
    proc = subprocess.run(
        [sys.executable, "-c", _GENERATE, str(course.root), course.db_url, *stems],
        cwd=course.root,
        env=nbgrader_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"nbgrader generate_assignment {' '.join(stems)} failed in {course.root}:\n{proc.stderr[-4000:]}"
        )


def read_notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)
