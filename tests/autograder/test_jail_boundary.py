"""The trust boundary is a folder (STYLE rule 14): ``autograder/jail/`` runs inside the
sandbox, the rest of ``autograder`` is the trusted side that launches it.

Read from the source with ``ast`` (every import, also inside functions):

- a trusted module imports from ``autograder.jail`` only the request module;
- a jail module imports from ``autograder`` only this package and the shared pure
  modules it names in its docstring, and through them reaches no grading module.

Then checked again by the import system itself, in fresh interpreters. The checks are
first shown to catch hand-made offending sources.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import autograder

PACKAGE = Path(autograder.__file__).resolve().parent
JAIL = "autograder.jail"
# What the trusted side may import from the jail: the request type and the module names.
TRUSTED_MAY_IMPORT = frozenset({"autograder.jail.request"})
# What a jail module may import from autograder besides autograder.jail.*: pure modules
# both sides share (autograder/jail/__init__.py says what each is for).
JAIL_MAY_IMPORT = frozenset(
    {
        "autograder.limits",
        "autograder.sandbox",
        "autograder.wire",
        "autograder.cap",
        "autograder.ipython_syntax",
        "autograder.replay",
    }
)
# Modules that hold or reach the grader's secrets and records: never loaded in the jail.
GRADING = frozenset(
    f"autograder.{name}"
    for name in (
        "api", "pipeline", "gradebook", "views", "scoring", "verify", "execute", "template",
        "remote", "cluster", "intake", "feedback", "export", "lms", "course", "nbcourse",
        "canonical", "release", "cli", "report", "likeness", "demo", "sample",
    )
)  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Every ``autograder`` module ``source`` (the text of ``module``) imports: ``import
    a.b``, ``from a import b`` (``a.b`` when b is a module, else ``a``), relative imports
    resolved; anywhere in the file."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from autograder import wire` imports the module autograder.wire.
                candidate = f"{base}.{alias.name}"
                found.append(candidate if _is_module(candidate) else base)
    return [name for name in found if name == "autograder" or name.startswith("autograder.")]


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    root = PACKAGE.parent
    return (root / relative).with_suffix(".py").is_file() or (root / relative / "__init__.py").is_file()


def trusted_violations(source: str, module: str) -> list[str]:
    """What a trusted module imports from the jail beyond the request module."""
    return [
        f"{module} imports {name}: the trusted side may import only {sorted(TRUSTED_MAY_IMPORT)} from {JAIL}"
        for name in imported(source, module)
        if (name == JAIL or name.startswith(JAIL + ".")) and name not in TRUSTED_MAY_IMPORT
        # `from autograder.jail.request import X` is reported as the module itself; the
        # package alone (`from autograder.jail import request`) resolves to its module.
    ]


def jail_violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """What a jail module imports from autograder outside the jail and the shared modules."""
    return [
        f"{module} imports {name}: a jail module may import only {JAIL}.* and {sorted(JAIL_MAY_IMPORT)}"
        for name in imported(source, module, is_package=is_package)
        if not (name == JAIL or name.startswith(JAIL + ".")) and name not in JAIL_MAY_IMPORT
    ]


def _modules(jail: bool) -> list[tuple[str, Path]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    inside = [p for p in paths if (PACKAGE / "jail") in p.parents]
    chosen = inside if jail else [p for p in paths if p not in inside]
    return [(_module_name(p), p) for p in chosen]


# ---------------------------------------------------------------- the checks catch offenders


@pytest.mark.parametrize(
    "source",
    [
        "from autograder.jail.execute import main",
        "from autograder.jail import execute",
        "import autograder.jail.verify",
        "import autograder.jail.replay as r",
        "def f():\n    from autograder.jail.kernel_launcher import prepare\n",
        "from .jail.replay_shell import ShellStub",  # relative, from autograder.pipeline
    ],
)
def test_the_trusted_check_catches_a_jail_import(source: str) -> None:
    found = trusted_violations(source, "autograder.pipeline")
    assert len(found) == 1 and "autograder.pipeline imports autograder.jail." in found[0]


@pytest.mark.parametrize(
    "source",
    [
        "from autograder.jail.request import Helper, JailRequest",
        "from autograder.jail import request",
        "from .jail.request import JailRequest",
        "from autograder.sandbox import Limits",
    ],
)
def test_the_trusted_check_lets_the_request_module_through(source: str) -> None:
    assert trusted_violations(source, "autograder.verify") == []


@pytest.mark.parametrize(
    ("source", "offender"),
    [
        ("from autograder.views import EVIDENCE_FD", "autograder.views"),
        ("from autograder import pipeline", "autograder.pipeline"),
        ("import autograder.gradebook as g", "autograder.gradebook"),
        ("def f():\n    from autograder.scoring import score\n", "autograder.scoring"),
        ("from ..api import grade_class", "autograder.api"),  # relative, from autograder.jail.verify
        ("from .. import template", "autograder.template"),
    ],
)
def test_the_jail_check_catches_a_grading_import(source: str, offender: str) -> None:
    found = jail_violations(source, "autograder.jail.verify")
    assert len(found) == 1 and f"autograder.jail.verify imports {offender}:" in found[0]


def test_the_jail_check_lets_the_shared_modules_through() -> None:
    source = (
        "from autograder import wire\nfrom autograder.sandbox import Limits\n"
        "from autograder.jail.request import JailRequest\nfrom . import replay_shell\n"
        "from autograder.replay import ReplayCell\nimport numpy\n"
    )
    assert jail_violations(source, "autograder.jail.verify") == []


def test_the_shared_modules_are_not_grading_modules() -> None:
    assert not JAIL_MAY_IMPORT & GRADING
    assert {
        "autograder.pipeline",
        "autograder.api",
        "autograder.gradebook",
        "autograder.views",
        "autograder.scoring",
    } <= GRADING


# ---------------------------------------------------------------- the code as it is


def test_the_package_has_both_sides() -> None:
    jail = {name for name, _ in _modules(jail=True)}
    assert {"autograder.jail.request", "autograder.jail.execute", "autograder.jail.verify"} <= jail
    assert {"autograder.execute", "autograder.verify", "autograder.template"} <= {
        n for n, _ in _modules(jail=False)
    }


def test_trusted_modules_import_only_the_request_from_the_jail() -> None:
    found = [v for name, path in _modules(jail=False) for v in trusted_violations(path.read_text(), name)]
    assert found == []


def test_jail_modules_import_only_the_jail_and_the_shared_modules() -> None:
    found = [
        v
        for name, path in _modules(jail=True)
        for v in jail_violations(path.read_text(), name, is_package=path.name == "__init__.py")
    ]
    assert found == []


def test_the_jail_reaches_no_grading_module_through_the_shared_ones() -> None:
    # The closure of the jail's imports inside autograder, read from the source.
    sources = {
        name: (path, path.name == "__init__.py") for name, path in _modules(jail=False) + _modules(jail=True)
    }
    todo = [name for name, _ in _modules(jail=True)]
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name in reached or name not in sources:
            continue
        reached.add(name)
        path, is_package = sources[name]
        todo.extend(imported(path.read_text(), name, is_package=is_package))
    assert reached & GRADING == set()


def _loaded(imports: str, prefix: str) -> list[str]:
    code = f"{imports}\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith({prefix!r}))))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout)


def test_importing_the_jail_loads_no_grading_module() -> None:
    loaded = _loaded(
        "import autograder.jail.execute, autograder.jail.verify, autograder.jail.kernel_launcher, "
        "autograder.jail.fork",
        "autograder",
    )
    assert "autograder.jail.execute" in loaded  # the probe ran
    assert sorted(set(loaded) & GRADING) == []


def test_importing_the_trusted_side_loads_only_the_request_of_the_jail() -> None:
    loaded = _loaded(
        "import autograder.api, autograder.pipeline, autograder.execute, autograder.verify, "
        "autograder.template, autograder.remote, autograder.views, autograder.warden",
        JAIL,
    )
    assert loaded == ["autograder.jail", "autograder.jail.request"]
