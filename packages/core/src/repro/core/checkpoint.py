"""Checkpoints: atomic ``torch.save`` and ``weights_only=True`` loading."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from repro.core import ReproError
from repro.core.atomic import atomic_path


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Save ``state`` (tensors, numbers, strings, lists and dicts only) atomically. A failed
    write (a full disk: torch reports it as an iostream error) is one line naming the file
    and the space left; the previous file, if any, is kept."""
    import torch

    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except (OSError, RuntimeError) as exc:
        free = shutil.disk_usage(Path(path).parent).free / 2**30
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReproError(
            f"{path}: could not write the checkpoint ({free:.1f} GiB free there): {reason}"
        ) from exc


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
