"""Indexes over the user's copies of the fine-grained sets R2KD reports (nothing is copied).

Each dataset is read from its official distribution, extracted into one folder (``root``):

- ``cub200``, CUB-200-2011 (``CUB_200_2011.tgz``, Caltech): ``images.txt`` (``<id> <path>``,
  paths under ``images/``), ``image_class_labels.txt`` (``<id> <class 1..200>``),
  ``train_test_split.txt`` (``<id> <1 train | 0 test>``), ``classes.txt`` (``<class>
  <name>``). Official: 5,994 train, 5,794 test images.
- ``mit67``, MIT Indoor 67 (``indoorCVPR_09.tar`` plus ``TrainImages.txt`` and
  ``TestImages.txt`` from the dataset page): ``Images/<category>/<file>`` and the two lists
  (``<category>/<file>`` per line). Classes: the categories, sorted. Official: 5,360 / 1,340.
- ``stanford40``, Stanford 40 Actions (``JPEGImages.zip``, ``ImageSplits.zip``):
  ``JPEGImages/<action>_<nnn>.jpg``, ``ImageSplits/actions.txt`` (a header line, then
  ``<action> <count>``), ``ImageSplits/train.txt`` and ``test.txt`` (one file name a line; the
  action is the name without ``_<nnn>.jpg``). Official: 4,000 / 5,532.
- ``dogs``, Stanford Dogs (``images.tar``, ``lists.tar``): ``Images/<wnid>-<breed>/<file>``,
  ``train_list.mat`` and ``test_list.mat`` (MATLAB: ``file_list``, paths under ``Images/``;
  ``labels``, 1..120), at the root or in ``lists/``. Official: 12,000 / 8,580.

The index is ``<out>/{train,val}.csv`` (``path,label``; paths relative to ``root``; ``val`` is
the official test split, the one the papers report) and ``meta.json`` (``format:
folder-index``, root, classes, counts), read like the ImageNet index. Every listed image must
exist; with ``check_counts`` (default) the official counts are required.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.core import ReproError
from repro.core.atomic import write_json, write_text
from repro.data.dataset import Dataset, folder_problem
from repro.data.subset import Subset, check_subset, subset_dict, take

Split = list[tuple[str, int]]

#: Official (train, test) image counts and classes.
COUNTS = {
    "cub200": (5994, 5794, 200),
    "mit67": (5360, 1340, 67),
    "stanford40": (4000, 5532, 40),
    "dogs": (12000, 8580, 120),
}
#: Where each is obtained, and the files that identify its layout (relative to root).
SOURCES = {
    "cub200": "CUB_200_2011.tgz from https://www.vision.caltech.edu/datasets/cub_200_2011/",
    "mit67": "indoorCVPR_09.tar, TrainImages.txt and TestImages.txt from "
    "https://web.mit.edu/torralba/www/indoor.html",
    "stanford40": "JPEGImages.zip and ImageSplits.zip from "
    "http://vision.stanford.edu/Datasets/40actions.html",
    "dogs": "images.tar and lists.tar from http://vision.stanford.edu/aditya86/ImageNetDogs/",
}
MARKERS = {
    "cub200": ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt"),
    "mit67": ("Images", "TrainImages.txt", "TestImages.txt"),
    "stanford40": ("JPEGImages", "ImageSplits/actions.txt", "ImageSplits/train.txt"),
    "dogs": ("Images",),
}


def _lines(path: Path, name: str) -> list[str]:
    if not path.is_file():
        raise ReproError(f"{name}: {path} is missing (expected the official layout; see docs)")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _table(path: Path, name: str, columns: int) -> list[list[str]]:
    rows = []
    for i, line in enumerate(_lines(path, name), 1):
        parts = line.split(maxsplit=columns - 1)
        if len(parts) != columns:
            raise ReproError(f"{name}: {path} line {i} is {line!r}, expected {columns} fields")
        rows.append(parts)
    return rows


def read_cub200(root: Path) -> tuple[list[str], Split, Split]:
    """CUB-200-2011's classes and (path, label) of its train and test images."""
    name = "cub200"
    classes = {int(i): n for i, n in _table(root / "classes.txt", name, 2)}
    paths = {i: p for i, p in _table(root / "images.txt", name, 2)}
    labels = {i: int(c) for i, c in _table(root / "image_class_labels.txt", name, 2)}
    order = sorted(classes)
    index = {c: k for k, c in enumerate(order)}
    train: Split = []
    test: Split = []
    for image, flag in _table(root / "train_test_split.txt", name, 2):
        if image not in paths or image not in labels or labels[image] not in index:
            raise ReproError(f"{name}: image id {image} of train_test_split.txt is not in "
                             "images.txt / image_class_labels.txt / classes.txt")  # fmt: skip
        entry = (f"images/{paths[image]}", index[labels[image]])
        (train if flag == "1" else test).append(entry)
    return [classes[c] for c in order], train, test


def read_mit67(root: Path) -> tuple[list[str], Split, Split]:
    """MIT Indoor 67's categories and (path, label) of its official train and test lists."""
    name = "mit67"
    train_rel = _lines(root / "TrainImages.txt", name)
    test_rel = _lines(root / "TestImages.txt", name)
    categories = sorted({r.split("/", 1)[0] for r in train_rel})
    index = {c: k for k, c in enumerate(categories)}

    def split(rel: list[str], listing: str) -> Split:
        out = []
        for r in rel:
            category = r.split("/", 1)[0]
            if "/" not in r or category not in index:
                raise ReproError(f"{name}: {listing} entry {r!r} is not <category>/<file> of a "
                                 "training category")  # fmt: skip
            out.append((f"Images/{r}", index[category]))
        return out

    return categories, split(train_rel, "TrainImages.txt"), split(test_rel, "TestImages.txt")


def read_stanford40(root: Path) -> tuple[list[str], Split, Split]:
    """Stanford 40 Actions' actions and (path, label) of its train and test lists."""
    name = "stanford40"
    splits = root / "ImageSplits"
    rows = _lines(splits / "actions.txt", name)
    actions = [line.split()[0] for line in rows[1:]]  # the first line is a header
    index = {a: k for k, a in enumerate(actions)}

    def split(listing: str) -> Split:
        out = []
        for file in _lines(splits / listing, name):
            action = file.rsplit("_", 1)[0]
            if action not in index:
                raise ReproError(f"{name}: {listing} entry {file!r} names no action of "
                                 "actions.txt")  # fmt: skip
            out.append((f"JPEGImages/{file}", index[action]))
        return out

    return actions, split("train.txt"), split("test.txt")


def read_dogs(root: Path) -> tuple[list[str], Split, Split]:
    """Stanford Dogs' breeds (named by their folders) and (path, label) of its lists."""
    import numpy as np
    from scipy.io import loadmat

    name = "dogs"
    folder = root if (root / "train_list.mat").is_file() else root / "lists"

    def split(listing: str) -> Split:
        path = folder / listing
        if not path.is_file():
            raise ReproError(f"{name}: {path} is missing (lists.tar, extracted into the root)")
        try:
            mat = loadmat(path, squeeze_me=True)
            files = [str(f) for f in np.atleast_1d(mat["file_list"])]
            labels = [int(v) - 1 for v in np.atleast_1d(mat["labels"])]
        except (ValueError, KeyError, TypeError) as exc:
            raise ReproError(f"{name}: {path} is not the official list ({exc})") from exc
        return [(f"Images/{f}", y) for f, y in zip(files, labels, strict=True)]

    train, test = split("train_list.mat"), split("test_list.mat")
    names: dict[int, str] = {}
    for path, label in train + test:
        breed = path.split("/")[1]
        if names.setdefault(label, breed) != breed:
            raise ReproError(f"{name}: label {label + 1} names two folders ({names[label]}, "
                             f"{breed})")  # fmt: skip
    if sorted(names) != list(range(len(names))):
        raise ReproError(f"{name}: labels are not 1..{len(names)}")
    return [names[k] for k in range(len(names))], train, test


READERS: dict[str, Callable[[Path], tuple[list[str], Split, Split]]] = {
    "cub200": read_cub200,
    "mit67": read_mit67,
    "stanford40": read_stanford40,
    "dogs": read_dogs,
}


def root_problem(name: str, cfg: dict[str, Any]) -> str | None:
    """Why ``name`` cannot be indexed from ``data.<name>.root`` (one line), or None."""
    where = f"obtain {SOURCES[name]}, extract them into one folder"
    return folder_problem(name, cfg.get("root"), MARKERS[name], where)


def index_fgvr(
    name: str, root: str | os.PathLike[str], out_dir: str | os.PathLike[str],
    check_counts: bool = True, subset: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Read ``name``'s official lists under ``root``, check them and write the index; with
    ``subset`` (:mod:`repro.data.subset`) only the first classes' first images are listed."""
    check_subset(name, subset)
    if name not in READERS:
        raise ReproError(f"unknown fine-grained dataset '{name}' (one of {', '.join(COUNTS)})")
    problem = root_problem(name, {"root": str(root) if root else None})
    if problem:
        raise ReproError(problem)
    root = Path(root)
    classes, train, test = READERS[name](root)
    found = (len(train), len(test), len(classes))
    if check_counts and found != COUNTS[name]:
        raise ReproError(
            f"{name}: {root} lists {found[0]} train and {found[1]} test images of {found[2]} "
            f"classes; the official {COUNTS[name][0]} / {COUNTS[name][1]} of {COUNTS[name][2]} "
            f"(set data.{name}.check_counts: false for a subset)"
        )
    for split in (train, test):
        absent = next((p for p, _ in split if not (root / p).is_file()), None)
        if absent is not None:
            raise ReproError(f"{name}: {root / absent} is listed but missing")
    counts = {}
    for split_name, split in (("train", train), ("val", test)):
        split = take(split, subset, split_name)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["path", "label"])
        writer.writerows(split)
        write_text(Path(out_dir) / f"{split_name}.csv", buf.getvalue())
        counts[split_name] = len(split)
    meta = {
        "name": name,
        "format": "folder-index",
        "root": str(root.resolve()),
        "classes": classes,
        "counts": counts,
        "subset": subset or None,
        "format_version": 1,
    }
    write_json(Path(out_dir) / "meta.json", meta)
    return meta


@dataclass
class FolderParams:
    """``data.<name>`` of a fine-grained set (the schema's ``$defs.folder``)."""

    root: str | None = None
    check_counts: bool = True
    subset: Subset = field(default_factory=Subset)


class FineGrained(Dataset):
    """One of R2KD's fine-grained sets, indexed in place from ``data.<name>.root``."""

    kind = "index"
    params = FolderParams
    schema = "folder"
    rule = "index_fgvr"

    def __init__(self, name: str) -> None:
        self.name = name

    def prepare(
        self, params: FolderParams, out: Path, archive: Path | None, imbalance: float | None
    ) -> dict[str, Any]:
        return index_fgvr(
            self.name, params.root, out, params.check_counts, subset_dict(params.subset)
        )

    def check(self, params: FolderParams, data_dir: Path) -> list[str]:
        problem = root_problem(self.name, {"root": params.root})
        return [problem] if problem else []


DATASETS = tuple(FineGrained(name) for name in COUNTS)
