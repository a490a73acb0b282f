"""Student bundle: the folder an instructor publishes as the students' repository or zip.

The course repository holds ``solutions/`` (every answer, every hidden test),
``autograder/`` and ``tests/``; students must get none of it. ``write_student_bundle``
writes a self-contained folder with only:

- ``notebooks/``: the released notebooks, byte for byte as committed;
- ``course_lib/`` with its data (no ``__pycache__``). ``course_lib/checks/`` ships: the
  visible self-checks import it. It holds no solution text; expected values come from
  ``course_lib.np_ref``, the reference students are allowed to read (and whose direct
  use re-verification traps);
- ``pyproject.toml`` / ``environment.yml`` for a package that installs only
  ``course_lib``, with the runtime dependencies students need (the course's own minus
  the grader-only ones);
- ``Makefile`` (``make lab``, ``make check``), ``README.md`` and ``selfcheck.py`` from
  ``autograder/bundle_files/``, plus a marker file that lets a re-run replace the folder.

The folder is built beside its destination and renamed into place, so a failed run
never leaves half a bundle, and a re-run replaces the previous bundle whole.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
import tomllib

from autograder.cells import HIDDEN_TEST_MARKERS, SOLUTION_MARKERS, is_grade, is_solution, nbgrader_meta

__all__ = [
    "BundleResult", "GRADER_ONLY_DEPENDENCIES", "MARKER", "REPO", "add_arguments", "main", "run_cli",
    "write_student_bundle",
]  # fmt: skip

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).resolve().parent / "bundle_files"
MARKER = ".student-bundle"  # its presence says "a bundle written here; safe to replace"
# Runtime dependencies of the course that only the grader needs.
GRADER_ONLY_DEPENDENCIES = frozenset({"nbgrader", "bleach"})
# conda-forge names that differ from PyPI's (as in tests/test_packaging.py).
_PIP_TO_CONDA = {"torch": "pytorch"}
# Folders of the repository a bundle must never be written into (or replace).
_PROTECTED = ("notebooks", "course_lib", "solutions", "autograder", "tests", ".git")
# As the instructor writes them: BEGIN SOLUTION, BEGIN HIDDEN TESTS, END SOLUTION, END HIDDEN TESTS.
_NBGRADER_MARKERS = tuple(
    f"### {m}" for pair in zip(SOLUTION_MARKERS, HIDDEN_TEST_MARKERS, strict=True) for m in pair
)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".ipynb_checkpoints", ".DS_Store")


@dataclass(frozen=True)
class BundleResult:
    out_dir: Path
    files: tuple[str, ...]  # every file written, relative to out_dir, sorted
    notebooks: tuple[str, ...]  # the assignment names shipped
    dependencies: tuple[str, ...]  # the student package's requirements
    replaced: bool  # an earlier bundle was there and has been replaced


def write_student_bundle(out_dir: Path, *, repo: Path = REPO) -> BundleResult:
    """Write the students' copy of the course at ``out_dir`` (replacing an earlier bundle).

    Raises ``ValueError`` when ``repo`` is not a course repository, when ``out_dir`` is
    inside (or above) the repository's own folders, or when ``out_dir`` holds something
    other than an earlier bundle.
    """
    repo = Path(repo).resolve()
    out_dir = Path(out_dir).resolve()
    _check_repo(repo)
    _check_destination(out_dir, repo)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
    stage.chmod(0o755)  # mkdtemp's 0700 would make the published folder private
    try:
        notebooks, dependencies = _fill(stage, repo)
        files = tuple(sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file()))
        replaced = _swap_in(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return BundleResult(out_dir, files, notebooks, dependencies, replaced)


def _check_repo(repo: Path) -> None:
    missing = [
        name
        for name in ("notebooks", "course_lib", "pyproject.toml", "Makefile")
        if not (repo / name).exists()
    ]
    if missing:
        raise ValueError(
            f"write_student_bundle: {repo} is not the course repository (no {', '.join(missing)})"
        )
    notebooks = sorted((repo / "notebooks").glob("*.ipynb"))
    if not notebooks:
        raise ValueError(
            f"write_student_bundle: no released notebooks in {repo / 'notebooks'}; run the release first"
        )
    # A safety net: an instructor notebook copied into notebooks/ by hand still has nbgrader's markers.
    for path in notebooks:
        for cell in nbformat.read(str(path), as_version=4).cells:
            marker = next((m for m in _NBGRADER_MARKERS if m in cell.source), None)
            if marker:
                raise ValueError(
                    f"write_student_bundle: {path} contains {marker!r}: it is not a released notebook; "
                    "run `python -m autograder release` first"
                )


def _check_destination(out_dir: Path, repo: Path) -> None:
    if out_dir == repo or out_dir in repo.parents:
        raise ValueError(
            f"write_student_bundle: {out_dir} would replace the repository {repo}; choose another folder"
        )
    for name in _PROTECTED:
        protected = repo / name
        if out_dir == protected or protected in out_dir.parents:
            raise ValueError(
                f"write_student_bundle: refusing to write into the repository's own {name}/ ({out_dir}); "
                "choose a folder outside it"
            )
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"write_student_bundle: {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise ValueError(
            f"write_student_bundle: {out_dir} is not empty and is not an earlier student bundle "
            f"(no {MARKER} file); refusing to replace it"
        )


def _swap_in(stage: Path, out_dir: Path) -> bool:
    """Rename the finished ``stage`` to ``out_dir``; an earlier bundle is moved aside first
    and deleted only once the new one is in place."""
    if not out_dir.exists():
        stage.rename(out_dir)
        return False
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old.rmdir()
    out_dir.rename(old)
    try:
        stage.rename(out_dir)
    except BaseException:
        old.rename(out_dir)  # put the earlier bundle back
        raise
    shutil.rmtree(old)
    return True


def _fill(stage: Path, repo: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    (stage / "notebooks").mkdir()
    sources = sorted((repo / "notebooks").glob("*.ipynb"))
    for path in sources:
        shutil.copyfile(path, stage / "notebooks" / path.name)
    shutil.copytree(repo / "course_lib", stage / "course_lib", ignore=_IGNORED)

    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    dependencies = tuple(
        d for d in project["dependencies"] if _requirement_name(d) not in GRADER_ONLY_DEPENDENCIES
    )
    (stage / "pyproject.toml").write_text(_pyproject(project, dependencies))
    (stage / "environment.yml").write_text(_environment(project, dependencies))
    (stage / "Makefile").write_text(_render("Makefile", TORCH_VERSION=_torch_version(repo)))
    (stage / "README.md").write_text(_render("README.md", NOTEBOOK_TABLE=_notebook_table(sources)))
    shutil.copyfile(TEMPLATES / "selfcheck.py", stage / "selfcheck.py")
    (stage / ".gitignore").write_text(".venv/\n__pycache__/\n.ipynb_checkpoints/\n*.egg-info/\nbuild/\n")
    (stage / MARKER).write_text("Written by `python -m autograder bundle`; a re-run replaces this folder.\n")
    return tuple(p.stem for p in sources), dependencies


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9_.\-]+)", requirement)
    if not match:
        raise ValueError(
            f"write_student_bundle: cannot read the requirement {requirement!r} in pyproject.toml"
        )
    return match.group(1).lower()


def _toml_list(items: Sequence[str]) -> str:
    return "[\n" + "".join(f'    "{item}",\n' for item in items) + "]"


def _pyproject(project: dict, dependencies: Sequence[str]) -> str:
    return f"""[build-system]
requires = ["setuptools>=68", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "dl-course-student"
version = "{project["version"]}"
description = "Your copy of the deep-learning course: the notebooks and the course_lib library."
readme = "README.md"
requires-python = "{project["requires-python"]}"
# torch: `make venv` installs it first, as a CPU build on machines without CUDA (see Makefile).
dependencies = {_toml_list(dependencies)}

[tool.setuptools.packages.find]
include = ["course_lib*"]

[tool.setuptools.package-data]
course_lib = ["datasets/*"]
"""


def _environment(project: dict, dependencies: Sequence[str]) -> str:
    lower = re.search(r">=\s*(\d+\.\d+)", project["requires-python"])
    python = f"python >={lower.group(1)},<3.14" if lower else "python"
    lines = []
    for requirement in dependencies:
        name = _requirement_name(requirement)
        spec = requirement.strip()[len(name) :].strip()
        lines.append(f"  - {_PIP_TO_CONDA.get(name, name)} {spec}".rstrip())
    body = "\n".join(lines)
    return f"""# Conda environment: conda env create -f environment.yml && conda activate dl-course
# The same packages as pyproject.toml; conda-forge's pytorch picks the CPU build on
# machines without CUDA.
name: dl-course
channels:
  - conda-forge
dependencies:
  - {python}
{body}
  - pip
  - pip:
      - --editable .
"""


def _torch_version(repo: Path) -> str:
    match = re.search(r"^TORCH_VERSION\s*\?=\s*(\S+)", (repo / "Makefile").read_text(), re.MULTILINE)
    if not match:
        raise ValueError(f"write_student_bundle: no `TORCH_VERSION ?= ...` line in {repo / 'Makefile'}")
    return match.group(1)


def _notebook_table(notebooks: Sequence[Path]) -> str:
    rows = []
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        graded = [nbgrader_meta(c) for c in nb.cells if is_grade(c)]
        answers = [c for c in nb.cells if is_solution(c)]
        points = sum(float(meta.get("points", 0)) for meta in graded)
        rows.append(f"| `{path.stem}` | {len(answers)} | {points:g} |")
    return "\n".join(rows)


def _render(name: str, **values: str) -> str:
    text = (TEMPLATES / name).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    left = re.findall(r"\{\{[A-Z_]+\}\}", text)
    if left:
        raise ValueError(f"write_student_bundle: template {name} has unfilled placeholders {left}")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m autograder bundle`` (also ``python -m autograder.bundle``)."""
    parser.add_argument(
        "out_dir", type=Path, help="where to write the students' copy (replaced if it is one)"
    )


def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``bundle``: 0 when written, 2 on bad input."""
    try:
        result = write_student_bundle(args.out_dir)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    verb = "replaced" if result.replaced else "wrote"
    print(f"{verb} {result.out_dir}: {len(result.notebooks)} notebooks, {len(result.files)} files")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.bundle", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_cli(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
