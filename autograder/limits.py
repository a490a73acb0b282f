"""What a sandbox may use (``Limits``) and which walls the machine gives it (``Protections``).

Plain frozen dataclasses with no imports of the project: the trusted side (``sandbox``,
``warden``, the grader) and the jail's ``JailRequest`` all carry them, so they live here
rather than in any one of those modules.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits", "Protections"]


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission. Sizes in bytes, times in seconds."""

    memory_bytes: int = 3 * 1024**3  # address space per process: torch alone maps ~1 GB
    processes: int = 512  # RLIMIT_NPROC, per uid: with a leased uid, per sandbox
    file_bytes: int = 64 * 1024**2
    cpu_seconds: int = 600
    cell_timeout: float = 60.0
    notebook_budget: float = 300.0  # wall clock for one notebook, then the hard kill
    output_bytes: int = 256 * 1024  # per cell, every message kind counted; the rest is cut
    verify_timeout: float = 30.0  # per exercise re-verification
    # cgroup: every process of the sandbox together, tmpfs pages too. Above memory_bytes, so a
    # single process that allocates too much gets a MemoryError first, as in a notebook.
    tree_memory_bytes: int = 4 * 1024**3
    tree_processes: int = 256  # cgroup: processes and threads of the sandbox together
    scratch_bytes: int = 256 * 1024**2  # the work directory (a tmpfs)
    tmp_bytes: int = 64 * 1024**2  # each of the jail's /tmp, /var/tmp, /dev/shm
    notebook_output_bytes: int = 2 * 1024**2  # all cells together
    helper_memory_bytes: int = 1024**3  # address space of the root helper driving the kernel


@dataclass(frozen=True)
class Protections:
    """Which walls this machine gives the sandbox; ``summary`` names each of them."""

    namespaces: bool  # separate network, mount and pid namespaces
    unprivileged_user: bool  # student code runs as a uid other than the grader's
    rlimits: bool
    ipc_namespace: bool = False  # SysV IPC and POSIX message queues die with the sandbox
    own_uid: bool = False  # a uid leased per sandbox instead of the shared nobody
    cgroup: str = ""  # "v1"/"v2": memory and process limits on the whole tree; "" = none
    scratch_tmpfs: bool = False  # work dir and temp dirs are size-capped tmpfs
    fresh_keyrings: bool = False  # keyrings emptied before and after each sandbox

    @property
    def missing(self) -> tuple[str, ...]:
        gaps = []
        if not self.namespaces:
            gaps.append("no namespaces (student code can use the network and see the file system)")
        if not self.unprivileged_user:
            gaps.append("not root: student code runs as the grader's own user")
        if not self.rlimits:
            gaps.append("no rlimits (memory/process/file-size limits off)")
        if self.namespaces and not self.ipc_namespace:
            gaps.append("no IPC namespace (shared memory and message queues outlive a sandbox)")
        if self.unprivileged_user and not self.own_uid:
            gaps.append("no per-sandbox uid (every sandbox runs as nobody and shares its process limit)")
        if not self.cgroup:
            gaps.append("no cgroup (memory and process limits are per process, not per submission)")
        if not self.scratch_tmpfs:
            gaps.append("no size-capped tmpfs scratch (student files reach the host disk)")
        if not self.fresh_keyrings:
            gaps.append("no keyring clearing (kernel keys can outlive a sandbox)")
        return tuple(gaps)

    @property
    def summary(self) -> str:
        if not self.missing:
            return (
                "sandbox: namespaces (net, mount, pid, ipc), a leased uid per sandbox, "
                f"cgroup {self.cgroup} (memory, pids of the whole tree), size-capped tmpfs scratch, "
                "fresh keyrings, rlimits — all protections on"
            )
        return "WARNING: reduced protection — " + "; ".join(self.missing)
