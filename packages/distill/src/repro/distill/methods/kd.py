"""``kd``: Hinton et al. (2015) knowledge distillation, mdistiller's CIFAR-100 defaults.

L = ce_weight * CE + kd_weight * mean_i T_i^2 KL(p_t^{T_i} || p_s^{T_i}). The temperature
comes from a policy: a number (fixed T, default 4) or e.g. ``{policy: energy}``, which makes
this Energy KD (Kim, Ham et al., KBS 2024; see ``repro.distill.temperature.energy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from repro.distill.losses import kd_loss
from repro.distill.methods.base import Distiller
from repro.distill.temperature import TemperaturePolicy, as_policy


class KD(Distiller):
    """KD with a temperature policy; defaults T = 4, CE 0.1 / KD 0.9."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        temperature: float | Mapping[str, Any] | TemperaturePolicy = 4.0,
        ce_weight: float = 0.1,
        kd_weight: float = 0.9,
    ) -> None:
        super().__init__(student, teacher)
        self.temperature = as_policy(temperature)
        self.ce_weight = ce_weight
        self.kd_weight = kd_weight

    def forward_train(
        self, images: Tensor, targets: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits_s = self.student_logits(images)
        logits_t = self.teacher_logits(images)
        t = self.temperature(logits_s, logits_t)
        return logits_s, {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_s, targets),
            "loss_kd": self.kd_weight * kd_loss(logits_s, logits_t, t),
        }


METHOD = KD
