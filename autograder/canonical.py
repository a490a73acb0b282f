"""Canonicalize step: a submitted notebook -> the notebook that is actually graded.

Like nbgrader's sanitize preprocessors (DeduplicateIds, OverwriteCells,
CheckCellMetadata), and further: the instructor's source notebook is the truth.

- Locked and test cells get the instructor's source and metadata back, whatever the
  student did to them; test cells the student deleted are restored in place.
- Answers are found by grade_id, else (metadata stripped or edited) by the name the
  cell defines; an answer that cannot be found gets the released stub and a note.
- Duplicated graded cells lose their nbgrader metadata after the first copy.
- Metadata from other nbgrader schema versions, JupyterLab/nbformat versions and
  kernels is normalized; outputs are cleared; ``demo`` cells may be dropped.

The submitted notebook is untrusted, and this runs in the trusted grader: the work is
linear in the notebook's size and bounded. Each code cell is parsed at most once
(``parse_cell`` under a ``ParseBudget``): plain Python goes straight to ``ast.parse``;
IPython's transformer, whose cost grows with (escaped lines x lines) -- an 86 KB cell
of ``!`` lines kept it busy for minutes -- runs only within a work budget, beyond which
a line-based rewrite of the magics stands in for it.
"""

from __future__ import annotations

import ast
import copy
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat.v4 import new_notebook

from autograder import pyast
from autograder.cells import grade_id, is_answer, nbgrader_meta

__all__ = [
    "Canonicalized",
    "ParseBudget",
    "MAX_CELLS",
    "MAX_PARSE_BYTES",
    "answer_defines",
    "canonicalize",
    "parse_cell",
]

MAX_CELLS = 5_000  # cells read from one submitted notebook; course notebooks have < 100
MAX_PARSE_BYTES = 200 * 1024  # a cell larger than this is never parsed (nor searched for answers)
# IPython's token transforms re-tokenize the whole cell once per escaped line: cost is
# about (escaped lines + 1) x bytes, 10-30 us per unit measured. Per cell and per notebook:
MAX_IPYTHON_WORK_PER_CELL = 20_000
MAX_IPYTHON_WORK_PER_NOTEBOOK = 100_000
MAX_PARSE_BYTES_PER_NOTEBOOK = 16 * 1024**2

_ESCAPED = re.compile(r"^[ \t]*(?:!|%|\?)|\?[ \t]*$|=[ \t]*[!%]")
_LINE_ESCAPE = re.compile(r"^(?P<indent>[ \t]*)(?P<esc>!!?|%%?|\?\??)(?P<rest>.*)$")
_ASSIGN_ESCAPE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<lhs>[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*)[ \t]*=[ \t]*(?P<esc>[!%])(?P<rest>.*)$"
)


@dataclass
class ParseBudget:
    """What parsing one notebook may cost, and what it did cost (for tests and reports)."""

    ipython_work: int = MAX_IPYTHON_WORK_PER_NOTEBOOK
    parse_bytes: int = MAX_PARSE_BYTES_PER_NOTEBOOK
    ipython_transforms: int = 0  # calls of IPython's TransformerManager


def _escape_call(esc: str, rest: str) -> str:
    if esc.startswith("!"):
        return f"get_ipython().system({rest!r})"
    name, _, line = rest.strip().partition(" ")
    return f"get_ipython().run_line_magic({name!r}, {line!r})"


def _plain_transform(source: str) -> str:
    """IPython's rewrite of magics and shell escapes, line by line (linear, approximate)."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        name, _, line = lines[0].lstrip()[2:].partition(" ")
        return f"get_ipython().run_cell_magic({name!r}, {line!r}, {chr(10).join(lines[1:]) + chr(10)!r})\n"
    out = []
    for line in lines:
        if m := _ASSIGN_ESCAPE.match(line):
            call = (
                f"get_ipython().getoutput({m['rest']!r})" if m["esc"] == "!" else _escape_call("%", m["rest"])
            )
            out.append(f"{m['indent']}{m['lhs']} = {call}")
        elif (m := _LINE_ESCAPE.match(line)) and not m["esc"].startswith("?"):
            out.append(f"{m['indent']}{_escape_call(m['esc'], m['rest'])}")
        elif m or line.rstrip().endswith("?"):  # help ("x?", "?x"): no code
            out.append(line[: len(line) - len(line.lstrip())] + "pass")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _ast(text: str, budget: ParseBudget) -> ast.Module | None:
    budget.parse_bytes -= len(text)
    try:
        return pyast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def parse_cell(source: str, budget: ParseBudget) -> ast.Module | None:
    """The cell as Python (magics rewritten as IPython does), or None: too large, over budget, or not code.

    Never raises; a cell that does not parse is simply not searched.
    """
    if not isinstance(source, str) or len(source) > MAX_PARSE_BYTES or budget.parse_bytes < len(source):
        return None
    tree = _ast(source, budget)
    if tree is not None or not source.strip():
        return tree
    escaped = sum(1 for line in source.splitlines() if _ESCAPED.search(line))
    work = (escaped + 1) * len(source)
    # Without an escaped line IPython would only dedent: not worth its tokenizer.
    if escaped and work <= MAX_IPYTHON_WORK_PER_CELL and work <= budget.ipython_work:
        budget.ipython_work -= work
        budget.ipython_transforms += 1
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            return _ast(TransformerManager().transform_cell(source), budget)
        except Exception:  # IPython's own limits (RuntimeError after 500 passes) or its parse errors
            return None
    try:
        return _ast(_plain_transform(textwrap.dedent(source)), budget)
    except (RecursionError, MemoryError):
        return None


@dataclass
class Canonicalized:
    notebook: nbformat.NotebookNode
    notes: list[str] = field(default_factory=list)  # what was repaired, for the instructor
    answers: dict[str, str] = field(default_factory=dict)  # grade_id -> the student's answer source
    missing_answers: list[str] = field(default_factory=list)
    budget: ParseBudget = field(default_factory=ParseBudget)  # what parsing the submission cost


def _is_answer(cell: nbformat.NotebookNode) -> bool:
    """An answer cell whose metadata is not also marked ``locked``: such a cell is overwritten
    with the instructor's, like a locked one (nbgrader would keep the student's)."""
    return is_answer(cell) and not nbgrader_meta(cell).get("locked")


def answer_defines(source: str, budget: ParseBudget | None = None) -> set[str]:
    """Top-level names a cell defines (def, class, assignment); empty if it does not parse."""
    tree = parse_cell(source, budget if budget is not None else ParseBudget())
    if tree is None:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _fresh(cell: Mapping[str, Any]) -> nbformat.NotebookNode:
    # outputs are dropped before the copy: they can be most of a (capped, but large) file
    fresh = copy.deepcopy(nbformat.NotebookNode({k: v for k, v in cell.items() if k != "outputs"}))
    if fresh.get("cell_type") == "code":
        fresh.outputs, fresh.execution_count = [], None
        fresh.pop("attachments", None)  # not allowed on code cells; some editors add it
    return fresh


def canonicalize(
    submitted: nbformat.NotebookNode,
    *,
    source: nbformat.NotebookNode,
    release: nbformat.NotebookNode,
    drop_demo: bool = False,
) -> Canonicalized:
    """The gradable notebook for ``submitted`` (left unchanged)."""
    result = Canonicalized(notebook=new_notebook())
    canon = {gid: c for c in source.cells if (gid := grade_id(c))}
    stubs = {gid: c for c in release.cells if (gid := grade_id(c))}
    answer_ids = [gid for gid, c in canon.items() if _is_answer(c)]

    cells: list[nbformat.NotebookNode] = []
    seen: set[str] = set()
    submitted_cells = submitted.cells
    if len(submitted_cells) > MAX_CELLS:
        result.notes.append(f"only the first {MAX_CELLS} of {len(submitted_cells)} cells were read")
        submitted_cells = submitted_cells[:MAX_CELLS]
    for raw in submitted_cells:
        if not isinstance(raw, dict) or raw.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        cell = _fresh(raw)
        cell.setdefault("metadata", {})
        gid = grade_id(cell)
        if gid is not None and (gid not in canon or gid in seen):
            why = "duplicated" if gid in seen else "unknown"
            result.notes.append(f"cell with {why} grade_id {gid!r}: graded as an ordinary cell")
            cell.metadata.pop("nbgrader", None)
            gid = None
        elif "nbgrader" in cell.metadata and gid is None:
            cell.metadata.pop("nbgrader", None)
        if gid is not None:
            seen.add(gid)
        if drop_demo and gid is None and "demo" in (cell.metadata.get("tags") or []):
            continue
        cells.append(cell)

    # Answers whose metadata was stripped or edited: found by the name they define.
    # Each source is parsed at most once, however many answers are missing.
    defined: dict[str, set[str]] = {}

    def defines(source: str) -> set[str]:
        if source not in defined:
            defined[source] = answer_defines(source, result.budget)
        return defined[source]

    for gid in answer_ids:
        if gid in seen:
            continue
        for cell in reversed(cells):
            if cell.cell_type == "code" and grade_id(cell) is None and gid in defines(cell.source):
                cell.metadata["nbgrader"] = {"grade_id": gid}  # full metadata is restored below
                seen.add(gid)
                result.notes.append(
                    f"answer {gid!r} found by its definition (its nbgrader metadata was missing)"
                )
                break

    # Overwrite instructor cells, keep answers; restore what was deleted.
    by_id = {gid: i for i, c in enumerate(cells) if (gid := grade_id(c))}
    out: list[nbformat.NotebookNode] = []
    placed: set[str] = set()
    canon_order = list(canon)
    for cell in cells:
        gid = grade_id(cell)
        if gid is None:
            out.append(cell)
            continue
        # Restore deleted canonical cells that come before this one in the source.
        for missing in canon_order[: canon_order.index(gid)]:
            if missing not in placed and missing not in by_id:
                out.append(_restore(missing, canon, stubs, result))
                placed.add(missing)
        out.append(_canonical_cell(cell, canon[gid], result))
        placed.add(gid)
    for missing in canon_order:
        if missing not in placed and missing not in by_id:
            out.append(_restore(missing, canon, stubs, result))
            placed.add(missing)

    for cell in out:
        meta = nbgrader_meta(cell)
        if _is_answer(cell) and meta.get("grade_id") in canon:
            result.answers[meta["grade_id"]] = cell.source
    nb = result.notebook
    nb.cells = out
    nb.metadata = copy.deepcopy(source.metadata)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"graded-{index}"
    return result


def _canonical_cell(
    cell: nbformat.NotebookNode, canon: nbformat.NotebookNode, result: Canonicalized
) -> nbformat.NotebookNode:
    if _is_answer(canon):
        fixed = _fresh(cell)
        fixed.cell_type = canon.cell_type
        if fixed.cell_type == "code":
            fixed.setdefault("outputs", [])
            fixed.setdefault("execution_count", None)
        fixed.metadata["nbgrader"] = copy.deepcopy(canon.metadata["nbgrader"])
        return fixed
    return _fresh(canon)  # locked and test cells: the instructor's, whatever the student did


def _restore(gid: str, canon: dict, stubs: dict, result: Canonicalized) -> nbformat.NotebookNode:
    cell = canon[gid]
    if _is_answer(cell):
        result.missing_answers.append(gid)
        result.notes.append(f"answer cell {gid!r} not found: graded as unanswered")
        stub = _fresh(stubs.get(gid, cell))
        stub.metadata["nbgrader"] = copy.deepcopy(cell.metadata["nbgrader"])
        return stub
    result.notes.append(f"deleted cell {gid!r} restored from the instructor's source")
    return _fresh(cell)
