"""The course autograder: nbgrader, graded in parallel, sandboxed and re-verified.

Layers, as in nbgrader: single-purpose steps (``release``, ``intake``, ``canonical``,
``sandbox``, ``execute``, ``verify``, ``gradebook``) -> the grading ``pipeline`` ->
this small typed API -> the thin command line (``python -m autograder``,
``course-grade``). Every API function takes keyword arguments and returns a dataclass.
"""

from autograder.release import ReleaseResult, release_course

__all__ = ["ReleaseResult", "release_course"]
