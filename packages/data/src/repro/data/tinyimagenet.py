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
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from repro.core import ReproError
from repro.core.progress import progress
from repro.data.arrays import write_arrays
from repro.data.dataset import ArchiveDataset, ArchiveParams, need_archive
from repro.data.fetch import describe, forget_fetched

ROOT = "tiny-imagenet-200"


#: Official counts: classes, train images per class, labelled val images.
COUNTS = {"classes": 200, "per_class": 500, "val": 10000}


def _read(zf: zipfile.ZipFile, name: str, label: str) -> bytes:
    try:
        return zf.read(f"{ROOT}/{name}")
    except KeyError as exc:
        raise ReproError(
            f"{label}: no '{ROOT}/{name}' inside; not the official Tiny-ImageNet archive"
        ) from exc


def _decode(blob: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"), dtype=np.uint8)


def _open(archive: Path, label: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReproError(f"{label}: not a readable zip ({exc})") from exc


def _layout(zf: zipfile.ZipFile, label: str, check_counts: bool):
    """Class ids, sorted train image names and val annotation rows, checked against the
    member listing (and, with ``check_counts``, the official counts)."""
    wnids = _read(zf, "wnids.txt", label).decode().split()
    index = {w: i for i, w in enumerate(wnids)}
    names = set(zf.namelist())
    train = sorted(n for n in names if n.startswith(f"{ROOT}/train/") and n.endswith(".JPEG"))
    per_class = Counter(n.split("/")[2] for n in train)
    unknown = sorted(set(per_class) - set(index))
    if unknown:
        raise ReproError(f"{label}: train/{unknown[0]} is not listed in wnids.txt")
    if not wnids or len(set(per_class[w] for w in wnids)) != 1 or not per_class[wnids[0]]:
        counts = sorted(set(per_class[w] for w in wnids))
        raise ReproError(
            f"{label}: train/<wnid>/images hold {counts} images per class; the official "
            "archive has the same number for every class in wnids.txt"
        )
    rows = [
        line.split("\t")
        for line in _read(zf, "val/val_annotations.txt", label).decode().splitlines()
        if line
    ]
    for row in rows:
        if len(row) < 2 or row[1] not in index:
            raise ReproError(f"{label}: val_annotations.txt row {row[:2]} names no known class")
        if f"{ROOT}/val/images/{row[0]}" not in names:
            raise ReproError(f"{label}: val image {row[0]} of val_annotations.txt is missing")
    found = {"classes": len(wnids), "per_class": per_class[wnids[0]], "val": len(rows)}
    if check_counts and found != COUNTS:
        raise ReproError(
            f"{label}: {found['classes']} classes x {found['per_class']} train images and "
            f"{found['val']} val images, expected the official {COUNTS['classes']} x "
            f"{COUNTS['per_class']} and {COUNTS['val']}"
        )
    return wnids, train, rows


def verify_tinyimagenet(
    archive: str | os.PathLike[str], label: str | None = None, check_counts: bool = True
) -> None:
    """Check the zip's member listing (central directory; plus the small ``wnids.txt`` and
    ``val_annotations.txt``): every class of ``wnids.txt`` has the same number of train
    images and no other class folder exists, every annotated val image is present, and with
    ``check_counts`` the official 200 x 500 train and 10,000 val images. No image is decoded;
    member CRCs are checked when :func:`read_tinyimagenet` reads them. Errors start with
    ``label`` (default: the path)."""
    label = label or str(archive)
    with _open(Path(archive), label) as zf:
        _layout(zf, label, check_counts)


def read_tinyimagenet(archive: str | os.PathLike[str], check_counts: bool = False):
    """Return ``{"train": (images, labels), "test": ...}`` and the 200 class names.

    A corrupt member is an error naming the user's file and ``data.tinyimagenet.archive``
    (when ``archive`` is the link the fetch made, which is then removed).
    """
    archive = Path(archive)
    label = describe(archive, "tinyimagenet")
    with _open(archive, label) as zf:
        wnids, train_names, rows = _layout(zf, label, check_counts)
        index = {w: i for i, w in enumerate(wnids)}
        words = dict(
            line.split("\t", 1)
            for line in _read(zf, "words.txt", label).decode().splitlines()
            if "\t" in line
        )
        try:
            train_x = np.stack([_decode(zf.read(n)) for n in progress(train_names, "tiny train")])
            test_x = np.stack(
                [
                    _decode(_read(zf, f"val/images/{r[0]}", label))
                    for r in progress(rows, "tiny val")
                ]
            )
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # CRC, bad JPEG
            forget_fetched(archive)
            raise ReproError(f"{label}: corrupt member ({exc}); the archive was not used") from exc
        train_y = np.array([index[n.split("/")[2]] for n in train_names], dtype=np.int64)
        test_y = np.array([index[r[1]] for r in rows], dtype=np.int64)
    classes = [words.get(w, w).split(",")[0].strip() for w in wnids]
    return {"train": (train_x, train_y), "test": (test_x, test_y)}, classes


def prepare_tinyimagenet(
    out_dir: str | os.PathLike[str], archive: str | os.PathLike[str]
) -> dict[str, Any]:
    """Write Tiny-ImageNet in the array format (train = train, test = official val)."""
    splits, classes = read_tinyimagenet(archive)
    return write_arrays(out_dir, splits, classes, "tinyimagenet", {"archive": Path(archive).name})


class TinyImageNet(ArchiveDataset):
    """Tiny-ImageNet-200 (``check_counts``: the official counts when the archive is fetched)."""

    name = "tinyimagenet"
    rule = "prepare_tinyimagenet"

    def verify(self, params: ArchiveParams, path: Path, label: str) -> None:
        verify_tinyimagenet(path, label, params.check_counts)

    def prepare(
        self, params: ArchiveParams, out: Path, archive: Path | None, imbalance: float | None
    ) -> dict[str, Any]:
        return prepare_tinyimagenet(out, need_archive(self.name, archive))


DATASETS = (TinyImageNet(),)
