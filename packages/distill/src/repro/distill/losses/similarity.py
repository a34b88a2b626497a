"""Shared pieces of the batch-level similarity losses (CSKD, R2KD): tempered softmax and cosine.

A temperature is a float or a per-sample tensor of shape (B,): row i is softmaxed at T_i. The
T^2 gradient compensation of a batch-level loss (one value for the whole batch, so there is no
per-sample T_i^2 to weight) is (mean_i T_i)^2, as in the third-party CSKD code.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Added to the product of the norms in every cosine, as in both papers' code.
EPS = 1e-8


def temperature_column(temperature: float | Tensor, logits: Tensor) -> Tensor:
    """Temperature as a (B, 1) or (1, 1) tensor on the logits' device and dtype."""
    t = torch.as_tensor(temperature, dtype=logits.dtype, device=logits.device)
    if t.dim() == 0:
        return t.reshape(1, 1)
    if t.shape != (logits.shape[0],):
        n = logits.shape[0]
        raise ValueError(f"per-sample temperature must have shape ({n},), got {tuple(t.shape)}")
    return t.reshape(-1, 1)


def tempered_softmax(logits: Tensor, temperature: float | Tensor) -> Tensor:
    """softmax(z_i / T_i) per row, shape (B, C)."""
    return torch.softmax(logits / temperature_column(temperature, logits), dim=1)


def t2_factor(temperature: float | Tensor) -> float | Tensor:
    """T^2 for a float T, (mean_i T_i)^2 for a per-sample tensor (a 0-dim tensor, not detached)."""
    if isinstance(temperature, Tensor):
        return temperature.mean().square()
    return float(temperature) ** 2


def cosine(a: Tensor, b: Tensor, dim: int, absolute: bool = False, eps: float = EPS) -> Tensor:
    """<a, b> / (|a| |b| + eps) along ``dim``; ``absolute`` takes |<a, b>| (the papers' code).

    The eps is added to the product of the norms (not a clamp), so a zero vector gives a cosine
    of 0 and finite gradients.
    """
    dot = (a * b).sum(dim)
    if absolute:
        dot = dot.abs()
    return dot / (a.norm(dim=dim) * b.norm(dim=dim) + eps)
