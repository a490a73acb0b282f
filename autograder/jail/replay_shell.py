"""The replay's ``get_ipython()`` and cell executor (inside the re-verification child).

A cell runs the way IPython runs it: transformed (magics, ``!cmd``, ``x?``), compiled
whole (a syntax error runs nothing), then executed one top-level statement after the
other. Magics whose body or line is the student's own Python (``%%time``, ``%%capture``,
``%%timeit``, ``%%prun``, ``%%debug`` and their line forms) run that Python once in the
cell's namespace; ``%%writefile NAME`` writes into the work folder (the cwd) and
``%run FILE`` executes a file from there. Every other magic, ``!`` command and hook is
accepted and does nothing (``%matplotlib inline`` must not fail, ``!rm -rf`` must not run).

During the replay a call to a withheld reference stops only the statement that made
it, not the cell: a helper cell that first prints the library's value to compare with
still defines its helper. (The answer's own calls on the grader's cases are made
outside the replay, where the same call stays a ``ReferenceWithheld``.)
"""

from __future__ import annotations

import ast
import builtins
import importlib
import runpy
import shlex
import sys
from pathlib import Path
from typing import Any

from autograder.ipython_syntax import BODY_MAGICS, strip_magic_options, transform

__all__ = ["Executor", "ShellStub"]


class _Inert:
    """What any other attribute of the shell is: callable, falsy, does nothing."""

    def __getattr__(self, name: str) -> Any:
        return _Inert()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _Inert()

    def __bool__(self) -> bool:
        return False


class Executor:
    """Runs a cell's source in ``namespace`` statement by statement. ``withheld``: the
    view's ``ReferenceWithheld``; a statement raising it is left, the cell goes on, and
    the first such call is kept in ``withheld_note`` for the cell's issue."""

    def __init__(self, namespace: dict[str, Any], withheld: type[BaseException] | None = None) -> None:
        self.namespace = namespace
        self.withheld = withheld
        self.withheld_note = ""

    def run(self, source: str, filename: str) -> None:
        """Run IPython ``source``; raises what the cell raises (SyntaxError before anything ran)."""
        code = transform(source)
        compile(code, filename, "exec")  # the whole cell must compile, as in the kernel
        for first_line, text in _statements(code):
            chunk = compile("\n" * (first_line - 1) + text, filename, "exec")
            try:
                exec(chunk, self.namespace)
            except BaseException as exc:
                if self.withheld is None or not isinstance(exc, self.withheld):
                    raise
                self.withheld_note = self.withheld_note or f"{exc}"[:250]


def _statements(code: str) -> list[tuple[int, str]]:
    """The top-level statements of ``code`` as (first line, text); statements sharing a
    line stay together. Too deep for ``ast``: the whole code as one statement."""
    try:
        tree = ast.parse(code)
    except (RecursionError, MemoryError):
        return [(1, code)]
    lines = code.splitlines(keepends=True)
    spans: list[list[int]] = []
    for node in tree.body:
        decorators = getattr(node, "decorator_list", [])
        start = min([node.lineno, *(d.lineno for d in decorators)])
        end = node.end_lineno or node.lineno
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [(start, "".join(lines[start - 1 : end])) for start, end in spans]


class ShellStub(_Inert):
    """``get_ipython()`` in the replay: runs the magics whose content is the student's
    Python (see the module docstring) through ``executor``; everything else is inert.
    Falsy, as before (it is not IPython)."""

    def __init__(self, executor: Executor | None = None) -> None:
        self._executor = executor

    def run_cell_magic(self, magic: str, line: str, cell: str) -> Any:
        """``%%magic line`` over ``cell``: the body runs for BODY_MAGICS, ``writefile`` writes."""
        if self._executor is None:
            return None
        if magic == "writefile":
            return _writefile(line, cell)
        if magic not in BODY_MAGICS:
            return None
        line = strip_magic_options(magic, line)
        if magic == "capture":
            name = line.split()[0] if line.split() else ""
            if name.isidentifier():
                self._executor.namespace[name] = _Inert()  # the captured output: not kept
        elif magic == "timeit" and line:
            self._executor.run(line, "<%%timeit setup>")
        self._executor.run(cell, f"<%%{magic}>")
        return None

    def run_line_magic(self, magic: str, line: str, _stack_depth: int = 1) -> Any:
        """``%magic line``: the line runs for BODY_MAGICS (an expression's value is
        returned, as ``%time expr`` does), ``%run FILE`` executes FILE."""
        if self._executor is None:
            return None
        if magic == "run":
            return _run_file(self._executor, line)
        if magic not in BODY_MAGICS or magic == "capture":
            return None
        code = strip_magic_options(magic, line)
        if not code:
            return None
        try:
            expression = compile(transform(code), f"<%{magic}>", "eval")
        except SyntaxError:
            self._executor.run(code, f"<%{magic}>")
            return None
        return eval(expression, self._executor.namespace)

    def system(self, *args: Any, **kwargs: Any) -> None:
        """``!cmd`` never runs."""
        return None

    def getoutput(self, *args: Any, **kwargs: Any) -> list[str]:
        """``x = !cmd`` gets no output."""
        return []


def _writefile(line: str, cell: str) -> None:
    """``%%writefile [-a] NAME``: the body into NAME (relative to the cwd, the work folder)."""
    words = shlex.split(line)
    append = "-a" in words or "--append" in words
    names = [w for w in words if not w.startswith("-")]
    if not names:
        raise ValueError("%%writefile needs a file name")
    with open(Path(names[0]).expanduser(), "a" if append else "w", encoding="utf-8") as file:
        file.write(cell)
    importlib.invalidate_caches()  # the next cell may import it at once


def _run_file(executor: Executor, line: str) -> None:
    """``%run [-i] FILE args`` (or ``%run -m module``): run it as ``__main__`` and keep
    the names it defines, as IPython does (``-i``: in the notebook's own namespace)."""
    words = shlex.split(line)
    interactive = "-i" in words
    if "-m" in words:
        position = words.index("-m")
        if position + 1 >= len(words):
            raise ValueError("%run -m needs a module name")
        found = runpy.run_module(words[position + 1], run_name="__main__", alter_sys=False)
        executor.namespace.update({k: v for k, v in found.items() if k not in ("__builtins__", "__name__")})
        return None
    rest = strip_magic_options("run", line)
    args = shlex.split(rest)
    if not args:
        raise ValueError("%run needs a file name")
    path = Path(args[0]).expanduser()
    if not path.is_file() and path.with_suffix(".py").is_file():
        path = path.with_suffix(".py")
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".ipy":
        source = transform(source)
    if interactive:
        namespace = executor.namespace
    else:
        namespace = {"__name__": "__main__", "__file__": str(path), "__builtins__": builtins}
        namespace["get_ipython"] = executor.namespace.get("get_ipython")
    saved = sys.argv
    sys.argv = [str(path), *args[1:]]
    try:
        exec(compile(source, str(path), "exec"), namespace)
    finally:
        sys.argv = saved
    if not interactive:
        executor.namespace.update(
            {k: v for k, v in namespace.items() if k not in ("__builtins__", "__name__", "__file__")}
        )
    return None
