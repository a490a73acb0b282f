"""Replay: what nbgrader ran before an exercise's test, re-run in a fresh process.

Parent side (trusted): ``replay_plan`` picks the code cells that come before the
exercise's first test cell (test cells excluded) and marks which of them the answer
needs: a cell is *needed* when it defines a name the answer uses, directly or through
other needed cells (names defined/used per cell, by ``ast``). Needed cells get the full
time of the exercise; any other cell (a student's long experiment, a plot) runs in a
short time box and, once it has timed out, is skipped for the next exercises.

The canonical setup cell always runs first (also before cells a student inserted
above it): student code can never make it fail. A top-level statement that changes a
name (``xs.append(...)``, ``d[k] = v``, ``n += 1``) defines it as an assignment does.

The plan is run inside the jail, as the sandbox uid, by ``autograder.jail.replay``
(the time boxes are its own); this half only reads source text.
"""

from __future__ import annotations

import ast
import functools
import symtable
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from autograder import pyast
from autograder.ipython_syntax import BODY_MAGICS, strip_magic_options, transform

__all__ = ["CellNames", "ReplayCell", "cell_names", "global_reads", "memoized_short_texts", "replay_plan"]

# Cells whose analysis is remembered: a notebook has a few dozen, each read once per
# exercise. Only texts up to _MEMO_CHARS are kept, so that at most 256 x 64 KB stay in
# the grader however large the cells a submission sends (a notebook may hold 64 MB).
_MEMO_CELLS = 256
_MEMO_CHARS = 64 * 1024
_T = TypeVar("_T")


def memoized_short_texts(func: Callable[..., _T]) -> Callable[..., _T]:
    """``func(text, *rest)`` (pure, its result immutable) remembered for the last
    _MEMO_CELLS calls whose ``text`` has at most _MEMO_CHARS characters; longer texts
    are computed every time and never kept."""
    cached = functools.lru_cache(maxsize=_MEMO_CELLS)(func)

    @functools.wraps(func)
    def call(text: str, *rest: Any) -> _T:
        return cached(text, *rest) if len(text) <= _MEMO_CHARS else func(text, *rest)

    return call


# Calls that can bind names we cannot see statically: a cell using them is always
# needed (conservative: better a full time box than a NameError).
_OPAQUE_CALLS = frozenset({"exec", "eval", "globals", "setattr", "__import__", "vars", "locals"})


@dataclass(frozen=True)
class CellNames:
    """Top-level names a cell binds, and every name it reads anywhere (incl. in functions)."""

    defines: frozenset[str]
    uses: frozenset[str]
    opaque: bool = False  # star import, exec/globals(), %run, %%writefile, too deep: may define anything
    error: str = ""  # the cell does not parse
    changes: frozenset[str] = frozenset()  # names a top-level method call changes (xs.append(...))
    imports: frozenset[str] = frozenset()  # names bound by an import (a module's method calls change nothing)


@dataclass(frozen=True)
class ReplayCell:
    """One cell of an exercise's replay, in notebook order."""

    index: int  # index in the graded notebook
    source: str
    needed: bool  # the answer uses a name it defines: full time
    setup: bool = False  # the canonical setup cell: its failure is the grader's problem


class _Names(ast.NodeVisitor):
    def __init__(self) -> None:
        self.defines: set[str] = set()
        self.uses: set[str] = set()
        self.changes: set[str] = set()
        self.imports: set[str] = set()
        self.opaque = False
        self.depth = 0  # > 0 inside a function or class body

    def merge(self, names: CellNames) -> None:
        """Names of Python run by a magic of this cell (``%%time`` body, ``%time`` line)."""
        if self.depth == 0:
            self.defines |= names.defines
            self.changes |= names.changes
            self.imports |= names.imports
        self.uses |= names.uses
        self.opaque |= names.opaque or bool(names.error)

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
            self.imports.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.opaque = True
            else:
                self._bind(alias.asname or alias.name)
                self.imports.add(alias.asname or alias.name)

    def visit_Expr(self, node: ast.Expr) -> None:
        # `results.append(x)`, `model.fit(X)`: a statement calling a method changes its object.
        if (
            self.depth == 0
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
        ):
            root: ast.expr = node.value.func
            while isinstance(root, (ast.Attribute, ast.Subscript, ast.Call)):
                root = root.func if isinstance(root, ast.Call) else root.value
            if isinstance(root, ast.Name) and root.id != "get_ipython":
                self.changes.add(root.id)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in _OPAQUE_CALLS:
            self.opaque = True
        magic = _magic_call(node)
        if magic is not None:
            kind, name, line, body = magic
            if kind == "run_cell_magic" and name in BODY_MAGICS:
                if name == "timeit":
                    self.merge(cell_names(strip_magic_options(name, line)))
                self.merge(cell_names(body))
            elif kind == "run_line_magic" and name in BODY_MAGICS and name != "capture":
                self.merge(cell_names(strip_magic_options(name, line)))
            elif name in ("run", "writefile"):
                self.opaque = True  # defines what a file defines / writes a module a later cell imports
        self.generic_visit(node)


def _magic_call(node: ast.Call) -> tuple[str, str, str, str] | None:
    """``get_ipython().run_cell_magic(name, line, body)`` / ``.run_line_magic(name, line)``
    with literal arguments (what ``transform`` makes of ``%%name``/``%name``): (method, name, line, body)."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr in ("run_cell_magic", "run_line_magic")):
        return None
    owner = func.value
    if not (
        isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "get_ipython"
    ):
        return None
    args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if len(args) != len(node.args) or len(args) < 2:
        return None
    return func.attr, args[0], args[1], args[2] if len(args) > 2 else ""


# Memoized: every exercise of a notebook plans over the same cells (immutable results).
@memoized_short_texts
def cell_names(source: str) -> CellNames:
    """What a cell defines and uses, after the IPython transform. A cell too deep for
    the recursive walk (``1+1+...`` a thousand times) is opaque: it may define anything."""
    try:
        tree = pyast.parse(transform(source))
    except (SyntaxError, ValueError) as exc:
        return CellNames(frozenset(), frozenset(), error=f"{type(exc).__name__}: {exc}")
    except (RecursionError, MemoryError):
        return CellNames(frozenset(), frozenset(), opaque=True)
    names = _Names()
    try:
        names.visit(tree)
    except RecursionError:
        return CellNames(frozenset(), frozenset(), opaque=True)
    return CellNames(
        frozenset(names.defines), frozenset(names.uses), names.opaque,
        changes=frozenset(names.changes), imports=frozenset(names.imports),
    )  # fmt: skip


@memoized_short_texts
def global_reads(source: str) -> frozenset[str] | None:
    """Top-level names a cell can read, when it runs or when a function or class it
    defines is called: the global names of each of its scopes (``symtable``), where
    ``cell_names(source).uses`` also counts the parameters and local names of its
    functions. None when not known: the cell does not parse, or a magic runs Python
    given as text."""
    try:
        code = transform(source)
        if "get_ipython" in code:
            return None
        table = symtable.symtable(code, "<cell>", "exec")
        tree = pyast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    # `n += 1` reads n, but symtable records only the binding (in a function, n is local).
    reads = {
        n.target.id for n in ast.walk(tree) if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)
    }
    scopes = [table]
    while scopes:
        scope = scopes.pop()
        top = scope.get_type() == "module"
        for symbol in scope.get_symbols():
            if (symbol.is_referenced() and (top or symbol.is_global())) or symbol.is_declared_global():
                reads.add(symbol.get_name())
        scopes.extend(scope.get_children())
    return frozenset(reads)


def replay_plan(
    cells: Sequence[tuple[int, str]], *, target: str, setup_index: int | None, precise: bool = False
) -> list[ReplayCell]:
    """The cells to replay for the exercise defining ``target``: ``cells`` are the code
    cells before its first test cell, test cells already left out, in order. The setup
    cell comes first, then the others in notebook order.

    ``precise``: what a needed cell reads is its ``global_reads`` (where known), not every
    name it uses: fewer cells are needed. Only for a replay whose failures are redone
    with the default plan (see ``autograder.verify``)."""
    analysed = [(index, source, cell_names(source)) for index, source in cells]
    modules = frozenset().union(*(names.imports for _, _, names in analysed))
    wanted, needed = {target}, set()
    # Backwards: a cell is needed when it defines (or changes) something wanted after it;
    # what it reads becomes wanted for the cells before it. A method call on a module
    # (`np.random.seed`, `plt.plot`) does not make a cell needed.
    for index, source, names in reversed(analysed):
        # An opaque cell may define anything, the target too: always needed.
        if index == setup_index or names.opaque or (names.defines | (names.changes - modules)) & wanted:
            needed.add(index)
            reads = global_reads(source) if precise else None
            wanted |= names.uses if reads is None else reads
    plan = [ReplayCell(i, s, i in needed, i == setup_index) for i, s, _ in analysed]
    return sorted(plan, key=lambda cell: not cell.setup)  # stable: the rest keep their order
