"""Execution step, the trusted side: run one prepared notebook in the sandbox.

``prepare_scratch`` lays out the job's scratch directory; ``run_notebook`` writes the
notebook into it, launches the sandbox helper (``Helper.EXECUTE``: the code that runs
inside the jail is ``autograder.jail.execute``), hard-kills it when the notebook's
wall-clock budget is spent and reads back what it wrote: ``private/result.ipynb`` and
``private/status.json``. Nothing else passes from the jail to the grader.

Scratch layout (created here; the jail sees it at ``sandbox.JAIL_DIR``)::

    private/  root 0700  notebook.ipynb in, result.ipynb + status.json out
    lib/      root 0755  read-only support modules put on the kernel's PYTHONPATH
    work/     sandbox uid  the kernel's cwd and HOME: in the jail a size-capped tmpfs,
                           so nothing written there reaches the host; thrown away afterwards
    beside/   root 0700  the files handed in beside the notebook (``autograder.beside``),
                           copied into work/ for the sandbox uid before the kernel starts
    verify/   root       re-verification's plan and cases (``autograder.verify``)
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.beside import link_beside
from autograder.jail.request import Helper, JailRequest
from autograder.limits import Limits, Protections
from autograder.sandbox import NOBODY, remove_tree
from autograder.template import launch

__all__ = ["ExecutionResult", "prepare_scratch", "run_notebook"]


@dataclass(frozen=True)
class ExecutionResult:
    notebook: nbformat.NotebookNode | None  # the executed notebook (partial if cut short)
    completed: bool
    timed_out: bool
    kernel_died: bool
    stopped_at: int | None  # index of the cell where execution stopped early
    error: str  # why the run failed, "" if it did not
    seconds: float
    helper_peak_bytes: int = 0  # peak RSS of the root helper that drove the kernel (0 if unknown)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage (``_stages``), for profiling


def prepare_scratch(
    scratch: Path, *, support: list[Path], protections: Protections, beside: Path | None = None
) -> None:
    """Fresh scratch directory with the layout above; ``beside`` a folder made by
    ``autograder.beside.prepare_beside`` (None: nothing was handed in beside the notebook)."""
    remove_tree(scratch)
    if scratch.exists():
        raise OSError(f"cannot clear the old scratch directory {scratch}")
    for sub, mode in (("", 0o755), ("private", 0o700), ("lib", 0o755), ("work", 0o700), ("verify", 0o755)):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(scratch / sub, mode)
    for path in support:
        target = scratch / "lib" / path.name
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            shutil.copyfile(path, target)
            os.chmod(target, 0o444)
    if protections.unprivileged_user:
        os.chown(scratch / "work", NOBODY, NOBODY)
    if beside is not None and beside.is_dir():
        link_beside(beside, scratch)


def run_notebook(
    nb: nbformat.NotebookNode,
    *,
    scratch: Path,
    hide: list[Path],
    limits: Limits,
    protections: Protections,
) -> ExecutionResult:
    """Execute ``nb`` in the sandbox; never raises for anything the notebook does."""
    private = scratch / "private"
    nbformat.write(nb, str(private / "notebook.ipynb"))
    request = JailRequest(Helper.EXECUTE, scratch, limits, protections, hide=tuple(hide))
    start = time.monotonic()
    proc = launch(request, stdout=subprocess.DEVNULL)
    killed = False
    try:
        _, err = proc.communicate(timeout=limits.notebook_budget + 20)
    except subprocess.TimeoutExpired:
        killed = True
        # SIGTERM first: the warden kills the jail and still removes its cgroup and
        # clears its uid; then SIGKILL whatever is left (unshare --kill-child takes
        # the jail down with it).
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
    end = time.monotonic()
    seconds = end - start
    status_path, result_path = private / "status.json", private / "result.ipynb"
    status = json.loads(status_path.read_text()) if status_path.exists() else {}
    executed = nbformat.read(str(result_path), as_version=4) if result_path.exists() else None
    error = status.get("error", "")
    if killed:
        error = f"hard-killed after {seconds:.0f} s (notebook budget {limits.notebook_budget:.0f} s)"
    elif not status:
        error = f"the grading sandbox failed (exit {proc.returncode}): {err.decode(errors='replace')[-800:]}"
    return ExecutionResult(
        notebook=executed,
        completed=bool(status.get("completed")) and not killed,
        timed_out=killed or bool(status.get("timed_out")),
        kernel_died=bool(status.get("kernel_died")),
        stopped_at=status.get("stopped_at"),
        error=error,
        seconds=seconds,
        helper_peak_bytes=int(status.get("helper_peak_bytes") or 0),
        stages=_stages(start, status.get("marks"), end),
    )


def _stages(start: float, marks: object, end: float) -> dict[str, float]:
    """Seconds of each stage of one run, from the helper's monotonic marks (one clock:
    the jail has no time namespace): ``launch`` (warden, unshare, python and imports;
    warm: the forks), ``jail`` (enter_jail), ``kernel`` (kernel start), ``cells`` and
    ``exit`` (kernel shutdown, the helper's exit, the warden's clean-up). Empty when the helper wrote no marks (it never started, or was killed)."""
    names = ("main", "jail", "kernel", "cells")
    if not isinstance(marks, dict) or not all(isinstance(marks.get(n), (int, float)) for n in names):
        return {}
    points = [start, *(float(marks[n]) for n in names), end]
    labels = ("launch", "jail", "kernel", "cells", "exit")
    return {label: max(0.0, b - a) for label, (a, b) in zip(labels, itertools.pairwise(points), strict=True)}
