"""Is a student's answer function the course_lib reference, copied?

Two functions are the same code here when their ASTs are equal once formatting,
docstrings, type annotations, the function's own name and the names of its arguments
and locals are ignored. That is a lead for the instructor to review (students may read
course_lib), never evidence of tampering.
"""

from __future__ import annotations

import ast
import textwrap

from autograder import pyast
from autograder.replay import memoized_short_texts

__all__ = ["normalized", "same_code"]


class _Normalize(ast.NodeTransformer):
    """Renames arguments and locals to ``v0, v1, ...`` in order of first appearance."""

    def __init__(self, local: set[str]) -> None:
        self.local = local
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        if name not in self.local:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self._rename(node.arg)
        node.annotation = None
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self._rename(node.id)
        return node


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return body[1:] or [ast.Pass()]
    return body


# Memoized: each exercise's answer and references are compared once per re-verification
# pass, with the same texts (bounded: large answers are never kept).
@memoized_short_texts
def normalized(source: str, name: str) -> str | None:
    """A canonical dump of the top-level function ``name`` in ``source``, or None (also
    when the code is too deep for the recursive walk: no likeness, never an error)."""
    try:
        return _normalized(source, name)
    except (RecursionError, MemoryError):
        return None


def _normalized(source: str, name: str) -> str | None:
    try:
        tree = pyast.parse(textwrap.dedent(source))
    except (SyntaxError, ValueError):
        return None
    func = next(
        (
            n
            for n in reversed(tree.body)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
        ),
        None,
    )
    if func is None:
        return None
    local = {a.arg for a in ast.walk(func.args) if isinstance(a, ast.arg)}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and node is not func:
            local.update(a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg))
            if not isinstance(node, ast.Lambda):
                local.add(node.name)
    for node in ast.walk(func):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.body = _strip_docstring(node.body)
            node.returns = None
    func.name = "_"
    func.decorator_list = []
    func = _Normalize(local).visit(func)
    return ast.dump(func, annotate_fields=False, include_attributes=False)


def same_code(answer_source: str, answer_name: str, reference_source: str, reference_name: str) -> bool:
    """True when the answer's function ``answer_name`` is the reference, renamed."""
    mine = normalized(answer_source, answer_name)
    return mine is not None and mine == normalized(reference_source, reference_name)
