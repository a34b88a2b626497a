"""Weights from files: a model the trainer wrote (``model.pt``), a user's pretrained teacher
(a torchvision state_dict, or an mdistiller checkpoint for the CIFAR networks) and a user's
initial weights (torchvision). Nothing is downloaded; every file is loaded with
``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint
from repro.distill.models import build_model, mdistiller


def load_trained(
    name: str,
    checkpoint: str | os.PathLike[str],
    num_classes: int,
    in_channels: int,
    device: str | torch.device = "cpu",
) -> torch.nn.Module:
    """A zoo model with weights from a ``model.pt`` written by the trainer (a model trained
    alone or a KD student; ``model.pt`` holds the weights, the run's ``result.json`` names the
    model), its tensors on ``device``."""
    model = build_model(name, num_classes, in_channels)
    state = load_checkpoint(checkpoint, map_location=str(device))["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ReproError(
            f"{checkpoint}: weights do not fit model '{name}' ({str(exc).splitlines()[0]})"
        ) from exc
    return model.to(device)


def read_weights(
    path: str | os.PathLike[str] | None, config_key: str
) -> tuple[dict[str, torch.Tensor], dict[str, float | int]]:
    """The state_dict in a user's weights file, and the numbers the file records beside it.

    The file is a bare state_dict (torchvision's files) or a checkpoint dict whose ``model``
    entry is the state_dict (mdistiller's and CRD's, e.g. mdistiller's released CIFAR-100
    teachers ``cifar_teachers/<name>_vanilla/ckpt_epoch_240.pth``, which also hold ``epoch``,
    ``accuracy`` and ``optimizer``); loaded on the CPU with ``weights_only=True``. The numbers
    are the checkpoint's ``epoch``, ``accuracy`` and ``best_acc`` entries (none for a bare
    state_dict)."""
    if not path or not Path(path).is_file():
        raise ReproError(
            f"weights file {str(path) if path else '(not set)'} not found; set config key "
            f"{config_key} to a state_dict file or an mdistiller checkpoint"
        )
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for files it refuses
        first = (str(exc).splitlines() or [""])[0]
        raise ReproError(
            f"{path}: torch cannot load it with weights_only=True ({type(exc).__name__}: "
            f"{first}); set {config_key} to a state_dict file or an mdistiller checkpoint"
        ) from exc
    numbers: dict[str, float | int] = {}
    if isinstance(content, dict) and isinstance(content.get("model"), dict):
        for entry in ("epoch", "accuracy", "best_acc"):
            value = content.get(entry)
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                numbers[entry] = value
        content = content["model"]
    if not isinstance(content, dict) or not all(
        isinstance(v, torch.Tensor) for v in content.values()
    ):
        raise ReproError(
            f"{path}: neither a state_dict nor a checkpoint with one in its 'model' entry (a "
            f"{type(content).__name__}); set {config_key} to the right file"
        )
    return dict(content), numbers


def _first(keys: list[str]) -> str:
    return f"'{keys[0]}'" + (f" (+{len(keys) - 1} more)" if len(keys) > 1 else "")


def fit_state(
    path: str | os.PathLike[str],
    name: str,
    own: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    config_key: str,
    file_keys: dict[str, str] | None = None,
) -> dict[str, torch.Tensor]:
    """``state`` (a user's file's, named like ``own``), checked against the model's own
    state_dict ``own``: every key present (a BatchNorm's ``num_batches_tracked``, which older
    files lack, is taken from ``own``), none unexpected, every shape equal. A mismatch is one
    line naming the file and the first key of each kind, by its name in the file
    (``file_keys``: renamed key -> the file's; a missing key by the zoo's name)."""
    file_keys = file_keys or {}
    missing = [k for k in own if k not in state and not k.endswith(".num_batches_tracked")]
    unexpected = [file_keys.get(k, k) for k in state if k not in own]
    misfit = [k for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        zoo = " (the zoo's name)" if file_keys else ""
        problems.append(f"missing key {_first(missing)}{zoo}")
    if unexpected:
        problems.append(f"unexpected key {_first(unexpected)}")
    if misfit:
        k = misfit[0]
        problems.append(
            f"key '{file_keys.get(k, k)}' has shape {list(state[k].shape)}, the model "
            f"{list(own[k].shape)}" + (f" (+{len(misfit) - 1} more)" if len(misfit) > 1 else "")
        )
    if problems:
        raise ReproError(
            f"{path}: not a state_dict of model '{name}': {'; '.join(problems)}; set "
            f"{config_key} to the right file"
        )
    return {k: state.get(k, v) for k, v in own.items()}


def load_teacher_weights(
    name: str,
    path: str | os.PathLike[str] | None,
    num_classes: int,
    in_channels: int,
    config_key: str = "teacher_weights",
) -> torch.nn.Module:
    """A zoo model with the weights of a user-supplied file (:func:`read_weights`).

    ImageNet zoo models wrap a torchvision network as ``.net``: a torchvision state_dict
    (e.g. pretrained R34) is loaded there. CIFAR zoo models take mdistiller's checkpoints (its
    released teachers), whose key names :mod:`repro.distill.models.mdistiller` renames to the
    zoo's, or a state_dict already in the zoo's names. Every key and shape must fit
    (:func:`fit_state`). Nothing is downloaded.
    """
    state, _ = read_weights(path, config_key)
    model = build_model(name, num_classes, in_channels)
    target = getattr(model, "net", model)
    own = target.state_dict()
    file_keys = None
    if target is model and mdistiller.has_names(name) and not set(state) <= set(own):
        file_keys = {mdistiller.zoo_key(name, k): k for k in state}
        state = {mdistiller.zoo_key(name, k): v for k, v in state.items()}
    target.load_state_dict(fit_state(path, name, own, state, config_key, file_keys))
    return model


def load_init_weights(
    model: torch.nn.Module, path: str | os.PathLike[str] | None, config_key: str
) -> torch.nn.Module:
    """Start ``model`` from a user-supplied state_dict (e.g. torchvision's ImageNet-pretrained
    ResNet-18/34 for a fine-grained dataset), loaded with ``weights_only=True`` into the model's
    torchvision ``.net`` (or the model itself). Every tensor must fit, except the classifier
    (the last Linear layer), which keeps its fresh initialisation when its shape differs (a
    dataset with other classes). Nothing is downloaded."""
    if not path or not Path(path).is_file():
        raise ReproError(
            f"initial weights file {str(path) if path else '(not set)'} not found; set config "
            f"key {config_key} to a torchvision state_dict file"
        )
    target = getattr(model, "net", model)
    own = target.state_dict()
    linears = [name for name, m in target.named_modules() if isinstance(m, torch.nn.Linear)]
    head = {f"{linears[-1]}.weight", f"{linears[-1]}.bias"} if linears else set()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, TypeError) as exc:
        raise ReproError(f"{path}: not a state_dict ({str(exc).splitlines()[0]})") from exc
    if not isinstance(state, dict):
        raise ReproError(f"{path}: not a state_dict (a {type(state).__name__})")
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misfit = sorted(
        k for k in set(own) & set(state) if own[k].shape != state[k].shape and k not in head
    )
    if missing or unexpected or misfit:
        raise ReproError(
            f"{path}: does not fit this model (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}, other shapes {misfit[:3]}; set {config_key} to the right file)"
        )
    keep = {k: v for k, v in state.items() if own[k].shape == v.shape}
    target.load_state_dict({**own, **keep})
    return model
