"""A SQLite gradebook on a network file system is refused before anything is created
(nbgrader issue #1854 left a 0-byte database); PostgreSQL and local paths are not.

The mount tables are written by hand in ``/proc/self/mountinfo``'s format (proc(5)):
``id parent major:minor root mount_point options [optional fields] - fstype source super_options``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder import mounts
from autograder.cli import main
from autograder.mounts import Mount, check_sqlite_location, network_mount, parse_mountinfo, sqlite_path
from tinycourse import SUPPORT

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:40 / /mnt/class rw,relatime shared:5 - nfs4 fileserver:/export/class rw,vers=4.2
31 30 8:17 / /mnt/class/local rw - ext4 /dev/vdb rw
32 22 0:42 / /mnt/class\\040room rw - cifs //srv/share rw
33 22 0:43 / /home/ta/remote rw,nosuid shared:7 master:2 - fuse.sshfs ta@lab:/data rw
34 22 0:44 / /srv/9p rw - 9p hostshare rw
35 22 8:33 / /mnt/classroom rw - ext4 /dev/vdc rw
36 22 0:45 / /srv/stacked rw - nfs fileserver:/old rw
37 36 0:46 / /srv/stacked rw - tmpfs tmpfs rw
"""


@pytest.mark.parametrize(
    ("path", "fstype"),
    [
        ("/mnt/class/run/course/gradebook.db", "nfs4"),
        ("/mnt/class", "nfs4"),
        ("/mnt/class/local/gradebook.db", None),  # a local disk mounted inside the NFS share
        ("/mnt/classroom/gradebook.db", None),  # /mnt/class is a prefix of the string, not of the path
        ("/mnt/class room/gradebook.db", "cifs"),  # \040 in mountinfo is a space
        ("/home/ta/remote/course/gradebook.db", "fuse.sshfs"),  # optional fields before the dash
        ("/srv/9p/gradebook.db", "9p"),
        ("/srv/stacked/gradebook.db", None),  # the tmpfs mounted on top of the NFS hides it
        ("/var/lib/gradebook.db", None),
    ],
)
def test_network_mount_is_the_longest_mount_point_above_the_path(path: str, fstype: str | None) -> None:
    found = network_mount(Path(path), MOUNTINFO)
    assert (found.fstype if found else None) == fstype


def test_parse_mountinfo_reads_the_fields_after_the_dash() -> None:
    table = parse_mountinfo(MOUNTINFO)
    assert len(table) == 9
    assert table[4] == Mount(Path("/home/ta/remote"), "fuse.sshfs", "ta@lab:/data")
    with pytest.raises(ValueError, match="mountinfo line 2 has no ' - fstype source' part"):
        parse_mountinfo("22 1 8:1 / / rw - ext4 /dev/vda rw\n23 22 0:40 / /mnt rw nfs4 srv:/x rw\n")


def test_a_symlink_into_the_share_is_seen_through(tmp_path: Path) -> None:
    link = tmp_path / "run"
    link.symlink_to("/mnt/class/run")  # the target need not exist: the gradebook is not made yet
    table = MOUNTINFO + f"50 22 0:50 / {tmp_path} rw - ext4 /dev/vde rw\n"
    assert network_mount(link / "gradebook.db", table).fstype == "nfs4"


def test_sqlite_path_of_urls() -> None:
    assert sqlite_path("sqlite:////mnt/class/gradebook.db") == Path("/mnt/class/gradebook.db")
    assert sqlite_path("sqlite:///gradebook.db") == Path("gradebook.db")  # relative to the working dir
    assert sqlite_path("sqlite://") is None and sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql+psycopg://grader@db.example.org/course") is None


def test_sqlite_on_nfs_is_refused_naming_path_type_and_fix() -> None:
    with pytest.raises(ValueError) as info:
        check_sqlite_location("sqlite:////mnt/class/run/course/gradebook.db", mountinfo=MOUNTINFO)
    message = str(info.value)
    for part in ("/mnt/class/run/course/gradebook.db", "nfs4", "fileserver:/export/class", "PostgreSQL", "local disk", "#1854"):
        assert part in message, part
    # Not refused: a local SQLite, any PostgreSQL URL, an in-memory SQLite.
    check_sqlite_location("sqlite:////mnt/class/local/gradebook.db", mountinfo=MOUNTINFO)
    check_sqlite_location("postgresql+psycopg://grader@/course?host=/mnt/class", mountinfo=MOUNTINFO)
    check_sqlite_location("sqlite://", mountinfo=MOUNTINFO)


def test_grade_on_a_network_share_stops_before_creating_a_file(tiny_solutions: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (tmp_path / "class").mkdir()
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTINFO + f"60 22 0:60 / {share} rw,relatime - nfs4 fileserver:/export/ta rw,vers=4.2\n")
    monkeypatch.setattr(mounts, "MOUNTINFO", table)
    run_dir = share / "run"
    code = main(["grade", str(tmp_path / "class"), "--solutions", str(tiny_solutions), "--run-dir", str(run_dir),
                 *[a for p in SUPPORT for a in ("--support", str(p))]])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"the SQLite gradebook {run_dir / 'course' / 'gradebook.db'} would be on a network file system (nfs4" in err
    assert "Use PostgreSQL" in err
    assert [p for p in share.rglob("*") if not p.is_dir()] == []  # no 0-byte gradebook, no file at all
