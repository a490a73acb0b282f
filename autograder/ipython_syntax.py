"""IPython cell syntax, as the kernel reads it: shared by the replay's planning (trusted,
``autograder.replay``) and its running (inside the jail, ``autograder.jail.replay_shell``).

Pure functions of source text: ``transform`` (magics, ``!cmd``, ``x?`` to Python, by
IPython's own ``TransformerManager``), ``strip_magic_options`` and ``BODY_MAGICS``,
the magics whose body or line is the student's own Python.
"""

from __future__ import annotations

import re

__all__ = ["BODY_MAGICS", "strip_magic_options", "transform"]

# Magics whose body (cell form) or line (line form) is Python the kernel runs once.
BODY_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
# Options that take a value, per magic (``%timeit -n 3 -r 1 f(x)``): stripped before the code.
_VALUED_OPTIONS = {"timeit": "nrp", "prun": "lsTDm", "run": "Npm", "capture": ""}
_OPTION = re.compile(r"\s*-(\w)(\S*)")


def transform(source: str) -> str:
    """The Python the kernel would run for ``source`` (magics, ``!cmd``, ``x?``)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def strip_magic_options(magic: str, line: str) -> str:
    """``line`` of ``%magic line`` without its leading ``-x [value]`` options (only for
    magics that have options: in ``%time -x`` the ``-x`` is code)."""
    if magic not in _VALUED_OPTIONS:
        return line
    valued = _VALUED_OPTIONS[magic]
    while (match := _OPTION.match(line)) is not None and not match.group(0).strip().startswith("--"):
        line = line[match.end() :]
        if match.group(1) in valued and not match.group(2):
            line = re.sub(r"^\s*\S+", "", line, count=1)  # the option's value, as its own word
    return line.strip()
