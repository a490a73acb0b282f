"""Replay, in memory: which cells an answer needs, and running cells the way the kernel would."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from autograder.jail.replay import OPTIONAL_CELL_SECONDS, fresh_namespace, run_cells
from autograder.replay import ReplayCell, cell_names, memoized_short_texts, replay_plan


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
    cell: the cell is stopped before the reserve for the calls, the answer is defined, and the
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


# ---------------------------------------------------------------- round 3


def _ran(sources: list[str], *, withheld: type[BaseException] | None = None, cwd: Path | None = None):
    """``sources`` replayed as needed cells (in ``cwd``): (namespace, issues)."""
    import os

    plan = [ReplayCell(i, s, True) for i, s in enumerate(sources)]
    namespace = fresh_namespace()
    before = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        issues, _ = run_cells(plan, namespace, skip=set(), deadline=time.monotonic() + 30, pool=3.0,
                              progress=lambda _: None, withheld=withheld)  # fmt: skip
    finally:
        os.chdir(before)
    return namespace, issues


@pytest.mark.parametrize(
    "source",
    [
        "%%time\ndef square(x):\n    return x * x\n",
        "%%capture out\ndef square(x):\n    return x * x\nprint('checked')\n",
        "%%timeit -n 1 -r 1\ndef square(x):\n    return x * x\n",
        "%%prun -s cumulative\ndef square(x):\n    return x * x\n",
        "%%debug\ndef square(x):\n    return x * x\n",
        "%time square = lambda x: x * x\n",
        "%timeit -n 2 -r 1 square = lambda x: x * x\n",
    ],
    ids=["time", "capture", "timeit", "prun", "debug", "time-line", "timeit-line"],
)
def test_a_magic_that_runs_python_defines_what_its_body_defines(source: str) -> None:
    names = cell_names(source)
    assert "square" in names.defines  # the plan sees it: the answer cell is needed
    namespace, issues = _ran([source])
    assert issues == [] and namespace["square"](3) == 9


def test_a_line_magic_on_an_expression_gives_its_value() -> None:
    namespace, issues = _ran(["def f(x):\n    return x + 1", "y = %time f(4)"])
    assert issues == [] and namespace["y"] == 5


def test_writefile_writes_into_the_cwd_and_run_executes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))  # the work folder is on the child's path, as in the kernel
    monkeypatch.delitem(sys.modules, "mymath", raising=False)
    cells = [
        "%%writefile mymath.py\ndef magnitude(x):\n    return abs(x)\n",
        "%run mymath.py\nm = magnitude(-2)",
        "from mymath import magnitude as mag2\nn = mag2(-3)",
    ]
    namespace, issues = _ran(cells, cwd=tmp_path)
    assert issues == []
    assert (tmp_path / "mymath.py").read_text() == "def magnitude(x):\n    return abs(x)\n"
    assert (namespace["m"], namespace["n"]) == (2, 3)
    assert cell_names(cells[0]).opaque and cell_names(cells[1]).opaque  # they may define anything


def test_other_magics_stay_inert(tmp_path: Path) -> None:
    target = tmp_path / "made-by-bash"
    namespace, issues = _ran([f"%%bash\ntouch {target}\n", f"%%script sh\ntouch {target}\n", "%env A=1\nok = 1"])
    assert issues == [] and namespace["ok"] == 1 and not target.exists()


def test_a_method_call_on_a_name_changes_it_and_the_cell_is_needed() -> None:
    cells = [
        (1, "import numpy as np"),
        (2, "results = []"),
        (3, "import time\nfor lr in [0.5, 0.1]:\n    time.sleep(0.01)\n    results.append((abs(lr - 0.1), lr))"),
        (4, "np.random.seed(0)\nplot_data = [1]"),  # a module's method: changes nothing the answer reads
        (5, "answer_lr = min(results)[1] + float(np.zeros(1)[0])"),
    ]
    assert cell_names(cells[2][1]).changes == {"results", "time"}  # time is a module: see the plan
    needed = {c.index for c in replay_plan(cells, target="answer_lr", setup_index=1) if c.needed}
    assert needed == {1, 2, 3, 5}


def test_a_withheld_call_leaves_its_statement_and_the_cell_goes_on() -> None:
    class Withheld(BaseException):
        pass

    def reference(x):
        raise Withheld("reference is withheld")

    source = "print(reference(1.0))\n\ndef _den(x):\n    return 1.0 + abs(x)\n"
    plan = [ReplayCell(0, "REF = 1", True, setup=True), ReplayCell(1, source, True)]
    namespace = fresh_namespace()
    namespace["reference"] = reference
    issues, setup_error = run_cells(plan, namespace, skip=set(), deadline=time.monotonic() + 10, pool=3.0,
                                    progress=lambda _: None, withheld=Withheld)  # fmt: skip
    assert setup_error == "" and namespace["_den"](-1.0) == 2.0
    assert [(i, kind) for i, kind, _ in issues] == [(1, "raised")] and "withheld" in issues[0][2]
    with pytest.raises(Withheld):  # after the replay (the answer's calls) it raises again
        namespace["get_ipython"]().run_line_magic("time", "reference(2.0)")


def test_an_ordinary_error_still_stops_the_rest_of_its_cell() -> None:
    namespace, issues = _ran(["x = 1\nraise ValueError('stop')\ny = 2"])
    assert namespace["x"] == 1 and "y" not in namespace
    assert issues == [(0, "raised", "ValueError: stop")]


def test_the_setup_cell_is_replayed_before_cells_inserted_above_it() -> None:
    cells = [(1, "import sys\nsys.path.insert(0, '/tmp/shadow')"), (2, "import numpy as np"), (3, "def f(x):\n    return np.abs(x)")]
    plan = replay_plan(cells, target="f", setup_index=2)
    assert [c.index for c in plan] == [2, 1, 3] and plan[0].setup


def test_a_needed_cell_keeps_a_reserve_for_the_calls() -> None:
    from autograder.jail.replay import needed_cell_box

    assert needed_cell_box(19.0) == pytest.approx(19.0 - 19.0 / 4)  # reserve = left/4 = 4.75 s
    assert needed_cell_box(60.0) == pytest.approx(50.0)  # reserve capped at 10 s


def test_a_cell_too_deep_for_the_ast_walk_is_opaque_and_needed() -> None:
    from autograder.likeness import normalized

    chain = "+".join(["1"] * 1500)
    answer = f"def square(x):\n    if x is None:\n        y = {chain}\n    return x * x\n"
    assert cell_names(answer).opaque
    assert [c.needed for c in replay_plan([(0, "import numpy as np"), (1, answer)], target="square", setup_index=0)] == [True, True]
    assert normalized(answer, "square") is None  # no likeness, no error
    namespace, issues = _ran([answer])
    assert issues == [] and namespace["square"](3) == 9


def test_memoized_short_texts_remembers_short_texts_and_never_keeps_long_ones() -> None:
    calls: list[int] = []

    @memoized_short_texts
    def length(text: str) -> int:
        calls.append(len(text))
        return len(text)

    short, long = "x" * 10, "y" * (64 * 1024 + 1)
    assert [length(short), length(short), length(long), length(long)] == [10, 10, len(long), len(long)]
    assert calls == [10, len(long), len(long)]  # the short text computed once, the long one each time
