"""Which file system holds a path, and the refusal of a SQLite gradebook on a network one.

SQLite relies on POSIX file locks, which NFS, SMB/CIFS, 9p and FUSE network file systems
implement partially or not at all: two writers can corrupt the database, and nbgrader
issue #1854 shows a gradebook left at 0 bytes. The autograder refuses such a location
before nbgrader creates anything, and says what to do instead (PostgreSQL, or a local path).

The mount table is Linux's ``/proc/self/mountinfo``; a path belongs to the mount whose
mount point is its longest prefix (by whole components), the last one listed when several
are stacked on the same point. Where there is no mount table (not Linux), nothing is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MOUNTINFO",
    "NETWORK_FILESYSTEMS",
    "Mount",
    "check_sqlite_location",
    "mount_of",
    "network_mount",
    "parse_mountinfo",
    "sqlite_path",
]

MOUNTINFO = Path("/proc/self/mountinfo")

# File-system types (as mountinfo spells them) whose locking SQLite cannot trust.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ncpfs", "coda", "ceph", "glusterfs",
        "lustre", "gpfs", "beegfs", "ocfs2", "gfs2", "davfs", "orangefs",
        "fuse.sshfs", "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse", "fuse.glusterfs", "fuse.cephfs",
        "fuse.davfs2", "fuse.juicefs", "fuse.goofys", "fuse.blobfuse", "fuse.smbnetfs",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Mount:
    """One line of the mount table: where it is mounted, its type and what is mounted."""

    mount_point: Path
    fstype: str
    source: str


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as octal escapes (\040 ...).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a ``/proc/<pid>/mountinfo`` text, in its order.

    A line is ``id parent major:minor root mount_point options [optional...] - fstype source super``;
    a line that does not have that shape raises ValueError naming it."""
    mounts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(" ")
        if "-" not in fields[6:] or len(fields) < 10:
            raise ValueError(f"mountinfo line {number} has no ' - fstype source' part: {line!r}")
        dash = fields.index("-", 6)
        if len(fields) < dash + 3:
            raise ValueError(f"mountinfo line {number} ends before its source: {line!r}")
        mounts.append(Mount(Path(_unescape(fields[4])), fields[dash + 1], _unescape(fields[dash + 2])))
    return mounts


def mount_of(path: Path, mounts: list[Mount]) -> Mount | None:
    """The mount holding the absolute ``path``: the longest mount point above it
    (the later of two equal ones: it is mounted on top)."""
    best: Mount | None = None
    for mount in mounts:
        if Path(path).is_relative_to(mount.mount_point) and (
            best is None or len(mount.mount_point.parts) >= len(best.mount_point.parts)
        ):
            best = mount
    return best


def network_mount(path: Path, mountinfo: str) -> Mount | None:
    """The network mount holding ``path`` (resolved), or None when it is local."""
    mount = mount_of(_resolved(path), parse_mountinfo(mountinfo))
    return mount if mount is not None and mount.fstype in NETWORK_FILESYSTEMS else None


def _resolved(path: Path) -> Path:
    # The database file may not exist yet; resolving the path follows the symlinks of the
    # parts that do exist, so a local-looking path that links onto NFS is seen as NFS.
    return Path(path).expanduser().resolve()


def sqlite_path(db_url: str) -> Path | None:
    """The file of a SQLite URL (relative ones resolved from the working directory), or
    None for another database or an in-memory SQLite."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    database = url.database
    if url.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        return None
    assert database is not None
    if database.startswith("file:"):  # URI filenames: sqlite:///file:path?mode=...&uri=true
        return Path(database.removeprefix("file:").split("?", 1)[0])
    return Path(database)


def check_sqlite_location(db_url: str, *, mountinfo: str | None = None) -> None:
    """Raise ValueError if ``db_url`` is a SQLite gradebook on a network file system.

    ``mountinfo`` is the mount table's text (default: this process's ``/proc/self/mountinfo``)."""
    path = sqlite_path(db_url)
    if path is None:
        return
    if mountinfo is None:
        try:
            mountinfo = MOUNTINFO.read_text()
        except OSError:
            return  # no mount table (not Linux): nothing to judge by
    mount = network_mount(path, mountinfo)
    if mount is None:
        return
    raise ValueError(
        f"the SQLite gradebook {path} would be on a network file system ({mount.fstype} from "
        f"{mount.source}, mounted at {mount.mount_point}); SQLite's file locking is unreliable there and "
        "can corrupt or empty the gradebook (nbgrader issue #1854). Use PostgreSQL "
        "(--db postgresql+psycopg://USER@HOST/DBNAME or AUTOGRADER_DB_URL), or a run folder on a local disk (--run-dir)."
    )
