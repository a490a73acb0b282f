"""Reusable work arrays for the speed-tuned layers (conv2d and the LSTM sequence functions).

Why: a fresh temporary of a few MB is not free. The C library hands large freed blocks
back to the kernel, and the next call's block is then mapped again on first touch: one
page fault and one zeroed 4 KiB page at a time. For conv2d_forward + conv2d_backward on
the benchmark layer that was ~2,000 page faults and about 40% of the run time (measured
with ``perf stat -e page-faults``). torch avoids the same cost with a caching allocator;
this is the small NumPy version of that idea.

Rule: only arrays that never leave a function may come from here. Results and anything
stored in a cache are always fresh arrays, so two calls can never share memory that a
caller can see. Buffers are per thread, so threads calling the library at the same time
do not share them either.

    buf = scratch("conv.rows", (F, KH, N, H, W), np.float32)   # contents undefined
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

__all__ = ["scratch", "MAX_BYTES"]

MAX_BYTES = 256 << 20  # per thread; least recently used buffers go first beyond this

_local = threading.local()


def _pool() -> OrderedDict:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = OrderedDict()
    return pool


def scratch(tag: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array, the same one for every call with this tag, shape and dtype.

    ``tag`` names the use site ("conv.rows"), so that two temporaries that are alive at the
    same time never come back as the same memory.
    """
    key = (tag, tuple(shape), np.dtype(dtype))
    pool = _pool()
    buf = pool.get(key)
    if buf is None:
        buf = np.empty(key[1], key[2])
        pool[key] = buf
        total = sum(a.nbytes for a in pool.values())
        while total > MAX_BYTES and len(pool) > 1:
            _, evicted = pool.popitem(last=False)
            total -= evicted.nbytes
    else:
        pool.move_to_end(key)
    return buf
