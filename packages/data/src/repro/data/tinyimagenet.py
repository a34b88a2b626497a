"""Tiny-ImageNet-200 from the official ``tiny-imagenet-200.zip``.

Layout inside the zip: ``tiny-imagenet-200/wnids.txt`` (200 WordNet ids, one a line),
``words.txt`` (``wnid<TAB>names``), ``train/<wnid>/images/<wnid>_<i>.JPEG`` (500 each),
``val/images/val_<i>.JPEG`` with ``val/val_annotations.txt`` (``file<TAB>wnid<TAB>x0<TAB>y0
<TAB>x1<TAB>y1``) and unlabelled ``test/images``. Images are 64x64 JPEGs; a few are greyscale
and are converted to RGB. The labelled ``val`` split is our ``test`` split (as in the papers).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from repro.core import ReproError
from repro.core.progress import progress
from repro.data.arrays import write_arrays

ROOT = "tiny-imagenet-200"


def _read(zf: zipfile.ZipFile, name: str, archive: Path) -> bytes:
    try:
        return zf.read(f"{ROOT}/{name}")
    except KeyError as exc:
        raise ReproError(
            f"{archive}: no '{ROOT}/{name}' inside; not the official Tiny-ImageNet archive"
        ) from exc


def _decode(blob: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"), dtype=np.uint8)


def read_tinyimagenet(archive: str | os.PathLike[str]):
    """Return ``{"train": (images, labels), "test": ...}`` and the 200 class names."""
    archive = Path(archive)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReproError(f"{archive}: not a readable zip ({exc})") from exc
    with zf:
        wnids = _read(zf, "wnids.txt", archive).decode().split()
        index = {w: i for i, w in enumerate(wnids)}
        words = dict(
            line.split("\t", 1)
            for line in _read(zf, "words.txt", archive).decode().splitlines()
            if "\t" in line
        )
        train_names = sorted(
            n for n in zf.namelist() if n.startswith(f"{ROOT}/train/") and n.endswith(".JPEG")
        )
        train_x = np.stack([_decode(zf.read(n)) for n in progress(train_names, "tiny train")])
        train_y = np.array([index[n.split("/")[2]] for n in train_names], dtype=np.int64)
        rows = [
            line.split("\t")
            for line in _read(zf, "val/val_annotations.txt", archive).decode().splitlines()
            if line
        ]
        test_x = np.stack(
            [_decode(_read(zf, f"val/images/{r[0]}", archive)) for r in progress(rows, "tiny val")]
        )
        test_y = np.array([index[r[1]] for r in rows], dtype=np.int64)
    classes = [words.get(w, w).split(",")[0].strip() for w in wnids]
    return {"train": (train_x, train_y), "test": (test_x, test_y)}, classes


def prepare_tinyimagenet(
    out_dir: str | os.PathLike[str], archive: str | os.PathLike[str]
) -> dict[str, Any]:
    """Write Tiny-ImageNet in the array format (train = train, test = official val)."""
    splits, classes = read_tinyimagenet(archive)
    return write_arrays(out_dir, splits, classes, "tinyimagenet", {"archive": Path(archive).name})
