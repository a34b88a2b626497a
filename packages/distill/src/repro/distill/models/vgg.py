"""VGG with batch norm for CIFAR (mdistiller's ``cifar/vgg.py``, ``vgg*_bn`` variants).

Five conv stages (3x3 conv with bias, BN, ReLU), max-pooling between stages, global average
pooling and a single 512 -> classes linear layer (no large FC head). mdistiller pools after
stages 0-2 always and after stage 3 only for 64x64 inputs, so the last stage runs at 4x4
for both 32x32 and 64x64 inputs; here the rule is "pool after stage 3 while the map is larger
than 4x4", which is the same for those sizes and also handles others. A pool is skipped when
the map is already 1 pixel wide (tiny inputs such as 8x8 digits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import ModelOutput, global_pool, init_msra

#: Channels of each conv, per stage (mdistiller's cfg "S", "A", "B", "D", "E").
CFGS: dict[str, list[list[int]]] = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}


def _stage(cin: int, channels: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in channels:
        layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        cin = c
    return nn.Sequential(*layers)


def _maxpool(x: torch.Tensor) -> torch.Tensor:
    return x if min(x.shape[-2:]) < 2 else F.max_pool2d(x, 2)


class VGG(nn.Module):
    """CIFAR VGG-BN built from a per-stage channel config."""

    def __init__(self, cfg: list[list[int]], num_classes: int = 100, in_channels: int = 3) -> None:
        super().__init__()
        cins = [in_channels] + [stage[-1] for stage in cfg[:-1]]
        self.stages = nn.ModuleList(
            _stage(cin, chans) for cin, chans in zip(cins, cfg, strict=True)
        )
        self.classifier = nn.Linear(cfg[-1][-1], num_classes)
        init_msra(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        feats = []
        for i, stage in enumerate(self.stages):
            if i in (1, 2, 3) or (i == 4 and x.shape[-2] > 4):
                x = _maxpool(x)
            x = stage(x)
            feats.append(x)
        pooled = global_pool(x)
        return self.classifier(pooled), {"pooled": pooled, "feats": feats}


def vgg8(num_classes: int = 100, in_channels: int = 3) -> VGG:
    return VGG(CFGS["vgg8"], num_classes, in_channels)


def vgg11(num_classes: int = 100, in_channels: int = 3) -> VGG:
    return VGG(CFGS["vgg11"], num_classes, in_channels)


def vgg13(num_classes: int = 100, in_channels: int = 3) -> VGG:
    return VGG(CFGS["vgg13"], num_classes, in_channels)


def vgg16(num_classes: int = 100, in_channels: int = 3) -> VGG:
    return VGG(CFGS["vgg16"], num_classes, in_channels)


def vgg19(num_classes: int = 100, in_channels: int = 3) -> VGG:
    return VGG(CFGS["vgg19"], num_classes, in_channels)
