"""Test support: one training run of a BatchNorm-free model, alone or as a torchrun worker.

    python ddp_worker.py DATA OUT PARAMS_JSON [TEACHER_MODEL_PT]

Registers ``tiny`` (conv-ReLU-linear, no BatchNorm) in the model zoo, then runs
:func:`repro.distill.run.train_run`, the ``repro-distill train`` code path. Without
BatchNorm a step's gradient does not depend on how the global batch is split over processes
(on CPU, torch's SyncBatchNorm has no kernel), so runs on 1 and 2 processes can be compared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from repro.core.params import parse
from repro.data.arrays import write_arrays
from repro.distill import models
from repro.distill.params import RunParams


def run_params(data: dict) -> RunParams:
    """A run's params as ``repro-distill train`` reads its ``--params``."""
    return parse(RunParams, data)


class TinyNet(nn.Module):
    """A BatchNorm-free CNN with the zoo's output contract: ``(logits, feats)``."""

    def __init__(self, num_classes: int, in_channels: int = 3, size: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.fc = nn.Linear(4 * size * size, num_classes)

    def forward(self, x: torch.Tensor):
        a = torch.relu(self.conv(x))
        flat = a.flatten(1)
        return self.fc(flat), {"pooled": flat, "feats": [a]}


def tiny(num_classes: int, in_channels: int = 3) -> nn.Module:
    return TinyNet(num_classes, in_channels)


def make_data(root: Path, n_train: int = 245, n_test: int = 61, seed: int = 0) -> Path:
    """Toy data, learnable but not at once: class k has a brighter k-th row in noise (8x8, 1
    channel, 4 classes). Sizes that leave a last partial batch and an odd test split."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = rng.integers(0, 4, n)
        x = rng.integers(0, 200, (n, 8, 8, 1)).astype(np.uint8)
        x[np.arange(n), 2 * y, :, 0] = 170
        return x, y

    write_arrays(
        root, {"train": split(n_train), "test": split(n_test)}, ["a", "b", "c", "d"], "toy", {}
    )
    return root


def main(argv: list[str]) -> int:
    from repro.distill.run import train_run

    models.MODELS["tiny"] = tiny
    data, out, params = argv[0], argv[1], json.loads(argv[2])
    teacher = argv[3] if len(argv) > 3 else None
    train_run(run_params(params), data, out, teacher)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
