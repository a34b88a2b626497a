"""CSKD and R2KD losses against hand-worked cases and scipy / numpy formulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial import distance

from repro.core import ReproError
from repro.distill.losses.correlation import (
    correlation,
    hard_ranks,
    rank_loss,
    soft_ranks,
    value_loss,
)
from repro.distill.losses.cosine import (
    batch_correlation_loss,
    class_confidence_fraction,
    class_correlation_loss,
    class_cosine_loss,
    cswt_temperatures,
    median_confidence_fraction,
    row_cosine,
)

# scipy's cosine has no eps; ours adds 1e-8 to the norm product, so comparisons allow ~1e-6.

# Hand-worked probabilities (logits = log p, so softmax at T = 1 returns p exactly).
P_S = np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]])
P_T = np.array([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]])


def _logits(p: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.log(p))


def _softmax(z: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    z = z / np.reshape(t, (-1, 1))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def logits() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return 3 * torch.randn(8, 10, generator=g, dtype=torch.float64), 3 * torch.randn(
        8, 10, generator=g, dtype=torch.float64
    )


# ---------------------------------------------------------------- CSKD: column cosine


def test_class_cosine_hand_worked() -> None:
    # Columns: s = (2, 1)/4 vs t = (1, 1)/2 -> 3/sqrt(10); (1, 2)/4 vs (1, 1)/4 -> 3/sqrt(10);
    # (1, 1)/4 vs (1, 1)/4 -> 1.
    expected = 1 - (2 * 3 / math.sqrt(10) + 1) / 3
    got = class_cosine_loss(_logits(P_S), _logits(P_T), 1.0)
    assert got.item() == pytest.approx(expected, abs=1e-7)
    assert class_cosine_loss(_logits(P_S), _logits(P_T), 1.0, t2_scale=True).item() == (
        pytest.approx(expected, abs=1e-7)
    )


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_class_cosine_matches_scipy_per_column(logits, t: float) -> None:
    zs, zt = logits
    ps, pt = _softmax(zs.numpy(), t), _softmax(zt.numpy(), t)
    cols = [1 - distance.cosine(ps[:, j], pt[:, j]) for j in range(ps.shape[1])]
    expected = 1 - np.mean(cols)
    assert class_cosine_loss(zs, zt, t).item() == pytest.approx(expected, rel=1e-6)
    scaled = class_cosine_loss(zs, zt, t, t2_scale=True).item()
    assert scaled == pytest.approx(t**2 * expected, rel=1e-6)


def test_class_cosine_per_sample_temperature(logits) -> None:
    zs, zt = logits
    temps = np.array([2.0, 3.0, 4.0, 5.0, 6.0, 2.5, 3.5, 4.5])
    ps, pt = _softmax(zs.numpy(), temps), _softmax(zt.numpy(), temps)
    cols = [1 - distance.cosine(ps[:, j], pt[:, j]) for j in range(ps.shape[1])]
    expected = 1 - np.mean(cols)
    t = torch.from_numpy(temps)
    assert class_cosine_loss(zs, zt, t).item() == pytest.approx(expected, rel=1e-6)
    got = class_cosine_loss(zs, zt, t, t2_scale=True).item()
    assert got == pytest.approx(temps.mean() ** 2 * expected, rel=1e-6)
    with pytest.raises(ValueError, match="shape"):
        class_cosine_loss(zs, zt, t[:3])


def test_class_cosine_zero_for_identical_and_gradient_to_student_only(logits) -> None:
    zs, zt = logits
    # Not exactly 0: the cosine's eps (1e-8 added to the norm product) lowers it by ~1e-7.
    assert class_cosine_loss(zs, zs.clone(), 4.0).item() == pytest.approx(0.0, abs=1e-6)
    zs = zs.clone().requires_grad_(True)
    class_cosine_loss(zs, zt, 4.0).backward()
    assert zs.grad is not None and zs.grad.abs().sum() > 0 and zt.grad is None


# ---------------------------------------------------------------- CSKD: CSWT


def test_row_cosine_and_cswt_hand_worked() -> None:
    ps = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.8]])
    pt = np.array([[0.5, 0.5], [0.8, 0.2], [0.8, 0.2]])
    s = np.array([1.0, 0.5 / math.sqrt(0.5 * 0.68), 0.32 / 0.68])  # by hand
    np.testing.assert_allclose(row_cosine(_logits(ps), _logits(pt)).numpy(), s, rtol=1e-7)
    temps = cswt_temperatures(_logits(ps), _logits(pt)).numpy()
    expected_mid = 2 + 4 * (1 - s[1]) / (1 - s[2])
    np.testing.assert_allclose(temps, [2.0, expected_mid, 6.0], rtol=1e-7)
    temps = cswt_temperatures(_logits(ps), _logits(pt), t_min=1.0, t_max=3.0).numpy()
    np.testing.assert_allclose(temps, [1.0, 1 + 2 * (1 - s[1]) / (1 - s[2]), 3.0], rtol=1e-7)


def test_cswt_matches_numpy_on_random_logits(logits) -> None:
    zs, zt = logits
    ps, pt = _softmax(zs.numpy(), 1.0), _softmax(zt.numpy(), 1.0)
    s = np.array([1 - distance.cosine(a, b) for a, b in zip(ps, pt, strict=True)])
    expected = 2 + 4 * (s.max() - s) / (s.max() - s.min())
    np.testing.assert_allclose(cswt_temperatures(zs, zt).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("case", ["all_equal", "batch_of_one", "near_equal"])
def test_cswt_degenerate_batches_give_midpoint_and_finite_gradients(case: str) -> None:
    g = torch.Generator().manual_seed(1)
    if case == "batch_of_one":
        zs, zt = torch.randn(1, 5, generator=g), torch.randn(1, 5, generator=g)
    else:
        row_s, row_t = torch.randn(1, 5, generator=g), torch.randn(1, 5, generator=g)
        zs, zt = row_s.repeat(4, 1), row_t.repeat(4, 1)
        if case == "near_equal":  # similarities differ only by float rounding
            zs = zs + 1e-7 * torch.randn(4, 5, generator=g)
    zs.requires_grad_(True)
    temps = cswt_temperatures(zs, zt)
    assert not temps.requires_grad
    torch.testing.assert_close(temps, torch.full((zs.shape[0],), 4.0))
    loss = class_cosine_loss(zs, zt, temps, t2_scale=True)
    loss.backward()
    assert torch.isfinite(loss) and zs.grad is not None and torch.isfinite(zs.grad).all()


# ---------------------------------------------------------------- CSKD: third-party extras


def _np_gram_cos_loss(ps: np.ndarray, pt: np.ndarray, classes: bool) -> float:
    gs, gt = (ps.T @ ps, pt.T @ pt) if classes else (ps @ ps.T, pt @ pt.T)
    return 1 - np.mean([1 - distance.cosine(a, b) for a, b in zip(gs, gt, strict=True)])


def test_class_and_batch_correlation_terms_match_numpy(logits) -> None:
    zs, zt = logits
    for t in (4.0, torch.linspace(2, 6, 8, dtype=torch.float64)):
        tn = t.numpy() if isinstance(t, torch.Tensor) else t
        ps, pt = _softmax(zs.numpy(), tn), _softmax(zt.numpy(), tn)
        cc = class_correlation_loss(zs, zt, t).item()
        bc = batch_correlation_loss(zs, zt, t).item()
        assert cc == pytest.approx(_np_gram_cos_loss(ps, pt, True), abs=1e-6)
        assert bc == pytest.approx(_np_gram_cos_loss(ps, pt, False), abs=1e-6)


def test_batch_correlation_hand_worked() -> None:
    # P P^T: student [[6, 5], [5, 6]] / 16, teacher [[6, 6], [6, 6]] / 16; each row has cosine
    # (36 + 30) / (sqrt(61) sqrt(72)) with its teacher row.
    expected = 1 - 66 / math.sqrt(61 * 72)
    got = batch_correlation_loss(_logits(P_S), _logits(P_T), 1.0).item()
    assert got == pytest.approx(expected, abs=1e-7)


def test_median_confidence_fractions_hand_worked() -> None:
    # Max-probabilities 0.9, 0.5, 0.7, 0.6: the median (np.percentile 50) is 0.65 -> 2 of 4.
    p = np.array([[0.9, 0.1], [0.5, 0.5], [0.7, 0.3], [0.6, 0.4]])
    assert median_confidence_fraction(_logits(p)).item() == pytest.approx(0.5)
    p5 = np.vstack([p, [[0.55, 0.45]]])  # odd batch: median 0.6 -> 0.5, 0.55, 0.6
    assert median_confidence_fraction(_logits(p5)).item() == pytest.approx(3 / 5)
    # Class sums: (3.25, 1.75) -> median 2.5 -> one of two classes.
    assert class_confidence_fraction(_logits(p5)).item() == pytest.approx(0.5)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(7, 11, generator=g, dtype=torch.float64)
    conf = torch.softmax(z, 1).amax(1).numpy()
    sums = torch.softmax(z, 1).sum(0).numpy()
    assert median_confidence_fraction(z).item() == pytest.approx(
        np.mean(conf <= np.percentile(conf, 50))
    )
    assert class_confidence_fraction(z).item() == pytest.approx(
        np.mean(sums <= np.percentile(sums, 50))
    )


# ---------------------------------------------------------------- R2KD: value term


def test_value_loss_hand_worked() -> None:
    zs, zt = _logits(P_S), _logits(P_T)
    # Pearson rows: row 0 identical -> 1; row 1: (-1, 2, -1) vs (2, -1, -1) -> -3/6.
    # Columns of two entries: every teacher or student column pair has a constant vector -> 0.
    assert value_loss(zs, zt, 1.0).item() == pytest.approx((1 - 0.25) + 1.0, rel=1e-7)
    # Uncentred cosine rows: 1 and (2 + 2 + 1)/6; columns 3/sqrt(10), 3/sqrt(10), 1.
    expected = (1 - (1 + 5 / 6) / 2) + (1 - (6 / math.sqrt(10) + 1) / 3)
    assert value_loss(zs, zt, 1.0, form="cosine").item() == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_value_loss_matches_scipy_pearson_and_cosine(logits, t: float) -> None:
    zs, zt = logits
    ps, pt = _softmax(zs.numpy(), t), _softmax(zt.numpy(), t)
    rows = np.mean([stats.pearsonr(a, b).statistic for a, b in zip(ps, pt, strict=True)])
    cols = np.mean([stats.pearsonr(a, b).statistic for a, b in zip(ps.T, pt.T, strict=True)])
    expected = t**2 * ((1 - rows) + (1 - cols))
    assert value_loss(zs, zt, t).item() == pytest.approx(expected, rel=1e-6)
    rows = np.mean([1 - distance.cosine(a, b) for a, b in zip(ps, pt, strict=True)])
    cols = np.mean([1 - distance.cosine(a, b) for a, b in zip(ps.T, pt.T, strict=True)])
    expected = t**2 * ((1 - rows) + (1 - cols))
    assert value_loss(zs, zt, t, form="cosine").item() == pytest.approx(expected, rel=1e-6)


def test_value_loss_per_sample_temperature_and_errors(logits) -> None:
    zs, zt = logits
    temps = np.linspace(2, 6, 8)
    ps, pt = _softmax(zs.numpy(), temps), _softmax(zt.numpy(), temps)
    rows = np.mean([stats.pearsonr(a, b).statistic for a, b in zip(ps, pt, strict=True)])
    cols = np.mean([stats.pearsonr(a, b).statistic for a, b in zip(ps.T, pt.T, strict=True)])
    got = value_loss(zs, zt, torch.from_numpy(temps)).item()
    assert got == pytest.approx(temps.mean() ** 2 * (2 - rows - cols), rel=1e-6)
    with pytest.raises(ReproError, match="form"):
        value_loss(zs, zt, 4.0, form="spearman")  # type: ignore[arg-type]
    with pytest.raises(ReproError, match="ranking"):
        rank_loss(zs, zt, 4.0, ranking="fast")  # type: ignore[arg-type]


def test_correlation_is_invariant_as_documented(logits) -> None:
    zs, zt = logits
    a, b = torch.softmax(zs, 1), torch.softmax(zt, 1)
    # Pearson: invariant to an affine map of either argument; cosine only to scaling.
    torch.testing.assert_close(correlation(3 * a + 1, b, 1), correlation(a, b, 1))
    torch.testing.assert_close(correlation(3 * a, b, 1, "cosine"), correlation(a, b, 1, "cosine"))
    assert not torch.allclose(correlation(a + 1, b, 1, "cosine"), correlation(a, b, 1, "cosine"))


def test_value_loss_gradient_finite_for_batch_of_one() -> None:
    zs = torch.randn(1, 6, generator=torch.Generator().manual_seed(2), requires_grad=True)
    zt = torch.randn(1, 6, generator=torch.Generator().manual_seed(3))
    for form in ("pearson", "cosine"):
        loss = value_loss(zs, zt, 4.0, form=form)  # type: ignore[arg-type]
        (grad,) = torch.autograd.grad(loss, zs)
        assert torch.isfinite(loss) and torch.isfinite(grad).all() and grad.abs().sum() > 0


# ---------------------------------------------------------------- R2KD: rank term


def test_hard_ranks_and_rank_loss_match_scipy_spearman(logits) -> None:
    zs, zt = logits
    expected_ranks = np.vstack([stats.rankdata(r) for r in zs.numpy()])
    np.testing.assert_array_equal(hard_ranks(zs).numpy(), expected_ranks)
    ps, pt = _softmax(zs.numpy(), 4.0), _softmax(zt.numpy(), 4.0)
    rho = np.mean([stats.spearmanr(a, b).statistic for a, b in zip(ps, pt, strict=True)])
    assert rank_loss(zs, zt, 4.0).item() == pytest.approx(1 - rho, rel=1e-9)
    # The official normalisation (ranks / (C (C + 1) / 2), centred, cosine) gives the same.
    c = zs.shape[1]
    rs, rt = hard_ranks(zs) / (c * (c + 1) / 2), hard_ranks(zt) / (c * (c + 1) / 2)
    rs, rt = rs - rs.mean(1, keepdim=True), rt - rt.mean(1, keepdim=True)
    official = 1 - (torch.nn.functional.cosine_similarity(rs, rt, dim=1, eps=1e-8)).mean()
    assert rank_loss(zs, zt, 4.0).item() == pytest.approx(official.item(), rel=1e-9)


def test_hard_rank_loss_has_no_gradient(logits) -> None:
    zs, zt = logits
    zs = zs.clone().requires_grad_(True)
    hard = rank_loss(zs, zt, 4.0)
    assert not hard.requires_grad and hard.grad_fn is None
    # Adding it changes the loss value but not the gradient.
    (g_value,) = torch.autograd.grad(value_loss(zs, zt), zs)
    (g_total,) = torch.autograd.grad(value_loss(zs, zt) + 2.0 * hard, zs)
    assert torch.equal(g_value, g_total)


def test_soft_ranks_pairwise_formula_and_limit(logits) -> None:
    zs, _ = logits
    x = zs.numpy()
    tau = 0.7
    sig = 1 / (1 + np.exp(-(x[:, :, None] - x[:, None, :]) / tau))
    expected = 0.5 + sig.sum(axis=2)  # includes the j = i term sigmoid(0) = 1/2
    np.testing.assert_allclose(soft_ranks(zs, tau).numpy(), expected, rtol=1e-12)
    assert expected.sum(axis=1) == pytest.approx(np.full(8, 10 * 11 / 2))  # ranks sum C(C+1)/2
    np.testing.assert_allclose(soft_ranks(zs, 1e-4).numpy(), hard_ranks(zs).numpy(), atol=1e-6)


def test_soft_rank_loss_tends_to_hard_and_has_a_gradient(logits) -> None:
    zs, zt = logits
    hard = rank_loss(zs, zt, 4.0).item()
    assert rank_loss(zs, zt, 4.0, ranking="soft", tau=1e-5).item() == pytest.approx(hard, rel=1e-9)
    soft = rank_loss(zs, zt, 4.0, ranking="soft", tau=0.1)
    assert abs(soft.item() - hard) < 0.1
    zs = zs.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(rank_loss(zs, zt, 4.0, ranking="soft", tau=0.3), zs)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # A gradient step lowers the soft rank distance.
    with torch.no_grad():
        stepped = zs - 0.5 * grad / grad.norm()
    after = rank_loss(stepped, zt, 4.0, ranking="soft", tau=0.3).item()
    assert after < rank_loss(zs, zt, 4.0, ranking="soft", tau=0.3).item()


def test_soft_rank_loss_gradcheck() -> None:
    g = torch.Generator().manual_seed(4)
    zs = torch.randn(2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    zt = torch.randn(2, 5, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: rank_loss(z, zt, 2.0, ranking="soft", tau=0.5), (zs,))
