"""The warden: a small root process outside the jail that owns one sandbox's
host-side resources for exactly its lifetime.

``sandbox.sandbox_argv`` puts ``python -m autograder.warden <request> -- unshare ...``
in front of every sandboxed helper (``<request>``: the helper's own ``JailRequest``,
for its limits and protections). The warden

1. leases a uid of its own for the sandbox (``UidLease``: ``UID_BASE + n``, held by an
   ``flock`` on ``LEASE_DIR/n`` for as long as the warden lives), so per-uid limits
   (RLIMIT_NPROC) and per-uid kernel state are not shared with other sandboxes;
2. creates a cgroup for the sandbox's whole process tree (``autograder.cgroups``);
3. runs the ``unshare`` command inside that cgroup with ``SANDBOX_UID_ENV`` set, and
   waits; ``unshare --pid --kill-child`` returns only once every process of the
   jail's pid namespace is gone;
4. then removes the cgroup, clears the uid's keyrings and releases the lease.

A warden killed outright (SIGKILL) cannot clean up; the next warden that leases the
same uid finds the stale record in the lease file and clears it first.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from autograder import cgroups, keyrings

if TYPE_CHECKING:
    from autograder.limits import Limits, Protections

__all__ = ["LEASE_DIR", "SANDBOX_UID_ENV", "UID_BASE", "Child", "UidLease", "guard", "main"]

UID_BASE = 2_000_000_000  # far above any real account, below the 2**32-1 "no uid"
UID_COUNT = 4096
LEASE_DIR = Path("/run/autograder/uid-leases")
SANDBOX_UID_ENV = "AUTOGRADER_SANDBOX_UID"


@dataclass
class UidLease:
    """An exclusive hold on ``uid`` while ``fd`` (an flock'd lease file) stays open."""

    uid: int
    fd: int

    @classmethod
    def acquire(cls, directory: Path = LEASE_DIR) -> UidLease:
        """The lowest free uid of the range; clears what a killed holder left behind."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for n in range(UID_COUNT):
            fd = os.open(directory / str(n), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            lease = cls(UID_BASE + n, fd)
            lease._clear_stale()
            return lease
        raise OSError(f"all {UID_COUNT} sandbox uids are leased ({directory})")

    def record(self, cgroup_paths: tuple[Path, ...]) -> None:
        """Note what this lease owns, for clean-up should the warden be killed."""
        data = json.dumps({"uid": self.uid, "cgroups": [str(p) for p in cgroup_paths]}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def _clear_stale(self) -> None:
        try:
            previous = json.loads(os.pread(self.fd, 1 << 16, 0) or b"{}")
        except ValueError:
            previous = {}
        if previous.get("cgroups"):
            cgroups.remove([Path(p) for p in previous["cgroups"]])
        keyrings.clear_for_uid(self.uid)
        self.record(())

    def release(self) -> None:
        """Clear the uid's keyrings, then free the uid for the next sandbox."""
        keyrings.clear_for_uid(self.uid)
        self.record(())
        os.close(self.fd)  # closing the fd drops the flock


class Child(Protocol):
    """The jail's process as the warden sees it (a ``subprocess.Popen`` or a fork)."""

    def poll(self) -> int | None: ...
    def wait(self) -> int: ...
    def kill(self) -> None: ...


def guard(
    limits: Limits, protections: Protections, start: Callable[[dict[str, str], list[int]], Child]
) -> int:
    """Steps 1-4 above around ``start(env, procs_fds)``, which starts the jail's first
    process with ``env`` (``SANDBOX_UID_ENV`` set when a uid is leased) and must make it
    write ``b"0"`` to each of ``procs_fds`` (open ``cgroup.procs`` files) before it runs
    anything else, so that the whole tree starts inside the cgroup. Returns its exit code.

    One copy of the warden's logic for both starts: the cold one (``main``: ``start``
    runs ``unshare`` through Popen) and the warm one (``autograder.template``: ``start``
    forks the pre-imported template, which joins, unshares and forks itself)."""
    lease = UidLease.acquire() if protections.own_uid else None
    group = None
    env = dict(os.environ)
    if lease is not None:
        env[SANDBOX_UID_ENV] = str(lease.uid)
    child: Child | None = None

    def stop(signum: int, frame: object) -> None:
        # The grader's hard kill: take the jail down now, then clean up below.
        if child is not None and child.poll() is None:
            child.kill()

    signal.signal(signal.SIGTERM, stop)
    try:
        if protections.cgroup:
            name = f"autograder-{lease.uid if lease else os.getpid()}-{os.getpid()}"
            group = cgroups.create(
                name, memory_bytes=limits.tree_memory_bytes, processes=limits.tree_processes
            )
            if lease is not None:
                lease.record(group.paths)
        fds = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in group.procs_files()] if group else []
        child = start(env, fds)
        for fd in fds:
            os.close(fd)
        return child.wait()
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        if group is not None:
            cgroups.remove(group.paths)
        if lease is not None:
            lease.release()


def main(argv: list[str] | None = None) -> int:
    """The cold start's warden: ``python -m autograder.warden <request> -- command...``."""
    from autograder.jail.request import JailRequest, JailRequestError

    parser = argparse.ArgumentParser(prog="autograder.warden")
    parser.add_argument("request", help="the sandbox's JailRequest (its limits and protections)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        request = JailRequest.decode(args.request)
    except JailRequestError as exc:
        parser.error(f"bad request: {exc}")
    limits, protections = request.limits, request.protections
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run after --")

    def start(env: dict[str, str], fds: list[int]) -> subprocess.Popen[bytes]:
        def join() -> None:  # in the child, before exec: the whole tree starts inside
            for fd in fds:
                os.write(fd, b"0")

        return subprocess.Popen(command, env=env, preexec_fn=join if fds else None)

    return guard(limits, protections, start)


if __name__ == "__main__":
    sys.exit(main())
