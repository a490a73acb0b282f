"""``ast.parse`` for the grader's own (trusted, multi-threaded) process.

CPython 3.11 keeps the recursion depth of its C-to-Python AST conversion in state shared
by the whole interpreter, so two grading threads parsing at the same moment can fail with
"SystemError: AST constructor recursion depth mismatch" (seen here: a grader error for an
honest notebook, about once per thousand notebooks; python/cpython#106905). One lock
serializes every conversion the grading threads make; parsing is fast, the lock is cheap.
"""

from __future__ import annotations

import ast
import threading

__all__ = ["parse"]

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>", mode: str = "exec") -> ast.Module:
    """``ast.parse(source, filename, mode)``, one thread at a time."""
    with _LOCK:
        tree = ast.parse(source, filename, mode)
    assert isinstance(tree, ast.Module), f"parse: mode {mode!r} gave a {type(tree).__name__}, not a Module"
    return tree
