"""data.<name>.subset: the first classes, a few images each, labels of the full set."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from repro.core import ReproError
from repro.data.imagenet import index_imagenet
from repro.data.subset import check_subset, take

ROWS = [("a0", 0), ("a1", 0), ("a2", 0), ("b0", 1), ("c0", 2), ("c1", 2), ("a3", 0)]


def test_take_keeps_the_first_classes_and_images_in_listed_order():
    subset = {"classes": 2, "train_per_class": 2, "val_per_class": 1}
    assert take(ROWS, subset, "train") == [("a0", 0), ("a1", 0), ("b0", 1)]
    assert take(ROWS, subset, "val") == [("a0", 0), ("b0", 1)]
    assert take(ROWS, {"train_per_class": 1}, "train") == [("a0", 0), ("b0", 1), ("c0", 2)]
    assert take(ROWS, None, "train") == ROWS


@pytest.mark.parametrize(
    ("subset", "message"),
    [({"clases": 2}, "data.dogs.subset: unknown key 'clases'"),
     ({"classes": 0}, "data.dogs.subset.classes: 0 is not a positive integer")],
)  # fmt: skip
def test_a_bad_subset_is_one_line_naming_the_key(subset, message):
    with pytest.raises(ReproError, match=message):
        check_subset("dogs", subset)


def test_imagenet_subset_keeps_the_full_class_list_and_labels(tmp_path):
    wnids = [f"n{i:08d}" for i in range(5)]
    for split in ("train", "val"):
        for w in wnids:
            for k in range(3):
                path = tmp_path / "in" / split / w / f"{w}_{k}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path, format="JPEG")
    subset = {"classes": 3, "train_per_class": 2, "val_per_class": 1}
    meta = index_imagenet(tmp_path / "in", tmp_path / "out", num_classes=5, subset=subset)
    assert meta["classes"] == wnids and meta["counts"] == {"train": 6, "val": 3}
    rows = list(csv.DictReader((tmp_path / "out" / "val.csv").open()))
    assert [(r["path"], r["label"]) for r in rows] == [
        (f"val/{w}/{w}_0.JPEG", str(i)) for i, w in enumerate(wnids[:3])
    ]
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["subset"] == subset
