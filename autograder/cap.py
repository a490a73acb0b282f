"""Output caps: how much of what a kernel sends the grader keeps, in bytes.

A kernel is student code: it can send any number of messages of any kind
(``stream``, ``display_data``, ``update_display_data``, ``execute_result``,
``error``, ``clear_output`` storms, ``comm_*`` widget traffic). ``OutputBudget``
charges every message to its cell and to the notebook and says, as a typed
decision, what the client does with it. Pure and in memory, so it is tested
without a kernel.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Admit", "OutputBudget", "message_bytes"]

# Kept however much came before: they carry no payload the student controls in
# size and nbclient needs them to know a cell finished.
_CONTROL = frozenset({"status", "execute_input"})


class Admit(enum.Enum):
    KEEP = "keep"  # within both caps: handled as nbclient would
    DROP = "drop"  # over a cap (or a comm message): not stored anywhere
    SHORT_ERROR = "short error"  # over a cap, but a cell's first error is kept, shortened,
    # because nbgrader scores a test cell by whether it has an error output


def message_bytes(msg: dict[str, Any]) -> int:
    """Size of a message's content and binary buffers, as the grader would store them."""
    size = len(json.dumps(msg.get("content", {}), default=str))
    return size + sum(len(b) for b in msg.get("buffers") or ())


@dataclass
class OutputBudget:
    """Bytes of output allowed per cell and per notebook; charges never expire (a
    ``clear_output`` does not refund), so a clear-and-print loop is cut as well."""

    per_cell: int
    per_notebook: int
    _cells: dict[int, int] = field(default_factory=dict)
    _total: int = 0
    _cut: set[int] = field(default_factory=set)
    _errors: set[int] = field(default_factory=set)

    def charge(self, cell_index: int, msg_type: str, size: int) -> Admit:
        """Account for one message of ``size`` bytes in ``cell_index``; what to do with it."""
        if msg_type in _CONTROL:
            return Admit.KEEP
        if msg_type.startswith("comm"):
            return Admit.DROP  # widget state is never stored: it grew the helper to GBs
        # The cell is charged for everything it sent; the notebook only for what was
        # kept, so one flooding cell does not silence every cell after it.
        self._cells[cell_index] = self._cells.get(cell_index, 0) + size
        if self._cells[cell_index] <= self.per_cell and self._total + size <= self.per_notebook:
            self._total += size
            return Admit.KEEP
        if msg_type == "error" and cell_index not in self._errors:
            self._errors.add(cell_index)
            return Admit.SHORT_ERROR
        return Admit.DROP

    def first_cut(self, cell_index: int) -> bool:
        """True exactly once per cell: the first time something of it was not kept."""
        if cell_index in self._cut:
            return False
        self._cut.add(cell_index)
        return True

    def notice(self, cell_index: int) -> str:
        """What the stored notebook says where output was cut."""
        if self._cells.get(cell_index, 0) > self.per_cell:
            return f"\n[autograder: output cut at {self.per_cell} bytes]\n"
        return f"\n[autograder: output cut, the notebook's output reached {self.per_notebook} bytes]\n"
