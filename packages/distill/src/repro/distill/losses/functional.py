"""Pure, vectorised loss functions and batch mixing helpers for logit distillation.

Every loss takes raw logits of shape (B, C) and returns a scalar: the mean over the batch.
A temperature is either a float or a per-sample tensor of shape (B,); each sample's term is
scaled by its own T_i^2 (Hinton et al.), which is how Energy KD / Energy DKD use them.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from scipy.special import betaincinv
from torch import Tensor

from repro.distill.losses.similarity import temperature_column

Direction = Literal["paper", "code"]
DIRECTIONS: tuple[str, ...] = ("paper", "code")


def _kl_rows(log_p_s: Tensor, log_p_t: Tensor) -> Tensor:
    """Row-wise KL(p_t || p_s) from log-probabilities, shape (B,)."""
    return F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(dim=1)


def kd_loss(logits_s: Tensor, logits_t: Tensor, temperature: float | Tensor) -> Tensor:
    """Hinton KD: mean_i T_i^2 * KL(softmax(z_t,i / T_i) || softmax(z_s,i / T_i))."""
    t = temperature_column(temperature, logits_s)
    log_p_s = F.log_softmax(logits_s / t, dim=1)
    log_p_t = F.log_softmax(logits_t / t, dim=1)
    return (_kl_rows(log_p_s, log_p_t) * t.squeeze(1) ** 2).mean()


def dkd_loss(
    logits_s: Tensor,
    logits_t: Tensor,
    target: Tensor,
    alpha: float,
    beta: float,
    temperature: float | Tensor,
) -> Tensor:
    """Decoupled KD (Zhao et al. 2022): mean_i T_i^2 * (alpha * TCKD_i + beta * NCKD_i).

    TCKD is the KL between the binary (target, non-target) distributions; NCKD is the KL over
    the non-target classes, obtained as in mdistiller by subtracting 1000 from the target logit
    (after the division by T) before the softmax. The binary log-probabilities are computed with
    logsumexp instead of log(sum(p)), which is the same value without underflow to log(0).
    """
    t = temperature_column(temperature, logits_s)
    zs, zt = logits_s / t, logits_t / t
    gt = F.one_hot(target.reshape(-1), zs.shape[1]).to(torch.bool)

    def binary(log_p: Tensor) -> Tensor:
        log_target = log_p.masked_fill(~gt, -math.inf).logsumexp(dim=1)
        log_other = log_p.masked_fill(gt, -math.inf).logsumexp(dim=1)
        return torch.stack([log_target, log_other], dim=1)

    tckd = _kl_rows(binary(F.log_softmax(zs, dim=1)), binary(F.log_softmax(zt, dim=1)))
    mask = 1000.0 * gt.to(zs.dtype)
    nckd = _kl_rows(F.log_softmax(zs - mask, dim=1), F.log_softmax(zt - mask, dim=1))
    return ((alpha * tckd + beta * nckd) * t.squeeze(1) ** 2).mean()


def energy_score(logits: Tensor, temperature: float = 4.0) -> Tensor:
    """Per-sample energy E = -T * logsumexp(z / T), shape (B,)."""
    return -temperature * torch.logsumexp(logits / temperature, dim=1)


def energy_thresholds(energies: Tensor, r_low: float, r_high: float) -> tuple[Tensor, Tensor]:
    """Global percentile thresholds (tau_low, tau_high) over all N energies.

    Energies are sorted ascending; tau_low = e[floor(N * r_low)] and
    tau_high = e[-(floor(N * r_high) + 1)], as in the official ``cal_energy`` (``int()`` floors).
    """
    e = torch.sort(energies.detach().flatten()).values
    n = e.numel()
    i_low, i_high = int(n * r_low), int(n * r_high) + 1
    if not (0 <= i_low < n and 1 <= i_high <= n):
        raise ValueError(f"rates r_low={r_low}, r_high={r_high} out of range for N={n} energies")
    return e[i_low], e[-i_high]


def per_sample_temperature(
    energy: Tensor,
    tau_low: float | Tensor,
    tau_high: float | Tensor,
    t_low: float,
    t_mid: float,
    t_high: float,
    direction: Direction = "paper",
) -> Tensor:
    """Per-sample KD temperature from the teacher energy, shape (B,).

    ``tau_low <= E <= tau_high`` gets ``t_mid``. Outside that band:
    "paper" (abstract): E < tau_low -> t_high, E > tau_high -> t_low;
    "code" (official repo): E < tau_low -> t_low, E > tau_high -> t_high.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    below, above = (t_high, t_low) if direction == "paper" else (t_low, t_high)
    temps = torch.full_like(energy, t_mid)
    temps = torch.where(energy < tau_low, torch.full_like(energy, below), temps)
    return torch.where(energy > tau_high, torch.full_like(energy, above), temps)


def sample_beta(alpha: float, generator: torch.Generator | None = None) -> float:
    """One draw of lambda ~ Beta(alpha, alpha) by inverse-CDF sampling of a seeded uniform.

    ``torch.distributions.Beta`` cannot take a ``torch.Generator``, so the uniform comes from
    ``torch.rand(generator=...)`` and scipy's regularised incomplete beta inverse maps it.
    """
    u = float(torch.rand((), generator=generator))
    return float(betaincinv(alpha, alpha, u))


def mixup(
    images: Tensor, alpha: float = 0.2, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, float]:
    """MixUp (Zhang et al.) inside a batch: lam * x + (1 - lam) * x[perm], lam ~ Beta(alpha, alpha).

    One lambda and one random permutation for the whole batch. Written in torch rather than with
    ``kornia.augmentation.RandomMixUpV2``, which draws lambda uniformly (not from Beta(0.2, 0.2))
    and cannot be driven by a ``torch.Generator``. ``generator`` must be a CPU generator (or None
    for the global RNG). Returns (mixed images, perm, lam).
    """
    lam = sample_beta(alpha, generator)
    perm = torch.randperm(images.shape[0], generator=generator).to(images.device)
    return lam * images + (1.0 - lam) * images[perm], perm, lam


def cutmix(
    images: Tensor, alpha: float = 1.0, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, float]:
    """CutMix (Yun et al.) inside a batch: paste one box of x[perm] into every image.

    lam ~ Beta(alpha, alpha); the box has sides floor(side * sqrt(1 - lam)) around a uniform
    centre and is clipped at the border, so the returned lam = 1 - box area / image area is
    recomputed after clipping. One lambda, box and permutation for the whole batch, as in the
    reference CutMix and the official HE-DA code. Written in torch rather than with
    ``kornia.augmentation.RandomCutMixV2``, which draws a lambda and box per sample and keeps the
    box inside the image (a different area distribution), and cannot take a ``torch.Generator``.
    ``generator`` must be a CPU generator (or None for the global RNG). Returns (mixed, perm, lam).
    """
    h, w = images.shape[-2:]
    lam = sample_beta(alpha, generator)
    perm = torch.randperm(images.shape[0], generator=generator).to(images.device)
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    cy = int(torch.randint(h, (), generator=generator))
    cx = int(torch.randint(w, (), generator=generator))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    mixed = images.clone()
    mixed[..., y1:y2, x1:x2] = images[perm][..., y1:y2, x1:x2]
    return mixed, perm, 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
