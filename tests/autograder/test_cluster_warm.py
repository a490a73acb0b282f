"""Cluster workers are warmed as they join (``remote.warm_up``, issue #12): the warm-start
template running and the grading imports done before any task reaches them, so a
worker's first task does not pay for them on its critical path; refused workers are
never warmed."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from autograder import cluster
from autograder.cluster import ClusterSpec, DaskEngine, open_engine
from autograder.limits import Protections
from autograder.remote import WORKER_DIR_ENV, HostReport, code_digest, warm_up

pytestmark = pytest.mark.distributed
GRADING_IMPORTS = ("nbgrader.preprocessors", "nbgrader.api", "course_lib.checks")
WARM_SECONDS = 90  # generous: other work on a loaded 2-core machine slows the imports


@pytest.fixture(autouse=True)
def _worker_dirs(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(WORKER_DIR_ENV, str(tmp_path / "workers"))


def _children(pid: int) -> list[str]:
    """Command lines of ``pid``'s child processes, read from /proc (not from our code)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == pid:
                out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError, IndexError):  # it ended meanwhile
            continue
    return out


def _imported() -> list[str]:
    return sorted(m for m in GRADING_IMPORTS if m in sys.modules)


def _settings() -> dict[str, object]:
    """The dask settings a worker process runs with (read there)."""
    import dask

    return {
        k: dask.config.get(k)
        for k in ("distributed.worker.profile.enabled", "distributed.admin.tick.interval")
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="the warm-start template needs root (as grading does)")
def test_local_workers_are_warm_and_quiet_before_their_first_task(tmp_path) -> None:
    with open_engine(ClusterSpec(local_workers=2)) as engine:
        client = engine.client
        pids: dict[str, int] = client.run(os.getpid)
        assert len(pids) == 2
        deadline = time.monotonic() + WARM_SECONDS
        while True:
            templates = {
                w: [c for c in _children(p) if "-m autograder.template" in c] for w, p in pids.items()
            }
            imported = client.run(_imported)
            warm = all(templates.values()) and all(v == sorted(GRADING_IMPORTS) for v in imported.values())
            if warm or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert engine.hosts() and all(h.graded == 0 for h in engine.hosts())  # no task was ever sent
        assert all(len(t) == 1 for t in templates.values()), f"template processes per worker: {templates}"
        assert imported == {w: sorted(GRADING_IMPORTS) for w in pids}, imported
        # The local workers run without dask's 10 ms stack sampler and 20 ms tick (idle CPU).
        quiet = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s"}
        assert client.run(_settings) == dict.fromkeys(pids, quiet)


class _FakeClient:
    """Just what ``DaskEngine`` asks of a dask ``Client`` while it admits workers."""

    def __init__(self, workers: dict[str, dict[str, Any]], reports: dict[str, HostReport]) -> None:
        self.workers, self.reports = workers, reports
        self.runs: list[tuple[str, list[str]]] = []
        self.resources: list[tuple[str, dict[str, int]]] = []
        self.scheduler = self

    def scheduler_info(self, n_workers: int = 5) -> dict[str, Any]:
        return {"workers": dict(self.workers)}

    def run(self, function: Any, *, workers: list[str], on_error: str = "raise", **kw: Any) -> dict[str, Any]:
        self.runs.append((function.__name__, list(workers)))
        if function.__name__ == "host_report":
            return {w: self.reports[w] for w in workers}
        return dict.fromkeys(workers, True)

    def set_resources(self, *, worker: str, resources: dict[str, int]) -> None:
        self.resources.append((worker, resources))

    def sync(self, function: Any, **kw: Any) -> None:
        function(**kw)


def test_only_accepted_workers_are_warmed() -> None:
    walls = Protections(namespaces=True, unprivileged_user=True, rlimits=True)
    good, other, slotless = "tcp://10.0.0.2:1", "tcp://10.0.0.3:1", "tcp://10.0.0.4:1"
    reports = {
        good: HostReport(good, "a", code_digest(), walls),
        other: HostReport(other, "b", "f" * 64, walls),  # other code
        slotless: HostReport(slotless, "c", code_digest(), walls),
    }
    workers = {
        good: {"resources": {"sandbox": 1}},
        other: {"resources": {"sandbox": 1}},
        slotless: {"resources": {}},
    }
    client = _FakeClient(workers, reports)
    engine = DaskEngine(client)
    try:
        assert client.runs == [("host_report", [good, other, slotless]), (warm_up.__name__, [good])]
        assert sorted(w for w, _ in client.resources) == sorted([other, slotless])  # refused: no sandbox slot
        # A worker joining later is admitted (by the engine's watcher) and warmed alone, once.
        late = "tcp://10.0.0.5:1"
        reports[late] = HostReport(late, "d", code_digest(), walls)
        workers[late] = {"resources": {"sandbox": 2}}
        deadline = time.monotonic() + 30
        while len(client.runs) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3 * cluster._WATCH_SECONDS)  # more checks: nothing is run on it again
        assert client.runs[2:] == [("host_report", [late]), (warm_up.__name__, [late])]
    finally:
        engine.close()


def test_a_local_cluster_starts_while_the_coordinator_goes_on() -> None:
    """``open_engine`` returns before the LocalCluster's workers exist: their processes
    are created after a marker process started when it returned (start times compared on
    the kernel's one clock, /proc), and the engine waits for them."""
    import subprocess

    import psutil

    with open_engine(ClusterSpec(local_workers=2)) as engine:
        marker = subprocess.Popen(["sleep", "10"])
        returned = psutil.Process(marker.pid).create_time()
        marker.kill()
        marker.wait()
        hosts = engine.hosts()  # waits for the start
        pids: dict[str, int] = engine.client.run(os.getpid)
        created = {w: psutil.Process(pid).create_time() for w, pid in pids.items()}
    assert len(hosts) == 2 and not [h for h in hosts if h.refused]
    assert all(t >= returned for t in created.values()), (returned, created)


def test_a_failed_background_start_is_raised_where_the_engine_is_used() -> None:
    def broken() -> Any:
        raise OSError("no port left")

    engine = DaskEngine(connect=broken)
    try:
        for use in (engine.hosts, lambda: engine.client):
            with pytest.raises(RuntimeError, match="could not start: no port left"):
                use()
    finally:
        engine.close()
    with pytest.raises(TypeError, match="not both or neither"):
        DaskEngine()
