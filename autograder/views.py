"""Course_lib views: the library as one exercise's re-verification process sees it.

A view is a directory built in the trusted parent, once per (assignment, exercise) and
cached under the run's ``views`` folder. It holds

- ``course_lib/``: a copy of the package in which every reference of the exercise
  (``Exercise.references``) is *withheld*: an AST transform of its module replaces the
  function (or class) body with a call that raises ``ReferenceWithheld``, so neither
  its code nor its source text is in the view; the original ``.py`` and ``__pycache__``
  are never copied. ``course_lib/checks/`` is replaced by stubs with the same public
  names: ``check_*`` do nothing, plain data constants keep their values, every other
  public callable or object is withheld.
- ``lib/``: the same transforms for support modules of the job's ``lib`` folder (a
  course's own reference or checks module outside course_lib, e.g. the test course's).

What a module of the view withholds beyond the named references (``withhold_plan``),
decided from the module's own source, within that module:

1. *Wrappers*: every module-level function that calls a withheld one (directly or
   through other functions) is withheld too: it computes the answer as well.
2. *Helpers*: every module-level function the withheld ones call, directly or
   indirectly (``_`` helpers included), is withheld, *unless* a function of the module
   that stays (a public one, a class, or module-level code) also needs it. Then a public
   helper stays as it is (the student may call it), and a private one is *guarded*: it
   runs only when called from course_lib code, so ``conv2d_forward`` keeps working but
   ``conv._im2col(...)`` from a student's cell raises ``ReferenceWithheld``.

A function of *another* module that calls a withheld one needs no rule: its call reaches
the raising stub. Siblings that compute the answer with other arguments
(``log_softmax`` for ``softmax``) are listed in ``Exercise.references`` themselves.

The re-verification child bind-mounts the view read-only over the real folders in its
own mount namespace, so the references do not exist anywhere in that process.
"""

from __future__ import annotations
import __future__

import ast
import base64
import copy
import functools
import importlib
import inspect
import io
import math
import os
import re
import shutil
import sys
import tempfile
import textwrap
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autograder import pyast, source_index
from autograder.jail.request import EVIDENCE_FD

__all__ = [
    "EVIDENCE_FD",
    "View",
    "Withheld",
    "WithholdPlan",
    "build_view",
    "case_inputs",
    "checks_modules",
    "withheld_callables",
    "withheld_for",
    "withhold_plan",
    "withhold_source",
]

# The child dup2()s its progress pipe to EVIDENCE_FD (one number for both sides: the
# jail's contract); a withheld stub writes the name it was called under, so a call is
# in the parent's hands even if the student empties lists.
_RUNTIME = "_withheld"  # course_lib/_withheld.py, present in every view only
_SAFE_KEY = re.compile(r"[^A-Za-z0-9_.-]")

_RUNTIME_SOURCE = f'''"""Withheld references of this re-verification (generated; exists only in a view)."""

import os as _os

__all__ = ["ReferenceWithheld", "REACHED", "withheld", "WithheldObject"]

REACHED = []


class ReferenceWithheld(BaseException):
    """A course_lib reference of the exercise being re-verified was called. A
    BaseException, so that ``except Exception`` in an answer does not swallow it."""


def withheld(name, exercise):
    REACHED.append(name)
    try:
        _os.write({EVIDENCE_FD}, ("W " + name + "\\n").encode())
    except OSError:
        pass
    return ReferenceWithheld(
        name + " is withheld while " + exercise + " is re-verified: it computes the answer. "
        "Write the computation in your own code instead of calling it."
    )


class WithheldObject:
    """Stands for a course_lib object (e.g. an exercise record) that is withheld."""

    def __init__(self, name, exercise):
        object.__setattr__(self, "_name", (name, exercise))

    def __getattr__(self, attr):
        raise withheld(object.__getattribute__(self, "_name")[0], object.__getattribute__(self, "_name")[1])

    def __call__(self, *args, **kwargs):
        raise withheld(*object.__getattribute__(self, "_name"))

    def __repr__(self):
        return "<withheld " + object.__getattribute__(self, "_name")[0] + ">"
'''


@dataclass(frozen=True)
class Withheld:
    """One reference, resolved to where it is defined."""

    dotted: str  # as named in Exercise.references
    module: str  # the module whose source defines it
    name: str  # its top-level name there

    @property
    def defined(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class View:
    """A built view: ``root/course_lib`` and ``root/lib/<module>.py`` overrides."""

    root: Path
    lib_overrides: tuple[str, ...]  # file names in the job's lib folder that the view replaces

    @property
    def course_lib(self) -> Path:
        return self.root / "course_lib"


def withheld_for(exercise: Any) -> list[Withheld]:
    """The exercise's references, each resolved (in this trusted process) to its defining module."""
    out: list[Withheld] = []
    for dotted in exercise.references:
        module_name, _, attr = dotted.rpartition(".")
        # A module not imported yet is read, not imported (torch_ref would import torch
        # here for nothing); the reading answers only when it is certain.
        home = None if module_name in sys.modules else source_index.static_home(module_name, attr)
        if home is not None:
            out.append(Withheld(dotted, *home))
            continue
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"{exercise.name}: reference {dotted!r} cannot be resolved ({exc})") from None
        home = getattr(obj, "__module__", None) or module_name
        name = getattr(obj, "__name__", attr)
        if getattr(sys.modules.get(home), name, None) is not obj:  # an alias we cannot follow
            home, name = module_name, attr
        out.append(Withheld(dotted, home, name))
    return out


def checks_modules(support: Path | None) -> set[str]:
    """Modules replaced by stubs: every ``course_lib.checks`` module, and support modules
    that hold an exercise record (a course's own checks module)."""
    from course_lib.checks import Exercise

    names = {"course_lib.checks"}
    package = importlib.import_module("course_lib.checks")
    if package.__file__ is None:
        raise ImportError("course_lib.checks is a namespace package; its check modules cannot be listed")
    for path in Path(package.__file__).parent.glob("*.py"):
        if path.stem != "__init__":
            names.add(f"course_lib.checks.{path.stem}")
    for path in _support_files(support):
        module = sys.modules.get(path.stem)
        if module is not None and any(isinstance(v, Exercise) for v in vars(module).values()):
            names.add(path.stem)
    return names


def withheld_callables(
    exercise: Any, support: Path | None, keep: Mapping[str, frozenset[str]] = {}
) -> dict[int, str]:
    """id -> dotted name of every live object a view of ``exercise`` withholds; used to
    refuse cases that pass one of them as an argument (they could not run in the view).
    ``keep``: checks-module names the view defines after all (see ``case_inputs``)."""
    out: dict[int, str] = {}
    for ref in withheld_for(exercise):
        obj = getattr(sys.modules.get(ref.module), ref.name, None)
        if obj is not None:
            out[id(obj)] = ref.defined
    for module_name in checks_modules(support):
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for key, value in vars(module).items():
            if key in keep.get(module_name, ()):
                continue
            if not key.startswith("_") and callable(value) and not key.startswith("check_"):
                out.setdefault(id(value), f"{module_name}.{key}")
    return out


def case_inputs(
    exercise: Any, functions: Iterable[Any], support: Path | None
) -> dict[str, frozenset[str]] | str:
    """Checks-module functions that the cases pass as arguments (a test function whose
    gradient the answer computes, say) are inputs, not references: the view keeps them,
    with the module globals they use. Returns module -> names to keep, or why a function
    cannot be kept (it is, or needs, something the view withholds)."""
    stubs = checks_modules(support)
    refs = {r.defined for r in withheld_for(exercise)}
    keep: dict[str, set[str]] = {}
    for func in functions:
        module_name = getattr(func, "__module__", "") or ""
        dotted = f"{module_name}.{getattr(func, '__qualname__', '?')}"
        if dotted in refs:
            return f"its cases pass {dotted}, a reference of this very exercise"
        if module_name in stubs:
            why = _keep(
                sys.modules[module_name], func.__qualname__, refs, stubs, keep.setdefault(module_name, set())
            )
            if why:
                return why
    return {m: frozenset(names) for m, names in keep.items()}


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _keep(module: types.ModuleType, name: str, refs: set[str], stubs: set[str], keep: set[str]) -> str:
    if name in keep:
        return ""
    func = vars(module).get(name)
    if not isinstance(func, types.FunctionType) or func.__module__ != module.__name__:
        return f"its cases pass {module.__name__}.{name}, which the re-verification process cannot rebuild"
    keep.add(name)
    for global_name in sorted(_global_names(func.__code__) & set(vars(module))):
        value = vars(module)[global_name]
        home = getattr(value, "__module__", "") or ""
        if isinstance(value, types.FunctionType) and home == module.__name__:
            why = _keep(module, global_name, refs, stubs, keep)
            if why:
                return why
        elif isinstance(value, types.ModuleType) or _constant(value) is not None:
            keep.add(global_name)
        elif callable(value) and home.startswith("course_lib.") and home not in stubs:
            if f"{home}.{getattr(value, '__qualname__', '')}" in refs:
                return f"its cases pass {module.__name__}.{name}, which calls the withheld {home}.{value.__qualname__}"
            keep.add(global_name)
        else:
            return f"its cases pass {module.__name__}.{name}, which uses {global_name} (cannot be rebuilt)"
    return ""


def _support_files(support: Path | None) -> list[Path]:
    return sorted(support.glob("*.py")) if support is not None and support.is_dir() else []


def _key(exercise: Any) -> str:
    return _SAFE_KEY.sub("_", f"{exercise.notebook}__{exercise.name}")


def build_view(
    views: Path, exercise: Any, *, support: Path | None = None, keep: Mapping[str, frozenset[str]] = {}
) -> View:
    """The view of ``exercise`` under ``views`` (built once; concurrent callers may race:
    each builds in a temporary folder and the first ``rename`` wins). ``keep``: from
    ``case_inputs``, the same for every build of one exercise."""
    import course_lib

    root = views / _key(exercise)
    source_dir = Path(course_lib.__file__).resolve().parent
    refs = withheld_for(exercise)
    stubs = checks_modules(support)
    overrides = tuple(
        p.name for p in _support_files(support) if p.stem in stubs or any(r.module == p.stem for r in refs)
    )
    if root.is_dir():
        return View(root, overrides)
    views.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=views))
    try:
        build = _Build(refs, stubs, exercise.name, keep)
        _copy_package(source_dir, tmp / "course_lib", "course_lib", build, _base_copy(views, source_dir))
        (tmp / "course_lib" / f"{_RUNTIME}.py").write_text(_RUNTIME_SOURCE)
        (tmp / "lib").mkdir()
        for path in _support_files(support):
            if path.name in overrides:
                text = _module_text(path, path.stem, build)
                assert text is not None, path  # an override is a stub or holds a reference
                (tmp / "lib" / path.name).write_text(text)
        _readable(tmp)
        try:
            os.rename(tmp, root)
        except OSError:  # another thread won the race: its view is the same
            if not root.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return View(root, overrides)


def _readable(root: Path) -> None:
    # The child reads the view as `nobody` after dropping privileges.
    for dirpath, _, files in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o444)


@dataclass(frozen=True)
class _Build:
    refs: list[Withheld]
    stubs: set[str]  # modules replaced by stubs
    exercise: str
    keep: Mapping[str, frozenset[str]]  # stub module -> names kept as they are


def _copy_package(src: Path, dst: Path, package: str, build: _Build, base: Path) -> None:
    """``src`` as the view sees it under ``dst``; a file the view does not change is a
    hard link to its copy in ``base`` (one per views folder, see ``_base_copy``)."""
    dst.mkdir(parents=True)
    for entry in sorted(src.iterdir()):
        if entry.name == "__pycache__" or entry.suffix in (".pyc", ".pyo"):
            continue
        if entry.is_dir():
            _copy_package(entry, dst / entry.name, f"{package}.{entry.name}", build, base / entry.name)
            continue
        text = None
        if entry.suffix == ".py":
            text = _module_text(
                entry, package if entry.stem == "__init__" else f"{package}.{entry.stem}", build
            )
        if text is not None:
            (dst / entry.name).write_text(text)
        else:
            _link_or_copy(base / entry.name, dst / entry.name)


def _base_copy(views: Path, source_dir: Path) -> Path:
    """``views/.course_lib``: one read-only copy of course_lib (no ``__pycache__``) that
    every view links its unchanged files to, built once like a view (the first rename wins)."""
    base = views / ".course_lib"
    if base.is_dir():
        return base
    tmp = Path(tempfile.mkdtemp(prefix=".base-", dir=views))
    try:
        shutil.copytree(
            source_dir, tmp / "course_lib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
        )
        _readable(tmp)
        try:
            os.rename(tmp / "course_lib", base)
        except OSError:  # another thread won the race: its copy is the same
            if not base.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return base


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copyfile(src, dst)


def _module_text(path: Path, module: str, build: _Build) -> str | None:
    """The view's text of ``module`` (at ``path``), or None when the view keeps it as it is."""
    if module in build.stubs:
        return checks_stub(module, build.exercise, keep=build.keep.get(module, frozenset()))
    names = {r.name: r.defined for r in build.refs if r.module == module}
    if not names:
        return None
    text, _ = source_index.parsed(path)
    plan = withhold_plan(text, names, module)
    return withhold_source(text, plan.withheld, build.exercise, guarded=plan.guarded)


# ------------------------------------------------------------ withholding by AST transform


def _raise_withheld(dotted: str, exercise: str) -> ast.stmt:
    call = (
        f"raise __import__('course_lib.{_RUNTIME}', fromlist=['withheld']).withheld({dotted!r}, {exercise!r})"
    )
    return pyast.parse(call).body[0]


def _guard(dotted: str, exercise: str) -> ast.stmt:
    """The first statement of a guarded helper: raise unless its caller's globals *are* a
    loaded course_lib module's namespace (identity, not ``__name__``, which a student's
    cell can set to anything). One expression, so no local name of the helper is taken."""
    sys_ = "__import__('sys')"
    internal = (
        "(lambda g: str(g.get('__name__', '')).startswith('course_lib.') and "
        f"getattr({sys_}.modules.get(g.get('__name__')), '__dict__', None) is g)({sys_}._getframe(1).f_globals)"
    )
    statement = pyast.parse(f"if not {internal}:\n    pass").body[0]
    assert isinstance(statement, ast.If)
    statement.body = [_raise_withheld(dotted, exercise)]
    return statement


def withhold_source(
    source: str, names: dict[str, str], exercise: str, *, guarded: Mapping[str, str] = {}
) -> str:
    """``source`` with each top-level function/class in ``names`` (name -> dotted name)
    reduced to a stub that raises ``ReferenceWithheld``: signature kept, body and
    docstring gone; each function in ``guarded`` keeps its body but raises when called
    from outside course_lib. Raises ValueError when a name has no top-level definition.

    Only the changed definitions are rewritten (``ast.unparse`` of each); the rest of the
    text stays as it is. A top-level ``def`` or ``class`` always has its lines to itself
    (Python puts no other statement on them), so replacing those lines replaces exactly it."""
    tree = source_index.tree_of(source)
    changed: list[tuple[ast.stmt, ast.stmt]] = []  # (old node, its replacement)
    for node in tree.body:
        new = _withheld_node(node, names, guarded, exercise)
        if new is not None:
            changed.append((node, new))
    missing = (set(names) | set(guarded)) - {getattr(node, "name", "") for node, _ in changed}
    if missing:
        raise ValueError(f"no top-level definition of {sorted(missing)} to withhold")
    lines = source_index.source_lines(source)
    for old, node in reversed(changed):  # from the bottom, so earlier line numbers hold
        first = min([old.lineno, *(d.lineno for d in getattr(old, "decorator_list", []))])
        lines[first - 1 : old.end_lineno] = [ast.unparse(ast.fix_missing_locations(node)) + "\n"]
    return "".join(lines)


def _withheld_node(
    node: ast.stmt, names: Mapping[str, str], guarded: Mapping[str, str], exercise: str
) -> ast.stmt | None:
    """The view's replacement of one top-level statement, or None when it stays. The
    parsed tree is shared (``source_index.tree_of``): a changed node is a copy."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
        stub = copy.copy(node)
        stub.body = [_raise_withheld(names[node.name], exercise)]
        return stub
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in guarded:
        kept = copy.copy(node)
        kept.body = [_guard(guarded[node.name], exercise), *node.body]
        return kept
    if isinstance(node, ast.ClassDef) and node.name in names:
        raise_stmt = _raise_withheld(names[node.name], exercise)
        methods = pyast.parse(
            "def __new__(cls, *args, **kwargs):\n    pass\ndef __init__(self, *args, **kwargs):\n    pass\n"
        ).body
        for method in methods:
            assert isinstance(method, ast.FunctionDef)
            method.body = [raise_stmt]
        return ast.ClassDef(
            name=node.name,
            bases=node.bases,
            keywords=node.keywords,
            body=methods,
            decorator_list=[],
            type_params=[],  # type: ignore[call-arg]  # a 3.12+ field; 3.13 warns when it is missing
            lineno=node.lineno,
            col_offset=node.col_offset,
        )
    return None


@dataclass(frozen=True)
class WithholdPlan:
    """What one module of a view withholds (name -> dotted name), by the rule of the module docstring."""

    withheld: dict[str, str]  # body replaced by a raise
    guarded: dict[str, str]  # private helpers kept for the module's own use only


@functools.lru_cache(maxsize=64)
def _top_level_graph(tree: ast.Module) -> tuple[dict[str, set[str]], set[str], set[str], set[str]]:
    """(name -> module-level names it uses, function names, class names, names used by
    module-level code that is not a definition). Cached per shared tree (``source_index.tree_of``):
    callers only read it."""
    defined: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    defined.setdefault(target.id, node)
    functions = {n for n, d in defined.items() if isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef))}
    classes = {n for n, d in defined.items() if isinstance(d, ast.ClassDef)}

    def used(node: ast.AST) -> set[str]:
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in defined}

    graph = {name: used(node) - {name} for name, node in defined.items()}
    # Module-level code other than definitions runs at import (a decorator, a table
    # built by calling a function): what it calls must stay.
    at_import: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for deco in node.decorator_list:
                at_import |= used(deco)
        elif not isinstance(node, (ast.Import, ast.ImportFrom)):
            at_import |= {
                c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
            }
    return graph, functions, classes, at_import & set(defined)


def _reach(graph: dict[str, set[str]], start: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def withhold_plan(source: str, names: Mapping[str, str], module: str) -> WithholdPlan:
    """The functions of ``module`` (its ``source``) that a view withholding ``names``
    (name -> dotted name) withholds or guards, by the rule of the module docstring."""
    graph, functions, classes, at_import = _top_level_graph(source_index.tree_of(source))
    withheld = dict(names)
    grown = True
    while grown:  # wrappers: functions that call a withheld function, to a fixed point
        wrappers = {f for f in functions - set(withheld) if graph[f] & set(withheld)}
        withheld.update((f, f"{module}.{f}") for f in wrappers)
        grown = bool(wrappers)
    helpers = (_reach(graph, withheld) - set(withheld)) & functions
    staying = {n for n in functions | classes if not n.startswith("_") and n not in withheld} | at_import
    needed = _reach(graph, staying)
    guarded: dict[str, str] = {}
    for helper in sorted(helpers):
        if helper not in needed:
            withheld[helper] = f"{module}.{helper}"
        elif helper.startswith("_"):
            guarded[helper] = f"{module}.{helper}"
    return WithholdPlan(withheld, guarded)


# ------------------------------------------------------------ stubs of checks modules


def checks_stub(module_name: str, exercise: str, *, keep: frozenset[str] = frozenset()) -> str:
    """Source of a stub with the public names of ``module_name`` (imported here, in the
    trusted parent): ``check_*`` no-ops, plain data kept, everything else withheld —
    except the names in ``keep`` (case inputs and what they use), defined as they are."""
    module = importlib.import_module(module_name)
    lines = [
        f'"""Stub of {module_name} for re-verification: checks do nothing, helpers are withheld."""',
        "from __future__ import annotations",
        "import base64 as _b64, io as _io, importlib as _importlib",
        "import numpy as _np",
        f"from course_lib.{_RUNTIME} import withheld as _withheld, WithheldObject as _WithheldObject",
    ]
    public = getattr(module, "__all__", None)
    if isinstance(public, (list, tuple)):
        lines.append(f"__all__ = {[str(n) for n in public]!r}")
    for name, value in sorted(vars(module).items()):
        if name in keep:
            lines.append(_kept(name, value, module_name))
            continue
        if name.startswith("_") or not name.isidentifier():
            continue
        dotted = f"{module_name}.{name}"
        if isinstance(value, __future__._Feature):  # `from __future__ import annotations`
            continue
        if isinstance(value, types.ModuleType):
            if not value.__name__.startswith("course_lib.checks"):
                lines.append(f"{name} = _importlib.import_module({value.__name__!r})")
            continue
        if name.startswith("check_") and callable(value):
            lines.append(f"def {name}(*args, **kwargs):\n    return None")
            continue
        constant = _constant(value)
        if constant is not None:
            lines.append(f"{name} = {constant}")
        elif callable(value):
            lines.append(f"def {name}(*args, **kwargs):\n    raise _withheld({dotted!r}, {exercise!r})")
        else:
            lines.append(f"{name} = _WithheldObject({dotted!r}, {exercise!r})")
    return "\n".join(lines) + "\n"


def _kept(name: str, value: Any, module_name: str) -> str:
    """The definition of a kept name: a function's own source, a module, a constant, or
    an import of a course_lib function from its (view's) module."""
    if isinstance(value, types.ModuleType):
        return f"{name} = _importlib.import_module({value.__name__!r})"
    if isinstance(value, types.FunctionType) and value.__module__ == module_name:
        return textwrap.dedent(inspect.getsource(value)).rstrip()
    constant = _constant(value)
    if constant is not None:
        return f"{name} = {constant}"
    return f"{name} = getattr(_importlib.import_module({value.__module__!r}), {value.__qualname__!r})"


def _constant(value: Any, depth: int = 0) -> str | None:
    """A Python expression rebuilding plain data, or None when ``value`` is not plain data."""
    if depth > 8:
        return None
    kind = type(value)
    if value is None or kind in (bool, int, str, bytes):
        return repr(value)
    if kind is float:
        return repr(value) if math.isfinite(value) else f"float({repr(value)!r})"
    if kind in (tuple, list, frozenset):
        items = [_constant(v, depth + 1) for v in value]
        if any(i is None for i in items):
            return None
        body = ", ".join(items)  # type: ignore[arg-type]
        return {tuple: f"({body}{',' if len(items) == 1 else ''})", list: f"[{body}]"}.get(
            kind, f"frozenset([{body}])"
        )
    if kind is dict:
        pairs = [(_constant(k, depth + 1), _constant(v, depth + 1)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    if kind is np.ndarray or (isinstance(value, np.generic) and kind.__module__ == "numpy"):
        arr = np.asarray(value)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            return None
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        loaded = f"_np.load(_io.BytesIO(_b64.b64decode({base64.b64encode(buf.getvalue()).decode()!r})), allow_pickle=False)"
        return loaded if kind is np.ndarray else f"{loaded}[()]"
    return None


def reference_source(ref: Withheld) -> str:
    """The reference's own source text, read in the trusted parent (for ``copied_from``);
    from its file when its module is not imported (see ``withheld_for``)."""
    if ref.module not in sys.modules:
        text = source_index.definition_text(ref.module, ref.name)
        if text is not None:
            return text
    return inspect.getsource(getattr(importlib.import_module(ref.module), ref.name))
