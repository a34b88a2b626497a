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

import cv2
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


#: packed channel -> (row parity, column parity) of the LR RGB pixels it keeps (R, Gr, Gb, B).
_PARITY = ((0, 0), (0, 1), (1, 0), (1, 1))


def tap_grid(mats: torch.Tensor, cfg: BurstConfig, size: int, dtype: torch.dtype) -> torch.Tensor:
    """``grid_sample`` grid ``(B, 4, N, 2p, 2p, 2)`` of the HR taps each packed pixel reads.

    A bilinear 1/s resize without anti-aliasing reads 2 x 2 HR pixels per LR pixel, and the
    RGGB mosaic keeps one colour per LR pixel, so packed channel k of frame i needs only the
    warped HR pixels (rows, columns) ``tap + border`` of its LR parity: 1/(3 s^2/4) of the
    warped frame. Rows/columns come in tap pairs, so a 2 x 2 pool of the samples is the resize.
    """
    s, border = cfg.downsample, cfg.border_crop
    p = cfg.crop // (2 * s)
    idx, _ = _resize_taps(2 * p, s, mats.device)  # LR pixel q -> its two HR taps
    by_parity = (idx.view(p, 2, 2) + border).permute(1, 0, 2).reshape(2, 2 * p)
    ys = by_parity[[py for py, _ in _PARITY]]  # (4, 2p)
    xs = by_parity[[px for _, px in _PARITY]]
    inv = torch.linalg.inv(mats)[..., :2, :] * (2.0 / (size - 1))  # frame -> source, normalised
    ax, ay, a0 = (inv[..., j][:, None, :, None, None, :] for j in range(3))  # (B, 1, N, 1, 1, 2)
    along_x = (ax * xs[None, :, None, None, :, None] + (a0 - 1.0)).to(dtype)  # (B, 4, N, 1, X, 2)
    along_y = (ay * ys[None, :, None, :, None, None]).to(dtype)  # (B, 4, N, Y, 1, 2)
    # two contiguous planes then one interleave: much faster than a broadcast into (..., 2)
    return torch.stack([along_x[..., c] + along_y[..., c] for c in range(2)], -1)


def warp_packed(
    source: torch.Tensor, mats: torch.Tensor, cfg: BurstConfig, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Warp ``(B, 3, S, S)`` by ``(B, N, 3, 3)``, crop, resize by 1/s and mosaic in one pass.

    Equals ``mosaic(resize(crop(warpAffine(source))))`` (OpenCV INTER_LINEAR, zero border) but
    samples only the HR pixels the resize and the mosaic keep, directly from the one source
    image (no per-frame copies). With ``cfg.quantize_8bit`` the source holds 8-bit levels
    (0..255) and the warp and resize outputs are rounded to levels, as OpenCV's uint8 path.
    Returns packed RGGB ``(B, N, 4, p, p)`` in [0, 1] (written into ``out`` if given).
    """
    b, _, size, _ = source.shape
    n, p = mats.shape[1], cfg.crop // (2 * cfg.downsample)
    grid = tap_grid(mats, cfg, size, source.dtype)
    _, wts = _resize_taps(1, cfg.downsample, source.device)  # the same for every LR pixel
    w = wts[0].to(source.dtype)
    if out is None:
        out = torch.empty(b, n, 4, p, p, dtype=source.dtype, device=source.device)
    for channel, packed in ((0, slice(0, 1)), (1, slice(1, 3)), (2, slice(3, 4))):
        g = grid[:, packed].reshape(b, -1, 2 * p, 2)
        taps = F.grid_sample(
            source[:, channel : channel + 1], g, "bilinear", "zeros", align_corners=True
        )  # (B, 1, k*N*2p, 2p)
        if cfg.quantize_8bit:
            taps = taps.round_()
        if bool((w == 0.5).all()):  # even s: the resize is a 2 x 2 mean
            lr = F.avg_pool2d(taps, 2)
        else:  # odd s: weights (1, 0)
            t = taps.view(b, -1, p, 2, p, 2)
            lr = (t * w.view(2, 1, 1) * w.view(2)).sum((3, 5))
        if cfg.quantize_8bit:
            lr = lr.round_().div_(255.0)
        out[:, :, packed].copy_(lr.view(b, -1, n, p, p).transpose(1, 2))
    return out


def lr_flow(mats: torch.Tensor, cfg: BurstConfig) -> torch.Tensor:
    """Ground-truth flow ``(B, N, 2, h, w)`` in LR-RGB pixels on frame 0's grid.

    ``flow[b, i, :, y, x]`` is where frame i sees the scene point that frame 0 shows at LR
    pixel (x, y), minus (x, y): backward-warping frame i with it reproduces frame 0. The map is
    affine in (x, y), so it is ``alpha * x + beta * y + gamma`` with per-frame coefficients.
    """
    s, border = cfg.downsample, cfg.border_crop
    h = cfg.crop // s
    rel = (mats @ torch.linalg.inv(mats[:, :1]))[..., :2, :]  # frame 0 -> frame i, (B, N, 2, 3)
    rel[:, 0] = torch.eye(2, 3, dtype=rel.dtype, device=rel.device)
    eye = torch.eye(2, dtype=rel.dtype, device=rel.device)
    c0 = s / 2.0 - 0.5 + border  # HR coordinate of LR pixel 0 (both axes)
    alpha, beta = rel[..., 0] - eye[0], rel[..., 1] - eye[1]  # (B, N, 2)
    gamma = ((rel[..., 0] + rel[..., 1]) * c0 + rel[..., 2] - border + 0.5) / s - 0.5
    q = torch.arange(h, device=mats.device, dtype=torch.float64)
    along_x = (alpha[..., None] * q + gamma[..., None]).float()[..., None, :]
    along_y = (beta[..., None] * q).float()[..., :, None]
    return along_x + along_y


def _linear_chunk(
    srgb: torch.Tensor, cam: camera.CameraParams, cfg: BurstConfig, lut: torch.Tensor | None
) -> torch.Tensor:
    """Clipped linear camera RGB ``(b, 3, S*S)`` (a view of a ``(b, 4, S*S)`` buffer).

    The CCM and the inverse gains are one 4 x 3 matrix per image (4th row: the grey level of
    the safe-gain mask); only the few near-white pixels (grey > 0.9) get the mask correction.
    """
    b = srgb.shape[0]
    if lut is not None and srgb.device.type == "cpu":  # uint8: exact table, OpenCV is fastest
        flat = srgb.contiguous().numpy().reshape(-1, srgb.shape[-1])
        x = torch.from_numpy(cv2.LUT(flat, lut.numpy())).view(b, 3, -1)
    elif lut is not None:
        x = lut.index_select(0, srgb.reshape(-1).int()).view(b, 3, -1)
    else:
        x = invert_smoothstep_gamma(srgb.reshape(b, 3, -1), cfg)
    inv = 1.0 / camera._gain_vector(cam, 3).to(torch.float64)  # (b, 3)
    ccm = cam.rgb2cam.to(torch.float64)
    mat = torch.cat((ccm * inv[:, :, None], ccm.mean(1, keepdim=True)), 1).to(x.dtype)
    y = torch.empty(b, 4, x.shape[-1], dtype=x.dtype, device=x.device)
    for r in range(4):  # three fused multiply-adds per row beat bmm with K = 3 on CPU
        torch.mul(x[:, 0], mat[:, r, 0, None], out=y[:, r])
        y[:, r].addcmul_(x[:, 1], mat[:, r, 1, None]).addcmul_(x[:, 2], mat[:, r, 2, None])
    gray = y[:, 3]
    hot = (gray > 0.9).nonzero(as_tuple=True)
    if hot[0].numel():
        mask = ((gray[hot] - 0.9) / 0.1) ** 2
        boost = (1.0 / inv - 1.0).clamp_min(0.0).to(x.dtype)[hot[0]]  # (K, 3)
        y[hot[0], :3, hot[1]] *= 1.0 + mask[:, None] * boost
    return y[:, :3].clamp_(0.0, 1.0)


def invert_smoothstep_gamma(x: torch.Tensor, cfg: BurstConfig) -> torch.Tensor:
    """Tone-map and gamma inversion of a float sRGB tensor, as enabled in ``cfg``."""
    x = camera.invert_smoothstep(x) if cfg.smoothstep else x
    return camera.gamma_expand(x) if cfg.gamma else x


#: bursts per internal chunk are chosen so one chunk's source images stay near this many bytes
#: (cache-sized working sets; huge temporaries cost page faults on CPU).
CHUNK_BYTES = 8 << 20


def generate(
    srgb: torch.Tensor,
    cfg: BurstConfig,
    gen: torch.Generator,
    cam: camera.CameraParams | None = None,
    motion: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Bursts:
    """Bursts from sRGB crops ``(B, 3, S, S)`` (float in [0, 1], or uint8 0..255, which uses
    an exact 256-entry table for the tone-map and gamma inversion), S = crop + 2 * border.

    Random draws (camera, motion, then noise chunk by chunk) come from ``gen`` in a fixed
    order, so a seed fixes the output on a given device. ``cam``/``motion`` override the
    sampled values (tests).
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
    mats = affine_matrices(translation, rotation, size)
    dtype = torch.float32 if from_8bit else srgb.dtype
    lut = camera.unprocess_lut(cfg.smoothstep, cfg.gamma, device) if from_8bit else None
    border, p = cfg.border_crop, cfg.crop // (2 * cfg.downsample)
    gt = torch.empty(b, 3, cfg.crop, cfg.crop, dtype=dtype, device=device)
    raw = torch.empty(b, mats.shape[1], 4, p, p, dtype=dtype, device=device)
    step = max(1, CHUNK_BYTES // (3 * size * size * 4)) if device.type == "cpu" else b
    for lo in range(0, b, step):
        sl = slice(lo, min(b, lo + step))
        k = sl.stop - lo
        linear = _linear_chunk(srgb[sl], cam.index(sl), cfg, lut).view(k, 3, size, size)
        gt[sl] = linear[:, :, border : size - border, border : size - border]
        source = linear.mul_(255.0).floor_() if cfg.quantize_8bit else linear
        out = warp_packed(source, mats[sl], cfg, raw[sl])
        if cfg.add_noise:
            out.copy_(camera.add_noise(out, cam.shot_noise[sl], cam.read_noise[sl], gen))
    return Bursts(raw.clamp_(0.0, 1.0), gt, lr_flow(mats, cfg), cam, translation, rotation)


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
