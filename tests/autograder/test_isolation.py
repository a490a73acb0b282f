"""Security round 2: one submission cannot touch another, the host, or the grader.

Each test performs the attack from a student cell and asserts the safe outcome; where
an honest submission is graded at the same time, it must still get its output."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.execute import ExecutionResult, prepare_scratch, run_notebook
from autograder.limits import Limits
from autograder.sandbox import detect_protections

pytestmark = pytest.mark.slow
PROTECTIONS = detect_protections()
needs_full = pytest.mark.skipif(bool(PROTECTIONS.missing), reason=PROTECTIONS.summary)
MiB = 1024**2
UID_RANGE = range(2_000_000_000, 2_000_004_096)
HONEST = ["import numpy as np\nprint('honest', int(np.arange(5).sum()))"]


def _run(tmp_path: Path, name: str, cells: list[str], **limits: float) -> ExecutionResult:
    nb = new_notebook(cells=[new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    scratch = tmp_path / name
    prepare_scratch(scratch, support=[], protections=PROTECTIONS)
    lim = Limits(**{"cell_timeout": 30.0, "notebook_budget": 60.0, "memory_bytes": 2 * 1024**3, **limits})
    return run_notebook(nb, scratch=scratch, hide=[], limits=lim, protections=PROTECTIONS)


def _text(cell) -> str:
    return "".join(
        str(o.get("text", "")) + str(o.get("evalue", "")) + str(o.get("ename", "")) for o in cell.outputs
    )


def _assert_honest(result: ExecutionResult) -> None:
    assert result.completed, result.error
    assert _text(result.notebook.cells[0]).strip() == "honest 10"


def _in_thread(fn, *args, **kwargs) -> tuple[threading.Thread, list]:
    box: list = []
    thread = threading.Thread(target=lambda: box.append(fn(*args, **kwargs)))
    thread.start()
    return thread, box


# ---------------------------------------------------------------- item 5: limits per submission

HOLD_PROCESSES = (
    "import subprocess, time\nprocs = []\n"
    "try:\n    for _ in range(10000): procs.append(subprocess.Popen(['sleep', '60']))\n"
    "except OSError as e: print('stopped after', len(procs), type(e).__name__, flush=True)\n"
    "time.sleep(15)\nfor p in procs: p.kill(); p.wait()"
)


@needs_full
def test_a_submission_holding_its_processes_does_not_stop_another(tmp_path: Path) -> None:
    # Both run under RLIMIT_NPROC 64; with one uid for every sandbox the hog's 64
    # processes left the honest kernel unable to start ("Kernel died before replying").
    hog_thread, hog = _in_thread(_run, tmp_path, "hog", [HOLD_PROCESSES], processes=64, tree_processes=200)
    time.sleep(6)  # the hog has started its kernel and holds its processes
    honest = _run(tmp_path, "honest", HONEST, processes=64, tree_processes=200)
    hog_thread.join()
    _assert_honest(honest)
    out = _text(hog[0].notebook.cells[0])
    assert "stopped after" in out and "BlockingIOError" in out, out
    assert int(out.split("stopped after")[1].split()[0]) < 64


@needs_full
def test_the_process_tree_shares_one_pid_limit(tmp_path: Path) -> None:
    # RLIMIT_NPROC high, the cgroup's pids.max low: the cgroup is what stops the fork loop.
    result = _run(tmp_path, "pids", [HOLD_PROCESSES.replace("time.sleep(15)", "")], processes=5000, tree_processes=40)
    out = _text(result.notebook.cells[0])
    assert "stopped after" in out, out
    assert int(out.split("stopped after")[1].split()[0]) < 40


FORKED_MEMORY = """
import os
children = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        block = b'\\x01' * (600 * 1024**2)  # written, so really resident
        import time; time.sleep(3)
        os._exit(0)
    children.append(pid)
codes = [os.waitpid(pid, 0)[1] for pid in children]
print('survived', sum(os.WIFEXITED(c) and os.WEXITSTATUS(c) == 0 for c in codes))
print('killed', sum(os.WIFSIGNALED(c) for c in codes))
"""


@needs_full
def test_forked_children_share_one_memory_limit(tmp_path: Path) -> None:
    # 6 x 600 MiB, each under the 1.5 GiB per-process limit; the tree may hold 1 GiB,
    # so at most one child can have its 600 MiB resident at a time.
    honest_thread, honest = _in_thread(_run, tmp_path, "honest", HONEST)
    result = _run(tmp_path, "forker", [FORKED_MEMORY], memory_bytes=int(1.5 * 1024**3), tree_memory_bytes=1024**3)
    honest_thread.join()
    out = _text(result.notebook.cells[0])
    survived = int(out.split("survived")[1].split()[0])
    killed = int(out.split("killed")[1].split()[0])
    assert killed >= 4 and survived + killed == 6, out
    _assert_honest(honest[0])


@needs_full
def test_scratch_and_temp_dirs_are_capped_as_a_whole(tmp_path: Path) -> None:
    # Each file stays under the 16 MiB per-file limit; together they would be 320 MiB.
    cells = [
        "import os\nwritten = 0\ntry:\n    for i in range(20):\n"
        "        with open(f'f{i}', 'wb') as f: f.write(b'x' * (15 * 1024**2))\n        written += 1\n"
        "except OSError as e: print(f'work {written} {e.strerror}')",
        *(
            f"try:\n    open('{path}/big', 'wb').write(b'x' * (15 * 1024**2))\n"
            f"except OSError as e: print('{name} ' + e.strerror)"
            for path, name in (("/dev/shm", "shm"), ("/tmp", "tmp"), ("/var/tmp", "vartmp"))
        ),
    ]
    result = _run(tmp_path, "filler", cells, file_bytes=16 * MiB, scratch_bytes=64 * MiB, tmp_bytes=8 * MiB)
    # (IPython's own history database also finds the disk full: its thread may print a
    # warning at any moment, so each line above is printed in one write.)
    out = [_text(c) for c in result.notebook.cells]
    assert "No space left" in out[0], out[0]
    assert int(out[0].split("work ")[1].split()[0]) <= 4  # 64 MiB / 15 MiB
    for cell, name in zip(out[1:], ("shm", "tmp", "vartmp"), strict=True):
        assert f"{name} No space left" in cell, cell
    # Nothing reached the host's disk: the work directory there stayed empty.
    assert not any((tmp_path / "filler" / "work").iterdir())


# ---------------------------------------------------------------- item 6: nothing persists

LEAVE = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.shmat.restype = ctypes.c_void_p
seg = libc.shmget(0x5eed, 4096, 0o1666)  # IPC_CREAT | 0666
ctypes.memmove(libc.shmat(seg, None, 0), b'left-by-A', 9)
libc.mq_open.restype = ctypes.c_int
mq = libc.mq_open(b'/left-by-a', os.O_CREAT | os.O_RDWR, 0o666, None)
libc.mq_send(mq, b'left-by-A', 9, 0)
key = libc.syscall(248, b'user', b'left-by-a', b'A', 1, -4)  # add_key into the user keyring
skey = libc.syscall(248, b'user', b'left-by-a-session', b'A', 1, -3)  # and the session keyring
print('uid', os.getuid(), 'shm', seg >= 0, 'mq', mq >= 0, 'key', key > 0, 'skey', skey > 0)
"""

READ = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
found = []
if libc.shmget(0x5eed, 0, 0) >= 0: found.append('shm')
if libc.mq_open(b'/left-by-a', os.O_RDONLY) >= 0: found.append('mq')
for ring in (-4, -3, -5):  # user, session, user-session keyrings
    if libc.syscall(250, 10, ring, b'user', b'left-by-a', 0) > 0: found.append(f'key{ring}')  # KEYCTL_SEARCH
print('uid', os.getuid(), 'found', found)
"""


def _host_ipcs() -> str:
    return subprocess.run(["ipcs", "-m", "-q"], capture_output=True, text=True, check=True).stdout


def _key_visible_to(uid: int, description: bytes) -> bool:
    """As ``uid`` (in a forked child), search its user keyring for ``description``."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        found = 2
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            found = int(libc.syscall(250, 10, -4, b"user", description, 0) > 0)
        finally:
            os._exit(found)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), "the probe child failed"
    return code == 1


@needs_full
def test_nothing_a_sandbox_leaves_reaches_the_next_or_the_host(tmp_path: Path) -> None:
    before = _host_ipcs()
    left = _text(_run(tmp_path, "a", [LEAVE]).notebook.cells[0])
    assert "shm True mq True key True skey True" in left, left  # the writes themselves worked
    read = _text(_run(tmp_path, "b", [READ]).notebook.cells[0])
    uid_a, uid_b = int(left.split()[1]), int(read.split()[1])
    assert uid_a in UID_RANGE and uid_b in UID_RANGE
    assert read.strip().endswith("found []"), read
    # The host keeps nothing: no new SysV/POSIX objects, and A's uid owns no key any more
    # (a uid's user keyring outlives its processes, so this is the case that matters).
    assert _host_ipcs() == before
    assert not _key_visible_to(uid_a, b"left-by-a")
    assert not list(Path("/dev/shm").glob("*left-by*")) and not Path("/dev/mqueue/left-by-a").exists()


@needs_full
def test_a_reused_uid_finds_its_keyring_empty(tmp_path: Path) -> None:
    # The lease hands out the lowest free uid, so back-to-back sandboxes usually share
    # one; whether they do or not, the second must find nothing.
    first = _text(_run(tmp_path, "a", [LEAVE]).notebook.cells[0])
    second = _text(_run(tmp_path, "b", [READ]).notebook.cells[0])
    print("uids", first.split()[1], second.split()[1])
    assert second.strip().endswith("found []"), second


def test_a_killed_wardens_leftovers_are_cleared_by_the_next_lease(tmp_path: Path) -> None:
    from autograder import cgroups
    from autograder.warden import UidLease

    if not (PROTECTIONS.own_uid and PROTECTIONS.cgroup):
        pytest.skip(PROTECTIONS.summary)
    lease = UidLease.acquire(tmp_path)
    group = cgroups.create(f"autograder-test-{os.getpid()}", memory_bytes=256 * MiB, processes=16)
    lease.record(group.paths)
    stray = subprocess.Popen(["sleep", "60"])
    for procs in group.procs_files():
        procs.write_text(str(stray.pid))
    os.close(lease.fd)  # as if the warden had been SIGKILLed: lock gone, nothing cleaned
    again = UidLease.acquire(tmp_path)
    try:
        assert again.uid == lease.uid
        assert stray.wait(timeout=5) == -9  # the stray process was killed ...
        assert not any(p.exists() for p in group.paths)  # ... and the cgroup removed
    finally:
        again.release()


# ---------------------------------------------------------------- item 7: the grader's own processes

UPDATE_FLOOD = (
    "from IPython.display import display, update_display\n"
    "for i in range(30): display({'text/plain': 'small'}, raw=True, display_id=f'd{i}')\n"
    "for i in range(30): update_display({'text/plain': 'u' * 1024**2}, raw=True, display_id=f'd{i}')"
)


@needs_full
def test_update_display_data_cannot_grow_the_stored_notebook(tmp_path: Path) -> None:
    result = _run(tmp_path, "updates", [UPDATE_FLOOD, "assert False, 'a failing test after the flood'"])
    stored = len(nbformat.writes(result.notebook))
    print(f"stored notebook after a 30 MB update_display_data flood: {stored} bytes")
    assert stored < 2 * Limits().notebook_output_bytes
    assert "output cut" in _text(result.notebook.cells[0])
    # Past the notebook cap, a failing cell still shows its error (nbgrader scores by it).
    assert any(o.output_type == "error" and o.ename == "AssertionError" for o in result.notebook.cells[1].outputs)


COMM_FLOOD = (
    "from comm import create_comm\n"
    "c = create_comm(target_name='jupyter.widget', data={'state': {'_model_module': '@jupyter-widgets/controls',"
    " '_model_name': 'IntSliderModel'}})\n"
    "for i in range(300): c.send({'state': {f'k{i}': 'w' * 1024**2}})\n"
    "print('sent')"
)


def _watch_helper_rss(stop: threading.Event, peak: list[int], scratch: Path) -> None:
    """From the host: the largest VmRSS of this test's `autograder.jail.execute` process (its
    command line names the test's scratch; other tests may be grading at the same time)."""
    from autograder.jail.request import Helper

    mark, helper = str(scratch).encode(), Helper.EXECUTE.module.encode()
    while not stop.is_set():
        for proc in Path("/proc").iterdir():
            try:
                cmdline = (proc / "cmdline").read_bytes()
                if helper not in cmdline or mark not in cmdline:
                    continue
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        peak[0] = max(peak[0], int(line.split()[1]) * 1024)
            except (OSError, ValueError):
                continue
        time.sleep(0.05)


@needs_full
def test_comm_flood_cannot_grow_the_helper(tmp_path: Path) -> None:
    stop, peak = threading.Event(), [0]
    watcher = threading.Thread(target=_watch_helper_rss, args=(stop, peak, tmp_path))
    watcher.start()
    try:
        result = _run(tmp_path, "comms", [COMM_FLOOD])
    finally:
        stop.set()
        watcher.join()
    print(f"helper RSS under a 300 MB comm flood: {peak[0] / MiB:.0f} MiB seen from the host, "
          f"{result.helper_peak_bytes / MiB:.0f} MiB peak reported by the helper")
    assert result.completed, result.error
    assert "sent" in _text(result.notebook.cells[0])
    # Bounded by the receive queue, not by the flood: 92-146 MiB on a quiet machine, up to
    # 267 MiB while the whole suite runs (freed message buffers stay in the RSS high-water
    # mark). Storing the widget state, as before, took 499 MiB for this 300 MB flood.
    assert 0 < peak[0] < 400 * MiB
    assert len(nbformat.writes(result.notebook)) < 64 * 1024


# ---------------------------------------------------------------- item 10: clean-up never fails

DEEP_TREE = r"""
import os
fd = os.open('.', os.O_RDONLY)
for depth in range(3000):
    os.mkdir('d', dir_fd=fd)
    sub = os.open('d', os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = sub
    if depth % 750 == 0:
        with open(os.open('odd\nname', os.O_WRONLY | os.O_CREAT, 0o000, dir_fd=fd), 'w') as f: f.write('x')
        os.mkfifo('fifo', dir_fd=fd)
        os.symlink(OUTSIDE, 'link', dir_fd=fd)  # must be removed, never followed
        os.mkdir('locked', 0o000, dir_fd=fd)
os.chmod(f'/proc/self/fd/{fd}', 0o500)  # the deepest directory read-only
print('built', depth + 1)
"""


def _as_student(source: str, cwd: Path) -> str:
    """Run student code as nobody (when root) in ``cwd``: a forked child that drops
    privileges and runs it, as a kernel would (the interpreter may sit where nobody
    cannot exec it, e.g. under /root)."""
    read, write = os.pipe()
    if os.geteuid() == 0:
        os.chown(cwd, 65534, 65534)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.close(read)
            os.chdir(cwd)  # before the drop: pytest's tmp_path parents are root-only
            os.dup2(write, 1)
            # pytest's capture (and xdist's) may have replaced sys.stdout with its own file.
            sys.stdout = os.fdopen(1, "w", closefd=False)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            exec(source, {})
            code = 0
        except BaseException as exc:
            print(repr(exc))
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as out:
        text = out.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text


def test_remove_tree_removes_a_3000_deep_student_tree(tmp_path: Path) -> None:
    from autograder.sandbox import remove_tree

    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious").write_text("still here")
    tree = tmp_path / "scratch"
    tree.mkdir()
    os.chmod(tmp_path, 0o755)
    out = _as_student(DEEP_TREE.replace("OUTSIDE", repr(str(keep))), tree)
    assert out.strip() == "built 3000"
    with pytest.raises(RecursionError):  # the failure this replaces
        import shutil

        shutil.rmtree(tree)
    remove_tree(tree)
    assert not tree.exists()
    assert (keep / "precious").read_text() == "still here"


def test_prepare_scratch_clears_a_deep_tree_left_behind(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    prepare_scratch(scratch, support=[], protections=PROTECTIONS)
    work = scratch / "work"
    _as_student(DEEP_TREE.replace("OUTSIDE", repr(str(tmp_path))), work)
    prepare_scratch(scratch, support=[], protections=PROTECTIONS)
    assert sorted(p.name for p in scratch.iterdir()) == ["lib", "private", "verify", "work"]
    assert not any(work.iterdir())


def test_remove_tree_never_raises_and_never_follows_links(tmp_path: Path) -> None:
    from autograder.sandbox import remove_tree

    target = tmp_path / "target"
    target.mkdir()
    (target / "file").write_text("kept")
    link = tmp_path / "link"
    link.symlink_to(target)
    remove_tree(link)  # the link goes, what it points to stays
    assert not link.is_symlink() and (target / "file").read_text() == "kept"
    remove_tree(tmp_path / "never-existed")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    remove_tree(fifo)
    assert not fifo.exists()


@needs_full
def test_a_deep_tree_made_in_the_sandbox_never_reaches_the_host(tmp_path: Path) -> None:
    result = _run(tmp_path, "deep", [DEEP_TREE.replace("OUTSIDE", repr("/etc"))])
    assert "built 3000" in _text(result.notebook.cells[0])
    assert not any((tmp_path / "deep" / "work").iterdir())  # it lived in the jail's tmpfs


# ---------------------------------------------------------------- in memory: caps, summary, imports


def test_every_message_kind_is_charged_and_a_first_error_survives() -> None:
    from autograder.cap import Admit, OutputBudget

    budget = OutputBudget(per_cell=100, per_notebook=150)
    assert budget.charge(0, "update_display_data", 60) is Admit.KEEP
    assert budget.charge(0, "clear_output", 30) is Admit.KEEP  # 90 <= 100
    assert budget.charge(0, "display_data", 20) is Admit.DROP  # 110 > 100 in the cell
    assert budget.first_cut(0) and not budget.first_cut(0)
    assert "100 bytes" in budget.notice(0)
    assert budget.charge(1, "stream", 50) is Admit.KEEP  # 140 <= 150 in the notebook
    assert budget.charge(1, "execute_result", 20) is Admit.DROP  # 160 > 150 in the notebook
    assert "notebook" in budget.notice(1)
    assert budget.charge(1, "error", 10**6) is Admit.SHORT_ERROR
    assert budget.charge(1, "error", 10) is Admit.DROP  # one kept error per cell is enough
    assert budget.charge(2, "status", 10**9) is Admit.KEEP  # control messages always pass
    assert budget.charge(2, "comm_msg", 1) is Admit.DROP  # comms are never stored


def test_summary_names_each_missing_protection() -> None:
    from autograder.limits import Protections

    bare = Protections(namespaces=True, unprivileged_user=True, rlimits=True)
    text = bare.summary
    assert text.startswith("WARNING")
    for gap in ("IPC namespace", "per-sandbox uid", "no cgroup", "tmpfs scratch", "keyring"):
        assert gap in text, gap
    full = Protections(True, True, True, True, True, "v1", True, True)
    assert not full.missing and "all protections on" in full.summary and "cgroup v1" in full.summary


def test_code_dirs_does_not_import_course_lib() -> None:
    probe = (
        "import sys; from autograder.sandbox import _code_dirs; d = _code_dirs();"
        "print('course_lib' in sys.modules, len(d))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False" and int(out[1]) >= 2


def test_print_the_protections_summary() -> None:
    print(PROTECTIONS.summary)
    assert PROTECTIONS.summary


def test_sandbox_argv_puts_the_warden_in_front_only_when_needed() -> None:
    from autograder.jail.request import Helper, JailRequest
    from autograder.limits import Protections
    from autograder.sandbox import sandbox_argv

    full = Protections(True, True, True, True, True, "v1", True, True)
    request = JailRequest(Helper.EXECUTE, Path("/s"), Limits(tree_processes=7), full)
    argv = sandbox_argv(request)
    assert argv[1:3] == ["-m", "autograder.warden"] and "--ipc" in argv
    assert '"tree_processes": 7' in argv[3]  # the helper's limits, for the cgroup
    assert argv[-3:] == ["-m", "autograder.jail.execute", argv[3]]  # the same request for the helper
    bare = Protections(namespaces=False, unprivileged_user=False, rlimits=True)
    request = JailRequest(Helper.EXECUTE, Path("/s"), Limits(), bare)
    assert sandbox_argv(request)[1:] == ["-m", "autograder.jail.execute", request.encode()]


@needs_full
def test_each_sandbox_gets_a_limited_cgroup_removed_afterwards(tmp_path: Path) -> None:
    from autograder import cgroups

    own = cgroups._v1_dirs() if PROTECTIONS.cgroup == "v1" else [cgroups._v2_dir()]
    seen: dict[Path, str] = {}
    stop = threading.Event()

    def watch() -> None:
        # Other graders may run at the same time (the suite runs in parallel): only the
        # cgroups named like one carrying this test's distinctive pids limit (99) are ours
        # (with v1, the memory and pids hierarchies hold one directory of that name each).
        ours: set[str] = set()
        while not stop.is_set():
            for base in own:
                for path in base.glob("autograder-*"):
                    try:
                        if (path / "pids.max").read_text().strip() == "99":
                            ours.add(path.name)
                    except OSError:
                        pass
            for base in own:
                for name in ours:
                    for limit in ("memory.limit_in_bytes", "memory.max", "pids.max"):
                        try:
                            seen.setdefault(base / name / limit, (base / name / limit).read_text().strip())
                        except OSError:
                            pass
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = _run(tmp_path, "honest", HONEST, tree_memory_bytes=768 * MiB, tree_processes=99)
    finally:
        stop.set()
        watcher.join()
    _assert_honest(result)
    values = {path.name: value for path, value in seen.items()}
    assert values.get("pids.max") == "99"
    assert int(values.get("memory.limit_in_bytes") or values.get("memory.max")) == 768 * MiB
    assert not any(path.parent.exists() for path in seen)  # removed once the sandbox ended


def test_the_hard_kill_still_lets_the_warden_clean_up(tmp_path: Path) -> None:
    # run_notebook's hard kill sends SIGTERM to the whole group first; a jail that
    # ignores it is SIGKILLed by the warden, which then removes the cgroup.
    import signal

    from autograder import cgroups
    from autograder.jail.request import Helper, JailRequest

    if not (PROTECTIONS.own_uid and PROTECTIONS.cgroup):
        pytest.skip(PROTECTIONS.summary)
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    argv = [
        sys.executable, "-m", "autograder.warden",
        JailRequest(Helper.EXECUTE, tmp_path, Limits(), PROTECTIONS).encode(),
        "--", sys.executable, "-c", stubborn,
    ]  # fmt: skip
    warden = subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True)
    assert warden.stdout is not None and warden.stdout.readline().strip() == b"up"
    own = cgroups._v1_dirs() if PROTECTIONS.cgroup == "v1" else [cgroups._v2_dir()]
    groups = [p for base in own for p in base.glob(f"autograder-*-{warden.pid}")]
    assert groups and all((g / "cgroup.procs").read_text().split() for g in groups)
    start = time.monotonic()
    os.killpg(warden.pid, signal.SIGTERM)
    warden.wait(timeout=10)
    assert time.monotonic() - start < 5
    assert not any(g.exists() for g in groups)
