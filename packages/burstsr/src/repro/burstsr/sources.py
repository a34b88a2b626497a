"""Source images for synthetic bursts: the quick run's photographs or Zurich RAW-to-RGB.

Zurich RAW-to-RGB layout (official archive): ``<root>/{train,test}/canon/<i>.jpg`` (sRGB,
448 x 448) beside ``huawei_raw/<i>.png``; ids run 0..46838 (train) and 0..1203 (test). Images
are read as RGB (the toolkit's loader keeps OpenCV's BGR; see ``burst.rgb_order``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import torch

from repro.burstsr.params import SourceConfig
from repro.burstsr.synth import random_crops
from repro.core import ReproError

#: Official image counts of the Zurich RAW-to-RGB Canon folders.
ZURICH_COUNTS = {"train": 46839, "test": 1204}


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 RGB -> uint8 (3, H, W); the burst generator linearises 8-bit input exactly."""
    return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """An 8-bit colour image file as RGB uint8 (H, W, 3); a clear error if unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ReproError(f"{path}: cannot read image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class PhotoSource:
    """In-memory photographs (``repro.data.photos``) for the quick run."""

    kind = "photos"

    def __init__(self, photos_dir: str | os.PathLike[str], names: list[str]) -> None:
        from repro.data.photos import load_photos

        meta = Path(photos_dir) / "meta.json"
        if not meta.is_file():
            raise ReproError(f"{meta}: photographs not prepared (run the prepare_photos rule)")
        photos = load_photos(photos_dir)
        missing = [n for n in names if n not in photos]
        if missing:
            raise ReproError(f"burst_sr.data.photos: '{missing[0]}' not in {photos_dir}")
        self.names = list(names)
        self.images = [to_tensor(photos[n]) for n in names]

    def crops(self, count: int, size: int, gen: torch.Generator, flip: bool = True) -> torch.Tensor:
        return random_crops(self.images, count, size, gen, flip)


class ZurichSource:
    """Canon sRGB images of one Zurich RAW-to-RGB split, read on demand."""

    def __init__(self, root: str | os.PathLike[str], split: str, check_count: bool = False) -> None:
        folder = Path(root) / split / "canon"
        if not folder.is_dir():
            raise ReproError(f"{folder}: Zurich RAW-to-RGB '{split}' canon folder not found")
        ids = sorted(
            int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"(\d+)\.jpg", p.name))
        )
        if not ids:
            raise ReproError(f"{folder}: no <id>.jpg images")
        if check_count and len(ids) != ZURICH_COUNTS[split]:
            raise ReproError(f"{folder}: {len(ids)} images, expected {ZURICH_COUNTS[split]}")
        self.folder, self.ids = folder, ids
        self.kind = f"zurich-{split}"  # what the stored bursts record (meta.json source_kind)

    def __len__(self) -> int:
        return len(self.ids)

    def image(self, i: int) -> torch.Tensor:
        return to_tensor(read_rgb(self.folder / f"{self.ids[i]}.jpg"))

    def crops(self, count: int, size: int, gen: torch.Generator, flip: bool = True) -> torch.Tensor:
        pick = torch.randint(len(self.ids), (count,), generator=gen).tolist()
        return torch.cat([random_crops([self.image(k)], 1, size, gen, flip) for k in pick])


def make_source(data: SourceConfig, split: str) -> PhotoSource | ZurichSource:
    """The configured source for ``split`` ('train' or 'val')."""
    if data.source == "photos":
        names = data.train_photos if split == "train" else data.val_photos
        if names is None:
            key = "train_photos" if split == "train" else "val_photos"
            raise ReproError(f"burst_sr.data.{key}: not set (photographs of the {split} split)")
        return PhotoSource(data.photos_dir, list(names))
    # an extracted copy, or the one prepared from data.zurich.archive
    root = data.zurich_root or "data/zurich"
    return ZurichSource(root, "train" if split == "train" else "test")
