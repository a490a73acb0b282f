"""Files handed in beside the notebook are next to it when graded, as nbgrader does it;
a notebook inside the student's own zip is found.

Unit tests ask one question each of intake (``collect``), the trusted copy
(``beside.prepare_beside``) and the jail-side copy (``sandbox.fill_work``); one graded
class (module-scoped, in the real sandbox) checks the copies reach both the kernel and
the re-verification child.
"""

from __future__ import annotations

import copy
import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

import nbformat
import pytest

import tinycourse

from autograder.beside import BesideLimits, LeftOut, prepare_beside
from autograder.intake import IntakeLimits, Manifest, collect
from autograder.results import Status
from autograder.sample import solution_answers
from autograder.sandbox import NOBODY, fill_work
from autograder.scan import scan_files

STEM = tinycourse.STEM
P = PurePosixPath


def _manifest() -> Manifest:
    return Manifest({STEM: frozenset({"square", "softsign", "answer_lr"})})


def _notebook_bytes() -> bytes:
    return nbformat.writes(tinycourse.solution_notebook()).encode()


def _cell_errors(nb: nbformat.NotebookNode, grade_id: str) -> list[str]:
    """The error names in the outputs of the cell ``grade_id`` of an executed notebook."""
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return [o.get("ename", "") for o in cell.get("outputs", []) if o.output_type == "error"]


def _only_job(jobs, student: str):
    (job,) = [j for j in jobs if j.assignment == STEM and j.student == student]
    return job


def _class(tmp_path: Path) -> Path:
    """A class folder with a second student, bob (one lone folder would be taken for a
    zip's wrapping folder)."""
    (tmp_path / "class" / "bob").mkdir(parents=True)
    (tmp_path / "class" / "bob" / f"{STEM}.ipynb").write_bytes(_notebook_bytes())
    return tmp_path / "class"


# ------------------------------------------------------------------ intake


def test_intake_puts_only_files_in_the_notebooks_folder_beside_it(tmp_path: Path) -> None:
    student = _class(tmp_path) / "ada"
    (student / "hw" / "data").mkdir(parents=True)
    (student / "hw" / f"{STEM}.ipynb").write_bytes(_notebook_bytes())
    (student / "hw" / "helpers.py").write_text("X = 1\n")
    (student / "hw" / "data" / "a.csv").write_text("1\n")
    (student / "outside.txt").write_text("above the notebook\n")
    job = _only_job(collect(tmp_path / "class", _manifest(), unpack_dir=tmp_path / "unpacked"), "ada")
    assert sorted(dest for _, dest in job.alongside) == [P("data/a.csv"), P("helpers.py")]
    assert {p.name for p in job.beside} == {"helpers.py", "a.csv", "outside.txt"}  # all still scanned


def test_intake_never_lists_a_link_beside_the_notebook(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not the student's\n")
    student = _class(tmp_path) / "ada"
    student.mkdir(parents=True)
    (student / f"{STEM}.ipynb").write_bytes(_notebook_bytes())
    (student / "data.csv").symlink_to(secret)
    job = _only_job(collect(tmp_path / "class", _manifest(), unpack_dir=tmp_path / "unpacked"), "ada")
    assert job.alongside == ()
    assert any("data.csv" in note and "symbolic link" in note for note in job.notes), job.notes


def _zip_folder(tmp_path: Path, entries: dict[str, bytes], *, links: dict[str, str] | None = None) -> Path:
    folder = _class(tmp_path) / "zipped"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "homework.zip", "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return tmp_path / "class"


def test_notebook_inside_the_students_own_zip_is_found_with_its_files(tmp_path: Path) -> None:
    entries = {
        f"homework/{STEM}.ipynb": _notebook_bytes(),
        "homework/data.csv": b"1,2\n",
        "homework/nested.zip": b"PK\x05\x06" + b"\x00" * 18,  # a zip in the zip stays a file: one level
        f"__MACOSX/homework/._{STEM}.ipynb": b"\x00\x05\x16\x07",
        "homework/._data.csv": b"\x00\x05\x16\x07",
    }
    root = _zip_folder(tmp_path, entries)
    job = _only_job(collect(root, _manifest(), unpack_dir=tmp_path / "unpacked"), "zipped")
    assert job.status == "pending" and job.path is not None and job.path.name == f"{STEM}.ipynb"
    assert not job.path.is_relative_to(root)  # unpacked beside the run, the submissions untouched
    assert sorted(dest for _, dest in job.alongside) == [P("._data.csv"), P("data.csv"), P("nested.zip")]
    assert sorted(p.name for p in job.beside) == ["._data.csv", "data.csv", "homework.zip", "nested.zip"]


def test_a_link_in_the_students_zip_is_not_extracted(tmp_path: Path) -> None:
    root = _zip_folder(tmp_path, {f"{STEM}.ipynb": _notebook_bytes()}, links={"data.csv": "/etc/passwd"})
    job = _only_job(collect(root, _manifest(), unpack_dir=tmp_path / "unpacked"), "zipped")
    assert job.path is not None and job.alongside == ()
    assert any("data.csv" in note and "symbolic link" in note for note in job.notes), job.notes


def test_the_students_zip_is_held_to_the_lms_zip_limits(tmp_path: Path) -> None:
    entries = {f"{STEM}.ipynb": _notebook_bytes(), **{f"f{i}.txt": b"x" for i in range(5)}}
    root = _zip_folder(tmp_path, entries)
    job = _only_job(collect(root, _manifest(), unpack_dir=tmp_path / "u", limits=IntakeLimits(max_entries=3)), "zipped")
    # entries 0..2 are unpacked (the notebook, f0, f1); the other three are refused, each said
    assert job.path is not None
    assert sorted(dest for _, dest in job.alongside) == [P("f0.txt"), P("f1.txt")]
    assert sum("more than 3 entries" in note for note in job.notes) == 3, job.notes


def test_a_zip_that_is_not_a_zip_is_a_note_and_the_notebook_beside_it_is_graded(tmp_path: Path) -> None:
    student = _class(tmp_path) / "ada"
    student.mkdir(parents=True)
    (student / f"{STEM}.ipynb").write_bytes(_notebook_bytes())
    (student / "old.zip").write_bytes(b"not a zip at all")
    job = _only_job(collect(tmp_path / "class", _manifest(), unpack_dir=tmp_path / "unpacked"), "ada")
    assert job.path == student / f"{STEM}.ipynb"
    assert any(note.startswith("ada/old.zip: not a readable zip") for note in job.notes), job.notes


def test_collecting_twice_gives_the_same_jobs(tmp_path: Path) -> None:
    root = _zip_folder(tmp_path, {f"hw/{STEM}.ipynb": _notebook_bytes(), "hw/data.csv": b"1\n"})
    first = _only_job(collect(root, _manifest(), unpack_dir=tmp_path / "unpacked"), "zipped")
    second = _only_job(collect(root, _manifest(), unpack_dir=tmp_path / "unpacked"), "zipped")
    assert (first.path, first.alongside, first.notes) == (second.path, second.alongside, second.notes)
    assert second.path is not None and second.path.read_bytes() == _notebook_bytes()


# ------------------------------------------------------------------ prepare_beside (trusted side)


def _files(folder: Path, texts: dict[str, str]) -> list[tuple[Path, PurePosixPath]]:
    out = []
    for name, text in texts.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out.append((path, P(name)))
    return out


def test_a_shadowing_module_is_never_copied_and_still_flagged(tmp_path: Path) -> None:
    student = tmp_path / "ada"
    files = _files(student, {"numpy.py": "raise SystemExit\n", "helpers.py": "X = 1\n", "torch/__init__.py": ""})
    made = prepare_beside(files, tmp_path / "beside", root=student)
    assert made.copied == (P("helpers.py"),)
    assert set(made.left_out) == {(P("numpy.py"), LeftOut.SHADOWS_A_MODULE), (P("torch/__init__.py"), LeftOut.SHADOWS_A_MODULE)}
    assert sorted(p.name for p in (tmp_path / "beside").rglob("*")) == ["helpers.py"]
    assert {e.where for e in scan_files([p for p, _ in files], student)} == {"file numpy.py", "file torch/__init__.py"}


def test_a_link_handed_to_prepare_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("host file\n")
    (tmp_path / "ada").mkdir()
    (tmp_path / "ada" / "data.csv").symlink_to(tmp_path / "secret")
    made = prepare_beside([(tmp_path / "ada" / "data.csv", P("data.csv"))], tmp_path / "beside", root=tmp_path / "ada")
    assert made.copied == () and made.left_out == ((P("data.csv"), LeftOut.NOT_READABLE),)
    assert list((tmp_path / "beside").iterdir()) == []


def test_other_notebooks_and_mac_noise_are_left_out(tmp_path: Path) -> None:
    files = _files(tmp_path / "ada", {"scratch.ipynb": "{}", "._helpers.py": "x", ".DS_Store": "x", "a.txt": "a"})
    made = prepare_beside(files, tmp_path / "beside", root=tmp_path / "ada")
    assert made.copied == (P("a.txt"),)
    assert dict(made.left_out)[P("scratch.ipynb")] is LeftOut.NOTEBOOK
    assert made.notes() == ["scratch.ipynb: not put beside the notebook when graded (another notebook)"]


def test_the_count_cap_keeps_the_files_nearest_the_notebook(tmp_path: Path) -> None:
    files = _files(tmp_path / "ada", {"d/z.txt": "1", "c.txt": "1", "a.txt": "1", "b.txt": "1"})
    made = prepare_beside(files, tmp_path / "beside", root=tmp_path / "ada", limits=BesideLimits(max_files=2))
    # shallow first, then by name: a.txt, b.txt; c.txt and d/z.txt are beyond the cap
    assert made.copied == (P("a.txt"), P("b.txt"))
    assert made.left_out == ((P("c.txt"), LeftOut.TOO_MANY), (P("d/z.txt"), LeftOut.TOO_MANY))
    assert len(made.notes()) == 2


def test_the_size_cap_holds_in_total(tmp_path: Path) -> None:
    files = _files(tmp_path / "ada", {"a.bin": "x" * 10, "b.bin": "y" * 10, "c.bin": "z" * 10, "d.bin": "w" * 4})
    made = prepare_beside(files, tmp_path / "beside", root=tmp_path / "ada", limits=BesideLimits(max_bytes=25))
    # 10 + 10 fit in 25; c (10 more) does not; d (4) still fits in the 5 left
    assert made.copied == (P("a.bin"), P("b.bin"), P("d.bin"))
    assert made.left_out == ((P("c.bin"), LeftOut.TOO_LARGE),)
    assert sum(p.stat().st_size for p in (tmp_path / "beside").iterdir()) == 24


def test_a_course_support_module_name_is_left_out(tmp_path: Path) -> None:
    files = _files(tmp_path / "ada", {"tiny_checks.py": "", "tiny_refs/__init__.py": "", "tiny.txt": ""})
    course = frozenset({"tiny_checks", "tiny_refs"})
    made = prepare_beside(files, tmp_path / "beside", root=tmp_path / "ada", course_modules=course)
    assert made.copied == (P("tiny.txt"),)
    assert {why for _, why in made.left_out} == {LeftOut.SHADOWS_COURSE_MODULE}


def test_preparing_again_replaces_the_folder(tmp_path: Path) -> None:
    files = _files(tmp_path / "ada", {"a.txt": "a", "sub/b.txt": "b"})
    prepare_beside(files, tmp_path / "beside", root=tmp_path / "ada")
    (tmp_path / "beside" / "stale.txt").write_text("left from an earlier run")
    made = prepare_beside(files[:1], tmp_path / "beside", root=tmp_path / "ada")
    assert made.copied == (P("a.txt"),)
    assert sorted(p.name for p in (tmp_path / "beside").rglob("*")) == ["a.txt"]
    assert stat.S_IMODE((tmp_path / "beside").stat().st_mode) == 0o700


# ------------------------------------------------------------------ fill_work (jail side)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to the sandbox uid needs root")
def test_fill_work_gives_the_sandbox_uid_writable_copies(tmp_path: Path) -> None:
    files = _files(tmp_path / "ada", {"data.csv": "1,2\n", "sub/helpers.py": "X = 1\n"})
    prepare_beside(files, tmp_path / "beside", root=tmp_path / "ada")
    work = tmp_path / "work"
    work.mkdir()
    assert fill_work(tmp_path / "beside", work, NOBODY) == 2
    for rel, text in (("data.csv", "1,2\n"), ("sub/helpers.py", "X = 1\n")):
        info = (work / rel).stat()
        assert (work / rel).read_text() == text
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (NOBODY, 0o644)
    assert (work / "sub").stat().st_uid == NOBODY
    # the original stays root's: writing the copy never reaches it
    assert (tmp_path / "beside" / "data.csv").stat().st_uid == 0


def test_fill_work_never_writes_through_a_link_already_there(tmp_path: Path) -> None:
    files = _files(tmp_path / "ada", {"data.csv": "student\n"})
    prepare_beside(files, tmp_path / "beside", root=tmp_path / "ada")
    victim = tmp_path / "victim"
    victim.write_text("host\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.csv").symlink_to(victim)
    assert fill_work(tmp_path / "beside", work, None) == 0
    assert victim.read_text() == "host\n" and (work / "data.csv").is_symlink()


def test_fill_work_without_a_beside_folder_copies_nothing(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    assert fill_work(tmp_path / "nothing", tmp_path / "work", None) == 0
    assert list((tmp_path / "work").iterdir()) == []


# ------------------------------------------------------------------ graded in the sandbox

# The softsign answer imports the helper (the kernel and the re-verification child both
# need it: the visible test runs in the kernel, the hidden one in the child) and reads the
# data file; a later cell rewrites the student's own copy of it.
_HELPERS = "import numpy as np\n\ndef magnitude(x):\n    return np.abs(x)\n"
_ANSWER = (
    "from helpers import magnitude\nONE = float(np.loadtxt('data/one.csv', delimiter=',')[0])\n\n"
    "def softsign(x):\n    return x / (ONE + magnitude(x))\n"
)
_PROBE = "import os\nprint(sorted(n for n in os.listdir('.') if not n.startswith('.')))\n"
_REWRITE = "with open('data/one.csv', 'w') as f:\n    f.write('7,7\\n')\n"
CLASS = {
    # both files there: full marks, nothing flagged
    "both": ({"helpers.py": _HELPERS, "data/one.csv": "1,2\n"}, _ANSWER),
    # the helper only as a link: not copied, so softsign fails in the kernel and the child (3 of 9 lost)
    "link": ({"data/one.csv": "1,2\n"}, _ANSWER),
    # a numpy.py beside a correct notebook: flagged, and never in the work dir (numpy still works)
    "shadow": ({"numpy.py": "raise SystemExit('shadowed')\n"}, None),
    # checks of her own named like the course's: not in the work dir, where the kernel would
    # import them before the course's; her notes are
    "own_checks": ({"tiny_checks.py": "def check_square(*args, **kwargs):\n    pass\n", "notes.txt": "n\n"}, None),
}


@pytest.fixture(scope="module")
def graded(tiny_course, tiny_solutions, tmp_path_factory):
    sources, releases = tiny_course
    answers = solution_answers(sources[STEM])
    root = tmp_path_factory.mktemp("beside")
    (root / "elsewhere.py").write_text(_HELPERS)
    for student, (files, answer) in CLASS.items():
        folder = root / "class" / student
        _files(folder, files)
        nb = copy.deepcopy(releases[STEM])
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers:
                cell.source = answer if gid == "softsign" and answer else answers[gid]
        idx = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "test_softsign")
        if answer:
            nb.cells.insert(idx + 1, nbformat.v4.new_code_cell(_REWRITE))
        else:  # a first cell that says whether the shadowing file is in the kernel's cwd
            nb.cells.insert(0, nbformat.v4.new_code_cell(_PROBE))
        for cell in nb.cells:
            cell.pop("id", None)
        nb.nbformat_minor = 4
        nbformat.write(nb, str(folder / f"{STEM}.ipynb"))
    (root / "class" / "link" / "helpers.py").symlink_to(root / "elsewhere.py")
    run = tinycourse.grade(root / "class", root / "run", tiny_solutions)
    return {r.student: r for r in run.results if r.assignment == STEM}, root


@pytest.mark.slow
def test_copies_reach_the_kernel_and_the_reverification_child(graded) -> None:
    result = graded[0]["both"]
    assert (result.status, result.score, result.evidence) == (Status.GRADED, 9.0, []), [e.note for e in result.exercises]
    softsign = next(e for e in result.exercises if e.name == "softsign")
    assert softsign.verified is True  # the child imported helpers and read the data
    # the kernel did too: the answer cell and its visible test ran without an error
    assert result.notebook is not None
    assert (_cell_errors(result.notebook, "softsign"), _cell_errors(result.notebook, "test_softsign")) == ([], [])


@pytest.mark.slow
def test_the_students_own_copy_is_rewritten_never_the_original(graded) -> None:
    assert (graded[1] / "class" / "both" / "data" / "one.csv").read_text() == "1,2\n"


@pytest.mark.slow
def test_a_link_beside_the_notebook_is_not_there_when_graded(graded) -> None:
    result = graded[0]["link"]
    assert (result.status, result.score) == (Status.GRADED, 6.0), [e.note for e in result.exercises]
    assert result.notebook is not None and _cell_errors(result.notebook, "softsign") == ["ModuleNotFoundError"]
    assert any("helpers.py" in note and "symbolic link" in note for note in result.notes), result.notes


@pytest.mark.slow
def test_a_shadowing_numpy_is_flagged_and_not_run(graded) -> None:
    result = graded[0]["shadow"]
    assert result.status is Status.FLAGGED
    assert [(e.where, e.detail) for e in result.evidence] == [("file numpy.py", "shadows the numpy module")]
    # the kernel's cwd holds no numpy.py, and it imported the real numpy (the copy raises SystemExit)
    assert result.notebook is not None and _probed(result.notebook) == "[]\n"
    assert _cell_errors(result.notebook, "setup") == []


def _probed(nb: nbformat.NotebookNode) -> str:
    """What the probe cell printed: the files in the kernel's cwd."""
    probe = next(c for c in nb.cells if c.source == _PROBE)
    return "".join(o.get("text", "") for o in probe.outputs if o.output_type == "stream")


@pytest.mark.slow
def test_a_file_named_like_a_course_support_module_is_not_put_beside(graded) -> None:
    result = graded[0]["own_checks"]
    assert (result.status, result.score) == (Status.GRADED, 9.0), result.reason
    assert result.notebook is not None and _probed(result.notebook) == "['notes.txt']\n"
    assert any(n.startswith("tiny_checks.py: not put beside the notebook") for n in result.notes), result.notes


@pytest.mark.slow
def test_grading_again_with_force_gives_the_same_results(graded, tiny_solutions) -> None:
    results, root = graded
    again = tinycourse.grade(root / "class", root / "run", tiny_solutions, force=True)
    rerun = {r.student: r for r in again.results if r.assignment == STEM}
    assert {s: (r.status, r.score) for s, r in rerun.items()} == {s: (r.status, r.score) for s, r in results.items()}
    assert not any(p.name.endswith("__beside") for p in (root / "run").rglob("*__beside"))


def test_the_instructors_files_go_over_the_students_and_keep_their_names(tmp_path: Path) -> None:
    """nbgrader autograde copies source/<assignment>/'s files over the submission: the
    student's same-named file is left out; the instructor's helper module is not subject to
    the shadowing rule (it is the course's own), but an unsafe path still is."""
    student, source, into = tmp_path / "student", tmp_path / "source", tmp_path / "beside"
    student.mkdir()
    source.mkdir()
    (student / "expected.json").write_text("forged")
    (student / "mine.csv").write_text("1,2")
    (source / "expected.json").write_text("true")
    (source / "json.py").write_text("# the instructor's")  # shadows a module: a student's would be left out
    files = [(student / "expected.json", P("expected.json")), (student / "mine.csv", P("mine.csv"))]
    provided = [(source / "expected.json", P("expected.json")), (source / "json.py", P("json.py")),
                (source / "expected.json", P("../escape.json"))]  # fmt: skip
    copy = prepare_beside(files, into, root=student, provided=provided)
    assert (into / "expected.json").read_text() == "true"
    assert (into / "json.py").read_text() == "# the instructor's"
    assert (into / "mine.csv").read_text() == "1,2"
    assert sorted(copy.copied) == [P("expected.json"), P("json.py"), P("mine.csv")]
    assert sorted(copy.left_out) == [(P("../escape.json"), LeftOut.UNSAFE_PATH), (P("expected.json"), LeftOut.REPLACED)]
    assert not (tmp_path / "escape.json").exists()
