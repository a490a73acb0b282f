"""Shared test support for course_lib: backends to parametrize over and named tolerances.

Every test of a layer is written once and run on each backend: the NumPy reference,
the Torch path on the CPU, and the Torch path on CUDA when a GPU is present.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest

# Tolerances, named once. float64 analytic vs numerical gradients (central differences,
# eps=1e-6) agree to ~1e-8; float64 vs torch float64 agree to round-off.
GRADCHECK_RTOL = 1e-6
GRADCHECK_ATOL = 1e-8
F64_RTOL = 1e-9
F64_ATOL = 1e-11
F32_RTOL = 1e-4
F32_ATOL = 1e-5
# CPU vs GPU kernels sum in a different order (TF32 is off in torch by default for matmul).
DEVICE_RTOL = 1e-5
DEVICE_ATOL = 1e-6


@dataclass(frozen=True)
class Backend:
    """One implementation of the course API: ``mod`` is course_lib.np_ref or course_lib.torch_ref."""

    name: str
    mod: ModuleType
    device: str | None  # torch device string, None for NumPy

    def asarray(self, x: Any) -> Any:
        """NumPy array (dtype kept) -> this backend's array type."""
        if self.device is None:
            return np.asarray(x)
        import torch

        return torch.as_tensor(np.asarray(x), device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        if self.device is None:
            return np.asarray(x)
        return x.detach().cpu().numpy()

    def rng(self, seed: int) -> Any:
        if self.device is None:
            return np.random.default_rng(seed)
        import torch

        return torch.Generator(device=self.device).manual_seed(seed)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def backend_params() -> list[Any]:
    """pytest params for every backend; CUDA skips with a reason when there is no GPU."""
    return [
        pytest.param("numpy", id="numpy"),
        pytest.param("torch-cpu", id="torch-cpu"),
        pytest.param(
            "torch-cuda",
            id="torch-cuda",
            marks=[pytest.mark.cuda, pytest.mark.skipif(not _cuda_available(), reason="no CUDA device")],
        ),
    ]


def make_backend(name: str) -> Backend:
    if name == "numpy":
        return Backend(name, importlib.import_module("course_lib.np_ref"), None)
    device = {"torch-cpu": "cpu", "torch-cuda": "cuda"}[name]
    return Backend(name, importlib.import_module("course_lib.torch_ref"), device)
