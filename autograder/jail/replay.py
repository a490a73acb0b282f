"""Replay, the running half (inside the jail, as the sandbox uid): ``run_cells``.

``run_cells`` executes the plan ``autograder.replay.replay_plan`` made (trusted side)
the way the kernel would (``autograder.jail.replay_shell``): IPython syntax through
``TransformerManager``, statement by statement, magics that run the student's Python
(``%%time`` ...) run it, other magics are inert; a cell that raises is recorded and
the replay goes on. Needed cells get the time of the exercise left (less a reserve for
calling the answer); any other cell runs in a short time box (SIGALRM), all of them
together at most a share of ``verify_timeout``.
"""

from __future__ import annotations

import builtins
import os
import signal
import time
import types
from collections.abc import Callable, Iterable
from typing import Any

from autograder.jail.replay_shell import Executor, ShellStub
from autograder.replay import ReplayCell

__all__ = [
    "NEEDED_CELL_RESERVE",
    "OPTIONAL_CELL_SECONDS",
    "OPTIONAL_POOL_FRACTION",
    "CellTimeout",
    "Issue",
    "evidence_writer",
    "fresh_namespace",
    "needed_cell_box",
    "run_cells",
    "time_box",
]

# A cell the answer does not use runs at most this long (then SIGALRM stops it) ...
OPTIONAL_CELL_SECONDS = 3.0
# ... and all such cells of one exercise together at most this share of verify_timeout,
# so that experiments never eat the time the answer's own cells and calls need.
OPTIONAL_POOL_FRACTION = 0.25
# A cell the answer needs may use the time left but a reserve for calling the answer,
# min(NEEDED_CELL_RESERVE, left * NEEDED_CELL_RESERVE_SHARE): a value answer from a
# training run as long as the notebook allowed is still verified, and a cell which
# defines the answer and then runs forever still leaves time to call it.
NEEDED_CELL_RESERVE = 10.0
NEEDED_CELL_RESERVE_SHARE = 0.25


class CellTimeout(BaseException):
    """Raised by SIGALRM inside a cell or call that ran out of its time box."""


def _alarm(signum: int, frame: Any) -> None:
    raise CellTimeout()


class time_box:
    """``with time_box(seconds):`` raises CellTimeout inside the block after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(seconds, 0.001)

    def __enter__(self) -> None:
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)


def fresh_namespace() -> dict[str, Any]:
    """A ``__main__`` like the kernel's user namespace, with ``get_ipython``/``display``."""
    import sys

    module = types.ModuleType("__main__")
    sys.modules["__main__"] = module
    namespace = module.__dict__
    shell = ShellStub()  # inert until run_cells gives it an executor
    namespace.update(__builtins__=builtins, get_ipython=lambda: shell, display=lambda *a, **k: None)
    return namespace


Issue = tuple[int, str, str]  # (cell index, "raised" | "timed out" | "skipped", message)


def run_cells(
    plan: Iterable[ReplayCell],
    namespace: dict[str, Any],
    *,
    skip: set[int],
    deadline: float,
    pool: float,
    progress: Callable[[str], None],
    withheld: type[BaseException] | None = None,
) -> tuple[list[Issue], str]:
    """Execute ``plan`` in ``namespace``. Returns the cell issues, and why the setup
    cell failed ("" if it did not). ``deadline`` is ``time.monotonic()`` time.

    ``skip``: cells that ran out of their time box (or stopped the whole process) for an
    earlier exercise: skipped where this exercise's answer does not need them, run again
    where it does. ``withheld``: a statement calling a withheld reference is left and
    the cell goes on (see ``replay_shell``); after the replay such calls raise again."""
    issues: list[Issue] = []
    executor = Executor(namespace, withheld)
    shell = ShellStub(executor)
    namespace["get_ipython"] = lambda: shell
    try:
        for cell in plan:
            if cell.index in skip and not cell.needed:
                issues.append(
                    (cell.index, "skipped", "skipped: it ran out of its time box for an earlier exercise")
                )
                continue
            left = deadline - time.monotonic()
            box = needed_cell_box(left) if cell.needed else min(OPTIONAL_CELL_SECONDS, pool, left)
            if box <= 0.01:
                issues.append(
                    (cell.index, "skipped", "skipped: no time was left for cells the answer does not use")
                )
                continue
            progress(f"B {cell.index}")
            start = time.monotonic()
            issue, setup_error = _run_one(cell, executor, box, progress)
            if setup_error:
                return issues, setup_error
            if issue is not None:
                issues.append(issue)
            if not cell.needed:
                pool -= time.monotonic() - start
            progress(f"E {cell.index}")
    finally:
        executor.withheld = None  # the answer's own calls: a withheld reference raises
    return issues, ""


def needed_cell_box(left: float) -> float:
    """Seconds a needed cell may run when ``left`` seconds of the exercise are left."""
    return left - min(NEEDED_CELL_RESERVE, left * NEEDED_CELL_RESERVE_SHARE)


def _run_one(
    cell: ReplayCell, executor: Executor, box: float, progress: Callable[[str], None]
) -> tuple[Issue | None, str]:
    """Run one cell in its time box: (its issue or None, the setup cell's failure or "")."""
    executor.withheld_note = ""
    try:
        with time_box(box):
            executor.run(cell.source, f"<cell {cell.index}>")
    except CellTimeout:
        progress(f"T {cell.index}")
        return (cell.index, "timed out", f"stopped after {box:.1f} s"), ""
    except BaseException as exc:  # SystemExit, KeyboardInterrupt too
        message = f"{type(exc).__name__}: {exc}"[:300]
        if cell.setup:
            return None, message
        return (cell.index, "raised", message), ""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if executor.withheld_note:
        note = f"a statement called a withheld reference (left out; the rest of the cell ran): {executor.withheld_note}"
        return (cell.index, "raised", note[:300]), ""
    return None, ""


def evidence_writer(fd: int) -> Callable[[str], None]:
    """A progress line writer on ``fd`` that never raises (student code may close it)."""

    def write(line: str) -> None:
        try:
            os.write(fd, (line + "\n").encode())
        except OSError:
            pass

    return write
