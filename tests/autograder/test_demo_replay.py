"""Like-for-like grading keeps the instructor's ``demo`` cells (plots, training runs).
Re-verification leaves the ones the answer does not need out of a first replay, and
redoes with the full replay every exercise that does not cleanly pass without them
(``autograder.verify``): the demo cells are no longer replayed once per exercise, and
an honest answer that depends on one is judged as before.

Executions are counted, not timed: each demo cell writes a line of its own to the
re-verification's evidence pipe, which the template relays to the parent."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import tiny_checks
import tinycourse
from nbformat.v4 import new_code_cell

from autograder import replay, verify
from autograder.execute import prepare_scratch
from autograder.limits import Limits
from autograder.results import SeedResult, Verdict, VerifyProblem
from autograder.sandbox import detect_protections
from autograder.views import EVIDENCE_FD

pytestmark = pytest.mark.slow
SECRET = 987654321
TINY = [tiny_checks.SQUARE, tiny_checks.SOFTSIGN, tiny_checks.ANSWER_LR]


def _gid(cell: nbformat.NotebookNode) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def _demo(tag: str, body: str = "") -> nbformat.NotebookNode:
    """A demo cell that says each time it runs (``RAN <tag>`` on the evidence pipe)."""
    source = f"import os\nos.write({EVIDENCE_FD}, b'RAN {tag}\\n')\n{body}"
    return new_code_cell(source, metadata={"tags": ["demo"]})


def _notebook(
    answers: dict[str, str], after: dict[str, list[nbformat.NotebookNode]]
) -> nbformat.NotebookNode:
    """The tiny course's notebook, demo cells kept (like for like), with ``answers`` and
    the given cells inserted after the cell of each grade_id."""
    nb = tinycourse.solution_notebook()
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and _gid(cell) in answers:
            cell.source = answers[_gid(cell)]
        cells.append(cell)
        cells.extend(after.get(_gid(cell), []))
    nb.cells = cells
    return nb


def _reverify(
    tmp_path: Path, nb: nbformat.NotebookNode, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Verdict], list[str]]:
    """(verdicts of the tiny course's three exercises, every ``RAN`` line the sandbox relayed)."""
    ran: list[str] = []
    run_sandbox = verify._run_sandbox

    def counting(*args, **kwargs):
        frames = run_sandbox(*args, **kwargs)
        ran.extend(
            line for frame in frames.values() for line in frame.get("lines", []) if line.startswith("RAN ")
        )
        return frames

    monkeypatch.setattr(verify, "_run_sandbox", counting)
    protections = detect_protections()
    scratch = tmp_path / "scratch"
    prepare_scratch(scratch, support=list(tinycourse.SUPPORT), protections=protections)
    seeds = {}
    for ex in TINY:
        tests = [c for c in nb.cells if _gid(c) in (f"test_{ex.name}", f"test_{ex.name}_hidden")]
        seeds[ex.name] = tuple(sorted({SECRET, *(s for c in tests for s in verify.test_seeds(c.source))}))
    verdicts = verify.reverify(
        nb, TINY, seeds=seeds, scratch=scratch, hide=[], limits=Limits(**tinycourse.FAST_LIMITS),
        protections=protections, views=tmp_path / "views",
    )  # fmt: skip
    return verdicts, ran


def _passed(verdict: Verdict) -> bool:
    return (
        verdict.problem is None
        and bool(verdict.seeds)
        and all(r is SeedResult.PASSED for r in verdict.seeds.values())
    )


def test_demo_cells_no_answer_needs_are_not_replayed_per_exercise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three "training runs" right after the setup cell: before, each ran once per
    # exercise after it (3 cells x 3 exercises = 9 times); no answer needs them.
    heavy = "total = 0.0\nfor i in range(200_000):\n    total += i * 1e-9\n"
    nb = _notebook({}, {"setup": [_demo(f"run{k}", heavy) for k in range(3)]})
    verdicts, ran = _reverify(tmp_path, nb, monkeypatch)
    assert all(_passed(v) for v in verdicts.values()), verdicts
    assert all(v.cell_issues == () and v.reached == () for v in verdicts.values())
    assert ran == []


def test_answer_using_a_helper_from_a_demo_cell_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo cell defines what square's answer calls: it stays in square's replay
    # (once), and no other exercise replays it.
    helper = _demo("helper", "def helper(x):\n    return x * x\n")
    nb = _notebook({"square": "def square(x):\n    return helper(x)\n"}, {"square": [helper]})
    verdicts, ran = _reverify(tmp_path, nb, monkeypatch)
    assert all(_passed(v) for v in verdicts.values()), verdicts
    assert ran == ["RAN helper"]


def test_answer_reading_a_global_a_demo_cell_fills_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `fill(table)` changes `table` in a way the name analysis cannot see (a function
    # call, not a method call): without the demo cell square raises KeyError, so square
    # is redone with the full replay and passes, as it does in the notebook.
    own = [new_code_cell("table = {}\ndef fill(d):\n    d['k'] = 1.0\n")]
    nb = _notebook(
        {"square": "def square(x):\n    return x * x * table['k']\n"},
        {"setup": own, "square": [_demo("fill", "fill(table)\n")]},
    )
    verdicts, ran = _reverify(tmp_path, nb, monkeypatch)
    assert all(_passed(v) for v in verdicts.values()), verdicts
    assert verdicts["square"].cell_issues == ()
    assert ran == ["RAN fill"]  # the full replay of square only; softsign and answer_lr passed without it


def test_wrong_answer_stays_wrong_after_the_full_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = _notebook({"square": "def square(x):\n    return 2.0 * x * x\n"}, {"setup": [_demo("plot")]})
    verdicts, ran = _reverify(tmp_path, nb, monkeypatch)
    square = verdicts["square"]
    assert square.problem is None and square.seeds
    assert all(r is SeedResult.WRONG for r in square.seeds.values()), square
    assert _passed(verdicts["softsign"]) and _passed(verdicts["answer_lr"])
    assert ran == ["RAN plot"]  # square's full replay; the demo cell raised no issue there
    assert square.cell_issues == ()


@pytest.mark.parametrize(
    "verdict, settled",
    [
        (Verdict("f", {1: SeedResult.PASSED, 2: SeedResult.PASSED}), True),
        (Verdict("f", {1: SeedResult.PASSED, 2: SeedResult.WRONG}), False),
        (Verdict("f", {1: SeedResult.PASSED, 2: SeedResult.NOT_RUN}), False),
        (Verdict("f", {1: SeedResult.PASSED}, reached=("tiny_refs.reference_square",)), False),
        (Verdict("f", {1: SeedResult.PASSED}, problem=VerifyProblem.NO_REPORT), False),
        (Verdict("f", {}), False),
    ],
    ids=["all-passed", "wrong", "not-run", "reached", "problem", "no-seeds"],
)
def test_only_a_clean_pass_of_the_trimmed_replay_stands(verdict: Verdict, settled: bool) -> None:
    assert verify._settled(verdict) is settled


# ---------------------------------------------------------------- which cells the trimmed replay keeps


@pytest.mark.parametrize(
    "source, reads",
    [
        ("def f(x, *, rng):\n    y = x * k\n    return y + np.sum(y)\n", {"k", "np"}),
        ("def f(x):\n    def g():\n        return x + z\n    return g()\n", {"z"}),
        ("class C:\n    w = q\n    def m(self):\n        return self.a + other\n", {"q", "other"}),
        ("total = 0\nfor v in values:\n    total += v\n", {"total", "values", "v"}),
        ("f = lambda t: t + lam\n[u for u in seq]\n", {"lam", "seq"}),
    ],
    ids=["params-and-locals", "closure", "class", "top-level", "lambda-comprehension"],
)
def test_global_reads_are_the_names_read_from_the_top_level(source: str, reads: set[str]) -> None:
    assert replay.global_reads(source) == frozenset(reads)


@pytest.mark.parametrize("source", ["%%time\nx = y\n", "def f(:\n"], ids=["cell-magic", "syntax-error"])
def test_global_reads_unknown(source: str) -> None:
    assert replay.global_reads(source) is None


def test_precise_plan_does_not_need_cells_defining_only_local_names() -> None:
    cells = [
        (1, "import numpy as np"),
        (2, "x = 1\nrng = 2"),
        (3, "def f(x, *, rng):\n    return np.abs(x)\n"),
    ]
    default = replay.replay_plan(cells, target="f", setup_index=1)
    precise = replay.replay_plan(cells, target="f", setup_index=1, precise=True)
    assert [c.index for c in default if c.needed] == [1, 2, 3]  # `x`, `rng` read in f count as uses
    assert [c.index for c in precise if c.needed] == [1, 3]
    assert [c.index for c in precise] == [1, 2, 3]  # the plan itself is the same


def test_global_reads_count_augmented_and_declared_globals() -> None:
    assert replay.global_reads("def bump():\n    global calls\n    calls += 1\n") == {"calls"}
    assert replay.global_reads("n += 1\n") == {"n"}
