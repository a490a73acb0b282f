"""The course autograder: nbgrader, graded in parallel, sandboxed and re-verified.

Layers, as in nbgrader: single-purpose steps (``release``, ``intake``, ``canonical``,
``sandbox``, ``execute``, ``verify``, ``gradebook``) -> the grading ``pipeline`` ->
the small typed API (``autograder.api``, re-exported here) -> the thin command line
(``python -m autograder``, ``course-grade``). Every API function takes keyword
arguments and returns a dataclass.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# jsonschema (through nbformat) imports the optional rfc3987_syntax, which compiles a
# grammar for 1.4 s at import; nbformat's schema never uses it. Every sandboxed helper
# imports this package first, so skipping it here saves that time per notebook.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

__all__ = [
    "ReleaseResult",
    "release_course",
    "GradeOptions",
    "GradeRun",
    "SubmissionResult",
    "grade_class",
    "write_feedback",
    "FeedbackResult",
    "export_grades",
    "ExportResult",
    "course_status",
    "StatusReport",
    "Override",
    "override_grade",
    "run_demo",
]


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): the sandboxed helpers import autograder.* and must start fast.
    if name in ("ReleaseResult", "release_course"):
        return getattr(importlib.import_module("autograder.release"), name)
    if name == "run_demo":
        return importlib.import_module("autograder.demo").run_demo
    if name in __all__:
        return getattr(importlib.import_module("autograder.api"), name)
    raise AttributeError(f"module 'autograder' has no attribute {name!r}")
