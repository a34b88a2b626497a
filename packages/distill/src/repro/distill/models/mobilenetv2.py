"""MobileNetV2 for CIFAR, mdistiller's ``mobile_half`` (expansion 6, width multiplier 0.5).

mdistiller keeps the ImageNet layout on 32x32 inputs: a stride-2 3x3 stem and stride-2
stages 3, 4 and 6, so the last map is 2x2. Every inverted residual has its 1x1 expansion
conv, even when the expansion ratio is 1 (first stage). The final 1x1 conv has 1280
channels (not scaled down for width < 1).
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import ModelOutput, global_pool, init_msra

#: (expansion t, channels c, repeats n, first stride s); ``None`` for t means "use T".
SETTING: list[tuple[int | None, int, int, int]] = [
    (1, 16, 1, 1),
    (None, 24, 2, 1),
    (None, 32, 3, 2),
    (None, 64, 4, 2),
    (None, 96, 3, 1),
    (None, 160, 3, 2),
    (None, 320, 1, 1),
]
#: After which stages (indices into SETTING) a feature map is reported.
FEAT_STAGES = (1, 2, 4, 6)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]


class InvertedResidual(nn.Module):
    """1x1 expand - 3x3 depthwise - 1x1 linear projection; residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            *_conv_bn(cin, hidden, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(hidden, hidden, 3, stride, groups=hidden),
            nn.ReLU(inplace=True),
            *_conv_bn(hidden, cout, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_res else out


class MobileNetV2(nn.Module):
    """MobileNetV2 with expansion ``T`` and width multiplier ``width``."""

    def __init__(
        self, T: int = 6, width: float = 0.5, num_classes: int = 100, in_channels: int = 3
    ) -> None:
        super().__init__()
        cin = int(32 * width)
        self.stem = nn.Sequential(*_conv_bn(in_channels, cin, 3, 2), nn.ReLU(inplace=True))
        blocks = []
        for t, c, n, s in SETTING:
            cout = int(c * width)
            layers = []
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t or T))
                cin = cout
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        last = int(1280 * width) if width > 1.0 else 1280
        self.head = nn.Sequential(*_conv_bn(cin, last, 1), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(last, num_classes)
        init_msra(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        x = self.stem(x)
        feats = [x]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in FEAT_STAGES:
                feats.append(x)
        pooled = global_pool(self.head(x))
        return self.classifier(pooled), {"pooled": pooled, "feats": feats}


def mobile_half(num_classes: int = 100, in_channels: int = 3) -> MobileNetV2:
    """mdistiller's ``mobile_half``: ``MobileNetV2(T=6, width=0.5)``."""
    return MobileNetV2(6, 0.5, num_classes, in_channels)
