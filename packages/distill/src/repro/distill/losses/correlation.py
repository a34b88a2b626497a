"""R2KD (Kim, Ham, Cho, Kim; IEEE TKDE 2024): correlation distance and rank distance.

P_s = softmax(z_s / T), P_t = softmax(z_t / T), both B x C (T = 4 in the official code; the
teacher logits are those of the pruned-blend teacher, see ``repro.distill.pruning``).

Value term (``value_loss``), with corr a correlation along rows (per sample, over classes) and
columns (per class, over the batch):

    L_v / lambda_v = T^2 [(1 - mean_i corr(P_s[i, :], P_t[i, :])) + (1 - mean_j corr(P_s[:, j],
    P_t[:, j]))],  lambda_v = 2.

``form="pearson"`` (default: the paper says "correlation distance"; not known whether it means
Pearson) mean-centres each vector before the cosine; ``form="cosine"`` is the official code's
uncentred |cosine| ("Eisen" correlation).

Rank term (``rank_loss``): L_r / lambda_r = 1 - mean_i rho_i, rho_i the Spearman correlation of
row i of P_s and P_t, lambda_r = 2, no T^2. ``ranking="hard"`` is the official double-argsort
ranks: exact, but argsort has no gradient, so the term is a constant to the optimiser (it only
shows in the logged loss). ``ranking="soft"`` ranks the student's row with sigmoids (see
``soft_ranks``) and so does pass a gradient; it approaches the hard term as tau -> 0.

The weights lambda_v, lambda_r are left to the method (``VALUE_WEIGHT``, ``RANK_WEIGHT``).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from repro.core import ReproError
from repro.distill.losses.similarity import (
    cosine,
    t2_factor,
    temperature_column,
    tempered_softmax,
)

Form = Literal["pearson", "cosine"]
FORMS: tuple[str, ...] = ("pearson", "cosine")
Ranking = Literal["hard", "soft"]
RANKINGS: tuple[str, ...] = ("hard", "soft")

#: lambda_v, lambda_r and T of the official code (``CFG.R2KD``).
VALUE_WEIGHT, RANK_WEIGHT, TEMPERATURE = 2.0, 2.0, 4.0


def _check(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ReproError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def correlation(a: Tensor, b: Tensor, dim: int, form: Form = "pearson") -> Tensor:
    """Correlation of a and b along ``dim``: Pearson (centred cosine) or the uncentred |cosine|.

    A vector that is constant along ``dim`` (e.g. a column of a batch of one) has Pearson
    correlation 0 here (the cosine's eps), with finite gradients.
    """
    _check(form, FORMS, "form")
    if form == "pearson":
        return cosine(a - a.mean(dim, keepdim=True), b - b.mean(dim, keepdim=True), dim)
    return cosine(a, b, dim, absolute=True)


def correlation_distance(a: Tensor, b: Tensor, dim: int, form: Form = "pearson") -> Tensor:
    """1 - mean correlation along ``dim`` (dim=1: per row; dim=0: per column), a scalar."""
    return 1.0 - correlation(a, b, dim, form).mean()


def value_loss(
    logits_s: Tensor,
    logits_t: Tensor,
    temperature: float | Tensor = TEMPERATURE,
    *,
    form: Form = "pearson",
) -> Tensor:
    """T^2 [correlation distance over rows + over columns] of the tempered softmaxes (no lambda).

    A per-sample (B,) temperature softmaxes row i at T_i and scales by (mean_i T_i)^2.
    """
    p_s = tempered_softmax(logits_s, temperature)
    p_t = tempered_softmax(logits_t, temperature)
    rows = correlation_distance(p_s, p_t, dim=1, form=form)
    cols = correlation_distance(p_s, p_t, dim=0, form=form)
    return t2_factor(temperature) * (rows + cols)


def hard_ranks(x: Tensor) -> Tensor:
    """Ranks 1..C of each row (ascending; ties broken by position), float, no gradient.

    The official code also divides by C(C+1)/2; a row-wise scale cancels in the correlation.
    """
    return (x.argsort(dim=1).argsort(dim=1) + 1).to(x.dtype)


def soft_ranks(x: Tensor, tau: float) -> Tensor:
    """Differentiable ranks r_i = 1/2 + sum_j sigmoid((x_i - x_j) / tau) of each row, (B, C).

    The j = i term is 1/2, so without ties r -> the hard ranks 1..C as tau -> 0. The cost is
    O(C^2) per row in time and memory (a B x C x C tensor is kept for the backward pass).
    Written by hand: the maintained differentiable-sorting packages (torchsort, fast-soft-sort)
    need a compiler or are unmaintained, and this pairwise form is a few lines.
    """
    u = x / tau
    # In-place sigmoid on the fresh difference tensor: 1.7x faster than out-of-place at C=1000.
    return 0.5 + (u.unsqueeze(2) - u.unsqueeze(1)).sigmoid_().sum(dim=2)


def rank_loss(
    logits_s: Tensor,
    logits_t: Tensor,
    temperature: float | Tensor = TEMPERATURE,
    *,
    ranking: Ranking = "hard",
    tau: float = 0.1,
) -> Tensor:
    """1 - mean_i Spearman(P_s[i, :], P_t[i, :]) (no lambda, no T^2), a scalar.

    Spearman = Pearson of the ranks. ``ranking="hard"`` (official): exact ranks by double
    argsort (of the logits: the same as of P except where float rounding makes probabilities
    tie); the result never requires grad (zero gradient to the student).
    ``ranking="soft"``: the student's ranks are ``soft_ranks`` of z_s / T (the same order and
    pairwise differences as log P_s; ``tau`` is in those units) and the teacher's are exact, so
    the student gets a gradient; as tau -> 0 it tends to the hard value. The softmax does not
    change ranks, so the hard term does not depend on T.
    """
    _check(ranking, RANKINGS, "ranking")
    r_t = hard_ranks(logits_t.detach())
    if ranking == "hard":
        r_s = hard_ranks(logits_s.detach())
    else:
        r_s = soft_ranks(logits_s / temperature_column(temperature, logits_s), tau)
        r_t = r_t.to(r_s.dtype)
    return correlation_distance(r_s, r_t, dim=1, form="pearson")
