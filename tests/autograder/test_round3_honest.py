"""Round 3, honest students: correct work the grader must neither flag nor mark down.

Every student here hands in the instructor's answers to the tiny course, restyled the
way real students write (a ``%%time`` on a cell, ``!pip show course_lib``, a peek at
``/proc/cpuinfo``, a scratch variable called ``source``, in-place edits of a data set
course_lib made for them). Each must get full marks, status graded and no evidence.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import nbformat
import pytest

import tinycourse
from students import student_notebook

from autograder.results import Status
from autograder.sample import solution_answers
from autograder.scan import scan_cells

pytestmark = pytest.mark.slow
STEM = tinycourse.STEM

_SOFTSIGN = "def softsign(x):\n    return x / (1.0 + np.abs(x))\n"

# student -> (cells inserted before an answer cell by grade_id, answers by grade_id, cells after a cell by grade_id)
VARIANTS: dict[str, tuple[dict[str, str], dict[str, str], dict[str, str]]] = {
    # the answer cell timed with %%time: the kernel defines softsign, the replay never does
    "time_answer": ({}, {"softsign": "%%time\n" + _SOFTSIGN}, {}),
    # the value answer timed with the %time line magic
    "time_line_value": ({}, {"answer_lr": "%time answer_lr = float(np.round(0.1, 3))\n"}, {}),
    # a timed scratch cell loading the course's data: its body is read as a shell path
    "time_import": (
        {"square": "%%time\nfrom course_lib import data\nX, y = data.make_xor(64, seed=0)\nprint(X.shape)\n"},
        {},
        {},
    ),
    # a timed scratch cell whose variable is called `source`
    "time_source": ({}, {}, {"test_softsign": "%%time\nsource = np.linspace(-3, 3, 7)\nprint(softsign(source))\n"}),
    # checking which course_lib version is installed
    "pip_show": ({"square": "!pip show course_lib\n"}, {}, {}),
    # checking the CPU before a long experiment
    "cpuinfo": ({"square": "!cat /proc/cpuinfo | grep 'model name' | head -1\n"}, {}, {}),
    # rescaling a feature of a data set course_lib generated for her, in place
    "rescale": ({"square": "from course_lib.data import make_xor\nX = make_xor(64, seed=0)[0]\nX[:, 1] *= 2.0\n"}, {}, {}),
    # a helper module written from the notebook with %%writefile, then imported by the answer
    "writefile": (
        {"softsign": "%%writefile mymath.py\nimport numpy as np\n\ndef magnitude(x):\n    return np.abs(x)\n"},
        {"softsign": "from mymath import magnitude\n\ndef softsign(x):\n    return x / (1.0 + magnitude(x))\n"},
        {},
    ),
    # ... or loaded with %run
    "writefile_run": (
        {"softsign": "%%writefile mymath.py\nimport numpy as np\n\ndef magnitude(x):\n    return np.abs(x)\n"},
        {"softsign": "%run mymath.py\n\ndef softsign(x):\n    return x / (1.0 + magnitude(x))\n"},
        {},
    ),
    # a helper cell that first prints the library's value to compare with, then defines the helper
    "compare_then_helper": (
        {"softsign": "import tiny_refs\nprint(tiny_refs.reference_softsign(np.array([1.0, -2.0])))\n\ndef _den(x):\n    return 1.0 + np.abs(x)\n"},
        {"softsign": "def softsign(x):\n    return x / _den(x)\n"},
        {},
    ),
    # an early cell: a helper that only a later answer uses, then a 5 s experiment (fine in
    # the 10 s cell limit); timed out as optional for square, it must still run for softsign
    "helper_and_experiment": (
        {"square": "def _mag(x):\n    return np.abs(x)\n\nimport time\nw, t0 = np.zeros(3), time.time()\n"
                   "while time.time() - t0 < 5.0:  # a short training run\n    w = w - 0.01 * (w - 1.0)\nprint(w)\n"},
        {"softsign": "def softsign(x):\n    return x / (1.0 + _mag(x))\n"},
        {},
    ),
    # her helper cell re-imports course_lib's data module, and a helper's parameter is called data
    "param_named_data": (
        {"square": "from course_lib import data\n\ndef centre(data):\n    data[:, 0] -= data[:, 0].mean()\n    return data\n\n"
                   "X = centre(data.make_xor(64, seed=0)[0].copy())\n"},
        {},
        {},
    ),
    # a learning-rate sweep that appends to a list made in the cell before, then the answer
    # picks the best rate: the sweep defines no name the answer reads, so the replay cuts it
    # to the 3 s box of an optional cell and the answer sees half of the sweep
    "sweep_append": (
        {"answer_lr": "import time\nfor lr in [0.5, 0.3, 0.1]:\n    time.sleep(1.5)  # a short training run at this rate\n"
                      "    results.append((abs(lr - 0.1), lr))\n"},
        {"answer_lr": "answer_lr = min(results)[1]\n"},
        {"test_softsign": "results = []\n"},
    ),
}
# student -> files handed in beside the notebook (the answer imports or reads them)
BESIDE = {
    "helpers_py": (
        {"helpers.py": "import numpy as np\n\ndef magnitude(x):\n    return np.abs(x)\n", "notes.md": "# notes\n"},
        {"softsign": "from helpers import magnitude\n\ndef softsign(x):\n    return x / (1.0 + magnitude(x))\n"},
    ),
    "data_csv": (
        {"data.csv": "1,2\n3,4\n"},
        {"softsign": "ONE = float(np.loadtxt('data.csv', delimiter=',')[0, 0])\n\ndef softsign(x):\n    return x / (ONE + np.abs(x))\n"},
    ),
}


@pytest.fixture(scope="module")
def honest_run(tiny_course, tiny_solutions, tmp_path_factory):
    sources, releases = tiny_course
    answers = solution_answers(sources[STEM])
    root = tmp_path_factory.mktemp("round3_honest")
    for student, (inserted, replaced, after) in VARIANTS.items():
        folder = root / "class" / student
        folder.mkdir(parents=True)
        nb = student_notebook(releases[STEM], {**answers, **replaced}, before=inserted, after=after, drop_ids=True)
        nbformat.write(nb, str(folder / f"{STEM}.ipynb"))
    for student, (files, replaced) in BESIDE.items():
        folder = root / "class" / student
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        nbformat.write(student_notebook(releases[STEM], {**answers, **replaced}, drop_ids=True), str(folder / f"{STEM}.ipynb"))
    # a student who zipped her folder (on a Mac) and uploaded the zip
    folder = root / "class" / "zipped"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "homework.zip", "w") as archive:
        archive.writestr(f"homework/{STEM}.ipynb", nbformat.writes(student_notebook(releases[STEM], answers, drop_ids=True)))
        archive.writestr(f"__MACOSX/homework/._{STEM}.ipynb", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    run = tinycourse.grade(root / "class", root / "run", tiny_solutions)
    return run, root / "run"


def _result(run, student):
    return next(r for r in run.results if r.student == student and r.assignment == STEM)


def test_answer_cell_under_time_magic_earns_full_marks(honest_run) -> None:
    result = _result(honest_run[0], "time_answer")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), [e.note for e in result.exercises]


def test_value_answer_under_time_line_magic_earns_full_marks(honest_run) -> None:
    result = _result(honest_run[0], "time_line_value")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), [e.note for e in result.exercises]


def test_timed_cell_importing_course_lib_is_not_tampering(honest_run) -> None:
    result = _result(honest_run[0], "time_import")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), result.reason


def test_timed_cell_with_a_variable_named_source_is_not_tampering(honest_run) -> None:
    result = _result(honest_run[0], "time_source")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), result.reason


def test_pip_show_course_lib_is_not_tampering(honest_run) -> None:
    result = _result(honest_run[0], "pip_show")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), result.reason


def test_reading_proc_cpuinfo_is_not_tampering(honest_run) -> None:
    result = _result(honest_run[0], "cpuinfo")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), result.reason


def test_editing_data_course_lib_returned_is_not_patching_a_module(honest_run) -> None:
    result = _result(honest_run[0], "rescale")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), result.reason


def test_helper_parameter_named_like_a_course_lib_module_is_not_patching_it(honest_run) -> None:
    result = _result(honest_run[0], "param_named_data")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), result.reason


def test_helper_module_written_with_writefile_is_there_when_verified(honest_run) -> None:
    result = _result(honest_run[0], "writefile")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), [e.note for e in result.exercises]


def test_helper_module_loaded_with_run_magic_is_there_when_verified(honest_run) -> None:
    result = _result(honest_run[0], "writefile_run")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), [e.note for e in result.exercises]


def test_helper_cell_comparing_with_the_library_still_defines_its_helper(honest_run) -> None:
    # the comparison is not in the answer; the helper after it is what the answer needs
    result = _result(honest_run[0], "compare_then_helper")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), [e.note for e in result.exercises]


def test_helper_in_a_slow_early_cell_is_defined_for_the_answer_that_needs_it(honest_run) -> None:
    result = _result(honest_run[0], "helper_and_experiment")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), [e.note for e in result.exercises]


def test_sweep_appending_to_a_list_the_answer_reads_runs_in_full(honest_run) -> None:
    result = _result(honest_run[0], "sweep_append")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), [e.note for e in result.exercises]


@pytest.mark.parametrize("student", sorted(BESIDE))
def test_files_handed_in_beside_the_notebook_are_there_when_graded(honest_run, student: str) -> None:
    result = _result(honest_run[0], student)
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), [e.note for e in result.exercises]


def test_notebook_handed_in_inside_a_zip_is_graded(honest_run) -> None:
    result = _result(honest_run[0], "zipped")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), result.reason


# The same patterns (and a few siblings) at the scan alone: none is evidence.
HONEST_CELLS = {
    "capture-import": "%%capture\nimport course_lib\n",
    "time-source": "%%time\nsource = [1, 2]\n",
    "pip-show": "!pip show course_lib\n",
    "pip-grep": "!pip list | grep course_lib\n",
    "cpuinfo-shell": "!cat /proc/cpuinfo | head\n",
    "meminfo-open": "with open('/proc/meminfo') as f:\n    print(f.readline())\n",
    "dataset-subscript": "import course_lib.data as D\nX = D.make_xor(64, seed=0)[0]\nX[:, 0] -= X[:, 0].mean()\n",
    "dataset-loop": "import course_lib.data as D\nfor row in D.make_xor(8, seed=0)[0]:\n    row[0] = 0.0\n",
    "vocab-unk": "from course_lib.data import char_vocab\nstoi = char_vocab('hello')[0]\nstoi['<unk>'] = len(stoi)\n",
    "model-eval-flag": "from course_lib import torch_ref\nnet = torch_ref.MLP(2, 3)\nnet.training = False\n",
    "figures-source-dir": "import os\nos.makedirs('figures/source', exist_ok=True)\n",
    # the hand-written SGD step of a torch model course_lib built for her
    "manual-sgd-step": "from course_lib.torch_ref import models\nmodel = models.CharRNN(vocab_size=10, hidden=8)\n"
                       "for p in model.parameters():\n    p.data -= 0.1 * p.grad\n    p.grad = None\n",
    # a function parameter, a walrus or an `except ... as` name that happens to be a module's name
    "param-named-data": "from course_lib import data\n\ndef centre(data):\n    data[:, 0] -= data[:, 0].mean()\n    return data\n",
    "param-named-metrics": "from course_lib import metrics\n\ndef log(metrics, key, value):\n    metrics[key] = value\n",
    "method-param-named-data": "from course_lib import data\n\nclass Loader:\n    def load(self, data):\n        data.seen = True\n",
    "walrus-named-data": "from course_lib import data\nif (data := {'x': 1}):\n    data['y'] = 2\n",
    "except-as-random": "import random\ntry:\n    1 / 0\nexcept ZeroDivisionError as random:\n    random.args = ('no division',)\n",
}


@pytest.mark.parametrize("code", HONEST_CELLS.values(), ids=list(HONEST_CELLS))
def test_honest_cell_is_not_evidence(code: str) -> None:
    assert scan_cells([(3, code)]) == []


def test_value_answer_from_a_training_run_within_the_cell_limit_is_verified(tiny_course, tiny_solutions, tmp_path) -> None:
    # The defaults give a cell 60 s and an exercise's re-verification 30 s: a value answer
    # computed by a 40 s training run passes in the notebook and can never be re-verified.
    # Scaled down here: cells 20 s, re-verification 10 s, a 12 s run.
    from autograder.api import GradeOptions, Limits, grade_class

    sources, releases = tiny_course
    answers = solution_answers(sources[STEM])
    run_cell = (
        "import time\n"
        "def tune_lr(seconds):\n"
        "    t0, lr = time.time(), 1.0\n"
        "    while time.time() - t0 < seconds:  # stands for training at shrinking rates\n"
        "        lr = max(0.1, lr * 0.999)\n"
        "        time.sleep(0.001)\n"
        "    return round(lr, 3)\n\n"
        "answer_lr = tune_lr(12.0)\n"
    )
    folder = tmp_path / "class" / "trainer"
    folder.mkdir(parents=True)
    nbformat.write(student_notebook(releases[STEM], {**answers, "answer_lr": run_cell}, drop_ids=True), str(folder / f"{STEM}.ipynb"))
    limits = Limits(**{**tinycourse.FAST_LIMITS, "cell_timeout": 20.0, "notebook_budget": 60.0, "verify_timeout": 10.0})
    options = GradeOptions(workers=1, limits=limits, support=tinycourse.SUPPORT)
    run = grade_class(submissions=tmp_path / "class", run_dir=tmp_path / "run", solutions_dir=tiny_solutions, options=options)
    result = _result(run, "trainer")
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), [e.note for e in result.exercises]
