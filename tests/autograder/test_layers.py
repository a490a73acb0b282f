"""Layering of autograder/ and benchmarks/: no import circles, no private names across modules.

Every import counts, at module level or inside a function (a function-level import is how a
circle hides), and so does every ``TYPE_CHECKING`` import. Shared helpers are public names of
the module that owns them; a ``_name`` stays inside its module. The scanners are checked on
hand-made offending sources first, then run over the two trees.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Circles left on purpose, each with the reason; the test fails if one closes and stays listed.
# sandbox <-> warden: the warden reads Limits/Protections from sandbox (inside main() and for
# types), and sandbox launches the warden. Both files belong to the jail sub-package work in
# progress; the fix is Limits/Protections in a module of their own that both import.


@dataclass(frozen=True)
class Module:
    """One source file of a scanned tree: its importable name and its text."""

    name: str  # "autograder.api", or "isolated" for a benchmarks script
    source: str
    is_package: bool = False  # an __init__.py: relative imports resolve from itself


@dataclass(frozen=True)
class PrivateUse:
    """One use of another module's private name: ``from m import _x`` or ``m._x``."""

    module: str  # the module doing it
    line: int
    target: str  # the module owning the name
    name: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.target}.{self.name}"


def autograder_modules() -> list[Module]:
    """Every .py file under autograder/, named as Python imports it."""
    modules = []
    for path in sorted((REPO / "autograder").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if package else parts)
        modules.append(Module(name, path.read_text(), package))
    return modules


def benchmark_modules() -> list[Module]:
    """The benchmark scripts: they run with benchmarks/ on sys.path, so each is a top-level name."""
    return [Module(p.stem, p.read_text()) for p in sorted((REPO / "benchmarks").glob("*.py"))]


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module name ``from <...> import`` refers to, resolving leading dots."""
    if node.level == 0:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


@dataclass(frozen=True)
class Binding:
    """One import of a scanned module: the module it loads and the local name it binds to one."""

    line: int
    target: str  # the scanned module the import loads
    local: str | None = None  # a local name bound to a module by this import, if any
    local_module: str = ""  # the module that local name refers to


def _bindings(module: Module, tree: ast.AST, known: set[str]) -> list[Binding]:
    """Every import of a known module in ``tree``, at any depth.

    ``from pkg import sub`` where ``pkg.sub`` is a known module imports that module; any other
    ``from m import x`` imports module ``m`` (x binds no module).
    """
    found: list[Binding] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                head = alias.name.split(".")[0]
                if alias.name in known and alias.asname:
                    found.append(Binding(node.lineno, alias.name, alias.asname, alias.name))
                elif alias.name in known:
                    # A plain `import a.b` binds `a`; the code then reads a.b as a dotted name.
                    found.append(Binding(node.lineno, alias.name, head, head))
                elif head in known:
                    found.append(Binding(node.lineno, head))
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                sub = f"{source}.{alias.name}" if source else alias.name
                if sub in known:
                    found.append(Binding(node.lineno, sub, alias.asname or alias.name, sub))
                elif source in known:
                    found.append(Binding(node.lineno, source))
    return found


def import_graph(modules: list[Module]) -> dict[str, set[str]]:
    """module -> the known modules it imports, anywhere in its source."""
    known = {m.name for m in modules}
    graph: dict[str, set[str]] = {}
    for module in modules:
        targets = {b.target for b in _bindings(module, ast.parse(module.source), known)}
        graph[module.name] = targets - {module.name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attribute reads on a plain name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(modules: list[Module]) -> list[PrivateUse]:
    """Every private name one module takes from another.

    ``from m import _x`` is caught for any module ``m`` but ``__future__``; ``alias._x`` where
    ``alias`` is bound to a scanned module by an import (``import a.b as alias``, ``from a
    import b``, or the dotted ``a.b._x`` after ``import a.b``).
    """
    known = {m.name for m in modules}
    found: list[PrivateUse] = []
    for module in modules:
        tree = ast.parse(module.source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                source = _absolute(module, node)
                for alias in node.names:
                    if _private(alias.name):
                        found.append(PrivateUse(module.name, node.lineno, source, alias.name))
        aliases = {b.local: b.local_module for b in _bindings(module, tree, known) if b.local}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            owner = _dotted(node.value)
            if owner is None:
                continue
            head, _, rest = owner.partition(".")
            target = aliases.get(head)
            if target is not None and rest:
                target = f"{target}.{rest}"
            if target in known and target != module.name:
                found.append(PrivateUse(module.name, node.lineno, target, node.attr))
    return sorted(found, key=lambda u: (u.module, u.line, u.name))


# --- the scanners, on hand-made offenders ---------------------------------------------------


def test_the_cycle_scan_finds_a_circle_closed_inside_a_function() -> None:
    modules = [
        Module("pkg", "", is_package=True),
        Module("pkg.a", "from pkg.b import run\n"),
        # The way back hides in a function body, as cli <-> demo did.
        Module("pkg.b", "def run():\n    from . import a\n    return a\n"),
        Module("pkg.c", "import pkg.a\n"),
    ]
    assert import_graph(modules)["pkg.b"] == {"pkg.a"}
    assert cycles(import_graph(modules)) == [["pkg.a", "pkg.b"]]


def test_the_cycle_scan_finds_a_circle_through_three_scripts_and_none_in_a_chain() -> None:
    circle = [Module("x", "import y\n"), Module("y", "from z import f\n"), Module("z", "import x\n")]
    assert cycles(import_graph(circle)) == [["x", "y", "z"]]
    chain = [Module("x", "import y\n"), Module("y", "from z import f\n"), Module("z", "import os\n")]
    assert cycles(import_graph(chain)) == []


def test_the_private_scan_finds_imports_and_attribute_reads() -> None:
    modules = [
        Module("pkg", "", is_package=True),
        Module("pkg.api", "def _helper(): ...\ndef public(): return _helper()\n"),
        Module(
            "pkg.user",
            "from __future__ import annotations\n"
            "from pkg.api import public, _helper\n"
            "from . import api\n"
            "import pkg.api\n"
            "import pkg.api as alias\n"
            "def f():\n"
            "    api._helper()\n"
            "    pkg.api._other\n"
            "    alias._third\n"
            "    api.__name__\n"  # dunders are not private
            "    public._own\n",  # an attribute of a function, not of a module
        ),
    ]
    assert [str(u) for u in private_uses(modules)] == [
        "pkg.user:2: pkg.api._helper",
        "pkg.user:7: pkg.api._helper",
        "pkg.user:8: pkg.api._other",
        "pkg.user:9: pkg.api._third",
    ]


def test_the_private_scan_leaves_a_module_its_own_names() -> None:
    modules = [Module("solo", "import solo\n_x = 1\nsolo._x\n"), Module("other", "import os\nos._exit\n")]
    assert private_uses(modules) == []


# --- the trees -------------------------------------------------------------------------------


def test_the_scans_read_the_real_trees() -> None:
    graph = import_graph(autograder_modules())
    assert len(graph) > 40 and "autograder.api" in graph["autograder.cli"]
    assert len(benchmark_modules()) >= 8


def test_no_import_circle_in_autograder() -> None:
    found = cycles(import_graph(autograder_modules()))
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_import_circle_in_benchmarks() -> None:
    found = cycles(import_graph(benchmark_modules()))
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_private_name_crosses_a_module_in_autograder_or_benchmarks() -> None:
    # Scanned together, so that a benchmark's `api._x` (after `import autograder.api as api`) counts.
    found = private_uses(autograder_modules() + benchmark_modules())
    assert not found, "private names used across modules:\n" + "\n".join(map(str, found))


def test_the_private_scan_sees_a_benchmark_reach_into_the_autograder() -> None:
    modules = [
        Module("autograder", "", is_package=True),
        Module("autograder.api", "_secret = 1\n"),
        Module(
            "bench_x",
            "import autograder.api as api\nfrom autograder import api as a2\napi._secret\na2._secret\n",
        ),
    ]
    assert [str(u) for u in private_uses(modules)] == [
        "bench_x:3: autograder.api._secret",
        "bench_x:4: autograder.api._secret",
    ]
