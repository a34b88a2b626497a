"""AlignedPSNR/SSIM for the real track (BurstSR): spatial alignment, colour map, validity mask.

Per image, following the toolkit's procedure (docs/burst-sr.md): estimate the flow from the
prediction to the ground truth at HR and warp the prediction; fit a 3x3 least-squares colour
map from the burst's frame 0 (warped by the downscaled flow) to the downscaled ground truth
(both Gaussian-blurred, 5 px border dropped) with ``torch.linalg.lstsq`` (the toolkit's
``torch.lstsq`` no longer exists and took its arguments in the other order); keep pixels whose
mapped error is below 20/255; score the masked MSE outside a 40 px border. Aligned SSIM
averages the SSIM map of the same aligned, colour-mapped prediction over the same mask.

The flow estimator is pluggable: the toolkit uses PWC-Net (pretrained weights + CuPy, not
bundled); :func:`dis_flow` uses OpenCV's DIS optical flow, which needs no weights.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import kornia
import numpy as np
import torch
import torch.nn.functional as F

from repro.burstsr import metrics
from repro.burstsr.models import warp

FlowFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def dis_flow(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Flow ``(2, H, W)`` with target(x) ~ source(x + flow(x)), by OpenCV DIS on grey images."""

    def grey(x: torch.Tensor) -> np.ndarray:
        g = (x / x.max().clamp_min(1e-6)).mean(0).clamp(0, 1)
        return (g * 255).round().byte().cpu().numpy()

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(grey(target), grey(source), None)  # target -> source displacement
    return torch.from_numpy(flow).permute(2, 0, 1).to(source)


def zero_flow(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """No spatial alignment (for tests and ablations)."""
    return source.new_zeros(2, *source.shape[-2:])


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(
        x, scale_factor=factor, mode="bilinear", align_corners=False, recompute_scale_factor=True
    )


def _align(
    pred: torch.Tensor,
    gt: torch.Tensor,
    frame0: torch.Tensor,
    flow_fn: FlowFn = dis_flow,
    sr_factor: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The spatially aligned, colour-mapped prediction (float64) and the HR validity mask."""
    flow = flow_fn(pred, gt)[None]  # (1, 2, H, W)
    pred_w = warp(pred[None], flow)
    ds = 1.0 / (2 * sr_factor)
    flow_lr = _resize(flow, ds) * ds
    frame_rgb = frame0[[0, 1, 3]][None]  # R, Gr, B
    frame_w = warp(frame_rgb, flow_lr)
    gt_lr = _resize(gt[None], ds)
    blur_in = kornia.filters.gaussian_blur2d(frame_w, (7, 7), (1.5, 1.5), border_type="reflect")
    blur_gt = kornia.filters.gaussian_blur2d(gt_lr, (7, 7), (1.5, 1.5), border_type="reflect")
    c = 5
    a = blur_in[0, :, c:-c, c:-c].reshape(3, -1).T.double()
    b = blur_gt[0, :, c:-c, c:-c].reshape(3, -1).T.double()
    cmat = torch.linalg.lstsq(a, b).solution  # (3, 3): a @ cmat ~ b
    err = ((a @ cmat - b) * 255).norm(dim=1)
    err = err.view(1, 1, blur_in.shape[-2] - 2 * c, blur_in.shape[-1] - 2 * c)
    valid = F.pad((err < 20).double(), (c, c, c, c))
    valid = F.interpolate(valid, size=gt.shape[-2:], mode="bilinear", align_corners=False) > 0.9
    mapped = (pred_w[0].reshape(3, -1).T.double() @ cmat).T.reshape(pred.shape)
    return mapped, valid[0, 0]


def _border(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border:-border, border:-border] if border else x


def _masked_psnr(
    mapped: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, border: int, max_psnr: float
) -> float:
    diff = _border(mapped - gt.double(), border) ** 2
    mask = _border(valid, border).expand(3, -1, -1).double()
    if mask.sum() == 0:
        return float("nan")
    mse = (diff * mask).sum() / mask.sum()
    return float(min(max_psnr, 10 * torch.log10(1.0 / mse.clamp_min(1e-30)).item()))


def _masked_ssim(mapped: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, border: int) -> float:
    """SSIM map (Gaussian 11, sigma 1.5, peak 1, valid filtering) averaged over valid pixels."""
    mapped, gt, valid = (
        _border(mapped, border),
        _border(gt.double(), border),
        _border(valid, border),
    )
    smap = metrics.ssim_map(mapped[None], gt[None])  # equals scikit-image (no kornia eps)
    mask = valid[5:-5, 5:-5].double()  # the centres of the valid 11 x 11 windows
    if mask.sum() == 0:
        return float("nan")
    return float((smap[0].mean(0) * mask).sum() / mask.sum())


def aligned_psnr_one(
    pred: torch.Tensor,
    gt: torch.Tensor,
    frame0: torch.Tensor,
    flow_fn: FlowFn = dis_flow,
    sr_factor: int = 4,
    border: int = 40,
    max_psnr: float = 100.0,
) -> float:
    """AlignedPSNR of one prediction ``(3, H, W)`` given packed frame 0 ``(4, H/8, W/8)``."""
    mapped, valid = _align(pred, gt, frame0, flow_fn, sr_factor)
    return _masked_psnr(mapped, gt, valid, border, max_psnr)


def aligned_scores_one(
    pred: torch.Tensor,
    gt: torch.Tensor,
    frame0: torch.Tensor,
    flow_fn: FlowFn = dis_flow,
    sr_factor: int = 4,
    border: int = 40,
    max_psnr: float = 100.0,
) -> tuple[float, float]:
    """AlignedPSNR and aligned SSIM of one prediction (one alignment, the same mask)."""
    mapped, valid = _align(pred, gt, frame0, flow_fn, sr_factor)
    return (
        _masked_psnr(mapped, gt, valid, border, max_psnr),
        _masked_ssim(mapped, gt, valid, border),
    )
