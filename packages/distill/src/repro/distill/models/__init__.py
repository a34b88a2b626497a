"""Model zoo: mdistiller's CIFAR architectures and ImageNet teacher/student pairs.

Every model is built as ``factory(num_classes=..., in_channels=...)`` and its forward returns
``(logits, feats)``; ``feats["pooled"]`` is the penultimate feature vector ``(N, D)`` and
``feats["feats"]`` the list of stage outputs (stem first). All models end in global average
pooling, so inputs other than the native resolution (e.g. 8x8 digits) work. A trained model
comes back with :func:`load_trained` (``model.pt``), a user's file with
:func:`load_teacher_weights` (a torchvision state_dict, or an mdistiller checkpoint of a CIFAR
network: key names in :mod:`.mdistiller`) or :func:`load_init_weights`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from . import (
    mobilenetv1,
    mobilenetv2,
    resnet,
    resnet_imagenet,
    shufflenetv1,
    shufflenetv2,
    vgg,
    wrn,
)
from ._common import ModelOutput

#: Registry: name -> factory(num_classes: int, in_channels: int = 3) -> nn.Module.
MODELS: dict[str, Callable[..., nn.Module]] = {
    # CIFAR (mdistiller names)
    "resnet8": resnet.resnet8,
    "resnet14": resnet.resnet14,
    "resnet20": resnet.resnet20,
    "resnet32": resnet.resnet32,
    "resnet44": resnet.resnet44,
    "resnet56": resnet.resnet56,
    "resnet110": resnet.resnet110,
    "resnet8x4": resnet.resnet8x4,
    "resnet32x4": resnet.resnet32x4,
    "wrn_16_1": wrn.wrn_16_1,
    "wrn_16_2": wrn.wrn_16_2,
    "wrn_40_1": wrn.wrn_40_1,
    "wrn_40_2": wrn.wrn_40_2,
    "vgg8": vgg.vgg8,
    "vgg11": vgg.vgg11,
    "vgg13": vgg.vgg13,
    "vgg16": vgg.vgg16,
    "vgg19": vgg.vgg19,
    "mobile_half": mobilenetv2.mobile_half,
    "ShuffleV1": shufflenetv1.shufflev1,
    "ShuffleV2": shufflenetv2.shufflev2,
    "ResNet50": resnet.resnet50_cifar,
    # ImageNet
    "resnet18_imagenet": resnet_imagenet.resnet18_imagenet,
    "resnet34_imagenet": resnet_imagenet.resnet34_imagenet,
    "resnet50_imagenet": resnet_imagenet.resnet50_imagenet,
    "mobilenetv1_imagenet": mobilenetv1.mobilenetv1_imagenet,
}

#: Registered models meant for 224x224 ImageNet inputs (the rest are CIFAR 32x32 models).
IMAGENET_MODELS: frozenset[str] = frozenset(n for n in MODELS if n.endswith("_imagenet"))


def build_model(name: str, num_classes: int, in_channels: int = 3) -> nn.Module:
    """Build the registered model ``name``; unknown names raise ``KeyError`` listing valid ones."""
    try:
        factory = MODELS[name]
    except KeyError:
        valid = ", ".join(MODELS)
        raise KeyError(f"unknown model {name!r}; valid names: {valid}") from None
    return factory(num_classes=num_classes, in_channels=in_channels)


# Loading weights from files builds the model first (so after build_model).
from .weights import (  # noqa: E402
    load_init_weights,
    load_teacher_weights,
    load_trained,
    read_weights,
)

__all__ = [
    "IMAGENET_MODELS",
    "MODELS",
    "ModelOutput",
    "build_model",
    "load_init_weights",
    "load_teacher_weights",
    "load_trained",
    "read_weights",
]
