"""Round 3 (trust): a dishonest student reaches an exercise's reference in the
re-verification child through course_lib code the view does not withhold.

The view withholds only the names in ``Exercise.references``; the same computation is
still one call away through a sibling public function (``log_softmax``,
``leaky_relu_grad``, ``numerical_vjp``) or a private helper of the reference's module
(``conv._input_grad``, ``conv._im2col``, ``conv._windows``). Each test grades a
solution notebook whose answers only forward to that code, with the real grader, and
asserts the SAFE outcome: those exercises earn nothing. Today they earn full marks,
unflagged."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from students import student_notebook

from autograder.api import GradeOptions, grade_class
from autograder.results import Outcome

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _grade(tmp_path: Path, answers: dict[tuple[str, str], str]):
    """Grade one student whose notebooks are the instructor's with ``answers`` swapped in."""
    student = tmp_path / "class" / "mallory"
    student.mkdir(parents=True)
    for stem in sorted({s for s, _ in answers}):
        nb = nbformat.read(str(REPO / "solutions" / f"{stem}.ipynb"), as_version=4)
        nb = student_notebook(nb, {gid: source for (s, gid), source in answers.items() if s == stem})
        nbformat.write(nb, str(student / f"{stem}.ipynb"))
    run = grade_class(
        submissions=tmp_path / "class", run_dir=tmp_path / "run", solutions_dir=REPO / "solutions",
        options=GradeOptions(workers=2),
    )  # fmt: skip
    return {(r.assignment, e.name): e for r in run.results if r.student == "mallory" for e in r.exercises}


def _assert_no_points(outcomes, keys) -> None:
    leaked = [(k, e.score, e.max_score, str(e.outcome)) for k in keys if (e := outcomes[k]).score > 0 or e.outcome is Outcome.VERIFIED]
    assert not leaked, f"answers that only call unwithheld course_lib code earned points: {leaked}"


# softmax = exp(log_softmax); relu_grad = leaky_relu_grad(alpha=0); leaky_relu = z * leaky_relu_grad
_ACTIVATIONS = {
    ("04_activations", "relu_grad"): (
        "from course_lib.np_ref.activations import leaky_relu_grad\n"
        "def relu_grad(z):\n    return leaky_relu_grad(z, alpha=0.0)\n"
    ),
    ("04_activations", "leaky_relu"): (
        "from course_lib.np_ref.activations import leaky_relu_grad as _lg\n"
        "def leaky_relu(z, *, alpha=0.01):\n    return z * _lg(z, alpha=alpha)\n"
    ),
    ("04_activations", "softmax"): (
        "from course_lib.np_ref.activations import log_softmax\n"
        "def softmax(z):\n    return np.exp(log_softmax(z))\n"
    ),
}


def test_sibling_functions_of_withheld_activations_do_not_earn_points(tmp_path: Path) -> None:
    # Root cause: views.build_view withholds only Exercise.references; log_softmax and
    # leaky_relu_grad compute softmax / leaky_relu / relu_grad and stay in the view.
    _assert_no_points(_grade(tmp_path, _ACTIVATIONS), _ACTIVATIONS)


_HELPERS = {
    # numerical_gradient's reference is one line: numerical_vjp with dout = 1.
    ("03_backprop", "numerical_gradient"): (
        "from course_lib.gradcheck import numerical_vjp as _vjp\n"
        "def numerical_gradient(f, x, *, eps=1e-6):\n"
        "    g = _vjp(lambda v: np.asarray(f(v), dtype=np.float64), x, np.float64(1.0), eps=eps)\n"
        "    return g\n"
    ),
    # conv2d_backward is withheld, but its private helpers _input_grad and _im2col are not.
    ("06_cnn", "conv2d_grads"): (
        "from course_lib.np_ref import conv as _c\n"
        "def conv2d_grads(dout, x, w, *, stride=1, pad=0):\n"
        "    dtype = np.result_type(x, w, dout)\n"
        "    f, _, kh, kw = w.shape\n"
        "    ho, wo = dout.shape[2:]\n"
        "    dx = _c._input_grad(dout.astype(dtype), w.astype(dtype), x.shape, stride, pad)\n"
        "    cols = _c._im2col(x.astype(dtype), kh, kw, stride, pad, ho, wo)\n"
        "    d = np.ascontiguousarray(dout.transpose(1, 0, 2, 3)).reshape(f, -1).astype(dtype)\n"
        "    return dx, (d @ cols.T).reshape(w.shape), d.sum(axis=1)\n"
    ),
    # max_pool2d_forward is withheld, its window helper is not.
    ("06_cnn", "max_pool2d"): (
        "from course_lib.np_ref import conv as _c2\n"
        "def max_pool2d(x, *, kernel=2, stride=2):\n"
        "    return _c2._windows('max_pool2d', x, kernel, stride).max(axis=(4, 5))\n"
    ),
}


def test_private_helpers_and_siblings_of_withheld_references_do_not_earn_points(tmp_path: Path) -> None:
    # Root cause: views.withhold_source stubs only the named top-level definitions; the
    # module's private helpers (conv._input_grad, conv._im2col, conv._windows) and the
    # function a reference is a thin wrapper of (gradcheck.numerical_vjp) stay callable.
    _assert_no_points(_grade(tmp_path, _HELPERS), _HELPERS)


# ---------------------------------------------------------------- tiny course

_BREAK_SETUP_IN_CHILD = """\
import os, sys
if not get_ipython():  # the replay's ShellStub is falsy: only the re-verification child
    os.makedirs('/tmp/shadow', exist_ok=True)
    with open('/tmp/shadow/tiny_checks.py', 'w') as f:
        f.write('raise ImportError(1)\\n')
    sys.path.insert(0, '/tmp/shadow')
"""


def test_copycat_cannot_hide_behind_a_setup_failure_it_caused(tiny_course, tiny_solutions, tmp_path: Path) -> None:
    # A cell inserted *before* the setup cell runs in the replay before the setup cell;
    # it makes the setup's import fail only in the child (sys.path edits and a /tmp file
    # are not scan evidence). Every exercise becomes SETUP_FAILED -> "grader error",
    # status FAILED, retried on every run, and the copycat's reference calls are never
    # seen. Root cause: verify._verdict trusts a setup failure as the grader's own even
    # when student cells ran before it (replay.replay_plan keeps cells before setup).
    import tinycourse
    from students import student_notebook

    from autograder.results import Status

    _, releases = tiny_course
    answers = {
        "square": "from tiny_refs import reference_square\ndef square(x):\n    return reference_square(x)\n",
        "softsign": "from tiny_refs import reference_softsign\ndef softsign(x):\n    return reference_softsign(x)\n",
    }
    nb = student_notebook(releases[tinycourse.STEM], answers, before={"setup": _BREAK_SETUP_IN_CHILD}, drop_ids=True)
    (tmp_path / "class" / "mallory").mkdir(parents=True)
    nbformat.write(nb, str(tmp_path / "class" / "mallory" / f"{tinycourse.STEM}.ipynb"))
    run = tinycourse.grade(tmp_path / "class", tmp_path / "run", tiny_solutions)
    result = next(r for r in run.results if r.student == "mallory")
    assert result.status is Status.FLAGGED, (result.status, result.reason)
    assert "grader error" not in result.reason


_FORGE_SETUP_FRAME = '''\
import os, json, struct, stat
if not get_ipython():  # only in the re-verification child
    _h = json.dumps({"tree": {"t": "dict", "k": ["k", "msg"], "v": [{"t": "py", "v": "setup"}, {"t": "py", "v": "ImportError"}]}, "sizes": []}).encode()
    _d = struct.pack(">Q", len(_h)) + _h
    for _fd in range(3, 64):  # the report pipe is one of the child's few open fds
        try:
            if stat.S_ISFIFO(os.fstat(_fd).st_mode):
                os.write(_fd, struct.pack(">I", len(_d)) + _d)
        except OSError:
            pass
'''
_FORGE_SETUP_PROGRESS = """\
import os
if not get_ipython():  # only in the re-verification child
    os.write(1000, b"B 1\\n")  # "cell 1 (the setup cell) began" ...
    os._exit(0)  # ... and never ended
"""


@pytest.mark.parametrize("forge", [_FORGE_SETUP_FRAME, _FORGE_SETUP_PROGRESS], ids=["report-frame", "progress-line"])
def test_student_code_cannot_forge_a_setup_failure(tiny_course, tiny_solutions, tmp_path: Path, forge: str) -> None:
    # The answer cell itself (no cell before setup needed) writes, in the child only,
    # either a {"k": "setup"} wire frame on the report pipe or a "B <setup index>"
    # progress line on fd 1000 and exits. verify._verdict takes both as the grader's own
    # setup failure: SETUP_FAILED for every exercise, "grader error", FAILED and retried,
    # and the copycat's calls to tiny_refs are never judged. Root cause: the report fd
    # and EVIDENCE_FD are writable by student code (jail.verify._fork_child/_child), and
    # verify._verdict trusts "setup" frames and a stuck setup cell after student cells ran.
    import tinycourse
    from students import student_notebook

    from autograder.results import Status

    _, releases = tiny_course
    answers = {
        "square": forge + "from tiny_refs import reference_square\ndef square(x):\n    return reference_square(x)\n",
        "softsign": "from tiny_refs import reference_softsign\ndef softsign(x):\n    return reference_softsign(x)\n",
    }
    nb = student_notebook(releases[tinycourse.STEM], answers)
    (tmp_path / "class" / "mallory").mkdir(parents=True)
    nbformat.write(nb, str(tmp_path / "class" / "mallory" / f"{tinycourse.STEM}.ipynb"))
    run = tinycourse.grade(tmp_path / "class", tmp_path / "run", tiny_solutions)
    result = next(r for r in run.results if r.student == "mallory")
    assert "grader error" not in result.reason, (result.status, result.reason)
    assert result.status is Status.FLAGGED, (result.status, result.reason)


def _tiny_student(tiny_course, tmp_path: Path, answers: dict[str, str]):
    """Grade one tiny-course student (the instructor's answers, with ``answers`` swapped in)."""
    import tinycourse
    from students import student_notebook

    from autograder.sample import solution_answers

    sources, releases = tiny_course
    nb = student_notebook(releases[tinycourse.STEM], {**solution_answers(sources[tinycourse.STEM]), **answers})
    (tmp_path / "class" / "mallory").mkdir(parents=True)
    nbformat.write(nb, str(tmp_path / "class" / "mallory" / f"{tinycourse.STEM}.ipynb"))
    return tmp_path / "class"


def test_answer_cells_under_a_cell_magic_are_replayed(tiny_course, tiny_solutions, tmp_path: Path) -> None:
    # An honest student times her answer cell (%%time) or silences it (%%capture): the
    # kernel runs the body and the visible test passes, but the replay's ShellStub turns
    # run_cell_magic into a no-op, so the answer is never defined in the clean process:
    # COULD_NOT_RUN, 0 points for a correct answer. Root cause: jail.replay.run_cells /
    # jail.replay_shell.ShellStub (cell magics whose body is ordinary user code are dropped).
    import tinycourse

    answers = {
        "square": "%%time\ndef square(x):\n    return x * x\n",
        "softsign": "%%capture\ndef softsign(x):\n    return x / (1.0 + np.abs(x))\nprint('checked')\n",
    }
    run = tinycourse.grade(_tiny_student(tiny_course, tmp_path, answers), tmp_path / "run", tiny_solutions)
    result = next(r for r in run.results if r.student == "mallory")
    lost = [(e.name, str(e.outcome), e.note[:120]) for e in result.exercises if e.score < e.max_score]
    assert result.score == 9.0 and not lost, lost


def test_copycat_that_exits_only_in_the_clean_process_earns_nothing(tiny_course, tiny_solutions, tmp_path: Path) -> None:
    # The answer calls the reference in the kernel (visible test passes) and os._exit()s
    # when called in the re-verification child (get_ipython() is the falsy ShellStub).
    # Decided (maintainers): the exercise could not run in the clean process, so it earns
    # 0 — nothing is gained. It is not flagged: "could not run" is the student's own code
    # failing, and only a wrong *value* where the notebook passed counts as evidence
    # (README, Known limits). The tester asked for a flag; this test holds the 0.
    import tinycourse

    from autograder.results import Outcome, Status

    answers = {
        "square": (
            "from tiny_refs import reference_square\n"
            "def square(x):\n"
            "    if not get_ipython():\n"
            "        import os; os._exit(0)\n"
            "    return reference_square(x)\n"
        ),
    }
    run = tinycourse.grade(_tiny_student(tiny_course, tmp_path, answers), tmp_path / "run", tiny_solutions)
    result = next(r for r in run.results if r.student == "mallory")
    square = next(e for e in result.exercises if e.name == "square")
    assert (square.score, square.outcome) == (0.0, Outcome.COULD_NOT_RUN), (result.status, square)
    assert result.status is not Status.GRADED or result.score < result.max_score


_LEAK_SECRET_CASES = '''\
import sys
if not get_ipython():  # the re-verification child: the grader's frames are on our stack
    _f = sys._getframe()
    while _f is not None and "raw_cases" not in _f.f_locals:
        _f = _f.f_back
    from autograder import wire as _w
    _c = _w.loads(_f.f_locals["raw_cases"])
    raise RuntimeError("LEAK " + " ".join(f"{v:.3f}" for v in _c[-1][0][0].ravel()[:6]))
'''


def test_secret_seed_cases_never_reach_the_feedback(tiny_course, tiny_solutions, tmp_path: Path) -> None:
    # (The student sacrifices one unfinished exercise, whose note lists the cell issues.)
    # A cell inserted before an answer walks up to jail.verify._replay_and_call's frame,
    # whose local ``raw_cases`` holds every case of the exercise, the secret seed's too
    # (read before the replay), and raises with their values. The cell issue message goes
    # through verify._safe (which scrubs only seed and generator-state numbers) into the
    # exercise note and the student's feedback page. The secret seed is fixed per run
    # folder ("so re-runs agree"): a resubmission graded in that folder can hard-code the
    # hidden cases' answers (computed at home with course_lib). Root cause:
    # jail.verify._child/_replay_and_call (cases in memory during student code) and
    # verify._verdict (cell-issue messages from the child shown verbatim).
    import re

    import tinycourse
    import tiny_checks
    from students import student_notebook

    from autograder.feedback import write_feedback
    from autograder.sample import solution_answers

    sources, releases = tiny_course
    answers = solution_answers(sources[tinycourse.STEM])
    answers["square"] = "def square(x):\n    raise ValueError('not done yet')\n"  # unfinished (not the stub)
    nb = student_notebook(releases[tinycourse.STEM], answers, before={"square": _LEAK_SECRET_CASES}, drop_ids=True)
    (tmp_path / "class" / "mallory").mkdir(parents=True)
    nbformat.write(nb, str(tmp_path / "class" / "mallory" / f"{tinycourse.STEM}.ipynb"))
    run_dir = tmp_path / "run"
    run = tinycourse.grade(tmp_path / "class", run_dir, tiny_solutions)
    write_feedback(run_dir=run_dir)
    seed = int((run_dir / ".secret-seed").read_text())
    secret = [f"{v:.3f}" for v in tiny_checks.SQUARE.cases(seed)[-1].args[0].ravel()[:6]]
    result = next(r for r in run.results if r.student == "mallory")
    shown = " ".join([result.reason, *result.notes, *(e.note for e in result.exercises)])
    shown += (run_dir / "feedback" / "mallory.html").read_text()
    leaked = [v for v in secret if re.search(rf"(?<![\d.]){re.escape(v)}", shown)]
    assert not leaked, f"secret-seed case values shown to the student: {leaked}"


def test_a_deep_expression_in_an_answer_does_not_turn_a_copycat_into_a_grader_error(
    tiny_course, tiny_solutions, tmp_path: Path
) -> None:
    # 1500 chained additions compile and run in the kernel, but the trusted parent's
    # recursive AST walks (replay.cell_names' _Names visitor, likeness.normalized's
    # NodeTransformer) raise RecursionError, which the pipeline reports as "grader
    # error: RecursionError": FAILED, retried, and the copycat's reference call is
    # never re-verified. Root cause: replay.cell_names / replay_plan and
    # likeness.normalized do not bound AST depth or catch RecursionError.
    import tinycourse

    from autograder.results import Status

    chain = "+".join(["1"] * 1500)
    answers = {
        "square": (
            "from tiny_refs import reference_square\n"
            f"def square(x):\n    if x is None:\n        y = {chain}\n    return reference_square(x)\n"
        ),
    }
    run = tinycourse.grade(_tiny_student(tiny_course, tmp_path, answers), tmp_path / "run", tiny_solutions)
    result = next(r for r in run.results if r.student == "mallory")
    assert "grader error" not in result.reason, (result.status, result.reason)
    assert result.status is Status.FLAGGED, (result.status, result.reason)
