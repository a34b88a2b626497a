"""CSKD (Ham et al., arXiv 2311.14307): cosine similarity per class over the batch, and CSWT.

P_s, P_t are the B x C tempered-softmax predictions of student and teacher. The paper's loss
compares their **columns** (each class over the samples of the batch):

    L_cs = 1 - (1/C) sum_j cos(P_s[:, j], P_t[:, j])

and CSWT (cosine-similarity weighted temperature) gives each sample its own temperature, lower
where the student already agrees with the teacher. ``class_cosine_loss`` + ``cswt_temperatures``
is the paper-level method (the default).

There is no official code. The only implementation (third-party, ``llieeai/lud``
``mdistiller/distillers/CSKD.py``) adds, and these are offered here as separate terms for named
variants: a T^2 factor (``t2_scale=True``; (mean_i T_i)^2 for CSWT temperatures) with weight
alpha = 2; a class-correlation term on P^T P and a batch-correlation term on P P^T
(``class_correlation_loss``, ``batch_correlation_loss``, not T^2-scaled in that code); and
weighting of the weak-view terms by the fraction of samples (classes) whose teacher confidence
is at most the batch median (``median_confidence_fraction``, ``class_confidence_fraction``).
Its cosine takes |<a, b>|, which is the same for probabilities (non-negative entries).
"""

from __future__ import annotations

import torch
from torch import Tensor

from repro.distill.losses.similarity import cosine, t2_factor, tempered_softmax

#: CSWT's temperature range (``CSKD.CSWT.LOW_T`` / ``HIGH_T`` of the third-party configs).
CSWT_T_MIN, CSWT_T_MAX = 2.0, 6.0


def class_cosine_loss(
    logits_s: Tensor, logits_t: Tensor, temperature: float | Tensor, *, t2_scale: bool = False
) -> Tensor:
    """1 - mean_j cos(P_s[:, j], P_t[:, j]): cosine per class over the batch, a scalar.

    ``temperature`` is a float or a per-sample (B,) tensor (row i softmaxed at T_i, e.g. from
    ``cswt_temperatures``). ``t2_scale`` multiplies by T^2, or by (mean_i T_i)^2 for per-sample
    temperatures, as the third-party code does (its ``cs_loss`` / ``cs_loss_mat``, which also
    multiply by alpha = 2; pass that as the method's weight). The paper-level loss has no factor.
    The result depends on the batch size B (the length of the compared vectors).
    """
    p_s = tempered_softmax(logits_s, temperature)
    p_t = tempered_softmax(logits_t, temperature)
    loss = 1.0 - cosine(p_s, p_t, dim=0).mean()
    return loss * t2_factor(temperature) if t2_scale else loss


def row_cosine(logits_s: Tensor, logits_t: Tensor) -> Tensor:
    """Per-sample cos(softmax(z_s,i), softmax(z_t,i)) at T = 1 on detached logits, shape (B,)."""
    p_s = torch.softmax(logits_s.detach(), dim=1)
    p_t = torch.softmax(logits_t.detach(), dim=1)
    return cosine(p_s, p_t, dim=1)


def cswt_temperatures(
    logits_s: Tensor,
    logits_t: Tensor,
    t_min: float = CSWT_T_MIN,
    t_max: float = CSWT_T_MAX,
    min_span: float = 1e-6,
) -> Tensor:
    """CSWT: T_i = t_min + (t_max - t_min) (s_max - s_i) / (s_max - s_min), shape (B,), detached.

    s_i = ``row_cosine`` (student-teacher cosine of sample i at T = 1); s_min and s_max are taken
    within the batch, so the most similar sample gets t_min and the least similar t_max. When
    s_max - s_min <= ``min_span`` (all similarities equal up to float rounding, or a batch of
    one) the formula is 0/0; every sample then gets the midpoint (t_min + t_max) / 2, so losses
    and gradients stay finite. (The third-party code divides by zero there and gets NaN.)
    """
    s = row_cosine(logits_s, logits_t)
    s_max, s_min = s.max(), s.min()
    span = s_max - s_min
    degenerate = span <= min_span
    frac = torch.where(degenerate, torch.full_like(s, 0.5), (s_max - s) / span.clamp_min(min_span))
    return t_min + (t_max - t_min) * frac


def _gram_cosine_loss(p_s: Tensor, p_t: Tensor, classes: bool) -> Tensor:
    """1 - mean_rows cos(G_s, G_t) with G = P^T P (classes) or P P^T (samples)."""
    g_s = p_s.T @ p_s if classes else p_s @ p_s.T
    g_t = p_t.T @ p_t if classes else p_t @ p_t.T
    return 1.0 - cosine(g_s, g_t, dim=1).mean()


def class_correlation_loss(
    logits_s: Tensor, logits_t: Tensor, temperature: float | Tensor
) -> Tensor:
    """Third-party extra term: 1 - mean_i cos(G_s[i], G_t[i]) over the rows of G = P^T P (C x C).

    Unscaled (no T^2), as in the third-party ``cc_loss`` / ``cc_loss_mat``; there it is used at
    T = 4 and at the CSWT temperatures, and weighted by ``class_confidence_fraction``.
    """
    p_s = tempered_softmax(logits_s, temperature)
    p_t = tempered_softmax(logits_t, temperature)
    return _gram_cosine_loss(p_s, p_t, classes=True)


def batch_correlation_loss(
    logits_s: Tensor, logits_t: Tensor, temperature: float | Tensor
) -> Tensor:
    """Third-party extra term: 1 - mean_i cos(G_s[i], G_t[i]) over the rows of G = P P^T (B x B).

    Unscaled (no T^2), as in the third-party ``bc_loss`` / ``bc_loss_mat``; there it is used at
    T = 4 and at the CSWT temperatures, and weighted by ``median_confidence_fraction``.
    """
    p_s = tempered_softmax(logits_s, temperature)
    p_t = tempered_softmax(logits_t, temperature)
    return _gram_cosine_loss(p_s, p_t, classes=False)


def _fraction_at_most_median(values: Tensor) -> Tensor:
    """Fraction of entries <= their median (linear interpolation, like ``np.percentile(_, 50)``)."""
    v = values.detach().flatten()
    return (v <= torch.quantile(v, 0.5)).to(v.dtype).mean()


def median_confidence_fraction(logits_t: Tensor) -> Tensor:
    """Fraction of samples whose teacher max-probability (T = 1) is <= the batch median.

    The third-party code multiplies the weak-view column-cosine and batch-correlation terms by
    this mask's mean (it is 0.5 for an even batch of distinct confidences). A detached scalar.
    """
    return _fraction_at_most_median(torch.softmax(logits_t.detach(), dim=1).amax(dim=1))


def class_confidence_fraction(logits_t: Tensor) -> Tensor:
    """Fraction of classes whose summed teacher probability (T = 1) is <= the median over classes.

    The third-party code multiplies the weak-view class-correlation term by it. A detached scalar.
    """
    return _fraction_at_most_median(torch.softmax(logits_t.detach(), dim=1).sum(dim=0))
