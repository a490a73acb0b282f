"""The bundled sample class, derived from the instructor notebooks at demo time.

Each student is a recipe applied to every released notebook, so the sample class
stays in sync with solutions/ without committed copies. Honest students: ``perfect``,
``partial``, ``blank``. Faulty: ``corrupt`` (truncated JSON), ``renamed`` (one notebook
renamed beyond recognition, one missing, extra files), ``messy`` (old nbformat,
foreign metadata, duplicated / deleted / edited graded cells, forged outputs),
``looper`` (infinite loop), ``crasher`` (kills its kernel), ``hog`` (allocates
without bound), ``flood`` (prints without end). Dishonest: ``patcher``
(monkeypatches the checks), ``equalizer`` (always-equal objects + patched numpy
comparisons), ``copycat`` (calls course_lib's reference), ``hooker`` (IPython input
transformer neutering the tests), ``snoop`` (reads hidden tests / solutions /
gradebook), ``vandal`` (writes outside its scratch, plants an IPython startup file),
``shadower`` (submits a ``numpy.py`` beside perfect answers).

Expected outcome per student (what the demo and the tests check) is ``EXPECTED``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_output

from autograder.cells import is_answer, is_grade, nbgrader_meta, strip_solution_markers
from autograder.results import Status

__all__ = ["EXPECTED", "RECIPES", "solution_answers", "student_notebook", "write_sample_class"]


# status every submission of that student should get (None: depends on the notebook).
# FLAGGED always comes with evidence; every honest recipe is never flagged.
EXPECTED: dict[str, Status | None] = {
    "perfect": Status.GRADED,
    "partial": Status.GRADED,
    "blank": Status.GRADED,
    "corrupt": None,  # first notebook unreadable, the others graded
    "renamed": None,  # first notebook matched by content, second missing
    "messy": Status.GRADED,
    "looper": Status.TIMED_OUT,
    "crasher": Status.FAILED,
    "hog": Status.GRADED,
    "flood": Status.GRADED,
    "patcher": Status.FLAGGED,
    "equalizer": Status.FLAGGED,
    "copycat": Status.FLAGGED,
    "hooker": Status.FLAGGED,
    "snoop": Status.FLAGGED,  # its reads find nothing (the jail), but the attempt is evidence
    "vandal": Status.FLAGGED,  # likewise for its writes
    "shadower": Status.FLAGGED,  # perfect answers, and a numpy.py submitted beside them
}


# The checkout being graded: the snoop and the vandal aim at its real paths.
REPO = Path(__file__).resolve().parents[1]


def solution_answers(source: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> the instructor's answer with the solution markers removed."""
    out = {}
    for cell in source.cells:
        if is_answer(cell):
            out[nbgrader_meta(cell)["grade_id"]] = strip_solution_markers(cell.source)
    return out


def _answer_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if is_answer(c)]


def _with_answers(release: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    nb = copy.deepcopy(release)
    for cell in _answer_cells(nb):
        gid = nbgrader_meta(cell)["grade_id"]
        if gid in answers:
            cell.source = answers[gid]
    return nb


def _wrong(name: str, kind: str, body: str = "") -> str:
    if kind == "value":
        return f"{body}{name} = 0.0\n"
    return f"{body}def {name}(*args, **kwargs):\n    return None\n"


def _prefix_first(nb: nbformat.NotebookNode, code: str) -> nbformat.NotebookNode:
    first = _answer_cells(nb)[0]
    first.source = code + "\n" + first.source
    return nb


_PATCH_CHECKS = """\
import course_lib.checks._core as _core
for _ex in _core.exercises():
    object.__setattr__(_ex, "judge", lambda case, output: None)
"""

_EQUALIZER = """\
import sys
import numpy as _np
class _Equal(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __array_priority__ = 1000
_np.allclose = lambda *a, **k: True
_np.testing.assert_allclose = lambda *a, **k: None
for _m in list(sys.modules.values()):
    if getattr(_m, "assert_close", None) is not None and _m.__name__.startswith(("course_lib", "tiny")):
        _m.assert_close = lambda *a, **k: None
"""

_HOOK = """\
def _neuter(lines):
    return ["pass\\n" if "check_" in line else line for line in lines]
get_ipython().input_transformers_post.append(_neuter)
"""

_SNOOP = """\
import glob, os
_found = []
for _pattern in ("{repo}/solutions/*.ipynb", "{repo}/course_run/course/gradebook.db",
                 "{repo}/course_run/course/source/*/*.ipynb", "/work/*/solutions/*.ipynb",
                 "/root/*", "/home/*/*", "../../*", "/tmp/*", "/proc/1/cmdline"):
    for _path in glob.glob(_pattern):
        try:
            with open(_path, "rb") as _fh:
                _found.append((_path, len(_fh.read())))
        except OSError as _exc:
            _found.append((_path, type(_exc).__name__))
print("snoop found:", _found)
"""

_VANDAL = """\
import os
for _target in ("{repo}/autograder/PWNED", "{repo}/course_run/PWNED", "/tmp/PWNED", "/var/tmp/PWNED",
                "/dev/shm/PWNED", os.path.expanduser("~/.ipython/profile_default/startup/00-pwned.py")):
    try:
        os.makedirs(os.path.dirname(_target), exist_ok=True)
        with open(_target, "w") as _fh:
            _fh.write("import builtins; builtins.PWNED = True\\n")
        print("wrote", _target)
    except OSError as _exc:
        print("blocked", _target, type(_exc).__name__)
"""


def _ref_call(name: str, kind: str, references: tuple[str, ...]) -> str | None:
    if kind != "function" or not references:
        return None
    module, _, attr = references[0].rpartition(".")
    return f"def {name}(*args, **kwargs):\n    import importlib\n    return getattr(importlib.import_module({module!r}), {attr!r})(*args, **kwargs)\n"


def _exercise_kinds(exercises: dict[str, object], answers: dict[str, str]) -> dict[str, str]:
    return {
        gid: getattr(
            exercises.get(gid), "kind", "function" if answers[gid].lstrip().startswith("def") else "value"
        )
        for gid in answers
    }


def student_notebook(
    recipe: str,
    release: nbformat.NotebookNode,
    answers: dict[str, str],
    exercises: dict[str, object],
    *,
    index: int,
) -> nbformat.NotebookNode | bytes | None:
    """The notebook (or raw bytes, or None = not submitted) a sample student hands in.
    ``index`` is the assignment's position: some faults hit only the first notebooks."""
    kinds = _exercise_kinds(exercises, answers)
    names = list(answers)
    perfect = _with_answers(release, answers)
    if recipe in ("perfect", "snoop", "vandal", "shadower"):
        nb = perfect
        if recipe == "snoop":
            nb = _prefix_first(nb, _SNOOP.replace("{repo}", str(REPO)))
        if recipe == "vandal":
            nb = _prefix_first(nb, _VANDAL.replace("{repo}", str(REPO)))
        return nb
    if recipe == "partial":
        return _with_answers(release, {g: a for i, g in enumerate(names) if i % 2 == 0 for a in [answers[g]]})
    if recipe == "blank":
        return copy.deepcopy(release)
    if recipe == "corrupt":
        data = nbformat.writes(perfect).encode()
        return data[: len(data) // 2] if index == 0 else perfect
    if recipe == "renamed":
        return None if index == 1 else perfect
    if recipe == "messy":
        return _messy(perfect)
    if recipe in ("looper", "crasher", "hog", "flood"):
        nb = perfect
        cells = _answer_cells(nb)
        target = cells[min(1, len(cells) - 1)]
        fault = {
            "looper": "while True:\n    pass\n",
            "crasher": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
            "hog": "_hog = []\nwhile True:\n    _hog.append(bytearray(256 * 1024**2))\n",
            "flood": "for _ in range(200000):\n    print('flood' * 20)\n",
        }[recipe]
        target.source = target.source + "\n" + fault
        return nb
    if recipe == "patcher":
        nb = _with_answers(release, {g: _wrong(g, kinds[g]) for g in names})
        return _prefix_first(nb, _PATCH_CHECKS)
    if recipe == "equalizer":
        wrong = {
            g: (
                f"{g} = _Equal(0.0)\n"
                if kinds[g] == "value"
                else f"def {g}(*args, **kwargs):\n    return _Equal(0.0)\n"
            )
            for g in names
        }
        return _prefix_first(_with_answers(release, wrong), _EQUALIZER)
    if recipe == "copycat":
        cheats = {}
        for g in names:
            call = _ref_call(g, kinds[g], tuple(getattr(exercises.get(g), "references", ())))
            cheats[g] = call or answers[g]
        return _with_answers(release, cheats)
    if recipe == "hooker":
        return _prefix_first(_with_answers(release, {g: _wrong(g, kinds[g]) for g in names}), _HOOK)
    raise ValueError(f"unknown sample student {recipe!r}")


def _messy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Correct answers in a notebook mangled the ways real ones get mangled."""
    nb = copy.deepcopy(nb)
    nb.metadata["kernelspec"] = {
        "name": "conda-env-dl-py",
        "display_name": "Python [conda env:dl]",
        "language": "python",
    }
    nb.metadata["jupytext"] = {"formats": "ipynb,py"}
    nb.nbformat_minor = 4
    tests = [c for c in nb.cells if is_grade(c)]
    answers = _answer_cells(nb)
    for cell in nb.cells:
        cell.pop("id", None)  # nbformat 4.4 had no cell ids
        if "nbgrader" in cell.metadata:
            cell.metadata["nbgrader"]["schema_version"] = 1
    if tests:
        # forged output: a failing test that "passed"
        tests[0].outputs = [new_output("stream", name="stdout", text="all tests passed!\n")]
        tests[0].execution_count = 7
        dup = copy.deepcopy(tests[0])
        nb.cells.insert(nb.cells.index(tests[0]) + 1, dup)  # duplicated graded cell
        nb.cells.remove(tests[-1])  # a deleted test cell
    if answers:
        answers[0].metadata.pop("nbgrader", None)  # stripped metadata: found by definition
    nb.cells.append(
        new_code_cell(
            "# my scratch work\nx = 1", metadata={"collapsed": True, "jupyter": {"source_hidden": False}}
        )
    )
    return nb


RECIPES = tuple(EXPECTED)


def write_sample_class(
    *,
    sources: dict[str, nbformat.NotebookNode],
    releases: dict[str, nbformat.NotebookNode],
    out_dir: Path,
    exercises: Callable[[str], dict[str, object]],
    recipes: tuple[str, ...] = RECIPES,
) -> Path:
    """Write ``out_dir/<student>/<notebook>.ipynb`` for every recipe."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for recipe in recipes:
        folder = out_dir / recipe
        folder.mkdir(exist_ok=True)
        for index, stem in enumerate(sorted(sources)):
            answers = solution_answers(sources[stem])
            nb = student_notebook(recipe, releases[stem], answers, exercises(stem), index=index)
            if nb is None:
                continue
            name = f"{stem}.ipynb"
            if recipe == "renamed" and index == 0:
                name = "my final version.ipynb"
            path = folder / name
            if isinstance(nb, bytes):
                path.write_bytes(nb)
            else:
                path.write_text(json.dumps(nb, indent=1))
        if recipe == "renamed":  # honest extra files: never read, never evidence
            (folder / "notes.txt").write_text("extra files are ignored\n")
            (folder / "helpers.py").write_text("def mean(xs):\n    return sum(xs) / len(xs)\n")
        if recipe == "shadower":
            (folder / "numpy.py").write_text("raise SystemExit('shadowed numpy')\n")
    return out_dir
