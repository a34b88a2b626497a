"""Shared test support of repro.burstsr."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture
def zurich(tmp_path: Path) -> Path:
    """A tiny Zurich RAW-to-RGB folder: two random 64 px Canon JPEGs per split."""
    root = tmp_path / "z"
    for split in ("train", "test"):
        (root / split / "canon").mkdir(parents=True)
        for i in range(2):
            img = np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)
            cv2.imwrite(str(root / split / "canon" / f"{i}.jpg"), img)
    return root
