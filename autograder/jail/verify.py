"""Re-verification inside the sandbox: a template process, one fresh child per exercise.

``python -m autograder.jail.verify`` is started by ``autograder.verify.reverify`` in
fresh namespaces. The *template* (root inside the jail; it never runs student code)
imports numpy, matplotlib (Agg), the IPython transformer and, when the notebook uses
it, torch — once — and never course_lib. Per exercise it forks a *child* that

1. reads its own cases (root-only file), then ``unshare(CLONE_NEWNS | CLONE_NEWIPC)``
   so that what follows does not affect its siblings;
2. mounts fresh ``/tmp``, ``/var/tmp``, ``/dev/shm`` and work folder (nothing a child
   writes reaches the next one) and binds the exercise's course_lib *view* read-only
   over course_lib (and over the support modules it replaces): the exercise's
   references do not exist in this process;
3. drops privileges, replays the cells (``autograder.jail.replay``), calls the answer on the
   cases and streams the raw outputs back as ``autograder.wire`` frames.

The template enforces the time boxes from outside too (a cell the answer does not use
that ignores SIGALRM is killed and the exercise restarted without it) and relays each
child's bytes, undecoded, to the parent as one JSON line per exercise.
"""

from __future__ import annotations

import base64
import copy
import ctypes
import gc
import importlib
import json
import os
import re
import select
import signal
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder import wire
from autograder.jail.fork import begin_warm
from autograder.jail.replay import (
    OPTIONAL_CELL_SECONDS,
    OPTIONAL_POOL_FRACTION,
    CellTimeout,
    evidence_writer,
    fresh_namespace,
    run_cells,
    time_box,
)
from autograder.jail.request import EVIDENCE_FD, JailRequest, WarmFork, exercise_seconds, request_from_argv
from autograder.limits import Limits, Protections
from autograder.replay import ReplayCell

__all__ = ["MAX_REPORT", "REPORT_MARGIN", "main"]

MAX_REPORT = 64 * 1024**2  # bytes one child may send back
REPORT_MARGIN = 1.0  # seconds of an exercise kept for sending the report
WATCHDOG_GRACE = 1.5  # a boxed cell still running this long after its box is killed from outside
_CLONE_NEWNS, _CLONE_NEWIPC = 0x00020000, 0x08000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT = 1, 2, 4, 32
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18
_PROGRESS = re.compile(rb"^([BETC])(?: (\d{1,6}))?$")


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    if _libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} -> {target}: {os.strerror(err)}")


def _bind(source: str, target: str, *, read_only: bool) -> None:
    _mount(source, target, None, _MS_BIND | _MS_REC)
    if read_only:
        _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID)


# ---------------------------------------------------------------- the child, as root


_VIEWS = "/tmp/.views"  # the template's root-only mounts of every view; a child keeps only its own


def _mount_views(view_fds: list[int]) -> None:
    """In the template, after the chroot: every view at ``_VIEWS/<k>`` (a child cannot
    bind from an fd of its parent's mount namespace, only from a path of its own copy)."""
    os.mkdir(_VIEWS, 0o700)
    for k, fd in enumerate(view_fds):
        os.mkdir(f"{_VIEWS}/{k}", 0o700)
        _bind(f"/proc/self/fd/{fd}", f"{_VIEWS}/{k}", read_only=True)
        os.close(fd)


def _isolate(item: dict, index: int, course_lib: str, jail: Path, uid: int | None) -> None:
    """Own mount and IPC namespaces; fresh writable places; the view over course_lib."""
    if _libc().unshare(_CLONE_NEWNS | _CLONE_NEWIPC) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _bind(f"{_VIEWS}/{index}/course_lib", course_lib, read_only=True)
    for name in item["lib"]:
        _bind(f"{_VIEWS}/{index}/lib/{name}", str(jail / "lib" / name), read_only=True)
    if _libc().umount2(_VIEWS.encode(), 2) != 0:  # MNT_DETACH: the other views are gone for good
        for k in range(1 << 16):
            if not os.path.isdir(f"{_VIEWS}/{k}"):
                break
            _libc().umount2(f"{_VIEWS}/{k}".encode(), 2)
    # Fresh /tmp: keep what is mounted under it (the job folder, code kept from under /tmp).
    keep = [(p, ro) for p, ro in _mounts_under("/tmp") if not p.startswith(_VIEWS)]
    fds = [(os.open(path, os.O_PATH), path, ro) for path, ro in keep]
    _mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=256m,mode=1777")
    for fd, path, ro in fds:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(path, exist_ok=True)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).touch()
        _bind(f"/proc/self/fd/{fd}", path, read_only=ro)
        os.close(fd)
    for path in ("/var/tmp", "/dev/shm"):
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=256m,mode=1777")
    # The work folder belongs to the uid the student's code will run as (the sandbox's
    # leased uid), so an honest np.save("w.npy") works as it did in the notebook.
    owner = f",uid={uid},gid={uid}" if uid is not None and os.geteuid() == 0 else ""
    _mount("tmpfs", str(jail / "work"), "tmpfs", _MS_NOSUID | _MS_NODEV, f"size=256m,mode=0700{owner}")


def _mounts_under(top: str) -> list[tuple[str, bool]]:
    """Top-most mount points strictly under ``top``, with whether each is read-only."""
    found: list[tuple[str, bool]] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4].encode().decode("unicode_escape")
        if point.startswith(top + "/"):
            found.append((point, "ro" in fields[5].split(",")))
    points = [p for p, _ in found]
    return [(p, ro) for p, ro in found if not any(p != o and p.startswith(o + "/") for o in points)]


def _child(
    item: dict,
    index: int,
    *,
    jail: Path,
    plan: dict,
    skip: set[int],
    deadline: float,
    report_fd: int,
    limits: Limits,
    protections: Protections,
) -> None:
    from autograder.sandbox import drop_privileges, fill_work, sandbox_uid

    raw_cases = (jail / "verify" / "cases" / f"{index}.bin").read_bytes()
    uid = sandbox_uid(protections)
    if protections.namespaces:
        _isolate(item, index, plan["course_lib"], jail, uid)
    else:  # reduced protection (said so by the grader): the view only shadows on sys.path
        view = plan["items"][index]["view"]
        sys.path[:0] = [f"{view}/lib", view]
    # The files handed in beside the notebook, in this child's fresh work dir (as in the kernel's).
    fill_work(jail / "beside", jail / "work", uid)
    os.chdir(jail / "work")
    # The kernel imports from its cwd; here the work dir comes last, so nothing in it can
    # stand in for an installed module or the view over course_lib.
    if str(jail / "work") not in sys.path:
        sys.path.append(str(jail / "work"))
    drop_privileges(limits, protections=protections, uid=uid)
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    _replay_and_call(item, raw_cases, skip=skip, deadline=deadline, report_fd=report_fd, limits=limits)


def _replay_and_call(
    item: dict, raw_cases: bytes, *, skip: set[int], deadline: float, report_fd: int, limits: Limits
) -> None:
    """As ``nobody`` with the view in place: replay, then call the answer on every case."""
    progress = evidence_writer(EVIDENCE_FD)

    def frame(value: dict) -> None:
        data = wire.dumps(value)
        view = memoryview(struct.pack(">I", len(data)) + data)
        while view:
            view = view[os.write(report_fd, view) :]

    # The view's runtime (it exists only in a view, not in the course), before any student code.
    withheld_runtime = importlib.import_module("course_lib._withheld")

    refused = withheld_runtime.ReferenceWithheld
    reached = withheld_runtime.REACHED
    namespace = fresh_namespace()
    cells = [ReplayCell(c["index"], c["source"], c["needed"], c["setup"]) for c in item["cells"]]
    pool = max(OPTIONAL_CELL_SECONDS, OPTIONAL_POOL_FRACTION * limits.verify_timeout)
    issues, setup_error = run_cells(
        cells, namespace, skip=skip, deadline=deadline, pool=pool, progress=progress, withheld=refused
    )
    for cell, kind, message in issues:
        frame({"k": "issue", "i": cell, "kind": kind, "msg": message})
    if setup_error:
        frame({"k": "setup", "msg": setup_error})
        return
    name = item["name"]
    if name not in namespace:
        frame({"k": "defined", "ok": False})
        return
    frame({"k": "defined", "ok": True})
    answer = namespace[name]
    cases = wire.loads(raw_cases, torch_tensors=True) if item["kind"] == "function" else []
    progress("C")
    reached_before = len(reached)
    if item["kind"] == "value":
        frame({"k": "value", "out": _sendable(answer)})
    for n, (args, kwargs) in enumerate(cases):
        left = deadline - time.monotonic()
        if left <= 0.05:
            break
        try:
            with time_box(left):
                value = answer(*copy.deepcopy(tuple(args)), **copy.deepcopy(kwargs))
            out = _sendable(value)
        except CellTimeout:
            out = ["err", f"did not return within the {exercise_seconds(limits):.0f} s of this exercise"]
        except refused as exc:
            out = ["err", f"called a withheld reference: {exc}"[:300]]
        except BaseException as exc:
            out = ["err", f"{type(exc).__name__}: {exc}"[:300]]
        frame({"k": "case", "n": n, "out": out})
        if out[0] == "err" and out[1].startswith("did not return"):
            break
    frame({"k": "done", "reached": [str(r) for r in reached[reached_before:]]})


def _sendable(value: Any) -> list:
    try:
        wire.dumps(value)
    except wire.WireError as exc:
        return ["err", f"the answer returned something that is not numbers/arrays ({exc})"]
    except BaseException as exc:  # a hostile object raising from __len__ or similar
        return ["err", f"the answer's value cannot be read ({type(exc).__name__})"]
    return ["ok", value]


# ---------------------------------------------------------------- the template


@dataclass
class _Run:
    """What the template saw of one child."""

    report: bytearray
    lines: list[str]
    status: str  # "ok" | "timed out" | "too large" | "watchdog"
    cell: int | None = None  # the cell running when the child was stopped


def _watch(pid: int, report_r: int, progress_r: int, deadline: float, optional: set[int]) -> _Run:
    run = _Run(bytearray(), [], "ok")
    pending, open_fds = b"", {report_r, progress_r}
    box_end: float | None = None
    begun: set[int] = set()  # each cell begins once per run: a repeated "B" is student code's
    # The child's end, seen directly: a process the student left behind (double fork,
    # setsid) may hold the pipes open, so their end-of-file may never come.
    try:
        exited: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        exited = None

    def take(fd: int) -> bool:
        """Read what ``fd`` has; False at its end (or when the report is too large)."""
        nonlocal pending, box_end
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return False
        if fd == report_r:
            run.report += chunk
            if len(run.report) > MAX_REPORT:
                run.status = "too large"
                return False
            return True
        pending += chunk
        *complete, pending = pending.split(b"\n")
        pending = pending[-4096:]  # a line without an end is not a progress line
        for line in complete[:10_000]:
            run.lines.append(line[:300].decode(errors="replace"))
            match = _PROGRESS.match(line)
            if match is None:
                continue
            kind, number = match.group(1), match.group(2)
            if kind == b"B" and number is not None and int(number) not in begun:
                run.cell = int(number)
                begun.add(run.cell)
                box_end = (
                    time.monotonic() + OPTIONAL_CELL_SECONDS + WATCHDOG_GRACE
                    if run.cell in optional
                    else None
                )
            elif kind in (b"E", b"T", b"C"):
                run.cell, box_end = None, None
        return True

    try:
        while open_fds:
            now = time.monotonic()
            limit = min(deadline, box_end) if box_end is not None else deadline
            if now >= limit:
                run.status = (
                    "watchdog" if box_end is not None and now >= box_end and now < deadline else "timed out"
                )
                break
            watched = [*open_fds, *([exited] if exited is not None else [])]
            ready, _, _ = select.select(watched, [], [], limit - now)
            if exited is not None and exited in ready:
                # The child is gone: what it wrote is in the pipes now; read it and stop
                # (a bounded drain: whatever it left behind may still be writing).
                drain_until = time.monotonic() + 0.5
                while open_fds and time.monotonic() < drain_until:
                    readable, _, _ = select.select(list(open_fds), [], [], 0)
                    if not readable:
                        break
                    for fd in readable:
                        if not take(fd):
                            open_fds.discard(fd)
                            if run.status == "too large":
                                return run
                break
            for fd in ready:
                if not take(fd):
                    open_fds.discard(fd)
                    if run.status == "too large":
                        return run
    finally:
        if exited is not None:
            os.close(exited)
    return run


def _reap(pid: int) -> None:
    # The child, then (only as the jail's pid 1, where -1 means "this jail") anything it
    # left behind, so nothing from one exercise survives into the next.
    for target in (pid, -1) if os.getpid() == 1 else (pid,):
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        while os.waitpid(-1, 0)[0]:
            pass
    except ChildProcessError:
        pass


def _preload(torch: bool) -> None:
    """Import once what every child needs, so a fork starts warm."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import numpy  # noqa: F401
    from IPython.core.inputtransformer2 import TransformerManager

    TransformerManager().transform_cell("%matplotlib inline\n!ls\nx?\n")
    if torch:
        import torch as _torch  # noqa: F401


def _forget_course_lib() -> None:
    # enter_jail imports course_lib to find its folder; nothing of it may reach a child.
    for name in [n for n in sys.modules if n == "course_lib" or n.startswith("course_lib.")]:
        del sys.modules[name]
    gc.collect()


def main(request: JailRequest, warm: WarmFork | None = None) -> int:
    """Pid 1 of the sandbox (root): re-verify every exercise of the job's plan
    (``verify/plan.json`` in ``request.scratch``), one JSON line each on stdout.
    ``warm``: this process is a fork of the warm template (None: started cold)."""
    from autograder.sandbox import enter_jail

    if warm is not None:
        begin_warm(request)
    limits, protections = request.limits, request.protections
    plan = json.loads((request.scratch / "verify" / "plan.json").read_text())
    view_fds = [os.open(item["view"], os.O_PATH | os.O_DIRECTORY) for item in plan["items"]]
    jail = enter_jail(request.scratch, list(request.hide)) if protections.namespaces else request.scratch
    if protections.namespaces:
        _mount_views(view_fds)
    _forget_course_lib()
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    results = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    _preload(plan["torch"])

    def send(message: dict) -> None:
        os.write(results, json.dumps(message).encode() + b"\n")

    skip: set[int] = set()  # cells that ran out of their time box or stopped the process
    for index, item in enumerate(plan["items"]):
        start = time.monotonic()
        deadline = start + exercise_seconds(limits) - REPORT_MARGIN
        optional = {c["index"] for c in item["cells"] if not c["needed"]}
        killed: list[int] = []  # ignored its time box: the watchdog killed the process
        crashed: list[int] = []  # ended the process itself (os._exit, a crash, a signal)
        while True:
            run = _fork_child(item, index, jail, plan, skip, deadline, limits, protections, optional)
            # A cell the answer does not need stopped the whole process — it ignored its time
            # box (the watchdog killed it) or ended the process itself (os._exit, a crash):
            # restart this exercise without it, as far as the time allows.
            stopped_it = run.status == "watchdog" or (run.status == "ok" and run.cell in optional)
            if stopped_it and run.cell is not None and deadline - time.monotonic() > 2.0:
                skip.add(run.cell)
                (killed if run.status == "watchdog" else crashed).append(run.cell)
                continue
            break
        for line in run.lines:
            match = _PROGRESS.match(line.encode())
            # Only a cell this answer did not need is skipped later (where it is not needed
            # either, see run_cells): a needed cell cut here says nothing about the next one.
            if (
                match
                and match.group(1) == b"T"
                and match.group(2) is not None
                and int(match.group(2)) in optional
            ):
                skip.add(int(match.group(2)))
        send({
            "name": item["name"],
            "status": run.status,
            "cell": run.cell,
            "killed": killed,
            "crashed": crashed,
            "lines": run.lines[:2000],
            "report": base64.b64encode(bytes(run.report)).decode(),
            "seconds": time.monotonic() - start,
        })  # fmt: skip
    return 0


def _fork_child(
    item: dict,
    index: int,
    jail: Path,
    plan: dict,
    skip: set[int],
    deadline: float,
    limits: Limits,
    protections: Protections,
    optional: set[int],
) -> _Run:
    report_r, report_w = os.pipe()
    progress_r, progress_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            # Only two pipes stay open: above all not the template's line to the parent,
            # where student code could write verdict lines of its own.
            os.dup2(progress_w, EVIDENCE_FD)
            report = os.dup(report_w) if report_w > EVIDENCE_FD else report_w
            os.closerange(3, report)
            os.closerange(report + 1, EVIDENCE_FD)
            os.closerange(EVIDENCE_FD + 1, 1 << 16)
            _child(
                item, index, jail=jail, plan=plan, skip=set(skip), deadline=deadline,
                report_fd=report, limits=limits, protections=protections,
            )  # fmt: skip
        except BaseException as exc:  # before student code: the grader's own failure, said
            try:
                os.write(
                    EVIDENCE_FD, f"X {type(exc).__name__}: {exc}"[:300].replace("\n", " ").encode() + b"\n"
                )
            except OSError:
                pass
            code = 70
        finally:
            os._exit(code)
    os.close(report_w)
    os.close(progress_w)
    run = _watch(pid, report_r, progress_r, deadline + REPORT_MARGIN / 2, optional)
    _reap(pid)
    os.close(report_r)
    os.close(progress_r)
    return run


if __name__ == "__main__":
    raise SystemExit(main(request_from_argv(sys.argv[1:])))
