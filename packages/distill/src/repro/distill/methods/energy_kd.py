"""``energy_kd``: Energy KD (Kim, Ham et al., Knowledge-Based Systems 2024), KD variant.

L = ce_weight * CE + kd_weight * mean_i T_i^2 KL(p_t^{T_i} || p_s^{T_i}), where T_i is set from
the teacher energy E_i = -4 logsumexp(z_t,i / 4) against global thresholds (r_low = r_high =
0.2 percentiles of the training set): E_i in [tau_low, tau_high] -> t_mid = 4.

Temperature direction (paper vs official code): see ``repro.distill.methods.energy``.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from repro.distill.losses import kd_loss
from repro.distill.methods.energy import EnergyTemperatureDistiller


class EnergyKD(EnergyTemperatureDistiller):
    """KD with a per-sample temperature from the teacher energy (see the module docstring)."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        ce_weight: float = 0.1,
        kd_weight: float = 0.9,
        **energy: Any,
    ) -> None:
        """``energy``: t_low/t_mid/t_high, direction, energy_temperature, r_low, r_high
        (defaults 2/4/6, "paper", 4, 0.2, 0.2; see ``EnergyTemperatureDistiller``)."""
        super().__init__(student, teacher, **energy)
        self.ce_weight = ce_weight
        self.kd_weight = kd_weight

    def forward_train(
        self, images: Tensor, targets: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits_s = self.student_logits(images)
        logits_t = self.teacher_logits(images)
        temps = self.sample_temperatures(logits_t)
        return logits_s, {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_s, targets),
            "loss_kd": self.kd_weight * kd_loss(logits_s, logits_t, temps),
        }
