"""``r2kd``: correlation-distance KD with a pruned-blend teacher and an augmented copy
(Kim, Ham, Cho, Kim; IEEE TKDE 2024, arXiv 2311.13934; official code ``Seonghak35/R2KD``).

    L = ce_weight CE(z_s, y) + D(z_s, z~_t) + aug_weight D(z_s', z~_t')   (no CE on the copy)
    D = value_weight L_v + rank_weight L_r

z~_t = w teacher(x) + (1 - w) pruned(x) is the teacher blended with an L1-pruned copy of itself
(``repro.distill.pruning``: 10 % of every Conv2d/Linear weight per layer, once before training,
w = 0.7; ``prune: false`` uses the teacher alone); x' is an augmented copy of the batch, scored
by the same blended teacher. L_v is the correlation distance over rows (per sample) and columns
(per class) of the tempered softmaxes, T^2-scaled; L_r the Spearman distance per sample
(``repro.distill.losses.correlation``; lambda_v = lambda_r = 2, T = 4).

Paper vs official code (defaults are the paper's reading; the code's behaviour is an option):

- ``form``: "correlation distance" is the Pearson form (default); the code's uncentred
  |cosine| is ``form: cosine``.
- ``rank``: ``hard`` is the code's double-argsort Spearman term, which has **no gradient** (it
  shows in the logged loss only, so training equals ``rank: off``); ``soft`` is a
  differentiable rank term (sigmoid ranks of the student, ``rank_tau``); ``off`` drops it.
- ``pruned_bn``: the pruned copy runs in eval mode (default); the code runs its BatchNorm in
  train mode (``pruned_bn: train``: batch statistics, running statistics drifting).
- ``augmentation``: ``none`` (the tables' plain "R2KD" column; the code has no such choice and
  defaults to cutmix), ``cutmix`` (Beta(1, 1)), ``mixup`` (Beta(0.2, 0.2)), ``cutout``
  (``cutout_size`` 8 px CIFAR, 16 Tiny-ImageNet), ``autoaugment`` (``autoaugment_policy``
  cifar10 / imagenet), ``cutmixpick``. Cutout and AutoAugment draw per image (``aug_per:
  sample``, their definition); the code draws once per batch (``aug_per: batch``).
  CutMixPick follows Wang et al. (NeurIPS 2022): ``pick_runs`` = 2 CutMix runs, the ``pick``
  (default: batch size) candidates of highest teacher entropy on the mixed images; the code
  runs CutMix once, keeps 64 and ranks by the unmixed images' entropy (``pick_runs: 1, pick:
  64, pick_entropy: clean``), which at batch size 64 is plain CutMix.

Every random draw of the augmented copy comes from the method's own generator, seeded from the
run's seed and saved in checkpoints (``RandomDraws``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.core import ReproError
from repro.distill.augment import (
    AUGMENTATIONS,
    PER,
    EntropyOn,
    Per,
    autoaugment_normalised,
    cutmixpick,
    cutout,
)
from repro.distill.losses.correlation import (
    FORMS,
    RANK_WEIGHT,
    RANKINGS,
    TEMPERATURE,
    VALUE_WEIGHT,
    Form,
    rank_loss,
    value_loss,
)
from repro.distill.losses.functional import cutmix, mixup
from repro.distill.methods.base import Distiller, RandomDraws
from repro.distill.pruning import (
    BLEND_WEIGHT,
    PRUNE_RATE,
    PRUNED_BN,
    BlendedTeacher,
    PrunedBN,
    prunable_layers,
)
from repro.distill.temperature import TemperaturePolicy, as_policy

RankMode = Literal["off", "hard", "soft"]
RANK_MODES: tuple[str, ...] = ("off", *RANKINGS)
Augmentation = Literal["none", "cutmix", "mixup", "cutout", "autoaugment", "cutmixpick"]
R2KD_AUGMENTATIONS: tuple[str, ...] = ("none", *AUGMENTATIONS)


def _choice(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ReproError(f"r2kd: {name} must be one of {', '.join(allowed)}; got {value!r}")


class R2KD(Distiller):
    """Correlation and rank distances to a pruned-blend teacher, on the batch and on an
    augmented copy (see the module docstring)."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        ce_weight: float = 1.0,
        value_weight: float = VALUE_WEIGHT,
        rank_weight: float = RANK_WEIGHT,
        temperature: float | Mapping[str, Any] | TemperaturePolicy = TEMPERATURE,
        form: Form = "pearson",
        rank: RankMode = "hard",
        rank_tau: float = 0.1,
        prune: bool = True,
        prune_rate: float = PRUNE_RATE,
        blend_weight: float = BLEND_WEIGHT,
        pruned_bn: PrunedBN = "eval",
        augmentation: Augmentation = "none",
        aug_weight: float = 1.0,
        aug_per: Per = "sample",
        cutmix_alpha: float = 1.0,
        mixup_alpha: float = 0.2,
        cutout_size: int = 8,
        autoaugment_policy: str = "cifar10",
        pick: int | None = None,
        pick_runs: int = 2,
        pick_entropy: EntropyOn = "mixed",
        seed: int | None = None,
    ) -> None:
        _choice(form, FORMS, "form")
        _choice(rank, RANK_MODES, "rank")
        _choice(augmentation, R2KD_AUGMENTATIONS, "augmentation")
        _choice(aug_per, PER, "aug_per")
        _choice(pruned_bn, PRUNED_BN, "pruned_bn")
        if teacher is not None and prune:
            teacher = BlendedTeacher(
                teacher, weight=blend_weight, rate=prune_rate, pruned_bn=pruned_bn
            )
        super().__init__(student, teacher)
        self.ce_weight = ce_weight
        self.value_weight = value_weight
        self.rank_weight = rank_weight
        self.temperature = as_policy(temperature)
        self.form: Form = form
        self.rank: RankMode = rank
        self.rank_tau = rank_tau
        self.prune = prune
        self.augmentation: Augmentation = augmentation
        self.aug_weight = aug_weight
        self.aug_per: Per = aug_per
        self.cutmix_alpha = cutmix_alpha
        self.mixup_alpha = mixup_alpha
        self.cutout_size = cutout_size
        self.autoaugment_policy = autoaugment_policy
        self.pick = pick
        self.pick_runs = pick_runs
        self.pick_entropy: EntropyOn = pick_entropy
        self.draws = RandomDraws(seed)

    # -- pieces ------------------------------------------------------------------------------
    def distances(
        self, logits_s: Tensor, logits_t: Tensor, weight: float = 1.0, suffix: str = ""
    ) -> dict[str, Tensor]:
        """``weight`` x (lambda_v L_v, lambda_r L_r) of one view, named ``loss_value<suffix>``
        and ``loss_rank<suffix>`` (no rank entry with ``rank: off``)."""
        t = self.temperature(logits_s, logits_t)
        value = value_loss(logits_s, logits_t, t, form=self.form)
        out = {f"loss_value{suffix}": weight * self.value_weight * value}
        if self.rank != "off":
            rank = rank_loss(logits_s, logits_t, t, ranking=self.rank, tau=self.rank_tau)
            out[f"loss_rank{suffix}"] = weight * self.rank_weight * rank
        return out

    def augment(self, images: Tensor, logits_t: Tensor) -> tuple[Tensor, Tensor | None]:
        """The augmented copy of a normalised batch, and its teacher logits when they were
        computed on the way (CutMixPick on mixed images), else None."""
        g = self.draws.generator
        name = self.augmentation
        if name == "cutmix":
            return cutmix(images, self.cutmix_alpha, g)[0], None
        if name == "mixup":
            return mixup(images, self.mixup_alpha, g)[0], None
        if name == "cutout":
            return cutout(images, g, size=self.cutout_size, per=self.aug_per), None
        if name == "autoaugment":
            mean, std = self.require_normalization()
            out = autoaugment_normalised(
                images, g, mean=mean, std=std, policy=self.autoaugment_policy, per=self.aug_per
            )
            return out, None
        return cutmixpick(
            images, g, teacher=self.teacher_logits, pick=self.pick or images.shape[0],
            alpha=self.cutmix_alpha, entropy_on=self.pick_entropy, clean_logits=logits_t,
            runs=self.pick_runs, return_logits=True,
        )  # fmt: skip

    def forward_train(
        self, images: Tensor, targets: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits_s = self.student_logits(images)
        logits_t = self.teacher_logits(images)
        losses = {"loss_ce": self.ce_weight * F.cross_entropy(logits_s, targets)}
        losses.update(self.distances(logits_s, logits_t))
        if self.augmentation != "none":
            aug, aug_t = self.augment(images, logits_t)
            aug_s = self.student_logits(aug)
            if aug_t is None:
                aug_t = self.teacher_logits(aug)
            losses.update(self.distances(aug_s, aug_t, self.aug_weight, "_aug"))
        return logits_s, losses

    @torch.no_grad()
    def prepared(self) -> dict[str, float]:
        """The fraction of the pruned copy's Conv2d/Linear weights that are zero (the
        configured rate, up to rounding per layer); empty without pruning."""
        out = super().prepared()
        if isinstance(self.teacher, BlendedTeacher):
            weights = [m.weight for m in prunable_layers(self.teacher.pruned)]
            zeros = sum(int((w == 0).sum()) for w in weights)
            out["pruned_fraction"] = zeros / sum(w.numel() for w in weights)
        return out


METHOD = R2KD
