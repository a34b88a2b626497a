"""The fine-grained indexes (CUB-200-2011, MIT Indoor 67, Stanford 40 Actions, Stanford Dogs)
on small copies written here in each dataset's official layout and list formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from repro.core import ReproError
from repro.data.cli import check, main
from repro.data.fgvr import index_fgvr, root_problem


def _jpeg(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


def make_cub(root: Path) -> None:
    """CUB_200_2011 layout: 3 classes x 2 images, image 2 and 5 are test images."""
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    images, labels, split = [], [], []
    for k in range(6):
        cls = classes[k // 2]
        rel = f"{cls}/{cls.split('.')[1]}_{k:04d}_{100 + k}.jpg"
        _jpeg(root / "images" / rel, k)
        images.append(f"{k + 1} {rel}\n")
        labels.append(f"{k + 1} {k // 2 + 1}\n")
        split.append(f"{k + 1} {0 if k in (1, 4) else 1}\n")
    (root / "images.txt").write_text("".join(images))
    (root / "image_class_labels.txt").write_text("".join(labels))
    (root / "train_test_split.txt").write_text("".join(split))


def make_mit67(root: Path) -> None:
    """indoorCVPR_09 Images/ + TrainImages.txt / TestImages.txt (Windows line ends, as shipped)."""
    train, test = [], []
    for c, category in enumerate(["kitchen", "airport_inside", "bar"]):
        for i in range(3):
            rel = f"{category}/{category}_{i:03d}.jpg"
            _jpeg(root / "Images" / rel, 10 * c + i)
            (test if i == 2 else train).append(rel)
    (root / "TrainImages.txt").write_text("\r\n".join(train) + "\r\n")
    (root / "TestImages.txt").write_text("\r\n".join(test))


def make_stanford40(root: Path) -> None:
    """JPEGImages/<action>_<nnn>.jpg + ImageSplits/{actions,train,test}.txt."""
    actions = ["applauding", "blowing_bubbles", "brushing_teeth"]
    splits = root / "ImageSplits"
    splits.mkdir(parents=True)
    (splits / "actions.txt").write_text(
        "action_name\tnumber_of_images\n" + "".join(f"{a}\t3\n" for a in actions)
    )
    train, test = [], []
    for a, action in enumerate(actions):
        for i in range(1, 4):
            name = f"{action}_{i:03d}.jpg"
            _jpeg(root / "JPEGImages" / name, 20 + 3 * a + i)
            (train if i < 3 else test).append(name)
    (splits / "train.txt").write_text("\n".join(train) + "\n")
    (splits / "test.txt").write_text("\n".join(test) + "\n")


def make_dogs(root: Path, in_lists: bool = False) -> None:
    """Images/<wnid>-<breed>/ + train_list.mat / test_list.mat (MATLAB cell arrays, 1-based)."""
    breeds = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02085936-Maltese_dog"]
    lists = {"train": ([], []), "test": ([], [])}
    for b, breed in enumerate(breeds):
        for i in range(3):
            rel = f"{breed}/{breed.split('-')[0]}_{1000 + i}.jpg"
            _jpeg(root / "Images" / rel, 40 + 3 * b + i)
            files, labels = lists["test" if i == 0 else "train"]
            files.append(rel)
            labels.append(b + 1)
    folder = root / "lists" if in_lists else root
    folder.mkdir(parents=True, exist_ok=True)
    for split, (files, labels) in lists.items():
        cells = np.empty((len(files), 1), dtype=object)
        for i, f in enumerate(files):
            cells[i, 0] = np.array([f])
        savemat(
            folder / f"{split}_list.mat",
            {"file_list": cells, "annotation_list": cells,
             "labels": np.array(labels, dtype=float).reshape(-1, 1)},
        )  # fmt: skip


def _rows(path: Path) -> list[tuple[str, int]]:
    return [(r["path"], int(r["label"])) for r in csv.DictReader(path.open())]


def test_cub200_index_follows_the_official_split_and_class_ids(tmp_path):
    make_cub(tmp_path / "CUB_200_2011")
    meta = index_fgvr("cub200", tmp_path / "CUB_200_2011", tmp_path / "idx", check_counts=False)
    assert meta["classes"][1] == "002.Laysan_Albatross" and meta["format"] == "folder-index"
    assert meta["counts"] == {"train": 4, "val": 2}
    val = _rows(tmp_path / "idx" / "val.csv")
    assert val == [
        ("images/001.Black_footed_Albatross/Black_footed_Albatross_0001_101.jpg", 0),
        ("images/003.Sooty_Albatross/Sooty_Albatross_0004_104.jpg", 2),
    ]
    assert len(_rows(tmp_path / "idx" / "train.csv")) == 4
    assert json.loads((tmp_path / "idx" / "meta.json").read_text())["root"].endswith("CUB_200_2011")


def test_mit67_index_sorts_categories_and_reads_both_lists(tmp_path):
    make_mit67(tmp_path / "mit")
    meta = index_fgvr("mit67", tmp_path / "mit", tmp_path / "idx", check_counts=False)
    assert meta["classes"] == ["airport_inside", "bar", "kitchen"]
    assert _rows(tmp_path / "idx" / "val.csv") == [
        ("Images/kitchen/kitchen_002.jpg", 2),
        ("Images/airport_inside/airport_inside_002.jpg", 0),
        ("Images/bar/bar_002.jpg", 1),
    ]
    assert meta["counts"] == {"train": 6, "val": 3}


def test_stanford40_labels_come_from_the_file_names_and_actions_txt(tmp_path):
    make_stanford40(tmp_path / "s40")
    meta = index_fgvr("stanford40", tmp_path / "s40", tmp_path / "idx", check_counts=False)
    assert meta["classes"] == ["applauding", "blowing_bubbles", "brushing_teeth"]
    train = _rows(tmp_path / "idx" / "train.csv")
    assert ("JPEGImages/blowing_bubbles_002.jpg", 1) in train and len(train) == 6


@pytest.mark.parametrize("in_lists", [False, True])
def test_dogs_index_reads_the_matlab_lists(tmp_path, in_lists):
    make_dogs(tmp_path / "dogs", in_lists)
    meta = index_fgvr("dogs", tmp_path / "dogs", tmp_path / "idx", check_counts=False)
    assert meta["classes"] == ["n02085620-Chihuahua", "n02085782-Japanese_spaniel",
                               "n02085936-Maltese_dog"]  # fmt: skip
    assert _rows(tmp_path / "idx" / "val.csv")[1] == (
        "Images/n02085782-Japanese_spaniel/n02085782_1000.jpg",
        1,
    )
    assert meta["counts"] == {"train": 6, "val": 3}


def test_official_counts_are_required_unless_switched_off(tmp_path):
    make_cub(tmp_path / "cub")
    with pytest.raises(ReproError, match="4 train and 2 test images of 3 classes; the official "
                       "5994 / 5794 of 200"):  # fmt: skip
        index_fgvr("cub200", tmp_path / "cub", tmp_path / "idx")


def test_a_listed_image_that_is_missing_is_named(tmp_path):
    make_stanford40(tmp_path / "s40")
    (tmp_path / "s40" / "JPEGImages" / "applauding_003.jpg").unlink()
    with pytest.raises(ReproError, match="applauding_003.jpg is listed but missing"):
        index_fgvr("stanford40", tmp_path / "s40", tmp_path / "idx", check_counts=False)
    assert not (tmp_path / "idx").exists()


def test_start_up_check_names_the_key_and_what_is_missing(tmp_path):
    assert "data.mit67.root is not set" in root_problem("mit67", {"root": None})
    (tmp_path / "mit").mkdir()
    (tmp_path / "mit" / "Images").mkdir()
    problem = root_problem("mit67", {"root": str(tmp_path / "mit")})
    assert "which has no TrainImages.txt" in problem and "indoorCVPR_09.tar" in problem
    make_dogs(tmp_path / "dogs")
    assert root_problem("dogs", {"root": str(tmp_path / "dogs")}) is None
    problems = check({"cub200": {"root": None}, "dogs": {"root": str(tmp_path / "dogs")}},
                     ["cub200", "dogs"], tmp_path / "data")  # fmt: skip
    assert len(problems) == 1 and problems[0].startswith("cub200: data.cub200.root is not set")


def test_cli_prepares_an_index_and_reports_errors_in_one_line(tmp_path, capsys):
    make_mit67(tmp_path / "mit")
    params = json.dumps({"root": str(tmp_path / "mit"), "check_counts": False})
    assert main(["prepare", "mit67", "--out", str(tmp_path / "idx"), "--params", params]) == 0
    assert (tmp_path / "idx" / "meta.json").is_file()
    assert main(["prepare", "dogs", "--out", str(tmp_path / "d"), "--params", "{}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data.dogs.root is not set" in err
