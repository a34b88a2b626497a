"""CIFAR ResNets: the 6n+2 BasicBlock family and the bottleneck ResNet50.

Architectures follow mdistiller's ``cifar/resnet.py`` (resnet8 ... resnet110, resnet8x4,
resnet32x4: 3x3 stem, three stages, strides 1/2/2) and ``cifar/resnetv2.py`` (``ResNet50``:
64-channel 3x3 stem, four bottleneck stages, strides 1/2/2/2). A 1x1 conv + BN projection
shortcut is used whenever the stride or the channel count changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import ModelOutput, global_pool, init_kaiming


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity, or a 1x1 conv + BN projection when the shape changes."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus shortcut, ReLU after the sum."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, plus shortcut."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """3x3 conv-BN-ReLU stem, residual stages, global average pool, linear classifier."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        stem: int,
        widths: tuple[int, ...],
        blocks: tuple[int, ...],
        strides: tuple[int, ...],
        num_classes: int = 100,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        stages, cin = [], stem
        for planes, n, stride in zip(widths, blocks, strides, strict=True):
            layers = []
            for i in range(n):
                layers.append(block(cin, planes, stride if i == 0 else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(cin, num_classes)
        init_kaiming(self)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        x = F.relu(self.bn1(self.conv1(x)))
        feats = [x]
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        pooled = global_pool(x)
        return self.fc(pooled), {"pooled": pooled, "feats": feats}


def _cifar_resnet(depth: int, stem: int, widths: tuple[int, int, int], **kw) -> CifarResNet:
    """mdistiller's ``ResNet(depth, [stem, *widths], "basicblock")``; depth = 6n + 2."""
    if (depth - 2) % 6:
        raise ValueError(f"BasicBlock CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    return CifarResNet(BasicBlock, stem, widths, (n, n, n), (1, 2, 2), **kw)


def resnet8(num_classes: int = 100, in_channels: int = 3) -> CifarResNet:
    return _cifar_resnet(8, 16, (16, 32, 64), num_classes=num_classes, in_channels=in_channels)


def resnet14(num_classes: int = 100, in_channels: int = 3) -> CifarResNet:
    return _cifar_resnet(14, 16, (16, 32, 64), num_classes=num_classes, in_channels=in_channels)


def resnet20(num_classes: int = 100, in_channels: int = 3) -> CifarResNet:
    return _cifar_resnet(20, 16, (16, 32, 64), num_classes=num_classes, in_channels=in_channels)


def resnet32(num_classes: int = 100, in_channels: int = 3) -> CifarResNet:
    return _cifar_resnet(32, 16, (16, 32, 64), num_classes=num_classes, in_channels=in_channels)


def resnet44(num_classes: int = 100, in_channels: int = 3) -> CifarResNet:
    return _cifar_resnet(44, 16, (16, 32, 64), num_classes=num_classes, in_channels=in_channels)


def resnet56(num_classes: int = 100, in_channels: int = 3) -> CifarResNet:
    return _cifar_resnet(56, 16, (16, 32, 64), num_classes=num_classes, in_channels=in_channels)


def resnet110(num_classes: int = 100, in_channels: int = 3) -> CifarResNet:
    return _cifar_resnet(110, 16, (16, 32, 64), num_classes=num_classes, in_channels=in_channels)


def resnet8x4(num_classes: int = 100, in_channels: int = 3) -> CifarResNet:
    """resnet8 with 4x wider stages (64/128/256) and mdistiller's 32-channel stem."""
    return _cifar_resnet(8, 32, (64, 128, 256), num_classes=num_classes, in_channels=in_channels)


def resnet32x4(num_classes: int = 100, in_channels: int = 3) -> CifarResNet:
    """resnet32 with 4x wider stages (64/128/256) and mdistiller's 32-channel stem."""
    return _cifar_resnet(32, 32, (64, 128, 256), num_classes=num_classes, in_channels=in_channels)


def resnet50_cifar(num_classes: int = 100, in_channels: int = 3) -> CifarResNet:
    """mdistiller's CIFAR ``ResNet50`` (resnetv2.py): bottleneck blocks 3/4/6/3."""
    return CifarResNet(
        Bottleneck,
        64,
        (64, 128, 256, 512),
        (3, 4, 6, 3),
        (1, 2, 2, 2),
        num_classes=num_classes,
        in_channels=in_channels,
    )
