"""A per-sample NumPy/OpenCV burst generator, one burst at a time, as the challenge toolkit does.

Used as the baseline of the throughput benchmark and as an independent second formulation in
the tests (OpenCV's ``warpAffine``/``resize`` instead of the batched ``grid_sample``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from repro.burstsr.camera import RGB2XYZ, XYZ2CAMS
from repro.burstsr.synth import BurstConfig


def cv_matrix(translation: tuple[float, float], theta: float, size: int) -> np.ndarray:
    """2x3 OpenCV matrix Rot(centre, theta) @ Trans(t) for a ``size`` x ``size`` image."""
    t = np.eye(3)
    t[0, 2], t[1, 2] = translation
    rot = np.vstack([cv2.getRotationMatrix2D((size * 0.5, size * 0.5), theta, 1.0), [0, 0, 1]])
    return (rot @ t)[:2]


def unprocess_np(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Inverse camera pipeline for one HxWx3 float image (per-pixel NumPy, in the image's
    float type: the toolkit runs this step in float32 torch)."""
    w = rng.uniform(0, 1, size=(4, 1, 1))
    xyz2cam = (np.asarray(XYZ2CAMS) * w).sum(0) / w.sum()
    rgb2cam = xyz2cam @ np.asarray(RGB2XYZ)
    rgb2cam /= rgb2cam.sum(-1, keepdims=True)
    rgb_gain = 1.0 / rng.normal(0.8, 0.1)
    red, blue = rng.uniform(1.9, 2.4), rng.uniform(1.5, 1.9)
    x = 0.5 - np.sin(np.arcsin(1.0 - 2.0 * np.clip(img, 0, 1)) / 3.0)
    x = np.maximum(x, 1e-8) ** x.dtype.type(2.2)
    x = x @ rgb2cam.T.astype(x.dtype)
    gains = (np.array([1.0 / red, 1.0, 1.0 / blue]) / rgb_gain).astype(x.dtype)
    gray = x.mean(-1, keepdims=True)
    mask = (np.maximum(gray - 0.9, 0) / 0.1) ** 2
    x = np.clip(x * np.maximum(mask + (1 - mask) * gains, gains), 0, 1)
    return x, {"rgb2cam": rgb2cam, "rgb_gain": rgb_gain, "red_gain": red, "blue_gain": blue}


def lr_burst_cv(
    linear: np.ndarray, translations: np.ndarray, thetas: np.ndarray, cfg: BurstConfig
) -> np.ndarray:
    """Warp, crop and downsample one linear HxWx3 image: (N, h, w, 3) float LR frames."""
    size = linear.shape[0]
    b = cfg.border_crop
    quant = cfg.quantize_8bit
    src = (linear * 255.0).astype(np.uint8) if quant else linear.astype(np.float32)
    frames = []
    for t, th in zip(translations, thetas, strict=True):
        warped = cv2.warpAffine(
            src,
            cv_matrix(tuple(t), float(th), size),
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
        warped = warped[b : size - b, b : size - b]
        lr = cv2.resize(
            warped,
            None,
            fx=1.0 / cfg.downsample,
            fy=1.0 / cfg.downsample,
            interpolation=cv2.INTER_LINEAR,
        )
        frames.append(lr.astype(np.float64) / (255.0 if cfg.quantize_8bit else 1.0))
    return np.stack(frames)


def toolkit_flow(translations: np.ndarray, thetas: np.ndarray, cfg: BurstConfig) -> np.ndarray:
    """Ground-truth flow ``(N, h, w, 2)`` the way the toolkit computes it: per frame, the source
    position of every HR pixel (homogeneous grid times the inverse warp), border-cropped,
    resized by 1/s like the image and divided by s; then minus frame 0's.

    The toolkit's convention: on frame i's grid, pointing into frame 0 (ours is the inverse
    map, on frame 0's grid; docs/burst-sr.md).
    """
    size, b, s = cfg.source_size, cfg.border_crop, cfg.downsample
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    grid = np.stack((cols, rows, np.ones_like(cols)), -1).reshape(-1, 3).astype(np.float32)
    positions = []
    for t, th in zip(translations, thetas, strict=True):
        mat = np.vstack([cv_matrix(tuple(t), float(th), size), [0.0, 0.0, 1.0]])
        inv = np.linalg.inv(mat)[:2].astype(np.float32)
        pos = (grid @ inv.T).reshape(size, size, 2)[b : size - b, b : size - b]
        lr = cv2.resize(pos, None, fx=1.0 / s, fy=1.0 / s, interpolation=cv2.INTER_LINEAR)
        positions.append(lr / s)
    positions = np.stack(positions)
    return positions - positions[:1]


def reference_burst(
    srgb: np.ndarray, cfg: BurstConfig, rng: np.random.Generator, flow: bool = False
) -> tuple[np.ndarray, ...]:
    """One noisy packed burst (N, 4, h/2, w/2) and its GT from an sRGB HxWx3 float crop, plus
    the toolkit's ground-truth flow when ``flow`` (the toolkit always computes it)."""
    linear, _ = unprocess_np(srgb, rng)
    n = cfg.burst_size
    shift = cfg.downsample / 2.0 - 0.5
    translations = rng.uniform(-cfg.max_translation, cfg.max_translation, size=(n, 2))
    thetas = rng.uniform(-cfg.max_rotation, cfg.max_rotation, size=n)
    translations[0], thetas[0] = shift, 0.0
    lr = lr_burst_cv(linear, translations, thetas, cfg)
    raw = np.stack(
        [lr[:, 0::2, 0::2, 0], lr[:, 0::2, 1::2, 1], lr[:, 1::2, 0::2, 1], lr[:, 1::2, 1::2, 2]], 1
    )
    if cfg.add_noise:
        log_shot = rng.uniform(math.log(1e-4), math.log(0.012))
        shot = math.exp(log_shot)
        read = math.exp(2.18 * log_shot + 1.20 + rng.normal(0, 0.26))
        raw = raw + rng.standard_normal(raw.shape) * np.sqrt(raw * shot + read)
    b = cfg.border_crop
    out = np.clip(raw, 0, 1), linear[b:-b, b:-b]
    return (*out, toolkit_flow(translations, thetas, cfg)) if flow else out
