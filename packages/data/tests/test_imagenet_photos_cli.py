import csv
import json

import numpy as np
import pytest
import skimage.data

from repro.core import ReproError
from repro.data.cli import main
from repro.data.fake import imagenet_wnids, make_imagenet
from repro.data.imagenet import index_imagenet
from repro.data.photos import load_photos, prepare_photos
from repro.data.registry import check

WNIDS = imagenet_wnids(3)


def test_imagenet_index_lists_every_image_with_its_class(tmp_path):
    make_imagenet(tmp_path / "ilsvrc", classes=3, per_class=2, head=0)
    meta = index_imagenet(tmp_path / "ilsvrc", tmp_path / "idx", num_classes=3)
    assert meta["classes"] == WNIDS == sorted(WNIDS)
    rows = list(csv.DictReader((tmp_path / "idx" / "val.csv").open()))
    assert len(rows) == 6 and meta["counts"] == {"train": 6, "val": 6}
    assert rows[2]["path"].startswith(f"val/{WNIDS[1]}/ILSVRC2012_val_") and rows[2]["label"] == "1"
    train = list(csv.DictReader((tmp_path / "idx" / "train.csv").open()))
    assert train[3] == {"path": f"train/{WNIDS[1]}/{WNIDS[1]}_1.JPEG", "label": "1"}
    assert not any((tmp_path / "idx").glob("*.JPEG"))  # indexed, not copied


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("missing_val", r"ilsvrc/val is missing"),
        ("bad_folder", r"not a WordNet id folder"),
        ("class_count", r"has 3 class folders, expected 1000"),
    ],
)
def test_imagenet_layout_errors_name_the_problem(tmp_path, breakage, message):
    make_imagenet(tmp_path / "ilsvrc", classes=3, per_class=2, head=0)
    n = 3
    if breakage == "missing_val":
        for p in sorted((tmp_path / "ilsvrc" / "val").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (tmp_path / "ilsvrc" / "val").rmdir()
    elif breakage == "bad_folder":
        (tmp_path / "ilsvrc" / "train" / "cats").mkdir()
    else:
        n = 1000
    with pytest.raises(ReproError, match=message):
        index_imagenet(tmp_path / "ilsvrc", tmp_path / "idx", num_classes=n)


def test_photos_round_trip_exactly(tmp_path):
    prepare_photos(tmp_path, ["chelsea", "coffee"])
    photos = load_photos(tmp_path)
    assert np.array_equal(photos["chelsea"], skimage.data.chelsea())
    assert json.loads((tmp_path / "meta.json").read_text())["shapes"]["coffee"] == [400, 600, 3]


def test_check_names_missing_imagenet_and_key(tmp_path):
    problems = check({"imagenet": {"root": None}}, ["imagenet"], tmp_path)
    assert len(problems) == 1 and "data.imagenet.root" in problems[0]
    assert check({"cifar100": {"url": "u", "hash": "md5:0"}}, ["cifar100-lt10"], tmp_path) == []
    off = check({"cifar100": {"url": "u", "download": False}}, ["cifar100"], tmp_path)
    assert "data.cifar100.archive" in off[0]


def test_cli_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["prepare", "imagenet", "--out", str(tmp_path / "i"), "--params", "{}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: imagenet:")
    assert not (tmp_path / "i").exists()
