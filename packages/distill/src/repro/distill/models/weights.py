"""Weights from files: a model the trainer wrote (``model.pt``), and a user's torchvision
state_dict (a pretrained teacher, or initial weights). Nothing is downloaded; every file is
loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint
from repro.distill.models import build_model


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


def load_teacher_weights(
    name: str,
    path: str | os.PathLike[str] | None,
    num_classes: int,
    in_channels: int,
    config_key: str = "teacher_weights",
) -> torch.nn.Module:
    """A zoo model with a user-supplied torchvision-format state_dict (e.g. pretrained R34).

    Zoo models wrapping a torchvision network keep it as ``.net``; the file is loaded there
    (into the model itself otherwise), with ``weights_only=True``. Nothing is downloaded.
    """
    if not path or not Path(path).is_file():
        raise ReproError(
            f"teacher '{name}': weights file {str(path) if path else '(not set)'} not found; "
            f"set config key {config_key} to a torchvision state_dict file"
        )
    model = build_model(name, num_classes, in_channels)
    target = getattr(model, "net", model)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        target.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ReproError(
            f"{path}: not a state_dict of model '{name}' ({str(exc).splitlines()[0]})"
        ) from exc
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
