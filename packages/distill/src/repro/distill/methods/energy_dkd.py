"""``energy_dkd``: Energy DKD (Kim, Ham et al., Knowledge-Based Systems 2024).

mdistiller's DKD with TCKD and NCKD both computed at a per-sample temperature T_i from the
teacher energy (same rule and thresholds as ``energy_kd``) and scaled by T_i^2, with the DKD
warm-up min(epoch / warmup, 1). Defaults: CE 1.0, alpha 1, beta 8, warm-up 20, T 2/4/6,
r_low = r_high = 0.2.

Temperature direction (paper vs official code): see ``repro.distill.methods.energy``.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from repro.distill.losses import dkd_loss
from repro.distill.methods.dkd import warmup_factor
from repro.distill.methods.energy import EnergyTemperatureDistiller


class EnergyDKD(EnergyTemperatureDistiller):
    """DKD with a per-sample temperature from the teacher energy (see the module docstring)."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        ce_weight: float = 1.0,
        alpha: float = 1.0,
        beta: float = 8.0,
        warmup: int = 20,
        **energy: Any,
    ) -> None:
        """``energy``: t_low/t_mid/t_high, direction, energy_temperature, r_low, r_high
        (defaults 2/4/6, "paper", 4, 0.2, 0.2; see ``EnergyTemperatureDistiller``)."""
        super().__init__(student, teacher, **energy)
        self.ce_weight = ce_weight
        self.alpha = alpha
        self.beta = beta
        self.warmup = warmup

    def forward_train(
        self, images: Tensor, targets: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits_s = self.student_logits(images)
        logits_t = self.teacher_logits(images)
        temps = self.sample_temperatures(logits_t)
        dkd = dkd_loss(logits_s, logits_t, targets, self.alpha, self.beta, temps)
        return logits_s, {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_s, targets),
            "loss_kd": warmup_factor(epoch, self.warmup) * dkd,
        }
