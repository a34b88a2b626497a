"""Camera pipeline of Brooks et al. ("unprocessing", CVPR'19) as used by NTIRE 2021 burst SR.

Batched torch versions: images are ``(..., 3, H, W)`` float tensors in [0, 1], packed RAW is
``(..., 4, H/2, W/2)`` in the order R, Gr, Gb, B (RGGB). Per-image random parameters are
``(B,)`` or ``(B, 3, 3)`` tensors drawn from a ``torch.Generator`` so a seed fixes them all.
Channel order is RGB throughout (the challenge toolkit's loader feeds BGR by mistake; see
docs/burst-sr.md, option ``rgb_order``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: XYZ -> camera matrices whose random convex combination gives the CCM (unprocessing code).
XYZ2CAMS = (
    ((1.0234, -0.2969, -0.2266), (-0.5625, 1.6328, -0.0469), (-0.0703, 0.2188, 0.6406)),
    ((0.4913, -0.0541, -0.0202), (-0.613, 1.3513, 0.2906), (-0.1564, 0.2151, 0.7183)),
    ((0.838, -0.263, -0.0639), (-0.2887, 1.0725, 0.2496), (-0.0627, 0.1427, 0.5438)),
    ((0.6596, -0.2079, -0.0562), (-0.4782, 1.3016, 0.1933), (-0.097, 0.1581, 0.5181)),
)
#: linear sRGB (D65) -> XYZ.
RGB2XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)


@dataclass
class CameraParams:
    """Per-image pipeline parameters, each with a leading batch dimension."""

    rgb2cam: torch.Tensor  # (B, 3, 3)
    cam2rgb: torch.Tensor  # (B, 3, 3)
    rgb_gain: torch.Tensor  # (B,)
    red_gain: torch.Tensor  # (B,)
    blue_gain: torch.Tensor  # (B,)
    shot_noise: torch.Tensor  # (B,) variance per unit intensity
    read_noise: torch.Tensor  # (B,) variance

    def to_dict(self) -> dict[str, list]:
        """Plain lists (JSON-serialisable), one entry per image."""
        return {k: getattr(self, k).detach().cpu().tolist() for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict[str, list], device: str | torch.device = "cpu") -> CameraParams:
        """Inverse of :meth:`to_dict`."""
        return cls(
            **{
                k: torch.tensor(d[k], dtype=torch.float32, device=device)
                for k in cls.__dataclass_fields__
            }
        )

    def index(self, i: int | slice | torch.Tensor) -> CameraParams:
        """The parameters of a subset of the batch."""
        return CameraParams(**{k: getattr(self, k)[i] for k in self.__dataclass_fields__})


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def random_ccm(n: int, gen: torch.Generator, device="cpu") -> torch.Tensor:
    """``n`` random RGB -> camera matrices (rows normalised to sum 1)."""
    xyz2cams = torch.tensor(XYZ2CAMS, device=device)
    w = torch.rand(n, 4, 1, 1, generator=gen, device=device)
    xyz2cam = (xyz2cams * w).sum(1) / w.sum(1)
    rgb2cam = xyz2cam @ torch.tensor(RGB2XYZ, device=device)
    return rgb2cam / rgb2cam.sum(-1, keepdim=True)


def random_gains(n: int, gen: torch.Generator, device="cpu") -> tuple[torch.Tensor, ...]:
    """Brightening gain 1/N(0.8, 0.1) and white-balance gains U(1.9, 2.4), U(1.5, 1.9)."""
    rgb_gain = 1.0 / (0.8 + 0.1 * torch.randn(n, generator=gen, device=device))
    return rgb_gain, _uniform(n, 1.9, 2.4, gen, device), _uniform(n, 1.5, 1.9, gen, device)


def random_noise_levels(n: int, gen: torch.Generator, device="cpu") -> tuple[torch.Tensor, ...]:
    """Shot and read noise variances from the log-log linear model of the unprocessing paper."""
    log_shot = _uniform(n, math.log(1e-4), math.log(0.012), gen, device)
    log_read = 2.18 * log_shot + 1.20 + 0.26 * torch.randn(n, generator=gen, device=device)
    return log_shot.exp(), log_read.exp()


def sample_params(
    n: int,
    gen: torch.Generator,
    device="cpu",
    random_ccm_: bool = True,
    random_gains_: bool = True,
    add_noise: bool = True,
) -> CameraParams:
    """Draw pipeline parameters for ``n`` images (identity/unit where a step is disabled)."""
    ccm = random_ccm(n, gen, device) if random_ccm_ else torch.eye(3, device=device).expand(n, 3, 3)
    ones = torch.ones(n, device=device)
    gains = random_gains(n, gen, device) if random_gains_ else (ones, ones, ones)
    noise = random_noise_levels(n, gen, device) if add_noise else (ones * 0, ones * 0)
    return CameraParams(ccm.contiguous(), torch.linalg.inv(ccm), *gains, *noise)


def smoothstep(x: torch.Tensor) -> torch.Tensor:
    """Global tone curve s(x) = 3x^2 - 2x^3."""
    return 3 * x**2 - 2 * x**3


def invert_smoothstep(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`smoothstep` on [0, 1]."""
    return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * y.clamp(0.0, 1.0)) / 3.0)


def gamma_expand(x: torch.Tensor) -> torch.Tensor:
    """Gamma (1/2.2) encoded -> linear."""
    return x.clamp_min(1e-8) ** 2.2


def gamma_compress(x: torch.Tensor) -> torch.Tensor:
    """Linear -> gamma (1/2.2) encoded."""
    return x.clamp_min(1e-8) ** (1.0 / 2.2)


def apply_ccm(image: torch.Tensor, ccm: torch.Tensor) -> torch.Tensor:
    """Apply a per-image 3x3 matrix to ``(B, 3, H, W)`` (``ccm`` is ``(B, 3, 3)``)."""
    return torch.einsum("bij,bjhw->bihw", ccm.to(image), image)


def _gain_vector(p: CameraParams, channels: int) -> torch.Tensor:
    one = torch.ones_like(p.red_gain)
    rgb = [p.red_gain, one, p.blue_gain] if channels == 3 else [p.red_gain, one, one, p.blue_gain]
    return torch.stack(rgb, 1) * p.rgb_gain[:, None]


def safe_invert_gains(image: torch.Tensor, p: CameraParams) -> torch.Tensor:
    """Divide by the gains, smoothly keeping near-white pixels (grey > 0.9) unchanged."""
    inv = (1.0 / _gain_vector(p, 3)).to(image)[:, :, None, None]
    gray = image.mean(1, keepdim=True)
    mask = ((gray - 0.9).clamp_min(0.0) / 0.1) ** 2
    return image * torch.maximum(mask + (1.0 - mask) * inv, inv)


def apply_gains(image: torch.Tensor, p: CameraParams) -> torch.Tensor:
    """Multiply by the white-balance and brightening gains (3- or 4-channel), clip to [0, 1]."""
    gains = _gain_vector(p, image.shape[1]).to(image)[:, :, None, None]
    return (image * gains).clamp(0.0, 1.0)


def unprocess(
    srgb: torch.Tensor, p: CameraParams, smoothstep_: bool = True, gamma: bool = True
) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` -> clipped linear camera-space image (the ground truth)."""
    x = invert_smoothstep(srgb) if smoothstep_ else srgb
    x = gamma_expand(x) if gamma else x
    x = apply_ccm(x, p.rgb2cam)
    return safe_invert_gains(x, p).clamp(0.0, 1.0)


def unprocess_lut(smoothstep_: bool = True, gamma: bool = True, device="cpu") -> torch.Tensor:
    """Linearised value of each 8-bit sRGB level (tone map and gamma inverted), float32."""
    levels = torch.arange(256, dtype=torch.float64, device=device) / 255.0
    x = invert_smoothstep(levels) if smoothstep_ else levels
    return (gamma_expand(x) if gamma else x).float()


def process(
    linear: torch.Tensor, p: CameraParams, smoothstep_: bool = True, gamma: bool = True
) -> torch.Tensor:
    """Linear camera RGB ``(B, 3, H, W)`` -> displayable sRGB (gains, CCM, gamma, tone map)."""
    x = apply_ccm(apply_gains(linear, p), p.cam2rgb)
    x = gamma_compress(x) if gamma else x
    x = smoothstep(x) if smoothstep_ else x
    return x.clamp(0.0, 1.0)


def mosaic(image: torch.Tensor) -> torch.Tensor:
    """RGB ``(..., 3, H, W)`` -> packed RGGB ``(..., 4, H/2, W/2)`` = R, Gr, Gb, B."""
    return torch.stack(
        (
            image[..., 0, 0::2, 0::2],
            image[..., 1, 0::2, 1::2],
            image[..., 1, 1::2, 0::2],
            image[..., 2, 1::2, 1::2],
        ),
        dim=-3,
    )


def unpack(packed: torch.Tensor) -> torch.Tensor:
    """Packed RGGB ``(..., 4, h, w)`` -> Bayer mosaic ``(..., 1, 2h, 2w)``."""
    *lead, _, h, w = packed.shape
    out = packed.new_zeros(*lead, 1, 2 * h, 2 * w)
    out[..., 0, 0::2, 0::2] = packed[..., 0, :, :]
    out[..., 0, 0::2, 1::2] = packed[..., 1, :, :]
    out[..., 0, 1::2, 0::2] = packed[..., 2, :, :]
    out[..., 0, 1::2, 1::2] = packed[..., 3, :, :]
    return out


def add_noise(
    raw: torch.Tensor, shot: torch.Tensor, read: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """Heteroscedastic Gaussian noise, variance shot*x + read, one (shot, read) per batch item."""
    view = (-1,) + (1,) * (raw.dim() - 1)
    noise = torch.randn(raw.shape, generator=gen, device=raw.device, dtype=raw.dtype)
    std = torch.addcmul(read.view(view).to(raw), raw, shot.view(view).to(raw))
    return raw.addcmul(noise, std.clamp_min_(0.0).sqrt_())


def add_noise_(
    raw: torch.Tensor,
    shot: torch.Tensor,
    read: torch.Tensor,
    gen: torch.Generator,
    noise: torch.Tensor,
) -> torch.Tensor:
    """In-place :func:`add_noise` (same draws from ``gen``), ``noise`` a buffer like ``raw``."""
    view = (-1,) + (1,) * (raw.dim() - 1)
    torch.randn(raw.shape, generator=gen, out=noise)
    std = torch.addcmul(read.view(view).to(raw), raw, shot.view(view).to(raw))
    return raw.addcmul_(noise, std.clamp_min_(0.0).sqrt_())


def packed_to_rgb(packed: torch.Tensor) -> torch.Tensor:
    """Packed RGGB -> half-resolution RGB (R, mean of the greens, B)."""
    return torch.stack(
        (
            packed[..., 0, :, :],
            0.5 * (packed[..., 1, :, :] + packed[..., 2, :, :]),
            packed[..., 3, :, :],
        ),
        dim=-3,
    )
