"""Camera pipeline: round trip, RGGB layout, random parameter ranges, noise statistics."""

import numpy as np
import pytest
import toolkit_reference as reference
import torch

from repro.burstsr import camera


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_unprocess_then_process_is_identity_in_range():
    g = gen(1)
    img = 0.1 + 0.6 * torch.rand(4, 3, 32, 32, generator=g, dtype=torch.float64)
    p = camera.sample_params(4, g)
    p = camera.CameraParams(**{k: getattr(p, k).double() for k in p.__dataclass_fields__})
    lin = camera.unprocess(img, p)
    assert (lin < img).float().mean() > 0.9  # unprocessing darkens (gamma + inverse gains)
    back = camera.process(lin, p)
    torch.testing.assert_close(back, img, atol=1e-6, rtol=0)


def test_unprocess_matches_numpy_formulation():
    rng = np.random.default_rng(3)
    img = rng.uniform(0, 1, (16, 16, 3))
    lin_np, m = reference.unprocess_np(img, np.random.default_rng(5))
    rgb2cam = torch.tensor(m["rgb2cam"])[None]
    p = camera.CameraParams(
        rgb2cam,
        torch.linalg.inv(rgb2cam),
        torch.tensor([m["rgb_gain"]]),
        torch.tensor([m["red_gain"]]),
        torch.tensor([m["blue_gain"]]),
        torch.zeros(1),
        torch.zeros(1),
    )
    lin = camera.unprocess(torch.from_numpy(img).permute(2, 0, 1)[None], p)
    np.testing.assert_allclose(lin[0].permute(1, 2, 0).numpy(), lin_np, atol=1e-10)


def test_smoothstep_inverse_and_safe_gains_keep_white():
    x = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(camera.smoothstep(camera.invert_smoothstep(x)), x)
    # a white pixel keeps its value under the "safe" inverse gains
    p = camera.sample_params(1, gen(2))
    white = torch.ones(1, 3, 2, 2)
    torch.testing.assert_close(camera.safe_invert_gains(white, p), white)
    mid = torch.full((1, 3, 2, 2), 0.5)
    out = camera.safe_invert_gains(mid, p)
    expect = 0.5 / (p.rgb_gain * torch.stack([p.red_gain, torch.ones(1), p.blue_gain], 1))
    torch.testing.assert_close(out[0, :, 0, 0], expect[0])


def test_random_parameter_ranges():
    p = camera.sample_params(2000, gen(4))
    torch.testing.assert_close(p.rgb2cam.sum(-1), torch.ones(2000, 3))
    torch.testing.assert_close(
        p.rgb2cam @ p.cam2rgb, torch.eye(3).expand(2000, 3, 3), atol=1e-5, rtol=0
    )
    assert p.red_gain.min() >= 1.9 and p.red_gain.max() <= 2.4
    assert p.blue_gain.min() >= 1.5 and p.blue_gain.max() <= 1.9
    assert abs((1 / p.rgb_gain).mean() - 0.8) < 0.01 and abs((1 / p.rgb_gain).std() - 0.1) < 0.01
    assert p.shot_noise.min() >= 1e-4 and p.shot_noise.max() <= 0.012
    resid = p.read_noise.log() - (2.18 * p.shot_noise.log() + 1.20)
    assert abs(resid.mean()) < 0.03 and abs(resid.std() - 0.26) < 0.02


def test_mosaic_puts_rggb_where_the_layout_says():
    h, w = 6, 8
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    img = torch.stack([c * 1000 + ys * 10 + xs for c in range(3)]).float()
    packed = camera.mosaic(img)
    assert packed.shape == (4, 3, 4)
    for i in range(3):
        for j in range(4):
            assert packed[0, i, j] == 0 * 1000 + (2 * i) * 10 + 2 * j  # R at (even, even)
            assert packed[1, i, j] == 1 * 1000 + (2 * i) * 10 + 2 * j + 1  # Gr at (even, odd)
            assert packed[2, i, j] == 1 * 1000 + (2 * i + 1) * 10 + 2 * j  # Gb at (odd, even)
            assert packed[3, i, j] == 2 * 1000 + (2 * i + 1) * 10 + 2 * j + 1  # B at (odd, odd)
    bayer = camera.unpack(packed)[0]
    assert bayer[0, 0] == 0 and bayer[0, 1] == 1001 and bayer[1, 0] == 1010
    assert bayer[1, 1] == 2011 and bayer[5, 7] == 2057
    rgb = camera.packed_to_rgb(packed)
    assert rgb[1, 0, 0] == (1001 + 1010) / 2


def test_noise_variance_is_shot_times_signal_plus_read():
    raw = torch.full((2, 1, 4, 200, 200), 0.4)
    shot, read = torch.tensor([0.01, 0.001]), torch.tensor([1e-3, 1e-5])
    noisy = camera.add_noise(raw, shot, read, gen(5))
    var = (noisy - raw).flatten(1).var(1)
    expect = 0.4 * shot + read
    assert torch.allclose(var, expect, rtol=0.03)
    assert abs((noisy - raw).mean()) < 1e-3


@pytest.mark.parametrize("device", ["cpu"])
def test_process_is_batched_per_image(device):
    p = camera.sample_params(3, gen(6), device)
    lin = torch.rand(3, 3, 8, 8, generator=gen(7))
    both = camera.process(lin, p)
    one = camera.process(lin[1:2], p.index(slice(1, 2)))
    torch.testing.assert_close(both[1:2], one)
