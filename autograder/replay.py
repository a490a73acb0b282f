"""Replay: what nbgrader ran before an exercise's test, re-run in a fresh process.

Parent side (trusted): ``replay_plan`` picks the code cells that come before the
exercise's first test cell (test cells excluded) and marks which of them the answer
needs: a cell is *needed* when it defines a name the answer uses, directly or through
other needed cells (names defined/used per cell, by ``ast``). Needed cells get the full
time of the exercise; any other cell (a student's long experiment, a plot) runs in a
short time box and, once it has timed out, is skipped for the next exercises.

Child side (inside the jail, as ``nobody``): ``run_cells`` executes the plan the way
the kernel would — IPython syntax through ``TransformerManager``, an inert
``get_ipython()``, a cell that raises is recorded and the replay goes on.
"""

from __future__ import annotations

import ast
import builtins
import os
import signal
import time
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OPTIONAL_CELL_SECONDS",
    "OPTIONAL_POOL_FRACTION",
    "CellNames",
    "CellTimeout",
    "ReplayCell",
    "ShellStub",
    "cell_names",
    "replay_plan",
    "run_cells",
    "time_box",
    "transform",
]

# A cell the answer does not use runs at most this long (then SIGALRM stops it) ...
OPTIONAL_CELL_SECONDS = 3.0
# ... and all such cells of one exercise together at most this share of verify_timeout,
# so that experiments never eat the time the answer's own cells and calls need.
OPTIONAL_POOL_FRACTION = 0.25
# A cell the answer needs may use at most this share of the time left, so that a cell
# which defines the answer and then runs a long experiment still leaves time to call it.
NEEDED_CELL_SHARE = 0.5

# Calls that can bind names we cannot see statically: a cell using them is needed
# whenever anything is needed (conservative: better a full time box than a NameError).
_OPAQUE_CALLS = frozenset({"exec", "eval", "globals", "setattr", "__import__", "vars", "locals"})


@dataclass(frozen=True)
class CellNames:
    """Top-level names a cell binds, and every name it reads anywhere (incl. in functions)."""

    defines: frozenset[str]
    uses: frozenset[str]
    opaque: bool = False  # star import or exec/globals(): may define anything
    error: str = ""  # the cell does not parse


@dataclass(frozen=True)
class ReplayCell:
    """One cell of an exercise's replay, in notebook order."""

    index: int  # index in the graded notebook
    source: str
    needed: bool  # the answer uses a name it defines: full time
    setup: bool = False  # the canonical setup cell: its failure is the grader's problem


def transform(source: str) -> str:
    """The Python the kernel would run for ``source`` (magics, ``!cmd``, ``x?``)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


class _Names(ast.NodeVisitor):
    def __init__(self) -> None:
        self.defines: set[str] = set()
        self.uses: set[str] = set()
        self.opaque = False
        self.depth = 0  # > 0 inside a function or class body

    def _bind(self, name: str) -> None:
        if self.depth == 0:
            self.defines.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.uses.add(node.id)
        else:
            self._bind(node.id)

    def _target_root(self, target: ast.expr) -> None:
        # `a.b = ...`, `a[i] = ...` and `a += ...` change what `a` is: count as defining `a`.
        while isinstance(target, (ast.Attribute, ast.Subscript)):
            target = target.value
        if isinstance(target, ast.Name):
            self._bind(target.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._target_root(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target_root(node.target)
        if isinstance(node.target, ast.Name):
            self.uses.add(node.target.id)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._target_root(node.target)
        self.generic_visit(node)

    def _scope(self, node: ast.AST, name: str | None) -> None:
        if name is not None:
            self._bind(name)
        for deco in getattr(node, "decorator_list", []):
            self.visit(deco)
        self.depth += 1
        for field in ("args", "bases", "keywords", "body", "returns"):
            value = getattr(node, field, None)
            for child in value if isinstance(value, list) else [value] if value is not None else []:
                self.visit(child)
        self.depth -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scope(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scope(node, node.name)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scope(node, node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node, None)

    def visit_Global(self, node: ast.Global) -> None:
        self.defines.update(node.names)  # assigned inside a function, bound at top level

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._bind(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.opaque = True
            else:
                self._bind(alias.asname or alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in _OPAQUE_CALLS:
            self.opaque = True
        self.generic_visit(node)


def cell_names(source: str) -> CellNames:
    """What a cell defines and uses, after the IPython transform."""
    try:
        tree = ast.parse(transform(source))
    except (SyntaxError, ValueError) as exc:
        return CellNames(frozenset(), frozenset(), error=f"{type(exc).__name__}: {exc}")
    names = _Names()
    names.visit(tree)
    return CellNames(frozenset(names.defines), frozenset(names.uses), names.opaque)


def replay_plan(cells: Sequence[tuple[int, str]], *, target: str, setup_index: int | None) -> list[ReplayCell]:
    """The cells to replay for the exercise defining ``target``: ``cells`` are the code
    cells before its first test cell, test cells already left out, in order."""
    analysed = [(index, source, cell_names(source)) for index, source in cells]
    wanted, needed = {target}, set()
    # Backwards: a cell is needed when it defines something wanted after it; what it
    # reads becomes wanted for the cells before it.
    for index, _, names in reversed(analysed):
        if index == setup_index or names.defines & wanted:
            needed.add(index)
            wanted |= names.uses
    if needed - {setup_index}:
        needed |= {index for index, _, names in analysed if names.opaque}
    return [ReplayCell(i, s, i in needed, i == setup_index) for i, s, _ in analysed]


# ---------------------------------------------------------------- inside the child


class CellTimeout(BaseException):
    """Raised by SIGALRM inside a cell or call that ran out of its time box."""


class ShellStub:
    """``get_ipython()`` outside IPython: magics, ``!`` commands and hooks are accepted
    and do nothing (``%matplotlib inline`` must not fail, ``!rm -rf`` must not run)."""

    def __getattr__(self, name: str) -> Any:
        return ShellStub()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return ShellStub()

    def __bool__(self) -> bool:
        return False


def _alarm(signum: int, frame: Any) -> None:
    raise CellTimeout()


class time_box:
    """``with time_box(seconds):`` raises CellTimeout inside the block after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(seconds, 0.001)

    def __enter__(self) -> None:
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)


def fresh_namespace() -> dict[str, Any]:
    """A ``__main__`` like the kernel's user namespace, with ``get_ipython``/``display``."""
    import sys

    module = types.ModuleType("__main__")
    sys.modules["__main__"] = module
    namespace = module.__dict__
    namespace.update(__builtins__=builtins, get_ipython=ShellStub(), display=lambda *a, **k: None)
    return namespace


Issue = tuple[int, str, str]  # (cell index, "raised" | "timed out" | "skipped", message)


def run_cells(
    plan: Iterable[ReplayCell],
    namespace: dict[str, Any],
    *,
    skip: set[int],
    deadline: float,
    pool: float,
    progress: Callable[[str], None],
    withheld: type[BaseException] | None = None,
) -> tuple[list[Issue], str]:
    """Execute ``plan`` in ``namespace``. Returns the cell issues, and why the setup
    cell failed ("" if it did not). ``deadline`` is ``time.monotonic()`` time.

    ``skip``: cells that ran out of their time box (or stopped the whole process) for an
    earlier exercise: skipped where this exercise's answer does not need them, run again
    where it does."""
    issues: list[Issue] = []
    for cell in plan:
        if cell.index in skip and not cell.needed:
            issues.append((cell.index, "skipped", "skipped: it ran out of its time box for an earlier exercise"))
            continue
        left = deadline - time.monotonic()
        box = left * NEEDED_CELL_SHARE if cell.needed else min(OPTIONAL_CELL_SECONDS, pool, left)
        if box <= 0.01:
            issues.append((cell.index, "skipped", "skipped: no time was left for cells the answer does not use"))
            continue
        progress(f"B {cell.index}")
        start = time.monotonic()
        try:
            code = compile(transform(cell.source), f"<cell {cell.index}>", "exec")
            with time_box(box):
                exec(code, namespace)
        except CellTimeout:
            progress(f"T {cell.index}")
            issues.append((cell.index, "timed out", f"stopped after {box:.1f} s"))
        except BaseException as exc:  # SystemExit, KeyboardInterrupt and withheld references too
            message = f"{type(exc).__name__}: {exc}"[:300]
            if cell.setup:
                return issues, message
            if withheld is not None and isinstance(exc, withheld):
                message = f"called a withheld reference: {exc}"[:300]
            issues.append((cell.index, "raised", message))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if not cell.needed:
            pool -= time.monotonic() - start
        progress(f"E {cell.index}")
    return issues, ""


def evidence_writer(fd: int) -> Callable[[str], None]:
    """A progress line writer on ``fd`` that never raises (student code may close it)."""

    def write(line: str) -> None:
        try:
            os.write(fd, (line + "\n").encode())
        except OSError:
            pass

    return write
