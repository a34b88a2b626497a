"""``heda``: HE-DA, high-energy data augmentation (Kim, Ham et al., KBS 2024).

L = ce_weight * CE + kd_weight * KD_T(clean batch) + aug_weight * KD_T(mixed subset), T = 4.
The subset is the batch samples whose teacher energy exceeds tau_high, the global top-r_high
percentile of the training set (r_high = 0.5 by default; the paper quotes 20-50 %). The subset
is mixed within itself by CutMix (Beta(1, 1), default) or MixUp (Beta(0.2, 0.2)); the mixed
images go through teacher and student, and the extra term uses no labels. An empty subset gives
an extra term of 0 (still a tensor in the loss dict).

Temperatures: HE-DA uses one fixed T for both KD terms, so the paper-vs-code direction conflict
of the ``energy`` temperature policy (abstract: low energy -> higher T; code: low energy ->
lower T) does not arise here; the energies (``EnergySplit``, computed before training) are used
only to select the subset.

Official-code quirks (Seonghak35/EnergyKD ``energyAUG.py``): batch items 0 and 1 are always put
in front of the subset (so they appear twice when they are high-energy too); reproduce this with
``include_first_two=True``. The shipped file also stops in ``pdb.set_trace()``, and it selects
samples with E < tau_low as well, which is empty in practice because its configs set r_low = 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.distill.losses import cutmix, kd_loss, mixup
from repro.distill.methods.base import Distiller, RandomDraws
from repro.distill.temperature import TemperaturePolicy, as_policy
from repro.distill.temperature.energy import EnergySplit

Augmentation = Literal["cutmix", "mixup"]
AUGMENTATIONS: tuple[str, ...] = ("cutmix", "mixup")


class HEDA(Distiller):
    """KD plus a KD term on mixed high-energy samples (see the module docstring).

    ``seed`` seeds the CPU ``torch.Generator`` that draws lambda, boxes and pairings; with
    ``None`` it is seeded from the run's seed (``RandomDraws``). Its state is saved in
    ``state_dict``.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        ce_weight: float = 0.1,
        kd_weight: float = 0.9,
        aug_weight: float = 0.9,
        temperature: float | Mapping[str, Any] | TemperaturePolicy = 4.0,
        r_high: float = 0.5,
        augmentation: Augmentation = "cutmix",
        cutmix_alpha: float = 1.0,
        mixup_alpha: float = 0.2,
        include_first_two: bool = False,
        energy_temperature: float = 4.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(student, teacher)
        self.split = EnergySplit(energy_temperature=energy_temperature, r_low=0.0, r_high=r_high)
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}")
        self.ce_weight = ce_weight
        self.kd_weight = kd_weight
        self.aug_weight = aug_weight
        self.temperature = as_policy(temperature)
        self.augmentation: Augmentation = augmentation
        self.cutmix_alpha = cutmix_alpha
        self.mixup_alpha = mixup_alpha
        self.include_first_two = include_first_two
        self.draws = RandomDraws(seed)

    @property
    def generator(self) -> torch.Generator:
        """The mixing generator (see :class:`RandomDraws`)."""
        return self.draws.generator

    def select(self, logits_t: Tensor) -> Tensor:
        """Batch indices to mix: E > tau_high (ascending), after [0, 1] if ``include_first_two``."""
        self.split.require()
        idx = torch.nonzero(self.split.energy(logits_t) > self.split.tau_high).flatten()
        if self.include_first_two:
            first = torch.arange(min(2, logits_t.shape[0]), device=idx.device)
            idx = torch.cat([first, idx])
        return idx

    def augment(self, images: Tensor) -> Tensor:
        """Mix a sub-batch within itself with the configured augmentation and generator."""
        if self.augmentation == "cutmix":
            return cutmix(images, self.cutmix_alpha, self.generator)[0]
        return mixup(images, self.mixup_alpha, self.generator)[0]

    def forward_train(
        self, images: Tensor, targets: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits_s = self.student_logits(images)
        logits_t = self.teacher_logits(images)
        idx = self.select(logits_t)
        if idx.numel() == 0:
            loss_aug = logits_s.new_zeros(())
        else:
            mixed = self.augment(images[idx])
            aug_s, aug_t = self.student_logits(mixed), self.teacher_logits(mixed)
            loss_aug = self.aug_weight * kd_loss(aug_s, aug_t, self.temperature(aug_s, aug_t))
        t = self.temperature(logits_s, logits_t)
        return logits_s, {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_s, targets),
            "loss_kd": self.kd_weight * kd_loss(logits_s, logits_t, t),
            "loss_aug": loss_aug,
        }


METHOD = HEDA
