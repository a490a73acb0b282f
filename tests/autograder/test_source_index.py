"""Reading where a reference is defined from source (``autograder.source_index``), and
the views' splice of withheld definitions (``views.withhold_source``).

The oracle for the reading is Python's own import: for every reference of the course,
and for a synthetic package of awkward cases, the static answer is either the one
importing gives, or None (then the grader imports, as before).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from autograder import source_index
from autograder.views import withhold_plan, withhold_source
from course_lib.checks import exercises

# The course's own exercises (other tests register a tiny course's in the same registry).
_NOTEBOOKS = {p.stem for p in (Path(__file__).resolve().parents[2] / "solutions").glob("*.ipynb")}
_COURSE = [ex for ex in exercises() if ex.notebook in _NOTEBOOKS]
_REFERENCES = sorted({dotted for ex in _COURSE for dotted in ex.references})


def _imported_home(dotted: str) -> tuple[str, str]:
    """Where importing says ``dotted`` is defined: the rule ``views.withheld_for`` applies."""
    module_name, _, attr = dotted.rpartition(".")
    obj = getattr(importlib.import_module(module_name), attr)
    home, name = getattr(obj, "__module__", None) or module_name, getattr(obj, "__name__", attr)
    if getattr(sys.modules.get(home), name, None) is not obj:
        return module_name, attr
    return home, name


def test_the_course_has_references_in_both_halves_of_course_lib() -> None:
    assert len(_REFERENCES) > 50
    assert any(".torch_ref." in r for r in _REFERENCES) and any(".np_ref." in r for r in _REFERENCES)


@pytest.mark.parametrize("dotted", _REFERENCES)
def test_every_course_reference_is_read_where_importing_finds_it(dotted: str) -> None:
    module_name, _, attr = dotted.rpartition(".")
    home = source_index.static_home(module_name, attr)
    assert home == _imported_home(dotted)
    assert source_index.definition_text(*home) == inspect.getsource(getattr(importlib.import_module(home[0]), home[1]))


def test_resolving_and_building_every_view_leaves_torch_unimported(tmp_path: Path) -> None:
    # What re-verification does in the grader for each exercise, in a fresh interpreter.
    code = f"""
        import sys
        from pathlib import Path
        from autograder import views
        from course_lib.checks import exercises
        for ex in exercises():
            for ref in views.withheld_for(ex):
                assert views.reference_source(ref).lstrip().startswith(("def ", "class ", "@")), ref
            views.withheld_callables(ex, None)
            views.build_view(Path({str(tmp_path)!r}), ex)
        print(len(exercises()), "torch" in sys.modules)
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    count, torch_loaded = proc.stdout.split()
    assert int(count) == len(_COURSE) and torch_loaded == "False"  # a fresh registry: the course's own


# ---------------------------------------------------------------- awkward modules

_FILES = {
    "__init__.py": "",
    "defs.py": '''
        from dataclasses import dataclass
        import functools

        def plain(x):
            return x + 1

        @dataclass
        class Record:
            value: int = 0

        def _elsewhere(f):
            return functools.partial(f)

        @_elsewhere
        def decorated(x):
            return x

        def twice():
            return 1

        twice = plain
    ''',
    "reexport.py": """
        from .defs import plain as alias
        from sipkg.defs import Record
        from . import defs
    """,
    "star.py": """
        from .defs import *

        def own():
            return 2
    """,
    "lazy.py": """
        def own():
            return 3

        def __getattr__(name):
            return own
    """,
    "dynamic.py": """
        def own():
            return 4

        globals()["own"] = len
    """,
    "rebinds.py": """
        def own():
            return 5

        def swap():
            global own
            own = len
    """,
    "fallback.py": """
        try:
            from .defs import plain
        except ImportError:
            def plain(x):
                return x
    """,
    "separators.py": 'NOTE = "a form feed \\x0c and a line separator \\u2028 inside a string"\n\n\n'
    "def after(x):\n    return x * 2\n",
}
# name -> expected static answer: "import" (equal to importing's), or None (unsure).
_CASES = {
    "defs.plain": "import",
    "defs.Record": "import",
    "defs.decorated": None,  # a decorator that may return anything
    "defs.twice": None,  # bound twice
    "reexport.alias": "import",  # followed to defs.plain
    "reexport.Record": "import",  # an absolute import followed
    "reexport.defs": None,  # a module, not a definition
    "star.own": None,  # a star import can bind anything
    "lazy.own": None,  # module __getattr__
    "dynamic.own": None,  # globals()
    "rebinds.own": None,  # `global own` in a function
    "fallback.plain": None,  # two bindings in try/except
    "separators.after": "import",
}


@pytest.fixture
def awkward_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"sipkg_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    for file, text in _FILES.items():
        (folder / file).write_text(textwrap.dedent(text).replace("sipkg", name))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module(name)  # the top-level package only, as course_lib is
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


@pytest.mark.parametrize("case", sorted(_CASES))
def test_awkward_modules_are_read_right_or_left_to_importing(awkward_package: str, case: str) -> None:
    module, _, attr = f"{awkward_package}.{case}".rpartition(".")
    static = source_index.static_home(module, attr)
    if _CASES[case] is None:
        assert static is None
    else:
        assert static == _imported_home(f"{module}.{attr}")


def test_definition_text_counts_lines_as_the_parser_does(awkward_package: str) -> None:
    module = f"{awkward_package}.separators"
    text = source_index.definition_text(module, "after")
    assert text == "def after(x):\n    return x * 2\n"
    assert text == inspect.getsource(importlib.import_module(module).after)
    assert source_index.module_file(f"{awkward_package}.nothing") is None
    assert source_index.module_file("not_imported_package_xyz.mod") is None


# ---------------------------------------------------------------- the views' splice


def _definitions(tree: ast.Module) -> dict[str, ast.stmt]:
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _check_splice(source: str, names: dict[str, str], guarded: dict[str, str]) -> None:
    """The spliced module against the original, statement by statement: withheld
    definitions are a signature over one ``raise`` (classes: ``__new__``/``__init__``
    that raise), guarded ones their old body under one ``if``, the rest unchanged."""
    out = withhold_source(source, names, "ex", guarded=guarded)
    before, after = ast.parse(source), ast.parse(out)
    assert len(before.body) == len(after.body)
    for old, new in zip(before.body, after.body, strict=True):
        name = getattr(old, "name", None)
        if name in names and isinstance(old, ast.ClassDef):
            assert isinstance(new, ast.ClassDef) and [m.name for m in new.body] == ["__new__", "__init__"]
            assert all(isinstance(m.body[0], ast.Raise) for m in new.body)
        elif name in names:
            assert isinstance(new, (ast.FunctionDef, ast.AsyncFunctionDef)) and isinstance(old, type(new))
            assert ast.dump(new.args) == ast.dump(old.args)
            assert len(new.body) == 1 and isinstance(new.body[0], ast.Raise)
        elif name in guarded:
            assert isinstance(new, ast.FunctionDef) and isinstance(old, ast.FunctionDef)
            assert isinstance(new.body[0], ast.If) and isinstance(new.body[0].body[0], ast.Raise)
            assert [ast.dump(s) for s in new.body[1:]] == [ast.dump(s) for s in old.body]
        else:
            assert ast.dump(new) == ast.dump(old)


def test_the_splice_changes_exactly_the_planned_definitions_of_every_course_module() -> None:
    checked = 0
    for ex in _COURSE:
        by_module: dict[str, dict[str, str]] = {}
        for dotted in ex.references:
            module, _, attr = dotted.rpartition(".")
            home = source_index.static_home(module, attr) or (module, attr)
            by_module.setdefault(home[0], {})[home[1]] = dotted
        for module, names in by_module.items():
            source = inspect.getsource(importlib.import_module(module))
            plan = withhold_plan(source, names, module)
            _check_splice(source, plan.withheld, plan.guarded)
            checked += 1
    assert checked >= len(_COURSE) > 30


def test_the_splice_keeps_line_numbers_past_form_feeds_and_decorators() -> None:
    source = textwrap.dedent('''
        """A module whose docstring holds a form feed \x0c and a line separator \u2028."""
        import functools


        @functools.lru_cache
        def ref(x):
            """The reference."""
            return x * 3  # the answer


        def _helper(x):
            return x + 1


        def uses(x):
            return _helper(x)


        class Stop:
            def __init__(self):
                self.n = 0
        x = 1; y = 2
    ''')
    _check_splice(source, {"ref": "m.ref", "Stop": "m.Stop"}, {"_helper": "m._helper"})
    out = withhold_source(source, {"ref": "m.ref"}, "ex")
    assert "x * 3" not in out and "the answer" not in out
    assert "\x0c" in out and "x = 1; y = 2" in out  # the rest is the original text
