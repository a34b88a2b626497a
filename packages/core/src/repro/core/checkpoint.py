"""Checkpoints: atomic ``torch.save`` and ``weights_only=True`` loading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from repro.core import ReproError
from repro.core.atomic import atomic_path


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Save ``state`` (tensors, numbers, strings, lists and dicts only) atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ReproError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for corrupt files
        raise ReproError(f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc})") from exc
