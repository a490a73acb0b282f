"""Start an IPython kernel as the sandbox uid under rlimits (run as root inside the jail).

jupyter_client writes the connection file readable by root only; this launcher
copies it into the kernel's work directory for the sandbox uid (``--uid``: the
warden's lease, else ``nobody``), sends the kernel's own
stdout/stderr to a size-limited log file, drops privileges and execs ipykernel.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from autograder.sandbox import Limits, Protections, drop_privileges, jail_env, sandbox_uid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connection-file", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--limits", required=True)
    parser.add_argument("--protections", required=True)
    parser.add_argument("--uid", type=int, default=None)
    args = parser.parse_args()
    limits = Limits(**json.loads(args.limits))
    protections = Protections(**json.loads(args.protections))
    connection = args.work / ".kernel.json"
    shutil.copyfile(args.connection_file, connection)
    log = os.open(args.work / ".kernel.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    uid = args.uid if args.uid is not None else sandbox_uid(protections)
    if uid is not None and os.geteuid() == 0:
        os.chown(connection, uid, uid)
        os.chown(args.work / ".kernel.log", uid, uid)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    env = jail_env(args.work, [os.environ.get("PYTHONPATH", "")])
    os.chdir(args.work)
    drop_privileges(limits, protections=protections, uid=uid)
    os.execve(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection)], env)


if __name__ == "__main__":
    main()
