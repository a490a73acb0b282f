"""What the command line and the demo print: the results table and grading with a progress bar.

Names, file names and reasons come from submissions: every string is passed through
``terminal_text`` so that it is shown, never obeyed, by the terminal. The heavy modules
(the grading pipeline, tqdm) are imported when first needed, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from autograder.safe_output import terminal_text

if TYPE_CHECKING:
    from autograder.grading_run import GradeOptions, GradeRun
    from autograder.limits import Protections
    from autograder.pipeline import SubmissionResult

__all__ = ["Grader", "format_table", "grade_with_progress"]


class Grader(Protocol):
    """``api.grade_class`` or ``api.grade_course`` with its folders already given."""

    def __call__(
        self,
        *,
        options: GradeOptions,
        progress: Callable[[SubmissionResult], None] | None = None,
        on_start: Callable[[int, Protections], None] | None = None,
    ) -> GradeRun: ...


def format_table(results: Sequence[SubmissionResult]) -> str:
    """One row per submission; a student's missing notebooks share one row. "flagged"
    rows list their evidence with where it was found; others say what to fix."""
    from autograder.export import describe_submission
    from autograder.results import Status

    rows: list[tuple[str, ...]] = [("student", "notebook", "status", "score", "why")]
    missing: dict[str, list[str]] = {}
    for r in results:
        if r.status is Status.MISSING:
            missing.setdefault(r.student, []).append(r.key)
    for r in results:
        if r.status is Status.MISSING:
            names = missing.pop(r.student, None)
            if names:
                label = names[0] if len(names) == 1 else f"({len(names)} notebooks)"
                rows.append(
                    (r.student, label, "missing", "—", ", ".join(names) if len(names) > 1 else r.reason)
                )
            continue
        score = "—" if r.score is None else f"{r.score:g}/{r.max_score:g}"
        rows.append((r.student, r.key, str(r.status), score, describe_submission(r, instructor=True)[:160]))
    rows = [tuple(terminal_text(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4] for row in rows
    ]
    lines.insert(1, "-" * min(120, len(lines[0]) + 20))
    return "\n".join(lines)


def grade_with_progress(grade: Grader, options: GradeOptions) -> GradeRun:
    """Run ``grade`` with a progress bar on stderr, then print the table, the counts, the
    protections and the cluster's hosts; returns the run."""
    from tqdm import tqdm

    bar: list[tqdm] = []

    def on_start(n: int, protections: Protections) -> None:
        print(protections.summary, flush=True)
        bar.append(tqdm(total=n, unit="notebook", desc="grading", file=sys.stderr))

    def progress(result: SubmissionResult) -> None:
        bar[0].set_postfix_str(
            terminal_text(f"{result.student}/{result.assignment}: {result.status}"), refresh=False
        )
        bar[0].update(1)

    run = grade(options=options, progress=progress, on_start=on_start)
    if bar:
        bar[0].close()
    print(format_table(run.results))
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(run.counts().items()))
    print(
        f"\n{len(run.results)} submissions ({counts}); {run.resumed} reused from an earlier run; {run.seconds:.1f} s"
    )
    print(run.protections.summary)
    for host in run.hosts:
        print(terminal_text(host.line()))
    return run
