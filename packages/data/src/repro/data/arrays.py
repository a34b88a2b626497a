"""The on-disk format of array datasets (digits, CIFAR-100, Tiny-ImageNet).

A dataset folder holds, per split ``S``:

- ``S_images.npy`` — ``uint8`` array of shape ``(N, H, W, C)`` (channels last);
- ``S_labels.npy`` — ``int64`` array of shape ``(N,)`` with class indices ``0..K-1``;

and one ``meta.json``: ``{"name", "classes": [K names], "splits": {S: {"n", "shape",
"counts"}}, "files": {file: sha256}, "source", "format_version"}``. Every file is written
atomically and ``meta.json`` last, so a folder with a ``meta.json`` is complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repro.core import ReproError
from repro.core.atomic import atomic_path, sha256_file, write_json

FORMAT_VERSION = 1


def write_arrays(
    out_dir: str | os.PathLike[str],
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    classes: Sequence[str],
    name: str,
    source: Mapping[str, Any],
) -> dict[str, Any]:
    """Write ``{split: (images, labels)}`` in the documented format and return the meta."""
    out = Path(out_dir)
    files: dict[str, str] = {}
    info: dict[str, Any] = {}
    for split, (images, labels) in splits.items():
        images = np.ascontiguousarray(images, dtype=np.uint8)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        if images.ndim != 4 or len(images) != len(labels):
            raise ReproError(
                f"{name}/{split}: images {images.shape} and labels "
                f"{labels.shape} do not match the (N, H, W, C) format"
            )
        for suffix, array in (("images", images), ("labels", labels)):
            fname = f"{split}_{suffix}.npy"
            with atomic_path(out / fname) as tmp, open(tmp, "wb") as fh:
                np.save(fh, array)
            files[fname] = sha256_file(out / fname)
        counts = np.bincount(labels, minlength=len(classes))
        info[split] = {
            "n": int(len(labels)),
            "shape": list(images.shape[1:]),
            "counts": counts.tolist(),
        }
    meta = {
        "name": name,
        "classes": list(classes),
        "splits": info,
        "files": files,
        "source": dict(source),
        "format_version": FORMAT_VERSION,
    }
    write_json(out / "meta.json", meta)
    return meta


def read_meta(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``meta.json`` of a prepared dataset, with a clear error if it is missing."""
    path = Path(data_dir) / "meta.json"
    if not path.is_file():
        raise ReproError(f"{path}: not found; prepare the dataset first (snakemake {path})")
    return json.loads(path.read_text(encoding="utf-8"))


def load_split(
    data_dir: str | os.PathLike[str], split: str, verify: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(images, labels)`` of one split; ``verify`` re-checks the SHA-256 sums."""
    data_dir = Path(data_dir)
    meta = read_meta(data_dir)
    if split not in meta["splits"]:
        raise ReproError(f"{data_dir}: no split '{split}' (has {', '.join(meta['splits'])})")
    arrays = []
    for suffix in ("images", "labels"):
        fname = f"{split}_{suffix}.npy"
        if verify and sha256_file(data_dir / fname) != meta["files"][fname]:
            raise ReproError(f"{data_dir / fname}: checksum does not match meta.json")
        arrays.append(np.load(data_dir / fname))
    return arrays[0], arrays[1]
