"""Re-verification: each exercise again, in a fresh process where its references do not exist.

nbgrader's verdict comes from a kernel the student's code controlled for the whole
notebook. ``reverify`` does not trust any of it:

1. Here, in the trusted parent, it draws the cases (``Exercise.cases``) for every seed
   (the notebook's and a secret one), builds per exercise a *view* of course_lib with
   the exercise's references withheld (``autograder.views``) and picks the cells to
   replay (``autograder.replay``): everything nbgrader ran before the exercise's test.
2. In the sandbox (``autograder.jail.verify``) a fresh child per exercise, with the view
   mounted over course_lib, replays those cells, calls the answer on the cases and
   streams the raw outputs back (``autograder.wire``).
3. Here again, the outputs are judged with ``Exercise.judge``: one ``SeedResult`` per
   seed, the cell issues, the withheld references the answer reached, and whether the
   answer is a reference's code copied (for review, not a flag).

Demo cells (the instructor's ungraded plots and training runs, kept when grading like
for like) that the answer does not need by the names it reads are left out of a first, *trimmed*
replay: each would otherwise run again for every exercise after it. Only a clean pass
of the trimmed replay is final; any other verdict is redone with the full replay, so
an answer that depends on a demo cell in a way the name analysis cannot see is judged
exactly as before (``_trimmed``, ``_settled``).

Messages never carry anything derived from a seed that is not one of the notebook's
(the secret seed): failures on it are reported without their values.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from autograder import wire
from autograder.cells import nbgrader_meta
from autograder.jail.request import Helper, JailRequest, exercise_seconds
from autograder.likeness import same_code
from autograder.limits import Limits, Protections
from autograder.replay import ReplayCell, replay_plan
from autograder.results import CellIssue, SeedResult, Verdict, VerifyProblem
from autograder.sandbox import JAIL_DIR, jail_env
from autograder.template import launch
from autograder.views import build_view, case_inputs, reference_source, withheld_callables, withheld_for

__all__ = ["Verdict", "reverify", "test_seeds"]

START_SECONDS = 30.0  # the sandbox's own start (namespaces, imports), on top of the exercises' time
_SEED = re.compile(r"seed\s*=\s*(\d+)")
_BEGUN = re.compile(r"B \d{1,6}")  # progress line: a cell began
_MAX_MESSAGE = 500


def test_seeds(source: str) -> tuple[int, ...]:
    """Seeds a canonical test cell checks: ``seed=N`` arguments, or 0 for a bare call."""
    seeds = tuple(sorted({int(s) for s in _SEED.findall(source)}))
    return seeds or (0,)


@dataclass
class _Item:
    """One exercise on its way through the sandbox (parent side)."""

    exercise: Any  # course_lib.checks._core.Exercise
    seeds: tuple[int, ...]
    public: frozenset[int]  # seeds the notebook's test cells use; the others are secret
    cells: list[ReplayCell]
    cases: list[tuple[int, Any]] = field(default_factory=list)  # (seed, Case)
    view: Path | None = None
    lib: tuple[str, ...] = ()
    relevant: frozenset[int] = frozenset()  # cells the answer needs by its global reads alone


def reverify(
    notebook: nbformat.NotebookNode,
    exercises: Sequence[Any],
    *,
    seeds: Mapping[str, tuple[int, ...]],
    scratch: Path,
    hide: list[Path],
    limits: Limits,
    protections: Protections,
    views: Path,
) -> dict[str, Verdict]:
    """One ``Verdict`` per exercise of ``exercises``: its answer, after a replay of the
    cells nbgrader ran before its test, judged on the cases of every seed in ``seeds``.

    ``notebook`` is the canonical notebook nbgrader runs (demo cells dropped, or kept
    when grading like for like: then left out of a first replay where the answer does
    not need them, see the module docstring);
    ``scratch`` a folder prepared by ``execute.prepare_scratch``; ``views`` a per-run
    folder caching the course_lib views (safe to share between threads)."""
    verdicts: dict[str, Verdict] = {}
    items: list[_Item] = []
    code = [(i, c) for i, c in enumerate(notebook.cells) if c.get("cell_type") == "code"]
    setup = next((i for i, c in code if nbgrader_meta(c).get("grade_id") == "setup"), None)
    support = scratch / "lib" if (scratch / "lib").is_dir() else None  # the job's support modules
    demo = _demo_cells(notebook)  # none when grading by default: they were dropped
    for ex in exercises:
        if ex.name not in seeds or not seeds[ex.name]:
            raise ValueError(f"reverify: no seeds given for exercise {ex.name!r}")
        tests = [
            (i, c)
            for i, c in code
            if nbgrader_meta(c).get("grade")
            and nbgrader_meta(c).get("grade_id") in (f"test_{ex.name}", f"test_{ex.name}_hidden")
        ]
        first_test = tests[0][0] if tests else len(notebook.cells)
        public = frozenset(s for _, c in tests for s in test_seeds(c.source))
        before = [(i, c.source) for i, c in code if i < first_test and not nbgrader_meta(c).get("grade")]
        item = _Item(
            ex, tuple(seeds[ex.name]), public, replay_plan(before, target=ex.name, setup_index=setup)
        )
        if demo:  # the finer plan only matters where demo cells could be left out
            precise = replay_plan(before, target=ex.name, setup_index=setup, precise=True)
            item.relevant = frozenset(c.index for c in precise if c.needed)
        keep: Mapping[str, frozenset[str]] = {}
        if ex.kind == "function":
            item.cases = [(seed, case) for seed in item.seeds for case in ex.cases(seed)]
            inputs = case_inputs(ex, _functions(item.cases), support)
            why = inputs if isinstance(inputs, str) else _unsendable(ex, item.cases, support, inputs)
            if why or isinstance(inputs, str):
                verdicts[ex.name] = _problem(item, VerifyProblem.UNVERIFIABLE, why)
                continue
            keep = inputs
        view = build_view(views, ex, support=support, keep=keep)
        item.view, item.lib = view.root, view.lib_overrides
        items.append(item)

    def run(todo: list[_Item]) -> dict[str, dict]:
        return _run_sandbox(todo, scratch=scratch, hide=hide, limits=limits, protections=protections)

    trimmed = [_trimmed(item, demo) for item in items]
    full = items
    if any(short is not None for short in trimmed):
        # First without the demo cells the answers do not need: a clean pass is final;
        # everything else, and every item with nothing to trim, runs the full replay.
        first = [short for short in trimmed if short is not None]
        frames = run(first)
        for short in first:
            verdict = _verdict(short, frames.get(short.exercise.name))
            if _settled(verdict):
                verdicts[short.exercise.name] = verdict
        full = [item for item in items if item.exercise.name not in verdicts]
    if full:
        frames = run(full)
        for item in full:
            verdicts[item.exercise.name] = _verdict(item, frames.get(item.exercise.name))
    return {ex.name: verdicts[ex.name] for ex in exercises}


def _demo_cells(notebook: nbformat.NotebookNode) -> frozenset[int]:
    """Indices of the notebook's ungraded ``demo`` cells (the instructor's plots and runs)."""
    return frozenset(
        i
        for i, c in enumerate(notebook.cells)
        if c.get("cell_type") == "code"
        and not nbgrader_meta(c).get("grade_id")
        and "demo" in (c.get("metadata", {}).get("tags") or [])
    )


def _trimmed(item: _Item, demo: frozenset[int]) -> _Item | None:
    """``item`` without the demo cells its answer does not need by the names its cells
    read (``item.relevant``), or None when there is none to leave out."""
    cells = [c for c in item.cells if c.setup or c.index not in demo or c.index in item.relevant]
    return replace(item, cells=cells) if len(cells) < len(item.cells) else None


def _settled(verdict: Verdict) -> bool:
    """A trimmed replay's verdict that stands: every seed passed, no problem, no reference
    reached. Anything else is redone with the full replay, so that leaving a demo cell out
    can only ever spare an honest student a failure, never cause one."""
    return (
        verdict.problem is None
        and not verdict.reached
        and bool(verdict.seeds)
        and all(r is SeedResult.PASSED for r in verdict.seeds.values())
    )


def _functions(cases: list[tuple[int, Any]]) -> list[Any]:
    """Functions passed as case arguments (sent by name, see ``wire``)."""
    return [
        v
        for _, case in cases
        for v in _walk(case.args) + _walk(case.kwargs)
        if isinstance(v, types.FunctionType)
    ]


def _unsendable(
    ex: Any, cases: list[tuple[int, Any]], support: Path | None, keep: Mapping[str, frozenset[str]]
) -> str:
    """Why the cases cannot reach the child ("" if they can)."""
    withheld = withheld_callables(ex, support, keep)

    def walk(value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return next((w for v in value if (w := walk(v))), "")
        if isinstance(value, dict):
            return next((w for v in value.values() if (w := walk(v))), "")
        return withheld.get(id(value), "")

    for _, case in cases:
        name = walk(case.args) or walk(case.kwargs)
        if name:
            return f"its cases pass {name}, which is withheld in the re-verification process"
        try:
            wire.dumps([case.args, case.kwargs])
        except wire.WireError as exc:
            return f"its cases cannot be sent to the sandbox ({exc})"
    return ""


def _problem(item: _Item, problem: VerifyProblem, detail: str, **extra: Any) -> Verdict:
    return Verdict(
        item.exercise.name,
        seeds=dict.fromkeys(item.seeds, SeedResult.NOT_RUN),
        problem=problem,
        problem_detail=detail[:_MAX_MESSAGE],
        **extra,
    )


# ---------------------------------------------------------------- the sandbox run


def _run_sandbox(
    items: list[_Item],
    *,
    scratch: Path,
    hide: list[Path],
    limits: Limits,
    protections: Protections,
) -> dict[str, dict]:
    import course_lib

    directory = scratch / "verify"
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "cases").mkdir(parents=True)
    os.chmod(directory, 0o700)  # root only: a child must never read another exercise's cases
    plan = {
        "course_lib": str(Path(course_lib.__file__).resolve().parent),
        # Preload torch only when a cell this run replays mentions it: a trimmed replay
        # (demo cells left out) usually does not, and the import costs ~1.5 core-s.
        "torch": any("torch" in c.source for item in items for c in item.cells),
        "items": [
            {
                "name": item.exercise.name,
                "kind": item.exercise.kind,
                "view": str(item.view),
                "lib": list(item.lib),
                "cells": [
                    {"index": c.index, "source": c.source, "needed": c.needed, "setup": c.setup}
                    for c in item.cells
                ],
            }
            for item in items
        ],
    }
    (directory / "plan.json").write_text(json.dumps(plan))
    for k, item in enumerate(items):
        (directory / "cases" / f"{k}.bin").write_bytes(
            wire.dumps([[c.args, c.kwargs] for _, c in item.cases])
        )
    request = JailRequest(Helper.VERIFY, scratch, limits, protections, hide=tuple(hide))
    base = Path(JAIL_DIR) if protections.namespaces else scratch
    env = jail_env(base / "work", [str(base / "lib")])
    budget = exercise_seconds(limits) * len(items) + START_SECONDS
    proc = launch(request, env=env, stdout=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    frames: dict[str, dict] = {}
    for line in (out or b"").splitlines():  # stdout is a pipe: never None
        try:
            frame = json.loads(line)
            frames[str(frame["name"])] = frame
        except (ValueError, KeyError, TypeError):
            continue
        if os.environ.get("AUTOGRADER_TRACE"):  # seconds per exercise, for tuning
            print(f"verify {frame['name']}: {frame.get('seconds', 0):.2f} s", file=sys.stderr)
    if not frames:
        tail = err.decode(errors="replace").strip()[-400:] or "no output"
        frames = {item.exercise.name: {"status": "no report", "detail": tail} for item in items}
    return frames


def _frames(report: bytes) -> list[dict]:
    """The child's length-prefixed wire frames; stops at the first malformed one."""
    out, offset = [], 0
    while offset + 4 <= len(report):
        (size,) = struct.unpack(">I", report[offset : offset + 4])
        chunk = report[offset + 4 : offset + 4 + size]
        if len(chunk) != size:
            break
        try:
            value = wire.loads(chunk)
        except wire.WireError:
            break
        if not isinstance(value, dict) or not isinstance(value.get("k"), str):
            break
        out.append(value)
        offset += 4 + size
    return out


# ---------------------------------------------------------------- judging, in the parent


def _verdict(item: _Item, frame: dict | None) -> Verdict:
    ex = item.exercise
    if frame is None:
        return _problem(item, VerifyProblem.NO_REPORT, "the re-verification process did not report")
    lines = [str(x) for x in frame.get("lines", []) if isinstance(x, str)]
    setup = next((c.index for c in item.cells if c.setup), None)
    # The setup cell runs first: once a student cell has begun (its "B" line is written
    # before its code runs), any setup failure, setup "B" line or grader "X" line after
    # it may be the student's own writing, never the grader's word.
    began = [int(line[2:]) for line in lines if _BEGUN.fullmatch(line)]
    student_began = [i for i in began if i != setup]
    infra = "" if student_began else next((line[2:] for line in lines if line.startswith("X ")), "")
    try:
        frames = _frames(base64.b64decode(frame.get("report", "")))
    except (ValueError, TypeError):
        frames = []
    issues: dict[int, CellIssue] = {}
    for f in frames:
        if (
            f["k"] == "issue"
            and isinstance(f.get("i"), int)
            and f.get("kind") in ("raised", "timed out", "skipped")
        ):
            issues[f["i"]] = CellIssue(f["i"], f["kind"], _safe(item, str(f.get("msg", ""))))
    for cell in frame.get("killed", []):
        if isinstance(cell, int):
            issues[cell] = CellIssue(cell, "timed out", "ignored its time box and was stopped")
    for cell in frame.get("crashed", []):
        if isinstance(cell, int):
            issues[cell] = CellIssue(
                cell,
                "raised",
                "ended the process (os._exit, a crash or a signal); the exercise was checked without it",
            )
    status = str(frame.get("status", "no report"))
    stuck = frame.get("cell") if isinstance(frame.get("cell"), int) else None  # begun, never ended
    if stuck is not None and stuck == setup and student_began:
        stuck = student_began[-1]  # a forged "B <setup>": the student's cell was the one running
    if stuck is not None and stuck != setup:
        issues[stuck] = (
            CellIssue(
                stuck,
                "timed out",
                f"did not finish within the {float(frame.get('seconds', 0)):.0f} s of this exercise",
            )
            if status != "ok"
            else CellIssue(
                stuck, "raised", "the process ended while this cell ran (os._exit, a crash or a signal)"
            )
        )
    cell_issues = tuple(issues[i] for i in sorted(issues))
    kinds = {f["k"]: f for f in frames}
    if "setup" in kinds and not student_began:
        return _problem(
            item,
            VerifyProblem.SETUP_FAILED,
            f"the canonical setup cell failed: {kinds['setup'].get('msg', '')}",
        )
    if stuck is not None and stuck == setup:
        return _problem(
            item, VerifyProblem.SETUP_FAILED, f"the canonical setup cell did not finish ({status})"
        )
    if "defined" not in kinds:
        # Once a student cell has started, a missing report is the student's code (it can
        # exit the process or hang); before that, it is the grader's.
        started = student_began
        if started or cell_issues:
            last = stuck if stuck is not None else (started[-1] if started else cell_issues[-1].index)
            message = f"{ex.name} could not be re-verified: the replay of the notebook stopped at cell {last}"
            return Verdict(
                ex.name,
                dict.fromkeys(item.seeds, SeedResult.NOT_RUN),
                message=message,
                cell_issues=cell_issues,
            )
        detail = infra or f"the re-verification process stopped ({status}) {frame.get('detail', '')}".strip()
        return _problem(item, VerifyProblem.NO_REPORT, detail, cell_issues=cell_issues)
    copied = _copied_from(item)
    if not kinds["defined"].get("ok"):
        where = next((c for c in item.cells if c.needed and not c.setup), None)
        hint = f" (its answer cell is cell {where.index})" if where is not None else ""
        needed = {c.index for c in item.cells if c.needed}
        cut = next((i for i in cell_issues if i.kind == "timed out" and i.index in needed), None)
        if cut is not None:
            detail = (
                f"`{ex.name}` was not defined because cell {cut.index}, which the answer needs, timed out "
                f"in the re-verification ({cut.message}): make that cell faster, or move long experiments "
                f"into a cell of their own."
            )
            return _problem(item, VerifyProblem.NOT_DEFINED, detail, cell_issues=cell_issues)
        detail = (
            f"`{ex.name}` is not defined after the cells before its test ran{hint}: define it at the top level "
            f"of its answer cell and make sure that cell runs without an error."
        )
        return _problem(item, VerifyProblem.NOT_DEFINED, detail, cell_issues=cell_issues)
    reached = _reached(lines, kinds.get("done"))
    if ex.kind == "value":
        out = kinds.get("value", {}).get("out")
        result, message = _judge_one(item, None, None, out)
        return Verdict(
            ex.name,
            dict.fromkeys(item.seeds, result),
            message=message,
            reached=reached,
            cell_issues=cell_issues,
            copied_from=copied,
        )
    outputs = {f["n"]: f.get("out") for f in frames if f["k"] == "case" and isinstance(f.get("n"), int)}
    results: dict[int, SeedResult] = {}
    messages: list[tuple[bool, str]] = []  # (from a secret seed, text)
    for n, (seed, case) in enumerate(item.cases):
        if n not in outputs:
            why = (
                "did not finish: the process stopped" if "done" not in kinds else "not run: no time was left"
            )
            result, message = (
                SeedResult.RAISED if status != "ok" or "done" not in kinds else SeedResult.NOT_RUN,
                why,
            )
        else:
            result, message = _judge_one(item, seed, case, outputs[n])
        worst = max(results.get(seed, SeedResult.PASSED), result, key=_SEVERITY.index)
        results[seed] = worst
        if result is not SeedResult.PASSED:
            messages.append((seed not in item.public, message))
    seeds = {s: results.get(s, SeedResult.NOT_RUN) for s in item.seeds}
    message = next((m for secret, m in messages if not secret), "") or next((m for _, m in messages), "")
    return Verdict(
        ex.name, seeds, message=message, reached=reached, cell_issues=cell_issues, copied_from=copied
    )


_SEVERITY = [SeedResult.PASSED, SeedResult.WRONG, SeedResult.NOT_RUN, SeedResult.RAISED]


def _reached(lines: list[str], done: dict | None) -> tuple[str, ...]:
    """Withheld names called while the answer ran on the cases: written to the pipe by
    the stub itself (after the "C" marker), and the child's own list as a second source."""
    names: list[str] = []
    calls = False
    for line in lines:
        if line == "C":
            calls = True
        elif calls and line.startswith("W "):
            names.append(line[2:].strip()[:200])
    if done is not None and isinstance(done.get("reached"), list):
        names.extend(str(n)[:200] for n in done["reached"])
    return tuple(dict.fromkeys(n for n in names if n))


def _judge_one(item: _Item, seed: int | None, case: Any, output: Any) -> tuple[SeedResult, str]:
    """One output, judged by the trusted judge; the message is safe to show the student."""
    ex = item.exercise
    secret = seed is not None and seed not in item.public
    if not (isinstance(output, list) and len(output) == 2 and output[0] in ("ok", "err")):
        return SeedResult.RAISED, "malformed result from the re-verification process"
    if output[0] == "err":
        text = str(output[1])
        if secret:  # student code held the secret case: whatever it printed stays here
            return SeedResult.RAISED, f"{ex.name} raised on a case drawn from the grader's secret seed"
        return SeedResult.RAISED, _safe(item, text)
    try:
        ex.judge(case, output[1])
    except AssertionError as exc:
        text = str(exc)
    except Exception as exc:  # a judge meeting an output shape it did not expect
        text = f"{type(exc).__name__}: {exc}"
    else:
        return SeedResult.PASSED, ""
    if secret:
        return SeedResult.WRONG, (
            f"{ex.name} is wrong on a case drawn from the grader's secret seed "
            "(its values are not shown); it may depend on the particular inputs of the notebook's tests"
        )
    return SeedResult.WRONG, _safe(item, text)


def _safe(item: _Item, text: str) -> str:
    """``text`` without generator renderings, secret seeds, or their generators' state numbers."""
    from course_lib.testing import scrub

    text = scrub(text)
    secrets = {str(s) for s in item.seeds if s not in item.public}
    for _, case in item.cases:
        for value in _walk(case.args) + _walk(case.kwargs):
            if isinstance(value, np.random.Generator):
                secrets.update(_state_numbers(value.bit_generator.state))
    for number in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        text = re.sub(rf"(?<!\d){re.escape(number)}(?!\d)", "<hidden>", text)
    return text[:_MAX_MESSAGE]


def _walk(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _walk(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _walk(v)]
    return [value]


def _state_numbers(state: Any) -> set[str]:
    if isinstance(state, dict):
        return {n for v in state.values() for n in _state_numbers(v)}
    if isinstance(state, (int, np.integer)) and not isinstance(state, bool):
        return {str(int(state))}
    if isinstance(state, np.ndarray):
        return {str(int(v)) for v in state.ravel()[:64]}
    return set()


def _copied_from(item: _Item) -> str:
    """The reference whose code the answer reproduces (names and formatting aside), or ""."""
    ex = item.exercise
    answers = [c.source for c in item.cells if c.needed and not c.setup]
    for ref in withheld_for(ex):
        try:
            source = reference_source(ref)
        except (OSError, TypeError):
            continue
        if any(same_code(a, ex.name, source, ref.name) for a in answers):
            return ref.dotted
    return ""
