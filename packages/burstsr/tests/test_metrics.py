"""PSNR/SSIM against hand-worked cases and scikit-image."""

import math
import warnings

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from repro.burstsr import metrics
from repro.core import ReproError


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


def _skimage_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    return structural_similarity(
        pred,
        gt,
        channel_axis=0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )


@pytest.mark.parametrize("scale", [1.0, 0.01])  # bright and dark (linear RAW-like) images
def test_ssim_equals_skimage(scale):
    rng = np.random.default_rng(0)
    for k, (h, w) in enumerate([(120, 110), (97, 131)]):
        gt = rng.uniform(0, scale, (3, h, w))
        pred = np.clip(gt + rng.normal(0, 0.1 * scale, gt.shape), 0, 1)
        ours = metrics.ssim(
            torch.from_numpy(pred)[None], torch.from_numpy(gt)[None], border=40, bits=None
        )
        ref = _skimage_ssim(pred[:, 40:-40, 40:-40], gt[:, 40:-40, 40:-40])
        assert ours.dtype == torch.float64 and abs(ours.item() - ref) < 1e-9, (k, ours, ref)
    # float32 predictions with the 14-bit truncation: skimage on the truncated values
    pred32 = torch.from_numpy(pred).float()[None]
    quant = np.floor(np.clip(pred32[0].double().numpy(), 0, 1) * 16384) / 16384
    ours = metrics.ssim(pred32, torch.from_numpy(gt)[None], border=40)
    assert abs(ours.item() - _skimage_ssim(quant[:, 40:-40, 40:-40], gt[:, 40:-40, 40:-40])) < 1e-9


def test_ssim_of_an_image_with_itself_is_one():
    black = torch.zeros(1, 3, 100, 100)
    assert metrics.ssim(black, black).item() == 1.0  # kornia's default eps gave 0.99998889
    assert _skimage_ssim(np.zeros((3, 20, 20)), np.zeros((3, 20, 20))) == 1.0
    x = torch.rand(2, 3, 100, 100, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.all((metrics.ssim(x, x, bits=None) - 1).abs() < 1e-12)


def _random_alexnet_state() -> dict[str, torch.Tensor]:
    """A torchvision AlexNet state_dict with random weights; the classifier (unused by LPIPS)
    as broadcast zeros, so a saved file holds only the 2.5 M trunk parameters."""
    from torchvision.models import alexnet

    with torch.random.fork_rng():
        torch.manual_seed(0)
        state = alexnet(weights=None).state_dict()
    for key in state:
        if key.startswith("classifier."):
            state[key] = torch.zeros(1).expand(state[key].shape)
    return state


def test_lpips_uses_the_given_alexnet_without_downloading(tmp_path, monkeypatch):
    import lpips
    import torch.hub

    def no_download(*args, **kwargs):
        raise AssertionError(f"attempted download: {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    hub = tmp_path / "torch_home"
    state = _random_alexnet_state()
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    ours = metrics.LPIPS(str(path))
    assert ours.available and ours.reason == ""
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 96, 96, generator=gen)
    y = (x + 0.2 * torch.rand(2, 3, 96, 96, generator=gen)).clamp(0, 1)
    same = ours(x, x, border=8, bits=None)
    assert same.shape == (2,) and torch.all(same == 0)
    diff = ours(x, y, border=8, bits=None)
    assert torch.all(diff > 0)
    # the package's own way: lpips loads torchvision's pretrained AlexNet, here the same random
    # weights placed in torch's hub cache under the official file name (no download either)
    (hub / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, hub / "hub" / "checkpoints" / metrics.ALEXNET_FILE)
    monkeypatch.setenv("TORCH_HOME", str(hub))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()
    with torch.no_grad():
        expect = ref(x[:, :, 8:-8, 8:-8], y[:, :, 8:-8, 8:-8]).flatten()
    torch.testing.assert_close(diff, expect, rtol=0, atol=1e-7)


def test_lpips_without_its_weights_is_unavailable_with_a_reason(tmp_path):
    unset = metrics.LPIPS(None, key="burst_sr.lpips_alexnet")
    assert not unset.available and "burst_sr.lpips_alexnet" in unset.reason
    assert "\n" not in unset.reason and len(unset.reason) < 120
    missing = metrics.LPIPS(str(tmp_path / "nope.pth"))
    assert not missing.available and "nope.pth" in missing.reason
    with pytest.raises(ReproError, match="LPIPS unavailable"):
        unset(torch.rand(1, 3, 90, 90), torch.rand(1, 3, 90, 90))


def test_lpips_refuses_a_file_that_is_not_alexnet(tmp_path):
    torch.save({"features.0.weight": torch.zeros(3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(ReproError, match=r"bad\.pth: not torchvision's AlexNet state_dict"):
        metrics.LPIPS(str(tmp_path / "bad.pth"))


def test_too_small_image_is_a_clear_error():
    with pytest.raises(Exception, match="too small for border 40"):
        metrics.psnr(torch.rand(1, 3, 60, 60), torch.rand(1, 3, 60, 60))
