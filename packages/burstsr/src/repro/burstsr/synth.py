"""Synthetic RAW bursts (NTIRE 2021 track 1), batched and vectorised in torch.

One call turns ``B`` sRGB crops into ``B`` bursts of ``N`` noisy packed RGGB frames, the linear
ground truth and the ground-truth flow, on whatever device the input lives on. The motion
model follows the challenge: frame 0 is translated by (s/2 - 0.5, s/2 - 0.5) HR pixels, the
other frames by U(-T, T) and rotated by U(-R, R) degrees about the image centre (OpenCV's
``getRotationMatrix2D`` convention), warped bilinearly with zero border, border-cropped and
resized by 1/s with OpenCV's INTER_LINEAR (no anti-aliasing).

On 8-bit frames (``quantize_8bit``) the rounding is that of the pinned OpenCV (5.0) on uint8:
``warpAffine`` samples at float coordinates and rounds half to even, ``resize`` rounds half up
(fixed-point weights). The frame-0 shift of 1.5 px makes exact halves common (about a quarter
of the warped values and of the resized ones), so the rounding rule matters. The source is
sampled from a zero-padded buffer of side 2^k + 1 (:func:`padded_size`) so that ``grid_sample``
coordinates are exact binary fractions wherever the warp's are (frame 0, pure translations
by multiples of 1/2^j px): there the frames equal OpenCV's bit for bit (tests/test_synth.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import torch
import torch.nn.functional as F

from repro.burstsr import camera
from repro.burstsr.params import BurstConfig
from repro.core import ReproError


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


def padded_size(size: int) -> int:
    """Side ``2^k + 1 >= size`` of the zero-padded buffer the warp samples from: with
    ``grid_sample(align_corners=True)`` a pixel coordinate x maps to ``x / 2^(k-1) - 1`` and
    back by a power of two, so binary-fraction coordinates (the 1.5 px frame-0 shift) stay
    exact in float32 and exact ties reach the rounding as exact halves."""
    return 2 ** max(1, math.ceil(math.log2(max(size - 1, 2)))) + 1


def resize_taps(s: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """HR offsets and weights a bilinear 1/s resize (OpenCV INTER_LINEAR, no anti-aliasing)
    reads for LR pixel q, relative to HR pixel q*s: LR centre (q + 0.5) s - 0.5 falls halfway
    between two HR pixels for even s and on one HR pixel for odd s."""
    if s % 2 == 0:
        return (s // 2 - 1, s // 2), (0.5, 0.5)
    return ((s - 1) // 2,), (1.0,)


#: packed channel -> (row parity, column parity) of the LR RGB pixels it keeps (R, Gr, Gb, B).
_PARITY = ((0, 0), (0, 1), (1, 0), (1, 1))
#: colour plane -> the packed channels that read it (R; Gr, Gb; B).
_PLANES = ((0, slice(0, 1)), (1, slice(1, 3)), (2, slice(3, 4)))


def tap_lines(mats: torch.Tensor, cfg: BurstConfig, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each packed pixel's HR taps lie in the source, as ``grid_sample`` coordinates.

    Packed channel k of frame i keeps LR pixels of one parity, and the resize reads T HR
    pixels per LR pixel, so each (channel, tap) pair reads the warped frame on a regular grid
    of stride 2 s: HR ``(2 s m + parity s + offset + border)``, mapped back to the source by the
    inverse warp. That map is affine, so the coordinates of packed pixel (m_x, m_y) are
    ``along_x[..., m_x] + along_y[..., m_y]`` with ``along_x`` ``(B, 1, N, 1, 2, p)`` and
    ``along_y`` ``(B, 4, N, T, 2, p)`` (last-but-one axis: x, y in [-1, 1]).
    """
    s, border, p = cfg.downsample, cfg.border_crop, cfg.crop // (2 * cfg.downsample)
    f64 = dict(dtype=torch.float64, device=mats.device)
    offsets = torch.tensor(resize_taps(s)[0], **f64)
    parity = torch.tensor(_PARITY, **f64) * s + border  # (4, 2): row, column
    shape = (4, len(offsets), len(offsets))  # channel, tap row, tap column
    hx = (parity[:, 1, None, None] + offsets).expand(shape).reshape(4, -1)  # (4, T)
    hy = (parity[:, 0, None, None] + offsets[:, None]).expand(shape).reshape(4, -1)
    inv = torch.linalg.inv(mats)[..., :2, :] * (2.0 / (size - 1))  # frame px -> [-1, 1]
    cx, cy, c0 = (inv[:, None, :, None, :, j] for j in range(3))  # (B, 1, N, 1, 2)
    const = cx * hx[:, None, :, None] + cy * hy[:, None, :, None] + c0 - 1.0  # (B, 4, N, T, 2)
    m = torch.arange(p, **f64) * (2 * s)
    return (cx[..., None] * m).float(), (cy[..., None] * m + const[..., None]).float()


def warp_packed(
    source: torch.Tensor,
    mats: torch.Tensor,
    cfg: BurstConfig,
    out: torch.Tensor | None = None,
    grid: torch.Tensor | None = None,
    lines: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Warp ``(B, 3, S, S)`` by ``(B, N, 3, 3)``, crop, resize by 1/s and mosaic in one pass.

    Equals ``mosaic(resize(crop(warpAffine(source))))`` (OpenCV INTER_LINEAR, zero border) but
    samples only the HR pixels the resize and the mosaic keep, directly from the one source
    image (no per-frame copies): 1/(3 s^2/4) of the warped frames. With ``cfg.quantize_8bit``
    the source holds 8-bit levels (0..255) and the warp and resize outputs are rounded to
    levels as OpenCV 5's uint8 path does: the warp half to even, the resize half up. Returns
    packed RGGB ``(B, N, 4, p, p)`` in [0, 1] (written into ``out`` if given). ``grid`` is an
    optional ``(B, 4, N, T, p, p, 2)`` buffer and ``lines`` the precomputed :func:`tap_lines`.

    ``source`` may be zero-padded on the bottom and right (the matrices are those of the
    unpadded image): padded to :func:`padded_size` (as :func:`generate` does), coordinates
    that are binary fractions are exact and ties round exactly as OpenCV's.
    """
    b, _, size, _ = source.shape
    n, p = mats.shape[1], cfg.crop // (2 * cfg.downsample)
    along_x, along_y = lines or tap_lines(mats, cfg, size)
    taps_n = along_y.shape[3]
    if grid is None:
        grid = source.new_empty(b, 4, n, taps_n, p, p, 2)
    for c in range(2):  # two strided sums: a batched matmul with K = 3 is ~10x slower on CPU
        torch.add(along_x[..., c, None, :], along_y[..., c, :, None], out=grid[..., c])
    if out is None:
        out = source.new_empty(b, n, 4, p, p)
    for plane, packed in _PLANES:
        g = grid[:, packed].reshape(b, -1, p, 2)  # a view: channels of a plane are adjacent
        taps = F.grid_sample(
            source[:, plane : plane + 1], g, "bilinear", "zeros", align_corners=True
        ).view(b, -1, n, taps_n, p, p)
        if cfg.quantize_8bit:
            taps = taps.round_()  # warpAffine (OpenCV 5): float coordinates, half to even
        lr = taps.sum(3).mul_(1.0 / taps_n) if taps_n > 1 else taps[:, :, :, 0]
        if cfg.quantize_8bit:  # resize: fixed point, half up (a mean of 1 or 4 levels is exact)
            lr = lr.add_(0.5).floor_().div_(255.0)
        out[:, :, packed].copy_(lr.transpose(1, 2))
    return out


def lr_flow(mats: torch.Tensor, cfg: BurstConfig, out: torch.Tensor | None = None) -> torch.Tensor:
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
    return torch.add(along_x, along_y, out=out) if out is not None else along_x + along_y


def colour_matrices(
    cam: camera.CameraParams, dtype: torch.dtype, scale: float = 1.0
) -> tuple[torch.Tensor, ...]:
    """Per image: the CCM with the inverse gains (and ``scale``) folded in plus a 4th row
    giving the grey level of the safe-gain mask ``(B, 4, 3)``, and the per-channel boost of
    near-white pixels ``(B, 3)``: ``max(mask + (1 - mask) g, g) / g - 1 = mask max(1/g - 1, 0)``.
    """
    inv = 1.0 / camera._gain_vector(cam, 3).to(torch.float64)  # (B, 3)
    ccm = cam.rgb2cam.to(torch.float64)
    mat = torch.cat((ccm * inv[:, :, None] * scale, ccm.mean(1, keepdim=True)), 1)
    return mat.to(dtype), (1.0 / inv - 1.0).clamp_min(0.0).to(dtype)


def _linear_chunk(
    srgb: torch.Tensor,
    mat: torch.Tensor,
    boost: list[list[float]],
    cfg: BurstConfig,
    lut: torch.Tensor | None,
    x: torch.Tensor,
    y: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """Linear camera RGB clipped to [0, scale] ``(b, 3, S*S)``, a view of ``y``; ``x``
    ``(b, 3, S*S)`` and ``y`` ``(b, 4, S*S)`` are contiguous buffers (linearised levels and the
    matrix output). ``mat``, ``boost``: :func:`colour_matrices` with ``scale``; the mask
    correction runs only when some pixel is near white (grey > 0.9).
    """
    b = srgb.shape[0]
    if lut is not None and srgb.device.type == "cpu":  # uint8: exact table, OpenCV is fastest
        flat = srgb.contiguous().numpy().reshape(-1, srgb.shape[-1])
        cv2.LUT(flat, lut.numpy(), dst=x.numpy().reshape(flat.shape))
    elif lut is not None:
        torch.index_select(lut, 0, srgb.reshape(-1).int(), out=x.reshape(-1))
    else:
        x.copy_(invert_smoothstep_gamma(srgb.reshape(b, 3, -1), cfg))
    for r in range(4):  # three fused multiply-adds per row beat bmm with K = 3 on CPU
        torch.mul(x[:, 0], mat[:, r, 0, None], out=y[:, r])
        y[:, r].addcmul_(x[:, 1], mat[:, r, 1, None]).addcmul_(x[:, 2], mat[:, r, 2, None])
    gray = y[:, 3]
    if bool(gray.max() > 0.9):
        mask = gray.sub_(0.9).clamp_min_(0.0).square_().mul_(100.0)  # ((grey - 0.9) / 0.1)^2
        for i in range(b):  # y += boost * y * mask: one pass each, no temporary
            for c in range(3):
                y[i, c].addcmul_(y[i, c], mask[i], value=boost[i][c])
    return y[:, :3].clamp_(0.0, scale)


def invert_smoothstep_gamma(x: torch.Tensor, cfg: BurstConfig) -> torch.Tensor:
    """Tone-map and gamma inversion of a float sRGB tensor, as enabled in ``cfg``."""
    x = camera.invert_smoothstep(x) if cfg.smoothstep else x
    return camera.gamma_expand(x) if cfg.gamma else x


class Buffers:
    """Tensors that :func:`generate` reuses from one call to the next of the same shape.

    CPU torch has no caching allocator: every fresh large tensor costs a page fault per 4 KiB
    on first touch, which on a virtual machine (2-8 us each, measured) outweighs the
    arithmetic. With ``Buffers`` passed in, the returned bursts are views of these tensors and
    the next call overwrites them: use (or copy) them first, as a training step does.
    """

    def __init__(self) -> None:
        self._store: dict[str, torch.Tensor] = {}

    def get(
        self, name: str, shape: tuple[int, ...], like: torch.Tensor, zero: bool = False
    ) -> torch.Tensor:
        """A ``shape`` tensor of ``like``'s dtype and device, reused if it fits; uninitialised,
        or zero-filled when first made if ``zero`` (for padding that is never written)."""
        t = self._store.get(name)
        if t is None or t.shape != shape or t.dtype != like.dtype or t.device != like.device:
            make = torch.zeros if zero else torch.empty
            t = self._store[name] = make(shape, dtype=like.dtype, device=like.device)
        return t


#: CPU bursts per internal chunk: small enough for cache-sized working sets, and a multiple
#: of two so ``grid_sample`` (parallel over its batch only) keeps two cores busy.
CPU_CHUNK = 2


def generate(
    srgb: torch.Tensor,
    cfg: BurstConfig,
    gen: torch.Generator,
    cam: camera.CameraParams | None = None,
    motion: tuple[torch.Tensor, torch.Tensor] | None = None,
    buffers: Buffers | None = None,
) -> Bursts:
    """Bursts from sRGB crops ``(B, 3, S, S)`` (float in [0, 1], or uint8 0..255, which uses
    an exact 256-entry table for the tone-map and gamma inversion), S = crop + 2 * border.

    Random draws (camera, motion, then noise chunk by chunk) come from ``gen`` in a fixed
    order, so a seed fixes the output on a given device. ``cam``/``motion`` override the
    sampled values (tests). On CPU the batch is processed in chunks of :data:`CPU_CHUNK` bursts
    that reuse one set of work tensors; pass ``buffers`` to reuse them, and the outputs, across
    calls (see :class:`Buffers`).
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
    border, n, p = cfg.border_crop, mats.shape[1], cfg.crop // (2 * cfg.downsample)
    buffers = buffers or Buffers()
    like = torch.empty(0, dtype=dtype, device=device)
    step = min(b, CPU_CHUNK) if device.type == "cpu" else b
    pad = padded_size(size)  # the warp samples a zero-padded copy: exact binary fractions
    along_x, along_y = tap_lines(mats, cfg, pad)
    scale = 255.0 if cfg.quantize_8bit else 1.0  # the warp reads 8-bit levels (OpenCV uint8)
    mat, boost = colour_matrices(cam, dtype, scale)
    boost_rows = boost.tolist()  # per-image scalars of the safe-gain correction
    shot, read = cam.shot_noise.to(dtype), cam.read_noise.to(dtype)
    gt = buffers.get("gt", (b, 3, cfg.crop, cfg.crop), like)
    raw = buffers.get("raw", (b, n, 4, p, p), like)
    levels = buffers.get("levels", (step, 3, size * size), like)
    work = buffers.get("work", (step, 4, size * size), like)
    padded = buffers.get("padded", (step, 3, pad, pad), like, zero=True)  # pad never written
    grid = buffers.get("grid", (step, 4, n, along_y.shape[3], p, p, 2), like)
    noise = buffers.get("noise", (step, n, 4, p, p), like)
    for lo in range(0, b, step):
        sl = slice(lo, min(b, lo + step))
        k = sl.stop - lo
        linear = _linear_chunk(
            srgb[sl], mat[sl], boost_rows[sl], cfg, lut, levels[:k], work[:k], scale
        )
        linear = linear.view(k, 3, size, size)
        torch.mul(
            linear[:, :, border : size - border, border : size - border], 1.0 / scale, out=gt[sl]
        )
        source = padded[:k]
        if cfg.quantize_8bit:  # the toolkit's uint8 cast (truncation), into the padded buffer
            torch.floor(linear, out=source[:, :, :size, :size])
        else:
            source[:, :, :size, :size].copy_(linear)
        lines = (along_x[sl], along_y[sl])
        out = warp_packed(source, mats[sl], cfg, raw[sl], grid[:k], lines)
        if cfg.add_noise:
            camera.add_noise_(out, shot[sl], read[sl], gen, noise[:k])
    flow = lr_flow(mats, cfg, buffers.get("flow", (b, n, 2, 2 * p, 2 * p), like))
    return Bursts(raw.clamp_(0.0, 1.0), gt, flow, cam, translation, rotation)


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
