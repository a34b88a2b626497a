"""Seeding and determinism switches for Python, NumPy and torch."""

from __future__ import annotations

import os
import random
import sys

import numpy as np


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed ``random``, NumPy and torch; with ``deterministic`` also pin torch's kernels.

    Determinism covers CPU runs bit for bit. On CUDA it selects deterministic cuDNN kernels
    and cuBLAS workspaces (``CUBLAS_WORKSPACE_CONFIG``); ops without a deterministic
    implementation warn instead of failing.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds third-party code that uses the global RNG
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        _deterministic_algorithms()


def _deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` without its import of
    ``torch._inductor.config`` (which pulls in ``torch._dynamo``: 1.3 s of CPU in a job that
    seeds and builds no optimizer; ``torch.optim`` imports it anyway). Only
    ``torch.compile`` reads that config and nothing here compiles; if inductor is already
    loaded, the public call sets it too."""
    import torch

    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch._C._set_deterministic_algorithms(True, warn_only=True)


def generator(seed: int, device: str = "cpu"):
    """A torch ``Generator`` seeded with ``seed`` on ``device``."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
