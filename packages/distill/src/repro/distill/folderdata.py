"""Image-folder datasets (ImageNet, the fine-grained sets) read through an index, with the
ArrayData interface.

ImageNet does not fit on the device as uint8 arrays, and its JPEGs have different sizes, so
each image is decoded and cropped on its own (per sample, in DataLoader worker processes)
before the fixed-size crops are stacked into a uint8 batch. Normalisation then runs on the
whole batch in ``BatchAugment``, as for ArrayData.

Train split: RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3, bilinear with antialiasing) to
``size``. Eval split: resize of the shorter side to ``size / 0.875`` (256 for 224) and centre
crop. Each sample's crop (and, with ``flip``, its horizontal flip) draws from its own
generator, seeded from the epoch generator and the sample index, so an epoch's augmentation
does not depend on the number of workers or of training processes (torchrun ranks decode
only their samples).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from repro.core import ReproError
from repro.data.arrays import read_meta


def is_folder_index(meta: dict) -> bool:
    """Whether a prepared dataset's ``meta.json`` describes an image-folder index (ImageNet, or
    ``format: folder-index``: the fine-grained sets of ``repro.data.fgvr``)."""
    return meta.get("name") == "imagenet" or meta.get("format") == "folder-index"


def random_resized_box(
    height: int,
    width: int,
    gen: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random area/aspect box (10 tries, then a centre crop)."""
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        u = torch.rand(3, generator=gen, dtype=torch.float64).tolist()
        target = area * (scale[0] + u[0] * (scale[1] - scale[0]))
        aspect = math.exp(log_lo + u[1] * (log_hi - log_lo))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=gen))
            left = int(torch.randint(0, width - w + 1, (1,), generator=gen))
            return top, left, h, w
    aspect = width / height  # fallback: the largest centred box within the ratio range
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


class _Decode(torch.utils.data.Dataset):
    """Key ``(index, seed)`` -> (uint8 ``(3, size, size)`` crop, label); seed < 0: eval crop."""

    def __init__(self, folder: FolderData) -> None:
        self.root, self.paths, self.labels = folder.root, folder.paths, folder.label_list
        self.size, self.resize = folder.crop_size, folder.resize
        self.flip = folder.flip

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, int]:
        # torchvision is imported here, not at module level: importing it pulls in
        # torch._dynamo (seconds), which array-dataset jobs never need.
        import torchvision.transforms.v2.functional as TF
        from torchvision.io import ImageReadMode, decode_image

        index, seed = key
        path = self.root / self.paths[index]
        try:
            img = decode_image(str(path), mode=ImageReadMode.RGB)
        except (RuntimeError, OSError) as exc:
            raise ReproError(f"{path}: cannot decode ({str(exc).splitlines()[0]})") from exc
        if seed >= 0:
            gen = torch.Generator().manual_seed(seed)
            top, left, h, w = random_resized_box(img.shape[-2], img.shape[-1], gen)
            img = TF.resized_crop(img, top, left, h, w, [self.size, self.size], antialias=True)
            if self.flip and float(torch.rand((), generator=gen)) < 0.5:
                img = img.flip(-1)
        else:
            img = TF.center_crop(TF.resize(img, [self.resize], antialias=True), [self.size] * 2)
        return img, self.labels[index]


class FolderData:
    """Images listed in ``<index>/<split>.csv`` (paths relative to ``meta.json``'s root)."""

    #: The split is not held on the device: each process decodes only its own samples (and
    #: augments them per sample; see the module docstring).
    resident = False

    def __init__(
        self,
        root: str | os.PathLike[str],
        paths: list[str],
        labels: list[int],
        num_classes: int,
        *,
        train: bool,
        device: str = "cpu",
        crop_size: int = 224,
        workers: int = 0,
        flip: bool = False,
    ) -> None:
        self.root = Path(root)
        self.paths, self.label_list = paths, labels
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.num_classes = num_classes
        self.train = train
        self.device = torch.device(device)
        self.crop_size = crop_size
        self.resize = round(crop_size / 0.875)
        self.workers = workers
        self.flip = flip and train

    @classmethod
    def load(
        cls,
        index_dir: str | os.PathLike[str],
        split: str,
        device: str = "cpu",
        *,
        crop_size: int = 224,
        workers: int = 0,
        flip: bool = False,
    ) -> FolderData:
        """Read the index of ``split`` (``train`` gets random crops, and random flips with
        ``flip``; others centre crops)."""
        meta = read_meta(index_dir)
        path = Path(index_dir) / f"{split}.csv"
        if not path.is_file():
            raise ReproError(f"{path}: not found; index the dataset first (snakemake {path})")
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return cls(
            meta["root"],
            [r["path"] for r in rows],
            [int(r["label"]) for r in rows],
            len(meta["classes"]),
            train=split == "train",
            device=device,
            crop_size=crop_size,
            workers=workers,
            flip=flip,
        )

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def size(self) -> tuple[int, int]:
        return self.crop_size, self.crop_size

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(uint8 images, labels)`` batches on the device, sharded like ArrayData.

        The order and every sample's crop seed come from ``generator`` (same on every rank).
        """
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        if self.train:
            seeds = torch.randint(0, 2**62, (n,), generator=generator)
        else:
            seeds = torch.full((n,), -1, dtype=torch.int64)
        order = order[rank::world_size]
        keys = list(zip(order.tolist(), seeds[order].tolist(), strict=True))
        loader = torch.utils.data.DataLoader(
            _Decode(self),
            batch_size=batch_size,
            sampler=keys,
            num_workers=self.workers,
            drop_last=drop_last,
            pin_memory=self.device.type == "cuda",
        )
        for images, labels in loader:
            yield (
                images.to(self.device, non_blocking=True),
                labels.to(self.device, non_blocking=True),
            )
