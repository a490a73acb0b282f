"""A private PostgreSQL server for the tests: Debian's binaries, a temporary cluster,
a Unix socket in its own directory and no TCP port.

``make services`` installs Debian's ``postgresql`` when it is missing; where the binaries
are absent all the same, the ``postgres`` tests skip and say so. PostgreSQL refuses to run
as root, so under root the cluster belongs to the ``postgres`` system user (``nobody``
when there is none). Authentication is ``trust`` on the socket only: the directory is the
server's own (mode 0700 under its user) and nothing listens on the network.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PgServer", "find_pg_bin", "pg_server", "pg_url", "start_server"]

USER = "grader"  # the cluster's superuser, as the autograder connects
_SETTINGS = {
    "listen_addresses": "''",  # no TCP at all: the socket is the only way in
    "fsync": "off",  # a throw-away cluster: durability costs time and buys nothing
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "40",
    "shared_buffers": "16MB",
}


def find_pg_bin() -> Path | None:
    """The folder of ``initdb``/``pg_ctl``: on PATH, else Debian's newest
    ``/usr/lib/postgresql/<version>/bin``; None when neither has them."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    for folder in reversed(versions):
        if (folder / "pg_ctl").exists() and (folder / "initdb").exists():
            return folder
    return None


def _server_account() -> tuple[int, int] | None:
    """(uid, gid) to run the server as: None when we are not root (we run it ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("pg_server: running as root and neither a 'postgres' nor a 'nobody' user exists")


@dataclass(frozen=True)
class PgServer:
    """A running cluster: its binaries, data and socket folders."""

    bin_dir: Path
    base: Path  # holds data/, the socket and server.log
    account: tuple[int, int] | None

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3, over the private socket)."""
        return f"postgresql+psycopg://{USER}@/{database}?host={self.base}"

    def admin(self, sql: str) -> None:
        """Run one statement in the ``postgres`` database, outside a transaction."""
        import psycopg

        with psycopg.connect(host=str(self.base), user=USER, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name}")
        return name

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A server program run as the cluster's owner."""
        user = group = None
        if self.account is not None:
            user, group = self.account
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def stop(self) -> None:
        self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        shutil.rmtree(self.base, ignore_errors=True)


def start_server(bin_dir: Path) -> PgServer:
    """initdb a cluster in a fresh folder under /tmp and start it; on failure, remove it
    and raise RuntimeError with the server's log."""
    # /tmp itself: a socket path must stay under 108 bytes, and pytest's tmp_path is
    # not traversable by the server's user.
    base = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
    server = PgServer(bin_dir, base, _server_account())
    if server.account is not None:
        os.chown(base, *server.account)
    try:
        init = server.run("initdb", "-D", str(server.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C", "-N")
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        settings = {**_SETTINGS, "unix_socket_directories": f"'{base}'"}
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        start = server.run("pg_ctl", "start", "-D", str(server.data), "-l", str(server.log), "-w", "-t", "60")
        if start.returncode != 0:
            log = server.log.read_text() if server.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{log[-3000:]}")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One private server per test process (each xdist worker has its own)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: run `make services` as root to install Debian's postgresql")
    server = start_server(bin_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty database, dropped after the test."""
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
