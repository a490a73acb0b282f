"""dask.distributed as the grading engine (``autograder.cluster``, ``autograder.remote``):
same results as local threads, no submission lost or merged twice when a worker dies,
a coordinator killed mid-run resumes from the ledger, mismatched workers and plain TCP
to another host are refused."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

import tinycourse  # noqa: E402
from tinycourse import FAST_LIMITS, SUPPORT, make_class  # noqa: E402

from autograder import api  # noqa: E402
from autograder.api import GradeOptions, Limits, grade_class  # noqa: E402
from autograder.cli import main  # noqa: E402
from autograder.cluster import TlsFiles, admit, check_address, parse_local  # noqa: E402
from autograder.export import export_grades  # noqa: E402
from autograder.gradebook import Ledger  # noqa: E402
from autograder.intake import Job  # noqa: E402
from autograder.limits import Protections  # noqa: E402
from autograder.remote import WORKER_DIR_ENV, HostReport, code_digest  # noqa: E402
from autograder.sample import RECIPES  # noqa: E402

pytestmark = pytest.mark.distributed
REPO = Path(__file__).resolve().parents[2]
SECRET = "424242"  # one run secret for runs that must agree (it draws the hidden cases)


@pytest.fixture(autouse=True)
def _worker_dirs(tmp_path, monkeypatch) -> None:
    """Workers keep their scratch under the test's folder (a killed one cannot clean up)."""
    monkeypatch.setenv(WORKER_DIR_ENV, str(tmp_path / "workers"))


def _options(**kw) -> GradeOptions:
    return GradeOptions(limits=Limits(**FAST_LIMITS), support=SUPPORT, **kw)


def _run_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / ".secret-seed").write_text(SECRET)
    return path


def _count_merges(monkeypatch) -> list[tuple[str, str]]:
    """Every merge the coordinator makes, in order (the real merge still runs)."""
    merged: list[tuple[str, str]] = []
    real = api.merge_result

    def counting(result, **kw):
        merged.append((result.student, result.assignment))
        return real(result, **kw)

    monkeypatch.setattr(api, "merge_result", counting)
    return merged


# ---------------------------------------------------------------------------------------
# In memory: address checks and admission.


def test_plain_tcp_to_another_host_is_refused_without_insecure(tmp_path) -> None:
    with pytest.raises(ValueError, match="--insecure"):
        check_address("tcp://10.1.2.3:8786", insecure=False, tls=None)
    with pytest.raises(ValueError, match="--insecure"):
        check_address("grader.example.org:8786", insecure=False, tls=None)  # no scheme means tcp
    check_address("tcp://10.1.2.3:8786", insecure=True, tls=None)
    for loopback in ("tcp://127.0.0.1:8786", "tcp://localhost:8786", "tcp://[::1]:8786", "127.0.0.2:1"):
        check_address(loopback, insecure=False, tls=None)
    with pytest.raises(ValueError, match="needs --tls-ca"):
        check_address("tls://10.1.2.3:8786", insecure=False, tls=None)
    with pytest.raises(ValueError, match="no such file"):
        check_address("tls://10.1.2.3:8786", insecure=False, tls=TlsFiles(tmp_path / "ca", tmp_path / "c", tmp_path / "k"))
    with pytest.raises(ValueError, match="not supported"):
        check_address("ws://10.1.2.3:8786", insecure=True, tls=None)
    assert parse_local("local:3") == 3
    for bad in ("local:0", "local:", "remote:2", "local:x"):
        with pytest.raises(ValueError, match="local:N"):
            parse_local(bad)


def test_cli_refuses_plain_tcp_before_doing_anything(tmp_path, capsys) -> None:
    code = main(["grade", str(tmp_path / "subs"), "--scheduler", "tcp://10.9.8.7:8786", "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert "--insecure" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before the run folder is made
    code = main(["grade", str(tmp_path / "subs"), "--scheduler", "tls://10.9.8.7:8786", "--tls-ca", str(tmp_path / "ca")])
    assert code == 2 and "all three" in capsys.readouterr().err


def test_admit_refuses_a_worker_whose_code_differs() -> None:
    walls = Protections(namespaces=True, unprivileged_user=True, rlimits=True)
    mine = HostReport("tcp://10.0.0.2:4000", "gpu7", "a" * 64, walls)
    assert admit(mine, mine.worker, coordinator="a" * 64, resources={"sandbox": 2}).refused == ""
    other = HostReport("tcp://10.0.0.3:4000", "gpu8", "b" * 64, walls)
    refused = admit(other, other.worker, coordinator="a" * 64, resources={"sandbox": 2})
    assert "b" * 64 in refused.refused and "a" * 64 in refused.refused
    assert refused.line().startswith("worker tcp://10.0.0.3:4000 (gpu8): REFUSED")
    no_slot = admit(mine, mine.worker, coordinator="a" * 64, resources={})
    assert "--resources sandbox=N" in no_slot.refused
    broken = admit(ModuleNotFoundError("autograder.remote"), "tcp://x:1", coordinator="a" * 64, resources={"sandbox": 1})
    assert "could not report" in broken.refused


def test_a_result_delivered_twice_is_merged_once(tiny_course) -> None:
    from autograder.pipeline import SubmissionResult, grade_jobs
    from autograder.results import Status

    first = SubmissionResult("ann", "a1", Status.GRADED, score=1.0, digest="d1")
    again = SubmissionResult("ann", "a1", Status.GRADED, score=1.0, digest="d1")  # a retried task's copy
    other = SubmissionResult("bob", "a1", Status.GRADED, score=2.0, digest="d2")
    merged: list[str] = []
    jobs = [Job("ann", "a1", None), Job("bob", "a1", None)]
    results = grade_jobs(jobs, None, workers=1, on_result=lambda r: merged.append(r.student),
                         engine=lambda _jobs, _ctx: iter([first, again, other]))  # fmt: skip
    assert merged == ["ann", "bob"]
    assert [r.student for r in results] == ["ann", "bob"]


def test_worker_writes_only_inside_its_task_folder(tmp_path) -> None:
    from autograder.remote import HandedFile, _write

    folder = tmp_path / "task"
    folder.mkdir()
    for rel in ("../escape.py", "/etc/evil", "a/../../b", "", ".", "x\0y"):
        with pytest.raises(ValueError, match="unsafe relative path"):
            _write(folder, HandedFile(rel, b"x", 1))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["task"]
    written = _write(folder, HandedFile("sub/data.csv", b"1,2\n", 4))
    assert written == folder / "sub" / "data.csv" and written.read_bytes() == b"1,2\n"
    big = _write(folder, HandedFile("big.bin", None, 10**9))  # too large to carry: only its size
    assert big.stat().st_size == 10**9 and big.stat().st_blocks * 512 < 10**6


def test_a_task_carries_the_instructors_files_apart_from_the_students(tmp_path) -> None:
    """``Job.provided`` (grade --course: source/<assignment>/'s files) travels with the task,
    each with its path relative to the notebook, never mixed into the student's files."""
    from pathlib import PurePosixPath
    from types import SimpleNamespace

    from autograder.intake import Job
    from autograder.remote import HandedFile, task_for

    student, source = tmp_path / "alice", tmp_path / "source"
    (source / "data").mkdir(parents=True)
    student.mkdir()
    (student / "nb.ipynb").write_text("{}")
    (student / "expected.json").write_text("forged")
    (source / "data" / "expected.json").write_text("true")
    job = Job("alice", "week1", student / "nb.ipynb", beside=(student / "expected.json",), folder=student,
              alongside=((student / "expected.json", PurePosixPath("expected.json")),),
              provided=((source / "data" / "expected.json", PurePosixPath("data/expected.json")),))  # fmt: skip
    ctx = SimpleNamespace(seed_for=lambda j: 1, digest=lambda j: "d", limits=None, drop_demo=True, verify=True)
    task = task_for(job, ctx, code="c")
    assert task.provided == (HandedFile("data/expected.json", b"true", 4),)
    assert task.beside == (HandedFile("expected.json", b"forged", 6),) and task.alongside == ((0, "expected.json"),)


# ---------------------------------------------------------------------------------------
# Real clusters on this machine.


def _exported(run_dir: Path) -> tuple[str, str]:
    result = export_grades(run_dir=run_dir)
    return result.grades_csv.read_text(), result.submissions_csv.read_text()


@pytest.mark.slow
def test_local_cluster_equals_local_threads(tiny_course, tiny_solutions, tmp_path) -> None:
    submissions = make_class(tiny_course, tmp_path / "class", RECIPES)
    threads = grade_class(submissions=submissions, run_dir=_run_dir(tmp_path / "threads"), solutions_dir=tiny_solutions,
                          options=_options(workers=2))  # fmt: skip
    cluster = grade_class(submissions=submissions, run_dir=_run_dir(tmp_path / "cluster"), solutions_dir=tiny_solutions,
                          options=_options(cluster="local:2"))  # fmt: skip
    assert [(r.student, r.status, r.score) for r in cluster.results] == [(r.student, r.status, r.score) for r in threads.results]
    grades, per_exercise = _exported(tmp_path / "cluster")
    assert (grades, per_exercise) == _exported(tmp_path / "threads")
    assert len(list(csv.DictReader(per_exercise.splitlines()))) > len(RECIPES)  # not two empty files
    # Both workers are listed with their protections and what they graded.
    accepted = [h for h in cluster.hosts if not h.refused]
    assert len(accepted) == 2 and sum(h.graded for h in accepted) == sum(1 for r in cluster.results if r.status.value != "missing")
    summary = (tmp_path / "cluster" / "protections.txt").read_text()
    assert summary.startswith("coordinator: ") and all(f"worker {h.worker}" in summary for h in accepted)


@pytest.fixture()
def local_cluster():
    """A LocalCluster the test controls (two workers, one sandbox slot each)."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, resources={"sandbox": 1},
                               host="127.0.0.1", dashboard_address=":0", memory_limit=0)  # fmt: skip
    client = Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


@pytest.mark.slow
def test_worker_killed_mid_run_loses_nothing_and_merges_each_once(local_cluster, tiny_course, tiny_solutions, tmp_path, monkeypatch) -> None:
    cluster, client = local_cluster
    recipes = ("perfect", "partial", "messy", "patcher", "copycat", "renamed", "crasher", "equalizer")
    submissions = make_class(tiny_course, tmp_path / "class", recipes)
    merged = _count_merges(monkeypatch)
    killed: list[tuple[int, int]] = []  # (pid, tasks it was running)

    def kill_one(result) -> None:
        if killed:
            return
        busy = {w: len(keys) for w, keys in client.processing().items() if keys}
        if not busy:
            return  # nothing running any more: nothing to lose
        victim = next(iter(busy))
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        killed.append((pid, busy[victim]))

    run = grade_class(submissions=submissions, run_dir=_run_dir(tmp_path / "run"), solutions_dir=tiny_solutions,
                      options=_options(scheduler=cluster.scheduler_address), progress=kill_one)  # fmt: skip
    assert killed and killed[0][1] >= 1, "no worker was busy after the first result: the test did not kill mid-run"
    expected = sorted((r, tinycourse.STEM) for r in recipes)
    assert sorted(merged) == expected  # every submission merged, none twice
    assert not [r for r in run.results if r.retry], [r.reason for r in run.results if r.retry]
    threads = grade_class(submissions=submissions, run_dir=_run_dir(tmp_path / "threads"), solutions_dir=tiny_solutions,
                          options=_options(workers=2))  # fmt: skip
    assert [(r.student, r.status, r.score) for r in run.results] == [(r.student, r.status, r.score) for r in threads.results]


_COORDINATOR = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {fixtures!r})
    from tinycourse import FAST_LIMITS, SUPPORT
    from autograder.api import GradeOptions, Limits, grade_class
    grade_class(submissions=Path({subs!r}), run_dir=Path({run!r}), solutions_dir=Path({solutions!r}),
                options=GradeOptions(limits=Limits(**FAST_LIMITS), support=SUPPORT, cluster="local:2"))
    """
)


@pytest.mark.slow
def test_coordinator_killed_mid_run_resumes_from_the_ledger(tiny_course, tiny_solutions, tmp_path, monkeypatch) -> None:
    recipes = ("perfect", "partial", "messy", "patcher", "copycat", "renamed", "equalizer", "blank")
    submissions = make_class(tiny_course, tmp_path / "class", recipes)
    run_dir = _run_dir(tmp_path / "run")
    script = _COORDINATOR.format(fixtures=str(tinycourse.FIXTURES), subs=str(submissions), run=str(run_dir), solutions=str(tiny_solutions))
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    ledger = Ledger(run_dir)
    try:
        deadline = time.monotonic() + 240
        while len(ledger.all()) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the coordinator, its LocalCluster and sandboxes
        proc.wait()
    kept = {(r.student, r.assignment) for r in ledger.all() if not r.retry}
    assert 3 <= len(kept) < len(recipes), f"killed too late or too early: {len(kept)} of {len(recipes)} graded"

    merged = _count_merges(monkeypatch)
    run = grade_class(submissions=submissions, run_dir=run_dir, solutions_dir=tiny_solutions, options=_options(cluster="local:2"))
    everything = {(r, tinycourse.STEM) for r in recipes}
    assert run.resumed == len(kept)
    assert sorted(merged) == sorted(everything - kept)  # the rest graded, each once; nothing graded again
    assert {(r.student, r.assignment) for r in run.results} == everything


def _mismatched_worker(tmp_path: Path, scheduler: str) -> subprocess.Popen:
    """A `dask worker` running a copy of this repository's code with one change."""
    copy = tmp_path / "other-version"
    for package in ("autograder", "course_lib"):
        shutil.copytree(REPO / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "autograder" / "remote.py").open("a") as f:
        f.write("\n# a different version\n")
    env = {**os.environ, "PYTHONPATH": str(copy)}
    dask_cli = Path(sys.executable).parent / "dask"
    return subprocess.Popen([str(dask_cli), "worker", scheduler, "--nthreads", "1", "--resources", "sandbox=1",
                             "--no-dashboard", "--name", "other-version"], env=env, cwd=copy,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.slow
def test_worker_with_other_code_is_refused_and_grades_nothing(tiny_course, tiny_solutions, tmp_path) -> None:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, resources={"sandbox": 1},
                           host="127.0.0.1", dashboard_address=":0", memory_limit=0)  # fmt: skip
    worker = _mismatched_worker(tmp_path, cluster.scheduler_address)
    try:
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
            theirs = client.run(code_digest, workers=[a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "other-version"])
        assert list(theirs.values())[0] != code_digest()  # the copy really is another version
        submissions = make_class(tiny_course, tmp_path / "class", ("perfect", "partial", "messy"))
        run = grade_class(submissions=submissions, run_dir=_run_dir(tmp_path / "run"), solutions_dir=tiny_solutions,
                          options=_options(scheduler=cluster.scheduler_address))  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        cluster.close()
    refused = [h for h in run.hosts if h.refused]
    accepted = [h for h in run.hosts if not h.refused]
    assert len(refused) == 1 and refused[0].graded == 0
    assert code_digest() in refused[0].refused and list(theirs.values())[0] in refused[0].refused
    assert len(accepted) == 1 and accepted[0].graded == 3
    assert "REFUSED" in (tmp_path / "run" / "protections.txt").read_text()
    scores = {r.student: r.score for r in run.results}
    assert scores["perfect"] == 9.0 and scores["partial"] == 6.0  # as test_runs grades them with threads
