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
  name (``math = 3``, ``np = numpy``) is not a patch;
- trace and profile hooks, import hooks (``sys.meta_path``, ``sys.path_hooks``,
  ``sys.modules`` writes, ``importlib.reload``), IPython hooks (``ast_transformers``,
  ``input_transformers_*``, ``set_custom_exc``, ``events``, ``register_magic_function``);
- file and shell operations naming protected paths (site-packages, ``.pth``,
  ``sitecustomize``, IPython startup, course_lib, solutions, the gradebook, ``.git``,
  ``/proc/``), sockets, ``ctypes``, ``gc.get_objects``/``get_referrers``,
  introspection of course_lib objects;
- ``exec``/``eval``/``compile`` of code read from a file or decoded at run time. Code
  built from literals in the cell is visible to whoever reads the notebook, so it is not
  flagged; only code the reader cannot see (read or decoded) is.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
from collections.abc import Sequence
from enum import Enum
from pathlib import Path, PurePath

from autograder.canonical import ParseBudget, parse_cell
from autograder.intake import lms_file_name
from autograder.results import Evidence

__all__ = ["Kind", "scan_cells", "scan_files"]


class Kind(str, Enum):
    """What a piece of static evidence is (``Evidence.kind`` holds the value)."""

    PATCHED_MODULE = "patched module"
    TRACE_HOOK = "trace hook"
    IMPORT_HOOK = "import hook"
    IPYTHON_HOOK = "ipython hook"
    WRITES_PROTECTED = "writes protected path"
    READS_PROTECTED = "reads protected path"
    NETWORK = "network access"
    INTROSPECTION = "introspection of the grader"
    HIDDEN_CODE = "runs hidden code"
    SHADOWING_FILE = "shadowing module file"

    def __str__(self) -> str:
        return self.value


# Modules whose attributes a student never has reason to set.
_PROTECTED = frozenset(
    "numpy torch course_lib builtins math sys IPython importlib gc os inspect types traceback unittest "
    "nbgrader autograder site threading io pathlib json pickle random scipy operator functools copy "
    "ipykernel jupyter_client nbclient socket ctypes".split()
)
# Honest writes under protected modules: output capture, environment, determinism switches.
_ALLOWED = ("torch.backends.", "sys.stdout", "sys.stderr", "sys.argv", "sys.path", "os.environ")
_SHELL = "IPython.shell"  # the origin given to get_ipython() and the names bound to it
_SHELL_HOOKS = frozenset(
    "ast_transformers input_transformers_cleanup input_transformers_post input_transformer_manager "
    "set_custom_exc custom_exceptions events register_magic_function register_magics magics_manager "
    "showtraceback _showtraceback run_cell run_ast_nodes run_code displayhook display_pub "
    "prefilter_manager user_ns_hidden".split()
)
_TRACE = frozenset(
    "sys.settrace sys.setprofile sys.addaudithook threading.settrace threading.setprofile "
    "threading.settrace_all_threads threading.setprofile_all_threads".split()
)
_IMPORT_STATE = ("sys.modules", "sys.meta_path", "sys.path_hooks", "sys.path_importer_cache")
_GC_WALK = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})
_SOURCE_OF = frozenset({"getsource", "getsourcelines", "getfile", "getsourcefile", "getclosurevars", "getmembers"})
_INNARDS = frozenset({"__code__", "__globals__", "__closure__", "__wrapped__", "__defaults__", "__kwdefaults__"})
_PASS_THROUGH = frozenset({"list", "tuple", "sorted", "reversed", "iter", "set"})
_MUTATORS = frozenset(
    "update setdefault pop popitem clear __setitem__ __delitem__ append insert extend remove".split()
)
_FORBIDDEN_IMPORTS = {"socket": Kind.NETWORK, "_socket": Kind.NETWORK, "ctypes": Kind.INTROSPECTION}

# File and shell operations: which way they touch a path.
_READ, _WRITE, _BOTH = "read", "write", "both"
_PATH_METHODS = {
    "read_text": _READ, "read_bytes": _READ, "iterdir": _READ, "glob": _READ, "rglob": _READ,
    "write_text": _WRITE, "write_bytes": _WRITE, "touch": _WRITE, "mkdir": _WRITE, "unlink": _WRITE,
    "rename": _WRITE, "replace": _WRITE, "symlink_to": _WRITE, "hardlink_to": _WRITE, "chmod": _WRITE,
    "rmdir": _WRITE,
}  # fmt: skip
_PATH_BUILDERS = frozenset(
    "Path PurePath PosixPath str join expanduser expandvars abspath realpath normpath dirname fspath glob iglob".split()
)
_PATH_METHODS_BUILDING = frozenset("joinpath with_name with_suffix resolve expanduser absolute format".split())
_STR_METHODS = frozenset({"replace", "rename", "glob"})  # also str/DataFrame methods: only on a known path
_FILE_FUNCS = {
    "os.listdir": _READ, "os.scandir": _READ, "os.walk": _READ, "glob.glob": _READ, "glob.iglob": _READ,
    "numpy.load": _READ, "numpy.loadtxt": _READ, "numpy.genfromtxt": _READ, "numpy.fromfile": _READ,
    "torch.load": _READ, "nbformat.read": _READ, "json.load": _READ, "runpy.run_path": _READ,
    "os.remove": _WRITE, "os.unlink": _WRITE, "os.rename": _WRITE, "os.replace": _WRITE,
    "os.symlink": _WRITE, "os.link": _WRITE, "os.makedirs": _WRITE, "os.mkdir": _WRITE, "os.chmod": _WRITE,
    "numpy.save": _WRITE, "numpy.savez": _WRITE, "numpy.savetxt": _WRITE, "torch.save": _WRITE,
    "os.open": _BOTH, "io.open": _BOTH, "os.system": _BOTH, "os.popen": _BOTH,
}  # fmt: skip
_FILE_MODULES = ("shutil.", "subprocess.", "pty.")  # every function: both ways
_SHELL_RUNNERS = frozenset({"system", "getoutput", "run_line_magic", "run_cell_magic", "magic"})
_HIDERS = frozenset(
    "read read_text read_bytes readline readlines decode b64decode b32decode b16decode b85decode a85decode "
    "decompress fromhex unhexlify loads urlopen getoutput check_output".split()
)

_PARTS = re.compile(r"[\s/\\'\";|&<>=,]+")
_WRITE_NAMES = frozenset(
    "site-packages dist-packages course_lib autograder solutions source autograded .git .ipython startup submitted".split()
)
_READ_NAMES = frozenset({"solutions", "source", "autograded", ".git", "submitted"})


def _protected_path(text: str, way: str) -> str | None:
    """Why touching ``text`` this way is evidence, or None."""
    parts = [p for p in _PARTS.split(text) if p]
    lowered = text.lower()
    if way in (_WRITE, _BOTH):
        if names := _WRITE_NAMES.intersection(parts):
            return sorted(names)[0]
        for marker in ("sitecustomize", "usercustomize", "gradebook"):
            if marker in lowered:
                return marker
        if any(p.endswith(".pth") for p in parts):
            return ".pth"
    if way in (_READ, _BOTH):
        if names := _READ_NAMES.intersection(parts):
            return sorted(names)[0]
        if "gradebook" in lowered:
            return "gradebook"
    if re.search(r"(^|[\s'\"])/proc(/|$)", text) or text.startswith("/proc"):
        return "/proc/"
    return None


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Scanner(ast.NodeVisitor):
    """One notebook's cells, in order; names bound in one cell are known in the next."""

    def __init__(self) -> None:
        self.modules: dict[str, str] = {}  # name -> dotted origin of what it is bound to
        self.texts: dict[str, str] = {}  # name -> the string it was last assigned (paths)
        self.hidden: set[str] = set()  # names bound to code read or decoded at run time
        self.evidence: list[Evidence] = []
        self.cell = 0

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
            if isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) and node.value.func.id == "globals":
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
            return _SHELL
        if name == "__import__" or called in ("importlib.import_module", "builtins.__import__", "sys.modules.get"):
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
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div, ast.Mod)):
            left, right = self.text(node.left), self.text(node.right)
            if left is None and right is None:
                return None
            return (left or "") + ("/" if isinstance(node.op, ast.Div) else "") + (right or "")
        if isinstance(node, ast.Call) and self._builds_path(node.func):
            parts = [t for a in [*node.args, *(k.value for k in node.keywords)] if (t := self.text(a)) is not None]
            if isinstance(node.func, ast.Attribute) and (base := self.text(node.func.value)) is not None:
                parts.insert(0, base)
            return "/".join(parts) if parts else None
        return None

    def _builds_path(self, func: ast.expr) -> bool:
        """Whether a call makes a path (or a string) out of its arguments."""
        if isinstance(func, ast.Name) and func.id in _PATH_BUILDERS:
            return True
        called = self.origin(func) or ""
        if called.split(".")[-1] in _PATH_BUILDERS and called.split(".")[0] in ("pathlib", "os", "glob"):
            return True
        return isinstance(func, ast.Attribute) and func.attr in _PATH_METHODS_BUILDING

    def _hides(self, node: ast.AST) -> bool:
        """Whether an expression yields code read from a file or decoded at run time."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in self.hidden:
                return True
            if isinstance(sub, ast.Call):
                func = sub.func
                if isinstance(func, ast.Name) and func.id in ("open", *_HIDERS):
                    return True
                if isinstance(func, ast.Attribute) and func.attr in _HIDERS:
                    return True
        return False

    # --- evidence -------------------------------------------------------------------------

    def flag(self, kind: Kind, node: ast.AST, detail: str) -> None:
        where = f"cell {self.cell}, line {getattr(node, 'lineno', 1)}"
        if not any(e.kind == kind.value and e.where == where for e in self.evidence):  # one per kind and line
            self.evidence.append(Evidence(kind.value, where, detail))

    def _store(self, target: ast.AST, node: ast.AST, verb: str = "assigns") -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._store(element, node, verb)
        elif isinstance(target, ast.Starred):
            self._store(target.value, node, verb)
        elif isinstance(target, ast.Name):
            self.modules.pop(target.id, None)  # the student's own name now: not a module
            self.texts.pop(target.id, None)
            self.hidden.discard(target.id)
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            base = self.origin(target.value)
            key = target.attr if isinstance(target, ast.Attribute) else self.text(target.slice) or "?"
            if base is not None:
                self._write_into(base, key, node, verb)

    def _write_into(self, base: str, key: str, node: ast.AST, verb: str) -> None:
        """A write of ``key`` into the module (or module object) ``base``: ``verb`` says how."""
        base = base.removesuffix(".__dict__")
        what = f"{base}.{key}"
        if base == _SHELL or base.startswith(_SHELL + "."):
            self.flag(Kind.IPYTHON_HOOK, node, f"{verb} {what.replace(_SHELL, 'get_ipython()')}")
        elif base in _IMPORT_STATE or what in _IMPORT_STATE:
            self.flag(Kind.IMPORT_HOOK, node, f"{verb} {what}")
        elif base.startswith("?"):
            self.flag(Kind.PATCHED_MODULE, node, f"{verb} {key} of a module imported by a computed name")
        elif base.split(".")[0] in _PROTECTED and not what.startswith(_ALLOWED):
            self.flag(Kind.PATCHED_MODULE, node, f"{verb} {what}")

    def _mutating_call(self, node: ast.Call, func: ast.Attribute, args: list[ast.expr], target: str | None) -> None:
        """``object.__setattr__(m, ...)``, ``m.__setattr__(...)``, ``vars(m).update(...)``, ``sys.meta_path.insert(...)``."""
        if func.attr in ("__setattr__", "__delattr__"):
            if isinstance(func.value, ast.Name) and func.value.id in ("object", "type"):
                owner, key = target, self.text(args[1]) if len(args) > 1 else None
            else:
                owner, key = self.origin(func.value), self.text(args[0]) if args else None
            if owner is not None:
                self._write_into(owner, key or "?", node, "sets" if func.attr == "__setattr__" else "deletes")
        elif func.attr in _MUTATORS:
            owner = self.origin(func.value)
            if owner is not None and (owner.endswith(".__dict__") or owner in _IMPORT_STATE):
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
        if root in _FORBIDDEN_IMPORTS:
            self.flag(_FORBIDDEN_IMPORTS[root], node, f"imports {module}")

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
        names = [t.id for t in ast.walk(node.target) if isinstance(t, ast.Name)]
        items = node.iter
        while isinstance(items, ast.Call) and isinstance(items.func, ast.Name) and items.func.id in _PASS_THROUGH and items.args:
            items = items.args[0]
        # The loop variable is each element: a module of sys.modules, an object of course_lib's...
        origin = self.origin(items)
        if origin is not None:
            element = "?module" if origin.startswith("sys.modules") else f"{origin}[]"
            self.modules.update(dict.fromkeys(names, element))
        # ... or each of a literal list of paths: all of them, as one text to check.
        elements = items.elts if isinstance(items, (ast.Tuple, ast.List, ast.Set)) else [items]
        texts = [t for e in elements if (t := self.text(e)) is not None]
        if texts:
            self.texts.update(dict.fromkeys(names, " ".join(texts)))
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.modules.pop(node.name, None)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

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
        if base == _SHELL and node.attr in _SHELL_HOOKS:
            self.flag(Kind.IPYTHON_HOOK, node, f"uses get_ipython().{node.attr}")
        elif base is not None and base.startswith("course_lib") and node.attr in _INNARDS:
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
        if called in _TRACE:
            self.flag(Kind.TRACE_HOOK, node, f"calls {called}")
        elif called in ("importlib.reload", "imp.reload"):
            self.flag(Kind.IMPORT_HOOK, node, f"calls {called}")
        elif called in _GC_WALK:
            self.flag(Kind.INTROSPECTION, node, f"calls {called}")
        elif called.startswith("inspect.") and called.split(".")[-1] in _SOURCE_OF and (target or "").startswith("course_lib"):
            self.flag(Kind.INTROSPECTION, node, f"calls {called} on {target}")
        elif name in ("exec", "eval", "compile") and args and self._hides(args[0]):
            self.flag(Kind.HIDDEN_CODE, node, f"{name}() of code read or decoded at run time")
        elif name == "__import__" or called in ("importlib.import_module",):
            module = _literal(args[0]) if args else None
            if module and module.split(".")[0] in _FORBIDDEN_IMPORTS:
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
            way = _WRITE if mode is None or set(mode) & set("wax+") else _READ
        elif called in _FILE_FUNCS:
            way = _FILE_FUNCS[called]
        elif called.startswith(_FILE_MODULES):
            way = _BOTH
        elif isinstance(func, ast.Attribute) and self.origin(func.value) == _SHELL and func.attr in _SHELL_RUNNERS:
            way = _BOTH  # "!cat ../solutions/x", "%run", "%%writefile"
        elif isinstance(func, ast.Attribute) and func.attr in _PATH_METHODS:
            if func.attr in _STR_METHODS and self.text(func.value) is None:
                return  # text.replace("solutions", ...) on a string, not a path the cell names
            way = _PATH_METHODS[func.attr]
        elif isinstance(func, ast.Attribute) and func.attr == "open" and not called:
            mode = _literal(node.args[0]) if node.args else "r"
            way = _WRITE if mode is None or set(mode) & set("wax+") else _READ
        if way is None:
            return
        operands = [*node.args, *(k.value for k in node.keywords)]
        if isinstance(func, ast.Attribute):
            operands.insert(0, func.value)
        for operand in operands:
            origin = self.origin(operand)
            if origin is not None and origin.startswith("course_lib"):
                kind = Kind.READS_PROTECTED if way == _READ else Kind.WRITES_PROTECTED
                self.flag(kind, node, f"{'reads' if way == _READ else 'touches'} the files of {origin}")
                return
            text = self.text(operand)
            if text is None:
                continue
            # a command ("cat ../solutions/x") reads unless it names only write targets
            if way != _WRITE and (why := _protected_path(text, _READ)) is not None:
                self.flag(Kind.READS_PROTECTED, node, f"reads a path naming {why}")
                return
            if way != _READ and (why := _protected_path(text, _WRITE)) is not None:
                self.flag(Kind.WRITES_PROTECTED, node, f"writes a path naming {why}")
                return


def scan_cells(cells: Sequence[tuple[int, str]]) -> list[Evidence]:
    """Evidence in the student-written code cells, given as (cell index in the graded notebook, source).

    Cells are read in the given order, as the kernel runs them; a cell that does not
    parse (or is over the parse budget) is skipped.
    """
    scanner, budget = _Scanner(), ParseBudget()
    for index, source in cells:
        tree = parse_cell(source, budget)
        if tree is None:
            continue
        scanner.cell = index
        for statement in tree.body:
            try:
                scanner.visit(statement)
            except RecursionError:
                scanner.sweep(statement)
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
            found.append(Evidence(Kind.SHADOWING_FILE.value, where, "a .pth file runs code when Python starts"))
        elif module in importable:
            found.append(Evidence(Kind.SHADOWING_FILE.value, where, f"shadows the {module} module"))
        elif module is not None and (package := next((p for p in rel.parts[:-1] if p in importable), None)):
            found.append(Evidence(Kind.SHADOWING_FILE.value, where, f"shadows the {package} package"))
    return found
