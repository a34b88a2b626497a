"""AlignedPSNR: self-score capped, shifts undone by the alignment, real damage still counted."""

import math

import torch
import torch.nn.functional as F

from repro.burstsr import aligned, metrics


def scene(size=320, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 24, 24, generator=g)
    img = F.interpolate(coarse, size=(size + 16, size + 16), mode="bicubic", align_corners=False)
    return img.clamp(0.02, 1.0)[0] * 0.6


def frame0_of(gt):
    """A packed frame whose R, Gr, B planes are the ground truth at 1/8 (an ideal camera)."""
    lr = F.interpolate(gt[None], scale_factor=0.125, mode="bilinear", align_corners=False)[0]
    return torch.stack((lr[0], lr[1], lr[1], lr[2]))


def test_ground_truth_against_itself_is_capped():
    big = scene()
    gt = big[:, :320, :320]
    value = aligned.aligned_psnr_one(gt, gt, frame0_of(gt))
    assert value == 100.0


def test_shift_is_undone_by_alignment_but_blur_is_not():
    big = scene()
    gt = big[:, 8:328, 8:328]
    shifted = big[:, 5:325, 11:331]  # 3 px up, 3 px right of the ground truth
    frame0 = frame0_of(gt)
    plain = metrics.psnr(shifted[None], gt[None], bits=None).item()
    undone = aligned.aligned_psnr_one(shifted, gt, frame0)
    no_align = aligned.aligned_psnr_one(shifted, gt, frame0, flow_fn=aligned.zero_flow)
    assert undone > plain + 10, (undone, plain)
    assert abs(no_align - plain) < 1.0  # without spatial alignment only the colour fit helps
    blurred = F.avg_pool2d(gt[None], 5, stride=1, padding=2, count_include_pad=False)[0]
    damaged = aligned.aligned_psnr_one(blurred, gt, frame0)
    plain_blur = metrics.psnr(blurred[None], gt[None], bits=None).item()
    assert damaged < 60 and abs(damaged - plain_blur) < 3, (damaged, plain_blur)


def test_colour_mapping_removes_a_linear_colour_change():
    big = scene(seed=2)
    gt = big[:, :320, :320]
    mix = torch.tensor([[0.9, 0.1, 0.0], [0.05, 0.8, 0.1], [0.0, 0.2, 0.7]])
    # prediction and input share the colour change (same camera); the ground truth does not
    pred = torch.einsum("ij,jhw->ihw", mix, gt)
    value = aligned.aligned_psnr_one(pred, gt, frame0_of(pred), flow_fn=aligned.zero_flow)
    plain = metrics.psnr(pred[None], gt[None], bits=None).item()
    assert value > 50 and value > plain + 20
    assert not math.isnan(value)
