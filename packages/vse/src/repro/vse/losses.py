"""MHSAN's loss: VSE++ hardest-negative triplet loss plus the attention diversity penalty.

``L = L_T + lambda * (P(M) + P(Q))`` (paper eq. 3-5), with M and Q the image and text
attention maps. Choices the paper and the code leave open or disagree on:

- ``L_T`` is **summed** over the batch, as MHSAN's ``HardNegativeContrastiveLoss`` and vsepp
  do (the paper writes a mean).
- ``P(A)`` is averaged over the batch, as the code's ``DiversityLoss`` does. ``penalty="paper"``
  (default) is the squared Frobenius norm ``||A A^T - I||_F^2``; ``penalty="code"`` is the
  code's un-squared ``sqrt(||A A^T - I||_F^2 + 1e-10)``.
- The code adds the text (image) term only from epoch index 5 (20), when its encoder is
  unfrozen; a term of a frozen attention has no gradient, so adding it throughout (paper) only
  changes the logged loss value.
"""

from __future__ import annotations

import torch
from torch import Tensor

PENALTIES = ("paper", "code")
NEGATIVES = ("hardest", "all")


def triplet_loss(
    images: Tensor, texts: Tensor, margin: float = 0.2, negatives: str = "hardest"
) -> Tensor:
    """Hinge triplet loss over a batch of matching pairs (row n of each), summed over the batch,
    with ``s = images @ texts.T`` (cosine for unit-norm embeddings).

    ``negatives="hardest"`` (VSE++, MHSAN):
    ``sum_n [margin - s(n,n) + max_{m!=n} s(n,m)]_+ + [margin - s(n,n) + max_{m!=n} s(m,n)]_+``.
    ``negatives="all"`` (VSE0's sum of hinges over every m != n) is not MHSAN's loss; it is the
    warm-up VSE-infinity uses before switching to the hardest negative, because training on the
    hardest negative from random features collapses every embedding onto one point (loss stuck
    at 2 * margin per pair; seen in the quick run, whose CNN is random and frozen)."""
    scores = images @ texts.T
    diag = scores.diagonal()
    eye = torch.eye(len(scores), dtype=torch.bool, device=scores.device)
    if negatives == "hardest":
        neg = scores.masked_fill(eye, float("-inf"))
        cost_text = (margin - diag + neg.amax(dim=1)).clamp(min=0)  # image n vs captions
        cost_image = (margin - diag + neg.amax(dim=0)).clamp(min=0)  # caption n vs images
        return cost_text.sum() + cost_image.sum()
    if negatives == "all":
        cost_text = (margin - diag[:, None] + scores).clamp(min=0).masked_fill(eye, 0)
        cost_image = (margin - diag[None, :] + scores).clamp(min=0).masked_fill(eye, 0)
        return cost_text.sum() + cost_image.sum()
    raise ValueError(f"negatives must be one of {NEGATIVES}, got '{negatives}'")


def attention_penalty(attn: Tensor, kind: str = "paper") -> Tensor:
    """Batch mean of ``||A A^T - I||_F^2`` (``paper``) or of its square root (``code``);
    ``attn`` is (B, r, L)."""
    gram = attn @ attn.transpose(1, 2)
    eye = torch.eye(attn.shape[1], dtype=attn.dtype, device=attn.device)
    sq = (gram - eye).pow(2).sum(dim=(1, 2))
    if kind == "paper":
        return sq.mean()
    if kind == "code":
        return (sq + 1e-10).sqrt().mean()
    raise ValueError(f"penalty must be one of {PENALTIES}, got '{kind}'")


def mhsan_loss(
    images: Tensor,
    texts: Tensor,
    image_attn: Tensor,
    text_attn: Tensor,
    margin: float = 0.2,
    weight: float = 0.1,
    penalty: str = "paper",
    negatives: str = "hardest",
) -> dict[str, Tensor]:
    """Named terms and their total: ``loss = triplet + weight * (penalty_image + penalty_text)``."""
    terms = {
        "triplet": triplet_loss(images, texts, margin, negatives),
        "penalty_image": attention_penalty(image_attn, penalty),
        "penalty_text": attention_penalty(text_attn, penalty),
    }
    terms["loss"] = terms["triplet"] + weight * (terms["penalty_image"] + terms["penalty_text"])
    return terms
