"""An index over a user-provided ILSVRC-2012 folder (nothing is copied).

Expected layout (the one torchvision's ``ImageFolder`` reads): ``<root>/train/<wnid>/*.JPEG``
and ``<root>/val/<wnid>/*.JPEG`` with the same ``num_classes`` WordNet ids (``n`` + 8 digits)
in both. The index is ``<out>/{train,val}.csv`` (``path,label``; paths relative to root) and
``meta.json`` (root, class ids, counts).
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any

from repro.core import ReproError
from repro.core.atomic import write_json, write_text
from repro.data.subset import check_subset, take

WNID = re.compile(r"^n\d{8}$")
EXTENSIONS = {".jpeg", ".jpg", ".png"}


def _classes(split_dir: Path) -> list[str]:
    if not split_dir.is_dir():
        raise ReproError(
            f"imagenet: {split_dir} is missing (expected <root>/train and "
            "<root>/val with one folder per class)"
        )
    dirs = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    bad = [d for d in dirs if not WNID.match(d)]
    if bad:
        raise ReproError(f"imagenet: {split_dir / bad[0]} is not a WordNet id folder (n########)")
    return dirs


def index_imagenet(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    num_classes: int = 1000,
    subset: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate the layout under ``root`` and write the CSV index and ``meta.json``; with
    ``subset`` (:mod:`repro.data.subset`) the index lists only the first classes' first
    images (the whole layout is still checked)."""
    check_subset("imagenet", subset)
    root = Path(root)
    if not root.is_dir():
        raise ReproError(f"imagenet: {root} (config key 'data.imagenet.root') does not exist")
    train_cls = _classes(root / "train")
    if len(train_cls) != num_classes:
        raise ReproError(
            f"imagenet: {root / 'train'} has {len(train_cls)} class folders, expected {num_classes}"
        )
    if _classes(root / "val") != train_cls:
        raise ReproError(f"imagenet: {root / 'val'} class folders differ from {root / 'train'}")
    label = {w: i for i, w in enumerate(train_cls)}
    counts: dict[str, int] = {}
    for split in ("train", "val"):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["path", "label"])
        rows = []
        for wnid in train_cls:
            files = sorted(
                p for p in (root / split / wnid).iterdir() if p.suffix.lower() in EXTENSIONS
            )
            if not files:
                raise ReproError(f"imagenet: {root / split / wnid} has no images")
            rows += [(f.relative_to(root).as_posix(), label[wnid]) for f in files]
        rows = take(rows, subset, split)
        writer.writerows(rows)
        write_text(Path(out_dir) / f"{split}.csv", buf.getvalue())
        counts[split] = len(rows)
    meta = {
        "name": "imagenet",
        "root": str(root.resolve()),
        "classes": train_cls,
        "counts": counts,
        "subset": subset or None,
        "format_version": 1,
    }
    write_json(Path(out_dir) / "meta.json", meta)
    return meta
