"""The one device convention of every trainer: ``auto``, ``cpu``, ``cuda`` or ``cuda:<i>``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from repro.core import ReproError

if TYPE_CHECKING:
    import torch

_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(name: str, key: str = "device") -> torch.device:
    """The torch device for a config value; ``auto`` is CUDA when available, else the CPU.

    A malformed value, or CUDA asked for on a machine without it (or a GPU index it lacks),
    is one line naming the config ``key``.
    """
    import torch

    if not isinstance(name, str) or not _PATTERN.match(name):
        raise ReproError(f"{key}: '{name}' is not a device (auto, cpu, cuda or cuda:<index>)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ReproError(f"{key}: '{name}' requested but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ReproError(
                f"{key}: '{name}' requested but only {torch.cuda.device_count()} GPU(s) are visible"
            )
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (CUDA), so wall-clock timings are honest."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
