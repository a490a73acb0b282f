"""The sandbox student code runs in: namespaces, a uid of its own, cgroup, rlimits.

``sandbox_argv`` wraps a sandbox helper (a ``Helper`` of ``autograder.jail``, given
its ``JailRequest``) in ``unshare --net --mount --pid --ipc --fork --kill-child``,
itself run by the warden (``autograder.warden``), a root process outside the jail
that leases the sandbox a uid of its own, puts the whole tree in a cgroup of its own
(memory and process limits for all its processes together) and cleans both up after.

The helper starts as root inside the new namespaces and calls ``enter_jail``: it builds
a new root holding only the system directories (read-only), the Python environment and
the course's own packages, fresh size-capped tmpfs ``/tmp``, ``/var/tmp``, ``/dev/shm``,
a fresh ``/proc``, and the job's scratch directory at ``JAIL_DIR`` whose ``work``
directory is a size-capped tmpfs too (nothing the student writes reaches the host's
disk), and chroots into it — solutions, hidden tests, the gradebook, other submissions
and any other copy of the course on the machine are not there to be read. Student
code then runs only after ``drop_privileges``: the leased uid (``nobody`` without a
warden), no supplementary groups, fresh keyrings, ``no_new_privs``, rlimits on memory,
processes, file size and CPU, and first in line for the OOM killer.

Where a protection is unavailable (not root, no user namespaces, no cgroups, not
Linux) ``detect_protections`` says which, and the grader reports it; it never pretends.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from autograder import cgroups, keyrings
from autograder.limits import Limits, Protections
from autograder.removal import remove_tree
from autograder.warden import LEASE_DIR, SANDBOX_UID_ENV, UID_BASE, UID_COUNT

if TYPE_CHECKING:  # the request module imports autograder.limits, never this module
    from autograder.jail.request import JailRequest

__all__ = [
    "JAIL_DIR",
    "NOBODY",
    "detect_protections",
    "drop_privileges",
    "enter_jail",
    "fill_work",
    "jail_env",
    "remove_tree",
    "sandbox_argv",
    "sandbox_uid",
]

NOBODY = 65534
JAIL_DIR = "/tmp/job"  # where the scratch directory appears inside the jail

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT = 1, 2, 4, 32
_MS_BIND, _MS_REC, _MS_PRIVATE = 4096, 16384, 1 << 18
_PR_SET_NO_NEW_PRIVS = 38
_NAMESPACES = ("--net", "--mount", "--pid", "--ipc")


@functools.cache
def detect_protections() -> Protections:
    """Probe this machine once: which of the protections above are really available."""
    linux = sys.platform.startswith("linux")
    root = linux and os.geteuid() == 0
    namespaces = ipc = False
    if linux and shutil.which("unshare"):

        def probe(flags: tuple[str, ...]) -> bool:
            command = ["unshare", *flags, "--fork", "--kill-child", "true"]
            return subprocess.run(command, capture_output=True).returncode == 0

        namespaces = probe(_NAMESPACES[:3])
        ipc = namespaces and probe(_NAMESPACES)
    # Without a mount namespace the interpreter may sit where nobody cannot reach it
    # (e.g. under /root), so switching users needs the jail too.
    jailed = root and namespaces
    try:  # where the warden keeps its uid leases
        LEASE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        leases = jailed
    except OSError:
        leases = False
    return Protections(
        namespaces=namespaces,
        unprivileged_user=jailed,
        rlimits=linux,
        ipc_namespace=ipc,
        own_uid=leases,
        cgroup=cgroups.version() if jailed else "",
        scratch_tmpfs=jailed,
        fresh_keyrings=jailed and keyrings.supported(),
    )


def sandbox_argv(request: JailRequest) -> list[str]:
    """The cold start's command for ``request``: ``python -m <helper> <request>`` inside
    fresh namespaces, under a warden (given the same request, for its limits and
    protections) when a leased uid or a cgroup is on."""
    protections = request.protections
    command = [sys.executable, "-m", request.helper.module, request.encode()]
    if protections.namespaces:
        flags = _NAMESPACES if protections.ipc_namespace else _NAMESPACES[:3]
        command = ["unshare", *flags, "--fork", "--kill-child", *command]
    if protections.own_uid or protections.cgroup:
        command = [sys.executable, "-m", "autograder.warden", request.encode(), "--", *command]
    return command


def sandbox_uid(protections: Protections) -> int | None:
    """The uid student code runs as: the warden's lease, else ``nobody``; None when
    the grader cannot switch users. Raises ValueError for a lease outside the range."""
    if not (protections.unprivileged_user and os.geteuid() == 0):
        return None
    return _leased_uid()


def _leased_uid() -> int:
    leased = os.environ.get(SANDBOX_UID_ENV)
    if leased is None:
        return NOBODY
    uid = int(leased)
    if not UID_BASE <= uid < UID_BASE + UID_COUNT:
        raise ValueError(f"{SANDBOX_UID_ENV}={leased} is outside the sandbox uid range")
    return uid


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


def enter_jail(scratch: Path, hide: list[Path], *, limits: Limits | None = None) -> Path:
    """Inside new mount+pid namespaces (as root): build a root that holds only the
    system, the Python environment, course_lib/autograder and the scratch directory
    (at JAIL_DIR, its ``work`` a fresh tmpfs owned by the sandbox uid), with fresh
    size-capped /tmp, /var/tmp, /dev/shm and a fresh /proc; chroot into it.

    ``hide`` paths are covered first as well, for the case where one lies inside a
    directory the jail keeps (defence in depth). Returns the jail's view of scratch."""
    limits = limits or Limits()
    _libc_mount("none", "/", None, _MS_REC | _MS_PRIVATE)  # nothing propagates back to the host
    # fds keep the kept directories reachable once their parents are hidden or /tmp
    # (where they may live: a CI clone, pytest's tmp_path) is covered by the new root's tmpfs.
    kept = [(os.open(p, os.O_PATH | os.O_DIRECTORY), p) for p in _code_dirs()]
    scratch_fd = os.open(scratch, os.O_PATH | os.O_DIRECTORY)
    for path in hide:
        if path.is_dir():
            _tmpfs(str(path), 4096, mode=0o755)
        elif path.exists():
            _libc_mount("/dev/null", str(path), None, _MS_BIND)
    _tmpfs("/tmp", 1024**2, mode=0o1777)  # holds only the new root's mount point
    root = Path(_JAIL_ROOT)
    root.mkdir(mode=0o755)
    _tmpfs(str(root), 1024**2, mode=0o755)  # only mount points: nobody may write here
    for name in _SYSTEM_DIRS:
        host = Path("/") / name
        if host.is_symlink():  # merged-/usr systems: /bin -> usr/bin
            (root / name).symlink_to(os.readlink(host))
        elif host.is_dir():
            _bind(str(host), root / name, read_only=True)
    _bind("/dev", root / "dev", read_only=False)  # device nodes: /dev/null, /dev/urandom
    for tmp in ("tmp", "var/tmp", "dev/shm"):
        (root / tmp).mkdir(parents=True, exist_ok=True)
        _tmpfs(str(root / tmp), limits.tmp_bytes, mode=0o1777)
    # After the fresh temp dirs, so that code kept from under /tmp is bound on top of them.
    for fd, path in kept:
        _bind(f"/proc/self/fd/{fd}", root / path.relative_to("/"), read_only=True)
        os.close(fd)
    job = root / JAIL_DIR.lstrip("/")
    _bind(f"/proc/self/fd/{scratch_fd}", job, read_only=False)
    os.close(scratch_fd)
    # The only place student code may write that the host could see: keep it in memory,
    # capped as a whole (RLIMIT_FSIZE caps only each file).
    owner = _leased_uid() if os.geteuid() == 0 else os.geteuid()
    _tmpfs(str(job / "work"), limits.scratch_bytes, mode=0o700, uid=owner)
    (root / "proc").mkdir()
    # A /proc of the new pid namespace: student code sees no grader process.
    _libc_mount("proc", str(root / "proc"), "proc", _MS_NOSUID | _MS_NODEV)
    os.chroot(root)
    os.chdir("/")
    return Path(JAIL_DIR)


def _tmpfs(target: str, size: int, *, mode: int, uid: int | None = None) -> None:
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    _libc_mount("tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size},mode={mode:o}{owner}")


def _code_dirs() -> list[Path]:
    """The interpreter, its environment and the course's packages (course_lib, autograder).

    course_lib is located, not imported: the re-verification helper must run in a
    process where student-reachable course_lib state was never created."""
    spec = importlib.util.find_spec("course_lib")
    if spec is None or spec.origin is None:
        raise RuntimeError("course_lib is not importable: the jail could not offer it to student code")
    dirs = {
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        Path(spec.origin).resolve().parent,
        Path(__file__).resolve().parent,
    }
    # Binding a directory that lies inside another kept one would be redundant.
    return sorted(d for d in dirs if not any(o != d and d.is_relative_to(o) for o in dirs))


def _bind(source: str, target: Path, *, read_only: bool) -> None:
    target.mkdir(parents=True, exist_ok=True)
    _libc_mount(source, str(target), None, _MS_BIND | _MS_REC)
    if read_only:
        _libc_mount("none", str(target), None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID)


def drop_privileges(limits: Limits, *, protections: Protections, uid: int | None = None) -> None:
    """Apply rlimits, then become the sandbox uid for good (when root): ``uid``, else
    ``sandbox_uid`` (the warden's lease, else nobody). Student code gets a fresh
    session keyring, its uid's keyrings emptied, and is the OOM killer's first choice."""
    if protections.rlimits:
        for which, value in (
            (resource.RLIMIT_AS, limits.memory_bytes),
            (resource.RLIMIT_NPROC, limits.processes),
            (resource.RLIMIT_FSIZE, limits.file_bytes),
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))
    target = uid if uid is not None else sandbox_uid(protections)
    if target is not None and os.geteuid() == 0:
        # Written while privileged, this is also the floor student code cannot lower:
        # under the tree's memory limit the kernel kills student processes, not the helper.
        try:
            Path("/proc/self/oom_score_adj").write_text("1000")
        except OSError:
            pass
        os.setgroups([])
        os.setresgid(target, target, target)
        os.setresuid(target, target, target)
        if protections.fresh_keyrings:
            keyrings.fresh_session()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def fill_work(beside: Path, work: Path, uid: int | None) -> int:
    """Copy the files handed in beside the notebook (``beside``, the job's root-only folder
    prepared by ``autograder.beside``) into the fresh ``work`` dir, owned by ``uid`` and
    writable by it: the student's code may change its own copies, never the originals.

    Runs as root before privileges are dropped, into a work dir no student code has
    touched yet; still, nothing is followed (O_NOFOLLOW, O_EXCL). A file that does not
    fit (the work dir is a size-capped tmpfs) is left out. Returns the files copied."""
    if not beside.is_dir():
        return 0
    copied = 0
    for dirpath, dirnames, filenames in os.walk(beside, followlinks=False):
        here = work / Path(dirpath).relative_to(beside)
        for name in sorted(dirnames):
            try:
                (here / name).mkdir(mode=0o755)
                if uid is not None:
                    os.chown(here / name, uid, uid, follow_symlinks=False)
            except OSError:
                dirnames.remove(name)  # its files have nowhere to go
        for name in sorted(filenames):
            target, created = here / name, False
            try:
                src = os.open(Path(dirpath) / name, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                    created = True
                    try:
                        while chunk := os.read(src, 1 << 20):
                            os.write(dst, chunk)
                        if uid is not None:
                            os.fchown(dst, uid, uid)
                    finally:
                        os.close(dst)
                finally:
                    os.close(src)
                copied += 1
            except OSError:  # full, or not a file: the run goes on without it
                if created:
                    target.unlink(missing_ok=True)
    return copied


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
