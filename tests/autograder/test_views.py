"""Course_lib views: the exercise's references withheld, checks stubbed, built once per exercise."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from autograder.views import build_view, checks_stub, withhold_source
from course_lib.checks import get
from course_lib.np_ref import recurrent


def _run_in_view(view: Path, code: str, *, extra_path: list[Path] = ()) -> str:
    """Run ``code`` in a fresh interpreter that imports course_lib from ``view`` (the
    same shadowing the re-verification child gets from its bind mount)."""
    paths = [str(p) for p in (*extra_path, view)]
    prelude = f"import sys; sys.path[:0] = {paths!r}\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _unparsed(path: Path) -> str:
    """The file's code as ``ast.unparse`` writes it: the form ``_body_lines`` compares with
    (a view keeps the text of what it does not change as it is)."""
    return ast.unparse(ast.parse(path.read_text()))


def _raw_body_lines(func: object) -> list[str]:
    """``func``'s body lines below its docstring, as written in its file, that no other
    line of its module has (long ones only)."""
    source = textwrap.dedent(inspect.getsource(func))
    definition = ast.parse(source).body[0]
    assert isinstance(definition, ast.FunctionDef)
    code = [n for n in definition.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    lines = [line.strip() for line in source.splitlines()[code[0].lineno - 1 :]]
    module_text = inspect.getsource(inspect.getmodule(func))
    return [line for line in lines if len(line) > 15 and module_text.count(line) == 1]


def _body_lines(func: object) -> list[str]:
    """Lines (as ``ast.unparse`` writes them, like the view) that only ``func``'s body has
    in its module: if one is in a file, that file holds the function's code."""
    module_text = ast.unparse(ast.parse(inspect.getsource(inspect.getmodule(func))))
    tree = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0]
    lines = [
        line.strip()
        for node in ast.walk(tree)
        if isinstance(node, ast.stmt) and node is not tree and not isinstance(node, ast.Expr)
        for line in ast.unparse(node).splitlines()
    ]
    return [line for line in dict.fromkeys(lines) if len(line) > 15 and module_text.count(line) == 1]


def test_withhold_source_keeps_the_signature_and_drops_body_and_docstring() -> None:
    source = 'def ref(x, *, k=2):\n    """The secret formula."""\n    return x * k + 41\n\nclass Stop:\n    def step(self):\n        return 7\n'
    out = withhold_source(source, {"ref": "pkg.ref", "Stop": "pkg.Stop"}, "ex")
    assert "def ref(x, *, k=2):" in out
    assert "41" not in out and "secret formula" not in out and "return 7" not in out
    assert "withheld('pkg.ref', 'ex')" in out and "withheld('pkg.Stop', 'ex')" in out
    with pytest.raises(ValueError, match="no top-level definition"):
        withhold_source(source, {"missing": "pkg.missing"}, "ex")


def test_view_withholds_the_exercise_references_and_nothing_of_their_source(tmp_path: Path) -> None:
    view = build_view(tmp_path, get("07_rnn", "rnn_unroll"))
    raw = (view.course_lib / "np_ref" / "recurrent.py").read_text()
    text = _unparsed(view.course_lib / "np_ref" / "recurrent.py")
    secret_lines = _body_lines(recurrent.rnn_forward)
    assert secret_lines and not any(line in text for line in secret_lines)
    raw_secrets = _raw_body_lines(recurrent.rnn_forward)
    assert raw_secrets and not any(line in raw for line in raw_secrets)
    assert not list(view.root.rglob("__pycache__")) and not list(view.root.rglob("*.pyc"))
    # Other functions of the module are intact: only the exercise's references are gone.
    kept = _body_lines(recurrent.rnn_backward)
    assert kept and all(line in text for line in kept)
    out = _run_in_view(view.root, """
        import course_lib
        from course_lib.np_ref import recurrent
        from course_lib.torch_ref import recurrent as torch_recurrent
        print(course_lib.__file__)
        for f in (recurrent.rnn_forward, recurrent.rnn_step_forward, torch_recurrent.rnn_forward):
            try:
                f(1, 2, 3, 4, 5)
            except BaseException as exc:
                print(type(exc).__name__, issubclass(type(exc), Exception))
        import course_lib._withheld as w
        print(w.REACHED)
    """)
    lines = out.splitlines()
    assert lines[0].startswith(str(view.root))
    assert lines[1:4] == ["ReferenceWithheld False"] * 3  # a BaseException: `except Exception` cannot hide it
    assert "course_lib.np_ref.recurrent.rnn_forward" in lines[4]


def test_views_are_per_exercise(tmp_path: Path) -> None:
    # rnn_bptt's solution calls recurrent.rnn_forward: a reference of rnn_unroll, not of rnn_bptt.
    bptt = build_view(tmp_path, get("07_rnn", "rnn_bptt"))
    text = _unparsed(bptt.course_lib / "np_ref" / "recurrent.py")
    kept, gone = _body_lines(recurrent.rnn_forward), _body_lines(recurrent.rnn_backward)
    assert kept and all(line in text for line in kept)
    assert gone and not any(line in text for line in gone)


def test_checks_are_no_ops_and_their_helpers_withheld(tmp_path: Path) -> None:
    view = build_view(tmp_path, get("03_backprop", "chain_rule_grads"))
    assert not (view.course_lib / "checks" / "_core.py").read_text().count("def run_check(exercise")
    out = _run_in_view(view.root, """
        from course_lib.checks.nb03_backprop import check_chain_rule_grads, NOTEBOOK
        from course_lib.checks import nb01_perceptron, nb07_rnn
        print(check_chain_rule_grads(lambda *a: 0), nb07_rnn.check_rnn_cell(None, seed=2), NOTEBOOK)
        try:  # a private check-side reference is not in the stub at all
            from course_lib.checks.nb03_backprop import _chain_rule_reference
        except ImportError as exc:
            print(type(exc).__name__)
        try:  # a public check-side helper is withheld
            nb01_perceptron.xor_network([], None)
        except BaseException as exc:
            print(type(exc).__name__)
        try:
            nb07_rnn.RNN_CELL.cases(0)
        except BaseException as exc:
            print(type(exc).__name__)
    """)
    assert out.splitlines() == ["None None 03_backprop", "ImportError", "ReferenceWithheld", "ReferenceWithheld"]


def test_checks_stub_keeps_plain_data_with_its_values(tmp_path: Path) -> None:
    module = types.ModuleType("fake_checks_for_views")
    module.SIZES = (3, 4.5, None, "x", float("inf"))
    module.GRID = np.arange(6.0).reshape(2, 3)
    module.SCALE = np.float32(0.25)
    module.LIMITS = {"lo": -1, "hi": [1, 2]}
    module.check_thing = lambda answer, *, seed=0: 1 / 0
    module.thing_reference = lambda x: x + 1
    module._private = 5
    sys.modules[module.__name__] = module
    try:
        stub = checks_stub(module.__name__, "thing")
    finally:
        del sys.modules[module.__name__]
    (tmp_path / "course_lib").mkdir()
    (tmp_path / "course_lib" / "__init__.py").write_text("")
    (tmp_path / "course_lib" / "_withheld.py").write_text(
        (build_view(tmp_path / "v", get("07_rnn", "rnn_cell")).course_lib / "_withheld.py").read_text()
    )
    (tmp_path / "stubbed.py").write_text(stub)
    out = _run_in_view(tmp_path, """
        import numpy as np, stubbed
        print(stubbed.SIZES, stubbed.LIMITS, stubbed.GRID.tolist(), repr(stubbed.SCALE), stubbed.check_thing(None, seed=3))
        print(hasattr(stubbed, "_private"))
        try:
            stubbed.thing_reference(1)
        except BaseException as exc:
            print(type(exc).__name__)
    """)
    assert out.splitlines() == [
        "(3, 4.5, None, 'x', inf) {'lo': -1, 'hi': [1, 2]} [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] np.float32(0.25) None",
        "False",
        "ReferenceWithheld",
    ]


def test_concurrent_builds_give_one_complete_view(tmp_path: Path) -> None:
    exercise = get("05_regularization", "early_stopping")  # a class reference, re-exported by torch_ref
    results, errors = [], []

    def build() -> None:
        try:
            results.append(build_view(tmp_path, exercise))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len({r.root for r in results}) == 1
    # No half-built leftovers: the view, and the one base copy its unchanged files link to.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([results[0].root.name, ".course_lib"])
    out = _run_in_view(results[0].root, """
        from course_lib.torch_ref.regularization import EarlyStopping
        try:
            EarlyStopping(patience=2)
        except BaseException as exc:
            print(type(exc).__name__, "course_lib.np_ref.regularization.EarlyStopping" in str(exc))
    """)
    assert out.strip() == "ReferenceWithheld True"
