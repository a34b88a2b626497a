"""``cskd``: cosine-similarity KD over batch predictions (Ham et al., arXiv 2311.14307).

Paper-level loss (the default): L = ce_weight * CE + kd_weight * L_cs, with
L_cs = 1 - (1/C) sum_j cos(P_s[:, j], P_t[:, j]) between the **columns** of the B x C tempered
softmax predictions (each class over the samples of the batch). The temperature is a policy: a
number (fixed T, default 4) or ``{policy: cswt}`` (CSWT, per-sample T_i from the student-teacher
cosine similarity, ``repro.distill.temperature.cswt``). ``base_temperature`` adds a second
column term at that fixed T, so ``temperature: {policy: cswt}, base_temperature: 4`` is
L_cs(4) + L_cs(CSWT): the "fixed-temperature softmax plus adaptive-temperature softmax" the
reviews describe, which the third-party code also computes.

There is no official code. The third-party implementation (``llieeai/lud``, MLKD-based) adds
terms that are arguments here, so each is a named variant in the config:

- ``t2_scale``: multiply each column term by T^2 ((mean_i T_i)^2 for CSWT); that code also
  multiplies by alpha = 2 (give it as ``kd_weight: 2``);
- ``class_correlation_weight`` / ``batch_correlation_weight``: 1 - cos between the rows of
  P^T P (C x C) and of P P^T (B x B), at every temperature of the loss, unscaled;
- ``confidence_mask``: the column and batch terms are multiplied by the fraction of samples
  whose teacher max-probability is at most the batch median, the class term by the fraction
  of classes at most their median (both about 0.5);
- ``strong_view``: a second view of the batch with RandAugment(``strong_ops``,
  ``strong_magnitude``) (MLKD's strong view; here applied to the weak view's crop, in pixel
  space), with its own CE and the column terms, unmasked, **at the weak view's temperatures**
  (the code computes CSWT's T_i once, from the weak view, and uses them on both views); the
  correlation terms are the weak view's only (the code adds none on the strong view).

With all of these (variant ``cskd_lud``) the total equals that code's loss, value and gradients
(``tests/test_cskd_r2kd_methods.py``), except in a batch whose similarities are all equal,
where CSWT gives the midpoint and the code NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from repro.distill.augment import in_pixels, randaugment
from repro.distill.losses.cosine import (
    batch_correlation_loss,
    class_confidence_fraction,
    class_correlation_loss,
    class_cosine_loss,
    median_confidence_fraction,
)
from repro.distill.methods.base import Distiller, RandomDraws
from repro.distill.temperature import TemperaturePolicy, as_policy


class CSKD(Distiller):
    """Column cosine KD with a temperature policy; defaults: the paper-level loss at T = 4,
    CE 1.0 / KD 1.0 (the third-party code's weights), no extra terms."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        temperature: float | Mapping[str, Any] | TemperaturePolicy = 4.0,
        base_temperature: float | None = None,
        ce_weight: float = 1.0,
        kd_weight: float = 1.0,
        t2_scale: bool = False,
        class_correlation_weight: float = 0.0,
        batch_correlation_weight: float = 0.0,
        confidence_mask: bool = False,
        strong_view: bool = False,
        strong_ops: int = 2,
        strong_magnitude: int = 10,
        seed: int | None = None,
    ) -> None:
        super().__init__(student, teacher)
        self.temperature = as_policy(temperature)
        self.base_temperature = None if base_temperature is None else float(base_temperature)
        self.ce_weight = ce_weight
        self.kd_weight = kd_weight
        self.t2_scale = t2_scale
        self.class_correlation_weight = class_correlation_weight
        self.batch_correlation_weight = batch_correlation_weight
        self.confidence_mask = confidence_mask
        self.strong_view = strong_view
        self.strong_ops = strong_ops
        self.strong_magnitude = strong_magnitude
        self.draws = RandomDraws(seed)

    def temperatures(self, logits_s: Tensor, logits_t: Tensor) -> list[float | Tensor]:
        """The temperatures of the loss's terms: the policy's, then ``base_temperature``."""
        temps = [self.temperature(logits_s, logits_t)]
        if self.base_temperature is not None:
            temps.append(self.base_temperature)
        return temps

    def column_terms(
        self, logits_s: Tensor, logits_t: Tensor, temps: list[float | Tensor]
    ) -> Tensor:
        """kd_weight * sum over ``temps`` of the column cosine (T^2-scaled with ``t2_scale``)."""
        cs = sum(class_cosine_loss(logits_s, logits_t, t, t2_scale=self.t2_scale) for t in temps)
        return self.kd_weight * cs

    def kd_terms(
        self, logits_s: Tensor, logits_t: Tensor, temps: list[float | Tensor], masked: bool
    ) -> dict[str, Tensor]:
        """The distillation terms of the (weak) view at ``temps`` (already weighted), named
        ``loss_cs``, ``loss_cc``, ``loss_bc``."""
        per_sample = median_confidence_fraction(logits_t) if masked else 1.0
        per_class = class_confidence_fraction(logits_t) if masked else 1.0
        out = {"loss_cs": per_sample * self.column_terms(logits_s, logits_t, temps)}
        if self.class_correlation_weight:
            cc = sum(class_correlation_loss(logits_s, logits_t, t) for t in temps)
            out["loss_cc"] = self.class_correlation_weight * per_class * cc
        if self.batch_correlation_weight:
            bc = sum(batch_correlation_loss(logits_s, logits_t, t) for t in temps)
            out["loss_bc"] = self.batch_correlation_weight * per_sample * bc
        return out

    def strong(self, images: Tensor) -> Tensor:
        """The strong view: RandAugment per image on the batch (in pixel space)."""
        mean, std = self.require_normalization()
        return in_pixels(
            randaugment, images, self.draws.generator, mean, std,
            num_ops=self.strong_ops, magnitude=self.strong_magnitude, per="sample",
        )  # fmt: skip

    def forward_train(
        self, images: Tensor, targets: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits_s = self.student_logits(images)
        logits_t = self.teacher_logits(images)
        losses = {"loss_ce": self.ce_weight * F.cross_entropy(logits_s, targets)}
        temps = self.temperatures(logits_s, logits_t)
        losses.update(self.kd_terms(logits_s, logits_t, temps, masked=self.confidence_mask))
        if self.strong_view:
            # the third-party code: the weak view's temperatures, the column terms only, unmasked
            strong = self.strong(images)
            strong_s, strong_t = self.student_logits(strong), self.teacher_logits(strong)
            losses["loss_ce_strong"] = self.ce_weight * F.cross_entropy(strong_s, targets)
            losses["loss_cs_strong"] = self.column_terms(strong_s, strong_t, temps)
        return logits_s, losses


METHOD = CSKD
