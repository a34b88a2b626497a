"""Model zoo: exact parameter counts, forward shapes, small/1-channel inputs, registry."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from repro.distill.models import IMAGENET_MODELS, MODELS, build_model

# ---------------------------------------------------------------------------------------------
# Independent parameter counts: a second formulation that counts conv / BN / linear parameters
# layer by layer from the published block structure, without building any module.
# ---------------------------------------------------------------------------------------------


def conv(cin: int, cout: int, k: int, groups: int = 1, bias: bool = False) -> int:
    return cout * (cin // groups) * k * k + (cout if bias else 0)


def bn(c: int) -> int:
    return 2 * c  # affine weight + bias (running stats are buffers)


def linear(i: int, o: int) -> int:
    return i * o + o


def basic(cin: int, cout: int, stride: int) -> int:
    """He et al. basic block; 1x1 conv + BN projection when the shape changes."""
    n = conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3) + bn(cout)
    return n + (conv(cin, cout, 1) + bn(cout) if stride != 1 or cin != cout else 0)


def bottleneck(cin: int, planes: int, stride: int) -> int:
    cout = 4 * planes
    n = conv(cin, planes, 1) + bn(planes) + conv(planes, planes, 3) + bn(planes)
    n += conv(planes, cout, 1) + bn(cout)
    return n + (conv(cin, cout, 1) + bn(cout) if stride != 1 or cin != cout else 0)


def count_resnet(stem_k, stem, widths, blocks, strides, bottle, classes) -> int:
    total, cin = conv(3, stem, stem_k) + bn(stem), stem
    for w, n, s in zip(widths, blocks, strides, strict=True):
        for i in range(n):
            stride = s if i == 0 else 1
            total += bottleneck(cin, w, stride) if bottle else basic(cin, w, stride)
            cin = 4 * w if bottle else w
    return total + linear(cin, classes)


def count_cifar_resnet(depth: int, stem: int, widths: tuple[int, int, int], classes: int) -> int:
    n = (depth - 2) // 6
    return count_resnet(3, stem, widths, (n, n, n), (1, 2, 2), False, classes)


def count_wrn(depth: int, k: int, classes: int) -> int:
    n, w = (depth - 4) // 6, (16, 16 * k, 32 * k, 64 * k)
    total = conv(3, 16, 3)
    for s in range(3):
        for i in range(n):
            cin, cout = (w[s] if i == 0 else w[s + 1]), w[s + 1]
            total += bn(cin) + conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3)
            total += conv(cin, cout, 1) if cin != cout else 0  # shortcut conv, no BN
    return total + bn(w[3]) + linear(w[3], classes)


def count_vgg(cfg: list[list[int]], classes: int) -> int:
    total, cin = 0, 3
    for c in (c for stage in cfg for c in stage):
        total += conv(cin, c, 3, bias=True) + bn(c)
        cin = c
    return total + linear(512, classes)


def count_mobile_half(classes: int) -> int:
    setting = [(1, 8, 1), (6, 12, 2), (6, 16, 3), (6, 32, 4), (6, 48, 3), (6, 80, 3), (6, 160, 1)]
    total, cin = conv(3, 16, 3) + bn(16), 16  # width 0.5: 32 -> 16 stem channels
    for t, c, n in setting:
        for _ in range(n):
            h = cin * t
            total += conv(cin, h, 1) + bn(h) + conv(h, h, 3, groups=h) + bn(h)
            total += conv(h, c, 1) + bn(c)
            cin = c
    return total + conv(cin, 1280, 1) + bn(1280) + linear(1280, classes)


def count_shufflev1(classes: int) -> int:
    def unit(cin: int, cout: int) -> int:
        mid, g1 = cout // 4, (1 if cin == 24 else 3)
        return (
            conv(cin, mid, 1, groups=g1)
            + bn(mid)
            + conv(mid, mid, 3, groups=mid)
            + bn(mid)
            + conv(mid, cout, 1, groups=3)
            + bn(cout)
        )

    total, cin = conv(3, 24, 1) + bn(24), 24
    for out, n in ((240, 4), (480, 8), (960, 4)):
        total += unit(cin, out - cin) + (n - 1) * unit(out, out)  # first unit concatenates
        cin = out
    return total + linear(960, classes)


def count_shufflev2(classes: int) -> int:
    total, cin = conv(3, 24, 1) + bn(24), 24
    for out, n in ((116, 3), (232, 7), (464, 3)):
        m = out // 2
        total += conv(cin, cin, 3, groups=cin) + bn(cin) + conv(cin, m, 1) + bn(m)  # left
        total += conv(cin, m, 1) + conv(m, m, 3, groups=m) + conv(m, m, 1) + 3 * bn(m)  # right
        total += n * (2 * conv(m, m, 1) + conv(m, m, 3, groups=m) + 3 * bn(m))
        cin = out
    return total + conv(464, 1024, 1) + bn(1024) + linear(1024, classes)


def count_mobilenetv1(classes: int) -> int:
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5
    plan += [(1024, 2), (1024, 1)]
    total, cin = conv(3, 32, 3) + bn(32), 32
    for cout, _ in plan:
        total += conv(cin, cin, 3, groups=cin) + bn(cin) + conv(cin, cout, 1) + bn(cout)
        cin = cout
    return total + linear(1024, classes)


VGG_CFGS = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3],
    "vgg19": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}
IMAGENET_RESNET = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False), 50: ((3, 4, 6, 3), True)}


def independent_count(name: str, classes: int) -> int:
    if name in ("resnet8x4", "resnet32x4"):
        return count_cifar_resnet(int(name[6:-2]), 32, (64, 128, 256), classes)
    if name.startswith("resnet") and not name.endswith("_imagenet"):
        return count_cifar_resnet(int(name[6:]), 16, (16, 32, 64), classes)
    if name.startswith("wrn_"):
        _, depth, k = name.split("_")
        return count_wrn(int(depth), int(k), classes)
    if name in VGG_CFGS:
        return count_vgg(VGG_CFGS[name], classes)
    if name.endswith("_imagenet") and name.startswith("resnet"):
        blocks, bottle = IMAGENET_RESNET[int(name[6:8])]
        return count_resnet(7, 64, (64, 128, 256, 512), blocks, (1, 2, 2, 2), bottle, classes)
    return {
        "ResNet50": lambda c: count_resnet(
            3, 64, (64, 128, 256, 512), (3, 4, 6, 3), (1, 2, 2, 2), True, c
        ),
        "mobile_half": count_mobile_half,
        "ShuffleV1": count_shufflev1,
        "ShuffleV2": count_shufflev2,
        "mobilenetv1_imagenet": count_mobilenetv1,
    }[name](classes)


# Exact counts (100 classes for CIFAR models, 1000 for ImageNet ones). CIFAR and MobileNetV1
# numbers are those of mdistiller's own model code; the ImageNet ResNets are torchvision's.
EXACT = {
    "resnet8": 83_892,
    "resnet14": 181_108,
    "resnet20": 278_324,
    "resnet32": 472_756,
    "resnet44": 667_188,
    "resnet56": 861_620,
    "resnet110": 1_736_564,
    "resnet8x4": 1_233_540,
    "resnet32x4": 7_433_860,
    "wrn_16_1": 180_916,
    "wrn_16_2": 703_284,
    "wrn_40_1": 569_780,
    "wrn_40_2": 2_255_156,
    "vgg8": 3_965_028,
    "vgg11": 9_277_284,
    "vgg13": 9_462_180,
    "vgg16": 14_774_436,
    "vgg19": 20_086_692,
    "mobile_half": 812_836,
    "ShuffleV1": 949_258,
    "ShuffleV2": 1_355_528,
    "ResNet50": 23_705_252,
    "resnet18_imagenet": 11_689_512,
    "resnet34_imagenet": 21_797_672,
    "resnet50_imagenet": 25_557_032,
    "mobilenetv1_imagenet": 4_231_976,
}

# Widely published counts in millions (CRD-style table, CIFAR-100 heads; MobileNetV1 ~4.23M).
# vgg8 is the one entry that is not our count rounded: mdistiller's vgg8 (= vgg8_bn) has
# 3,965,028 parameters, only 28 above the 3.965M rounding boundary, so it rounds to 3.97; the
# published 3.96 is that count truncated. We match mdistiller's code (verified exactly) and
# check vgg8 by truncation instead.
PUBLISHED_M = {
    "resnet20": 0.28,
    "resnet32": 0.47,
    "resnet56": 0.86,
    "resnet110": 1.74,
    "resnet8x4": 1.23,
    "resnet32x4": 7.43,
    "wrn_16_2": 0.70,
    "wrn_40_1": 0.57,
    "wrn_40_2": 2.26,
    "vgg8": 3.96,
    "vgg13": 9.46,
    "ResNet50": 23.71,
    "mobile_half": 0.81,
    "ShuffleV1": 0.95,
    "ShuffleV2": 1.36,
    "mobilenetv1_imagenet": 4.23,
}
TRUNCATED_IN_PUBLISHED = {"vgg8"}

ALL_NAMES = [
    "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "resnet8x4", "resnet32x4", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2",
    "vgg8", "vgg11", "vgg13", "vgg16", "vgg19", "mobile_half", "ShuffleV1", "ShuffleV2",
    "ResNet50", "resnet18_imagenet", "resnet34_imagenet", "resnet50_imagenet",
    "mobilenetv1_imagenet",
]  # fmt: skip


def classes_for(name: str) -> int:
    return 1000 if name in IMAGENET_MODELS else 100


@functools.cache
def built(name: str) -> nn.Module:
    """One eval-mode instance per model, shared by the tests (construction dominates runtime)."""
    return build_model(name, classes_for(name)).eval()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_names() -> None:
    assert list(MODELS) == ALL_NAMES
    assert set(EXACT) == set(MODELS)
    assert {"resnet18_imagenet", "resnet34_imagenet", "resnet50_imagenet"} <= IMAGENET_MODELS


@pytest.mark.parametrize("name", ALL_NAMES)
def test_param_count_exact(name: str) -> None:
    count = n_params(built(name))
    assert count == independent_count(name, classes_for(name)) == EXACT[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_M))
def test_param_count_published(name: str) -> None:
    millions = EXACT[name] / 1e6
    shown = math.floor(millions * 100) / 100 if name in TRUNCATED_IN_PUBLISHED else millions
    assert f"{shown:.2f}" == f"{PUBLISHED_M[name]:.2f}"


def test_param_count_scales_with_classes_and_channels() -> None:
    m = build_model("resnet8", num_classes=10, in_channels=1)
    # 100 -> 10 classes removes 90 * (64 + 1); 3 -> 1 input channel removes 2 * 16 * 9.
    assert n_params(m) == EXACT["resnet8"] - 90 * 65 - 2 * 16 * 9


@pytest.mark.parametrize("name", ALL_NAMES)
def test_forward_shapes(name: str) -> None:
    imagenet = name in IMAGENET_MODELS
    size = 224 if name == "resnet18_imagenet" else (64 if imagenet else 32)
    with torch.no_grad():
        logits, feats = built(name)(torch.randn(2, 3, size, size))
    assert logits.shape == (2, classes_for(name))
    assert feats["pooled"].ndim == 2 and feats["pooled"].shape[0] == 2
    assert len(feats["feats"]) >= 4
    assert all(f.ndim == 4 and f.shape[0] == 2 for f in feats["feats"])
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["resnet8", "resnet20", "wrn_16_1"])
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("size", [8, 16])
def test_small_inputs_train_step(name: str, in_channels: int, size: int) -> None:
    """Digits-sized inputs (8x8, optionally upscaled to 16x16), 1 or 3 channels."""
    model = build_model(name, num_classes=10, in_channels=in_channels).train()
    logits, feats = model(torch.randn(4, in_channels, size, size))
    assert logits.shape == (4, 10)
    assert feats["pooled"].shape == (4, 64)
    torch.nn.functional.cross_entropy(logits, torch.arange(4)).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["vgg8", "mobile_half", "ShuffleV1", "ShuffleV2", "ResNet50"])
def test_other_families_on_8x8_digits(name: str) -> None:
    model = build_model(name, num_classes=10, in_channels=1).eval()
    with torch.no_grad():
        logits, _ = model(torch.randn(2, 1, 8, 8))
    assert logits.shape == (2, 10)


@pytest.mark.parametrize("name", ["resnet8", "wrn_16_1", "vgg8", "mobile_half", "ShuffleV1",
                                  "ShuffleV2"])  # fmt: skip
def test_channels_last_matches(name: str) -> None:
    model = build_model(name, num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref, _ = model(x)
        model = model.to(memory_format=torch.channels_last)
        out, _ = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_imagenet_resnet_wraps_torchvision() -> None:
    resnet18 = built("resnet18_imagenet")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(resnet18(x)[0], resnet18.net(x))  # same as torchvision's forward
    m = build_model("resnet34_imagenet", num_classes=7, in_channels=1)
    assert m.net.conv1.in_channels == 1 and m.net.fc.out_features == 7
    with torch.no_grad():
        logits, feats = m(torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, 7) and feats["pooled"].shape == (2, 512)


def test_unknown_name_raises_keyerror() -> None:
    with pytest.raises(KeyError, match="no_such_net") as info:
        build_model("no_such_net", num_classes=10)
    message = str(info.value)
    assert "\n" not in message and "resnet8x4" in message and "mobilenetv1_imagenet" in message
