"""A real multi-host run: the dask scheduler and two workers each in its own network
namespace (made here with ``ip netns``, joined by veth pairs on a bridge, 10.x
addresses), speaking TLS with certificates made here; the coordinator (this process,
in the root namespace) grades a small class over that network.

The workers are started with ``nsenter --net``, which switches the network namespace
only: ``ip netns exec`` also remounts /sys, so the cgroup mounts (and the sandbox's
cgroup protection) would be lost on such a host — the per-host summary then says so.

Skipped, with the reason, where namespaces cannot be made (no CAP_NET_ADMIN, no ``ip``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from autograder.api import GradeOptions, Limits, grade_class  # noqa: E402
from autograder.export import export_grades  # noqa: E402
from autograder.sandbox import detect_protections  # noqa: E402
from tinycourse import FAST_LIMITS, SUPPORT, make_class  # noqa: E402

pytestmark = [pytest.mark.distributed, pytest.mark.slow]
BIN = Path(sys.executable).parent
PORT = 8786
SECRET = "515151"
RECIPES = ("perfect", "partial", "messy", "crasher", "patcher", "renamed", "copycat", "blank")


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True)


def _must(*argv: str) -> None:
    done = _run(*argv)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


@dataclass
class Hosts:
    """Three test hosts on one private link: the scheduler's and two workers'."""

    prefix: str  # "10.231.N." — .1 is the coordinator (root namespace), .2 the scheduler
    namespaces: list[str]
    bridge: str
    tls: tuple[Path, Path, Path]  # CA, certificate, key (one certificate for every node)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def scheduler(self) -> str:
        return f"tls://{self.prefix}2:{PORT}"

    def start(self, ns: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", *argv], env={**os.environ, **env},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        self.procs.append(proc)
        return proc


def _certificates(folder: Path, prefix: str) -> tuple[Path, Path, Path]:
    """A test CA and one certificate (for the IPs of the link) signed by it, with openssl."""
    folder.mkdir()
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "node.key", "node.csr", "node.pem"))
    _must("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
          "-days", "2", "-subj", "/CN=autograder test CA", "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    _must("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=grader")
    ext = folder / "ext.cnf"
    ips = ",".join(f"IP:{prefix}{i}" for i in range(1, 5))
    ext.write_text(f"subjectAltName={ips}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n")
    _must("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
          "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key


@pytest.fixture()
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    for tool in ("ip", "nsenter", "openssl"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not installed")
    pid = os.getpid()
    names = [f"ag{pid}{role}" for role in ("s", "w1", "w2")]
    bridge = f"agb{pid}"
    made = _run("ip", "netns", "add", names[0])
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace (needs CAP_NET_ADMIN): {made.stderr.strip()}")
    prefix = f"10.231.{pid % 250}."
    net = Hosts(prefix, [names[0]], bridge, (Path(), Path(), Path()))
    try:
        _must("ip", "link", "add", bridge, "type", "bridge")
        _must("ip", "addr", "add", f"{prefix}1/24", "dev", bridge)
        _must("ip", "link", "set", bridge, "up")
        for i, ns in enumerate(names):
            if i:
                _must("ip", "netns", "add", ns)
                net.namespaces.append(ns)
            outside, inside = f"agv{pid}{i}", f"agp{pid}{i}"
            _must("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            _must("ip", "link", "set", inside, "netns", ns)
            _must("ip", "link", "set", outside, "master", bridge, "up")
            _must("ip", "-n", ns, "addr", "add", f"{prefix}{i + 2}/24", "dev", inside)
            _must("ip", "-n", ns, "link", "set", inside, "up")
            _must("ip", "-n", ns, "link", "set", "lo", "up")
        net.tls = _certificates(tmp_path / "tls", prefix)
        yield net
    finally:
        for proc in net.procs:
            proc.terminate()
        for proc in net.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for ns in net.namespaces:
            _run("ip", "netns", "del", ns)  # deletes its end of the veth pair, and so the pair
        _run("ip", "link", "del", bridge)


def _wait_for_port(host: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on {host}:{port} after {seconds:g} s")


def _exported(run_dir: Path) -> tuple[str, str]:
    result = export_grades(run_dir=run_dir)
    return result.grades_csv.read_text(), result.submissions_csv.read_text()


def test_grading_over_a_private_tls_network_of_three_hosts(hosts: Hosts, tiny_course, tiny_solutions, tmp_path) -> None:
    ca, cert, key = (str(p) for p in hosts.tls)
    tls_args = ["--tls-ca-file", ca, "--tls-cert", cert, "--tls-key", key]
    scheduler_env = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    hosts.start(hosts.namespaces[0], [str(BIN / "dask"), "scheduler", "--protocol", "tls", "--host", f"{hosts.prefix}2",
                                      "--port", str(PORT), "--no-dashboard", *tls_args], scheduler_env)  # fmt: skip
    _wait_for_port(f"{hosts.prefix}2", PORT, 60)
    for i, ns in enumerate(hosts.namespaces[1:], start=1):
        hosts.start(ns, [str(BIN / "dask"), "worker", hosts.scheduler, "--nthreads", "1", "--resources", "sandbox=1",
                         "--no-dashboard", "--name", f"host{i}", *tls_args],
                    {"AUTOGRADER_WORKER_DIR": str(tmp_path / f"worker{i}")})  # fmt: skip

    submissions = make_class(tiny_course, tmp_path / "class", RECIPES)
    runs = {}
    for name, extra in (("network", dict(scheduler=hosts.scheduler, tls_ca=hosts.tls[0], tls_cert=hosts.tls[1], tls_key=hosts.tls[2])),
                        ("local", dict(workers=1))):  # fmt: skip
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / ".secret-seed").write_text(SECRET)
        options = GradeOptions(limits=Limits(**FAST_LIMITS), support=SUPPORT, **extra)
        runs[name] = grade_class(submissions=submissions, run_dir=run_dir, solutions_dir=tiny_solutions, options=options)

    workers = [h for h in runs["network"].hosts if not h.refused]
    assert len(workers) == 2, [h.line() for h in runs["network"].hosts]
    # Each host graded over the link (its address is on it), each its share, each once.
    assert {h.worker.rsplit(":", 1)[0] for h in workers} == {f"tls://{hosts.prefix}3", f"tls://{hosts.prefix}4"}
    assert all(h.graded >= 1 for h in workers) and sum(h.graded for h in workers) == len(RECIPES)
    # The sandbox still makes its own network namespace inside a test host's.
    assert all(h.protections == detect_protections() for h in workers), [h.line() for h in workers]
    summary = (tmp_path / "network" / "protections.txt").read_text()
    assert all(f"worker {h.worker} ({h.host}): graded {h.graded}" in summary for h in workers)
    assert _exported(tmp_path / "network") == _exported(tmp_path / "local")
