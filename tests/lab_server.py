"""A JupyterLab server of a test's own, started and stopped in one place for every test
that drives Lab (``tests/widgets/test_browser.py``; the formgrader's instructor Lab,
``tests/autograder/fixtures/instructor_lab.py``).

The server listens on 127.0.0.1 on a free port, with a token chosen here, serves
``root``, and keeps its user settings and workspaces under ``home``. The caller gives
the whole environment (its Jupyter config/data/runtime dirs), so nothing of the
machine's Jupyter set-up is read unless the caller passes it on.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LabServer", "free_port", "jupyter_lab"]

STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: where it answers, its token, and its log file."""

    base_url: str
    token: str
    log: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}?token={self.token}"


def free_port() -> int:
    """A loopback port no one listens on now (the server takes it with port_retries=0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyter_lab(
    *, root: Path, home: Path, env: Mapping[str, str], log: Path, start_timeout: float
) -> Iterator[LabServer]:
    """Run ``jupyter lab`` serving ``root`` (its working directory too) until the block ends.

    Raises ``RuntimeError`` with the server's last log lines when it exits, or does not
    answer ``/api/status`` within ``start_timeout`` seconds. On the way out the server
    gets SIGTERM (it shuts its kernels down); its process group is killed if it lingers.
    """
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
    ]  # fmt: skip
    with log.open("w") as log_file:
        # Its own session: the process group is killed if SIGTERM is not enough.
        proc = subprocess.Popen(
            cmd, env=dict(env), cwd=root, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    lab = LabServer(f"http://127.0.0.1:{port}", token, log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with code {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                urllib.request.urlopen(lab.url("/api/status"), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    tail = log.read_text()[-3000:]
                    raise RuntimeError(
                        f"jupyter lab did not answer within {start_timeout:g} s:\n{tail}"
                    ) from None
                time.sleep(0.3)
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
