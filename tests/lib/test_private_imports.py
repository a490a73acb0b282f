"""No module of course_lib imports another module's private (``_``-prefixed) names.

Shared helpers are public names of the module that owns them (argument checks live in
``course_lib.validation``), so neither back-end sits on top of the other's internals.
"""

from __future__ import annotations

import ast
from pathlib import Path

import course_lib

ROOT = Path(course_lib.__file__).resolve().parent


def _private_imports(source: str) -> list[tuple[int, str, str]]:
    """(line, module, name) of every ``from <module> import _name`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append((node.lineno, module, alias.name))
    return found


def test_the_scan_finds_a_private_import() -> None:
    # The scanner itself, on a hand-written module: one private import among public ones.
    source = "from __future__ import annotations\nfrom a.b import c, _d\nfrom . import _e\nimport f\n"
    assert _private_imports(source) == [(2, "a.b", "_d"), (3, ".", "_e")]


def test_no_module_imports_a_private_name_of_another() -> None:
    files = sorted(ROOT.rglob("*.py"))
    assert len(files) > 30  # the scan really walks the package
    offenders = [
        f"{path.relative_to(ROOT.parent)}:{line}: from {module} import {name}"
        for path in files
        for line, module, name in _private_imports(path.read_text())
    ]
    assert not offenders, "private names imported across modules:\n" + "\n".join(offenders)
