"""Test support: a tiny network and the burst_sr section that trains it on a Zurich folder
(imported by the model and distributed-training tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: NetConfig widths small enough to train in seconds on CPU.
TINY = dict(
    enc_dim=4, enc_blocks=1, feat_dim=8, offset_dim=4, weight_dim=4, weight_blocks=1,
    dec_dim=4, dec_blocks=1, up_dim=4, up_blocks=1, flow_dim=4, flow_range=2,
)  # fmt: skip


def tiny_section(
    root: Path, iterations: int, batch_size: int, models: dict[str, Any]
) -> dict[str, Any]:
    """A burst_sr section: 16 px crops of the Zurich folder ``root``, the TINY network,
    ``iterations`` steps of ``batch_size`` bursts of 3 frames, a checkpoint every 2."""
    return {
        "device": "cpu",
        "burst": {"crop": 16, "border_crop": 4},
        "data": {"source": "zurich", "zurich_root": str(root)},
        "net": TINY,
        "train": {
            "iterations": iterations,
            "batch_size": batch_size,
            "burst_size": 3,
            "lr": 1e-3,
            "lr_step": 100,
            "lr_gamma": 0.5,
            "checkpoint_every": 2,
            "log_every": 1,
            "boundary_ignore": 2,
        },
        "models": models,
    }
