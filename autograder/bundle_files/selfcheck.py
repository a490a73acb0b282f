"""Run the visible self-checks of your notebooks: ``make check`` (or ``python selfcheck.py``).

For each notebook in ``notebooks/`` (or the ones you name) this starts a fresh Python
kernel and runs, top to bottom, every code cell except the ``demo`` cells: the setup
cell, your answer cells, the cells you added, and the visible test cells under your
answers. That is the order grading uses, without the hidden tests. It then prints one
line per exercise:

    01_perceptron  neuron_forward        passed
    01_perceptron  perceptron_predict    failed: perceptron_predict: values differ ...
    01_perceptron  perceptron_train      not answered yet

The exit status is 0 when every exercise passed, 1 otherwise, 2 for bad arguments.
Passing here does not guarantee full marks: grading adds hidden tests on new inputs.
"""

from __future__ import annotations

import argparse
import enum
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CheckStatus", "ExerciseCheck", "NotebookCheck", "check_notebook", "main"]

HERE = Path(__file__).resolve().parent
NOT_ANSWERED_ERRORS = frozenset({"NotImplementedError"})
# nbgrader's code stub (autograder/config/nbgrader_config.py): an answer cell that still
# has this line has not been answered, whatever error the check then reports.
STUB_LINE = "raise NotImplementedError()"


class CheckStatus(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_ANSWERED = "not answered yet"


@dataclass(frozen=True)
class ExerciseCheck:
    """The outcome of one exercise's visible self-check."""

    notebook: str
    exercise: str
    status: CheckStatus
    message: str = ""  # the first line of the error, for FAILED


@dataclass(frozen=True)
class NotebookCheck:
    """The self-checks of one notebook, and what kept it from running through, if anything."""

    notebook: str
    exercises: tuple[ExerciseCheck, ...]
    problem: str = ""  # e.g. the setup cell failed, or the kernel died


@dataclass(frozen=True)
class _CellError:
    ename: str
    evalue: str


# autograder.cells.nbgrader_meta, copied: this file ships to students without the autograder.
def _nbgrader(cell: Any) -> dict[str, Any]:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _is_demo(cell: Any) -> bool:
    return "demo" in (cell.get("metadata", {}).get("tags") or [])


def _error_of(cell: Any) -> _CellError | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return _CellError(str(out.get("ename", "")), str(out.get("evalue", "")))
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _kernel_manager_class() -> type:
    from jupyter_client.manager import AsyncKernelManager

    class ThisPythonKernelManager(AsyncKernelManager):
        # Run the kernel with the interpreter that runs this script (the course's venv),
        # whatever "python3" kernel another Jupyter on the machine may have registered.
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file]

    return ThisPythonKernelManager


def check_notebook(path: Path, *, cell_timeout: float = 300.0) -> NotebookCheck:
    """Execute ``path``'s non-demo code cells in a fresh kernel; one ``ExerciseCheck``
    per visible test cell, in notebook order."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    runnable = [c for c in nb.cells if c.cell_type == "code" and not _is_demo(c)]
    for cell in runnable:
        cell.outputs, cell.execution_count = [], None
    nb.cells = runnable
    with tempfile.TemporaryDirectory(prefix="selfcheck-") as sockets:
        # IPC sockets in a private folder: nothing listens on the network.
        km = _kernel_manager_class()(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel"))
        client = NotebookClient(
            nb,
            km=km,
            timeout=cell_timeout,
            allow_errors=True,
            interrupt_on_timeout=True,  # a cell that runs too long is stopped; the next ones still run
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        stopped = ""
        try:
            client.execute()
        except Exception as exc:  # the kernel died or could not start: report it, do not crash
            stopped = f"the notebook stopped: {type(exc).__name__}: {_first_line(str(exc))}"

    problem = stopped
    answer_errors: dict[str, _CellError | None] = {}  # answer grade_id -> what its cell raised
    stubbed: set[str] = set()  # answer grade_ids whose cell still holds the stub
    results = []
    for cell in nb.cells:
        meta, error = _nbgrader(cell), _error_of(cell)
        grade_id = meta.get("grade_id")
        if grade_id == "setup" and error is not None and not problem:
            problem = f"the setup cell failed: {error.ename}: {_first_line(error.evalue)}"
        if meta.get("solution") and not meta.get("grade") and isinstance(grade_id, str):
            answer_errors[grade_id] = error
            if any(line.strip() == STUB_LINE for line in cell.source.splitlines()):
                stubbed.add(grade_id)
            continue
        if not (meta.get("grade") and isinstance(grade_id, str) and cell.source.strip()):
            continue  # not a visible test cell (hidden test cells are empty in your copy)
        exercise = grade_id.removeprefix("test_")
        answer_error = answer_errors.get(exercise)
        if cell.get("execution_count") is None and not cell.get("outputs"):
            status, message = CheckStatus.FAILED, "not run (the notebook stopped before this check)"
        elif error is None:
            status, message = CheckStatus.PASSED, ""
        elif (
            exercise in stubbed
            or error.ename in NOT_ANSWERED_ERRORS
            or (answer_error is not None and answer_error.ename in NOT_ANSWERED_ERRORS)
        ):
            status, message = CheckStatus.NOT_ANSWERED, ""
        else:
            # When the answer cell itself failed (a syntax error, say), that is the error to show.
            first = answer_error or error
            where = "your answer cell raised " if answer_error else ""
            status, message = CheckStatus.FAILED, f"{where}{first.ename}: {_first_line(first.evalue)}"
        results.append(ExerciseCheck(path.stem, exercise, status, message))
    return NotebookCheck(path.stem, tuple(results), problem)


def _render(check: ExerciseCheck, width: int) -> str:
    line = f"{check.notebook}  {check.exercise:<{width}}  {check.status.value}"
    return f"{line}: {check.message}" if check.message else line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfcheck.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks to check (default: notebooks/*.ipynb)"
    )
    parser.add_argument("--cell-timeout", type=float, default=300.0, help="seconds per cell (default: 300)")
    args = parser.parse_args(argv)
    paths = list(args.notebooks) or sorted((HERE / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        print(f"selfcheck: no such notebook: {', '.join(missing) or HERE / 'notebooks'}", file=sys.stderr)
        return 2
    all_passed = True
    for path in paths:
        result = check_notebook(path, cell_timeout=args.cell_timeout)
        if result.problem:
            print(f"{result.notebook}  {result.problem}", flush=True)
            all_passed = False
        width = max((len(c.exercise) for c in result.exercises), default=0)
        for check in result.exercises:
            print(_render(check, width), flush=True)
            all_passed &= check.status is CheckStatus.PASSED
        if not result.exercises:
            print(f"{result.notebook}  (no self-checks found)")
    return 0 if all_passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
