"""Is there a widget front end to draw on, or should a widget show a static figure instead?

A live widget needs a front end (JupyterLab, Notebook 7) that renders
``application/vnd.jupyter.widget-view+json`` and talks back over comms. nbconvert,
nbclient, the HTML export and the autograder execute notebooks with no such front end:
there a widget would show up as a bare ``VBox(...)`` line, so we show a PNG instead.

``resolve_static(static)`` decides, in this order:

1. ``static=True`` / ``static=False`` passed by the caller wins;
2. the environment variable ``COURSE_WIDGETS`` = ``static`` or ``interactive``;
3. no IPython kernel (a script, a terminal IPython, pytest) -> static;
4. a front end has already talked widgets to this kernel (ipywidgets' control comm
   was opened by the JupyterLab widget manager) -> interactive;
5. the cell being executed was sent by JupyterLab / Notebook 7: their execute
   requests carry a ``cellId`` in the message metadata, nbclient's carry none;
6. the kernel was started by a Jupyter server for a notebook session (it sets
   ``JPY_SESSION_NAME`` in the kernel's environment; nbclient does not);
7. otherwise static.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["ENV_VAR", "has_widget_frontend", "resolve_static"]

ENV_VAR = "COURSE_WIDGETS"


def _kernel() -> Any:
    ipython_mod = sys.modules.get("IPython")
    if ipython_mod is None:  # IPython never imported: certainly not inside a kernel
        return None
    shell = ipython_mod.get_ipython()
    return getattr(shell, "kernel", None)


def _parent_metadata(kernel: Any) -> dict[str, Any]:
    try:
        try:
            parent = kernel.get_parent("shell")
        except TypeError:  # older ipykernel: get_parent() takes no channel
            parent = kernel.get_parent()
    except Exception:
        return {}
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def has_widget_frontend() -> bool:
    """Best guess whether widget output will be rendered live (see the module docstring)."""
    choice = os.environ.get(ENV_VAR, "").strip().lower()
    if choice in ("static", "0", "off", "false"):
        return False
    if choice in ("interactive", "1", "on", "true"):
        return True
    kernel = _kernel()
    if kernel is None:
        return False
    widget_mod = sys.modules.get("ipywidgets")
    if widget_mod is not None and getattr(widget_mod.Widget, "_control_comm", None) is not None:
        return True
    if "cellId" in _parent_metadata(kernel):
        return True
    return bool(os.environ.get("JPY_SESSION_NAME"))


def resolve_static(static: bool | None) -> bool:
    """``static`` if the caller chose, else True exactly when no widget front end is detected."""
    if static is None:
        return not has_widget_frontend()
    if not isinstance(static, bool):
        raise ValueError(f"widgets: argument 'static' must be True, False or None (auto), got {static!r}")
    return static
