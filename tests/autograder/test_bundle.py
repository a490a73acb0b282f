"""The students' copy of the course: only what students need, no answer anywhere, usable
from a fresh clone (the self-checks pass for right answers and say "not answered yet"
for the release), and written safely."""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
import tomllib
import zipfile
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import nbformat
import pytest

from autograder.bundle import MARKER, REPO, write_student_bundle

TOP_LEVEL = {"notebooks", "course_lib", "pyproject.toml", "environment.yml", "Makefile", "README.md",
             "selfcheck.py", ".gitignore", MARKER}  # fmt: skip
FORBIDDEN_NAMES = {"solutions", "autograder", "tests", ".git", "__pycache__", "benchmarks"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("published") / "student"
    result = write_student_bundle(out)
    assert result.out_dir == out.resolve() and not result.replaced
    return out


def _git(cwd: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main", *args]
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


# --- what is in it ---------------------------------------------------------------------------------------


def test_bundle_holds_only_the_student_files(bundle: Path) -> None:
    assert {p.name for p in bundle.iterdir()} == TOP_LEVEL
    names = {p.name for p in bundle.rglob("*")}
    assert not names & FORBIDDEN_NAMES, f"forbidden entries in the bundle: {names & FORBIDDEN_NAMES}"
    assert not [p for p in bundle.rglob("*") if p.suffix in (".pyc", ".pyo")]
    # The notebooks are the committed release, byte for byte.
    released = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in (bundle / "notebooks").iterdir()) == released
    for name in released:
        assert (bundle / "notebooks" / name).read_bytes() == (REPO / "notebooks" / name).read_bytes()
    # course_lib is what git tracks of it, data included (oracle: git, not the copy code).
    tracked = set(_git(REPO, "ls-files", "course_lib").split())
    shipped = {str(p.relative_to(bundle)) for p in (bundle / "course_lib").rglob("*") if p.is_file()}
    assert shipped == tracked
    assert (bundle / "course_lib" / "datasets" / "digits.npz").stat().st_size > 0


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _with_dependencies(names: set[str]) -> set[str]:
    """``names`` and everything they require, as installed here (extras left out)."""
    seen, todo = set(), [_canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        todo += [_canonical(re.match(r"[A-Za-z0-9_.\-]+", r).group(0)) for r in requires if "extra ==" not in r]
    return seen


def test_student_package_installs_course_lib_only_with_what_it_imports(bundle: Path) -> None:
    project = tomllib.loads((bundle / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["course_lib*"]
    assert "scripts" not in project["project"]
    required = {_canonical(re.match(r"[A-Za-z0-9_.\-]+", d).group(0)) for d in project["project"]["dependencies"]}
    assert not required & {"nbgrader", "bleach", "pytest"}, "grader or test packages in the students' pyproject"
    # Every third-party module that course_lib and selfcheck.py import is a declared dependency.
    stdlib = set(sys.stdlib_module_names)
    imported: set[str] = set()
    for path in [*(bundle / "course_lib").rglob("*.py"), bundle / "selfcheck.py"]:
        for match in re.finditer(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", path.read_text(), re.MULTILINE):
            imported.add(match.group(1))
    third_party = imported - stdlib - {"course_lib", "__future__"}
    dists = packages_distributions()
    installed = _with_dependencies(required)  # what pip installs for the declared packages
    for module in sorted(third_party | {"ipykernel"}):  # ipykernel: the kernel `make check` starts
        provided_by = {_canonical(d) for d in dists.get(module, [module])}
        assert provided_by & installed, f"course_lib imports {module} but the students' pyproject lacks {provided_by}"
    # environment.yml lists the same packages (conda's pytorch = PyPI's torch).
    conda = set(re.findall(r"^  - ([A-Za-z0-9_.\-]+)", (bundle / "environment.yml").read_text().split("dependencies:")[1], re.MULTILINE))
    assert {"pytorch" if n == "torch" else n for n in required} | {"python", "pip"} == conda
    assert "--editable ." in (bundle / "environment.yml").read_text()


def test_student_package_builds_a_wheel_of_course_lib_and_its_data(bundle: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(bundle, source)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"course_lib"}
    assert "course_lib/datasets/digits.npz" in names and "course_lib/checks/nb01_perceptron.py" in names


def test_students_makefile_and_readme(bundle: Path) -> None:
    for target, command in (("lab", "jupyter lab notebooks/"), ("check", "python selfcheck.py")):
        dry = subprocess.run(["make", "-n", "-C", str(bundle), target], capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr
        assert command in dry.stdout and "pip install --quiet -e ." in dry.stdout
    makefile = (bundle / "Makefile").read_text()
    torch_version = re.search(r"^TORCH_VERSION\s*\?=\s*(\S+)", (REPO / "Makefile").read_text(), re.MULTILINE).group(1)
    assert f"TORCH_VERSION   ?= {torch_version}" in makefile and "TORCH_INDEX_URL" in makefile
    readme = (bundle / "README.md").read_text()
    for needed in ("make lab", "make check", "fresh process", "tampering", "cells you", "setup cell",
                   "not answered yet", "TORCH_INDEX_URL"):  # fmt: skip
        assert needed in readme, needed
    assert "{{" not in readme and "{{" not in makefile
    # The table's points are the release's own nbgrader points (146 in all, as the course README says).
    points = [float(m) for m in re.findall(r"^\| `\d\d_\w+` \| \d+ \| ([\d.]+) \|$", readme, re.MULTILINE)]
    assert len(points) == 7 and sum(points) == 146


# --- no answer anywhere ------------------------------------------------------------------------------------


def _norm(line: str) -> str:
    return " ".join(line.split())


def _marked_lines(source: str) -> list[str]:
    """The lines between ``### BEGIN SOLUTION``/``### BEGIN HIDDEN TESTS`` and their ``### END``."""
    out, inside = [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker.startswith(("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS")):
            inside = True
        elif marker.startswith(("### END SOLUTION", "### END HIDDEN TESTS")):
            inside = False
        elif inside:
            out.append(_norm(line))
    return out


def _code_without_strings(text: str) -> str:
    """Python source with every string literal and comment blanked (line structure kept)."""
    lines = [list(line) for line in text.splitlines()]
    # Python 3.12 splits f-strings into parts; their text parts are FSTRING_MIDDLE tokens.
    text_tokens = {tokenize.STRING, tokenize.COMMENT, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in text_tokens:
            (r0, c0), (r1, c1) = tok.start, tok.end
            for r in range(r0, r1 + 1):
                row = lines[r - 1]
                for c in range(c0 if r == r0 else 0, c1 if r == r1 else len(row)):
                    row[c] = " "
    return "\n".join("".join(row) for row in lines)


# Code lines of course_lib/checks that a correct answer happens to share: the zero
# initialisations, loop headers and returns of the checks' own reference and
# mistake functions, which are built from course_lib.np_ref step functions (reviewed
# 2026-11-27; the core of each answer is not among them). Anything new fails the test.
CHECKS_SCAFFOLDING = {
    "dx = np.zeros_like(x)",
    "dwx, dwh, db = np.zeros_like(wx), np.zeros_like(wh), np.zeros_like(b)",
    "dh_next = np.zeros_like(h0)",
    "for t in reversed(range(x.shape[1])):",
    "for epoch, loss in enumerate(val_losses):",
    "return epoch + 1, best_epoch",
    "loss, dscores = softmax_cross_entropy(scores, labels)",
}


# `return h, c`, `return out, new_mean, new_var`: returning the named outputs the exercise
# asks for says nothing of how they are computed.
_RETURN_OF_NAMES = re.compile(r"return [\w\s,()\[\]]+")


def _trivial(line: str) -> bool:
    return not line or line.startswith("#") or bool(_RETURN_OF_NAMES.fullmatch(line))


@functools.cache
def _answer_lines() -> tuple[frozenset[str], frozenset[str]]:
    """(solution lines, hidden-test lines) of solutions/*.ipynb to look for: normalized,
    without comments, without lines the released notebooks also have (``return out``),
    and, for solutions, without lines of the reference students may read
    (course_lib.np_ref / torch_ref, as the brief allows)."""
    released: set[str] = set()
    for path in (REPO / "notebooks").glob("*.ipynb"):
        for cell in nbformat.read(str(path), as_version=4).cells:
            released.update(_norm(line) for line in cell.source.splitlines())
    reference = {_norm(line) for d in ("np_ref", "torch_ref") for p in (REPO / "course_lib" / d).rglob("*.py")
                 for line in p.read_text().splitlines()}  # fmt: skip
    solution, hidden = set(), set()
    for path in sorted((REPO / "solutions").glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            target = hidden if "BEGIN HIDDEN TESTS" in cell.source else solution
            target.update(line for line in _marked_lines(cell.source)
                          if not _trivial(line) and line not in released)  # fmt: skip
    return frozenset(solution - reference), frozenset(hidden)


def _lines_of(path: Path) -> set[str]:
    """The normalized lines of a file; of a notebook, the lines of its cells' sources."""
    text = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        text = "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
    return {_norm(line) for line in text.splitlines()}


def _find_leaks(root: Path) -> list[tuple[str, str, str]]:
    """(file, kind, line) for every answer line found as a whole line of a file under ``root``."""
    solution, hidden = _answer_lines()
    leaks = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".npz"):
        rel = path.relative_to(root)
        lines = _lines_of(path)
        in_checks = rel.parts[:2] == ("course_lib", "checks")
        code = {_norm(x) for x in _code_without_strings(path.read_text()).splitlines()} if in_checks else lines
        leaks += [(str(rel), "hidden test", line) for line in sorted(hidden & lines)]
        for line in sorted(solution & lines):
            if in_checks and (line in CHECKS_SCAFFOLDING or line not in code):
                continue  # reviewed scaffolding, or a failure hint the check prints to the student anyway
            leaks.append((str(rel), "solution", line))
    return leaks


def test_no_solution_or_hidden_test_text_anywhere_in_the_bundle(bundle: Path) -> None:
    solution, hidden = _answer_lines()
    assert len(solution) > 100 and len(hidden) > 40, "the solutions' markup was not found: the test is broken"
    assert CHECKS_SCAFFOLDING <= solution, f"stale entries: {CHECKS_SCAFFOLDING - solution}"
    leaks = _find_leaks(bundle)
    assert leaks == [], "solution or hidden-test text in the student bundle:\n" + "\n".join(map(str, leaks))


def test_the_search_finds_a_planted_leak(tmp_path: Path) -> None:
    solution, hidden = _answer_lines()
    sol = "da = (dh[:, t] + dh_next) * (1.0 - hs[:, t] ** 2)"  # the core of rnn_bptt's solution
    hid = "check_neuron_forward(neuron_forward, seed=1)"
    assert sol in solution and hid in hidden
    (tmp_path / "course_lib" / "checks").mkdir(parents=True)
    (tmp_path / "README.md").write_text(f"Hint:\n    {sol}\n")
    (tmp_path / "course_lib" / "checks" / "nb99.py").write_text(f"def f(dh, hs, dh_next, t):\n    {sol}\n    {hid}\n")
    assert _find_leaks(tmp_path) == [
        ("README.md", "solution", sol),
        ("course_lib/checks/nb99.py", "hidden test", hid),
        ("course_lib/checks/nb99.py", "solution", sol),
    ]


# --- a fresh clone, used as a student would -------------------------------------------------------------------

# Correct answers to notebook 01, written for this test (not taken from solutions/).
ANSWERS_01 = {
    "neuron_forward": '''
def neuron_forward(x, w, w0):
    z = x @ w + w0
    return sigmoid(z)
''',
    "perceptron_predict": '''
def perceptron_predict(x, w, w0):
    return np.where(x @ w + w0 > 0, 1, 0).astype(np.int64)
''',
    "perceptron_train": '''
def perceptron_train(x, y, *, lr=1.0, epochs, rng=None):
    w, w0, history = np.zeros(x.shape[1]), 0.0, []
    for _ in range(epochs):
        errors = 0
        for i in (range(len(x)) if rng is None else rng.permutation(len(x))):
            guess = int(x[i] @ w + w0 > 0)
            if guess != y[i]:
                w = w + lr * (y[i] - guess) * x[i]
                w0 = w0 + lr * (y[i] - guess)
                errors += 1
        history.append(errors)
    return w, w0, history
''',
    "multi_output_forward": '''
def multi_output_forward(x, w, b):
    return 1.0 / (1.0 + np.exp(-(x @ w + b)))
''',
    "xor_params": '''
hidden_or_and = (np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([-0.5, -1.5]))
out_or_not_and = (np.array([[2.0], [-2.0]]), np.array([-1.0]))
xor_params = [hidden_or_and, out_or_not_and]
''',
}
WRONG_NEURON = "def neuron_forward(x, w, w0):\n    return x @ w + w0  # forgot the sigmoid\n"


@pytest.fixture(scope="module")
def fresh_clone(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clone")
    published = root / "published"
    shutil.copytree(bundle, published)
    _git(published, "init", "-q")
    _git(published, "add", "-A")
    _git(published, "commit", "-q", "-m", "course")
    _git(root, "clone", "-q", str(published), "student")
    return root / "student"


def _answer(path: Path, answers: dict[str, str]) -> None:
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id].strip()
    nbformat.write(nb, str(path))


def _selfcheck(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The current interpreter with PYTHONPATH = the clone: course_lib comes from the bundle only.
    env = {**os.environ, "PYTHONPATH": str(clone), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "selfcheck.py", *args], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def test_fresh_clone_holds_the_whole_bundle(bundle: Path, fresh_clone: Path) -> None:
    files = lambda root: {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert files(fresh_clone) == files(bundle)


@pytest.mark.slow
def test_fresh_clone_right_answers_pass_the_visible_checks(fresh_clone: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(fresh_clone, work, ignore=shutil.ignore_patterns(".git"))
    notebook = work / "notebooks" / "01_perceptron.ipynb"
    _answer(notebook, ANSWERS_01)
    proc = _selfcheck(work, "notebooks/01_perceptron.ipynb")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[1] for line in lines] == list(ANSWERS_01)
    assert all(line.split()[0] == "01_perceptron" and line.endswith("  passed") for line in lines), proc.stdout

    _answer(notebook, {**ANSWERS_01, "neuron_forward": WRONG_NEURON, "xor_params": "xor_params = [\n"})
    proc = _selfcheck(work, "notebooks/01_perceptron.ipynb")
    assert proc.returncode == 1
    by_exercise = {line.split()[1]: line for line in proc.stdout.splitlines()}
    assert "  failed: AssertionError: neuron_forward" in by_exercise["neuron_forward"]
    assert "\n" not in by_exercise["neuron_forward"]  # the first line of the message only
    assert "failed: your answer cell raised SyntaxError" in by_exercise["xor_params"]
    assert by_exercise["perceptron_train"].endswith("  passed")


@pytest.mark.slow
def test_selfcheck_survives_a_looping_answer_and_names_a_broken_setup(fresh_clone: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(fresh_clone, work, ignore=shutil.ignore_patterns(".git"))
    notebook = work / "notebooks" / "01_perceptron.ipynb"
    looping = "def perceptron_predict(x, w, w0):\n    while True:\n        pass\n"
    _answer(notebook, {**ANSWERS_01, "perceptron_predict": looping})
    proc = _selfcheck(work, "--cell-timeout", "5", "notebooks/01_perceptron.ipynb")
    assert proc.returncode == 1
    by_exercise = {line.split()[1]: line for line in proc.stdout.splitlines()}
    assert "failed: KeyboardInterrupt" in by_exercise["perceptron_predict"]  # interrupted, then went on
    assert all(by_exercise[name].endswith("  passed") for name in ANSWERS_01 if name != "perceptron_predict")

    _answer(notebook, {**ANSWERS_01, "setup": "import numpy as np\nimport course_lib.no_such_module"})
    proc = _selfcheck(work, "notebooks/01_perceptron.ipynb")
    assert proc.returncode == 1
    first = proc.stdout.splitlines()[0]
    assert first == "01_perceptron  the setup cell failed: ModuleNotFoundError: No module named 'course_lib.no_such_module'"


@pytest.mark.slow
def test_fresh_clone_unanswered_release_is_not_answered_yet(fresh_clone: Path) -> None:
    proc = _selfcheck(fresh_clone)  # every notebook, as `make check` runs it
    assert proc.returncode == 1, proc.stdout + proc.stderr
    expected = []
    for path in sorted((fresh_clone / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("grade") and "".join(cell["source"]).strip():
                expected.append((path.stem, meta["grade_id"].removeprefix("test_")))
    lines = proc.stdout.splitlines()
    assert [(line.split()[0], line.split()[1]) for line in lines] == expected
    assert len(expected) == 39  # 5 + 7 + 5 + 7 + 5 + 5 + 5 exercises
    assert all(line.endswith("  not answered yet") for line in lines), proc.stdout


# --- written safely ----------------------------------------------------------------------------------------


def test_rerun_replaces_an_earlier_bundle_whole(tmp_path: Path) -> None:
    out = tmp_path / "student"
    write_student_bundle(out)
    (out / "stale.txt").write_text("from an older bundle")
    (out / "notebooks" / "99_old.ipynb").write_text("{}")
    result = write_student_bundle(out)
    assert result.replaced
    assert not (out / "stale.txt").exists() and not (out / "notebooks" / "99_old.ipynb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student"]  # no staging or old copies left
    assert oct(out.stat().st_mode & 0o777) == "0o755"


@pytest.mark.parametrize("where", ["notebooks/out", "course_lib", "solutions/x", "autograder", ".", ".."])
def test_refuses_to_write_into_the_repository_folders(where: str) -> None:
    with pytest.raises(ValueError, match="refusing to write into|would replace the repository"):
        write_student_bundle(REPO / where)


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not an earlier student bundle"):
        write_student_bundle(tmp_path)
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_a_failed_run_leaves_the_earlier_bundle_as_it_was(tmp_path: Path) -> None:
    fake = tmp_path / "repo"
    (fake / "notebooks").mkdir(parents=True)
    shutil.copyfile(REPO / "notebooks" / "01_perceptron.ipynb", fake / "notebooks" / "01_perceptron.ipynb")
    (fake / "course_lib").mkdir()
    (fake / "course_lib" / "__init__.py").write_text("")
    shutil.copyfile(REPO / "Makefile", fake / "Makefile")
    (fake / "pyproject.toml").write_text(
        '[project]\nversion = "1"\nrequires-python = ">=3.10"\ndependencies = ["numpy", "???"]\n'
    )
    out = tmp_path / "pub" / "student"
    write_student_bundle(out)  # a good bundle first, from the real repository
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"cannot read the requirement '\?\?\?'"):
        write_student_bundle(out, repo=fake)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["student"]


def test_not_a_course_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not the course repository.*notebooks"):
        write_student_bundle(tmp_path / "out", repo=tmp_path)


def test_bundle_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from autograder.bundle import main

    assert main([str(tmp_path / "student")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "student" / MARKER).is_file()
    assert main([str(REPO / "course_lib" / "x")]) == 2
    assert "refusing to write into the repository's own course_lib/" in capsys.readouterr().err


def test_refuses_an_instructor_notebook_in_notebooks(tmp_path: Path) -> None:
    fake = tmp_path / "repo"
    shutil.copytree(REPO / "course_lib", fake / "course_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "Makefile"):
        shutil.copyfile(REPO / name, fake / name)
    (fake / "notebooks").mkdir()
    shutil.copyfile(REPO / "solutions" / "01_perceptron.ipynb", fake / "notebooks" / "01_perceptron.ipynb")
    with pytest.raises(ValueError, match=r"01_perceptron.ipynb contains '### BEGIN SOLUTION'.*release"):
        write_student_bundle(tmp_path / "out", repo=fake)
    assert not (tmp_path / "out").exists()
