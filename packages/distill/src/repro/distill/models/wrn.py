"""Wide ResNets for CIFAR (mdistiller's ``cifar/wrn.py``, Zagoruyko & Komodakis 2016).

Depth 6n+4, widths 16 / 16k / 32k / 64k, pre-activation blocks (BN-ReLU-conv). When a block
changes the channel count its shortcut is a 1x1 conv applied to the *activated* input, as in
the original code; the network ends with BN-ReLU, global average pooling and a linear layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import ModelOutput, global_pool, init_msra


class WideBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        # Only the channel count decides (stride 2 always comes with a width change here).
        self.proj = None if cin == cout else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(act))))
        return out + (x if self.proj is None else self.proj(act))


def _stage(cin: int, cout: int, n: int, stride: int) -> nn.Sequential:
    """``n`` wide blocks; the first one changes width and stride."""
    return nn.Sequential(
        *(WideBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(n))
    )


class WideResNet(nn.Module):
    """WRN-depth-k: 3x3 stem, three stages of ``(depth - 4) / 6`` wide blocks."""

    def __init__(
        self, depth: int, widen: int, num_classes: int = 100, in_channels: int = 3
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.stages = nn.ModuleList(
            _stage(widths[s], widths[s + 1], n, stride) for s, stride in enumerate((1, 2, 2))
        )
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        init_msra(self)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        x = self.conv1(x)
        feats = [x]
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        pooled = global_pool(F.relu(self.bn(x)))
        return self.fc(pooled), {"pooled": pooled, "feats": feats}


def wrn_16_1(num_classes: int = 100, in_channels: int = 3) -> WideResNet:
    return WideResNet(16, 1, num_classes, in_channels)


def wrn_16_2(num_classes: int = 100, in_channels: int = 3) -> WideResNet:
    return WideResNet(16, 2, num_classes, in_channels)


def wrn_40_1(num_classes: int = 100, in_channels: int = 3) -> WideResNet:
    return WideResNet(40, 1, num_classes, in_channels)


def wrn_40_2(num_classes: int = 100, in_channels: int = 3) -> WideResNet:
    return WideResNet(40, 2, num_classes, in_channels)
