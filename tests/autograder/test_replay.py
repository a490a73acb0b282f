"""Replay, in memory: which cells an answer needs, and running cells the way the kernel would."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from autograder.replay import (
    OPTIONAL_CELL_SECONDS,
    ReplayCell,
    cell_names,
    fresh_namespace,
    replay_plan,
    run_cells,
)


@pytest.fixture(autouse=True)
def _keep_main():
    import sys

    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main  # fresh_namespace() installs the replay's own __main__


def test_cell_names_sees_definitions_uses_and_ipython_syntax() -> None:
    names = cell_names("%matplotlib inline\nimport numpy as np\ndef f(x):\n    return helper(x) + np.pi\nk = 3\n")
    assert names.defines == {"np", "f", "k"}
    assert {"helper", "np", "x"} <= names.uses
    assert "x" not in names.defines  # a parameter is local to f, not a notebook name
    mutated = cell_names("params['w'] = 1\ncounter += 1\nobj.attr = 2")
    assert {"params", "counter", "obj"} <= mutated.defines
    assert cell_names("from helpers import *").opaque
    assert cell_names("def f(:\n").error.startswith("SyntaxError")


def test_plan_marks_the_answer_its_earlier_answer_and_helpers_as_needed() -> None:
    cells = [
        (1, "import numpy as np"),
        (3, "def rnn_cell(x, h, wx, wh, b):\n    return np.tanh(x @ wx + h @ wh + b)"),
        (5, "def stack(states):\n    return np.stack(states, axis=1)"),  # a cell the student inserted
        (6, "import time\ntime.sleep(60)\nresult = 1"),  # an experiment: defines nothing used
        (7, "def rnn_unroll(x, h0, wx, wh, b):\n    h, out = h0, []\n"
            "    for t in range(x.shape[1]):\n        h = rnn_cell(x[:, t], h, wx, wh, b)\n        out.append(h)\n"
            "    return stack(out)"),
    ]  # fmt: skip
    plan = replay_plan(cells, target="rnn_unroll", setup_index=1)
    needed = {c.index for c in plan if c.needed}
    assert needed == {1, 3, 5, 7}
    assert [c.index for c in plan] == [1, 3, 5, 6, 7]  # every cell still runs, in order
    assert next(c for c in plan if c.index == 1).setup


def test_plan_needs_a_cell_that_only_changes_a_used_object() -> None:
    cells = [(0, "config = {}"), (1, "config['scale'] = 2.0"), (2, "def f(x):\n    return x * config['scale']")]
    assert all(c.needed for c in replay_plan(cells, target="f", setup_index=None))


def _run(sources: list[str], *, needed: bool = False, skip: set[int] | None = None, pool: float = 10.0):
    plan = [ReplayCell(i, s, needed) for i, s in enumerate(sources)]
    namespace = fresh_namespace()
    lines: list[str] = []
    issues, setup_error = run_cells(
        plan, namespace, skip=skip or set(), deadline=time.monotonic() + 30, pool=pool, progress=lines.append
    )
    return namespace, issues, setup_error, lines


def test_a_cell_that_raises_is_an_issue_and_the_replay_goes_on() -> None:
    namespace, issues, setup_error, _ = _run(
        ["def square(x):\n    return x * x\nraise RuntimeError('after the def')", "y = square(3)"]
    )
    assert setup_error == ""
    assert issues == [(0, "raised", "RuntimeError: after the def")]
    assert namespace["y"] == 9  # the def before the error still counts, as in the notebook


def test_magics_shell_commands_and_seeding_are_harmless(tmp_path: Path) -> None:
    target = tmp_path / "created-by-a-shell-command"
    namespace, issues, _, _ = _run([
        "%matplotlib inline",
        f"!touch {target}",
        "get_ipython().run_line_magic('config', 'x')\nimport numpy as np\nnp.random.seed(0)",
        "files = !ls\nnp.zeros?",
        "display(1)\nok = True",
    ])  # fmt: skip
    assert issues == []
    assert namespace["ok"] is True
    assert not target.exists()  # `!cmd` never runs a command


def test_a_long_experiment_is_stopped_by_its_time_box_and_skipped_later() -> None:
    start = time.monotonic()
    namespace, issues, _, lines = _run(["import time\ntime.sleep(60)", "after = 1"])
    seconds = time.monotonic() - start
    print(f"a 60 s experiment cell cost {seconds:.2f} s")
    assert seconds < OPTIONAL_CELL_SECONDS + 1.0
    assert issues[0][:2] == (0, "timed out") and namespace["after"] == 1
    assert "T 0" in lines
    _, issues, _, _ = _run(["import time\ntime.sleep(60)", "after = 1"], skip={0})
    assert issues[0][:2] == (0, "skipped")


def test_needed_cells_are_not_boxed_and_optional_time_is_shared() -> None:
    # 3.5 s is over the box: fine for a needed cell ...
    _, issues, _, _ = _run(["import time\ntime.sleep(OPTIONAL_CELL_SECONDS + 0.5)".replace(
        "OPTIONAL_CELL_SECONDS", str(OPTIONAL_CELL_SECONDS))], needed=True)  # fmt: skip
    assert issues == []
    # ... while optional cells together stop when their pool is spent.
    _, issues, _, _ = _run(["import time\ntime.sleep(0.6)"] * 3, pool=1.0)
    assert [kind for _, kind, _ in issues] == ["timed out", "skipped"]


def test_a_failing_setup_cell_stops_the_replay() -> None:
    plan = [ReplayCell(0, "import not_a_module_anywhere", True, setup=True), ReplayCell(1, "x = 1", True)]
    namespace = fresh_namespace()
    issues, setup_error = run_cells(plan, namespace, skip=set(), deadline=time.monotonic() + 5, pool=1, progress=print)
    assert setup_error.startswith("ModuleNotFoundError") and "x" not in namespace and issues == []


@pytest.mark.parametrize("source", ["%%bash\necho hi", "!rm -rf /", "ls?"])
def test_every_ipython_form_parses(source: str) -> None:
    assert cell_names(source).error == ""


def test_a_needed_cell_that_never_ends_still_defines_its_answer_and_leaves_time_to_call_it() -> None:
    """A student who defines her answer and then runs an endless experiment in the same
    cell: the cell is stopped after half the time left, the answer is defined, and the
    rest of the exercise's time is left for the calls."""
    namespace = fresh_namespace()
    plan = [ReplayCell(0, "def square(x):\n    return x * x\nwhile True:\n    pass", True)]
    start = time.monotonic()
    issues, _ = run_cells(plan, namespace, skip=set(), deadline=start + 4.0, pool=1.0, progress=lambda _: None)
    spent = time.monotonic() - start
    assert [kind for _, kind, _ in issues] == ["timed out"]
    assert namespace["square"](3) == 9
    assert 2.8 < spent < 3.6  # 4 s left less a reserve of min(10, 4/4) = 1 s for the calls


def test_a_cell_that_timed_out_for_an_earlier_exercise_still_runs_where_it_is_needed() -> None:
    cell = "def square(x):\n    return x * x"
    needed, _, _, _ = _run([cell], needed=True, skip={0})
    assert "square" in needed  # needed here: run again, whatever happened before
    optional, issues, _, _ = _run([cell], needed=False, skip={0})
    assert "square" not in optional and [kind for _, kind, _ in issues] == ["skipped"]
