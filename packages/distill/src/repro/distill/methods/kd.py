"""``kd``: Hinton et al. (2015) knowledge distillation, mdistiller's CIFAR-100 defaults."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from repro.distill.losses import kd_loss
from repro.distill.methods.base import Distiller


class KD(Distiller):
    """L = ce_weight * CE + kd_weight * T^2 KL(p_t^T || p_s^T); defaults T=4, 0.1 / 0.9."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        temperature: float = 4.0,
        ce_weight: float = 0.1,
        kd_weight: float = 0.9,
    ) -> None:
        super().__init__(student, teacher)
        self.temperature = temperature
        self.ce_weight = ce_weight
        self.kd_weight = kd_weight

    def forward_train(
        self, images: Tensor, targets: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits_s = self.student_logits(images)
        logits_t = self.teacher_logits(images)
        return logits_s, {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_s, targets),
            "loss_kd": self.kd_weight * kd_loss(logits_s, logits_t, self.temperature),
        }
