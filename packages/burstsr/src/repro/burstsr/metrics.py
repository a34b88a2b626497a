"""Track-1 metrics in linear camera space: PSNR, SSIM and (when available) LPIPS.

All take ``(B, 3, H, W)`` predictions and targets in [0, 1], ignore a border of ``border`` HR
pixels, and return per-image values (average them over the set, as the challenge does).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint


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


def ssim_map(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """SSIM map ``(B, C, H - 10, W - 10)`` in float64: Gaussian window 11, sigma 1.5, data range
    1, population covariance, valid filtering (only windows fully inside the image).

    Equal to scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)`` map on its interior (skimage filters with
    reflect padding, then drops the 5 px its mean ignores). kornia is called with ``eps=0``:
    its default 1e-12 in the denominator moves every value (a black image against itself
    scores 0.99998889), and the denominator is already at least C1 * C2 = 9e-8.
    """
    import kornia

    return kornia.metrics.ssim(
        pred.double(), gt.double(), window_size=11, max_val=1.0, eps=0.0, padding="valid"
    )


def ssim(
    pred: torch.Tensor, gt: torch.Tensor, border: int = 40, bits: int | None = 14
) -> torch.Tensor:
    """Per-image SSIM (:func:`ssim_map` averaged over pixels and RGB) in float64, after
    optional ``bits`` quantisation of ``pred`` and ignoring ``border`` px."""
    if bits:
        pred = quantize(pred, bits)
    return ssim_map(_crop(pred, border), _crop(gt, border)).flatten(1).mean(1)


#: torchvision's ImageNet AlexNet weights (``AlexNet_Weights.IMAGENET1K_V1``), the trunk
#: ``lpips`` downloads by default; the user supplies this file instead.
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


class LPIPS:
    """LPIPS (AlexNet, v0.1) on [0, 1] linear images, fed as the DBSR scoring script feeds them
    (no rescale to [-1, 1]).

    Computed with the ``lpips`` package, without any download: its linear layers ship inside
    the package, and the AlexNet trunk is loaded from ``alexnet_weights``, torchvision's
    ImageNet AlexNet ``state_dict`` (:data:`ALEXNET_FILE`; only ``features.*`` is used).
    Without that file the metric is unavailable: ``available`` is False and ``reason`` says
    why in one short line (the summary prints it as a note). ``key`` names the config key in
    that reason. A file that exists but is not an AlexNet ``state_dict`` is an error.
    """

    def __init__(
        self, alexnet_weights: str | os.PathLike[str] | None = None, key: str = ""
    ) -> None:
        self.model = None
        self.reason = ""
        setting = f" (config key {key})" if key else ""
        if not alexnet_weights:
            self.reason = f"no AlexNet weights file ({ALEXNET_FILE}) set{setting}"
            return
        path = Path(alexnet_weights)
        if not path.is_file():
            self.reason = f"AlexNet weights {path}{setting} not found"
            return
        try:
            import lpips  # type: ignore[import-not-found]
        except ImportError:
            self.reason = "the lpips package is not installed"
            return
        with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained`
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        _load_trunk(model.net, load_checkpoint(path), path)
        self.model = model.eval()

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
        return self.model(_crop(pred, border).float(), _crop(gt, border).float()).flatten()


def _load_trunk(net: torch.nn.Module, state: dict, path: Path) -> None:
    """Copy torchvision AlexNet ``features.<i>.*`` tensors into lpips' trunk, whose slices keep
    torchvision's layer indices (``slice2.3.weight`` is ``features.3.weight``)."""
    target = net.state_dict()
    try:
        mapped = {name: state["features." + name.split(".", 1)[1]] for name in target}
        net.load_state_dict(mapped, strict=True)
    except (KeyError, RuntimeError, TypeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        raise ReproError(
            f"{path}: not torchvision's AlexNet state_dict ({ALEXNET_FILE}): {detail}"
        ) from exc
