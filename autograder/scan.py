"""Static tampering scan: the student's code cells and the files handed in beside them.

Evidence, never a verdict on correctness: each ``Evidence`` names what was reached for
("patched module", "ipython hook", ...) and where ("cell 12, line 3", "file numpy.py").
A cell that does not parse is not evidence. The scan reads cells as the kernel will
(magics rewritten as IPython does, via ``canonical.parse_cell`` under one work budget),
follows the names cells bind to modules across cells (``import numpy as foo``,
``np2 = np``, ``getattr(np, "testing")``, ``__import__("numpy")``, ``sys.modules[...]``),
and flags only what an honest notebook has no reason to do:

- writes to attributes of modules the student did not write (numpy, builtins,
  course_lib, torch, math, sys, IPython, importlib, gc, ...), by assignment,
  ``setattr``/``delattr``, or ``vars(m)`` / ``m.__dict__`` writes; rebinding one's own
  name (``math = 3``, ``np = numpy``) is not a patch, and names have scopes (a parameter,
  lambda argument, comprehension or ``except ... as`` name called ``data`` is not the
  module). What a course_lib call returns (a data set, a vocabulary, a model) is data the
  student may edit; only ``object.__setattr__`` past a frozen object's guard is evidence;
- trace and profile hooks, import hooks (``sys.meta_path``, ``sys.path_hooks``,
  ``sys.modules`` writes, ``importlib.reload``), IPython hooks (``ast_transformers``,
  ``input_transformers_*``, ``set_custom_exc``, ``events``, ``register_magic_function``);
- file and shell operations on protected paths: anywhere, site-packages, ``.pth``,
  ``sitecustomize``, IPython startup, a process's ``/proc/<pid>/`` entries; outside the
  student's folder (absolute, ``~``, ``..``), course_lib, solutions, source, the
  gradebook, ``.git``. A name counts only as a path operand, never as a package name
  (``!pip show course_lib``) or a pattern (``grep``). Python magics (``%%time``,
  ``%%capture``, ``%timeit``...) are scanned as code, shell magics as commands;
- sockets, ``ctypes``, ``gc.get_objects``/``get_referrers``, introspection of course_lib
  objects;
- ``exec``/``eval``/``compile`` of code read from a file or decoded at run time. Code
  built from literals in the cell is visible to whoever reads the notebook, so it is not
  flagged; only code the reader cannot see (read or decoded) is.

The walker is here; the rules it applies are ``autograder.scan_rules`` and the reading of
shell commands ``autograder.scan_shell``.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import shlex
import sys
from collections.abc import Collection, Sequence
from pathlib import Path, PurePath

from autograder import pyast
from autograder.canonical import ParseBudget, parse_cell
from autograder.intake import lms_file_name
from autograder.results import Evidence
from autograder.scan_rules import (
    ALLOWED,
    BOTH,
    COMMAND_RUNNERS,
    EXPANDED,
    FILE_FUNCS,
    FILE_MODULES,
    FORBIDDEN_IMPORTS,
    GC_WALK,
    HIDERS,
    IMPORT_STATE,
    INNARDS,
    MAX_MAGIC_DEPTH,
    MUTATORS,
    NOT_CODE,
    OPTIONS_WITH_VALUE,
    PASS_THROUGH,
    PATH_BUILDERS,
    PATH_METHODS,
    PATH_METHODS_BUILDING,
    PROTECTED,
    PYTHON_MAGICS,
    PYTHON_PROCESS,
    READ,
    RESULT,
    SHELL,
    SHELL_HOOKS,
    SHELL_RUNNERS,
    SOURCE_OF,
    STR_METHODS,
    TRACE,
    WRITE,
    WRITE_MAGICS,
    Kind,
    protected_path,
)
from autograder.scan_shell import shell_paths, shell_words

__all__ = ["Kind", "scan_cells", "scan_files"]


def _scope_names(body: Sequence[ast.AST], args: ast.arguments | None) -> tuple[set[str], set[str]]:
    """The names local to a function or class body (parameters and what it binds), and those it
    declares ``global``/``nonlocal``. Nested functions and classes keep theirs; comprehension
    variables are the comprehension's own (its walrus targets are the body's)."""
    local: set[str] = set()
    if args is not None:
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        local |= {a.arg for a in every if a is not None}
    shared: set[str] = set()
    stack: list[ast.AST] = list(body)
    while stack:  # iterative: a deeply nested body does not recurse here
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            shared |= set(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            local.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            local |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
        elif (isinstance(node, ast.ExceptHandler) and node.name) or (
            isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name
        ):
            local.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            local.add(node.rest)
        if isinstance(node, ast.comprehension):
            stack.extend(
                [node.iter, *node.ifs, *(n for n in ast.walk(node.target) if not isinstance(n, ast.Name))]
            )
            continue
        stack.extend(ast.iter_child_nodes(node))
    return local - shared, shared


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Scanner(ast.NodeVisitor):
    """One notebook's cells, in order; names bound in one cell are known in the next."""

    def __init__(self, budget: ParseBudget, evidence: list[Evidence] | None = None, depth: int = 0) -> None:
        self.modules: dict[str, str] = {}  # name -> dotted origin of what it is bound to
        self.texts: dict[str, str] = {}  # name -> the string it was last assigned (paths, one a line)
        self.hidden: set[str] = set()  # names bound to code read or decoded at run time
        self.evidence: list[Evidence] = [] if evidence is None else evidence
        self.cell = 0
        self.budget = budget  # shared with the cell bodies of magics, parsed as they are met
        self.depth = depth  # how many magics deep this scanner reads

    # --- what an expression is ----------------------------------------------------------

    def origin(self, node: ast.AST) -> str | None:
        """The dotted module (or module object) an expression denotes, or None."""
        if isinstance(node, ast.Name):
            if node.id == "__builtins__":
                return "builtins"
            return self.modules.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.origin(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Subscript):
            base = self.origin(node.value)
            key = _literal(node.slice)
            if base == "sys.modules":
                return key or "?module"
            if (
                isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "globals"
            ):
                return self.modules.get(key or "")
            if base:
                return f"{base.removesuffix('.__dict__')}.{key or '?'}"
            return None
        if isinstance(node, ast.Call):
            return self._call_origin(node)
        return None

    def _call_origin(self, node: ast.Call) -> str | None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        called = self.origin(func) or ""
        first = node.args[0] if node.args else None
        if name == "get_ipython" or called == "IPython.get_ipython":
            return SHELL
        if name == "__import__" or called in (
            "importlib.import_module",
            "builtins.__import__",
            "sys.modules.get",
        ):
            return (_literal(first) or "?module") if first is not None else None
        if called.startswith("sys.modules."):  # .values(), .items(), .copy(): modules, by computed names
            return "sys.modules"
        if called.split(".")[0] == "course_lib":  # what course_lib returns is the course's, not the student's
            return f"{called}()"
        if name in ("getattr", "vars") and first is not None:
            base = self.origin(first)
            if base is None:
                return None
            if name == "vars":
                return f"{base}.__dict__"
            key = self.text(node.args[1]) if len(node.args) > 1 else None
            return f"{base}.{key or '?'}"
        return None

    def text(self, node: ast.AST) -> str | None:
        """A best-effort string value of an expression (paths and commands), or None."""
        if (value := _literal(node)) is not None:
            return value
        if isinstance(node, ast.Name):
            return self.texts.get(node.id)
        if isinstance(node, ast.JoinedStr):
            return "".join(_literal(v) or "{}" for v in node.values)
        if isinstance(node, ast.Attribute) and node.attr in ("__file__", "__path__"):
            module = self.origin(node.value)  # where a module lives: outside the student's folder
            return f"/{module.replace('.', '/')}/__init__.py" if module and RESULT not in module else None
        climbed = None  # what `.parent` or `.parents[i]` climbs from
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            climbed = node.value
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parents"
        ):
            climbed = node.value.value
        if climbed is not None:
            base = self.text(climbed)
            return None if base is None else f"{base}/.."  # climbing from a known place
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div, ast.Mod)):
            left, right = self.text(node.left), self.text(node.right)
            if left is None and right is None:
                return None
            # an unknown side stays a placeholder: "/proc/" + str(pid) + "/environ" keeps its shape
            return (
                (left if left is not None else "{}")
                + ("/" if isinstance(node.op, ast.Div) else "")
                + (right if right is not None else "{}")
            )
        if isinstance(node, ast.Call) and self._builds_path(node.func):
            parts = [
                t for a in [*node.args, *(k.value for k in node.keywords)] if (t := self.text(a)) is not None
            ]
            if isinstance(node.func, ast.Attribute) and (base := self.text(node.func.value)) is not None:
                parts.insert(0, base)
            return "/".join(parts) if parts else None
        return None

    def _builds_path(self, func: ast.expr) -> bool:
        """Whether a call makes a path (or a string) out of its arguments."""
        if isinstance(func, ast.Name) and func.id in PATH_BUILDERS:
            return True
        called = self.origin(func) or ""
        if called.split(".")[-1] in PATH_BUILDERS and called.split(".")[0] in ("pathlib", "os", "glob"):
            return True
        return isinstance(func, ast.Attribute) and func.attr in PATH_METHODS_BUILDING

    def _hides(self, node: ast.AST) -> bool:
        """Whether an expression yields code read from a file or decoded at run time."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in self.hidden:
                return True
            if isinstance(sub, ast.Call):
                func = sub.func
                if isinstance(func, ast.Name) and func.id in ("open", *HIDERS):
                    return True
                if isinstance(func, ast.Attribute) and func.attr in HIDERS:
                    return True
        return False

    # --- evidence -------------------------------------------------------------------------

    def flag(self, kind: Kind, node: ast.AST, detail: str, line: int | None = None) -> None:
        where = f"cell {self.cell}, line {line or getattr(node, 'lineno', 1)}"
        if not any(e.kind == kind.value and e.where == where for e in self.evidence):  # one per kind and line
            self.evidence.append(Evidence(kind.value, where, detail, cell=self.cell))

    def _store(self, target: ast.AST, node: ast.AST, verb: str = "assigns") -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._store(element, node, verb)
        elif isinstance(target, ast.Starred):
            self._store(target.value, node, verb)
        elif isinstance(target, ast.Name):
            self._unbind(target.id)  # the student's own name now: not a module
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            base = self.origin(target.value)
            key = target.attr if isinstance(target, ast.Attribute) else self.text(target.slice) or "?"
            if base is not None:
                self._write_into(base, key, node, verb)

    def _unbind(self, name: str) -> None:
        self.modules.pop(name, None)
        self.texts.pop(name, None)
        self.hidden.discard(name)

    def _write_into(self, base: str, key: str, node: ast.AST, verb: str, bypass: bool = False) -> None:
        """A write of ``key`` into the module (or module object) ``base``: ``verb`` says how.

        What a course_lib call returned (a data set, a vocabulary, a model) is the
        student's to edit; only ``object.__setattr__`` (``bypass``), which exists to get
        past a frozen object's guard, is evidence there.
        """
        if RESULT in base and not bypass:
            return
        base = base.removesuffix(".__dict__")
        what = f"{base}.{key}"
        if base == SHELL or base.startswith(SHELL + "."):
            self.flag(Kind.IPYTHON_HOOK, node, f"{verb} {what.replace(SHELL, 'get_ipython()')}")
        elif base in IMPORT_STATE or what in IMPORT_STATE:
            self.flag(Kind.IMPORT_HOOK, node, f"{verb} {what}")
        elif base.startswith("?"):
            self.flag(Kind.PATCHED_MODULE, node, f"{verb} {key} of a module imported by a computed name")
        elif base.split(".")[0] in PROTECTED and not what.startswith(ALLOWED):
            self.flag(Kind.PATCHED_MODULE, node, f"{verb} {what}")

    def _mutating_call(
        self, node: ast.Call, func: ast.Attribute, args: list[ast.expr], target: str | None
    ) -> None:
        """``object.__setattr__(m, ...)``, ``m.__setattr__(...)``, ``vars(m).update(...)``, ``sys.meta_path.insert(...)``."""
        if func.attr in ("__setattr__", "__delattr__"):
            bypass = isinstance(func.value, ast.Name) and func.value.id in ("object", "type")
            if bypass:
                owner, key = target, self.text(args[1]) if len(args) > 1 else None
            else:
                owner, key = self.origin(func.value), self.text(args[0]) if args else None
            if owner is not None:
                verb = "sets" if func.attr == "__setattr__" else "deletes"
                self._write_into(owner, key or "?", node, verb, bypass=bypass)
        elif func.attr in MUTATORS:
            owner = self.origin(func.value)
            if owner is not None and (owner.endswith(".__dict__") or owner in IMPORT_STATE):
                self._write_into(owner, "?", node, f"calls {func.attr}() on")

    # --- statements -------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._imported(alias.name, node)
            if alias.asname:
                self.modules[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                self.modules[root] = root

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return  # a relative import: the student's own package
        self._imported(node.module, node)
        for alias in node.names:
            if alias.name != "*":
                self.modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def _imported(self, module: str, node: ast.AST) -> None:
        root = module.split(".")[0]
        if root in FORBIDDEN_IMPORTS:
            self.flag(FORBIDDEN_IMPORTS[root], node, f"imports {module}")

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)
            self._store(target, node)
        self._bind(node.targets, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)
        self._store(node.target, node)
        if node.value is not None:
            self._bind([node.target], node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self.visit(node.target)
        if not isinstance(node.target, ast.Name):
            self._store(node.target, node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self.visit(target)
            self._store(target, node, "deletes")

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._store(node.target, node)
        self._loop_bind(node.target, node.iter)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def _loop_bind(self, target: ast.expr, items: ast.expr) -> None:
        """The loop variable is each element: a module of sys.modules, an object of course_lib's, a path."""
        names = [t.id for t in ast.walk(target) if isinstance(t, ast.Name)]
        while (
            isinstance(items, ast.Call)
            and isinstance(items.func, ast.Name)
            and items.func.id in PASS_THROUGH
            and items.args
        ):
            items = items.args[0]
        origin = self.origin(items)
        if origin is not None:
            element = "?module" if origin.startswith("sys.modules") else f"{origin}[]"
            self.modules.update(dict.fromkeys(names, element))
        # ... or each of a literal list of paths: all of them, one a line.
        elements = items.elts if isinstance(items, (ast.Tuple, ast.List, ast.Set)) else [items]
        texts = [t for e in elements if (t := self.text(e)) is not None]
        if texts:
            self.texts.update(dict.fromkeys(names, "\n".join(texts)))

    # --- scopes: a function, lambda, class or comprehension has its own names ---------------

    def _scoped(self, local: Collection[str], body: Sequence[ast.AST], shared: Collection[str] = ()) -> None:
        """Visit ``body`` with ``local`` names shadowing the module aliases outside it.

        What the body binds stays inside, except names it declares ``global``/``nonlocal``.
        """
        saved = (dict(self.modules), dict(self.texts), set(self.hidden))
        for name in local:
            self._unbind(name)
        for statement in body:
            self.visit(statement)
        inner = (self.modules, self.texts, self.hidden)
        self.modules, self.texts, self.hidden = saved
        for name in shared:
            self._unbind(name)
            if name in inner[0]:
                self.modules[name] = inner[0][name]
            if name in inner[1]:
                self.texts[name] = inner[1][name]
            if name in inner[2]:
                self.hidden.add(name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for outside in [*node.decorator_list, node.args, *([node.returns] if node.returns else [])]:
            self.visit(outside)  # defaults and decorators run in the enclosing scope
        local, shared = _scope_names(node.body, node.args)
        self._scoped(local, node.body, shared)
        self._unbind(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for outside in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(outside)
        local, shared = _scope_names(node.body, None)
        self._scoped(local, node.body, shared)
        self._unbind(node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.visit(node.args)
        self._scoped(_scope_names([], node.args)[0], [node.body])

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp, results: list[ast.expr]
    ) -> None:
        saved = (dict(self.modules), dict(self.texts), set(self.hidden))
        for generator in node.generators:
            self.visit(generator.iter)
            self._store(generator.target, node)
            self._loop_bind(generator.target, generator.iter)
            for condition in generator.ifs:
                self.visit(condition)
        for result in results:
            self.visit(result)
        self.modules, self.texts, self.hidden = saved

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.visit(item.optional_vars)
                self._store(item.optional_vars, node)
        for statement in node.body:
            self.visit(statement)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._unbind(node.name)
        for statement in node.body:
            self.visit(statement)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._store(node.target, node)
        self._bind([node.target], node.value)

    def _bind(self, targets: list[ast.expr], value: ast.AST) -> None:
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        origin, text, hides = self.origin(value), self.text(value), self._hides(value)
        for name in names:
            if origin is not None:
                self.modules[name] = origin  # an alias: np2 = np, shell = get_ipython()
            if text is not None:
                self.texts[name] = text
            if hides:
                self.hidden.add(name)

    # --- expressions --------------------------------------------------------------------------

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.check_attribute(node)
        self.generic_visit(node)

    def check_attribute(self, node: ast.Attribute) -> None:
        base = self.origin(node.value)
        if base == SHELL and node.attr in SHELL_HOOKS:
            self.flag(Kind.IPYTHON_HOOK, node, f"uses get_ipython().{node.attr}")
        elif base is not None and base.startswith("course_lib") and node.attr in INNARDS:
            self.flag(Kind.INTROSPECTION, node, f"reads {base}.{node.attr}")

    def visit_Call(self, node: ast.Call) -> None:
        self.check_call(node)
        self.generic_visit(node)

    def check_call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        called = self.origin(func) or ""
        args = node.args
        target = self.origin(args[0]) if args else None
        if name in ("setattr", "delattr") and target is not None:
            key = (self.text(args[1]) if len(args) > 1 else None) or "?"
            self._write_into(target, key, node, "sets" if name == "setattr" else "deletes")
        elif isinstance(func, ast.Attribute):
            self._mutating_call(node, func, args, target)
        if called in TRACE:
            self.flag(Kind.TRACE_HOOK, node, f"calls {called}")
        elif called in ("importlib.reload", "imp.reload"):
            self.flag(Kind.IMPORT_HOOK, node, f"calls {called}")
        elif called in GC_WALK:
            self.flag(Kind.INTROSPECTION, node, f"calls {called}")
        elif (
            called.startswith("inspect.")
            and called.split(".")[-1] in SOURCE_OF
            and (target or "").startswith("course_lib")
        ):
            self.flag(Kind.INTROSPECTION, node, f"calls {called} on {target}")
        elif name in ("exec", "eval", "compile") and args and self._hides(args[0]):
            self.flag(Kind.HIDDEN_CODE, node, f"{name}() of code read or decoded at run time")
        elif name == "__import__" or called in ("importlib.import_module",):
            module = _literal(args[0]) if args else None
            if module and module.split(".")[0] in FORBIDDEN_IMPORTS:
                self._imported(module, node)
        self._file_op(node, name, called)

    def sweep(self, statement: ast.stmt) -> None:
        """The checks without recursion, for a statement too deep to visit (no evasion by nesting)."""
        for node in ast.walk(statement):  # breadth-first, iterative
            try:
                if isinstance(node, (ast.Assign, ast.Delete)):
                    for target in node.targets:
                        self._store(target, node)
                elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
                    self._store(node.target, node)
                elif isinstance(node, ast.Call):
                    self.check_call(node)
                elif isinstance(node, ast.Attribute):
                    self.check_attribute(node)
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    self.visit(node)
            except RecursionError:  # this node's own chain is too deep: the others are still checked
                continue

    def _file_op(self, node: ast.Call, name: str | None, called: str) -> None:
        func = node.func
        way: str | None = None
        if name == "open" or called == "builtins.open":
            keyword = next((_literal(k.value) for k in node.keywords if k.arg == "mode"), "r")
            mode = _literal(node.args[1]) if len(node.args) > 1 else keyword
            way = WRITE if mode is None or set(mode) & set("wax+") else READ
        elif called in FILE_FUNCS:
            way = FILE_FUNCS[called]
        elif called.startswith(COMMAND_RUNNERS):
            for operand in [*node.args, *(k.value for k in node.keywords if k.arg in (None, "args"))]:
                self._command(node, self._command_text(operand))
            return
        elif called.startswith(FILE_MODULES):
            way = BOTH
        elif (
            isinstance(func, ast.Attribute)
            and self.origin(func.value) == SHELL
            and func.attr in SHELL_RUNNERS
        ):
            self._shell_runner(node, func.attr)
            return
        elif isinstance(func, ast.Attribute) and func.attr in PATH_METHODS:
            if func.attr in STR_METHODS and self.text(func.value) is None:
                return  # text.replace("solutions", ...) on a string, not a path the cell names
            way = PATH_METHODS[func.attr]
        elif isinstance(func, ast.Attribute) and func.attr == "open" and not called:
            mode = _literal(node.args[0]) if node.args else "r"
            way = WRITE if mode is None or set(mode) & set("wax+") else READ
        if way is None:
            return
        operands = [*node.args, *(k.value for k in node.keywords)]
        if isinstance(func, ast.Attribute):
            operands.insert(0, func.value)
        for operand in operands:
            origin = self.origin(operand)
            if origin is not None and origin.startswith("course_lib") and RESULT not in origin:
                kind = Kind.READS_PROTECTED if way == READ else Kind.WRITES_PROTECTED
                self.flag(kind, node, f"{'reads' if way == READ else 'touches'} the files of {origin}")
                return
            text = self.text(operand)
            if text is not None and self._path(node, text, way):
                return

    def _path(self, node: ast.AST, text: str, way: str, line: int | None = None) -> bool:
        """Flag touching a path (or each of several, one a line) this way; whether it was evidence."""
        for path in text.splitlines():
            if way != WRITE and (why := protected_path(path, READ)) is not None:
                self.flag(Kind.READS_PROTECTED, node, f"reads a path naming {why}", line)
                return True
            if way != READ and (why := protected_path(path, WRITE)) is not None:
                self.flag(Kind.WRITES_PROTECTED, node, f"writes a path naming {why}", line)
                return True
        return False

    def _command_text(self, operand: ast.expr) -> str | None:
        """A command line: a string, or a list of words (``subprocess.run(["cp", a, b])``)."""
        if isinstance(operand, (ast.List, ast.Tuple)):
            words = [self.text(e) for e in operand.elts]
            return " ".join(shlex.quote(w) if w is not None else "{}" for w in words)
        return self.text(operand)

    def _command(self, node: ast.AST, command: str | None, first_line: int | None = None) -> None:
        """Flag the path operands of shell commands (never package names or patterns).

        ``first_line`` is the cell line of the command's first line (a ``%%bash`` body);
        without it, evidence is on the line of ``node``.
        """
        if command is None:
            return
        # IPython expands {name} and $name in shell lines: a path kept in a variable is still that path
        command = EXPANDED.sub(lambda m: self.texts.get(m[1] or m[2], m[0]), command)
        for offset, text in enumerate(command.splitlines()):
            for path, way in shell_paths(text):
                if self._path(node, path, way, None if first_line is None else first_line + offset):
                    return

    def _shell_runner(self, node: ast.Call, attr: str) -> None:
        """``get_ipython().system/getoutput/run_line_magic/run_cell_magic/magic(...)``: ``!``, ``%``, ``%%``."""
        texts = [self.text(a) for a in node.args]
        if attr in ("system", "getoutput"):
            self._command(node, texts[0] if texts else None)
        elif attr == "magic":  # the old spelling: get_ipython().magic("run x.py")
            magic, _, line = (texts[0] or "").lstrip("%").partition(" ")
            self._magic(node, magic or None, line, None)
        else:
            line = (texts[1] if len(texts) > 1 else None) or ""
            body = texts[2] if attr == "run_cell_magic" and len(texts) > 2 else None
            self._magic(node, texts[0] if texts else None, line, body)

    def _magic(self, node: ast.Call, magic: str | None, line: str, body: str | None) -> None:
        """One magic: Python magics are scanned as code, shell and file magics as commands and paths."""
        lineno = getattr(node, "lineno", 1)
        if magic is None:  # a name computed at run time: its text can only be read as a command
            self._command(node, line)
            self._command(node, body)
        elif magic in PYTHON_MAGICS:
            if magic != "capture":  # %%capture's line names its output variable
                for code in _code_after_options(line):
                    self._python(node, code, lineno - 1)
            if body is not None:
                self._python(node, body, lineno)  # the body starts on the line after the magic
        elif magic in WRITE_MAGICS:
            operands = [w for w in shell_words(line) if not w.startswith("-")]
            if operands:
                self._path(node, operands[0], WRITE)
        elif body is not None and (magic in PYTHON_PROCESS or (magic == "script" and "python" in line)):
            self._python(node, body, lineno, process=True)
        elif body is not None:
            if magic not in NOT_CODE:  # %%bash, %%sh, %%script, %%perl ...: commands
                self._command(node, body, lineno + 1)
        else:  # %run x.py, %load ../x.py, %cd .., %save f.py 1-3 ...: as the command it reads like
            self._command(node, f"{magic} {line}")

    def _python(self, node: ast.Call, code: str, offset: int, process: bool = False) -> None:
        """Scan the Python text of a magic as code, with its lines numbered as in the cell.

        A Python child process (``%%python3``) has its own names, so a fresh scanner reads it.
        """
        if not code.strip():
            return
        if self.depth >= MAX_MAGIC_DEPTH:
            self.flag(Kind.HIDDEN_CODE, node, f"magics nested more than {MAX_MAGIC_DEPTH} deep")
            return
        tree = parse_cell(code, self.budget)
        if tree is None:
            return
        ast.increment_lineno(tree, offset)
        scanner = self
        if process:
            scanner = _Scanner(self.budget, self.evidence, self.depth + 1)
            scanner.cell = self.cell
        else:
            self.depth += 1
        try:
            scanner.read(tree)
        finally:
            if not process:
                self.depth -= 1

    def read(self, tree: ast.Module) -> None:
        """Every statement of a parsed cell, in order."""
        for statement in tree.body:
            try:
                self.visit(statement)
            except RecursionError:
                self.sweep(statement)


def _code_after_options(line: str) -> list[str]:
    """The Python of a line magic after its options (``%timeit -n 10 -r 3 f(x)`` -> ``f(x)``).

    At most two parses, whatever the line: the text after the options, and the whole line
    (code may start with a minus: ``%time -setattr(...) + 1``); each that parses is code.
    """
    words = line.split()
    start = 0
    while start < len(words) and words[start].startswith("-"):
        start += 2 if words[start] in OPTIONS_WITH_VALUE else 1
    code = []
    for candidate in dict.fromkeys([" ".join(words[start:]), line.strip()]):
        try:
            pyast.parse(candidate)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        code.append(candidate)
    return code


def scan_cells(cells: Sequence[tuple[int, str]]) -> list[Evidence]:
    """Evidence in the student-written code cells, given as (cell index in the graded notebook, source).

    Cells are read in the given order, as the kernel runs them; a cell that does not
    parse (or is over the parse budget) is skipped.
    """
    budget = ParseBudget()
    scanner = _Scanner(budget)
    for index, source in cells:
        tree = parse_cell(source, budget)
        if tree is None:
            continue
        scanner.cell = index
        scanner.read(tree)
    return scanner.evidence


@functools.cache
def _importable() -> frozenset[str]:
    """Top-level names ``import`` would find in this environment, plus the course's own."""
    names = set(sys.stdlib_module_names) | set(importlib.metadata.packages_distributions())
    names |= {"course_lib", "autograder", "sitecustomize", "usercustomize", "IPython", "numpy", "torch"}
    return frozenset(n for n in names if not n.startswith("__"))


def _module_name(name: str) -> str | None:
    """The module a file name would be imported as (``numpy.py``, ``_x.cpython-311.so``)."""
    for suffix in (".py", ".pyc", ".pyd", ".so", ".pyw"):
        if name.endswith(suffix):
            return name.split(".")[0]
    return None


def scan_files(paths: Sequence[Path], root: Path) -> list[Evidence]:
    """Evidence in the files handed in beside the notebook: names that shadow a module.

    Only names are read, never contents. ``root`` is the folder the names are shown
    relative to (the student's folder, or the submissions root for flat downloads).
    """
    found: list[Evidence] = []
    importable = _importable()
    for path in paths:
        try:
            rel = PurePath(path).relative_to(root)
        except ValueError:
            rel = PurePath(PurePath(path).name)
        where = f"file {rel.as_posix()}"
        name = lms_file_name(rel.name)
        module = _module_name(name)
        if name.endswith(".pth"):
            found.append(
                Evidence(Kind.SHADOWING_FILE.value, where, "a .pth file runs code when Python starts")
            )
        elif module in importable:
            found.append(Evidence(Kind.SHADOWING_FILE.value, where, f"shadows the {module} module"))
        elif module is not None and (package := next((p for p in rel.parts[:-1] if p in importable), None)):
            found.append(Evidence(Kind.SHADOWING_FILE.value, where, f"shadows the {package} package"))
    return found
