"""Warm start: a pre-imported template process that forks each sandbox.

The cold start runs ``warden -> unshare -> python -m <helper>`` per sandbox: two
interpreters start and the helper imports nbclient, IPython, numpy and matplotlib
again for every submission. Here one *template* (``python -m autograder.template``,
root, outside any jail) imports them once and, per sandbox, forks:

1. the *warden* (``warden.guard``: leases a uid, creates the cgroup, waits, cleans up),
   in a session of its own so the grader's hard kill (``killpg``) reaches the tree;
2. which forks the *unshare* step: joins the cgroup, takes the grader's environment
   with the leased uid, ``unshare(2)``s the network, mount, pid and IPC namespaces
   (the flags ``sandbox_argv`` gives unshare(1), mounts made private as unshare(1)
   does) and forks again, waiting like ``unshare --fork`` (SIGINT/SIGTERM ignored);
3. whose child is pid 1 of the new namespaces, killed with it (``--kill-child``:
   PR_SET_PDEATHSIG), and runs the helper's ``main(request, WarmFork(...))`` (a
   ``Helper`` of ``autograder.jail``) as the cold start would after exec: it enters
   the jail, and student code runs only after ``drop_privileges``.

So every protection of the cold path is applied, by the same code, in the same order.
The template runs no student code and holds no secret (no course_lib, no solutions,
no seeds: it never imports course_lib, so no re-verification child can inherit a
reference). Each sandbox is a fresh fork of it: nothing passes from one submission to
the next. A fork does share the template's hash seed and, until reseeded, numpy's
global generator: each jail's pid 1 reseeds numpy (``autograder.jail.fork``).

The grader talks to the template over a SOCK_SEQPACKET socket: one message per
sandbox, carrying the ``JailRequest`` (its one encoding) with the helper's environment,
and three descriptors: the sandbox's stdout and
stderr and a status socket on which the warden sends its pid, then its exit code.
``launch`` returns a ``WarmProcess`` that behaves like the ``subprocess.Popen`` of
the cold start (``pid``, ``communicate``, ``returncode``).
"""

from __future__ import annotations

import atexit
import ctypes
import importlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.jail.request import Helper, JailRequest, WarmFork
from autograder.limits import Protections
from autograder.sandbox import sandbox_argv

__all__ = ["COLD_ENV", "WarmProcess", "launch", "shutdown", "start", "warm_available"]

COLD_ENV = "AUTOGRADER_COLD_START"  # "1": every sandbox starts cold (to compare, or to bisect a problem)
_CLONE_NEWNS, _CLONE_NEWPID, _CLONE_NEWNET, _CLONE_NEWIPC = 0x00020000, 0x20000000, 0x40000000, 0x08000000
_MS_REC, _MS_PRIVATE = 16384, 1 << 18
_PR_SET_PDEATHSIG = 1
_STATUS_FD = 3  # in the warden: the status socket to the grader
_TEMPLATE_ENV = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "AUTOGRADER_TRACE")  # what the template inherits
_GRADER_ENV: dict[str, str] = {}  # the template's environment as the grader gave it, before ``_preload``
_SITE_PATHS: list[str] = []  # the interpreter's own sys.path (without -m's cwd and PYTHONPATH)
_IMPORT_ENV: dict[str, str] = {}  # variables the preloaded imports set for themselves (debugpy's)


def warm_available(protections: Protections) -> bool:
    """The warm start needs what the cold one uses: root and namespaces (unshare(2))."""
    return protections.namespaces and os.geteuid() == 0 and os.environ.get(COLD_ENV) != "1"


def launch(
    request: JailRequest, *, env: dict[str, str] | None = None, stdout: int | None
) -> subprocess.Popen[bytes] | WarmProcess:
    """Start ``request``'s helper in a fresh sandbox: forked from the template when
    ``warm_available``, else the cold ``sandbox_argv`` command. ``env``: the helper's
    environment (None: this process's). ``stdout`` is ``subprocess.PIPE`` or
    ``subprocess.DEVNULL``; stderr is always a pipe."""
    if not isinstance(request, JailRequest):
        raise TypeError(f"launch: expected a JailRequest, got {type(request).__name__}")
    if warm_available(request.protections):
        try:
            return _template().spawn(request, env=env, stdout=stdout)
        except OSError as exc:  # the template could not start or fork: the cold start, said once
            _warn_once(f"autograder: the warm start failed ({exc}); sandboxes start cold")
    return subprocess.Popen(
        sandbox_argv(request),
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        print(message, file=sys.stderr)


# ---------------------------------------------------------------- the grader's side


class WarmProcess:
    """One sandbox forked by the template, as the grader sees it (``Popen``-like)."""

    def __init__(self, pid: int, status: socket.socket, stdout: int | None, stderr: int) -> None:
        self.pid = pid  # the warden's: a session leader, so killpg(pid) reaches the tree
        self.returncode: int | None = None
        self._status, self._fds = status, {fd: bytearray() for fd in (stdout, stderr) if fd is not None}
        self._stdout, self._stderr = stdout, stderr
        self._status_buffer = b""

    def communicate(self, timeout: float | None = None) -> tuple[bytes | None, bytes]:
        """Read stdout/stderr to their end and wait for the warden's exit code, as
        ``Popen.communicate``; raises ``subprocess.TimeoutExpired`` (the output read
        so far is kept for the next call)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            for fd in self._fds:
                sel.register(fd, selectors.EVENT_READ)
            if self.returncode is None:
                sel.register(self._status, selectors.EVENT_READ)
            while sel.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(f"sandbox {self.pid}", timeout or 0.0)
                for key, _ in sel.select(left):
                    if key.fileobj is self._status:
                        chunk = self._status.recv(4096)
                        self._status_buffer += chunk
                        if not chunk or self._read_code():
                            sel.unregister(self._status)
                        continue
                    fd = int(key.fd)
                    chunk = os.read(fd, 1 << 16)
                    if chunk:
                        self._fds[fd] += chunk
                    else:
                        sel.unregister(fd)
        if self.returncode is None:  # the warden died without a word: killed outright
            self.returncode = -signal.SIGKILL
        out = bytes(self._fds[self._stdout]) if self._stdout is not None else None
        err = bytes(self._fds[self._stderr])
        self._close()
        return out, err

    def _read_code(self) -> bool:
        for line in self._status_buffer.split(b"\n"):
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and isinstance(message.get("rc"), int):
                self.returncode = message["rc"]
                return True
        return False

    def _close(self) -> None:
        for fd in list(self._fds):
            try:
                os.close(fd)
            except OSError:
                pass
        self._status.close()


class _Template:
    """The template process and the grader's end of its request socket."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock, self._lock = ours, threading.Lock()
        # Every kernel is a fork of the template, so its memory must hold nothing the
        # student may not read: of the grader's environment (tokens, database URLs) it
        # gets only what the helpers pass on to the jail (``jail_env``) or need to start.
        env = {k: os.environ[k] for k in _TEMPLATE_ENV if k in os.environ}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autograder.template",
                "--socket",
                str(theirs.fileno()),
                "--room",
                "x" * _CMDLINE_ROOM,
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        theirs.close()

    def spawn(self, request: JailRequest, *, env: dict[str, str] | None, stdout: int | None) -> WarmProcess:
        message = {"request": request.encode(), "env": env}
        out_r, out_w = os.pipe() if stdout == subprocess.PIPE else (None, os.open(os.devnull, os.O_WRONLY))
        err_r, err_w = os.pipe()
        status_ours, status_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._lock:
                if self.proc.poll() is not None:
                    raise OSError(f"the warm-start template exited ({self.proc.returncode})")
                socket.send_fds(
                    self._sock, [json.dumps(message).encode()], [out_w, err_w, status_theirs.fileno()]
                )
        except BaseException:
            for fd in (out_r, err_r):
                if fd is not None:
                    os.close(fd)
            status_ours.close()
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
            status_theirs.close()
        pid = _read_pid(status_ours)
        return WarmProcess(pid, status_ours, out_r, err_r)

    def close(self) -> None:
        self._sock.close()  # the template's recv sees the end; it waits for its wardens and exits
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _read_pid(status: socket.socket) -> int:
    data = b""
    while b"\n" not in data:
        chunk = status.recv(4096)
        if not chunk:
            raise OSError("the warm-start template could not start a sandbox")
        data += chunk
    message = json.loads(data.split(b"\n", 1)[0])
    return int(message["pid"])


_TEMPLATE: _Template | None = None
_TEMPLATE_LOCK = threading.Lock()


def _template() -> _Template:
    """The process's template, started on first use (again if it ever exited)."""
    global _TEMPLATE
    with _TEMPLATE_LOCK:
        if _TEMPLATE is None or _TEMPLATE.proc.poll() is not None:
            _TEMPLATE = _Template()
            atexit.register(_TEMPLATE.close)
        return _TEMPLATE


def start(protections: Protections) -> bool:
    """Start this process's template now, when sandboxes will start warm (True), so its
    imports overlap other work instead of delaying the first sandbox; else do nothing."""
    if warm_available(protections):
        _template()
        return True
    return False


def shutdown() -> None:
    """Stop this process's template, once every sandbox it forked has ended (the next
    ``launch`` starts a new one). Its CPU and theirs then count in RUSAGE_CHILDREN."""
    global _TEMPLATE
    with _TEMPLATE_LOCK:
        if _TEMPLATE is not None:
            _TEMPLATE.close()
            _TEMPLATE = None


# ---------------------------------------------------------------- the template's side


def _preload() -> None:
    """What the helpers and the kernel import anyway, once; never course_lib."""
    before = dict(os.environ)
    os.environ["MPLBACKEND"] = "Agg"
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"  # as in jail_env; and a BLAS thread pool must not exist at fork
    # matplotlib's config dir is the template's own (root-only, empty); each kernel and
    # re-verification child is pointed at its jail's (``autograder.jail.fork``).
    config = Path(f"/run/autograder/template-mpl-{os.getpid()}")
    config.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ["MPLCONFIGDIR"] = str(config)
    import matplotlib

    matplotlib.use("Agg")
    import jupyter_client.manager  # noqa: F401
    import matplotlib.pyplot
    import nbclient
    import nbclient.exceptions  # noqa: F401
    import numpy  # noqa: F401
    import zmq  # noqa: F401  (imported, never a context: forks must not share one)
    from ipykernel import ipkernel, kernelapp  # noqa: F401
    from IPython.core.inputtransformer2 import TransformerManager

    # The kernel's debugger support imports debugpy (about 1 s) while the kernel starts;
    # its import-time note about frozen modules would go to the grader's log.
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    from ipykernel import debugger  # noqa: F401

    del os.environ["PYDEVD_DISABLE_FILE_VALIDATION"]
    ours = {"MPLBACKEND", "MPLCONFIGDIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
    _IMPORT_ENV.update({k: v for k, v in os.environ.items() if k not in before and k not in ours})
    TransformerManager().transform_cell("%matplotlib inline\n!ls\nx?\n")
    for helper in Helper:
        importlib.import_module(helper.module)
    if "course_lib" in sys.modules:
        raise RuntimeError("the template must never hold course_lib")
    # fork() copies only the calling thread: a thread started by an import would leave
    # its locks and state half-copied in every sandbox.
    if len(os.listdir("/proc/self/task")) != 1:
        raise RuntimeError("the template must stay single-threaded: an import started a thread")


# Bytes of argv the template is started with: each fork rewrites them to read as the
# cold start's command line (``autograder.jail.fork.set_cmdline``).
_CMDLINE_ROOM = 8192


def _reset_signals() -> None:
    """The dispositions a fresh interpreter starts with."""
    for sig in (
        signal.SIGTERM,
        signal.SIGCHLD,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    ):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)


class _Forked:
    """A forked child, as ``warden.guard`` needs it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.code: int | None = None

    def poll(self) -> int | None:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def wait(self) -> int:
        while self.code is None:
            try:
                self.code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            except InterruptedError:
                continue
        return self.code

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass(frozen=True)
class _Order:
    """One sandbox as the grader asked for it: the request and the helper's environment
    (None: the grader's own, as the cold start's Popen would give)."""

    request: JailRequest
    env: dict[str, str] | None

    @classmethod
    def read(cls, message: bytes) -> _Order:
        """The grader's message; raises ValueError (a ``JailRequestError`` naming the field)."""
        data = json.loads(message)
        if not isinstance(data, dict) or set(data) != {"request", "env"}:
            raise ValueError("not a sandbox order: expected the fields request and env")
        env = data["env"]
        if env is not None and not (
            isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        ):
            raise ValueError("env: must be null or an object of strings")
        return cls(JailRequest.decode(data["request"]), env)


def _warden(order: _Order, fds: list[int]) -> None:
    """Step 1, in the template's fork: never returns."""
    from autograder.warden import guard

    out, err, status = fds
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.dup2(status, _STATUS_FD)
    os.closerange(_STATUS_FD + 1, 1 << 16)  # above all the template's request socket
    os.write(_STATUS_FD, json.dumps({"pid": os.getpid()}).encode() + b"\n")
    request = order.request
    # The environment the cold start's Popen would give: the order's, else the grader's.
    os.environ.clear()
    os.environ.update(order.env if order.env is not None else _GRADER_ENV)

    def start(env: dict[str, str], procs: list[int]) -> _Forked:
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.close(_STATUS_FD)  # only the warden talks to the grader
                for fd in procs:
                    os.write(fd, b"0")
                    os.close(fd)
                code = _unshare(request, env)
            except BaseException as exc:
                os.write(2, f"autograder.template: {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(code)
        return _Forked(pid)

    code = 70
    try:
        code = guard(request.limits, request.protections, start)
    except BaseException as exc:
        os.write(2, f"autograder.warden: {type(exc).__name__}: {exc}\n".encode())
    finally:
        try:
            os.write(_STATUS_FD, json.dumps({"rc": code}).encode() + b"\n")
        finally:
            os._exit(0)


def _unshare(request: JailRequest, env: dict[str, str]) -> int:
    """Step 2: new namespaces, then pid 1 in them (step 3); returns its exit code."""
    protections = request.protections
    libc = ctypes.CDLL(None, use_errno=True)
    if protections.namespaces:
        flags = (
            _CLONE_NEWNET | _CLONE_NEWNS | _CLONE_NEWPID | (_CLONE_NEWIPC if protections.ipc_namespace else 0)
        )
        if libc.unshare(flags) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        # unshare(1) makes every mount private before anything runs; so do we.
        if libc.mount(b"none", b"/", None, ctypes.c_ulong(_MS_REC | _MS_PRIVATE), None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            _reset_signals()
            os.environ.clear()
            os.environ.update(env)
            _GRADER_ENV.clear()  # already little (``_TEMPLATE_ENV``); none of it in a jail's memory
            module = request.helper.module
            sys.argv = [module, request.encode()]
            # What ``python -m module`` starts with: its cwd, then PYTHONPATH, then the site.
            pythonpath = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
            sys.path[:] = [os.getcwd(), *pythonpath, *_SITE_PATHS]
            sys.path_importer_cache.clear()
            warm = WarmFork(tuple(_SITE_PATHS), tuple(_IMPORT_ENV.items()))
            code = int(importlib.import_module(module).main(request, warm) or 0)
            sys.stdout.flush()
            sys.stderr.flush()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return _Forked(pid).wait()


def _reap(*, block: bool) -> None:
    try:
        while os.waitpid(-1, 0 if block else os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def serve(sock: socket.socket) -> int:
    """The template's loop: one fork per request, until the grader closes the socket."""
    _GRADER_ENV.update(os.environ)
    given = set(os.environ.get("PYTHONPATH", "").split(os.pathsep))
    _SITE_PATHS[:] = [p for p in sys.path[1:] if p not in given]
    _preload()
    while True:
        _reap(block=False)  # wardens that ended (waited for, so their CPU counts for the grader)
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
        except InterruptedError:
            continue
        if not message:
            _reap(block=True)
            return 0
        try:
            if len(fds) != 3:
                raise ValueError(f"a sandbox order comes with 3 descriptors, not {len(fds)}")
            order = _Order.read(message)
        except ValueError as exc:  # the grader's status socket closes unanswered: launch raises
            print(f"autograder.template: {exc}"[:500], file=sys.stderr)
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            try:
                _warden(order, fds)
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="autograder.template")
    parser.add_argument("--socket", type=int, required=True)
    parser.add_argument("--room", default="", help="room for each fork's command line (``set_cmdline``)")
    args = parser.parse_args(argv)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    return serve(socket.socket(fileno=args.socket))


if __name__ == "__main__":
    # Run as the package's module, not as ``__main__``: one copy of the state ``serve``
    # sets (``_SITE_PATHS``, ``_GRADER_ENV``), the one ``autograder.template`` names in a fork.
    from autograder import template as _module

    raise SystemExit(_module.main())
