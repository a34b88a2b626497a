"""Array datasets kept on the training device as uint8, batched and augmented there.

The whole split lives on the device (CIFAR-100 train is 150 MB as uint8), so an epoch is a
permutation plus slicing: no DataLoader workers, no per-sample Python. Augmentation runs on
whole batches with kornia (random crop with zero padding, horizontal flip, normalisation).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from repro.data.arrays import load_split

#: Channel statistics used by mdistiller for CIFAR-100 (mean, std).
CIFAR100_STATS = ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))


@dataclass
class ArrayData:
    """Images ``(N, C, H, W)`` uint8 and labels ``(N,)`` int64, on one device."""

    #: The whole split is on the device: each training process can draw (and augment) the
    #: whole global batch cheaply and keep its rows (repro.distill.trainer).
    resident = True

    images: Tensor
    labels: Tensor
    num_classes: int

    @classmethod
    def load(
        cls,
        data_dir: str | os.PathLike[str],
        split: str,
        device: str = "cpu",
        num_classes: int | None = None,
    ) -> ArrayData:
        """Load a split written by ``repro.data.arrays`` and move it to ``device``."""
        images, labels = load_split(data_dir, split)
        x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
        y = torch.from_numpy(labels).to(device)
        return cls(x, y, num_classes or int(y.max()) + 1)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """Image height and width."""
        return int(self.images.shape[-2]), int(self.images.shape[-1])

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
        """Yield ``(uint8 images, labels)`` batches; ``rank``/``world_size`` shard the order.

        With several processes every rank draws the same permutation (same generator seed)
        and takes every ``world_size``-th index, like ``DistributedSampler``.
        """
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order[rank::world_size].to(self.images.device)
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield self.images.index_select(0, idx), self.labels.index_select(0, idx)


class BatchAugment(torch.nn.Module):
    """uint8 batch -> float batch: optional random crop (zero padding) and flip, then normalise."""

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        crop_padding: int = 0,
        flip: bool = False,
        size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        import kornia.augmentation as K

        ops: list[torch.nn.Module] = []
        if crop_padding and size is not None:
            ops.append(K.RandomCrop(size, padding=crop_padding, fill=0))
        if flip:
            ops.append(K.RandomHorizontalFlip())
        self.random = K.AugmentationSequential(*ops) if ops else None
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, images: Tensor, train: bool = True) -> Tensor:
        x = images.float().div_(255.0)
        if train and self.random is not None:
            x = self.random(x)
        return (x - self.mean) / self.std
