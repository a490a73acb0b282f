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
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field

import nbformat
from nbformat.v4 import new_notebook

__all__ = ["Canonicalized", "canonicalize", "answer_defines", "nbgrader_meta"]


@dataclass
class Canonicalized:
    notebook: nbformat.NotebookNode
    notes: list[str] = field(default_factory=list)  # what was repaired, for the instructor
    answers: dict[str, str] = field(default_factory=dict)  # grade_id -> the student's answer source
    missing_answers: list[str] = field(default_factory=list)


def nbgrader_meta(cell: nbformat.NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def _is_answer(cell: nbformat.NotebookNode) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("solution")) and not meta.get("grade") and not meta.get("locked")


def answer_defines(source: str) -> set[str]:
    """Top-level names a cell defines (def, class, assignment); empty if it does not parse."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        tree = ast.parse(TransformerManager().transform_cell(source))
    except Exception:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _fresh(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
        cell.pop("attachments", None)  # not allowed on code cells; some editors add it
    return cell


def canonicalize(
    submitted: nbformat.NotebookNode,
    *,
    source: nbformat.NotebookNode,
    release: nbformat.NotebookNode,
    drop_demo: bool = False,
) -> Canonicalized:
    """The gradable notebook for ``submitted`` (left unchanged)."""
    result = Canonicalized(notebook=new_notebook())
    canon = {gid: c for c in source.cells if (gid := _grade_id(c))}
    stubs = {gid: c for c in release.cells if (gid := _grade_id(c))}
    answer_ids = [gid for gid, c in canon.items() if _is_answer(c)]

    cells: list[nbformat.NotebookNode] = []
    seen: set[str] = set()
    for raw in submitted.cells:
        if raw.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        cell = _fresh(raw)
        cell.setdefault("metadata", {})
        gid = _grade_id(cell)
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
    for gid in answer_ids:
        if gid in seen:
            continue
        for cell in reversed(cells):
            if cell.cell_type == "code" and _grade_id(cell) is None and gid in answer_defines(cell.source):
                cell.metadata["nbgrader"] = {"grade_id": gid}  # full metadata is restored below
                seen.add(gid)
                result.notes.append(f"answer {gid!r} found by its definition (its nbgrader metadata was missing)")
                break

    # Overwrite instructor cells, keep answers; restore what was deleted.
    by_id = {gid: i for i, c in enumerate(cells) if (gid := _grade_id(c))}
    out: list[nbformat.NotebookNode] = []
    placed: set[str] = set()
    canon_order = list(canon)
    for cell in cells:
        gid = _grade_id(cell)
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


def _canonical_cell(cell: nbformat.NotebookNode, canon: nbformat.NotebookNode, result: Canonicalized) -> nbformat.NotebookNode:
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
