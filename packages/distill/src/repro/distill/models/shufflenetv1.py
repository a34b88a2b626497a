"""ShuffleNetV1 for CIFAR, mdistiller's ``ShuffleV1`` (groups 3, stages 240/480/960 x 4/8/4).

The stem is a 1x1 conv to 24 channels (no stride, no max-pool). The first block of each stage
has stride 2 and concatenates its branch with a 3x3 average-pooled shortcut, so its branch
produces ``out - in`` channels; the others add. The bottleneck width is a quarter of the
branch output, and the first 1x1 group conv is ungrouped when its input is the 24-channel stem.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import ModelOutput, global_pool


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave channels across ``groups`` (reshape-based, safe for channels_last)."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """1x1 group conv - shuffle - 3x3 depthwise - 1x1 group conv, add or concat shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int) -> None:
        super().__init__()
        mid = cout // 4
        self.stride = stride
        self.g1 = 1 if cin == 24 else groups
        self.conv1 = nn.Conv2d(cin, mid, 1, groups=self.g1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.g1)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            return F.relu(torch.cat([out, F.avg_pool2d(x, 3, 2, 1)], 1))
        return F.relu(out + x)


class ShuffleNetV1(nn.Module):
    """1x1 stem, three shuffle stages, global average pool, linear classifier."""

    def __init__(
        self,
        widths: tuple[int, int, int] = (240, 480, 960),
        blocks: tuple[int, int, int] = (4, 8, 4),
        groups: int = 3,
        num_classes: int = 100,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        stages, cin = [], 24
        for cout, n in zip(widths, blocks, strict=True):
            units = [ShuffleUnit(cin, cout - cin, 2, groups)]
            units += [ShuffleUnit(cout, cout, 1, groups) for _ in range(n - 1)]
            stages.append(nn.Sequential(*units))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        x = F.relu(self.bn1(self.conv1(x)))
        feats = [x]
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        pooled = global_pool(x)
        return self.linear(pooled), {"pooled": pooled, "feats": feats}


def shufflev1(num_classes: int = 100, in_channels: int = 3) -> ShuffleNetV1:
    """mdistiller's ``ShuffleV1``."""
    return ShuffleNetV1(num_classes=num_classes, in_channels=in_channels)
