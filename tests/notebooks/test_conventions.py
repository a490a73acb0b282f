"""Every solution notebook follows the one course style (``tests/notebooks/conventions.py``)."""

from __future__ import annotations

import ast

import pytest

from course_lib.checks import get
from tests.notebooks.conventions import (
    GRADING_PARAGRAPH,
    SHAPE,
    generators_made,
    generators_used,
    global_random_calls,
    hidden_test_source,
    visible_test_source,
)
from tests.notebooks.nbtools import SOLUTIONS, is_answer, is_demo, is_test, nbgrader_meta, read, strip_solution_markers


def _module(stem: str) -> str:
    return f"nb{stem}"


def _code_cells(stem: str):
    return [c for c in read(SOLUTIONS / f"{stem}.ipynb").cells if c.cell_type == "code"]


def test_the_introduction_says_what_grading_runs(stem: str) -> None:
    nb = read(SOLUTIONS / f"{stem}.ipynb")
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    intro = "\n".join(c.source for c in nb.cells[:first_code] if c.cell_type == "markdown")
    assert GRADING_PARAGRAPH in " ".join(intro.split()), f"{stem}: the introduction lacks the grading paragraph"


def test_the_setup_cell_imports_no_checks_and_makes_no_generator(stem: str) -> None:
    setup = _code_cells(stem)[0]
    assert nbgrader_meta(setup).get("grade_id") == "setup"
    assert "check_" not in setup.source, f"{stem}: checks are imported in their test cells, not in setup"
    assert not generators_made(setup.source), f"{stem}: a generator in setup is shared by every cell"


def test_every_code_cell_has_one_role(stem: str) -> None:
    for i, cell in enumerate(_code_cells(stem)):
        role = [nbgrader_meta(cell).get("grade_id") == "setup", is_answer(cell), is_test(cell), is_demo(cell)]
        assert sum(role) == 1, f"{stem} code cell {i}: must be exactly one of setup / answer / test / demo-tagged:\n{cell.source[:200]}"


def test_test_cells_are_exactly_the_check_call(stem: str) -> None:
    module = _module(stem)
    for cell in _code_cells(stem):
        if not is_test(cell):
            continue
        grade_id = nbgrader_meta(cell)["grade_id"]
        name = grade_id.removeprefix("test_").removesuffix("_hidden")
        want = hidden_test_source(module, name) if grade_id.endswith("_hidden") else visible_test_source(module, name)
        assert cell.source.strip() == want, f"{stem}/{grade_id}: expected exactly\n{want}\ngot\n{cell.source}"


def _stub(source: str) -> str:
    """The answer cell as the release shows it: the solution region dropped."""
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() == "### BEGIN SOLUTION":
            inside = True
        elif line.strip() == "### END SOLUTION":
            inside = False
        elif not inside:
            lines.append(line)
    return "\n".join(lines)


def test_answer_stubs_are_typed_and_give_shapes(stem: str) -> None:
    for cell in _code_cells(stem):
        if not is_answer(cell):
            continue
        name = nbgrader_meta(cell)["grade_id"]
        stub = _stub(cell.source)
        if get(stem, name).kind == "value":
            assert SHAPE.search(stub), f"{stem}/{name}: the stub's comment must give the value's shapes"
            continue
        tree = ast.parse(strip_solution_markers(cell.source))
        defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
        assert defs, f"{stem}/{name}: the answer cell must define {name}"
        fn = defs[0]
        args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        untyped = [a.arg for a in args if a.annotation is None]
        assert not untyped and fn.returns is not None, f"{stem}/{name}: type hints missing on {untyped or 'the return'}"
        doc = ast.get_docstring(fn)
        assert doc, f"{stem}/{name}: the stub needs a docstring"
        takes_arrays = any("ndarray" in ast.unparse(a.annotation) for a in args)
        if takes_arrays:
            gives_shapes = SHAPE.search(doc) or "any shape" in doc  # element-wise: "z (any shape) -> same shape"
            assert gives_shapes and "->" in doc, f"{stem}/{name}: the docstring must give shapes, in -> out:\n{doc}"


def test_demo_cells_seed_their_own_generators(stem: str) -> None:
    cells = _code_cells(stem)
    made_by = {name: i for i, c in enumerate(cells) for name in generators_made(c.source)}
    for i, cell in enumerate(cells):
        if not is_demo(cell):
            continue
        shared = {n for n in generators_used(cell.source, set(made_by)) if made_by[n] != i}
        assert not shared, f"{stem} code cell {i}: draws from generator(s) {sorted(shared)} made in another cell"
        assert not global_random_calls(cell.source), f"{stem} code cell {i}: uses NumPy's global random state"
