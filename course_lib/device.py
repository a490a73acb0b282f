"""Pick the torch device the course's Torch cells run on.

``get_device()`` prefers CUDA, then Apple's MPS, then the CPU. Set the environment
variable ``COURSE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) to override, e.g. to
force the CPU on a GPU machine so that results match a classmate's.
"""

from __future__ import annotations

import os

__all__ = ["get_device"]


def get_device():  # -> torch.device (torch is imported lazily)
    import torch

    requested = os.environ.get("COURSE_DEVICE", "").strip()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise ValueError(
                f"get_device: COURSE_DEVICE={requested!r} is not a torch device ({exc})"
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("get_device: COURSE_DEVICE asks for cuda, but torch sees no CUDA device")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("get_device: COURSE_DEVICE asks for mps, but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
