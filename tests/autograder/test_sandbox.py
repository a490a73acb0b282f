"""The sandbox itself: one kernel probing the walls (network, hidden paths, user,
files outside, memory, processes, output size, time)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.execute import prepare_scratch, run_notebook
from autograder.limits import Limits
from autograder.sandbox import detect_protections

pytestmark = pytest.mark.slow
PROTECTIONS = detect_protections()
needs_full = pytest.mark.skipif(bool(PROTECTIONS.missing), reason=PROTECTIONS.summary)


def _run(tmp_path: Path, cells: list[str], **limits: float):
    nb = new_notebook(cells=[new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    secret = tmp_path / "secret"
    secret.mkdir(exist_ok=True)
    (secret / "hidden_tests.txt").write_text("seed=42")
    scratch = tmp_path / "scratch"
    prepare_scratch(scratch, support=[], protections=PROTECTIONS)
    lim = Limits(**{"cell_timeout": 5.0, "notebook_budget": 20.0, "memory_bytes": 2 * 1024**3, **limits})
    return run_notebook(nb, scratch=scratch, hide=[secret], limits=lim, protections=PROTECTIONS), secret


def _text(cell) -> str:
    return "".join(o.get("text", "") + o.get("evalue", "") + o.get("ename", "") for o in cell.outputs)


@needs_full
def test_walls(tmp_path: Path) -> None:
    outside = Path(__file__).with_name(f".probe-{tmp_path.name}.txt")  # a directory the grader can write
    cells = [
        "import os; print(os.getuid(), os.getgid())",
        "import socket; socket.create_connection(('1.1.1.1', 80), timeout=2)",
        f"print(os.listdir({str(tmp_path / 'secret')!r}))",
        f"open({str(outside)!r}, 'w').write('x')",
        "x = bytearray(8 * 1024**3)",
        "import subprocess\nprocs = []\ntry:\n    for _ in range(10000): procs.append(subprocess.Popen(['sleep', '30']))\n"
        "except OSError as e: print('stopped after', len(procs), type(e).__name__)\n"
        "for p in procs: p.kill(); p.wait()",
        "print('y' * 2_000_000)",
        "print(len(open('/proc/1/cmdline').read()) > 0, os.getpid() < 100)",
    ]
    result, secret = _run(tmp_path, cells, processes=64)
    assert result.completed, result.error
    out = [_text(c) for c in result.notebook.cells]
    uid, gid = (int(v) for v in out[0].split())
    assert 2_000_000_000 <= uid < 2_000_004_096 and gid == uid  # a leased uid of its own, not nobody
    assert "unreachable" in out[1] or "OSError" in out[1]
    assert "hidden_tests" not in out[2]  # hidden (an empty mount) or absent inside the jail
    # Outside the jail's root the directory is not there at all; either way nothing is written.
    assert ("Permission denied" in out[3] or "No such file or directory" in out[3]) and not outside.exists()
    assert "MemoryError" in out[4]
    assert "stopped after" in out[5] and "BlockingIOError" in out[5]
    assert "output cut at" in out[6] and len(out[6]) < 300_000
    assert out[7].strip() == "True True"  # a pid namespace of its own
    assert (secret / "hidden_tests.txt").read_text() == "seed=42"


def test_cell_timeout_stops_the_notebook_and_keeps_what_ran(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, ["print('before')", "while True: pass", "print('after')"], cell_timeout=2.0)
    assert result.timed_out and result.stopped_at == 1 and not result.completed
    assert "before" in _text(result.notebook.cells[0])
    assert "TimeoutError" in _text(result.notebook.cells[1])
    assert _text(result.notebook.cells[2]) == ""


def test_budget_then_hard_kill(tmp_path: Path) -> None:
    # Ignoring SIGINT and sleeping in C cannot outlast the notebook budget.
    cells = ["import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN)", "time.sleep(1000)"]
    result, _ = _run(tmp_path, cells, cell_timeout=30.0, notebook_budget=3.0)
    assert result.timed_out and not result.completed


def test_dead_kernel_is_reported(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, ["x = 1", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "print(x)"])
    assert result.kernel_died and result.stopped_at == 1
    assert "DeadKernelError" in _text(result.notebook.cells[1])
