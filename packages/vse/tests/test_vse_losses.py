"""Triplet loss and attention penalty against explicit loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from repro.vse.losses import attention_penalty, mhsan_loss, triplet_loss


def loop_triplet(im: torch.Tensor, tx: torch.Tensor, margin: float) -> float:
    """Paper eq. 3 (summed over the batch) with explicit loops over all pairs."""
    n = len(im)
    s = [[float(im[a] @ tx[b]) for b in range(n)] for a in range(n)]
    total = 0.0
    for k in range(n):
        hardest_caption = max(s[k][m] for m in range(n) if m != k)
        hardest_image = max(s[m][k] for m in range(n) if m != k)
        total += max(0.0, margin - s[k][k] + hardest_caption)
        total += max(0.0, margin - s[k][k] + hardest_image)
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_triplet_matches_a_loop_over_pairs(seed):
    g = torch.Generator().manual_seed(seed)
    im = F.normalize(torch.randn(7, 5, generator=g, dtype=torch.float64), dim=1)
    tx = F.normalize(torch.randn(7, 5, generator=g, dtype=torch.float64), dim=1)
    assert triplet_loss(im, tx, 0.2).item() == pytest.approx(loop_triplet(im, tx, 0.2))


def test_triplet_hand_worked():
    # two pairs on the unit circle: s = [[1, 0], [0, 1]] -> every hinge is [0.2 - 1 + 0]_+ = 0
    eye = torch.eye(2)
    assert triplet_loss(eye, eye).item() == 0
    # swapped captions: s = [[0, 1], [1, 0]] -> each of the 4 hinges is 0.2 - 0 + 1 = 1.2
    assert triplet_loss(eye, eye.flip(0)).item() == pytest.approx(4.8)


def test_all_negatives_matches_a_loop_over_pairs():
    g = torch.Generator().manual_seed(3)
    im = F.normalize(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=1)
    tx = F.normalize(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=1)
    s = im @ tx.T
    expected = sum(
        max(0.0, 0.2 - float(s[k, k]) + float(s[k, m]))
        + max(0.0, 0.2 - float(s[k, k]) + float(s[m, k]))
        for k in range(6)
        for m in range(6)
        if m != k
    )
    assert triplet_loss(im, tx, 0.2, "all").item() == pytest.approx(expected)
    assert triplet_loss(im, tx, 0.2, "all") >= triplet_loss(im, tx, 0.2, "hardest")
    with pytest.raises(ValueError, match="negatives"):
        triplet_loss(im, tx, 0.2, "semi")


def loop_penalty(attn: torch.Tensor, squared: bool) -> float:
    total = 0.0
    for a in attn.tolist():
        r = len(a)
        sq = 0.0
        for p in range(r):
            for q in range(r):
                dot = sum(x * y for x, y in zip(a[p], a[q], strict=True))
                sq += (dot - (1.0 if p == q else 0.0)) ** 2
        total += sq if squared else math.sqrt(sq + 1e-10)
    return total / len(attn)


@pytest.mark.parametrize("kind", ["paper", "code"])
def test_penalty_matches_a_loop(kind):
    g = torch.Generator().manual_seed(0)
    attn = torch.softmax(torch.randn(4, 3, 6, generator=g, dtype=torch.float64), dim=-1)
    expected = loop_penalty(attn, squared=kind == "paper")
    assert attention_penalty(attn, kind).item() == pytest.approx(expected)


def test_penalty_hand_worked():
    # two heads both uniform over 2 positions: A A^T = [[.5, .5], [.5, .5]]; minus I gives
    # entries -.5, .5, .5, -.5 -> squared norm 1.0 (paper), norm 1.0 (code)
    same = torch.full((1, 2, 2), 0.5)
    assert attention_penalty(same, "paper").item() == pytest.approx(1.0)
    # one-hot heads on distinct positions: A A^T = I -> 0
    assert attention_penalty(torch.eye(3)[None], "paper").item() == 0
    # three heads on the same position: A A^T = ones(3,3) -> 6 off-diagonal ones -> 6 / sqrt 6
    one = torch.zeros(1, 3, 4)
    one[..., 0] = 1
    assert attention_penalty(one, "paper").item() == pytest.approx(6.0)
    assert attention_penalty(one, "code").item() == pytest.approx(math.sqrt(6.0))
    with pytest.raises(ValueError, match="penalty"):
        attention_penalty(one, "other")


def test_total_is_triplet_plus_weighted_penalties():
    eye = torch.eye(2)
    one = torch.zeros(2, 3, 4)
    one[..., 0] = 1
    terms = mhsan_loss(eye, eye.flip(0), one, torch.eye(3).expand(2, 3, 3), weight=0.1)
    assert terms["loss"].item() == pytest.approx(4.8 + 0.1 * (6.0 + 0.0))
