"""One cgroup per sandbox: memory and process limits for the submission's whole tree.

rlimits are per process (six forked children each under RLIMIT_AS still add up) or
per uid (RLIMIT_NPROC); a cgroup bounds every process of one sandbox together. The
group is created *under the grader's own cgroup* (so whatever limits the grader has
still apply above it), joined by the sandbox before it starts, and removed after.

cgroup v1 (separate ``memory`` and ``pids`` hierarchies) and cgroup v2 (one unified
hierarchy, where the grader's cgroup must delegate ``memory`` and ``pids`` to its
children) are both handled; ``version()`` says which is usable, "" for neither.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TreeCgroup", "create", "own_path", "remove", "version"]

_ROOT = Path("/sys/fs/cgroup")
_V1_CONTROLLERS = ("memory", "pids")


def own_path(controller: str) -> str | None:
    """The calling process's cgroup path in ``controller``'s hierarchy ("" = v2)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def _v2_dir() -> Path | None:
    path = own_path("")
    if path is None:
        return None
    for mount in (_ROOT, _ROOT / "unified"):
        if (mount / "cgroup.controllers").exists():
            own = mount / path.lstrip("/")
            delegated = (own / "cgroup.subtree_control").read_text().split() if own.exists() else []
            if all(c in delegated for c in _V1_CONTROLLERS):
                return own
    return None


def _v1_dirs() -> list[Path] | None:
    dirs = []
    for controller in _V1_CONTROLLERS:
        path = own_path(controller)
        base = _ROOT / controller
        if path is None or not (base / "cgroup.procs").exists():
            return None
        dirs.append(base / path.lstrip("/"))
    return dirs


@dataclass(frozen=True)
class TreeCgroup:
    """The directories of one sandbox's cgroup (one per v1 hierarchy, or one v2 dir)."""

    paths: tuple[Path, ...]

    def procs_files(self) -> list[Path]:
        return [p / "cgroup.procs" for p in self.paths]


def version() -> str:
    """ "v2", "v1" or "" — which cgroup layout this process (root) can create groups in."""
    if os.geteuid() != 0:
        return ""
    v2 = _v2_dir()
    for kind, dirs in (("v2", [v2] if v2 else None), ("v1", _v1_dirs())):
        if not dirs:
            continue
        probe = [d / f"autograder-probe-{os.getpid()}" for d in dirs]
        try:
            for p in probe:
                p.mkdir()
            return kind
        except OSError:
            continue
        finally:
            for p in probe:
                try:
                    p.rmdir()
                except OSError:
                    pass
    return ""


def create(name: str, *, memory_bytes: int, processes: int) -> TreeCgroup:
    """A new cgroup ``name`` under the caller's own, limited to ``memory_bytes`` (no
    swap) and ``processes`` (threads count too). Raises OSError if it cannot be made."""
    kind = version()
    if kind == "v2":
        own = _v2_dir()
        assert own is not None
        path = own / name
        path.mkdir()
        (path / "memory.max").write_text(str(memory_bytes))
        if (path / "memory.swap.max").exists():
            (path / "memory.swap.max").write_text("0")
        (path / "pids.max").write_text(str(processes))
        return TreeCgroup((path,))
    if kind == "v1":
        memory_dir, pids_dir = (d / name for d in _v1_dirs() or [])
        memory_dir.mkdir()
        pids_dir.mkdir()
        (memory_dir / "memory.limit_in_bytes").write_text(str(memory_bytes))
        if (memory_dir / "memory.memsw.limit_in_bytes").exists():  # swap must not be a way round
            (memory_dir / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        (pids_dir / "pids.max").write_text(str(processes))
        return TreeCgroup((memory_dir, pids_dir))
    raise OSError(f"no usable cgroup hierarchy for {name} (not root, or memory/pids not delegated)")


def remove(paths: list[Path] | tuple[Path, ...], *, wait: float = 5.0) -> bool:
    """Kill whatever still runs in these cgroups and remove them; True if all are gone.
    Never raises: it runs in clean-up paths."""
    deadline = time.monotonic() + wait
    ok = True
    for path in paths:
        while path.exists():
            try:
                pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if not pids:
                    path.rmdir()
                    break
            except FileNotFoundError:
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                ok = False
                break
            time.sleep(0.02)
    return ok
