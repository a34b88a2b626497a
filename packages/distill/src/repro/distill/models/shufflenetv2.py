"""ShuffleNetV2 (1x) for CIFAR, mdistiller's ``ShuffleV2``.

1x1 stem to 24 channels (no stride, no max-pool), three stages of 116/232/464 channels with
3/7/3 basic units after a stride-2 down-sampling unit, a 1x1 conv to 1024 channels, global
average pooling and a linear classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import ModelOutput, global_pool
from .shufflenetv1 import channel_shuffle


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]


class BasicUnit(nn.Module):
    """Split channels in half; transform one half (1x1, 3x3 dw, 1x1); concat; shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels // 2
        self.branch = nn.Sequential(
            *_conv_bn(c, c, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(c, c, 3, groups=c),
            *_conv_bn(c, c, 1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1] // 2
        out = torch.cat([x[:, :c], self.branch(x[:, c:])], 1)
        return channel_shuffle(out, 2)


class DownUnit(nn.Module):
    """Two stride-2 branches on the full input, each giving ``cout // 2`` channels."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // 2
        self.left = nn.Sequential(
            *_conv_bn(cin, cin, 3, 2, groups=cin),
            *_conv_bn(cin, mid, 1),
            nn.ReLU(inplace=True),
        )
        self.right = nn.Sequential(
            *_conv_bn(cin, mid, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(mid, mid, 3, 2, groups=mid),
            *_conv_bn(mid, mid, 1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(torch.cat([self.left(x), self.right(x)], 1), 2)


class ShuffleNetV2(nn.Module):
    """1x1 stem, three (down unit + basic units) stages, 1x1 conv head, linear classifier."""

    def __init__(
        self,
        widths: tuple[int, int, int, int] = (116, 232, 464, 1024),
        blocks: tuple[int, int, int] = (3, 7, 3),
        num_classes: int = 100,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        stages, cin = [], 24
        for cout, n in zip(widths[:3], blocks, strict=True):
            stages.append(nn.Sequential(DownUnit(cin, cout), *(BasicUnit(cout) for _ in range(n))))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.head = nn.Sequential(*_conv_bn(cin, widths[3], 1), nn.ReLU(inplace=True))
        self.linear = nn.Linear(widths[3], num_classes)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        x = F.relu(self.bn1(self.conv1(x)))
        feats = [x]
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        pooled = global_pool(self.head(x))
        return self.linear(pooled), {"pooled": pooled, "feats": feats}


def shufflev2(num_classes: int = 100, in_channels: int = 3) -> ShuffleNetV2:
    """mdistiller's ``ShuffleV2`` (net size 1)."""
    return ShuffleNetV2(num_classes=num_classes, in_channels=in_channels)
