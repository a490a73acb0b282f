"""The notebook run inside the sandbox (nbclient + IPython kernel): pid 1 of its namespaces.

``autograder.execute.run_notebook`` (trusted) lays out the job's scratch directory and
launches ``main`` here with a ``JailRequest`` (``Helper.EXECUTE``). ``main`` (root)
enters the jail and drives the kernel cell by cell; the kernel itself is started by
``autograder.jail.kernel_launcher`` as the sandbox uid under rlimits (cold: exec'd by
jupyter_client; warm: ``_ForkedKernel``, a fork of this helper), talking over unix
sockets (``transport="ipc"``: there is no network in the jail, not even loopback).

Reads ``private/notebook.ipynb``; writes ``private/result.ipynb`` and
``private/status.json`` (``completed``, ``timed_out``, ``kernel_died``, ``stopped_at``,
``error``, ``helper_peak_bytes``, ``marks``), which is all the trusted side reads back.

Every iopub message the kernel sends counts against the output caps (per cell and per
notebook), whatever its kind; comm (widget) messages are dropped without being
stored. The root helper itself runs under an address-space limit once started.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat

from autograder.cap import OutputBudget
from autograder.jail import kernel_launcher
from autograder.jail.fork import begin_warm, set_cmdline
from autograder.jail.request import JailRequest, WarmFork, request_from_argv
from autograder.limits import Limits, Protections

__all__ = ["main"]

_RECEIVE_QUEUE = 64  # messages the helper's sockets hold before the sender must wait or drop


class _ForkedKernel:
    """The warm kernel: forked from this helper before any zmq context or thread exists
    (the helper is itself a fork of the pre-imported template, ``autograder.template``),
    it waits for the connection file jupyter_client writes, then does what
    ``kernel_launcher`` does (``prepare``: the sandbox uid, rlimits, keyrings) and runs
    ipykernel in-process. Popen-like, for jupyter_client's LocalProvisioner."""

    stdin = stdout = stderr = None

    def __init__(
        self, work: Path, limits: Limits, protections: Protections, uid: int | None, warm: WarmFork
    ) -> None:
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                self._child(go_r, go_w, work, limits, protections, uid, warm)
            except BaseException as exc:  # the grader's own failure, before any student code
                os.write(2, f"kernel start: {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(70)
        os.close(go_r)
        self.pid, self._go = pid, go_w
        self.returncode: int | None = None

    @staticmethod
    def _child(
        go_r: int,
        go_w: int,
        work: Path,
        limits: Limits,
        protections: Protections,
        uid: int | None,
        warm: WarmFork,
    ) -> None:
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
            started = json.loads(data)
            # The environment jupyter_client gives the kernel command (jail_env, see main).
            os.environ.clear()
            os.environ.update(started["env"])
            try:  # the cold kernel's command line, not the helper's (while still allowed to write it)
                set_cmdline([sys.executable, "-m", "ipykernel_launcher", "-f", str(work / ".kernel.json")])
            except (OSError, ValueError, IndexError):
                pass
            connection, env = kernel_launcher.prepare(
                Path(started["connection"]), work, limits, protections, uid
            )
        except BaseException as exc:
            os.write(2, f"kernel start: {type(exc).__name__}: {exc}\n".encode())
            os._exit(70)
        kernel_launcher.run_in_process(connection, env, warm)

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
        while (code := self.poll()) is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        return code

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
    jailed: JailRequest, uid: int | None, forked: _ForkedKernel | None = None
) -> tuple[type[Any], type[Any]]:
    """The kernel manager (cold: it runs ``kernel_launcher`` with ``jailed``, the request
    as seen from inside the jail; warm: it starts ``forked``) and the output-capped client."""
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbformat.v4 import new_output
    from traitlets import default

    from autograder.cap import Admit, message_bytes

    class ReadyClient(AsyncKernelClient):
        """jupyter_client's client, whose ``wait_for_ready`` ends by draining IOPub until
        0.2 s pass without a message: a fixed 0.2 s on every notebook. Here the drain
        takes what is queued and stops. Nothing is lost by not waiting: nbclient reads
        a cell's output by its request's id and skips every other message."""

        async def wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
            while True:  # jupyter_client's handshake: a kernel_info reply, then IOPub connected
                self.kernel_info()
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    pass
                else:
                    if reply["msg_type"] == "kernel_info_reply":
                        try:
                            await self.iopub_channel.get_msg(timeout=0.2)
                        except Empty:
                            pass
                        else:
                            self._handle_kernel_info_reply(reply)
                            break
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
            while True:
                try:
                    await self.iopub_channel.get_msg(timeout=0)
                except Empty:
                    return

    class SandboxKernelManager(AsyncKernelManager):
        @default("client_factory")
        def _ready_client(self) -> type[ReadyClient]:
            return ReadyClient

        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [
                sys.executable, "-m", kernel_launcher.__name__,
                "--connection-file", self.connection_file,
                "--request", jailed.encode(),
                *(["--uid", str(uid)] if uid is not None else []),
            ]  # fmt: skip

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            if forked is None:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            # jupyter_client's LocalProvisioner (typed as its base class, without these fields).
            provisioner: Any = self.provisioner
            assert provisioner is not None
            forked.go(self.connection_file, dict(kw.get("env") or {}))
            provisioner.process, provisioner.pid, provisioner.pgid = forked, forked.pid, forked.pid
            provisioner.cwd = kw.get("cwd", str(jailed.scratch / "work"))
            self._reconcile_connection_info(provisioner.connection_info)
            return None

    class CappedClient(NotebookClient):
        """Charges every iopub message to ``self.budget`` (an OutputBudget) as it
        arrives and keeps only what the budget admits, so no kind of message can
        fill the stored notebook or the grader's memory."""

        budget: OutputBudget

        def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
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


def main(request: JailRequest, warm: WarmFork | None = None) -> int:
    """Pid 1 of the sandbox (root): run ``request.scratch``'s notebook (see the module
    docstring). ``warm``: this process is a fork of the warm template, and forks the
    kernel from itself (None: started cold; jupyter_client execs the kernel)."""
    from autograder.sandbox import enter_jail, fill_work, jail_env, sandbox_uid

    started = time.monotonic()
    if warm is not None:
        begin_warm(request)
    limits, protections = request.limits, request.protections
    scratch = request.scratch
    jail = enter_jail(scratch, list(request.hide), limits=limits) if protections.namespaces else scratch
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
    uid = sandbox_uid(protections)
    forked = _ForkedKernel(jail / "work", limits, protections, uid, warm) if warm is not None else None
    jailed = dataclasses.replace(request, scratch=jail, hide=())
    manager_class, client_class = _client_classes(jailed, uid, forked)
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
    raise SystemExit(main(request_from_argv(sys.argv[1:])))
