"""Re-verification end to end, through the real sandbox: the student's notebook replayed in
a fresh process per exercise, with the exercise's references withheld."""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import tiny_checks
import tinycourse
from nbformat.v4 import new_code_cell

from autograder import verify
from autograder.execute import prepare_scratch
from autograder.limits import Limits
from autograder.results import SeedResult, Verdict, VerifyProblem
from autograder.sandbox import detect_protections
from autograder.verify import reverify
from course_lib.checks import exercises
from course_lib.checks._core import Case, Exercise

pytestmark = pytest.mark.slow
SECRET = 987654321
ROOT = Path(__file__).resolve().parents[2]
TINY = [tiny_checks.SQUARE, tiny_checks.SOFTSIGN, tiny_checks.ANSWER_LR]
_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


def _gid(cell: nbformat.NotebookNode) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def _student(nb: nbformat.NotebookNode, answers: dict[str, str], inserted: dict[str, list[str]]) -> nbformat.NotebookNode:
    """``nb`` (demo cells dropped, as canonicalize does) with the answers replaced and
    cells (no nbgrader metadata: the student's own) inserted after the given grade_id."""
    cells = []
    for cell in nb.cells:
        if "demo" in (cell.metadata.get("tags") or []):
            continue
        if cell.cell_type == "code":
            cell.source = _MARKERS.sub("", answers.get(_gid(cell), cell.source))
        cells.append(cell)
        cells.extend(new_code_cell(source) for source in inserted.get(_gid(cell), []))
    nb.cells = cells
    return nb


def _seeds(nb: nbformat.NotebookNode, names: list[str]) -> dict[str, tuple[int, ...]]:
    out = {}
    for name in names:
        tests = [c for c in nb.cells if _gid(c) in (f"test_{name}", f"test_{name}_hidden")]
        out[name] = tuple(sorted({SECRET, *(s for c in tests for s in verify.test_seeds(c.source))}))
    return out


def _reverify(tmp_path: Path, nb, chosen, *, support=tinycourse.SUPPORT, limits=None) -> tuple[dict[str, Verdict], float]:
    protections = detect_protections()
    scratch = tmp_path / "scratch"
    prepare_scratch(scratch, support=list(support), protections=protections)
    start = time.monotonic()
    verdicts = reverify(
        nb, chosen, seeds=_seeds(nb, [e.name for e in chosen]), scratch=scratch, hide=[],
        limits=limits or Limits(**tinycourse.FAST_LIMITS), protections=protections, views=tmp_path / "views",
    )  # fmt: skip
    return verdicts, time.monotonic() - start


def _tiny(answers: dict[str, str] | None = None, inserted: dict[str, list[str]] | None = None):
    return _student(tinycourse.solution_notebook(), answers or {}, inserted or {})


def _rnn(answers: dict[str, str], inserted: dict[str, list[str]] | None = None):
    return _student(nbformat.read(str(ROOT / "solutions" / "07_rnn.ipynb"), as_version=4), answers, inserted or {})


def _all(verdict: Verdict, result: SeedResult) -> bool:
    return bool(verdict.seeds) and all(r is result for r in verdict.seeds.values())


# ---------------------------------------------------------------- the honest student


RNN_ANSWERS = {
    "rnn_cell": "def rnn_cell(x, h_prev, wx, wh, b):\n    return np.tanh(x @ wx + h_prev @ wh + b)\n",
    # Her rnn_unroll calls her own rnn_cell and a helper from a cell she inserted.
    "rnn_unroll": (
        "def rnn_unroll(x, h0, wx, wh, b):\n    states, h = [], h0\n    for t in range(x.shape[1]):\n"
        "        h = rnn_cell(x[:, t], h, wx, wh, b)\n        states.append(h)\n    return stack_time(states)\n"
    ),
    "clip_grad_norm": (
        "def clip_grad_norm(grads, *, max_norm):\n    total = float(np.sqrt(sum((g * g).sum() for g in grads)))\n"
        "    factor = min(1.0, max_norm / (total + 1e-6))\n    return [g * factor for g in grads], total\n"
    ),
    "lstm_cell": (
        "def lstm_cell(x, h_prev, c_prev, wx, wh, b):\n    z = x @ wx + h_prev @ wh + b\n    H = h_prev.shape[1]\n"
        "    sig = lambda v: 1 / (1 + np.exp(-v))\n    i, f, g, o = sig(z[:, :H]), sig(z[:, H:2*H]), np.tanh(z[:, 2*H:3*H]), sig(z[:, 3*H:])\n"
        "    c = f * c_prev + i * g\n    return o * np.tanh(c), c\n"
    ),
}  # rnn_bptt: the instructor's solution, which calls recurrent.rnn_forward (rnn_unroll's reference)


def test_honest_student_with_her_own_helpers_passes_every_seed(tmp_path: Path) -> None:
    nb = _rnn(RNN_ANSWERS, {"rnn_cell": ["def stack_time(states):\n    return np.stack(states, axis=1)\n"]})
    verdicts, seconds = _reverify(tmp_path, nb, exercises("07_rnn"), support=())
    print(f"07_rnn, 5 exercises: {seconds:.1f} s")
    for name, verdict in verdicts.items():
        assert verdict.problem is None, (name, verdict)
        assert _all(verdict, SeedResult.PASSED), (name, verdict)
        assert verdict.cell_issues == () and verdict.reached == () and verdict.copied_from == ""
    assert SECRET in verdicts["rnn_bptt"].seeds  # verified, although it calls recurrent.rnn_forward


def _probe_lines() -> list[str]:
    """Lines only rnn_forward's body has, as the view would print them (see test_views)."""
    import ast
    import inspect

    from course_lib.np_ref import recurrent

    module_text = ast.unparse(ast.parse(inspect.getsource(recurrent)))
    tree = ast.parse(inspect.getsource(recurrent.rnn_forward)).body[0]
    lines = {ast.unparse(n).splitlines()[0].strip() for n in ast.walk(tree) if isinstance(n, ast.Assign) and n is not tree}
    return sorted(line for line in lines if len(line) > 15 and module_text.count(line) == 1)


def test_the_three_escapes_find_no_reference_in_the_child(tmp_path: Path) -> None:
    lines = _probe_lines()
    assert lines
    probe = (
        "import gc, importlib, types\nfrom course_lib.np_ref import recurrent as R\n"
        f"SOURCE = open(R.__file__).read()\nFILE_HAS_BODY = any(line in SOURCE for line in {lines!r})\n"
        "ORIGINALS = [f for f in gc.get_objects() if isinstance(f, types.FunctionType)\n"
        "             and f.__name__ == 'rnn_forward' and 'withheld' not in f.__code__.co_names]\n"
        "RELOADED = importlib.reload(R).rnn_forward\n"
        "COMPILED = {}\nexec(compile(SOURCE, 'elsewhere.py', 'exec'), COMPILED)\n"
        "STUBS_ONLY = all('withheld' in f.__code__.co_names for f in (RELOADED, COMPILED['rnn_forward']))\n"
    )
    honest = RNN_ANSWERS["rnn_unroll"].replace("states, h = [], h0", "assert not FILE_HAS_BODY and not ORIGINALS and STUBS_ONLY\n    states, h = [], h0")
    nb = _rnn({**RNN_ANSWERS, "rnn_unroll": honest}, {"rnn_cell": ["def stack_time(states):\n    return np.stack(states, axis=1)\n", probe]})
    unroll = next(e for e in exercises("07_rnn") if e.name == "rnn_unroll")
    verdicts, _ = _reverify(tmp_path, nb, [unroll], support=())
    # PASSED only if the file shows no body, gc finds no original, reload and compile give stubs.
    assert _all(verdicts["rnn_unroll"], SeedResult.PASSED), verdicts["rnn_unroll"]


@pytest.mark.parametrize(
    "attack",
    [
        "import tiny_refs\ndef square(x):\n    return tiny_refs.reference_square(x)\n",
        "import importlib, tiny_refs\ndef square(x):\n    return importlib.reload(tiny_refs).reference_square(x)\n",
        "import tiny_refs\nNS = {}\nexec(compile(open(tiny_refs.__file__).read(), 'mine.py', 'exec'), NS)\n"
        "def square(x):\n    return NS['reference_square'](x)\n",
        "import gc, sys, types\nsys.setprofile(None)\n"
        "def square(x):\n    for f in gc.get_objects():\n"
        "        if isinstance(f, types.FunctionType) and f.__name__ == 'reference_square':\n"
        "            try:\n                return f(x)\n            except BaseException:\n                continue\n"
        "    return x * 0\n",
    ],
    ids=["direct", "reload", "compile-elsewhere", "setprofile-gc"],
)
def test_calling_the_reference_is_reached_and_never_passes(tmp_path: Path, attack: str) -> None:
    verdicts, _ = _reverify(tmp_path, _tiny({"square": attack}), [tiny_checks.SQUARE])
    verdict = verdicts["square"]
    # The reference, or the stub of it that tiny_checks (a checks module) re-exports.
    assert verdict.reached and all(name.endswith(".reference_square") for name in verdict.reached)
    assert SeedResult.PASSED not in verdict.seeds.values()


# ---------------------------------------------------------------- what nbgrader would have run


def test_cells_after_the_test_cell_do_not_count(tmp_path: Path) -> None:
    nb = _tiny(
        {"softsign": "def softsign(x):\n    return x / (1.0 + magnitude(x))\n"},
        {
            "test_softsign_hidden": ["def magnitude(x):\n    return np.abs(x)\n"],  # too late, as in nbgrader
            "test_square_hidden": ["def square(x):\n    return 0 * x\n"],  # a later redefinition
        },
    )
    verdicts, _ = _reverify(tmp_path, nb, TINY)
    assert _all(verdicts["square"], SeedResult.PASSED)
    softsign = verdicts["softsign"]
    assert _all(softsign, SeedResult.RAISED) and "NameError" in softsign.message and "magnitude" in softsign.message


def test_raising_cells_are_issues_and_magics_are_harmless(tmp_path: Path) -> None:
    nb = _tiny(
        {"square": "def square(x):\n    return x * x\nraise RuntimeError('after the def')\n"},
        {"setup": ["%matplotlib inline", "!ls /", "np.random.seed(0)", "raise ValueError('oops')"]},
    )
    verdicts, _ = _reverify(tmp_path, nb, TINY)
    assert all(_all(v, SeedResult.PASSED) for v in verdicts.values()), verdicts
    square = verdicts["square"]
    answer_cell = next(i for i, c in enumerate(nb.cells) if _gid(c) == "square")
    assert [(i.index, i.kind) for i in square.cell_issues] == [(answer_cell - 1, "raised"), (answer_cell, "raised")]
    assert "oops" in square.cell_issues[0].message and "after the def" in square.cell_issues[1].message


def test_not_defined_says_what_to_fix(tmp_path: Path) -> None:
    nb = _tiny({"square": "def squared(x):\n    return x * x\n"})
    verdict = _reverify(tmp_path, nb, [tiny_checks.SQUARE])[0]["square"]
    assert verdict.problem is VerifyProblem.NOT_DEFINED
    assert "`square` is not defined" in verdict.problem_detail and "answer cell" in verdict.problem_detail


@pytest.mark.parametrize(
    "experiment",
    ["import time\ntime.sleep(60)\n", "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n"],
    ids=["sleeps-60s", "ignores-its-time-box"],
)
def test_a_long_experiment_costs_at_most_its_time_box(tmp_path: Path, experiment: str) -> None:
    limits = Limits(**tinycourse.FAST_LIMITS)
    baseline = _reverify(tmp_path / "a", _tiny(), TINY, limits=limits)[1]
    verdicts, seconds = _reverify(tmp_path / "b", _tiny(inserted={"setup": [experiment]}), TINY, limits=limits)
    print(f"{len(TINY)} exercises: {baseline:.1f} s without the experiment, {seconds:.1f} s with it")
    assert all(_all(v, SeedResult.PASSED) for v in verdicts.values()), verdicts
    kinds = [[i.kind for i in verdicts[e.name].cell_issues] for e in TINY]
    # Either way the cell ran out of its time (stopped by its own box, or killed by the
    # watchdog when it ignored the box) for the first exercise, and is left out after.
    assert kinds == [["timed out"], ["skipped"], ["skipped"]]
    assert seconds - baseline < 3.0 + 1.5 + 6.0  # box + watchdog grace + one restart, on a loaded machine
    assert seconds < limits.verify_timeout * len(TINY) + 30


def test_checks_are_no_ops_and_registry_helpers_are_withheld(tmp_path: Path) -> None:
    nb = _tiny(inserted={"square": ["check_square(lambda x: 0 * x)\nCHECKED = True", "from tiny_checks import SQUARE\nSQUARE.cases(0)"]})
    verdict = _reverify(tmp_path, nb, [tiny_checks.SQUARE])[0]["square"]
    assert _all(verdict, SeedResult.PASSED)
    assert [i.kind for i in verdict.cell_issues] == ["raised"]
    assert "withheld" in verdict.cell_issues[0].message and verdict.reached == ()


# ---------------------------------------------------------------- review, limits, secrets


def test_a_copied_reference_is_named_for_review(tmp_path: Path) -> None:
    copied = 'def square(values):\n    """My own square."""\n    return values * values\n'
    verdicts, _ = _reverify(tmp_path, _tiny({"square": copied, "softsign": "def softsign(x):\n    return x / (np.abs(x) + 1.0)\n"}), TINY[:2])
    assert verdicts["square"].copied_from == "tiny_refs.reference_square"
    assert verdicts["softsign"].copied_from == ""  # the same maths, written differently
    assert _all(verdicts["square"], SeedResult.PASSED)  # a lead for the instructor, not a failure


def test_checks_functions_passed_as_case_arguments_are_kept_in_the_view(tmp_path: Path) -> None:
    # numerical_gradient's cases pass f_quadratic, f_softmax_loss, ... of the checks module:
    # inputs, not references. The view keeps them (and what they use); the rest stays withheld.
    exercise = next(e for e in exercises("03_backprop") if e.name == "numerical_gradient")
    nb = _student(nbformat.read(str(ROOT / "solutions" / "03_backprop.ipynb"), as_version=4), {}, {})
    verdict = _reverify(tmp_path, nb, [exercise], support=())[0]["numerical_gradient"]
    assert verdict.problem is None and _all(verdict, SeedResult.PASSED), verdict
    stub = next((tmp_path / "views").glob("*numerical_gradient")) / "course_lib" / "checks" / "nb03_backprop.py"
    text = stub.read_text()
    assert "def f_quadratic(v: np.ndarray)" in text and "_QUADRATIC_A = " in text
    assert "_chain_rule_reference" not in text  # a private check-side reference is not in the stub at all


def _relu_cases(seed: int) -> list[Case]:
    from course_lib.np_ref.activations import relu

    return [Case((relu, np.linspace(-1.0, 1.0, 5)))]


def test_a_reference_passed_as_a_case_argument_is_unverifiable(tmp_path: Path) -> None:
    apply = Exercise(
        notebook="00_tiny", name="apply", kind="function", judge=lambda case, out: None, cases=_relu_cases,
        references=("course_lib.np_ref.activations.relu",),
    )  # fmt: skip
    nb = _tiny(inserted={"setup": ["def apply(f, x):\n    return f(x)\n"]})
    verdict = _reverify(tmp_path, nb, [apply])[0]["apply"]
    assert verdict.problem is VerifyProblem.UNVERIFIABLE and verdict.reached == ()  # not tampering
    assert "course_lib.np_ref.activations.relu" in verdict.problem_detail


def _noisy_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [Case((np.arange(3.0) + seed % 7,), {"rng": np.random.default_rng(seed)}, label=f"x {rng.normal():.6f}")]


def _careless_judge(case: Case | None, output: object) -> None:
    assert case is not None
    rng = case.kwargs["rng"]  # a judge that prints everything it has: the generator and its state
    if not np.allclose(output, case.args[0] * 2):
        raise AssertionError(f"noisy [{case.label}] with {rng!r} {rng.bit_generator.state}: got {output}")


NOISY = Exercise(notebook="00_tiny", name="noisy", kind="function", judge=_careless_judge, cases=_noisy_cases)


@pytest.mark.parametrize(
    "answer",
    [
        "def noisy(x, *, rng):\n    raise ValueError(f'{rng!r} {rng.bit_generator!r} {rng.bit_generator.state}')\n",
        "def noisy(x, *, rng):\n    return x * 3\n",
        # Right on the notebook's seeds, wrong (with everything printed) on any other.
        "PUBLIC = {np.random.default_rng(s).bit_generator.state['state']['state'] for s in (0, 1)}\n"
        "def noisy(x, *, rng):\n    if rng.bit_generator.state['state']['state'] in PUBLIC:\n        return x * 2\n"
        "    raise ValueError(str(rng.bit_generator.state) + repr(rng))\n",
    ],
    ids=["raises-with-state", "wrong-value", "fails-only-the-secret-seed"],
)
def test_no_message_carries_the_secret_or_a_generator(tmp_path: Path, answer: str) -> None:
    nb = _tiny()
    nb.cells += [
        new_code_cell(answer, metadata={"nbgrader": {"grade_id": "noisy", "solution": True, "grade": False, "locked": False}}),
        new_code_cell("check_noisy(noisy)", metadata={"nbgrader": {"grade_id": "test_noisy", "grade": True, "locked": True, "points": 1}}),
        new_code_cell("check_noisy(noisy, seed=1)", metadata={"nbgrader": {"grade_id": "test_noisy_hidden", "grade": True, "locked": True, "points": 1}}),
    ]  # fmt: skip
    verdict = _reverify(tmp_path, nb, [NOISY])[0]["noisy"]
    assert SeedResult.PASSED not in (verdict.seeds[SECRET],)
    secret_state = np.random.default_rng(SECRET).bit_generator.state["state"]
    texts = [verdict.message, verdict.problem_detail, *(i.message for i in verdict.cell_issues)]
    assert verdict.message  # something is said ...
    for text in texts:  # ... but nothing derived from the secret seed, and no generator
        assert str(SECRET) not in text and str(secret_state["state"]) not in text and str(secret_state["inc"]) not in text
        assert "Generator(" not in text and "PCG64" not in text and "'state'" not in text
    if "PUBLIC" in answer:
        assert verdict.seeds[0] is SeedResult.PASSED and verdict.seeds[1] is SeedResult.PASSED
        assert "secret seed" in verdict.message


def test_nothing_one_exercise_writes_reaches_the_next(tmp_path: Path) -> None:
    # Each child gets fresh /tmp, /var/tmp, /dev/shm and work folder, cannot read the
    # grader's plan or cases, and sees no other exercise's view.
    probe = (
        "import os\nMARKS = ('/tmp/mark', '/var/tmp/mark', '/dev/shm/mark', 'mark')\n"
        "SEEN = [p for p in MARKS if os.path.exists(p)]\n"
        "for p in MARKS:\n    open(p, 'w').write('left by an earlier exercise')\n"
        "LEAKS = [p for p in ('/tmp/.views', '/tmp/job/verify/plan.json', '/tmp/job/verify/cases/0.bin',\n"
        f"                    '/proc/1/root{ROOT}/course_lib/np_ref/recurrent.py', '/proc/1/root/tmp/.views')\n"
        "         if os.access(p, os.R_OK)]\n"
    )
    careful = "def softsign(x):\n    assert not SEEN and not LEAKS, (SEEN, LEAKS)\n    return x / (1.0 + np.abs(x))\n"
    verdicts, _ = _reverify(tmp_path, _tiny({"softsign": careful}, {"setup": [probe]}), TINY[:2])
    assert _all(verdicts["softsign"], SeedResult.PASSED), verdicts["softsign"]
    assert verdicts["softsign"].cell_issues == ()  # the probe could write everywhere it tried


def test_student_code_ending_the_process_is_her_problem_not_the_graders(tmp_path: Path) -> None:
    # A scratch cell the answer does not need ends the process: the exercise is checked again
    # without it (as the notebook's own answer would be judged); never "no report" (retried).
    nb = _tiny(inserted={"setup": ["import os\nos._exit(0)"]})
    verdict = _reverify(tmp_path, nb, [tiny_checks.SQUARE])[0]["square"]
    assert verdict.problem is None and _all(verdict, SeedResult.PASSED)
    assert [(i.kind, "ended the process" in i.message) for i in verdict.cell_issues] == [("raised", True)]
    # The answer's own cell ending the process: the answer cannot be checked (could not run).
    nb = _tiny({"square": "def square(x):\n    return x * x\nimport os\nos._exit(0)\n"})
    verdict = _reverify(tmp_path / "own", nb, [tiny_checks.SQUARE])[0]["square"]
    assert verdict.problem is None and _all(verdict, SeedResult.NOT_RUN)
    assert [(i.kind, "ended" in i.message) for i in verdict.cell_issues] == [("raised", True)]


def test_the_child_holds_no_pipe_but_its_own_two(tmp_path: Path) -> None:
    # Not the template's line to the parent: there, student code could forge verdicts.
    probe = (
        "import os, stat\nPIPES = [fd for fd in range(3, 4096)\n"
        "         if (lambda fd: (lambda st: st is not None and stat.S_ISFIFO(st.st_mode))"
        "(os.fstat(fd) if os.path.exists(f'/proc/self/fd/{fd}') else None))(fd)]\n"
    )
    careful = "def square(x):\n    assert len(PIPES) == 2, PIPES\n    return x * x\n"
    verdict = _reverify(tmp_path, _tiny({"square": careful}, {"setup": [probe]}), [tiny_checks.SQUARE])[0]["square"]
    assert _all(verdict, SeedResult.PASSED), verdict


def test_assert_close_never_renders_a_generator_or_its_state() -> None:
    from course_lib.testing import assert_close, scrub

    rng = np.random.default_rng(SECRET)
    state = rng.bit_generator.state
    text = scrub(f"{rng!r} {rng.bit_generator!r} {state} {np.random.MT19937(SECRET).state}")
    assert text.count("<random generator>") == 4 and str(state["state"]["state"]) not in text
    with pytest.raises(AssertionError) as err:
        assert_close(rng, np.zeros(2), name=f"dropout [rng={rng!r}, {state}]")
    message = str(err.value)
    assert message.startswith("dropout [rng=<random generator>, <random generator>]: wrong shape.")
    assert "Generator(" not in message and str(state["state"]["state"]) not in message
    with pytest.raises(AssertionError, match="got a random generator"):
        assert_close(rng, np.float64(1.0))


# ---------------------------------------------------------------- the parent's reading of a child's report (in memory)


def _report(*frames: dict) -> str:
    import base64
    import struct

    from autograder import wire

    data = b"".join(struct.pack(">I", len(d)) + d for d in (wire.dumps(f) for f in frames))
    return base64.b64encode(data).decode()


def _square_item(answer: str = "def square(x):\n    return x * x\n") -> "verify._Item":
    from autograder.replay import ReplayCell

    cells = [ReplayCell(1, "import numpy as np", True, setup=True), ReplayCell(2, answer, True)]
    item = verify._Item(tiny_checks.SQUARE, (0,), frozenset({0}), cells)
    item.cases = [(0, case) for case in tiny_checks.SQUARE.cases(0)]
    return item


def test_a_setup_frame_written_after_student_code_began_is_not_a_setup_failure() -> None:
    frame = {"status": "ok", "cell": None, "lines": ["B 1", "E 1", "B 2", "E 2"], "report": _report({"k": "setup", "msg": "ImportError"})}
    verdict = verify._verdict(_square_item(), frame)
    assert verdict.problem is not VerifyProblem.SETUP_FAILED and verdict.problem is not VerifyProblem.NO_REPORT, verdict
    assert _all(verdict, SeedResult.NOT_RUN) and "stopped at cell 2" in verdict.message


def test_a_setup_frame_before_any_student_cell_is_the_graders() -> None:
    frame = {"status": "ok", "cell": None, "lines": ["B 1"], "report": _report({"k": "setup", "msg": "ImportError: x"})}
    assert verify._verdict(_square_item(), frame).problem is VerifyProblem.SETUP_FAILED


def test_a_forged_setup_progress_line_blames_the_student_cell() -> None:
    # "B 1" (the setup cell) written by cell 2, which then ended the process.
    frame = {"status": "ok", "cell": 1, "lines": ["B 1", "E 1", "B 2", "B 1"], "report": ""}
    verdict = verify._verdict(_square_item(), frame)
    assert verdict.problem is None and _all(verdict, SeedResult.NOT_RUN), verdict
    assert [(i.index, i.kind) for i in verdict.cell_issues] == [(2, "raised")]
    stuck_in_setup = {"status": "timed out", "cell": 1, "lines": ["B 1"], "report": ""}
    assert verify._verdict(_square_item(), stuck_in_setup).problem is VerifyProblem.SETUP_FAILED


def test_a_grader_line_written_after_student_code_began_is_not_believed() -> None:
    frame = {"status": "ok", "cell": None, "lines": ["B 1", "E 1", "B 2", "X OSError: forged"], "report": ""}
    verdict = verify._verdict(_square_item(), frame)
    assert verdict.problem is None and "forged" not in verdict.problem_detail


def test_not_defined_because_a_needed_cell_timed_out_says_so() -> None:
    frames = _report({"k": "issue", "i": 2, "kind": "timed out", "msg": "stopped after 7.5 s"}, {"k": "defined", "ok": False})
    frame = {"status": "ok", "cell": None, "lines": ["B 1", "E 1", "B 2", "T 2", "E 2"], "report": frames}
    verdict = verify._verdict(_square_item(), frame)
    assert verdict.problem is VerifyProblem.NOT_DEFINED
    assert "timed out" in verdict.problem_detail and "cell 2" in verdict.problem_detail


def test_the_copied_check_survives_a_deep_expression() -> None:
    chain = "+".join(["1"] * 1500)
    item = _square_item(f"from tiny_refs import reference_square\ndef square(x):\n    if x is None:\n        y = {chain}\n    return reference_square(x)\n")
    assert verify._copied_from(item) == ""  # no likeness, and no RecursionError


def test_each_exercise_gets_at_least_the_cell_timeout() -> None:
    from autograder.jail.request import exercise_seconds

    assert exercise_seconds(Limits(cell_timeout=20.0, verify_timeout=10.0)) == 20.0
    assert exercise_seconds(Limits(cell_timeout=5.0, verify_timeout=10.0)) == 10.0


def test_the_template_blames_the_cell_that_ran_not_a_repeated_begin_line() -> None:
    import os

    from autograder.jail.verify import _watch

    report_r, report_w = os.pipe()
    progress_r, progress_w = os.pipe()
    os.write(progress_w, b"B 1\nE 1\nB 2\nB 1\n")  # cell 2 forges "setup began", then exits
    os.close(report_w)
    os.close(progress_w)
    try:
        run = _watch(0, report_r, progress_r, time.monotonic() + 5.0, optional={2})
    finally:
        os.close(report_r)
        os.close(progress_r)
    assert (run.status, run.cell) == ("ok", 2)
