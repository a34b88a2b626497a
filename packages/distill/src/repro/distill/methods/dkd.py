"""``dkd``: Decoupled KD (Zhao et al., CVPR 2022), mdistiller's CIFAR-100 defaults.

L = ce_weight * CE + min(epoch / warmup, 1) * mean_i T_i^2 (alpha TCKD_i + beta NCKD_i). With
``temperature: {policy: energy}`` this is Energy DKD (Kim, Ham et al., KBS 2024): TCKD and NCKD
both at the per-sample temperature from the teacher energy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from repro.distill.losses import dkd_loss
from repro.distill.methods.base import Distiller
from repro.distill.temperature import TemperaturePolicy, as_policy


def warmup_factor(epoch: int, warmup: int) -> float:
    """Linear DKD warm-up ``min(epoch / warmup, 1)``; 1 when ``warmup <= 0``.

    mdistiller counts epochs from 1, so its first epoch already gets 1 / warmup.
    """
    return 1.0 if warmup <= 0 else min(epoch / warmup, 1.0)


class DKD(Distiller):
    """Defaults: CE 1.0, alpha 1, beta 8, T 4, warm-up 20 epochs (CIFAR-100 res32x4 pairs)."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        ce_weight: float = 1.0,
        alpha: float = 1.0,
        beta: float = 8.0,
        temperature: float | Mapping[str, Any] | TemperaturePolicy = 4.0,
        warmup: int = 20,
    ) -> None:
        super().__init__(student, teacher)
        self.ce_weight = ce_weight
        self.alpha = alpha
        self.beta = beta
        self.temperature = as_policy(temperature)
        self.warmup = warmup

    def forward_train(
        self, images: Tensor, targets: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits_s = self.student_logits(images)
        logits_t = self.teacher_logits(images)
        t = self.temperature(logits_s, logits_t)
        dkd = dkd_loss(logits_s, logits_t, targets, self.alpha, self.beta, t)
        return logits_s, {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_s, targets),
            "loss_kd": warmup_factor(epoch, self.warmup) * dkd,
        }


METHOD = DKD
