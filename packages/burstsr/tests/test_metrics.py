"""PSNR/SSIM against hand-worked cases and scikit-image."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from repro.burstsr import metrics


def test_quantize_truncates_to_14_bits():
    x = torch.tensor([0.0, 1.0, 1.5, -0.2, 0.99999, 3.5 / 16384])
    expect = torch.tensor([0.0, 1.0, 1.0, 0.0, 16383 / 16384, 3 / 16384])
    torch.testing.assert_close(metrics.quantize(x), expect)


def test_psnr_hand_worked_and_border_ignored():
    gt = torch.full((2, 3, 100, 100), 0.25)
    pred = gt + torch.tensor([0.01, 0.1]).view(2, 1, 1, 1)
    pred[:, :, :40] = 1.0  # errors only in the ignored border
    p = metrics.psnr(pred, gt, border=40, bits=None)
    torch.testing.assert_close(p, torch.tensor([40.0, 20.0]), atol=1e-3, rtol=0)
    # with 14-bit truncation: 0.26 -> floor(0.26 * 16384) / 16384
    q = math.floor(0.26 * 16384) / 16384
    expect = 10 * math.log10(1 / (q - 0.25) ** 2)
    assert abs(metrics.psnr(pred[:1], gt[:1], border=40).item() - expect) < 1e-3


def test_ssim_matches_skimage():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 1, (3, 120, 110))
    pred = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1)
    ours = metrics.ssim(
        torch.from_numpy(pred)[None], torch.from_numpy(gt)[None], border=40, bits=None
    )
    ref = structural_similarity(
        pred[:, 40:-40, 40:-40],
        gt[:, 40:-40, 40:-40],
        channel_axis=0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    assert abs(ours.item() - ref) < 1e-6
    same = metrics.ssim(torch.from_numpy(gt)[None], torch.from_numpy(gt)[None], bits=None)
    assert abs(same.item() - 1) < 1e-9


def test_lpips_reports_why_it_is_skipped():
    lp = metrics.LPIPS()
    if lp.available:
        x = torch.rand(1, 3, 100, 100)
        assert lp(x, x).item() < 1e-6
    else:
        assert lp.reason
        with pytest.raises(Exception, match="LPIPS unavailable"):
            lp(torch.rand(1, 3, 90, 90), torch.rand(1, 3, 90, 90))


def test_too_small_image_is_a_clear_error():
    with pytest.raises(Exception, match="too small for border 40"):
        metrics.psnr(torch.rand(1, 3, 60, 60), torch.rand(1, 3, 60, 60))
