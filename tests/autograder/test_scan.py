"""Static tampering scan: every honest pattern stays clean, every attack is found with its line.

The honest list is what course notebooks really contain (and the instructor's own
answers to every exercise); the attack list includes obfuscated forms. Expected kinds
are written by hand from what each snippet does.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder import sample
from autograder.results import Evidence
from autograder.sample import solution_answers
from autograder.scan import Kind, scan_cells, scan_files

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((REPO / "solutions").glob("*.ipynb"))

HONEST = {
    "seed": "import numpy as np\nnp.random.seed(0)",
    "printoptions": "import numpy as np\nnp.set_printoptions(precision=3)",
    "rcparams": 'import matplotlib.pyplot as plt\nplt.rcParams["figure.figsize"] = (6, 4)',
    "warnings": 'import warnings\nwarnings.filterwarnings("ignore")',
    "torch-seed": "import torch\ntorch.manual_seed(0)",
    "matplotlib-magic": "%matplotlib inline\nimport matplotlib.pyplot as plt",
    "pip-list": "!pip list",
    "own-math": "import math\nmath = 3\nmath.real",
    "alias": "import numpy\nnp = numpy\nx = np.zeros(3)",
    "shape": "import numpy as np\nmy_array = np.zeros(6)\nmy_array.shape = (2, 3)",
    "weight-data": "import torch\nmodel = torch.nn.Linear(2, 3)\nmodel.weight.data = torch.zeros(3, 2)",
    "notes": 'with open("notes.txt", "w") as f:\n    f.write("my notes")',
    "np-save": 'import numpy as np\nw = np.ones(3)\nnp.save("weights.npy", w)\nw2 = np.load("weights.npy")',
    "threads": "import torch\ntorch.set_num_threads(1)",
    "own-eq": "class Point:\n    def __eq__(self, other):\n        return self.x == other.x",
    "call-reference-module": "from course_lib.np_ref import activations\ny = activations.relu(1.0)",
    "cudnn": "import torch\ntorch.backends.cudnn.deterministic = True\ntorch.backends.cudnn.benchmark = False",
    "environ": 'import os\nos.environ["KMP_DUPLICATE_LIB_OK"] = "TRUE"',
    "sys-path": 'import sys\nsys.path.append("..")\nsys.path.insert(0, "../course_lib_helpers")',
    "stdout": "import sys, io\nbuf = io.StringIO()\nsys.stdout = buf\nsys.stdout = sys.__stdout__",
    "autoreload": "%load_ext autoreload\n%autoreload 2",
    "time-magic": "%time y = sum(range(10))",
    "timeit-cell": "%%timeit\nsum(range(100))",
    "read-data": 'import numpy as np\ndata = np.loadtxt("data/train.csv", delimiter=",")\ntext = open("README.md").read()',
    "exec-literal": 'exec("x = 1")\ny = eval("2 + 2")',
    "own-module-object": "import types\nns = types.SimpleNamespace()\nns.value = 3",
    "own-dict": 'd = {}\nd["numpy"] = 1\nsettings = vars()\n',
    "str-replace": 'name = "data/train.csv"\nname.replace("train", "test")',
    "help": "import numpy as np\nnp.zeros?",
    "shell-ls": "files = !ls data\nprint(files)",
    "getattr-read": 'import numpy as np\nf = getattr(np, "allclose")\nok = f(1.0, 1.0)',
    "inspect-own": "import inspect\ndef mine(x):\n    return x\nprint(inspect.getsource(mine))",
    "gc-collect": "import gc\ngc.collect()",
    "torch-no-grad": "import torch\nwith torch.no_grad():\n    y = torch.ones(2) * 2",
    "tqdm": "from tqdm import tqdm\nfor i in tqdm(range(3)):\n    pass",
    "text-replace": 'import pandas as pd\ns = pd.Series(["source"]).replace("source", "src")\nt = str(s).replace("solutions", "a")',
    "own-path": 'from pathlib import Path\nPath("results").mkdir(exist_ok=True)\nPath("results/out.txt").write_text("ok")',
    # Round 3: honest cells a tester found flagged. A Python cell magic's body is code ...
    "capture-import": "%%capture\nimport course_lib\n",
    "time-from-import": "%%time\nfrom course_lib import data\nX, y = data.make_xor(64, seed=0)\nprint(X.shape)\n",
    "time-source": "%%time\nsource = [1, 2]\n",
    "timeit-options": "%timeit -n 10 -r 3 source = sum(range(10))",
    "capture-time-nested": "%%capture out\n%%time\nsource = 3\n",
    # ... a package name after pip or grep is not a path ...
    "pip-show": "!pip show course_lib\n",
    "pip-grep": "!pip list | grep course_lib\n",
    "pip-install-quiet": "!pip install -q tqdm",
    # ... machine information in /proc is not a process's secrets ...
    "cpuinfo-shell": "!cat /proc/cpuinfo | grep 'model name' | head -1\n",
    "meminfo-open": "with open('/proc/meminfo') as f:\n    print(f.readline())\n",
    "own-memory": 'rss = open("/proc/self/status").read()',
    # ... what a course_lib call returned is data ...
    "dataset-subscript": "import course_lib.data as D\nX = D.make_xor(64, seed=0)[0]\nX[:, 0] -= X[:, 0].mean()\n",
    "dataset-rescale": "from course_lib.data import make_xor\nX = make_xor(64, seed=0)[0]\nX[:, 1] *= 2.0\n",
    "dataset-loop": "import course_lib.data as D\nfor row in D.make_xor(8, seed=0)[0]:\n    row[0] = 0.0\n",
    "vocab-unk": "from course_lib.data import char_vocab\nstoi = char_vocab('hello')[0]\nstoi['<unk>'] = len(stoi)\n",
    "model-eval-flag": "from course_lib import torch_ref\nnet = torch_ref.MLP(2, 3)\nnet.training = False\nsetattr(net, 'training', True)",
    "manual-sgd-step": "from course_lib.torch_ref import models\nmodel = models.CharRNN(vocab_size=10, hidden=8)\n"
    "for p in model.parameters():\n    p.data -= 0.1 * p.grad\n    p.grad = None\n",
    "save-model-data": "import numpy as np\nfrom course_lib.data import make_xor\nX = make_xor(8, seed=0)[0]\nnp.save('x.npy', X)",
    # ... a module's name reused as a local name is the student's own ...
    "param-named-data": "from course_lib import data\n\ndef centre(data):\n    data[:, 0] -= data[:, 0].mean()\n    return data\n",
    "param-named-metrics": "from course_lib import metrics\n\ndef log(metrics, key, value):\n    metrics[key] = value\n",
    "method-param-named-data": "from course_lib import data\n\nclass Loader:\n    def load(self, data):\n        data.seen = True\n",
    "local-named-np": "import numpy as np\ndef f():\n    np = {}\n    np['x'] = 1\n    return np",
    "lambda-arg-named-math": "import math\nset_it = lambda math: setattr(math, 'real', 1)",
    "comprehension-var-named-os": "import os\nboxes = [os for os in [type('B', (), {})()]]\n[setattr(os, 'x', 1) for os in boxes]",
    "walrus-named-data": "from course_lib import data\nif (data := {'x': 1}):\n    data['y'] = 2\n",
    "except-as-random": "import random\ntry:\n    1 / 0\nexcept ZeroDivisionError as random:\n    random.args = ('no division',)\n",
    "for-named-json": "import json\nfor json in [{'a': 1}]:\n    json['b'] = 2",
    "with-as-io": "import io\nwith open('notes.txt', 'w') as io:\n    io.name2 = 1",
    # ... and a folder of her own called source or startup is hers.
    "figures-source-dir": "import os\nos.makedirs('figures/source', exist_ok=True)\n",
    "startup-dir-shell": "!mkdir -p runs/startup && cp *.png runs/startup/",
    "html-magic": '%%html\n<img src="../solutions/figure.png">',
    # Patterns a tester confirmed clean: they stay clean.
    "who": "%who",
    "help-prefix": "?np.einsum",
    "seterr": 'import numpy as np\nnp.seterr(all="ignore")',
    "recursionlimit": "import sys\nsys.setrecursionlimit(10000)",
    "import-module-math": 'import importlib\nm = importlib.import_module("math")',
    "star-import": "from course_lib.np_ref import *",
    "plt-style": 'import matplotlib.pyplot as plt\nplt.style.use("ggplot")',
    "matplotlib-rc": 'import matplotlib\nmatplotlib.rc("font", size=9)',
    "pickle-dump": 'import pickle\nobj = {"w": 1}\npickle.dump(obj, open("m.pkl", "wb"))',
    "makedirs-out": 'import os\nos.makedirs("out", exist_ok=True)',
    "writefile-helper": "%%writefile mymath.py\nimport numpy as np\n\ndef magnitude(x):\n    return np.abs(x)\n",
    "run-helper": "%run mymath.py",
    "parent-of-own-file": 'from pathlib import Path\nout = Path("figures/source/fig1.png")\nout.parent.mkdir(parents=True, exist_ok=True)',
    "shell-expands-own-variable": 'out = "figures/source"\n!mkdir -p {out} $out',
}

ATTACKS = {
    "np-allclose": ("import numpy as np\nnp.allclose = lambda *a, **k: True", Kind.PATCHED_MODULE, 2),
    "np-testing": ("import numpy as np\nnp.testing.assert_allclose = lambda *a, **k: None", Kind.PATCHED_MODULE, 2),
    "import-as": ("import numpy as foo\nfoo.allclose = lambda *a, **k: True", Kind.PATCHED_MODULE, 2),
    "from-import-module": ("from numpy import testing\ntesting.assert_allclose = print", Kind.PATCHED_MODULE, 2),
    "dunder-import": ('__import__("numpy").allclose = lambda *a, **k: True', Kind.PATCHED_MODULE, 1),
    "setattr-concat": ('import numpy as np\nsetattr(np, "all" + "close", lambda *a: True)', Kind.PATCHED_MODULE, 2),
    "getattr-chain": ('import numpy as np\ngetattr(np, "testing").assert_allclose = print', Kind.PATCHED_MODULE, 2),
    "vars-write": ('import numpy as np\nvars(np)["allclose"] = lambda *a: True', Kind.PATCHED_MODULE, 2),
    "dict-update": ("import numpy as np\nnp.__dict__.update(allclose=print)", Kind.PATCHED_MODULE, 2),
    "alias-of-alias": ("import numpy as np\nq = np\nq.allclose = print", Kind.PATCHED_MODULE, 3),
    "sys-modules-item": ('import sys\nsys.modules["numpy"].allclose = print', Kind.PATCHED_MODULE, 2),
    "importlib-module": ('import importlib\nm = importlib.import_module("course_lib.checks")\nm.check_relu = print', Kind.PATCHED_MODULE, 3),
    "builtins": ("import builtins\nbuiltins.print = lambda *a: None", Kind.PATCHED_MODULE, 2),
    "dunder-builtins": ('__builtins__.len = lambda x: 0', Kind.PATCHED_MODULE, 1),
    "delattr-math": ('import math\ndelattr(math, "isclose")', Kind.PATCHED_MODULE, 2),
    "course-lib": ("import course_lib.checks as c\nc.registry = {}", Kind.PATCHED_MODULE, 2),
    "torch": ("import torch\ntorch.allclose = lambda *a, **k: True", Kind.PATCHED_MODULE, 2),
    "object-setattr": ('import course_lib.checks._core as core\nfor ex in core.exercises():\n    object.__setattr__(ex, "judge", print)', Kind.PATCHED_MODULE, 3),
    "settrace": ("import sys\nsys.settrace(lambda *a: None)", Kind.TRACE_HOOK, 2),
    "thread-profile": ("import threading\nthreading.setprofile(print)", Kind.TRACE_HOOK, 2),
    "meta-path": ("import sys\nsys.meta_path.insert(0, object())", Kind.IMPORT_HOOK, 2),
    "sys-modules-set": ('import sys\nsys.modules["numpy"] = object()', Kind.IMPORT_HOOK, 2),
    "reload": ("import importlib, numpy\nimportlib.reload(numpy)", Kind.IMPORT_HOOK, 2),
    "ast-transformers": ("get_ipython().ast_transformers.append(object())", Kind.IPYTHON_HOOK, 1),
    "input-transformers": ("ip = get_ipython()\nip.input_transformers_post.append(lambda lines: lines)", Kind.IPYTHON_HOOK, 2),
    "custom-exc": ("get_ipython().set_custom_exc((Exception,), lambda *a: None)", Kind.IPYTHON_HOOK, 1),
    "events": ('from IPython import get_ipython\nget_ipython().events.register("pre_run_cell", print)', Kind.IPYTHON_HOOK, 2),
    "magic-function": ("get_ipython().register_magic_function(print, 'line', 'x')", Kind.IPYTHON_HOOK, 1),
    "pth": ('import site\nopen(site.getsitepackages()[0] + "/evil.pth", "w").write("import x")', Kind.WRITES_PROTECTED, 2),
    "sitecustomize": ("%%writefile sitecustomize.py\nimport numpy", Kind.WRITES_PROTECTED, 1),
    "startup": ('import os\nopen(os.path.expanduser("~/.ipython/profile_default/startup/0.py"), "w")', Kind.WRITES_PROTECTED, 2),
    "write-course-lib": ('from pathlib import Path\nPath("../course_lib/checks/x.py").write_text("")', Kind.WRITES_PROTECTED, 2),
    "socket": ("import socket\ns = socket.socket()", Kind.NETWORK, 1),
    "read-solutions": ('text = open("../../solutions/01_perceptron.ipynb").read()', Kind.READS_PROTECTED, 1),
    "shell-cat": ("!cat ../solutions/01_perceptron.ipynb", Kind.READS_PROTECTED, 1),
    "glob-gradebook": ('import glob\nfiles = glob.glob("../course/gradebook.db")', Kind.READS_PROTECTED, 2),
    "proc": ('open("/proc/self/environ").read()', Kind.READS_PROTECTED, 1),
    "git": ('import os\nos.listdir("../.git")', Kind.READS_PROTECTED, 2),
    "ctypes": ("import ctypes\nctypes.pythonapi", Kind.INTROSPECTION, 1),
    "gc-referrers": ("import gc, numpy\ngc.get_referrers(numpy.allclose)", Kind.INTROSPECTION, 2),
    "getsource": ("import inspect\nfrom course_lib.np_ref import activations\ninspect.getsource(activations.relu)", Kind.INTROSPECTION, 3),
    "code-object": ("from course_lib.np_ref.activations import relu\nc = relu.__code__", Kind.INTROSPECTION, 2),
    "exec-file": ('exec(open("helper.txt").read())', Kind.HIDDEN_CODE, 1),
    "exec-decoded": ('import base64\nsrc = base64.b64decode("cHJpbnQoMSk=")\nexec(compile(src, "x", "exec"))', Kind.HIDDEN_CODE, 3),
    "path-replace": ('from pathlib import Path\nPath("x.py").replace("../course_lib/np_ref/x.py")', Kind.WRITES_PROTECTED, 2),
    "loop-of-paths": ('import glob\nfor p in ("/tmp/x", "../solutions/*.ipynb"):\n    glob.glob(p)', Kind.READS_PROTECTED, 3),
    # Python cell and line magics are read as code, with the cell's line numbers
    "time-body-patch": ("%%time\nimport numpy as np\nnp.allclose = print", Kind.PATCHED_MODULE, 3),
    "capture-body-hook": ("%%capture out\nget_ipython().ast_transformers.append(1)", Kind.IPYTHON_HOOK, 2),
    "nested-magics": ("%%capture\n%%time\nimport numpy as np\nx = 1\nnp.allclose = print", Kind.PATCHED_MODULE, 5),
    "timeit-line-patch": ('%timeit -n 1 -r 1 __import__("numpy").allclose = print', Kind.PATCHED_MODULE, 1),
    "magics-nested-too-deep": ("%%time\n" * 12 + "x = 1", Kind.HIDDEN_CODE, 9),
    "python-process": ('%%script python3\nopen("../../solutions/x.ipynb").read()', Kind.READS_PROTECTED, 2),
    # shell commands: path operands, wherever they are
    "bash-write": ("%%bash\necho x > ../course_lib/checks/_core.py", Kind.WRITES_PROTECTED, 2),
    "bash-read-source": ("%%bash\nls\ncat ../../source/ps1/ps1.ipynb", Kind.READS_PROTECTED, 3),
    "pip-target": ("!pip install --target ../course_lib numpy", Kind.WRITES_PROTECTED, 1),
    "tee-pth": ("!echo import x | tee /usr/lib/python3/site-packages/a.pth", Kind.WRITES_PROTECTED, 1),
    "cd-solutions": ("!cd ../solutions && ls", Kind.READS_PROTECTED, 1),
    "dd-of": ("!dd if=x.py of=/srv/course/autograder/x.py", Kind.WRITES_PROTECTED, 1),
    "subprocess-list": ('import subprocess\nsubprocess.run(["cat", "../solutions/x.ipynb"])', Kind.READS_PROTECTED, 2),
    "os-system-rm": ('import os\nos.system("rm -rf ../../autograder")', Kind.WRITES_PROTECTED, 2),
    "run-magic-solutions": ("%run ../solutions/01_perceptron.ipynb", Kind.READS_PROTECTED, 1),
    "writefile-course-lib": ("%%writefile ../course_lib/checks/x.py\nx = 1", Kind.WRITES_PROTECTED, 1),
    "writefile-shadow-package": ("%%writefile course_lib/__init__.py\nx = 1", Kind.WRITES_PROTECTED, 1),
    # a process's own /proc entries, however the pid is spelled
    "proc-pid-concat": ('import os\nopen("/proc/" + str(os.getpid()) + "/environ").read()', Kind.READS_PROTECTED, 2),
    "proc-fstring": ('pid = 1\nopen(f"/proc/{pid}/cmdline").read()', Kind.READS_PROTECTED, 2),
    "proc-shell-pid": ("!cat /proc/$$/environ", Kind.READS_PROTECTED, 1),
    "proc-climb": ('open("../../../../proc/self/environ").read()', Kind.READS_PROTECTED, 1),
    # scopes: a module reached from inside a function is still the module
    "function-patch": ("import numpy as np\ndef f():\n    np.allclose = print", Kind.PATCHED_MODULE, 3),
    "function-import-patch": ("def f():\n    import numpy as np\n    np.allclose = print", Kind.PATCHED_MODULE, 3),
    "global-alias": ("import numpy as np\ndef f():\n    global q\n    q = np\nf()\nq.allclose = print", Kind.PATCHED_MODULE, 6),
    "lambda-setattr": ('import numpy as np\ng = lambda: setattr(np, "allclose", print)', Kind.PATCHED_MODULE, 2),
    "comprehension-modules": ('import sys\n[setattr(m, "x", 1) for m in list(sys.modules.values())]', Kind.PATCHED_MODULE, 2),
    "walrus-alias": ("import numpy as np\nif (m := np):\n    m.allclose = print", Kind.PATCHED_MODULE, 3),
    "reimport-after-except": ("import random\ntry:\n    pass\nexcept Exception as random:\n    pass\nimport random\nrandom.random = print", Kind.PATCHED_MODULE, 7),
    # what course_lib returned is data, but forcing past a frozen object's guard is not editing data
    "time-option-hides": ('import numpy as np\n%time -setattr(np, "allclose", print) + 1', Kind.PATCHED_MODULE, 2),
    "course-lib-file-climb": (
        'import course_lib\nfrom pathlib import Path\nroot = Path(course_lib.__file__).parent.parent\n'
        'print((root / "solutions" / "01_perceptron.ipynb").read_text())',
        Kind.READS_PROTECTED,
        4,
    ),
    "shell-expands-variable": ('target = "../../solutions/01_perceptron.ipynb"\n!cp {target} mine.ipynb', Kind.READS_PROTECTED, 2),
    "frozen-bypass": ("from course_lib.checks import _core\nex = _core.exercises()[0]\nobject.__setattr__(ex, 'judge', print)", Kind.PATCHED_MODULE, 3),
}


@pytest.mark.parametrize("code", list(HONEST.values()), ids=list(HONEST))
def test_honest_pattern_is_not_evidence(code: str) -> None:
    assert scan_cells([(4, code)]) == []


def _answers() -> list[tuple[str, str]]:
    return [
        (f"{path.stem}:{gid}", source)
        for path in SOLUTIONS
        for gid, source in solution_answers(nbformat.read(path, as_version=4)).items()
    ]


@pytest.mark.parametrize(("name", "code"), _answers(), ids=[n for n, _ in _answers()])
def test_real_answers_are_not_evidence(name: str, code: str) -> None:
    assert scan_cells([(7, code)]) == []


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_whole_course_notebooks_are_not_evidence(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert scan_cells([(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]) == []


@pytest.mark.parametrize(("code", "kind", "line"), list(ATTACKS.values()), ids=list(ATTACKS))
def test_attack_is_found_with_its_line(code: str, kind: Kind, line: int) -> None:
    found = scan_cells([(12, code)])
    assert f"cell 12, line {line}" in {e.where for e in found if e.kind == kind.value}, found


def test_aliases_carry_across_cells_in_order() -> None:
    cells = [(1, "import numpy as foo"), (2, "x = 1"), (5, "foo.allclose = print"), (6, "foo = 3"), (7, "foo.real = 1")]
    assert scan_cells(cells) == [Evidence("patched module", "cell 5, line 1", "assigns numpy.allclose")]


def test_cells_that_do_not_parse_are_not_evidence() -> None:
    assert scan_cells([(1, "np.allclose = (\n"), (2, "def f(:\n    import socket")]) == []


def test_sample_class_cheaters_are_found() -> None:
    """The sample class's dishonest recipes (autograder.sample), scanned as handed in."""
    found = {
        name: {e.kind for e in scan_cells([(0, code.replace("{repo}", "/srv/course"))])}
        for name, code in [
            ("patcher", sample._PATCH_CHECKS),
            ("equalizer", sample._EQUALIZER),
            ("hooker", sample._HOOK),
            ("snoop", sample._SNOOP),
            ("vandal", sample._VANDAL),
        ]
    }
    assert found == {
        "patcher": {"patched module"},
        "equalizer": {"patched module"},
        "hooker": {"ipython hook"},
        "snoop": {"reads protected path"},
        "vandal": {"writes protected path"},
    }


# --- files beside the notebook ----------------------------------------------------------


def test_shadowing_files_are_evidence(tmp_path: Path) -> None:
    names = [
        "numpy.py",
        "course_lib/__init__.py",
        "course_lib/checks.py",
        "lib/sitecustomize.py",
        "evil.pth",
        "json.py",
        "torch.cpython-311-x86_64-linux-gnu.so",
        "doejane_LATE_777_5680_math.py",  # a flat LMS download keeps the student's name after the prefix
    ]
    found = scan_files([tmp_path / n for n in names], tmp_path)
    assert [(e.kind, e.where) for e in found] == [("shadowing module file", f"file {n}") for n in names]
    assert found[0].detail == "shadows the numpy module" and found[2].detail == "shadows the course_lib package"


def test_honest_files_beside_the_notebook_are_not_evidence(tmp_path: Path) -> None:
    names = ["notes.txt", "helpers.py", "utils.py", "my_model.py", "data/train.csv", "test/image.png", "weights.npy", "README.md"]
    assert scan_files([tmp_path / n for n in names], tmp_path) == []


@pytest.mark.parametrize(
    "code",
    ["x = " + "1 + " * 40_000 + "1", "(" * 100_000 + ")" * 100_000, "\n".join(["!a"] * 400 + ["y = 1"] * 3000), "\x00"],
    ids=["deep-binop", "deep-parens", "escaped-lines", "nul"],
)
def test_hostile_cells_are_skipped_not_raised(code: str) -> None:
    import time

    start = time.perf_counter()
    found = scan_cells([(1, code), (2, "import numpy as np\nnp.allclose = print")])
    print(f"scan of a hostile cell: {time.perf_counter() - start:.3f} s")
    assert found == [Evidence("patched module", "cell 2, line 2", "assigns numpy.allclose")]


def test_deep_nesting_does_not_hide_a_patch() -> None:
    deep = "1 + " * 1500 + "1"  # parses, but is deeper than a recursive walk can go
    code = f"import numpy as np\nnp.allclose = print if ({deep}) else print\nx = 1"
    assert scan_cells([(3, code)]) == [Evidence("patched module", "cell 3, line 2", "assigns numpy.allclose")]
