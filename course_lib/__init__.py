"""course_lib: the library every exercise of the course imports.

- ``course_lib.np_ref``: the NumPy reference implementation (explicit forward/backward).
- ``course_lib.torch_ref``: the same API written in torch ops, on any device.
- ``metrics``, ``gradcheck``, ``testing``, ``device``, ``plotting``, ``data``: shared helpers.

Importing ``course_lib`` (or ``course_lib.np_ref``) never imports torch; sub-modules are
loaded on first attribute access so that ``import course_lib`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "checks",
    "data",
    "device",
    "gradcheck",
    "metrics",
    "np_ref",
    "plotting",
    "testing",
    "torch_ref",
    "widgets",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy sub-module access (PEP 562): `course_lib.data` works without an explicit
    # import, yet torch and matplotlib load only when something asks for them.
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
