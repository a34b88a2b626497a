"""MobileNetV1 for ImageNet (mdistiller's ``imagenet/mobilenetv1.py``, Howard et al. 2017).

Stride-2 3x3 stem to 32 channels, then 13 depthwise-separable blocks (3x3 depthwise-BN-ReLU,
1x1 pointwise-BN-ReLU) up to 1024 channels, global average pooling, 1024 -> classes linear.
Reported stage features are the outputs of blocks 3, 5, 11 and 13 (128/256/512/1024 ch).
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import ModelOutput, global_pool

#: (output channels, stride) of each depthwise-separable block.
BLOCKS: list[tuple[int, int]] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *[(512, 1)] * 5,
    (1024, 2),
    (1024, 1),
]
FEAT_BLOCKS = (2, 4, 10, 12)  # indices into BLOCKS


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class MobileNetV1(nn.Module):
    """MobileNetV1 (width 1.0)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn_relu(in_channels, 32, 3, 2))
        blocks, cin = [], 32
        for cout, stride in BLOCKS:
            blocks.append(
                nn.Sequential(
                    *_conv_bn_relu(cin, cin, 3, stride, cin), *_conv_bn_relu(cin, cout, 1)
                )
            )
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        x = self.stem(x)
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in FEAT_BLOCKS:
                feats.append(x)
        pooled = global_pool(x)
        return self.fc(pooled), {"pooled": pooled, "feats": feats}


def mobilenetv1_imagenet(num_classes: int = 1000, in_channels: int = 3) -> MobileNetV1:
    return MobileNetV1(num_classes, in_channels)
