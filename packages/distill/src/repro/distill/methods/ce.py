"""``ce``: the student alone with cross-entropy ("vanilla"; also trains teachers)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from repro.distill.methods.base import Distiller


class Vanilla(Distiller):
    """L = ce_weight * CE(z_s, y). Takes no teacher."""

    requires_teacher = False

    def __init__(
        self, student: nn.Module, teacher: nn.Module | None = None, *, ce_weight: float = 1.0
    ) -> None:
        super().__init__(student, teacher)
        self.ce_weight = ce_weight

    def forward_train(
        self, images: Tensor, targets: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.student_logits(images)
        return logits, {"loss_ce": self.ce_weight * F.cross_entropy(logits, targets)}


METHOD = Vanilla
