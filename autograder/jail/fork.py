"""A process forked from the warm template (``autograder.template``) becomes what a
fresh interpreter would be: the first thing a warm helper, and its warm kernel, do.

The template imported numpy and matplotlib once, as root, before any sandbox existed:
a fork shares its global numpy generator (every sandbox would draw the same numbers)
and matplotlib's folders (fixed at import, the template's own). ``fresh_process``
resets both from the fork's own environment; ``set_cmdline`` makes ``ps`` and the
host's watchers see the cold start's command line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autograder.jail.request import JailRequest

__all__ = ["begin_warm", "fresh_process", "set_cmdline"]


def begin_warm(request: JailRequest) -> None:
    """In a helper forked from the template, before its work: a fresh numpy stream,
    matplotlib's folders from this environment, and the cold start's command line."""
    fresh_process(dict(os.environ))
    try:
        set_cmdline([sys.executable, "-m", request.helper.module, request.encode()])
    except (OSError, ValueError, IndexError):
        pass  # only a name for people and watchers


def fresh_process(env: dict[str, str]) -> None:
    """The environment ``env``, a fresh draw for numpy's global generator, and
    matplotlib's folders from ``env`` (they were fixed at the template's import)."""
    os.environ.clear()
    os.environ.update(env)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    mpl = sys.modules.get("matplotlib")
    folder = env.get("MPLCONFIGDIR")
    if mpl is not None and folder:

        def config_dir() -> str:
            os.makedirs(folder, exist_ok=True)
            return folder

        # Attributes of the module object, set through setattr: mypy does not know them.
        setattr(mpl, "get_configdir", config_dir)  # noqa: B010
        setattr(mpl, "get_cachedir", config_dir)  # noqa: B010


def set_cmdline(argv: list[str]) -> None:
    """Make ``/proc/<pid>/cmdline`` read as ``argv``: the template was started with room
    for it (``autograder.template._CMDLINE_ROOM`` bytes of argv), rewritten here in
    place (as setproctitle does). Raises OSError where /proc/self/mem cannot be written."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    arg_start, arg_end = int(fields[45]), int(fields[46])  # fields 48 and 49 of proc(5)
    room = arg_end - arg_start
    data = (b"\0".join(a.encode() for a in argv) + b"\0")[: room - 1]
    with open("/proc/self/mem", "r+b", buffering=0) as mem:
        mem.seek(arg_start)
        mem.write(data.ljust(room, b"\0"))
