"""R2KD's teacher: the trained teacher blended with an L1-pruned copy of itself.

Once, before training, a deep copy of the teacher has the ``rate`` fraction of smallest-|w|
entries of every Conv2d and Linear weight zeroed, per layer (``torch.nn.utils.prune``
``l1_unstructured``, which prunes round(rate * numel) entries, then ``prune.remove`` to make it
permanent); biases and normalisation layers are untouched and the copy is not fine-tuned. The
distillation target is the logit blend w * teacher(x) + (1 - w) * pruned(x), w = 0.7
(``Seonghak35/R2KD``: ``unstructured_pruning`` and ``CFG.PRUNE.RATE`` / ``WEIGHT``).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from repro.core import ReproError

PrunedBN = Literal["eval", "train"]
PRUNED_BN: tuple[str, ...] = ("eval", "train")

#: Pruning rate and blend weight of the official code (``CFG.PRUNE``).
PRUNE_RATE, BLEND_WEIGHT = 0.1, 0.7


def _logits(output: Any) -> Tensor:
    """First item of a ``(logits, feats)`` output, else the output.

    Same rule as ``repro.distill.methods.base.logits_of``, repeated here so that the methods
    package can import this module without an import cycle.
    """
    return output[0] if isinstance(output, tuple | list) else output


def prunable_layers(model: nn.Module) -> list[nn.Module]:
    """Every Conv2d and Linear module of ``model`` (the layers R2KD prunes), in module order."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def pruned_copy(teacher: nn.Module, rate: float = PRUNE_RATE) -> nn.Module:
    """A frozen, eval-mode deep copy of ``teacher`` with each Conv2d/Linear weight L1-pruned.

    Per layer, round(rate * numel) entries of smallest magnitude are set to 0 (ties broken by
    ``torch.topk``); the pruning is made permanent, so the copy is a plain module with zeros
    in its weights and no masks or hooks. ``teacher`` itself is not modified.
    """
    if not 0.0 <= rate <= 1.0:
        raise ReproError(f"pruning rate must be in [0, 1]; got {rate}")
    pruned = copy.deepcopy(teacher)
    for layer in prunable_layers(pruned):
        # torch's pruning flattens with .view, which a channels_last weight refuses
        layer.weight.data = layer.weight.data.contiguous()
        prune.l1_unstructured(layer, name="weight", amount=float(rate))
        prune.remove(layer, "weight")
    pruned.requires_grad_(False)
    return pruned.eval()


class BlendedTeacher(nn.Module):
    """Logits w * teacher(x) + (1 - w) * pruned(x), computed without gradient.

    Both networks are frozen (``requires_grad=False``) and only run under ``torch.no_grad()``;
    no optimiser should be given their parameters. ``train()`` / ``eval()`` cannot change
    their modes: the teacher is always in eval mode, and the pruned copy is in eval mode with
    ``pruned_bn="eval"`` (default) or always in train mode with ``pruned_bn="train"``, the
    official code's behaviour (there the pruned copy is a child of the distiller, so
    ``Distiller.train()`` switches it to train mode while only the teacher is forced back to
    eval). In train mode its BatchNorm layers normalise with batch statistics and update their
    running statistics at every forward pass, so those buffers drift during training (its
    weights never change). The models in ``repro.distill.models`` have no dropout, so for them
    train mode only affects BatchNorm.

    ``pruned`` defaults to ``pruned_copy(teacher, rate)``; pass one to reuse it.
    """

    def __init__(
        self,
        teacher: nn.Module,
        pruned: nn.Module | None = None,
        *,
        weight: float = BLEND_WEIGHT,
        rate: float = PRUNE_RATE,
        pruned_bn: PrunedBN = "eval",
    ) -> None:
        super().__init__()
        if pruned_bn not in PRUNED_BN:
            raise ReproError(f"pruned_bn must be one of {', '.join(PRUNED_BN)}; got {pruned_bn!r}")
        if not 0.0 <= weight <= 1.0:
            raise ReproError(f"blend weight must be in [0, 1]; got {weight}")
        self.teacher = teacher.requires_grad_(False)
        self.pruned = (pruned if pruned is not None else pruned_copy(teacher, rate)).requires_grad_(
            False
        )
        self.weight = float(weight)
        self.pruned_bn: PrunedBN = pruned_bn
        self.train(False)

    def train(self, mode: bool = True) -> BlendedTeacher:
        """Ignore ``mode``: the teacher stays in eval mode, the pruned copy as ``pruned_bn``."""
        self.training = False
        self.teacher.eval()
        self.pruned.train(self.pruned_bn == "train")
        return self

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Blended logits (no gradient); either network may return ``(logits, feats)``."""
        self.train(False)
        z_t = _logits(self.teacher(images))
        z_p = _logits(self.pruned(images))
        return self.weight * z_t + (1.0 - self.weight) * z_p
