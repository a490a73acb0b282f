"""The one notebook style every solution notebook follows, as data and small predicates.

``tests/notebooks/test_conventions.py`` checks each rule on every ``solutions/*.ipynb``:

- the introduction holds ``GRADING_PARAGRAPH`` word for word;
- the setup cell imports no checks and makes no random generator (demo cells seed their own);
- every answer stub is a typed function with a docstring that gives the arrays' shapes
  (a value exercise: a comment that gives its shapes);
- a visible test cell is exactly ``visible_test_source`` (an import and the call; a pass prints
  nothing), a hidden one exactly ``hidden_test_source``;
- every other code cell is tagged ``demo``, and no demo cell draws from a generator that
  another cell made (re-running a cell gives the same numbers).
"""

from __future__ import annotations

import ast
import re

__all__ = [
    "GRADING_PARAGRAPH",
    "SHAPE",
    "visible_test_source",
    "hidden_test_source",
    "generators_made",
    "generators_used",
    "global_random_calls",
]

GRADING_PARAGRAPH = (
    "**What grading runs.** Grading runs the setup cell, then your answer cells and any cells you "
    "added, in notebook order; each exercise is then checked in a fresh process on new inputs. "
    "Helper functions in cells you insert, and calls to your own earlier answers, are fine. Cells "
    "after an exercise's test cell are not used for that exercise. Long experiments are fine, but "
    "grading runs them under a time limit. Do not change the checks, NumPy or `course_lib`: "
    "grading reports that as tampering."
)

# A shape in a docstring: "(N, D)", "(D,)", "(F, C, KH, KW)", "(4H,)", "(N, 4H)".
SHAPE = re.compile(r"\((?:\s*[A-Z0-9][A-Za-z0-9]*\s*,)+\s*(?:[A-Z0-9][A-Za-z0-9]*\s*)?\)")


def visible_test_source(module: str, name: str) -> str:
    return f"from course_lib.checks.{module} import check_{name}\n\ncheck_{name}({name})"


def hidden_test_source(module: str, name: str) -> str:
    return (
        "### BEGIN HIDDEN TESTS\n"
        "# other inputs and edge cases, run when your work is graded\n"
        f"from course_lib.checks.{module} import check_{name}\n\n"
        f"check_{name}({name}, seed=1)\n"
        f"check_{name}({name}, seed=2)\n"
        "### END HIDDEN TESTS"
    )


def _python(source: str) -> ast.Module:
    # IPython magics (%matplotlib inline) are no Python; they make nothing and use nothing.
    return ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()))


def _is_generator_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("default_rng", "Generator", "RandomState"))


def generators_made(source: str) -> set[str]:
    """Names bound at the cell's top level to a NumPy random generator."""
    made: set[str] = set()
    for node in _python(source).body:
        if isinstance(node, ast.Assign) and _is_generator_call(node.value):
            made |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return made


def generators_used(source: str, candidates: set[str]) -> set[str]:
    """Which of ``candidates`` the cell reads as a free name (not bound in the cell itself)."""
    tree = _python(source)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda)) for a in n.args.args + n.args.kwonlyargs}
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return (read & candidates) - bound


def global_random_calls(source: str) -> list[str]:
    """Calls of NumPy's global random state (np.random.seed, np.random.normal, ...): shared across cells."""
    calls = []
    for node in ast.walk(_python(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "random"
                and node.func.attr not in ("default_rng", "Generator", "PCG64")):
            calls.append(f"np.random.{node.func.attr}")
    return calls
