"""Canonicalization: the instructor's cells win, answers are found, nothing is silently lost."""

from __future__ import annotations

import copy

import nbformat
import pytest

import tinycourse
from autograder.canonical import answer_defines, canonicalize
from autograder.cells import nbgrader_meta
from autograder.sample import solution_answers, student_notebook


@pytest.fixture()
def course(tiny_course):
    sources, releases = tiny_course
    return sources[tinycourse.STEM], releases[tinycourse.STEM]


def _ids(nb) -> list[str]:
    return [nbgrader_meta(c).get("grade_id") for c in nb.cells if nbgrader_meta(c).get("grade_id")]


def _perfect(course):
    source, release = course
    return student_notebook("perfect", release, solution_answers(source), {}, index=0)


def test_graded_notebook_has_every_canonical_cell_once_in_order(course) -> None:
    source, release = course
    result = canonicalize(_perfect(course), source=source, release=release)
    assert _ids(result.notebook) == _ids(source)
    assert result.notes == []


def test_deleted_test_cell_is_restored_with_hidden_tests(course) -> None:
    source, release = course
    nb = _perfect(course)
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") != "test_square_hidden"]
    result = canonicalize(nb, source=source, release=release)
    restored = [c for c in result.notebook.cells if nbgrader_meta(c).get("grade_id") == "test_square_hidden"]
    assert len(restored) == 1 and "seed=1" in restored[0].source
    assert _ids(result.notebook) == _ids(source)
    assert any("test_square_hidden" in n and "restored" in n for n in result.notes)


def test_edited_test_cell_is_replaced_by_the_instructors(course) -> None:
    source, release = course
    nb = _perfect(course)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == "test_softsign":
            cell.source = "pass  # tests? what tests"
            cell.metadata["nbgrader"]["points"] = 100
    graded = canonicalize(nb, source=source, release=release).notebook
    cell = next(c for c in graded.cells if nbgrader_meta(c).get("grade_id") == "test_softsign")
    assert cell.source == "check_softsign(softsign)"
    assert nbgrader_meta(cell)["points"] == 1


def test_duplicated_graded_cell_counts_once(course) -> None:
    source, release = course
    nb = _perfect(course)
    test = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "test_square")
    nb.cells.insert(3, copy.deepcopy(test))
    result = canonicalize(nb, source=source, release=release)
    assert _ids(result.notebook).count("test_square") == 1
    assert any("duplicated" in n for n in result.notes)


def test_answer_without_metadata_is_found_by_its_definition(course) -> None:
    source, release = course
    nb = _perfect(course)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == "softsign":
            del cell.metadata["nbgrader"]
    result = canonicalize(nb, source=source, release=release)
    assert "np.abs" in result.answers["softsign"]
    assert result.missing_answers == []


def test_missing_answer_is_reported_and_graded_as_unanswered(course) -> None:
    source, release = course
    nb = _perfect(course)
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") != "answer_lr"]
    result = canonicalize(nb, source=source, release=release)
    assert result.missing_answers == ["answer_lr"]
    assert "NotImplementedError" in result.answers["answer_lr"]


def test_other_schema_versions_and_kernels_are_normalized(course) -> None:
    source, release = course
    nb = student_notebook("messy", release, solution_answers(source), {}, index=0)
    graded = canonicalize(nb, source=source, release=release).notebook
    assert graded.metadata["kernelspec"]["name"] == "python3"
    assert {nbgrader_meta(c)["schema_version"] for c in graded.cells if nbgrader_meta(c)} == {3}
    assert all(not c.get("outputs") for c in graded.cells if c.cell_type == "code")


def test_demo_cells_can_be_dropped(course) -> None:
    source, release = course
    kept = canonicalize(_perfect(course), source=source, release=release).notebook
    dropped = canonicalize(_perfect(course), source=source, release=release, drop_demo=True).notebook
    assert len(dropped.cells) == len(kept.cells) - 1


def test_answer_defines_reads_defs_and_assignments() -> None:
    assert answer_defines("import numpy as np\ndef f(x):\n    return x\nlr = 0.1\n%matplotlib inline") == {"f", "lr"}
    assert answer_defines("def broken(:") == set()


# --- bounded work on untrusted input (security round 2, item 8) --------------------------

ESCAPED_CELL = "\n".join(["!a"] * 400 + [f"y{i} = {i}  # padding padding" for i in range(3000)])


def _stripped(nb):
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    return nb


def test_adversarial_notebook_parses_each_cell_once_and_skips_ipython_over_budget(course, monkeypatch) -> None:
    import time

    from IPython.core.inputtransformer2 import TransformerManager

    from autograder import canonical

    source, release = course
    nb = _stripped(_perfect(course))
    nb.cells.extend(nbformat.v4.new_code_cell(ESCAPED_CELL) for _ in range(3))  # the same source thrice
    nb.cells.extend(nbformat.v4.new_code_cell(f"%time z{i} = {i}") for i in range(200))
    parsed: list[str] = []
    transformed: list[str] = []
    real_parse, real_transform = canonical.parse_cell, TransformerManager.transform_cell
    monkeypatch.setattr(canonical, "parse_cell", lambda src, budget: parsed.append(src) or real_parse(src, budget))
    monkeypatch.setattr(TransformerManager, "transform_cell", lambda self, src: transformed.append(src) or real_transform(self, src))
    start = time.perf_counter()
    result = canonicalize(nb, source=source, release=release)
    print(f"canonicalize on the adversarial notebook: {time.perf_counter() - start:.3f} s")
    code_sources = {c.source for c in nb.cells if c.cell_type == "code"}
    assert len(parsed) == len(set(parsed)) and set(parsed) <= code_sources  # each source at most once
    assert ESCAPED_CELL in parsed and ESCAPED_CELL not in transformed  # over IPython's budget: line rewrite
    assert result.budget.ipython_transforms == len(transformed) <= 201
    assert result.missing_answers == [] and set(result.answers) == {"square", "softsign", "answer_lr"}
    assert "np.abs" in result.answers["softsign"]


def test_ipython_work_is_capped_per_notebook(monkeypatch) -> None:
    from autograder.canonical import ParseBudget, parse_cell

    budget = ParseBudget(ipython_work=200)
    for i in range(10):  # each costs (1 escaped line + 1) x 17 bytes = 34 units
        assert parse_cell(f"%time a = {i}\nb = {i}", budget) is not None
    assert budget.ipython_transforms == 5 and budget.ipython_work == 200 - 5 * 34
    assert parse_cell("  x = 1\n  y = 2", budget) is not None  # indented: dedented, as IPython does


@pytest.mark.parametrize(
    "cell",
    [
        "%matplotlib inline\nimport numpy as np",
        "!pip list",
        "files = !ls -la",
        "t = %timeit -o f(3)",
        "def f(x):\n    !echo hi\n    return x",
        "%%bash\necho hi\nls",
    ],
)
def test_line_rewrite_of_magics_agrees_with_ipython(cell: str) -> None:
    """The fallback used over IPython's budget gives the tree IPython gives (the oracle)."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    from autograder.canonical import _plain_transform

    expected = ast.dump(ast.parse(TransformerManager().transform_cell(cell)))
    assert ast.dump(ast.parse(_plain_transform(cell))) == expected


def test_line_rewrite_turns_help_into_no_code() -> None:
    import ast

    from autograder.canonical import _plain_transform

    assert ast.unparse(ast.parse(_plain_transform("x = 1\nx?\n?np.sum"))) == "x = 1\npass\npass"


@pytest.mark.parametrize(
    "cell",
    ["(" * 100_000 + ")" * 100_000, "x = " + "-" * 500_000 + "1", "def f(:\n" * 1000, "a" * 300_000, "\x00"],
    ids=["deep-parens", "huge-unary", "syntax", "over-size", "nul"],
)
def test_parse_cell_never_raises_on_hostile_cells(cell: str) -> None:
    from autograder.canonical import ParseBudget, parse_cell

    assert parse_cell(cell, ParseBudget()) is None
    assert answer_defines(cell) == set()


def test_cells_beyond_the_cap_are_not_read(course, monkeypatch) -> None:
    from autograder import canonical

    source, release = course
    nb = _perfect(course)
    nb.cells.extend(nbformat.v4.new_code_cell(f"x{i} = {i}") for i in range(50))
    monkeypatch.setattr(canonical, "MAX_CELLS", len(nb.cells) - 10)
    result = canonicalize(nb, source=source, release=release)
    assert f"only the first {len(nb.cells) - 10} of {len(nb.cells)} cells were read" in result.notes
    assert _ids(result.notebook) == _ids(source)
