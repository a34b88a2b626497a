"""Losses and mixing helpers against independent numpy / float64 computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from repro.distill.losses import (
    cutmix,
    dkd_loss,
    energy_score,
    energy_thresholds,
    kd_loss,
    mixup,
    per_sample_temperature,
    sample_beta,
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _np_kd(zs: np.ndarray, zt: np.ndarray, temps: np.ndarray) -> float:
    """Hinton KD written from the definition, float64."""
    t = temps.reshape(-1, 1)
    ps, pt = _softmax(zs / t), _softmax(zt / t)
    kl = (pt * (np.log(pt) - np.log(ps))).sum(axis=1)
    return float((kl * temps**2).mean())


def _np_dkd(
    zs: np.ndarray, zt: np.ndarray, y: np.ndarray, alpha: float, beta: float, temps: np.ndarray
) -> float:
    """DKD from the paper: binary KL on (b_t, b_not_t) + KL of the renormalised non-target."""
    total = 0.0
    for i in range(zs.shape[0]):
        t = temps[i]
        ps, pt = _softmax(zs[i : i + 1] / t)[0], _softmax(zt[i : i + 1] / t)[0]
        bs, bt = np.array([ps[y[i]], 1 - ps[y[i]]]), np.array([pt[y[i]], 1 - pt[y[i]]])
        tckd = (bt * np.log(bt / bs)).sum()
        keep = np.arange(zs.shape[1]) != y[i]
        qs, qt = ps[keep] / ps[keep].sum(), pt[keep] / pt[keep].sum()
        nckd = (qt * np.log(qt / qs)).sum()
        total += t**2 * (alpha * tckd + beta * nckd)
    return total / zs.shape[0]


@pytest.fixture
def logits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    zs = 3 * torch.randn(6, 7, generator=g, dtype=torch.float64)
    zt = 3 * torch.randn(6, 7, generator=g, dtype=torch.float64)
    y = torch.randint(7, (6,), generator=g)
    return zs, zt, y


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_loss_matches_numpy(logits, temperature: float) -> None:
    zs, zt, _ = logits
    expected = _np_kd(zs.numpy(), zt.numpy(), np.full(6, temperature))
    assert kd_loss(zs, zt, temperature).item() == pytest.approx(expected, rel=1e-10)
    got32 = kd_loss(zs.float(), zt.float(), temperature).item()
    assert got32 == pytest.approx(expected, rel=1e-5)


def test_kd_loss_per_sample_temperature(logits) -> None:
    zs, zt, _ = logits
    temps = torch.tensor([2.0, 4.0, 6.0, 4.0, 2.0, 6.0], dtype=torch.float64)
    loop = np.mean(
        [kd_loss(zs[i : i + 1], zt[i : i + 1], float(t)).item() for i, t in enumerate(temps)]
    )
    assert kd_loss(zs, zt, temps).item() == pytest.approx(loop, rel=1e-10)
    assert kd_loss(zs, zt, temps).item() == pytest.approx(
        _np_kd(zs.numpy(), zt.numpy(), temps.numpy()), rel=1e-10
    )
    with pytest.raises(ValueError, match="shape"):
        kd_loss(zs, zt, temps[:3])


def test_kd_loss_zero_for_identical_logits(logits) -> None:
    zs, _, _ = logits
    assert kd_loss(zs, zs.clone(), 4.0).item() == pytest.approx(0.0, abs=1e-12)
    assert kd_loss(zs, zs.clone(), torch.full((6,), 3.0, dtype=torch.float64)).abs() < 1e-12


def test_kd_loss_gradient_reaches_student_only(logits) -> None:
    zs, zt, _ = logits
    zs = zs.clone().requires_grad_(True)
    loss = kd_loss(zs, zt, 4.0)
    loss.backward()
    assert zs.grad is not None and zs.grad.abs().sum() > 0
    assert zt.grad is None and not zt.requires_grad
    # d/dz_s of T^2 KL / B is T (p_s - p_t) / B: an independent check of the gradient.
    ps, pt = torch.softmax(zs.detach() / 4, 1), torch.softmax(zt / 4, 1)
    torch.testing.assert_close(zs.grad, 4.0 * (ps - pt) / zs.shape[0])


@pytest.mark.parametrize("alpha,beta", [(1.0, 8.0), (0.5, 2.0)])
def test_dkd_loss_matches_paper_formulation(logits, alpha: float, beta: float) -> None:
    zs, zt, y = logits
    temps = np.array([2.0, 4.0, 6.0, 4.0, 2.0, 6.0])
    # Scalar T, float64: the -1000 target masking is exact here (exp(-1000) underflows to 0).
    expected = _np_dkd(zs.numpy(), zt.numpy(), y.numpy(), alpha, beta, np.full(6, 4.0))
    assert dkd_loss(zs, zt, y, alpha, beta, 4.0).item() == pytest.approx(expected, rel=1e-9)
    # Per-sample T.
    expected_t = _np_dkd(zs.numpy(), zt.numpy(), y.numpy(), alpha, beta, temps)
    got_t = dkd_loss(zs, zt, y, alpha, beta, torch.from_numpy(temps)).item()
    assert got_t == pytest.approx(expected_t, rel=1e-9)
    got32 = dkd_loss(zs.float(), zt.float(), y, alpha, beta, torch.from_numpy(temps).float())
    assert got32.item() == pytest.approx(expected_t, rel=1e-4)


def test_dkd_loss_zero_for_identical_logits_and_gradient(logits) -> None:
    zs, _, y = logits
    assert dkd_loss(zs, zs.clone(), y, 1.0, 8.0, 4.0).item() == pytest.approx(0.0, abs=1e-12)
    zs_ = zs.clone().requires_grad_(True)
    dkd_loss(zs_, zs + 1.0 * torch.arange(7.0, dtype=zs.dtype), y, 1.0, 8.0, 4.0).backward()
    assert zs_.grad is not None and torch.isfinite(zs_.grad).all() and zs_.grad.abs().sum() > 0


def test_energy_score_hand_cases() -> None:
    two = torch.zeros(1, 2, dtype=torch.float64)
    assert energy_score(two, temperature=1.0).item() == pytest.approx(-math.log(2))
    z = np.array([[1.0, -2.0, 3.5], [10.0, 0.0, -10.0]])
    expected = -4.0 * np.log(np.exp(z / 4.0).sum(axis=1))
    np.testing.assert_allclose(energy_score(torch.from_numpy(z)).numpy(), expected, rtol=1e-12)
    # Large logits: logsumexp is stable where the naive formula overflows in float32.
    big = torch.tensor([[400.0, 0.0]])
    assert energy_score(big).item() == pytest.approx(-400.0 - 4 * math.log1p(math.exp(-100)))


def test_energy_thresholds_hand_worked() -> None:
    e = torch.tensor([9.0, 3.0, 7.0, 1.0, 5.0, 0.0, 8.0, 2.0, 6.0, 4.0])  # sorted: 0..9
    low, high = energy_thresholds(e, 0.2, 0.2)
    assert (low.item(), high.item()) == (2.0, 7.0)  # e[2], e[-3]
    low, high = energy_thresholds(e, 0.3, 0.3)
    assert (low.item(), high.item()) == (3.0, 6.0)  # e[3], e[-4]
    low, high = energy_thresholds(e, 0.25, 0.5)
    assert (low.item(), high.item()) == (2.0, 4.0)  # floor(2.5) = 2; e[-6]
    low, high = energy_thresholds(e, 0.0, 0.0)
    assert (low.item(), high.item()) == (0.0, 9.0)
    with pytest.raises(ValueError):
        energy_thresholds(e, 1.0, 0.2)


@pytest.mark.parametrize(
    "direction,expected",
    [("paper", [6.0, 4.0, 4.0, 4.0, 4.0, 2.0]), ("code", [2.0, 4.0, 4.0, 4.0, 4.0, 6.0])],
)
def test_per_sample_temperature_at_boundaries(direction: str, expected: list[float]) -> None:
    energy = torch.tensor([1.999, 2.0, 2.001, 6.999, 7.0, 7.001])
    for tau_low, tau_high in [(2.0, 7.0), (torch.tensor(2.0), torch.tensor(7.0))]:
        temps = per_sample_temperature(energy, tau_low, tau_high, 2.0, 4.0, 6.0, direction)
        assert temps.tolist() == expected
    with pytest.raises(ValueError, match="direction"):
        per_sample_temperature(energy, 2.0, 7.0, 2.0, 4.0, 6.0, "other")  # type: ignore[arg-type]


def test_sample_beta_distribution_and_seeding() -> None:
    g = torch.Generator().manual_seed(1)
    draws = np.array([sample_beta(0.2, g) for _ in range(1500)])
    assert stats.kstest(draws, stats.beta(0.2, 0.2).cdf).pvalue > 1e-3
    assert stats.kstest(draws, stats.uniform().cdf).pvalue < 1e-6
    a = sample_beta(1.0, torch.Generator().manual_seed(5))
    assert a == sample_beta(1.0, torch.Generator().manual_seed(5))


def test_mixup_is_convex_combination_of_a_permutation() -> None:
    x = torch.randn(5, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    mixed, perm, lam = mixup(x, 0.2, torch.Generator().manual_seed(3))
    assert sorted(perm.tolist()) == list(range(5)) and 0.0 <= lam <= 1.0
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    again, perm2, lam2 = mixup(x, 0.2, torch.Generator().manual_seed(3))
    assert torch.equal(again, mixed) and torch.equal(perm2, perm) and lam2 == lam


def test_cutmix_pastes_one_box_and_reports_its_area() -> None:
    # Image i is constant i, so every output pixel tells which source image it came from.
    x = torch.arange(6.0).reshape(6, 1, 1, 1).expand(6, 2, 8, 8).contiguous()
    for seed in range(20):
        mixed, perm, lam = cutmix(x, 1.0, torch.Generator().manual_seed(seed))
        from_partner = (mixed != x).any(dim=1)  # (B, H, W)
        fixed_points = perm == torch.arange(6)
        assert torch.all((mixed == x) | (mixed == x[perm]))
        for i in range(6):
            if not fixed_points[i]:
                ys, xs = torch.nonzero(from_partner[i], as_tuple=True)
                area = int(from_partner[i].sum())
                assert lam == pytest.approx(1 - area / 64)
                if area:  # a single rectangle, identical for every image
                    box = (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
                    assert area == (box[1] - box[0]) * (box[3] - box[2])
    assert torch.equal(x, torch.arange(6.0).reshape(6, 1, 1, 1).expand(6, 2, 8, 8))
