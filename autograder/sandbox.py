"""The sandbox student code runs in: namespaces, an unprivileged user, rlimits.

``sandbox_argv`` wraps a trusted helper (``autograder.execute`` or
``autograder.verify``) in ``unshare --net --mount --pid --fork --kill-child``. The
helper starts as root inside the new namespaces and calls ``enter_jail``: it builds
a new root holding only the system directories (read-only), the Python environment and
the course's own packages, fresh ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/proc``, and
the job's scratch directory at ``JAIL_DIR``, and chroots into it — solutions, hidden
tests, the gradebook, other submissions and any other copy of the course on the
machine are not there to be read. Student code then runs only
after ``drop_privileges``: uid/gid 65534 (``nobody``), no supplementary groups,
``no_new_privs``, rlimits on memory, processes, file size and CPU.

Where a protection is unavailable (not root, no user namespaces, not Linux)
``detect_protections`` says which, and the grader reports it; it never pretends.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "JAIL_DIR",
    "NOBODY",
    "Limits",
    "Protections",
    "detect_protections",
    "drop_privileges",
    "enter_jail",
    "jail_env",
    "sandbox_argv",
]

NOBODY = 65534
JAIL_DIR = "/tmp/job"  # where the scratch directory appears inside the jail

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT = 1, 2, 4, 32
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18
_PR_SET_NO_NEW_PRIVS = 38


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission. Sizes in bytes, times in seconds."""

    memory_bytes: int = 3 * 1024**3  # address space: torch alone maps ~1 GB
    processes: int = 512  # per uid: counts threads of every sandbox running at once
    file_bytes: int = 64 * 1024**2
    cpu_seconds: int = 600
    cell_timeout: float = 60.0
    notebook_budget: float = 300.0  # wall clock for one notebook, then the hard kill
    output_bytes: int = 256 * 1024  # per cell; the rest is cut
    verify_timeout: float = 30.0  # per exercise re-verification


@dataclass(frozen=True)
class Protections:
    namespaces: bool  # separate network, mount and pid namespaces
    unprivileged_user: bool  # student code runs as uid 65534
    rlimits: bool

    @property
    def missing(self) -> tuple[str, ...]:
        gaps = []
        if not self.namespaces:
            gaps.append("no namespaces (student code can use the network and see the file system)")
        if not self.unprivileged_user:
            gaps.append("not root: student code runs as the grader's own user")
        if not self.rlimits:
            gaps.append("no rlimits (memory/process/file-size limits off)")
        return tuple(gaps)

    @property
    def summary(self) -> str:
        if not self.missing:
            return "sandbox: namespaces (net, mount, pid), uid nobody, rlimits — all protections on"
        return "WARNING: reduced protection — " + "; ".join(self.missing)


@functools.cache
def detect_protections() -> Protections:
    linux = sys.platform.startswith("linux")
    root = linux and os.geteuid() == 0
    namespaces = False
    if linux and shutil.which("unshare"):
        probe = subprocess.run(
            ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "true"],
            capture_output=True,
        )
        namespaces = probe.returncode == 0
    # Without a mount namespace the interpreter may sit where nobody cannot reach it
    # (e.g. under /root), so switching users needs the jail too.
    return Protections(namespaces=namespaces, unprivileged_user=root and namespaces, rlimits=linux)


def sandbox_argv(module: str, args: list[str], protections: Protections) -> list[str]:
    """The command that runs ``python -m module args`` inside fresh namespaces."""
    command = [sys.executable, "-m", module, *args]
    if protections.namespaces:
        return ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", *command]
    return command


def _libc_mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    if libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} -> {target}: {os.strerror(err)}")


# What student code may see of the machine: the system (read-only), the interpreter and
# its environment, and the course's own packages. Everything else — other checkouts of
# the course, home directories, the gradebook, other submissions — is simply absent.
_SYSTEM_DIRS = ("usr", "etc", "sys", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_JAIL_ROOT = "/tmp/.jail-root"  # inside this namespace's own /tmp tmpfs, invisible to the host


def enter_jail(scratch: Path, hide: list[Path]) -> Path:
    """Inside new mount+pid namespaces (as root): build a root that holds only the
    system, the Python environment, course_lib/autograder and the scratch directory
    (at JAIL_DIR), with fresh /tmp, /var/tmp, /dev/shm and /proc; chroot into it.

    ``hide`` paths are covered first as well, for the case where one lies inside a
    directory the jail keeps (defence in depth). Returns the jail's view of scratch."""
    _libc_mount("none", "/", None, _MS_REC | _MS_PRIVATE)  # nothing propagates back to the host
    # fds keep the kept directories reachable once their parents are hidden or /tmp
    # (where they may live: a CI clone, pytest's tmp_path) is covered by the new root's tmpfs.
    kept = [(os.open(p, os.O_PATH | os.O_DIRECTORY), p) for p in _code_dirs()]
    scratch_fd = os.open(scratch, os.O_PATH | os.O_DIRECTORY)
    for path in hide:
        if path.is_dir():
            _libc_mount("tmpfs", str(path), "tmpfs", _MS_NOSUID | _MS_NODEV, "size=4k,mode=0755")
        elif path.exists():
            _libc_mount("/dev/null", str(path), None, _MS_BIND)
    _libc_mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=256m,mode=1777")
    root = Path(_JAIL_ROOT)
    root.mkdir(mode=0o755)
    _libc_mount("tmpfs", str(root), "tmpfs", _MS_NOSUID | _MS_NODEV, "size=256m,mode=0755")
    for name in _SYSTEM_DIRS:
        host = Path("/") / name
        if host.is_symlink():  # merged-/usr systems: /bin -> usr/bin
            (root / name).symlink_to(os.readlink(host))
        elif host.is_dir():
            _bind(str(host), root / name, read_only=True)
    _bind("/dev", root / "dev", read_only=False)  # device nodes: /dev/null, /dev/urandom
    for tmp in ("tmp", "var/tmp", "dev/shm"):
        (root / tmp).mkdir(parents=True, exist_ok=True)
        _libc_mount("tmpfs", str(root / tmp), "tmpfs", _MS_NOSUID | _MS_NODEV, "size=256m,mode=1777")
    # After the fresh temp dirs, so that code kept from under /tmp is bound on top of them.
    for fd, path in kept:
        _bind(f"/proc/self/fd/{fd}", root / path.relative_to("/"), read_only=True)
        os.close(fd)
    _bind(f"/proc/self/fd/{scratch_fd}", root / JAIL_DIR.lstrip("/"), read_only=False)
    os.close(scratch_fd)
    (root / "proc").mkdir()
    # A /proc of the new pid namespace: student code sees no grader process.
    _libc_mount("proc", str(root / "proc"), "proc", _MS_NOSUID | _MS_NODEV)
    os.chroot(root)
    os.chdir("/")
    return Path(JAIL_DIR)


def _code_dirs() -> list[Path]:
    """The interpreter, its environment and the course's packages (course_lib, autograder)."""
    import course_lib

    dirs = {
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        Path(course_lib.__file__).resolve().parent,
        Path(__file__).resolve().parent,
    }
    # Binding a directory that lies inside another kept one would be redundant.
    return sorted(d for d in dirs if not any(o != d and d.is_relative_to(o) for o in dirs))


def _bind(source: str, target: Path, *, read_only: bool) -> None:
    target.mkdir(parents=True, exist_ok=True)
    _libc_mount(source, str(target), None, _MS_BIND | _MS_REC)
    if read_only:
        _libc_mount("none", str(target), None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID)


def drop_privileges(limits: Limits, *, protections: Protections) -> None:
    """Apply rlimits, then become ``nobody`` for good (when root)."""
    if protections.rlimits:
        for which, value in (
            (resource.RLIMIT_AS, limits.memory_bytes),
            (resource.RLIMIT_NPROC, limits.processes),
            (resource.RLIMIT_FSIZE, limits.file_bytes),
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))
    if protections.unprivileged_user and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def jail_env(home: Path, pythonpath: list[str]) -> dict[str, str]:
    """A minimal environment for student code: no grader secrets, writable HOME."""
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL") if k in os.environ}
    keep.update(
        HOME=str(home),
        IPYTHONDIR=str(home / ".ipython"),
        MPLCONFIGDIR=str(home / ".matplotlib"),
        JUPYTER_RUNTIME_DIR=str(home / ".jupyter"),
        MPLBACKEND="Agg",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONPATH=os.pathsep.join(pythonpath),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
    )
    return keep
