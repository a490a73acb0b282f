"""CPU seconds of this process and of everything it starts, read from a cgroup of its own.

``getrusage(RUSAGE_CHILDREN)`` counts only descendants that were waited for. A sandbox's
kernel is killed with its pid namespace and never waited for by anyone the grader waits
for, so its CPU time is lost there: the grader looked cheaper than plain nbclient. The
cgroup v1 ``cpuacct`` controller counts every process that ever ran in the group, reaped
or not, and children stay in their parent's group. The sandboxes' own cgroups live in the
``memory`` and ``pids`` hierarchies only, so joining a ``cpuacct`` group changes nothing
the grader does.

Where that is not possible (not root, cgroup v2 only, no ``cpuacct``), ``CpuMeter`` falls
back to getrusage and says so in ``source``.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from autograder.cgroups import own_path

__all__ = ["CpuMeter"]

_CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def _own_cpuacct_dir() -> Path | None:
    path = own_path("cpuacct")
    return None if path is None else _CPUACCT / path.lstrip("/")


def _rusage_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuMeter:
    """Join a ``cpuacct`` group of this process's own (before starting anything) and read it.

    ``seconds()`` is monotonic: take differences. ``close()`` leaves the group."""

    def __init__(self) -> None:
        self.group: Path | None = None
        self.source = "getrusage (descendants that were waited for only: undercounts killed kernels)"
        parent = _own_cpuacct_dir()
        if os.geteuid() != 0 or parent is None or not (parent / "cpuacct.usage").exists():
            return
        group = parent / f"bench-{os.getpid()}"
        try:
            group.mkdir(exist_ok=True)
            (group / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            return
        self.group, self.parent = group, parent
        self.source = f"cgroup v1 cpuacct ({group}): every process started, reaped or not"

    def seconds(self) -> float:
        if self.group is None:
            return _rusage_seconds()
        return int((self.group / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        if self.group is None:
            return
        try:
            (self.parent / "cgroup.procs").write_text(str(os.getpid()))
            self.group.rmdir()  # fails while a straggler is still inside; the empty group is harmless
        except OSError:
            pass
        self.group = None
