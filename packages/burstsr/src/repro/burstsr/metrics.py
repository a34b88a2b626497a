"""Track-1 metrics in linear camera space: PSNR, SSIM and (when available) LPIPS.

All take ``(B, 3, H, W)`` predictions and targets in [0, 1], ignore a border of ``border`` HR
pixels, and return per-image values (average them over the set, as the challenge does).
"""

from __future__ import annotations

import torch

from repro.core import ReproError


def quantize(pred: torch.Tensor, bits: int = 14) -> torch.Tensor:
    """Truncate to ``bits`` bits as a submission PNG (clip(x, 0, 1) * 2^bits, floor) would."""
    scale = float(2**bits)
    return torch.floor(pred.clamp(0.0, 1.0) * scale) / scale


def _crop(x: torch.Tensor, border: int) -> torch.Tensor:
    if border <= 0:
        return x
    if min(x.shape[-2:]) <= 2 * border:
        raise ReproError(f"metric: image {tuple(x.shape[-2:])} too small for border {border}")
    return x[..., border:-border, border:-border]


def psnr(
    pred: torch.Tensor, gt: torch.Tensor, border: int = 40, bits: int | None = 14
) -> torch.Tensor:
    """Per-image PSNR (peak 1.0) after optional ``bits`` quantisation of ``pred``."""
    if bits:
        pred = quantize(pred, bits)
    mse = ((_crop(pred, border) - _crop(gt, border)) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse)


def ssim(
    pred: torch.Tensor, gt: torch.Tensor, border: int = 40, bits: int | None = 14
) -> torch.Tensor:
    """Per-image SSIM: Gaussian window 11, sigma 1.5, data range 1, valid filtering, RGB mean."""
    import kornia

    if bits:
        pred = quantize(pred, bits)
    pred, gt = _crop(pred, border), _crop(gt, border)
    smap = kornia.metrics.ssim(
        pred.double(), gt.double(), window_size=11, max_val=1.0, padding="valid"
    )
    return smap.flatten(1).mean(1).to(pred.dtype)


class LPIPS:
    """LPIPS (AlexNet) on [0, 1] linear images, as the DBSR scoring script feeds it.

    Needs the ``lpips`` package with its weights already cached; ``available`` says whether
    it could be loaded and ``reason`` why not (the metric is then reported as skipped).
    """

    def __init__(self) -> None:
        self.model = None
        self.reason = ""
        try:
            import lpips  # type: ignore[import-not-found]

            self.model = lpips.LPIPS(net="alex", verbose=False).eval()
        except Exception as exc:  # noqa: BLE001 - missing package, weights or network
            self.reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]

    @property
    def available(self) -> bool:
        return self.model is not None

    @torch.no_grad()
    def __call__(
        self, pred: torch.Tensor, gt: torch.Tensor, border: int = 40, bits: int | None = 14
    ) -> torch.Tensor:
        if self.model is None:
            raise ReproError(f"LPIPS unavailable ({self.reason})")
        if bits:
            pred = quantize(pred, bits)
        self.model.to(pred.device)
        return self.model(_crop(pred, border), _crop(gt, border)).flatten()
