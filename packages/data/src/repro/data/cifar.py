"""CIFAR-100 from the official ``cifar-100-python.tar.gz`` and its long-tailed variants.

The archive holds ``cifar-100-python/{train,test,meta}``: Python pickles with keys
``data`` (``N x 3072`` uint8, channel-major R, G, B planes of 32x32), ``fine_labels``,
``coarse_labels``, ``filenames``, ``batch_label``; ``meta`` has ``fine_label_names``.
"""

from __future__ import annotations

import os
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from repro.core import ReproError
from repro.data.arrays import write_arrays
from repro.data.longtail import longtail_indices

MEMBER = "cifar-100-python"


def _unpickle(tar: tarfile.TarFile, name: str, archive: Path) -> dict[str, Any]:
    try:
        member = tar.extractfile(f"{MEMBER}/{name}")
    except KeyError:
        member = None
    if member is None:
        raise ReproError(
            f"{archive}: no '{MEMBER}/{name}' inside; not the official CIFAR-100 python archive"
        )
    obj = pickle.load(member, encoding="latin1")  # written by Python 2's cPickle
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar100(archive: str | os.PathLike[str]):
    """Return ``{"train": (images, labels), "test": ...}`` and the 100 fine class names."""
    archive = Path(archive)
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 - closed by the `with` below
    except (tarfile.TarError, OSError) as exc:
        raise ReproError(f"{archive}: not a readable .tar.gz ({exc})") from exc
    with tar:
        meta = _unpickle(tar, "meta", archive)
        splits = {}
        for split in ("train", "test"):
            batch = _unpickle(tar, split, archive)
            data = np.asarray(batch["data"], dtype=np.uint8)
            images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            splits[split] = (images, np.asarray(batch["fine_labels"], dtype=np.int64))
    return splits, list(meta["fine_label_names"])


def prepare_cifar100(
    out_dir: str | os.PathLike[str],
    archive: str | os.PathLike[str],
    imbalance: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write CIFAR-100 (or CIFAR-100-LT with ``imbalance``; test split unchanged)."""
    splits, classes = read_cifar100(archive)
    name = "cifar100"
    if imbalance is not None:
        images, labels = splits["train"]
        keep = longtail_indices(labels, imbalance, seed)
        splits["train"] = (images[keep], labels[keep])
        name = f"cifar100-lt{imbalance:g}"
    source = {"archive": Path(archive).name, "imbalance": imbalance, "lt_seed": seed}
    return write_arrays(out_dir, splits, classes, name, source)
