"""Synthetic bursts: agreement with OpenCV, motion model, flow, reproducibility."""

import math

import cv2
import numpy as np
import pytest
import toolkit_reference as reference
import torch
import torch.nn.functional as F

from repro.burstsr import camera, synth


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def plain_cfg(**kw):
    base = dict(
        crop=64,
        add_noise=False,
        quantize_8bit=False,
        random_ccm=False,
        random_gains=False,
        smoothstep=False,
        gamma=False,
    )
    base.update(kw)
    return synth.BurstConfig(**base)


def _cv_packed(lin, b, k, cfg):
    lr = reference.lr_burst_cv(
        lin[k].permute(1, 2, 0).numpy(), b.translation[k].numpy(), b.rotation[k].numpy(), cfg
    )
    return np.stack(
        [lr[:, 0::2, 0::2, 0], lr[:, 0::2, 1::2, 1], lr[:, 1::2, 0::2, 1], lr[:, 1::2, 1::2, 2]], 1
    )


def test_batched_generator_matches_opencv_per_sample_loop():
    for quant in (False, True):
        cfg = synth.BurstConfig(crop=64, add_noise=False, quantize_8bit=quant)
        img = torch.rand(
            2, 3, cfg.source_size, cfg.source_size, generator=gen(1), dtype=torch.float64
        )
        b = synth.generate(img, cfg, gen(2))
        lin = camera.unprocess(img, b.cam)
        for k in range(2):
            diff = np.abs(_cv_packed(lin, b, k, cfg) - b.burst[k].numpy())
            assert diff.max() <= (1.0 / 255 + 1e-9 if quant else 1e-5)
            if quant:  # float32 near-ties of rotated frames only (half-even resize: ~12 %;
                # frame 0 sampled from an unpadded source, off the exact ties: ~4 %)
                assert (diff[0] > 0.5 / 255).mean() < 0.002
                assert (diff > 0.5 / 255).mean() < 0.002


def _opencv_packed(src8: np.ndarray, mats: torch.Tensor, cfg) -> tuple[np.ndarray, float]:
    """Packed frames from OpenCV's uint8 warpAffine + crop + resize (the toolkit's calls), and
    the fraction of resize outputs that are exact halves before rounding."""
    size, b = src8.shape[0], cfg.border_crop
    frames, ties = [], []
    for m in mats.numpy():
        warped = cv2.warpAffine(
            src8, m[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )[b : size - b, b : size - b]
        lr = cv2.resize(warped, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_LINEAR)
        taps = warped.astype(np.int64)  # 1/4 resize = mean of the HR 2 x 2 at offsets 1, 2
        four = taps[1::4, 1::4] + taps[1::4, 2::4] + taps[2::4, 1::4] + taps[2::4, 2::4]
        ties.append(np.mean(four % 4 == 2))
        frames.append(
            np.stack([lr[0::2, 0::2, 0], lr[0::2, 1::2, 1], lr[1::2, 0::2, 1], lr[1::2, 1::2, 2]])
        )
    return np.stack(frames).astype(np.int64), float(np.mean(ties))


@pytest.mark.skipif(
    int(cv2.__version__.split(".")[0]) < 5,
    reason="OpenCV 4 warps on a 1/32 px grid and rounds half up (docs/burst-sr.md)",
)
def test_8bit_frames_equal_opencv_where_opencv_is_exact():
    """With the pinned OpenCV (5.x): bit-exact where its arithmetic is exact (frame 0's 1.5 px
    shift, translations by binary fractions), within one level on a few float32 near-ties
    elsewhere. Exact halves are common, so both rounding rules (warp half to even, resize
    half up) and exact tie coordinates are needed."""
    cfg = synth.BurstConfig(crop=64, quantize_8bit=True)
    size = cfg.source_size
    src = torch.randint(0, 256, (1, 3, size, size), generator=gen(40)).float()
    t = torch.tensor([[[1.5, 1.5], [-7.25, 3.5], [10.125, -20.75], [3.3, -2.1], [-11.7, 8.9]]])
    r = torch.tensor([[0.0, 0.0, 0.0, 0.7, -0.9]])
    mats = synth.affine_matrices(t, r, size)
    pad = synth.padded_size(size)
    padded = F.pad(src, (0, pad - size, 0, pad - size))
    ours = synth.warp_packed(padded, mats, cfg, lines=synth.tap_lines(mats, cfg, pad))
    ours = (ours[0].double() * 255).round().long().numpy()
    theirs, ties = _opencv_packed(src[0].permute(1, 2, 0).byte().numpy(), mats[0], cfg)
    assert ties > 0.2  # a quarter of the resize outputs are exact halves
    assert np.array_equal(ours[:3], theirs[:3])  # translations: bit for bit
    diff = np.abs(ours[3:] - theirs[3:])
    assert diff.max() <= 1 and (diff > 0).mean() < 0.005  # rotations: float32 near-ties


def test_padded_size_is_a_power_of_two_plus_one():
    assert [synth.padded_size(s) for s in (112, 129, 130, 208, 432)] == [129, 129, 257, 257, 513]


def test_motion_parameters_follow_the_model():
    cfg = synth.BurstConfig(crop=64)
    t, r = synth.sample_motion(500, cfg, gen(3))
    assert torch.all(t[:, 0] == 1.5) and torch.all(r[:, 0] == 0)
    assert t[:, 1:].abs().max() <= 24 and t[:, 1:].abs().max() > 23
    assert r[:, 1:].abs().max() <= 1 and r[:, 1:].abs().max() > 0.99


def _blob(size, cx, cy, sigma):
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float64),
        torch.arange(size, dtype=torch.float64),
        indexing="ij",
    )
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))


def test_motion_model_moves_a_pattern_by_the_sampled_transform():
    cfg = plain_cfg(crop=96, max_rotation=1.0)
    size = cfg.source_size
    cx, cy = 60.0, 80.0
    img = _blob(size, cx, cy, 6.0).expand(1, 3, size, size).clone()
    t = torch.tensor([[[1.5, 1.5], [10.0, -7.0], [-20.0, 15.5], [3.3, 22.0]]])
    r = torch.tensor([[0.0, 1.0, -0.8, 0.5]])
    b = synth.generate(img, cfg, gen(4), motion=(t, r))
    lr = camera.unpack(b.burst[0])[:, 0]  # (N, h, w): mosaic of a grey image = grey LR frame
    ys, xs = torch.meshgrid(
        torch.arange(lr.shape[1], dtype=torch.float64),
        torch.arange(lr.shape[2], dtype=torch.float64),
        indexing="ij",
    )
    c = size / 2
    for i in range(4):
        # hand-worked: translate, then rotate by theta about the centre (OpenCV: y axis down,
        # positive angle counter-clockwise on screen), then crop the border and shrink by s
        px, py = cx + t[0, i, 0].item(), cy + t[0, i, 1].item()
        th = math.radians(r[0, i].item())
        qx = math.cos(th) * (px - c) + math.sin(th) * (py - c) + c
        qy = -math.sin(th) * (px - c) + math.cos(th) * (py - c) + c
        ex = (qx - cfg.border_crop + 0.5) / cfg.downsample - 0.5
        ey = (qy - cfg.border_crop + 0.5) / cfg.downsample - 0.5
        w = lr[i].double()
        mx, my = (w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()
        assert abs(mx - ex) < 0.05 and abs(my - ey) < 0.05, (i, mx, ex, my, ey)


def test_ground_truth_flow_aligns_frames_to_frame_zero():
    cfg = plain_cfg(crop=128)
    size = cfg.source_size
    smooth = (
        F.interpolate(
            torch.rand(1, 1, 8, 8, generator=gen(5)),
            size=(size, size),
            mode="bicubic",
            align_corners=False,
        )
        .clamp(0, 1)
        .expand(1, 3, -1, -1)
    )
    b = synth.generate(smooth, cfg, gen(6))
    lr = camera.unpack(b.burst[0])  # (N, 1, h, w): grey scene, so the mosaic is the LR frame
    n, _, h, w = lr.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    fx, fy = xs + b.flow[0, :, 0], ys + b.flow[0, :, 1]
    grid = torch.stack((fx / (w - 1) * 2 - 1, fy / (h - 1) * 2 - 1), -1)
    warped = F.grid_sample(lr, grid, align_corners=True)
    inner = (slice(None), 0, slice(8, -8), slice(8, -8))
    err_aligned = (warped[inner] - lr[0:1].expand(n, 1, h, w)[inner]).abs().mean((1, 2))
    err_raw = (lr[inner] - lr[0:1].expand(n, 1, h, w)[inner]).abs().mean((1, 2))
    assert torch.all(b.flow[0, 0] == 0)
    assert err_aligned[1:].max() < 0.1 * err_raw[1:].min()


def test_flow_is_the_inverse_of_the_toolkits_flow():
    """The toolkit's flow (frame i's grid, into frame 0; computed from dense HR position maps,
    reference.toolkit_flow) undoes ours (frame 0's grid, into frame i): x + f(x) + g(x + f(x))
    = x, with rotation."""
    cfg = plain_cfg(crop=96)
    img = torch.rand(1, 3, cfg.source_size, cfg.source_size, generator=gen(20))
    b = synth.generate(img, cfg, gen(21))
    ours = b.flow[0].double()  # (N, 2, h, w)
    theirs = reference.toolkit_flow(b.translation[0].numpy(), b.rotation[0].numpy(), cfg)
    theirs = torch.from_numpy(theirs).double().permute(0, 3, 1, 2)  # (N, 2, h, w)
    n, _, h, w = ours.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    fx, fy = xs + ours[:, 0], ys + ours[:, 1]  # frame-i coordinates of frame-0 pixels
    grid = torch.stack((fx / (w - 1) * 2 - 1, fy / (h - 1) * 2 - 1), -1)
    back = F.grid_sample(theirs, grid, align_corners=True)  # theirs at x + f(x) (affine: exact)
    inside = (fx > 1) & (fx < w - 2) & (fy > 1) & (fy < h - 2)
    assert inside[1:].float().mean() > 0.3 and b.rotation[0, 1:].abs().max() > 0.3
    assert (ours + back).abs().amax(1)[inside].max() < 1e-3


def test_flow_is_translation_over_s_without_rotation():
    cfg = plain_cfg(crop=64, max_rotation=0.0)
    img = torch.rand(3, 3, cfg.source_size, cfg.source_size, generator=gen(7))
    b = synth.generate(img, cfg, gen(8))
    expect = (b.translation - b.translation[:, :1]) / cfg.downsample
    torch.testing.assert_close(b.flow.mean((-1, -2)), expect.float(), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        b.flow.std((-1, -2)), torch.zeros_like(expect).float(), atol=1e-4, rtol=0
    )


def test_reproducible_per_seed_and_ground_truth_crop():
    cfg = synth.BurstConfig(crop=32)
    img = torch.rand(2, 3, cfg.source_size, cfg.source_size, generator=gen(9))
    a, b, c = (synth.generate(img, cfg, gen(s)) for s in (10, 10, 11))
    assert torch.equal(a.burst, b.burst) and torch.equal(a.gt, b.gt)
    assert not torch.equal(a.burst, c.burst)
    lin = camera.unprocess(img, a.cam)
    torch.testing.assert_close(a.gt, lin[:, :, 24:-24, 24:-24])
    assert a.burst.shape == (2, 14, 4, 4, 4) and a.flow.shape == (2, 14, 2, 8, 8)
    assert a.burst.min() >= 0 and a.burst.max() <= 1


def test_random_crops_shape_and_small_images():
    imgs = [torch.rand(3, 50, 70), torch.rand(3, 30, 30)]
    out = synth.random_crops(imgs, 6, 40, gen(12))
    assert out.shape == (6, 3, 40, 40)


def test_uint8_input_uses_an_exact_table_for_linearisation():
    cfg = synth.BurstConfig(crop=32, add_noise=False)
    img8 = torch.randint(
        0, 256, (2, 3, cfg.source_size, cfg.source_size), generator=gen(13), dtype=torch.uint8
    )
    a = synth.generate(img8, cfg, gen(14))
    b = synth.generate(img8.float() / 255.0, cfg, gen(14))
    torch.testing.assert_close(a.gt, b.gt, atol=1e-6, rtol=0)
    assert (a.burst - b.burst).abs().max() <= 1.0 / 255 + 1e-6  # 8-bit ties may round apart


def test_reused_buffers_give_the_same_bursts_and_are_reused():
    cfg = synth.BurstConfig(crop=32)
    img = torch.randint(0, 256, (3, 3, cfg.source_size, cfg.source_size), generator=gen(30))
    img = img.to(torch.uint8)
    fresh = [synth.generate(img, cfg, gen(s)) for s in (31, 32)]
    buffers = synth.Buffers()
    first = synth.generate(img, cfg, gen(31), buffers=buffers)
    first_burst = first.burst.clone()
    second = synth.generate(img, cfg, gen(32), buffers=buffers)
    assert second.burst.data_ptr() == first.burst.data_ptr()  # the same memory, overwritten
    torch.testing.assert_close(first_burst, fresh[0].burst, rtol=0, atol=0)
    for name in ("burst", "gt", "flow"):
        torch.testing.assert_close(getattr(second, name), getattr(fresh[1], name), rtol=0, atol=0)
