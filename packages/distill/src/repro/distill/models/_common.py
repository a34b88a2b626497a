"""Helpers shared by the model families."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: What every model returns: ``(logits, feats)``; ``feats`` holds at least ``"pooled"``
#: (the penultimate feature vector, shape ``(N, D)``) and ``"feats"`` (stage outputs).
ModelOutput = tuple[torch.Tensor, dict[str, Any]]


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling to ``(N, C)``; works for any spatial size and memory format."""
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def init_kaiming(model: nn.Module) -> None:
    """Kaiming-normal (fan_out) convs, BN weight 1 / bias 0 (mdistiller's ResNet init)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_msra(model: nn.Module, linear_std: float | None = None) -> None:
    """Conv weights ~ N(0, 2 / (k*k*out)), zero biases, BN 1/0; Linear bias zero.

    With ``linear_std`` the Linear weights are also redrawn from N(0, linear_std).
    This is the init of mdistiller's WRN, VGG and MobileNetV2.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)
