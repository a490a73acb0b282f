"""Start an IPython kernel as the sandbox uid under rlimits (run as root inside the jail).

jupyter_client writes the connection file readable by root only; ``prepare`` copies
it into the kernel's work directory for the sandbox uid (``--uid``: the warden's
lease, else ``nobody``), sends the kernel's own stdout/stderr to a size-limited log
file and drops privileges. Then the kernel starts:

- cold (``main``, ``python -m autograder.jail.kernel_launcher --connection-file F
  --request R [--uid N]``, R the helper's ``JailRequest`` as seen inside the jail:
  its ``scratch`` holds the work folder): exec ipykernel;
- warm (``run_in_process``, in a fork of the jail's helper that already imported
  ipykernel, see ``autograder.jail.execute``): the same environment, ``sys.path`` and
  arguments the exec would give, then ipykernel's own entry point in this process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from autograder.jail.fork import fresh_process
from autograder.jail.request import JailRequest, WarmFork
from autograder.limits import Limits, Protections
from autograder.sandbox import drop_privileges, jail_env, sandbox_uid

__all__ = ["main", "prepare", "run_in_process"]


def prepare(
    connection_file: Path, work: Path, limits: Limits, protections: Protections, uid: int | None
) -> tuple[Path, dict[str, str]]:
    """Everything before the kernel itself, as root: returns the kernel's connection
    file and environment, with privileges dropped for good."""
    connection = work / ".kernel.json"
    shutil.copyfile(connection_file, connection)
    log = os.open(work / ".kernel.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    uid = uid if uid is not None else sandbox_uid(protections)
    if uid is not None and os.geteuid() == 0:
        os.chown(connection, uid, uid)
        os.chown(work / ".kernel.log", uid, uid)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    env = jail_env(work, [os.environ.get("PYTHONPATH", "")])
    os.chdir(work)
    drop_privileges(limits, protections=protections, uid=uid)
    return connection, env


def run_in_process(connection: Path, env: dict[str, str], warm: WarmFork) -> None:
    """Be the kernel ``python -m ipykernel_launcher -f connection`` would be (never returns).

    ``sys.path``: PYTHONPATH's entries, then the interpreter's own (``warm.site_paths``:
    stdlib, site-packages, path hooks). The cwd is not there: ipykernel_launcher
    removes it while ipykernel loads, and IPython's ``init_path`` puts it back first."""
    fresh_process(env)
    for name, value in warm.import_env:  # as the imports would have set them here
        os.environ.setdefault(name, value)
    pythonpath = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [*pythonpath, *warm.site_paths]
    sys.path_importer_cache.clear()
    sys.argv = [sys.executable, "-f", str(connection)]
    from ipykernel.kernelapp import launch_new_instance

    code = 0
    try:
        launch_new_instance()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()  # into the kernel's log, as a crashing ipykernel's would be
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str] | None = None) -> None:
    """The cold kernel: ``prepare``, then exec ipykernel (never returns)."""
    parser = argparse.ArgumentParser(prog="autograder.jail.kernel_launcher")
    parser.add_argument("--connection-file", type=Path, required=True)
    parser.add_argument("--request", required=True, help="the helper's JailRequest, as seen inside the jail")
    parser.add_argument("--uid", type=int, default=None)
    args = parser.parse_args(argv)
    request = JailRequest.decode(args.request)
    work = request.scratch / "work"
    connection, env = prepare(args.connection_file, work, request.limits, request.protections, args.uid)
    os.execve(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection)], env)


if __name__ == "__main__":
    main()
