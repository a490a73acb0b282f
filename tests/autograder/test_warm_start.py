"""Warm start (``autograder.template``): each submission still starts from a fresh
process, with nothing passed on from the submission graded before it by the same
template, and the cold and warm kernels see the same interpreter state."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder import template
from autograder.execute import ExecutionResult, prepare_scratch, run_notebook
from autograder.limits import Limits
from autograder.sandbox import detect_protections

pytestmark = pytest.mark.slow
PROTECTIONS = detect_protections()
needs_warm = pytest.mark.skipif(not template.warm_available(PROTECTIONS), reason="the warm start needs root and namespaces")

# Submission A leaves marks everywhere a shared process could keep them.
LEAVE = [
    "import builtins, json, sys, numpy\n"
    "builtins.LEFT_BY_A = 1; json.LEFT_BY_A = 1; numpy.LEFT_BY_A = 1\n"
    "sys.modules['left_by_a'] = json\n"
    "LEFT_GLOBAL = 'a'\n"
    "open('/tmp/left_by_a.txt', 'w').write('a'); open('left_by_a.txt', 'w').write('a')\n"
    "import os; print('A', os.getpid(), flush=True)",
]
# Submission B looks for each of them.
LOOK = [
    "import builtins, json, os, sys, numpy\n"
    "found = [name for name, there in [\n"
    "    ('builtins', hasattr(builtins, 'LEFT_BY_A')), ('json', hasattr(json, 'LEFT_BY_A')),\n"
    "    ('numpy', hasattr(numpy, 'LEFT_BY_A')), ('sys.modules', 'left_by_a' in sys.modules),\n"
    "    ('global', 'LEFT_GLOBAL' in globals()), ('/tmp', os.path.exists('/tmp/left_by_a.txt')),\n"
    "    ('work', os.path.exists('left_by_a.txt'))] if there]\n"
    "print('B', found, flush=True)",
]
STATE = (
    "import os, sys, json\n"
    "print(json.dumps({'path': sys.path, 'env': dict(os.environ), 'uid': os.getuid(), 'cwd': os.getcwd(),\n"
    "                  'argv0': os.path.basename(sys.argv[0]), 'pid_small': os.getpid() < 100}))"
)


def _run(tmp_path: Path, name: str, cells: list[str]) -> ExecutionResult:
    nb = new_notebook(cells=[new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    scratch = tmp_path / name
    prepare_scratch(scratch, support=[], protections=PROTECTIONS)
    limits = Limits(cell_timeout=30.0, notebook_budget=60.0)
    return run_notebook(nb, scratch=scratch, hide=[], limits=limits, protections=PROTECTIONS)


def _out(result: ExecutionResult) -> str:
    assert result.completed, result.error
    return "".join(str(o.get("text", "")) + str(o.get("evalue", "")) for o in result.notebook.cells[0].outputs)


@needs_warm
def test_nothing_submission_a_leaves_reaches_submission_b_from_the_same_template(tmp_path: Path) -> None:
    a = _out(_run(tmp_path, "a", LEAVE))
    first = template._template().proc.pid
    b = _out(_run(tmp_path, "b", LOOK))
    assert template._template().proc.pid == first  # one template forked both
    assert a.startswith("A ")
    assert b.strip() == "B []"


@needs_warm
def test_the_template_never_holds_course_lib() -> None:
    # Re-verification children bind a view over course_lib; a reference imported in the
    # template would be in every child's memory whatever the view withholds.
    code = "from autograder import template; template._preload(); import sys; print(sorted(m for m in sys.modules if m.startswith('course_lib')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@needs_warm
def test_warm_and_cold_kernels_start_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warm = json.loads(_out(_run(tmp_path, "warm", [STATE])))
    monkeypatch.setenv(template.COLD_ENV, "1")
    cold = json.loads(_out(_run(tmp_path, "cold", [STATE])))
    assert warm["path"] == cold["path"]
    assert warm["env"] == cold["env"]
    assert warm["cwd"] == cold["cwd"] and warm["pid_small"] and cold["pid_small"]
    assert 2_000_000_000 <= warm["uid"] < 2_000_004_096 and 2_000_000_000 <= cold["uid"] < 2_000_004_096


@needs_warm
def test_each_warm_kernel_draws_its_own_numpy_stream(tmp_path: Path) -> None:
    # The template imported numpy once; without a reseed every fork would draw the same numbers.
    draws = {_out(_run(tmp_path, f"r{i}", ["import numpy as np; print(np.random.rand())"])) for i in range(2)}
    assert len(draws) == 2


def test_launch_refuses_a_module_that_is_not_a_helper(tmp_path: Path) -> None:
    from autograder.jail.request import Helper, JailRequest

    with pytest.raises(ValueError, match="not a sandbox helper"):
        JailRequest("os", tmp_path, Limits(), PROTECTIONS)  # type: ignore[arg-type]
    # What the template reads from its socket: the same refusal, by the one decoder.
    forged = JailRequest(Helper.EXECUTE, tmp_path, Limits(), PROTECTIONS).encode().replace("autograder.jail.execute", "os")
    with pytest.raises(ValueError, match="not a sandbox helper"):
        JailRequest.decode(forged)
    with pytest.raises(TypeError, match="expected a JailRequest"):
        template.launch("os", stdout=subprocess.DEVNULL)  # type: ignore[arg-type]


def test_cold_env_turns_the_warm_start_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(template.COLD_ENV, "1")
    assert not template.warm_available(PROTECTIONS)
    monkeypatch.delenv(template.COLD_ENV)
    assert template.warm_available(PROTECTIONS) == (PROTECTIONS.namespaces and os.geteuid() == 0)


@needs_warm
def test_a_warm_kernel_names_itself_as_the_cold_one(tmp_path: Path) -> None:
    # ps and the host's watchers tell the kernel from the helper by their command lines.
    out = _out(_run(tmp_path, "argv", ["print(open('/proc/self/cmdline').read().split(chr(0))[1:3])"]))
    assert out.strip() == "['-m', 'ipykernel_launcher']"


@needs_warm
def test_the_graders_environment_never_reaches_a_warm_kernels_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every kernel is a fork of the template: what the template holds, student code can read.
    template.shutdown()  # the next launch starts a template that sees this environment
    monkeypatch.setenv("GRADER_TOKEN_FOR_TEST", "tok-8e1f2a")
    scan = (
        "import gc, os, autograder.template as t\n"
        "strings = [v for o in gc.get_objects() if isinstance(o, dict) for v in list(o.values()) if isinstance(v, str)]\n"
        # The token is built only while searching: written whole, the cell's own source would hold it.
        "print(any(('tok-' + '8e1f2a') in s for s in strings), 'GRADER_TOKEN_FOR_TEST' in os.environ, t._GRADER_ENV)"
    )
    try:
        out = _out(_run(tmp_path, "env", [scan]))
    finally:
        template.shutdown()
    assert out.strip() == "False False {}"


# Every descriptor student code holds, with the socket type of each socket.
OPEN_SOCKETS = (
    "import os, socket, stat, json\n"
    "kinds = []\n"
    "for name in os.listdir('/proc/self/fd'):\n"
    "    try:\n"
    "        if stat.S_ISSOCK(os.fstat(int(name)).st_mode):\n"
    "            s = socket.socket(fileno=os.dup(int(name))); kinds.append(int(s.type)); s.close()\n"
    "    except OSError:\n"
    "        pass\n"
    "print(json.dumps(kinds))"
)


@needs_warm
def test_student_code_holds_no_socket_of_the_templates_order_channel(tmp_path: Path) -> None:
    # The template takes orders (which helper, which folders to hide) on a SOCK_SEQPACKET
    # socket; a kernel forked from it that kept one could order a sandbox of its own.
    kinds = json.loads(_out(_run(tmp_path, "sockets", [OPEN_SOCKETS])).strip().splitlines()[-1])
    assert kinds, "the probe found none of the kernel's own sockets: it did not look"
    assert int(socket.SOCK_SEQPACKET) not in kinds, kinds


def test_the_socket_probe_sees_an_order_channel_where_there_is_one(capsys: pytest.CaptureFixture[str]) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        exec(OPEN_SOCKETS, {})
    finally:
        ours.close()
        theirs.close()
    assert json.loads(capsys.readouterr().out).count(int(socket.SOCK_SEQPACKET)) >= 2


@needs_warm
def test_warm_up_starts_the_template_that_the_next_sandbox_is_forked_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template.shutdown()
    monkeypatch.setenv(template.COLD_ENV, "1")
    template.warm_up(PROTECTIONS)  # the cold start asked for: nothing is started
    assert not _template_pids()
    monkeypatch.delenv(template.COLD_ENV)
    template.warm_up(PROTECTIONS)
    started = _template_pids()
    assert len(started) == 1
    result = _run(tmp_path, "after-warm-up", ["import os; print(os.getppid() > 0, flush=True)"])
    assert _out(result).strip() == "True"
    assert _template_pids() == started  # the sandbox came from the template warm_up started
    template.shutdown()


def _template_pids() -> set[int]:
    """Live ``python -m autograder.template`` processes that are children of this one."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"autograder.template" in cmdline:
            pids.add(int(entry.name))
    return pids
