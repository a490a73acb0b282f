"""Execution step: run one prepared notebook in the sandbox (nbclient + IPython kernel).

``run_notebook`` (trusted parent) lays out the job's scratch directory, starts
``python -m autograder.execute`` inside fresh namespaces and hard-kills it when the
notebook's wall-clock budget is spent. Inside, ``main`` (root in the jail) drives the
kernel cell by cell; the kernel itself is started by ``autograder.kernel_launcher``
as ``nobody`` under rlimits, talking over unix sockets (``transport="ipc"``: there is
no network in the jail, not even loopback).

Scratch layout (created by the parent; the jail sees it at ``sandbox.JAIL_DIR``)::

    private/  root 0700  notebook.ipynb in, result.ipynb + status.json out
    lib/      root 0755  read-only support modules put on the kernel's PYTHONPATH
    work/     sandbox uid  the kernel's cwd and HOME: in the jail a size-capped tmpfs,
                           so nothing written there reaches the host; thrown away afterwards
    beside/   root 0700  the files handed in beside the notebook (``autograder.beside``),
                           copied into work/ for the sandbox uid before the kernel starts

Every iopub message the kernel sends counts against the output caps (per cell and per
notebook), whatever its kind; comm (widget) messages are dropped without being
stored. The root helper itself runs under an address-space limit once started.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from autograder.beside import link_beside
from autograder.cap import OutputBudget
from autograder.sandbox import NOBODY, Limits, Protections, remove_tree
from autograder.template import in_template_fork, launch

__all__ = ["ExecutionResult", "prepare_scratch", "run_notebook"]

_RECEIVE_QUEUE = 64  # messages the helper's sockets hold before the sender must wait or drop


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
    args = [
        "--scratch", str(scratch),
        "--limits", json.dumps(asdict(limits)),
        "--protections", json.dumps(asdict(protections)),
        *[a for path in hide for a in ("--hide", str(path))],
    ]  # fmt: skip
    start = time.monotonic()
    proc = launch("autograder.execute", args, protections, stdout=subprocess.DEVNULL)
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
    return {label: max(0.0, b - a) for label, a, b in zip(labels, points, points[1:])}


# ---------------------------------------------------------------- inside the jail


class _ForkedKernel:
    """The warm kernel: forked from this helper before any zmq context or thread exists
    (the helper is itself a fork of the pre-imported template, ``autograder.template``),
    it waits for the connection file jupyter_client writes, then does what
    ``kernel_launcher`` does (``prepare``: the sandbox uid, rlimits, keyrings) and runs
    ipykernel in-process. Popen-like, for jupyter_client's LocalProvisioner."""

    stdin = stdout = stderr = None

    def __init__(self, work: Path, limits: Limits, protections: Protections, uid: int | None) -> None:
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                self._child(go_r, go_w, work, limits, protections, uid)
            except BaseException as exc:  # the grader's own failure, before any student code
                os.write(2, f"kernel start: {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(70)
        os.close(go_r)
        self.pid, self.returncode, self._go = pid, None, go_w

    @staticmethod
    def _child(
        go_r: int, go_w: int, work: Path, limits: Limits, protections: Protections, uid: int | None
    ) -> None:
        from autograder import kernel_launcher
        from autograder.template import set_cmdline, site_paths

        os.close(go_w)
        os.setsid()  # as jupyter_client starts a kernel: interrupts go to its own group
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(go_r, 3)
        os.closerange(4, 1 << 16)
        data = b""
        while chunk := os.read(3, 1 << 16):
            data += chunk
        os.close(3)
        if not data:  # the helper never started it
            os._exit(0)
        try:
            request = json.loads(data)
            # The environment jupyter_client gives the kernel command (jail_env, see main).
            os.environ.clear()
            os.environ.update(request["env"])
            try:  # the cold kernel's command line, not the helper's (while still allowed to write it)
                set_cmdline([sys.executable, "-m", "ipykernel_launcher", "-f", str(work / ".kernel.json")])
            except (OSError, ValueError, IndexError):
                pass
            connection, env = kernel_launcher.prepare(
                Path(request["connection"]), work, limits, protections, uid
            )
        except BaseException as exc:
            os.write(2, f"kernel start: {type(exc).__name__}: {exc}\n".encode())
            os._exit(70)
        kernel_launcher.run_in_process(connection, env, site_paths())

    def go(self, connection_file: str, env: dict[str, str]) -> None:
        """Start, with the connection file and environment jupyter_client made for it."""
        data = json.dumps({"connection": connection_file, "env": env}).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._go, view) :]
        self.close()

    def close(self) -> None:
        if self._go >= 0:
            os.close(self._go)
            self._go = -1

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _client_classes(
    limits: Limits, protections: Protections, jail: Path, uid: int | None, forked: _ForkedKernel | None = None
):
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbformat.v4 import new_output

    from autograder.cap import Admit, message_bytes

    class SandboxKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [
                sys.executable, "-m", "autograder.kernel_launcher",
                "--connection-file", self.connection_file,
                "--work", str(jail / "work"),
                "--limits", json.dumps(asdict(limits)),
                "--protections", json.dumps(asdict(protections)),
                *(["--uid", str(uid)] if uid is not None else []),
            ]  # fmt: skip

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: object) -> None:
            if forked is None:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            provisioner = self.provisioner
            assert provisioner is not None
            forked.go(self.connection_file, dict(kw.get("env") or {}))
            provisioner.process, provisioner.pid, provisioner.pgid = forked, forked.pid, forked.pid
            provisioner.cwd = kw.get("cwd", str(jail / "work"))
            self._reconcile_connection_info(provisioner.connection_info)
            return None

    class CappedClient(NotebookClient):
        """Charges every iopub message to ``self.budget`` (an OutputBudget) as it
        arrives and keeps only what the budget admits, so no kind of message can
        fill the stored notebook or the grader's memory."""

        budget: OutputBudget

        def process_message(self, msg, cell, cell_index):  # type: ignore[override]
            admit = self.budget.charge(cell_index, msg["msg_type"], message_bytes(msg))
            if admit is Admit.KEEP:
                return super().process_message(msg, cell, cell_index)
            if admit is Admit.DROP and msg["msg_type"].startswith("comm"):
                return None
            if self.budget.first_cut(cell_index):
                cell.outputs.append(new_output("stream", name="stdout", text=self.budget.notice(cell_index)))
            if admit is Admit.SHORT_ERROR:
                content = msg["content"]
                ename, evalue = str(content.get("ename", "Error"))[:100], str(content.get("evalue", ""))[:500]
                cell.outputs.append(
                    new_output(
                        "error",
                        ename=ename,
                        evalue=evalue,
                        traceback=[f"{ename}: {evalue}", "[traceback cut]"],
                    )
                )
            return None

    return SandboxKernelManager, CappedClient


def main(argv: list[str] | None = None) -> int:
    from autograder.sandbox import enter_jail, fill_work, jail_env, sandbox_uid

    started = time.monotonic()
    parser = argparse.ArgumentParser()
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--hide", type=Path, action="append", default=[])
    parser.add_argument("--limits", required=True)
    parser.add_argument("--protections", required=True)
    args = parser.parse_args(argv)
    limits = Limits(**json.loads(args.limits))
    protections = Protections(**json.loads(args.protections))
    jail = enter_jail(args.scratch, args.hide, limits=limits) if protections.namespaces else args.scratch
    private = jail / "private"
    fill_work(jail / "beside", jail / "work", sandbox_uid(protections))
    status: dict[str, object] = {
        "completed": False,
        "timed_out": False,
        "kernel_died": False,
        "stopped_at": None,
    }
    marks: dict[str, float] = {"main": started, "jail": time.monotonic()}
    status["marks"] = marks

    def save(nb: nbformat.NotebookNode) -> None:
        nbformat.write(nb, str(private / "result.tmp"))
        os.replace(private / "result.tmp", private / "result.ipynb")
        (private / "status.json").write_text(json.dumps(status))

    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat.v4 import new_output

    nb = nbformat.read(str(private / "notebook.ipynb"), as_version=4)
    # Forked now, while this process has no zmq context and no thread (the manager below creates them).
    warm = in_template_fork()
    forked = _ForkedKernel(jail / "work", limits, protections, sandbox_uid(protections)) if warm else None
    manager_class, client_class = _client_classes(limits, protections, jail, sandbox_uid(protections), forked)
    km = manager_class(kernel_name="python3", transport="ipc", ip=str(jail / "work" / ".kernel"))
    km.connection_file = str(private / "kernel.json")
    # zmq queues up to 1000 messages per socket by default: 1 GB of 1 MB messages
    # waiting in the helper. A short queue pushes a flood back onto the kernel's side.
    import zmq

    km.context.setsockopt(zmq.RCVHWM, _RECEIVE_QUEUE)
    client = client_class(
        nb,
        km=km,
        timeout=limits.cell_timeout,
        allow_errors=True,
        kernel_name="python3",
        shutdown_kernel="immediate",
        store_widget_state=False,
    )
    client.comm_open_handlers = {}  # no widget objects: comm traffic is dropped (see OutputBudget)
    client.budget = OutputBudget(per_cell=limits.output_bytes, per_notebook=limits.notebook_output_bytes)
    deadline = time.monotonic() + limits.notebook_budget
    lib = str(jail / "lib")
    try:
        with client.setup_kernel(env=jail_env(jail / "work", [lib]), cwd=str(jail / "work")):
            marks["kernel"] = time.monotonic()
            # Started: from here the helper only relays messages, so its address space
            # is capped (the kernel, already running, keeps its own limits).
            resource.setrlimit(resource.RLIMIT_AS, (limits.helper_memory_bytes, limits.helper_memory_bytes))
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    status.update(timed_out=True, stopped_at=index)
                    break
                client.timeout = max(1, int(min(limits.cell_timeout, remaining)))
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    cell.outputs.append(
                        new_output(
                            "error",
                            ename="TimeoutError",
                            evalue=f"autograder: cell stopped after {client.timeout} s",
                            traceback=[f"TimeoutError: autograder: cell stopped after {client.timeout} s"],
                        )
                    )
                    status.update(timed_out=True, stopped_at=index)
                    break
                except DeadKernelError:
                    cell.outputs.append(
                        new_output(
                            "error",
                            ename="DeadKernelError",
                            evalue="autograder: the kernel died in this cell (crash, memory or CPU limit)",
                            traceback=["DeadKernelError: the kernel died in this cell"],
                        )
                    )
                    status.update(kernel_died=True, stopped_at=index)
                    break
                except Exception as exc:  # e.g. a message with a bad signature from a mangled kernel
                    why = (
                        f"autograder: the kernel broke the protocol ({type(exc).__name__}: {str(exc)[:100]})"
                    )
                    cell.outputs.append(
                        new_output("error", ename="KernelProtocolError", evalue=why, traceback=[why])
                    )
                    status.update(kernel_died=True, stopped_at=index)
                    break
                save(nb)
            else:
                status["completed"] = True
            marks["cells"] = time.monotonic()
    except Exception as exc:  # kernel failed to start, or died between cells
        status["error"] = f"{type(exc).__name__}: {exc}"[:800]
    if forked is not None:
        forked.close()  # never started (the manager failed first): it exits
    marks.setdefault("cells", time.monotonic())
    status["helper_peak_bytes"] = _peak_rss()
    save(nb)
    return 0


def _peak_rss() -> int:
    """This process's peak resident set (VmHWM), in bytes; 0 if unreadable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
