"""ImageNet ResNet-18/34/50 from torchvision's constructors, returning ``(logits, feats)``.

The torchvision network is built with ``weights=None`` (nothing is downloaded) and kept as
``.net``, so torchvision checkpoints load with ``model.net.load_state_dict(...)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ._common import ModelOutput, global_pool

if TYPE_CHECKING:
    import torchvision


class TorchvisionResNet(nn.Module):
    """Runs a torchvision ResNet stage by stage to expose its features."""

    def __init__(self, net: torchvision.models.ResNet, in_channels: int = 3) -> None:
        super().__init__()
        if in_channels != 3:
            # Same stem as torchvision's, for a different number of input channels.
            net.conv1 = nn.Conv2d(in_channels, net.conv1.out_channels, 7, 2, 3, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.net = net

    def forward(self, x: torch.Tensor) -> ModelOutput:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        feats = [x]
        for stage in (n.layer1, n.layer2, n.layer3, n.layer4):
            x = stage(x)
            feats.append(x)
        pooled = global_pool(x)
        return n.fc(pooled), {"pooled": pooled, "feats": feats}


def resnet18_imagenet(num_classes: int = 1000, in_channels: int = 3) -> TorchvisionResNet:
    """``torchvision.models.resnet18(weights=None)`` returning ``(logits, feats)``."""
    import torchvision  # lazily: it imports torch._dynamo (seconds), CIFAR jobs never need it

    net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    return TorchvisionResNet(net, in_channels)


def resnet34_imagenet(num_classes: int = 1000, in_channels: int = 3) -> TorchvisionResNet:
    """``torchvision.models.resnet34(weights=None)`` returning ``(logits, feats)``."""
    import torchvision  # lazily: it imports torch._dynamo (seconds), CIFAR jobs never need it

    net = torchvision.models.resnet34(weights=None, num_classes=num_classes)
    return TorchvisionResNet(net, in_channels)


def resnet50_imagenet(num_classes: int = 1000, in_channels: int = 3) -> TorchvisionResNet:
    """``torchvision.models.resnet50(weights=None)`` returning ``(logits, feats)``."""
    import torchvision  # lazily: it imports torch._dynamo (seconds), CIFAR jobs never need it

    net = torchvision.models.resnet50(weights=None, num_classes=num_classes)
    return TorchvisionResNet(net, in_channels)
