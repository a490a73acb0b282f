"""dask.distributed as the grading engine: each submission is a task on a grading host.

``--scheduler ADDRESS`` connects to an existing Dask cluster; ``--cluster local:N`` starts
a ``LocalCluster`` of N worker processes on this machine (in the background, while the
coordinator prepares the course; ``LOCAL_CONFIG`` turns off dask's idle CPU costs).
Either way the coordinator (this process) alone writes the ledger and the gradebook:
``DaskEngine`` yields each task's ``SubmissionResult`` and ``pipeline.grade_jobs`` merges
it, as with local threads.

Trust and failure rules, each enforced here:

- A plain ``tcp://`` scheduler address must be loopback unless ``insecure``; ``tls://``
  needs the CA, certificate and key (dask's ``Security``). Other schemes are refused.
- Every worker reports its code digest (``remote.code_digest``) and its sandbox
  protections when it is first seen (at start and while the run goes on). A worker whose
  digest differs from the coordinator's, or that has no ``sandbox`` resource, is refused:
  its ``sandbox`` resource is set to 0 on the scheduler, so no task (each needs
  ``sandbox=1``) is ever placed there; the task itself checks the digest again.
  An accepted worker is warmed at once (``remote.warm_up``: its template started, the
  grading imports done), while the coordinator prepares the course; a refused one is not.
- A task lost with its worker is re-run elsewhere once (scheduler ``allowed-failures``,
  set to 1 for a LocalCluster; set it on your own scheduler); a task that raises is retried
  once (``retries=1``). After that it becomes FAILED with ``retry`` (graded again by the
  next run). A student's crash or timeout is a result, never an exception, so never retried.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from autograder.intake import Job
from autograder.pipeline import GradingContext, SubmissionResult, grade_job
from autograder.remote import (
    CourseBundle,
    HostReport,
    bundle_course,
    code_digest,
    host_report,
    infrastructure_failure,
    run_task,
    task_for,
    warm_up,
)

__all__ = [
    "LOCAL_CONFIG",
    "ClusterSpec",
    "DaskEngine",
    "TlsFiles",
    "admit",
    "check_address",
    "open_engine",
    "parse_local",
]

log = logging.getLogger(__name__)
SANDBOX = "sandbox"  # the worker resource that bounds concurrent sandboxes per host
_WATCH_SECONDS = 1.0  # how often late-joining workers are checked

# A LocalCluster's dask settings (its workers inherit them through their nannies, also
# when one is restarted). Beyond ``allowed-failures`` (see the module docstring), each
# turns off what costs CPU here for nothing: measured idle on this 2-core machine, two
# default workers and their scheduler burn 1.7 core-seconds per 20 s, these 0.2. The
# worker's statistical profiler samples every thread's stack each 10 ms (for the
# dashboard); the event-loop tick (20 ms) only warns of a blocked loop; the system
# monitor (0.5 s) feeds the dashboard and memory limits, and there is no memory limit.
LOCAL_CONFIG: dict[str, object] = {
    "distributed.scheduler.allowed-failures": 1,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class ClusterSpec:
    """Where grading runs: an existing scheduler, or a LocalCluster of ``local_workers``."""

    scheduler: str | None = None
    local_workers: int | None = None
    insecure: bool = False
    tls: TlsFiles | None = None


def parse_local(text: str) -> int:
    """``local:N`` -> N (at least 1)."""
    kind, _, count = text.partition(":")
    if kind != "local" or not count.isdigit() or int(count) < 1:
        raise ValueError(f"--cluster: expected local:N with N >= 1 workers, got {text!r}")
    return int(count)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost may resolve anywhere
        return False


def check_address(address: str, *, insecure: bool, tls: TlsFiles | None) -> None:
    """Refuse a scheduler address that would send submissions in clear over a network."""
    scheme = address.split("://", 1)[0] if "://" in address else "tcp"
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if scheme == "tls":
        if tls is None:
            raise ValueError(f"--scheduler {address}: tls:// needs --tls-ca, --tls-cert and --tls-key")
        for name, path in (("--tls-ca", tls.ca), ("--tls-cert", tls.cert), ("--tls-key", tls.key)):
            if not Path(path).is_file():
                raise ValueError(f"{name} {path}: no such file")
        return
    if scheme != "tcp":
        raise ValueError(
            f"--scheduler {address}: scheme {scheme}:// is not supported (use tls://, or tcp:// on loopback)"
        )
    if not _is_loopback(parts.hostname or "") and not insecure:
        raise ValueError(
            f"--scheduler {address}: plain TCP to a host that is not loopback would send the submissions "
            "and results in clear; use tls:// with --tls-ca/--tls-cert/--tls-key, or pass --insecure "
            "on a private network you trust"
        )


def admit(
    report: HostReport | BaseException, worker: str, *, coordinator: str, resources: dict[str, Any]
) -> HostReport:
    """Accept or refuse one worker (pure): its code must match ``coordinator``'s digest
    and it must offer at least one sandbox slot."""
    if isinstance(report, BaseException):
        why = (
            f"could not report its code ({type(report).__name__}: {report}); coordinator digest {coordinator}"
        )
        return HostReport(worker, "?", "", None, refused=why)
    if report.code_digest != coordinator:
        why = f"its course_lib/autograder digest {report.code_digest} differs from the coordinator's {coordinator}"
        return replace(report, refused=why)
    if float(resources.get(SANDBOX, 0)) < 1:
        return replace(
            report, refused=f"no {SANDBOX} resource (start it with `dask worker --resources {SANDBOX}=N`)"
        )
    return report


class DaskEngine:
    """A ``pipeline.Engine`` grading on a dask cluster (see the module docstring).

    ``DaskEngine(client)`` admits the client's workers at once and raises if none can
    grade. ``DaskEngine(connect=make_client)`` makes its client in a background thread
    (a LocalCluster starting, and its workers warming, while the coordinator prepares
    the course): its first use (``client``, ``hosts``, a call) waits for that and raises
    what it raised."""

    def __init__(self, client: Any = None, *, connect: Callable[[], Any] | None = None) -> None:
        if (client is None) == (connect is None):
            raise TypeError("DaskEngine: give a client or connect=, not both or neither")
        self.code = code_digest()
        self._client = client
        self._hosts: dict[str, HostReport] = {}
        self._graded: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="autograder-cluster-watch", daemon=True)
        self._failed: BaseException | None = None
        self._starting: threading.Thread | None = None
        if connect is None:
            self._admit_first()
        else:
            self._starting = threading.Thread(
                target=self._connect, args=(connect,), name="autograder-cluster-start", daemon=True
            )
            self._starting.start()

    def _connect(self, connect: Callable[[], Any]) -> None:
        try:
            self._client = connect()
            self._admit_first()
        except BaseException as exc:  # raised again where the engine is first used
            self._failed = exc

    def _admit_first(self) -> None:
        self._check_new_workers()
        if not any(not h.refused for h in self._hosts.values()):
            lines = "; ".join(h.line() for h in self._hosts.values()) or "no workers"
            raise RuntimeError(f"cluster: no worker can grade ({lines})")
        self._watcher.start()

    def _ready(self) -> None:
        """Wait for a background start; raise what it raised."""
        if self._starting is not None:
            self._starting.join()
        if self._failed is not None:
            raise RuntimeError(f"cluster: could not start: {self._failed}") from self._failed

    @property
    def client(self) -> Any:
        """The dask ``Client`` (once a background start has ended)."""
        self._ready()
        return self._client

    def hosts(self) -> tuple[HostReport, ...]:
        """Every worker seen, accepted or refused, with what it graded."""
        self._ready()
        with self._lock:
            return tuple(replace(h, graded=self._graded.get(a, 0)) for a, h in sorted(self._hosts.items()))

    def _check_new_workers(self) -> None:
        workers = self._client.scheduler_info(n_workers=-1)["workers"]
        new = [a for a in workers if a not in self._hosts]
        if not new:
            return
        reports = self._client.run(host_report, workers=new, on_error="return")
        for address in new:
            if address not in reports:
                continue  # it left before answering
            host = admit(
                reports[address],
                address,
                coordinator=self.code,
                resources=workers[address].get("resources", {}),
            )
            if host.refused:
                log.warning("autograder: refusing %s", host.line())
                with contextlib.suppress(Exception):  # it may be gone already
                    self._client.sync(
                        self._client.scheduler.set_resources, worker=address, resources={SANDBOX: 0}
                    )
            with self._lock:
                self._hosts[address] = host
        accepted = [a for a in new if a in reports and not self._hosts[a].refused]
        if accepted:  # returns at once: each warms in the background (see ``remote.warm_up``)
            self._client.run(warm_up, workers=accepted, on_error="return")

    def _watch(self) -> None:
        while not self._stop.wait(_WATCH_SECONDS):
            try:
                self._check_new_workers()
            except Exception as exc:  # the scheduler may be going away with the run
                log.debug("autograder: worker check failed: %s", exc)

    def close(self) -> None:
        if self._starting is not None:
            self._starting.join()
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout=5)

    def __call__(self, jobs: list[Job], ctx: GradingContext) -> Iterator[SubmissionResult]:
        from distributed import as_completed

        bundles: dict[str, CourseBundle] = {}
        run = uuid.uuid4().hex[:8]
        futures: dict[Any, Any] = {}
        local: list[Job] = []
        for i, job in enumerate(jobs):
            task = task_for(job, ctx, code=self.code)
            if task is None:
                local.append(job)
                continue
            if job.key not in bundles:
                one = replace(
                    ctx, sources={job.key: ctx.sources[job.key]}, releases={job.key: ctx.releases[job.key]}
                )
                bundles[job.key] = bundle_course(one)
            future = self.client.submit(
                run_task, task, bundles[job.key], key=f"grade-{run}-{i}-{task.digest[:12]}",
                pure=False, retries=1, resources={SANDBOX: 1},
            )  # fmt: skip
            futures[future] = task
        for job in local:  # missing or unreadable at intake: no sandbox, nothing to send
            yield grade_job(job, ctx)
        for future in as_completed(list(futures)):
            task = futures.pop(future)
            try:
                done = future.result()
            except Exception as exc:  # lost twice, refused, or an infrastructure error twice
                yield infrastructure_failure(task, f"{type(exc).__name__}: {exc}")
                continue
            finally:
                future.release()
            with self._lock:
                self._graded[done.worker] = self._graded.get(done.worker, 0) + 1
            yield done.result


@contextlib.contextmanager
def open_engine(spec: ClusterSpec) -> Iterator[DaskEngine]:
    """Connect to (or start) the cluster of ``spec``; closes what it started. A
    LocalCluster starts in the background (see ``DaskEngine``): the coordinator goes on
    preparing the course meanwhile; an existing scheduler is reached before this returns,
    so a wrong address fails before any work is done."""
    with contextlib.ExitStack() as stack:
        if spec.local_workers is not None:
            started: list[Any] = []  # the LocalCluster and its client, as they are made
            stack.callback(_close_all, started)
            engine = DaskEngine(connect=lambda: _start_local(spec.local_workers or 1, started))
        else:
            engine = DaskEngine(_connect_scheduler(spec, stack))
        stack.callback(engine.close)  # first: it waits for a background start to end
        yield engine


def _start_local(workers: int, started: list[Any]) -> Any:
    """A LocalCluster of ``workers`` processes (one sandbox each) and a client of it."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(LOCAL_CONFIG):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            resources={SANDBOX: 1},
            host="127.0.0.1",
            dashboard_address=":0",  # dashboard on loopback, any port
            memory_limit=0,
            silence_logs=logging.ERROR,
        )
    started.append(cluster)
    client = Client(cluster)
    started.append(client)
    _wait_for_a_worker(client)
    return client


def _close_all(started: list[Any]) -> None:
    for thing in reversed(started):  # the client before its cluster
        thing.close()


def _connect_scheduler(spec: ClusterSpec, stack: contextlib.ExitStack) -> Any:
    from distributed import Client

    if spec.scheduler is None:
        raise ValueError("cluster: give a scheduler address or local:N")
    check_address(spec.scheduler, insecure=spec.insecure, tls=spec.tls)
    security = None
    if spec.tls is not None:
        from distributed.security import Security

        security = Security(
            tls_ca_file=str(spec.tls.ca), tls_client_cert=str(spec.tls.cert), tls_client_key=str(spec.tls.key),
            require_encryption=True,
        )  # fmt: skip
    try:
        client = stack.enter_context(Client(spec.scheduler, security=security, timeout="30s"))
    except OSError as exc:  # refused, unreachable, a TLS handshake that failed
        raise RuntimeError(f"cluster: cannot reach the scheduler at {spec.scheduler}: {exc}") from exc
    _wait_for_a_worker(client)
    return client


def _wait_for_a_worker(client: Any) -> None:
    try:
        client.wait_for_workers(1, timeout=120)
    except TimeoutError:
        raise RuntimeError(
            f"cluster: no worker joined the scheduler at {client.scheduler.address} within 120 s"
        ) from None
