"""Re-verification step: each exercise again, in a fresh process, on inputs the grader chose.

nbgrader's verdict comes from a kernel the student's code controlled for the whole
notebook (monkeypatched checks, IPython hooks, forged outputs...). Re-verification
does not trust any of it:

1. The trusted parent (``plan_verification``) draws cases with ``Exercise.cases`` for
   the seeds the canonical test cells use and for a secret seed, and writes them,
   pickle-free, to the job's scratch.
2. In the sandbox (``main``, as ``nobody``), the canonical setup cell runs once; then,
   per exercise, a forked child installs traps over the course_lib references for
   that exercise (``Exercise.references``: module attributes, every alias of them, and
   a profile hook catching re-loaded copies), runs ONLY the student's answer cell,
   calls the answer on the cases and sends the raw outputs back (``autograder.wire``).
   Stray processes are killed before the next exercise starts.
3. The parent (``judge_verification``) judges the outputs with ``Exercise.judge``.

A point then counts only where nbgrader and re-verification agree (see ``pipeline``).
"""

from __future__ import annotations

import argparse
import base64
import copy
import ctypes
import importlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder import wire
from autograder.sandbox import JAIL_DIR, Limits, Protections, jail_env, sandbox_argv

__all__ = ["Verdict", "VerifyItem", "plan_verification", "run_verification", "test_seeds"]

SETUP_FAILED = "the canonical setup cell failed"
UNVERIFIABLE = "cannot be re-verified"
_SEED = re.compile(r"seed\s*=\s*(\d+)")
_MAX_RESULT = 64 * 1024**2


@dataclass
class VerifyItem:
    """One exercise to re-verify (parent side)."""

    exercise: Any  # course_lib.checks._core.Exercise
    answer: str  # the student's answer cell source
    seeds: tuple[int, ...]
    cases: list[tuple[int, Any]] = field(default_factory=list)  # (seed, Case)
    unverifiable: str = ""  # set when the grader itself cannot re-verify this exercise


@dataclass(frozen=True)
class Verdict:
    name: str
    seeds: dict[int, bool]  # seed -> every case of that seed passed
    trapped: tuple[str, ...]  # references the answer called
    error: str  # why the answer could not be re-verified at all ("" if it ran)
    message: str  # first failure, for the instructor


def test_seeds(source: str) -> tuple[int, ...]:
    """Seeds a canonical test cell checks: ``seed=N`` arguments, or 0 for a bare call."""
    seeds = tuple(sorted({int(s) for s in _SEED.findall(source)}))
    return seeds or (0,)


def plan_verification(items: list[VerifyItem], setup: str, directory: Path) -> None:
    """Draw the cases (trusted) and write the sandbox's inputs to ``directory``."""
    plan, cases = [], {}
    for item in items:
        ex = item.exercise
        item.cases = [(seed, case) for seed in item.seeds for case in ex.cases(seed)] if ex.kind == "function" else []
        encoded = [[case.args, case.kwargs] for _, case in item.cases]
        try:
            wire.dumps(encoded)
        except wire.WireError as exc:
            item.unverifiable = f"{UNVERIFIABLE}: its cases cannot be sent to the sandbox ({exc})"
            continue
        cases[ex.name] = encoded
        plan.append({"name": ex.name, "kind": ex.kind, "answer": item.answer, "references": list(ex.references)})
    (directory / "plan.json").write_text(json.dumps({"setup": setup, "items": plan}))
    (directory / "cases.bin").write_bytes(wire.dumps(cases))
    for name in ("plan.json", "cases.bin"):
        os.chmod(directory / name, 0o444)


def run_verification(
    items: list[VerifyItem],
    *,
    setup: str,
    scratch: Path,
    hide: list[Path],
    limits: Limits,
    protections: Protections,
) -> dict[str, Verdict]:
    """Re-verify every item in one sandbox; verdicts judged here, in the parent."""
    if not items:
        return {}
    plan_verification(items, setup, scratch / "verify")
    if all(item.unverifiable for item in items):
        return {item.exercise.name: _judge(item, None, "") for item in items}
    args = [
        "--scratch", str(scratch),
        "--limits", json.dumps(asdict(limits)),
        "--protections", json.dumps(asdict(protections)),
        *[a for path in hide for a in ("--hide", str(path))],
    ]  # fmt: skip
    base = Path(JAIL_DIR) if protections.namespaces else scratch
    env = jail_env(base / "work", [str(base / "lib")])
    budget = limits.verify_timeout * len(items) + 30
    proc = subprocess.Popen(
        sandbox_argv("autograder.verify", args, protections),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    frames = {}
    for line in out[:_MAX_RESULT].splitlines():
        try:
            frame = json.loads(line)
            frames[frame["name"]] = frame
            if os.environ.get("AUTOGRADER_TRACE"):  # seconds per exercise, for tuning
                print(f"verify {frame['name']}: {frame.get('seconds', 0):.2f} s", file=sys.stderr)
        except (ValueError, KeyError, TypeError):
            continue
    return {
        item.exercise.name: _judge(item, frames.get(item.exercise.name), err.decode(errors="replace")[-400:])
        for item in items
    }


def _judge(item: VerifyItem, frame: dict | None, stderr: str) -> Verdict:
    ex = item.exercise
    seeds = {seed: False for seed in item.seeds}
    if item.unverifiable:
        return Verdict(ex.name, seeds, (), item.unverifiable, "")
    if frame is None:
        return Verdict(ex.name, seeds, (), f"re-verification did not report ({stderr.strip() or 'no output'})", "")
    if frame.get("status") != "ok":
        return Verdict(ex.name, seeds, (), str(frame.get("status")), "")
    try:
        result = wire.loads(base64.b64decode(frame["data"]))
        trapped = tuple(str(t) for t in result["trapped"])
        outputs = result["outputs"]
    except (wire.WireError, ValueError, KeyError, TypeError) as exc:
        return Verdict(ex.name, seeds, (), f"unreadable re-verification result ({exc})", "")
    if result.get("error"):
        return Verdict(ex.name, seeds, trapped, "", str(result["error"])[:500])
    message = ""
    if ex.kind == "value":
        ok, text = _judge_one(ex, None, outputs[0] if outputs else ("err", "no value"))
        return Verdict(ex.name, {seed: ok for seed in seeds}, trapped, "", text)
    if len(outputs) != len(item.cases):
        return Verdict(ex.name, seeds, trapped, "", "the answer did not return a result for every case")
    seeds = {seed: True for seed in item.seeds}
    for (seed, case), output in zip(item.cases, outputs, strict=True):
        ok, text = _judge_one(ex, case, output)
        if not ok:
            seeds[seed] = False
            message = message or text
    return Verdict(ex.name, seeds, trapped, "", message)


def _judge_one(ex: Any, case: Any, output: Any) -> tuple[bool, str]:
    if not (isinstance(output, list) and len(output) == 2) or output[0] not in ("ok", "err"):
        return False, "malformed result"
    if output[0] == "err":
        return False, str(output[1])[:500]
    try:
        ex.judge(case, output[1])
    except AssertionError as exc:
        return False, str(exc)[:500]
    except Exception as exc:  # a judge meeting an output shape it did not expect
        return False, f"{type(exc).__name__}: {exc}"[:500]
    return True, ""


# ---------------------------------------------------------------- inside the jail


class _Trapped(BaseException):
    """Raised when graded code calls the reference; a BaseException so that a bare
    ``except Exception`` in the answer does not swallow it."""


class _ShellStub:
    """``get_ipython()`` for answer cells outside IPython: magics, ``!`` and hooks
    (``input_transformers_post.append(...)``) are accepted and do nothing."""

    def __getattr__(self, name: str) -> Any:
        return _ShellStub()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _ShellStub()


def _transform(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


class _PatchOnImport:
    """Meta-path finder: patches reference attributes of a module the moment it is
    first imported, so the traps need not import torch for a NumPy-only answer."""

    def __init__(self, pending: dict[str, list[tuple[str, str]]], patch: Any) -> None:
        self.pending, self.patch = pending, patch

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.pending:
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        else:
            return None
        loader, attrs = spec.loader, self.pending[name]
        exec_module = loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            for attr, dotted in attrs:
                self.patch(module, attr, dotted)

        loader.exec_module = exec_and_patch
        return spec


def _install_traps(paths: list[str], namespace: dict, hits: list[str]) -> None:
    originals: dict[int, tuple[Any, Any]] = {}
    codes: dict[tuple[str, int, str], str] = {}

    def patch(module: Any, attr: str, dotted: str) -> None:
        original = getattr(module, attr, None)
        if original is None:
            return

        def trap(*args: Any, **kwargs: Any) -> Any:
            hits.append(dotted)
            raise _Trapped(f"{dotted} is the reference for this exercise and cannot be used in the answer")

        originals[id(original)] = (original, trap)
        setattr(module, attr, trap)
        code = getattr(original, "__code__", None)
        if code is not None:
            codes[(code.co_filename, code.co_firstlineno, code.co_name)] = dotted

    pending: dict[str, list[tuple[str, str]]] = {}
    for dotted in paths:
        module_name, _, attr = dotted.rpartition(".")
        module = sys.modules.get(module_name)
        if module is None:
            pending.setdefault(module_name, []).append((attr, dotted))
        else:
            patch(module, attr, dotted)
    # Every alias: names the setup cell imported, package re-exports, lazy caches.
    for mapping in [namespace, *(vars(m) for m in list(sys.modules.values()) if hasattr(m, "__dict__"))]:
        for key, value in list(mapping.items()):
            hit = originals.get(id(value))
            if hit is not None and hit[0] is value:
                mapping[key] = hit[1]
    if pending:
        sys.meta_path.insert(0, _PatchOnImport(pending, patch))

    # A copy re-loaded from the module's file (importlib.reload, exec of its source)
    # has new function objects but the same code location.
    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            dotted = codes.get((code.co_filename, code.co_firstlineno, code.co_name))
            if dotted is not None:
                hits.append(dotted)
                raise _Trapped(f"{dotted} (re-loaded) is the reference for this exercise")

    if paths:
        import threading

        sys.setprofile(profile)
        threading.setprofile(profile)


def _run_item(item: dict, cases: list, namespace: dict) -> bytes:
    hits: list[str] = []
    outputs: list[Any] = []
    error = ""
    try:
        _install_traps(item["references"], namespace, hits)
        try:
            exec(compile(_transform(item["answer"]), "<answer>", "exec"), namespace)
        except (_Trapped, KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            # As in the notebook: a cell failing after its `def` still defines the answer.
            if item["name"] not in namespace:
                raise
        if item["kind"] == "value":
            cases = [None]
        for case in cases:
            try:
                if item["kind"] == "value":
                    value = namespace[item["name"]]
                else:
                    args, kwargs = case
                    value = namespace[item["name"]](*copy.deepcopy(tuple(args)), **copy.deepcopy(kwargs))
                wire.dumps(value)  # can it be sent at all?
                outputs.append(["ok", value])
            except _Trapped:
                outputs.append(["err", "called the course_lib reference for this exercise"])
            except wire.WireError as exc:
                outputs.append(["err", f"the answer returned something that is not numbers/arrays ({exc})"])
            except KeyError:
                outputs.append(["err", f"{item['name']} is not defined by the answer cell"])
            except Exception as exc:
                outputs.append(["err", f"{type(exc).__name__}: {exc}"[:300]])
    except _Trapped:
        error = "called the course_lib reference for this exercise"
    except BaseException as exc:  # the answer cell itself failed (incl. SystemExit)
        error = f"the answer cell raised {type(exc).__name__}: {exc}"[:300]
    sys.setprofile(None)
    return wire.dumps({"trapped": list(dict.fromkeys(hits)), "outputs": outputs, "error": error})


def _read_child(fd: int, pid: int, timeout: float) -> tuple[str, bytes]:
    chunks, size, deadline = [], 0, time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return f"timed out after {timeout:.0f} s", b""
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > _MAX_RESULT:
            return "output too large", b""
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    if not data:
        return f"the re-verification process died (status {status})", b""
    return "ok", data


def main(argv: list[str] | None = None) -> int:
    from autograder.sandbox import drop_privileges, enter_jail

    parser = argparse.ArgumentParser()
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--hide", type=Path, action="append", default=[])
    parser.add_argument("--limits", required=True)
    parser.add_argument("--protections", required=True)
    args = parser.parse_args(argv)
    limits = Limits(**json.loads(args.limits))
    protections = Protections(**json.loads(args.protections))
    jail = enter_jail(args.scratch, args.hide) if protections.namespaces else args.scratch
    # PYTHONPATH entries inside the jail did not exist when the interpreter started.
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    plan = json.loads((jail / "verify" / "plan.json").read_text())
    all_cases = wire.loads((jail / "verify" / "cases.bin").read_bytes(), torch_tensors=True)
    os.chdir(jail / "work")
    drop_privileges(limits, protections=protections)
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: children cannot reach our fds via /proc
    results = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)

    clock = time.monotonic()

    def send(name: str, status: str, data: bytes = b"") -> None:
        nonlocal clock
        seconds, clock = time.monotonic() - clock, time.monotonic()
        line = json.dumps({"name": name, "status": status, "data": base64.b64encode(data).decode(), "seconds": seconds})
        os.write(results, line.encode() + b"\n")

    namespace: dict[str, Any] = {"__name__": "__main__", "get_ipython": _ShellStub()}
    try:
        exec(compile(_transform(plan["setup"]), "<setup>", "exec"), namespace)
        send("<setup>", "ok")
    except BaseException as exc:
        for item in plan["items"]:
            send(item["name"], f"{SETUP_FAILED}: {type(exc).__name__}: {exc}"[:300])
        return 0
    for item in plan["items"]:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the fresh process: only this exercise's answer runs here
            os.close(read_end)
            os.close(results)
            try:
                data = _run_item(item, all_cases.get(item["name"], []), namespace)
                view = memoryview(data)
                while view:
                    view = view[os.write(write_end, view) :]
            finally:
                os._exit(0)
        os.close(write_end)
        status, data = _read_child(read_end, pid, limits.verify_timeout)
        os.close(read_end)
        # The child, then (only as the jail's pid 1, where -1 means "this jail") anything
        # it left behind, so nothing from one exercise survives into the next.
        for target in (pid, -1) if os.getpid() == 1 else (pid,):
            try:
                os.kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        send(item["name"], status, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# ---------------------------------------------------------------- TEMP adapter
# Dropped at merge: the verify helper's ``reverify`` replaces it. It maps the old
# one-answer-cell run onto the typed ``autograder.results.Verdict`` so the scoring
# branch runs end to end, replaying (as the new contract says) every student code cell
# before the exercise's first test cell, one try-block per cell.


def reverify(
    notebook: Any,
    exercises: Any,
    *,
    seeds: Any,
    scratch: Path,
    hide: list[Path],
    limits: Limits,
    protections: Protections,
    views: Path,
) -> dict:
    """TEMP: the new contract's signature over ``run_verification``'s machinery."""
    from autograder.canonical import nbgrader_meta
    from autograder.results import SeedResult
    from autograder.results import Verdict as TypedVerdict
    from autograder.results import VerifyProblem

    cells = list(notebook.cells)
    setup = "\n".join(c.source for c in cells if nbgrader_meta(c).get("grade_id") == "setup")
    items = []
    for ex in exercises:
        first_test = next(
            (i for i, c in enumerate(cells) if nbgrader_meta(c).get("grade")
             and nbgrader_meta(c).get("grade_id", "").removeprefix("test_").removesuffix("_hidden") == ex.name),
            len(cells),
        )
        replay = [
            (i, _transform(c.source)) for i, c in enumerate(cells[:first_test])
            if c.cell_type == "code" and not nbgrader_meta(c).get("grade")
            and nbgrader_meta(c).get("grade_id") != "setup"
        ]
        wrapper = (
            f"_ag_issues = []\nfor _ag_i, _ag_src in {replay!r}:\n"
            "    try:\n        exec(compile(_ag_src, f'<cell {_ag_i}>', 'exec'), globals())\n"
            "    except Exception as _ag_exc:\n"
            "        _ag_issues.append(f'cell {_ag_i} raised {type(_ag_exc).__name__}: {_ag_exc}')\n"
            "if _ag_issues:\n    raise RuntimeError('; '.join(_ag_issues))\n"
        )
        items.append(VerifyItem(exercise=ex, answer=wrapper, seeds=tuple(seeds[ex.name])))
    if not items:
        return {}
    plan_verification(items, setup, scratch / "verify")
    args = [
        "--scratch", str(scratch),
        "--limits", json.dumps(asdict(limits)),
        "--protections", json.dumps(asdict(protections)),
        *[a for path in hide for a in ("--hide", str(path))],
    ]  # fmt: skip
    base = Path(JAIL_DIR) if protections.namespaces else scratch
    env = jail_env(base / "work", [str(base / "lib")])
    proc = subprocess.Popen(
        sandbox_argv("autograder.verify", args, protections),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=limits.verify_timeout * len(items) + 30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    frames = {}
    for line in out[:_MAX_RESULT].splitlines():
        try:
            frame = json.loads(line)
            frames[frame["name"]] = frame
        except (ValueError, KeyError, TypeError):
            continue

    verdicts = {}
    for item in items:
        ex, frame = item.exercise, frames.get(item.exercise.name)
        name = ex.name
        if item.unverifiable:
            verdicts[name] = TypedVerdict(name, problem=VerifyProblem.UNVERIFIABLE, problem_detail=item.unverifiable)
            continue
        if frame is None:
            verdicts[name] = TypedVerdict(name, problem=VerifyProblem.NO_REPORT)
            continue
        status = str(frame.get("status"))
        if status.startswith(SETUP_FAILED):
            verdicts[name] = TypedVerdict(name, problem=VerifyProblem.SETUP_FAILED, problem_detail=status)
            continue
        if status != "ok":  # the answer looped or killed its process
            verdicts[name] = TypedVerdict(name, {s: SeedResult.RAISED for s in item.seeds}, message=status)
            continue
        result = wire.loads(base64.b64decode(frame["data"]))
        reached = tuple(str(t) for t in result["trapped"])
        outputs = result["outputs"]
        if result.get("error"):
            problem = None if reached else VerifyProblem.NOT_DEFINED
            verdicts[name] = TypedVerdict(
                name, {s: SeedResult.RAISED for s in item.seeds}, message=str(result["error"])[:500],
                problem=problem, problem_detail=str(result["error"])[:500], reached=reached,
            )  # fmt: skip
            continue
        typed: dict[int, SeedResult] = {}
        message = ""
        pairs = [(s, None) for s in item.seeds] if ex.kind == "value" else item.cases
        if ex.kind == "value":
            outputs = outputs[:1] * len(pairs)
        if len(outputs) != len(pairs):
            verdicts[name] = TypedVerdict(name, {s: SeedResult.RAISED for s in item.seeds}, "no result for every case")
            continue
        for (seed, case), output in zip(pairs, outputs, strict=True):
            ok, text = _judge_one(ex, case, output)
            # A value that cannot be sent (an always-equal object) is a wrong value, not a crash.
            kind = SeedResult.PASSED if ok else (
                SeedResult.RAISED if output[0] == "err" and "not numbers/arrays" not in str(output[1]) else SeedResult.WRONG
            )
            if typed.get(seed) in (None, SeedResult.PASSED):
                typed[seed] = kind
            message = message or text
        verdicts[name] = TypedVerdict(name, typed, message=message, reached=reached)
    return verdicts
