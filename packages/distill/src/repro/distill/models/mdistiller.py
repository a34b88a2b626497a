"""mdistiller's CIFAR networks' state_dict key names, renamed to the zoo's.

The zoo's CIFAR networks equal mdistiller's (``mdistiller/models/cifar/``) layer for layer and
tensor for tensor, in the same order; only the module names differ (``layer1.0`` is our
``stages.0.0``, ...). :func:`zoo_key` renames one of mdistiller's keys to ours, family by
family, so a checkpoint mdistiller (or CRD, whose teachers it releases) wrote loads into the
zoo (:func:`repro.distill.models.load_teacher_weights`). Which teachers mdistiller releases
and where they lie: :data:`repro.distill.plan.MDISTILLER_TEACHERS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def _stage(match: re.Match[str], offset: int) -> str:
    return f"stages.{int(match[1]) - offset}."


def _resnet(key: str) -> str:
    # resnet.py: conv1, bn1, layer<i>.<j>.{conv,bn}<k>, layer<i>.<j>.downsample.{0,1}, fc;
    # resnetv2.py (ResNet50): the same with layer<i>.<j>.shortcut.{0,1} and linear
    key = re.sub(r"^layer(\d)\.", lambda m: _stage(m, 1), key)
    key = re.sub(r"^linear\.", "fc.", key)
    return key.replace(".downsample.", ".shortcut.")


def _wrn(key: str) -> str:
    # wrn.py: block<i>.layer.<j>.{bn1,conv1,bn2,conv2,convShortcut}; conv1, bn1 (last), fc
    key = re.sub(r"^block(\d)\.layer\.", lambda m: _stage(m, 1), key)
    key = key.replace(".convShortcut.", ".proj.")
    return re.sub(r"^bn1\.", "bn.", key)


def _vgg(key: str) -> str:
    # vgg.py: block<i>.<j> (0-based stages: conv, BN), classifier
    return re.sub(r"^block(\d)\.", lambda m: _stage(m, 0), key)


def _mobilenetv2(key: str) -> str:
    # mobilenetv2.py (mobile_half): conv1.{0,1} stem, blocks.<i>.<j>.conv.<k>, conv2.{0,1},
    # classifier.0
    key = re.sub(r"^conv1\.", "stem.", key)
    key = re.sub(r"^conv2\.", "head.", key)
    return re.sub(r"^classifier\.0\.", "classifier.", key)


def _shufflev1(key: str) -> str:
    # ShuffleNetv1.py: conv1, bn1, layer<i>.<j>.{conv,bn}<k>, linear
    return re.sub(r"^layer(\d)\.", lambda m: _stage(m, 1), key)


#: ShuffleNetv2.py's blocks: the first block of a stage (DownBlock) has conv1-5/bn1-5 in a
#: left (depthwise, pointwise) and a right branch (pointwise, depthwise, pointwise); the
#: others (BasicBlock) conv1-3/bn1-3 on half the channels. Ours: nn.Sequential positions.
_SHUFFLEV2_DOWN = {
    "conv1": "left.0", "bn1": "left.1", "conv2": "left.2", "bn2": "left.3",
    "conv3": "right.0", "bn3": "right.1", "conv4": "right.3", "bn4": "right.4",
    "conv5": "right.5", "bn5": "right.6",
}  # fmt: skip
_SHUFFLEV2_BASIC = {
    "conv1": "branch.0", "bn1": "branch.1", "conv2": "branch.3", "bn2": "branch.4",
    "conv3": "branch.5", "bn3": "branch.6",
}  # fmt: skip


def _shufflev2(key: str) -> str:
    # ShuffleNetv2.py: conv1, bn1, layer<i>.<j>.{conv,bn}<k>, conv2, bn2, linear
    block = re.match(r"^layer(\d)\.(\d+)\.(conv\d|bn\d)\.", key)
    if block:
        names = _SHUFFLEV2_DOWN if block[2] == "0" else _SHUFFLEV2_BASIC
        inner = names.get(block[3], block[3])
        return f"stages.{int(block[1]) - 1}.{block[2]}.{inner}.{key[block.end() :]}"
    key = re.sub(r"^conv2\.", "head.0.", key)
    return re.sub(r"^bn2\.", "head.1.", key)


def _family(model: str) -> Callable[[str], str] | None:
    if model == "ResNet50" or re.fullmatch(r"resnet\d+(x4)?", model):
        return _resnet
    if model.startswith("wrn_"):
        return _wrn
    if re.fullmatch(r"vgg\d+", model):
        return _vgg
    return {"mobile_half": _mobilenetv2, "ShuffleV1": _shufflev1, "ShuffleV2": _shufflev2}.get(
        model
    )


def has_names(model: str) -> bool:
    """Whether ``model`` is one of mdistiller's CIFAR networks (its keys can be renamed)."""
    return _family(model) is not None


def zoo_key(model: str, key: str) -> str:
    """Our state_dict key of mdistiller's ``key`` in CIFAR network ``model`` (a key it does
    not know comes back unchanged, so the fit check names it)."""
    family = _family(model)
    if family is None:
        raise KeyError(f"no mdistiller network '{model}'")
    return family(key)
