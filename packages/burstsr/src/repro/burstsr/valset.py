"""Stored validation bursts: generated once, so every model is scored on the same bursts.

Layout (as the DBSR ``generate_synthetic_dataset`` script, metadata as JSON, not pickle)::

    <dir>/bursts/<k:04d>/im_raw_<i:02d>.png   4-channel uint16, R Gr Gb B, value x * 2^14
    <dir>/gt/<k:04d>/im_rgb.png               3-channel uint16, R G B, value x * 2^14
    <dir>/gt/<k:04d>/meta_info.json           camera parameters and motion of burst k
    <dir>/flow/<k:04d>.npy                    ground-truth flow (N, 2, h, w), float32
    <dir>/meta.json                           written last: count, burst config, seed

PNGs are written and read with OpenCV without channel swaps, so an OpenCV reader gets the
channel order above; other readers see OpenCV's BGR(A) order reversed (as official files).
Values are truncated to 14 bits like submissions.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from repro.burstsr import camera, synth
from repro.core import ReproError
from repro.core.atomic import atomic_open, write_json
from repro.core.params import to_dict

SCALE = 2**14


def write_png16(path: Path, array: np.ndarray) -> None:
    """Atomically write an HxWxC float array in [0, 1] as uint16 PNG holding x * 2^14."""
    data = np.floor(np.clip(array, 0.0, 1.0) * SCALE).astype(np.uint16)
    ok, buf = cv2.imencode(".png", data)
    if not ok:
        raise ReproError(f"{path}: PNG encoding failed")
    with atomic_open(path, "wb") as fh:
        fh.write(buf.tobytes())


def read_png16(path: Path, channels: int) -> np.ndarray:
    """Read a uint16 PNG written by :func:`write_png16` as float32 HxWxC."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ReproError(f"{path}: cannot read PNG")
    if data.dtype != np.uint16 or data.ndim != 3 or data.shape[2] != channels:
        raise ReproError(
            f"{path}: expected {channels}-channel uint16 PNG, got {data.dtype} {data.shape}"
        )
    return data.astype(np.float32) / SCALE


@dataclass
class ValSet:
    """Loaded validation bursts."""

    burst: torch.Tensor  # (K, N, 4, h, w)
    gt: torch.Tensor  # (K, 3, H, W)
    flow: torch.Tensor  # (K, N, 2, 2h, 2w)
    cam: camera.CameraParams
    meta: dict[str, Any]


def make_val(
    source: Any,
    cfg: synth.BurstConfig,
    count: int,
    seed: int,
    out_dir: str | os.PathLike[str],
    chunk: int = 8,
) -> dict[str, Any]:
    """Generate ``count`` bursts from random crops of ``source`` and store them."""
    out = Path(out_dir)
    gen = torch.Generator().manual_seed(seed)
    done, buffers = 0, synth.Buffers()
    while done < count:
        n = min(chunk, count - done)
        crops = source.crops(n, cfg.source_size, gen, flip=False)
        b = synth.generate(crops, cfg, gen, buffers=buffers)
        for j in range(n):
            k = done + j
            for i in range(cfg.burst_size):
                write_png16(
                    out / "bursts" / f"{k:04d}" / f"im_raw_{i:02d}.png",
                    b.burst[j, i].permute(1, 2, 0).numpy(),
                )
            write_png16(out / "gt" / f"{k:04d}" / "im_rgb.png", b.gt[j].permute(1, 2, 0).numpy())
            info = {key: val[j] for key, val in b.cam.to_dict().items()}
            info.update(
                translation=b.translation[j].tolist(),
                rotation=b.rotation[j].tolist(),
                smoothstep=cfg.smoothstep,
                gamma=cfg.gamma,
            )
            write_json(out / "gt" / f"{k:04d}" / "meta_info.json", info)
            with atomic_open(out / "flow" / f"{k:04d}.npy", "wb") as fh:
                np.save(fh, b.flow[j].numpy().astype(np.float32))
        done += n
    meta = {
        "count": count,
        "seed": seed,
        "burst": to_dict(cfg),
        "format_version": 1,
        "value_scale": SCALE,
        "source": getattr(source, "names", str(type(source).__name__)),
        "source_kind": getattr(source, "kind", None),  # photos, zurich-test, ...
    }
    write_json(out / "meta.json", meta)
    return meta


def load_val(val_dir: str | os.PathLike[str], limit: int | None = None) -> ValSet:
    """Read stored validation bursts (all, or the first ``limit``)."""
    root = Path(val_dir)
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise ReproError(f"{meta_path}: validation bursts not found (run make-val)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    count = meta["count"] if limit is None else min(limit, meta["count"])
    n = meta["burst"]["burst_size"]
    bursts, gts, flows, infos = [], [], [], []
    for k in range(count):
        frames = [
            read_png16(root / "bursts" / f"{k:04d}" / f"im_raw_{i:02d}.png", 4) for i in range(n)
        ]
        bursts.append(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2))
        gts.append(
            torch.from_numpy(read_png16(root / "gt" / f"{k:04d}" / "im_rgb.png", 3)).permute(
                2, 0, 1
            )
        )
        flows.append(torch.from_numpy(np.load(root / "flow" / f"{k:04d}.npy")))
        infos.append(
            json.loads((root / "gt" / f"{k:04d}" / "meta_info.json").read_text(encoding="utf-8"))
        )
    cam = camera.CameraParams.from_dict(
        {key: [info[key] for info in infos] for key in camera.CameraParams.__dataclass_fields__}
    )
    return ValSet(torch.stack(bursts), torch.stack(gts), torch.stack(flows), cam, meta)
