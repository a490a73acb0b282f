"""course_lib modules read as source, without importing them: where a name is defined,
and the text of a definition.

The trusted grader resolves every exercise's references (``Exercise.references``, e.g.
``course_lib.torch_ref.dense.dense_forward``) to the module and top-level name that
define them, to build the views that withhold them (``autograder.views``) and to compare
an answer with the reference's code (``autograder.likeness``). Asking the module means
importing it, and the torch half of course_lib imports torch: about 1.5 s of CPU in every
grading process, for functions the grader never calls.

So a module that is not imported yet is read from its file instead. The reading only
answers when the answer is certain: the name has exactly one binding in the module's
own top-level code (a ``def``/``class``, or a ``from ... import`` followed to the module
that defines it), and nothing in the module can rebind names behind the parser's back
(``from m import *``, a module ``__getattr__``, ``globals()``, ``global``). Everything
else gives None, and the caller imports as before. Parsed files are cached by path,
size and modification time; the trees are shared and must not be changed.
"""

from __future__ import annotations

import ast
import functools
import io
import os
import sys
from pathlib import Path

from autograder import pyast

__all__ = ["definition_text", "module_file", "parsed", "source_lines", "static_home", "tree_of"]

# Calls that can bind module names the parser cannot see.
_DYNAMIC_CALLS = frozenset({"globals", "vars", "exec", "eval", "setattr", "__import__"})
# Decorators that keep a definition's ``__module__`` and ``__name__`` (what importing reads).
_PLAIN_DECORATORS = frozenset({"dataclass", "dataclasses.dataclass"})
_MAX_HOPS = 8  # ``from a import f`` chains followed before giving up


def module_file(module: str) -> Path | None:
    """The ``.py`` file that importing ``module`` would run, found under its top-level
    package's one folder (the package must be imported already), or None."""
    top, _, rest = module.partition(".")
    package = sys.modules.get(top)
    paths = list(getattr(package, "__path__", None) or [])
    if len(paths) != 1:  # not imported, not a package, or a namespace package
        return None
    folder = Path(paths[0])
    parts = rest.split(".") if rest else []
    for index, part in enumerate(parts):
        if not part.isidentifier():
            return None
        if (folder / part / "__init__.py").is_file():
            folder = folder / part
        elif index == len(parts) - 1 and (folder / f"{part}.py").is_file():
            return folder / f"{part}.py"
        else:
            return None
    init = folder / "__init__.py"
    return init if init.is_file() else None


def parsed(path: Path) -> tuple[str, ast.Module]:
    """(source, tree) of ``path``, parsed once while the file is unchanged."""
    stat = os.stat(path)
    return _parse(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _parse(path: str, mtime_ns: int, size: int) -> tuple[str, ast.Module]:
    source = Path(path).read_text()
    return source, tree_of(source)


@functools.lru_cache(maxsize=256)
def tree_of(source: str) -> ast.Module:
    """``source`` parsed, once per text (the views rewrite the same modules for many
    exercises). The tree is shared: never change it."""
    return pyast.parse(source)


def static_home(module: str, name: str) -> tuple[str, str] | None:
    """(defining module, name there) of ``module.name`` read from source, as importing
    would resolve it (the object's ``__module__`` and ``__name__``), or None when the
    source alone cannot say for certain."""
    for _ in range(_MAX_HOPS):
        path = module_file(module)
        if path is None:
            return None
        _, tree = parsed(path)
        binding = _only_binding(tree, name)
        if isinstance(binding, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            plain = all(_dotted(_callee(d)) in _PLAIN_DECORATORS for d in binding.decorator_list)
            return (module, name) if plain else None
        if not isinstance(binding, ast.ImportFrom):
            return None
        source = _absolute(module, binding, package=path.name == "__init__.py")
        if source is None:
            return None
        module, name = source, next(a.name for a in binding.names if (a.asname or a.name) == name)
    return None


def definition_text(module: str, name: str) -> str | None:
    """The source lines of ``module``'s top-level definition of ``name``, decorators
    included (what ``inspect.getsource`` gives for it), or None when it has no single one."""
    path = module_file(module)
    if path is None:
        return None
    source, tree = parsed(path)
    node = _only_binding(tree, name)
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.end_lineno is None:
        return None
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return "".join(source_lines(source)[first - 1 : node.end_lineno])


def source_lines(source: str) -> list[str]:
    """``source`` split into lines as the parser counts them (``\\n``, ``\\r\\n``, ``\\r``),
    endings kept: ``str.splitlines`` also splits at form feeds and other separators that
    may sit inside a string, which would shift every line number after them."""
    return io.StringIO(source, newline="").readlines()


def _only_binding(tree: ast.Module, name: str) -> ast.stmt | None:
    """The one module-level statement binding ``name``, or None (none, several, or the
    module can bind names dynamically)."""
    found = _binding_index(tree).get(name, [])
    return found[0] if len(found) == 1 else None


@functools.lru_cache(maxsize=256)
def _binding_index(tree: ast.Module) -> dict[str, list[ast.stmt]]:
    """name -> the module-level statements binding it; empty when the module can bind
    names the parser cannot see. Names declared ``global`` in a function (which may
    rebind them when called) get a second, impossible entry. Cached per shared tree."""
    index: dict[str, list[ast.stmt]] = {}
    for statement, bound in _module_bindings(tree):
        if bound is None:  # a star import, a module __getattr__, globals(), ...
            return {}
        index.setdefault(bound, []).append(statement)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            for name in node.names:
                index.setdefault(name, []).append(node)
    return index


def _module_bindings(tree: ast.Module) -> list[tuple[ast.stmt, str | None]]:
    """(statement, name it binds at module level) for every module-level binding, and
    (statement, None) for each statement that may bind names the parser cannot see.
    Compound statements (if/try/with/for) are entered; function and class bodies are not."""
    out: list[tuple[ast.stmt, str | None]] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        statement = todo.pop(0)
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append((statement, None if statement.name == "__getattr__" else statement.name))
            heads: list[ast.AST] = list(statement.decorator_list)
            if isinstance(statement, ast.ClassDef):
                heads += [*statement.bases, *statement.keywords]
            else:
                heads += [statement.args]
            out += [(statement, n) for head in heads for n in _expression_bindings(head)]
            continue
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            for alias in statement.names:
                bound = None if alias.name == "*" else alias.asname or alias.name.partition(".")[0]
                out.append((statement, bound))
            continue
        for _, value in ast.iter_fields(statement):
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, ast.stmt):
                    todo.append(item)
                elif isinstance(item, ast.ExceptHandler):
                    if item.name:
                        out.append((statement, item.name))
                    todo.extend(item.body)
                elif isinstance(item, ast.AST):
                    out += [(statement, n) for n in _expression_bindings(item)]
    return out


def _expression_bindings(node: ast.AST) -> list[str | None]:
    """Names an expression (or target, or match case) binds at module level; None for
    what could bind names unseen: a dynamic call, ``sys.modules``, a statement inside."""
    out: list[str | None] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.stmt) or (isinstance(sub, ast.Attribute) and sub.attr == "modules"):
            out.append(None)
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            out.append(sub.id)  # comprehension targets too: more bindings only mean "unsure"
        elif isinstance(sub, ast.Call) and _dotted(sub.func) in _DYNAMIC_CALLS:
            out.append(None)
        elif isinstance(sub, ast.MatchAs | ast.MatchStar) and sub.name:
            out.append(sub.name)
        elif isinstance(sub, ast.MatchMapping) and sub.rest:
            out.append(sub.rest)
    return out


def _callee(node: ast.expr) -> ast.expr:
    return node.func if isinstance(node, ast.Call) else node


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _absolute(module: str, node: ast.ImportFrom, *, package: bool) -> str | None:
    """The absolute name of the module ``node`` imports from, inside ``module``."""
    if node.level == 0:
        return node.module
    base = module if package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    if not base:
        return None
    return f"{base}.{node.module}" if node.module else base
