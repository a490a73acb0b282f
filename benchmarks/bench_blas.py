"""Which BLAS NumPy runs on here: its kernel family and its thread count.

Read from the loaded OpenBLAS (or MKL) itself through ctypes, so the benchmarks need no
extra dependency; threadpoolctl is used for the thread count when it is installed.
"""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

import numpy as np

__all__ = ["blas_kernel", "numpy_blas_threads"]

# Entry points that report the thread count of the BLAS NumPy loaded (OpenBLAS builds
# prefix or suffix the name; MKL has its own).
_THREAD_QUERIES = (
    "scipy_openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
    "MKL_Get_Max_Threads",
)
_KERNEL_QUERIES = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename")


def _blas_library() -> ctypes.CDLL | None:
    """The BLAS shared library NumPy loaded (Linux: found in /proc/self/maps), or None."""
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure it is loaded
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    paths = sorted(set(re.findall(r"\S*(?:openblas|mkl_rt)\S*\.so\S*", maps.read_text())))
    return ctypes.CDLL(paths[0]) if paths else None


def blas_kernel() -> str:
    """OpenBLAS's kernel family (e.g. Haswell = AVX2, SkylakeX = AVX-512), or "unknown"."""
    lib = _blas_library()
    for name in _KERNEL_QUERIES:
        query = getattr(lib, name, None) if lib is not None else None
        if query is not None:
            query.restype = ctypes.c_char_p
            return query().decode()
    return "unknown"


def numpy_blas_threads() -> int:
    """The number of threads NumPy's BLAS will use for a large matmul."""
    try:
        from threadpoolctl import threadpool_info  # optional; not a course dependency

        counts = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    lib = _blas_library()
    for name in _THREAD_QUERIES:
        query = getattr(lib, name, None) if lib is not None else None
        if query is not None:
            query.restype = ctypes.c_int
            return int(query())
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
