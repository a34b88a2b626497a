"""The fine-grained indexes (CUB-200-2011, MIT Indoor 67, Stanford 40 Actions, Stanford Dogs)
on small copies in each dataset's official layout and list formats (repro.data.fake)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from repro.core import ReproError
from repro.data.cli import main
from repro.data.fake import (
    dog_breeds,
    make_cub,
    make_dogs,
    make_mit67,
    make_stanford40,
    stanford40_actions,
)
from repro.data.fgvr import index_fgvr, root_problem
from repro.data.registry import check


def _rows(path: Path) -> list[tuple[str, int]]:
    return [(r["path"], int(r["label"])) for r in csv.DictReader(path.open())]


def test_cub200_index_follows_the_official_split_and_class_ids(tmp_path):
    make_cub(tmp_path / "CUB_200_2011", classes=3, train=2, test=1)
    meta = index_fgvr("cub200", tmp_path / "CUB_200_2011", tmp_path / "idx", check_counts=False)
    assert meta["classes"][1] == "002.Bird_species_002" and meta["format"] == "folder-index"
    assert meta["counts"] == {"train": 6, "val": 3}
    flags = dict(line.split() for line in (tmp_path / "CUB_200_2011/train_test_split.txt").open())
    paths = dict(line.split() for line in (tmp_path / "CUB_200_2011/images.txt").open())
    test_paths = [f"images/{paths[i]}" for i, flag in flags.items() if flag == "0"]
    val = _rows(tmp_path / "idx" / "val.csv")
    assert val == [(p, k) for k, p in enumerate(test_paths)]  # one test image per class
    assert val[2][0].startswith("images/003.Bird_species_003/Bird_species_003_")
    assert len(_rows(tmp_path / "idx" / "train.csv")) == 6
    assert json.loads((tmp_path / "idx" / "meta.json").read_text())["root"].endswith("CUB_200_2011")


def test_mit67_index_sorts_categories_and_reads_both_lists(tmp_path):
    order = make_mit67(tmp_path / "mit", classes=3, train=2, test=1)
    assert order == ["scene_02", "scene_01", "scene_00"]  # the lists are not sorted
    meta = index_fgvr("mit67", tmp_path / "mit", tmp_path / "idx", check_counts=False)
    assert meta["classes"] == ["scene_00", "scene_01", "scene_02"]
    assert _rows(tmp_path / "idx" / "val.csv") == [
        ("Images/scene_02/scene_02_0002.jpg", 2),
        ("Images/scene_01/scene_01_0002.jpg", 1),
        ("Images/scene_00/scene_00_0002.jpg", 0),
    ]
    assert meta["counts"] == {"train": 6, "val": 3}
    assert (tmp_path / "mit" / "TrainImages.txt").read_bytes().count(b"\r\n") == 6


def test_stanford40_labels_come_from_the_file_names_and_actions_txt(tmp_path):
    make_stanford40(tmp_path / "s40", classes=3, train=2, test=1)
    meta = index_fgvr("stanford40", tmp_path / "s40", tmp_path / "idx", check_counts=False)
    assert meta["classes"] == stanford40_actions(3) == [f"doing_action_0{a}" for a in range(3)]
    train = _rows(tmp_path / "idx" / "train.csv")
    assert ("JPEGImages/doing_action_01_002.jpg", 1) in train and len(train) == 6


@pytest.mark.parametrize("in_lists", [False, True])
def test_dogs_index_reads_the_matlab_lists(tmp_path, in_lists):
    make_dogs(tmp_path / "dogs", classes=3, train=2, test=1, in_lists=in_lists)
    meta = index_fgvr("dogs", tmp_path / "dogs", tmp_path / "idx", check_counts=False)
    breeds = dog_breeds(3)
    assert meta["classes"] == breeds and breeds[1] == "n02085757-Dog_breed_001"
    assert _rows(tmp_path / "idx" / "val.csv")[1] == (
        "Images/n02085757-Dog_breed_001/n02085757_1014.jpg",
        1,
    )
    assert meta["counts"] == {"train": 6, "val": 3}


def test_official_counts_are_required_unless_switched_off(tmp_path):
    make_cub(tmp_path / "cub", classes=3, train=2, test=1)
    with pytest.raises(ReproError, match="6 train and 3 test images of 3 classes; the official "
                       "5994 / 5794 of 200"):  # fmt: skip
        index_fgvr("cub200", tmp_path / "cub", tmp_path / "idx")


def test_a_listed_image_that_is_missing_is_named(tmp_path):
    make_stanford40(tmp_path / "s40", classes=3, train=2, test=1)
    (tmp_path / "s40" / "JPEGImages" / "doing_action_00_003.jpg").unlink()
    with pytest.raises(ReproError, match="doing_action_00_003.jpg is listed but missing"):
        index_fgvr("stanford40", tmp_path / "s40", tmp_path / "idx", check_counts=False)
    assert not (tmp_path / "idx").exists()


def test_start_up_check_names_the_key_and_what_is_missing(tmp_path):
    assert "data.mit67.root is not set" in root_problem("mit67", {"root": None})
    (tmp_path / "mit").mkdir()
    (tmp_path / "mit" / "Images").mkdir()
    problem = root_problem("mit67", {"root": str(tmp_path / "mit")})
    assert "which has no TrainImages.txt" in problem and "indoorCVPR_09.tar" in problem
    make_dogs(tmp_path / "dogs", classes=3)
    assert root_problem("dogs", {"root": str(tmp_path / "dogs")}) is None
    problems = check({"cub200": {"root": None}, "dogs": {"root": str(tmp_path / "dogs")}},
                     ["cub200", "dogs"], tmp_path / "data")  # fmt: skip
    assert len(problems) == 1 and problems[0].startswith("cub200: data.cub200.root is not set")


def test_cli_prepares_an_index_and_reports_errors_in_one_line(tmp_path, capsys):
    make_mit67(tmp_path / "mit", classes=3)
    params = json.dumps({"root": str(tmp_path / "mit"), "check_counts": False})
    assert main(["prepare", "mit67", "--out", str(tmp_path / "idx"), "--params", params]) == 0
    assert (tmp_path / "idx" / "meta.json").is_file()
    assert main(["prepare", "dogs", "--out", str(tmp_path / "d"), "--params", "{}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data.dogs.root is not set" in err
