"""Synthetic RAW bursts (NTIRE 2021 track 1), batched and vectorised in torch.

One call turns ``B`` sRGB crops into ``B`` bursts of ``N`` noisy packed RGGB frames, the linear
ground truth and the ground-truth flow, on whatever device the input lives on. The motion
model follows the challenge: frame 0 is translated by (s/2 - 0.5, s/2 - 0.5) HR pixels, the
other frames by U(-T, T) and rotated by U(-R, R) degrees about the image centre (OpenCV's
``getRotationMatrix2D`` convention), warped bilinearly with zero border, border-cropped and
resized by 1/s with OpenCV's INTER_LINEAR (no anti-aliasing).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from repro.burstsr import camera
from repro.core import ReproError


@dataclass
class BurstConfig:
    """Every parameter of the synthetic burst model (config key ``burst_sr.burst``)."""

    burst_size: int = 14
    downsample: int = 4
    max_translation: float = 24.0
    max_rotation: float = 1.0
    border_crop: int = 24
    crop: int = 384
    quantize_8bit: bool = True
    add_noise: bool = True
    random_ccm: bool = True
    random_gains: bool = True
    smoothstep: bool = True
    gamma: bool = True
    rgb_order: str = "rgb"

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> BurstConfig:
        """Build from a config mapping; unknown keys are an error naming the key."""
        params = dict(params or {})
        names = {f.name for f in fields(cls)}
        for key in params:
            if key not in names:
                raise ReproError(f"burst_sr.burst: unknown key '{key}'")
        cfg = cls(**params)
        if cfg.crop % (2 * cfg.downsample):
            raise ReproError(
                f"burst_sr.burst.crop: {cfg.crop} is not a multiple of "
                f"2*downsample={2 * cfg.downsample}"
            )
        if cfg.rgb_order not in ("rgb", "bgr"):
            raise ReproError(f"burst_sr.burst.rgb_order: '{cfg.rgb_order}' (use rgb or bgr)")
        return cfg

    @property
    def source_size(self) -> int:
        """Side of the sRGB crop a burst is made from (crop + 2 * border)."""
        return self.crop + 2 * self.border_crop

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Bursts:
    """A batch of synthetic bursts."""

    burst: torch.Tensor  # (B, N, 4, h, w) packed noisy RGGB in [0, 1]
    gt: torch.Tensor  # (B, 3, crop, crop) linear camera RGB
    flow: torch.Tensor  # (B, N, 2, 2h, 2w) LR-RGB pixels, frame-0 grid -> frame i (x, y)
    cam: camera.CameraParams
    translation: torch.Tensor  # (B, N, 2) HR pixels (x, y)
    rotation: torch.Tensor  # (B, N) degrees


def sample_motion(
    batch: int, cfg: BurstConfig, gen: torch.Generator, device="cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Translations ``(B, N, 2)`` (HR px) and rotations ``(B, N)`` (deg); frame 0 fixed."""
    n = cfg.burst_size
    t = (2 * torch.rand(batch, n, 2, generator=gen, device=device) - 1) * cfg.max_translation
    r = (2 * torch.rand(batch, n, generator=gen, device=device) - 1) * cfg.max_rotation
    shift = cfg.downsample / 2.0 - 0.5
    if cfg.max_translation <= 0.01:
        t = torch.full_like(t, shift)
    t[:, 0] = shift
    r[:, 0] = 0.0
    return t, r


def affine_matrices(translation: torch.Tensor, rotation: torch.Tensor, size: int) -> torch.Tensor:
    """Forward (source -> frame) 3x3 matrices ``Rot(centre, theta) @ Trans(t)``, OpenCV style."""
    theta = torch.deg2rad(rotation.double())
    a, b = torch.cos(theta), torch.sin(theta)
    c = size * 0.5
    m = torch.zeros(*rotation.shape, 3, 3, dtype=torch.float64, device=rotation.device)
    tx, ty = translation[..., 0].double(), translation[..., 1].double()
    m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1] = a, b, -b, a
    # Rot @ Trans: rotation offset plus the rotated translation.
    m[..., 0, 2] = (1 - a) * c - b * c + a * tx + b * ty
    m[..., 1, 2] = b * c + (1 - a) * c - b * tx + a * ty
    m[..., 2, 2] = 1.0
    return m


def _resize_taps(n_out: int, s: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """HR indices (n_out, 2) and weights (n_out, 2) that a bilinear 1/s resize reads."""
    pos = (torch.arange(n_out, device=device, dtype=torch.float64) + 0.5) * s - 0.5
    i0 = pos.floor()
    frac = pos - i0
    return torch.stack((i0, i0 + 1), -1), torch.stack((1 - frac, frac), -1)


def _q8(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest 8-bit level, as OpenCV's uint8 warp/resize output does."""
    return torch.round(x * 255.0).clamp(0, 255) / 255.0


def warp_downsample(linear: torch.Tensor, mats: torch.Tensor, cfg: BurstConfig) -> torch.Tensor:
    """Warp ``(B, 3, S, S)`` by ``(B, N, 3, 3)``, crop the border, resize by 1/s.

    Written by hand rather than with ``kornia.geometry.warp_affine`` + ``resize``: a bilinear
    1/s resize without anti-aliasing reads only 2 of every s HR rows and columns, so only those
    HR pixels are warped (s^2/4 times less work), and all N frames are sampled from one
    un-repeated source image in a single ``grid_sample`` call. Returns LR RGB frames
    ``(B, N, 3, h, w)``.
    """
    b, _, size, _ = linear.shape
    n, s, border = mats.shape[1], cfg.downsample, cfg.border_crop
    h = cfg.crop // s
    idx, wts = _resize_taps(h, s, linear.device)  # (h, 2)
    coords = (idx + border).reshape(-1).to(linear.dtype)  # HR pixels read by the resize
    inv = torch.linalg.inv(mats).to(linear.dtype)  # (B, N, 3, 3): frame -> source
    a = inv[..., :2, :, None, None]  # (B, N, 2, 3, 1, 1)
    # source = A[:2] @ (x, y, 1), separable over the output rows (y) and columns (x)
    src = a[:, :, :, 0] * coords.view(1, -1) + a[:, :, :, 1] * coords.view(-1, 1) + a[:, :, :, 2]
    grid = src.mul_(2.0 / (size - 1)).sub_(1.0).permute(0, 1, 3, 4, 2)  # (B, N, 2h, 2h, 2)
    grid = grid.reshape(b, n * 2 * h, 2 * h, 2)
    source = linear
    if cfg.quantize_8bit:
        source = (linear * 255.0).floor_().div_(255.0)  # the toolkit's astype(uint8) truncation
    warped = F.grid_sample(
        source, grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )  # (B, 3, N*2h, 2h)
    if cfg.quantize_8bit:
        warped = warped.mul_(255.0).round_().div_(255.0)
    warped = warped.view(b, 3, n, h, 2, h, 2)
    w = wts.to(linear.dtype)
    if bool((w == 0.5).all()):  # even s: the resize is a 2 x 2 mean
        lr = warped.sum((4, 6)).mul_(0.25)
    else:
        lr = (warped * w.view(1, 1, 1, h, 2, 1, 1) * w.view(1, 1, 1, 1, 1, h, 2)).sum((4, 6))
    if cfg.quantize_8bit:
        lr = lr.mul_(255.0).round_().div_(255.0)
    return lr.permute(0, 2, 1, 3, 4)


def lr_flow(mats: torch.Tensor, cfg: BurstConfig) -> torch.Tensor:
    """Ground-truth flow ``(B, N, 2, h, w)`` in LR-RGB pixels on frame 0's grid.

    ``flow[b, i, :, y, x]`` is where frame i sees the scene point that frame 0 shows at LR
    pixel (x, y), minus (x, y): backward-warping frame i with it reproduces frame 0.
    """
    s, border = cfg.downsample, cfg.border_crop
    h = cfg.crop // s
    q = torch.arange(h, device=mats.device, dtype=torch.float32)
    hr = (q + 0.5) * s - 0.5 + border  # HR coordinate of frame-0 LR pixel q (both axes)
    rel = (mats @ torch.linalg.inv(mats[:, :1])).float()  # frame 0 -> frame i
    a = rel[..., :2, :, None, None]  # (B, N, 2, 3, 1, 1)
    hr_i = a[:, :, :, 0] * hr.view(1, -1) + a[:, :, :, 1] * hr.view(-1, 1) + a[:, :, :, 2]
    lr_i = (hr_i - border + 0.5) / s - 0.5  # (B, N, 2, h, w)
    return lr_i - torch.stack((q.view(1, -1).expand(h, h), q.view(-1, 1).expand(h, h)))


def generate(
    srgb: torch.Tensor,
    cfg: BurstConfig,
    gen: torch.Generator,
    cam: camera.CameraParams | None = None,
    motion: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Bursts:
    """Bursts from sRGB crops ``(B, 3, S, S)`` (float in [0, 1], or uint8 0..255, which uses
    an exact 256-entry table for the tone-map and gamma inversion), S = crop + 2 * border.

    Random draws (camera, motion, noise) come from ``gen`` in a fixed order, so a seed fixes
    the output on a given device. ``cam``/``motion`` override the sampled values (tests).
    """
    b, c, size, size_w = srgb.shape
    from_8bit = srgb.dtype == torch.uint8
    if c != 3 or size != size_w or size != cfg.source_size:
        raise ReproError(
            f"burst input: expected (B, 3, {cfg.source_size}, {cfg.source_size}), "
            f"got {tuple(srgb.shape)}"
        )
    device = srgb.device
    if cfg.rgb_order == "bgr":  # emulate the toolkit's loader, which never converts from BGR
        srgb = srgb.flip(1)
    drawn = camera.sample_params(b, gen, device, cfg.random_ccm, cfg.random_gains, cfg.add_noise)
    cam = cam or drawn
    drawn_motion = sample_motion(b, cfg, gen, device)
    translation, rotation = motion or drawn_motion
    if from_8bit:  # 256 levels: invert tone map and gamma by table look-up
        lut = camera.unprocess_lut(cfg.smoothstep, cfg.gamma, device)
        linear = camera.unprocess_linearised(lut[srgb.long()], cam)
    else:
        linear = camera.unprocess(srgb, cam, cfg.smoothstep, cfg.gamma)
    mats = affine_matrices(translation, rotation, size)
    lr = warp_downsample(linear, mats, cfg)
    raw = camera.mosaic(lr)
    if cfg.add_noise:
        raw = camera.add_noise(raw, cam.shot_noise, cam.read_noise, gen)
    border = cfg.border_crop
    gt = linear[:, :, border : size - border, border : size - border]
    return Bursts(raw.clamp(0.0, 1.0), gt, lr_flow(mats, cfg), cam, translation, rotation)


def random_crops(
    images: list[torch.Tensor], count: int, size: int, gen: torch.Generator, flip: bool = True
) -> torch.Tensor:
    """``count`` random ``size`` x ``size`` crops (with random horizontal flips) of ``images``.

    ``images`` are ``(3, H, W)`` float tensors; an image smaller than ``size`` gives its largest
    square crop, bilinearly resized (as the toolkit's ``random_crop``).
    """
    pick = torch.randint(len(images), (count,), generator=gen).tolist()
    out = []
    for k in pick:
        img = images[k]
        _, h, w = img.shape
        side = min(size, h, w)
        y = int(torch.randint(h - side + 1, (1,), generator=gen))
        x = int(torch.randint(w - side + 1, (1,), generator=gen))
        crop = img[:, y : y + side, x : x + side]
        if side < size:
            up = F.interpolate(
                crop[None].float(), size=(size, size), mode="bilinear", align_corners=False
            )[0]
            crop = up.round().clamp(0, 255).to(crop.dtype) if crop.dtype == torch.uint8 else up
        if flip and bool(torch.rand(1, generator=gen) < 0.5):
            crop = crop.flip(-1)
        out.append(crop)
    return torch.stack(out)


def flow_to_packed(flow: torch.Tensor) -> torch.Tensor:
    """LR-RGB flow ``(..., 2, h, w)`` -> packed-grid flow ``(..., 2, h/2, w/2)`` in packed px."""
    lead = flow.shape[:-3]
    f = flow.reshape(-1, *flow.shape[-3:])
    f = F.avg_pool2d(f, 2) / 2.0
    return f.reshape(*lead, *f.shape[-3:])


def max_displacement(cfg: BurstConfig) -> float:
    """Largest LR displacement the motion model produces (translation plus rotation)."""
    rot = math.radians(cfg.max_rotation) * cfg.source_size / math.sqrt(2)
    return (cfg.max_translation * math.sqrt(2) + rot) / cfg.downsample
