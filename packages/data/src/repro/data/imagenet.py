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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.core import ReproError
from repro.core.atomic import write_json, write_text
from repro.data.dataset import Dataset, folder_problem
from repro.data.subset import Subset, check_subset, subset_dict, take

WNID = re.compile(r"^n\d{8}$")
EXTENSIONS = {".jpeg", ".jpg", ".png"}
#: Where the user obtains the folder (start-up check and errors).
WHERE = (
    "download ILSVRC-2012 from https://image-net.org (train/ and val/ with one folder per class)"
)


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


@dataclass
class ImagenetParams:
    """``data.imagenet``: the user's ILSVRC-2012 folder, its class count, an optional subset."""

    root: str | None = None
    num_classes: int = 1000
    subset: Subset = field(default_factory=Subset)


class Imagenet(Dataset):
    """An index over the user's ILSVRC-2012 folder."""

    name = "imagenet"
    kind = "index"
    params = ImagenetParams
    schema = "imagenet"
    rule = "index_imagenet"

    def prepare(
        self, params: ImagenetParams, out: Path, archive: Path | None, imbalance: float | None
    ) -> dict[str, Any]:
        if not params.root:
            raise ReproError(
                "imagenet: no ILSVRC-2012 folder configured; download it from "
                "https://image-net.org (train + val in class folders) and set "
                "config key 'data.imagenet.root'"
            )
        return index_imagenet(params.root, out, params.num_classes, subset_dict(params.subset))

    def check(self, params: ImagenetParams, data_dir: Path) -> list[str]:
        problem = folder_problem(self.name, params.root, ("train/", "val/"), WHERE)
        return [problem] if problem else []


DATASETS = (Imagenet(),)
