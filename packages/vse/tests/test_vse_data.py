"""Karpathy-split loaders on tiny official-format files, vocabulary, views, synthetic set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from repro.core import ReproError
from repro.core.params import parse
from repro.vse.data import (
    Preprocess,
    SyntheticConfig,
    Vocabulary,
    load_karpathy,
    make_synthetic,
    read_image,
)


def sentences(*texts: str) -> list[dict]:
    return [
        {"tokens": t.split(), "raw": t.capitalize() + ".", "imgid": 0, "sentid": i}
        for i, t in enumerate(texts)
    ]


FIVE = ("a cat", "a dog", "two cats", "a red bus", "the sky")


def write_coco(root):
    """dataset_coco.json as Karpathy's: COCO folders in ``filepath``, restval, 6 captions."""
    images = [
        {
            "filepath": "train2014",
            "filename": "COCO_train2014_1.jpg",
            "imgid": 0,
            "split": "train",
            "sentences": sentences(*FIVE, "a sixth caption"),
            "cocoid": 1,
        },
        {
            "filepath": "val2014",
            "filename": "COCO_val2014_2.jpg",
            "imgid": 1,
            "split": "restval",
            "sentences": sentences(*FIVE),
            "cocoid": 2,
        },
        {
            "filepath": "val2014",
            "filename": "COCO_val2014_3.jpg",
            "imgid": 2,
            "split": "test",
            "sentences": sentences("an unseen zebra", *FIVE[1:]),
            "cocoid": 3,
        },
        {
            "filepath": "val2014",
            "filename": "COCO_val2014_4.jpg",
            "imgid": 3,
            "split": "val",
            "sentences": sentences(*FIVE),
            "cocoid": 4,
        },
    ]
    for e in images:
        (root / e["filepath"]).mkdir(exist_ok=True)
        Image.new("RGB", (40, 30), (e["imgid"] * 50, 0, 0)).save(
            root / e["filepath"] / e["filename"]
        )
    (root / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))


def test_coco_splits_paths_and_first_five_captions(tmp_path):
    write_coco(tmp_path)
    train = load_karpathy(tmp_path / "dataset_coco.json", tmp_path, ["train", "restval"])
    assert [p.relative_to(tmp_path).as_posix() for p in train.paths] == [
        "train2014/COCO_train2014_1.jpg",
        "val2014/COCO_val2014_2.jpg",
    ]
    assert len(train.captions) == 10 and train.captions[4] == ["the", "sky"]  # 6th dropped
    assert train.captions[5] == ["a", "cat"]  # image 1's captions start at row 5
    test = load_karpathy(tmp_path / "dataset_coco.json", tmp_path, ["test"])
    assert len(test) == 1 and test.captions[0] == ["an", "unseen", "zebra"]
    assert read_image(test.paths[0]).shape == (3, 30, 40)


def test_flickr_format_without_filepath(tmp_path):
    images = [
        {
            "filename": "1000092795.jpg",
            "imgid": 0,
            "split": "test",
            "sentids": [0, 1, 2, 3, 4],
            "sentences": sentences(*FIVE),
        }
    ]
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps({"images": images}))
    data = load_karpathy(tmp_path / "dataset_flickr30k.json", tmp_path, ["test"])
    assert data.paths == [tmp_path / "1000092795.jpg"]


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(ReproError, match="split file not found"):
        load_karpathy(tmp_path / "none.json", tmp_path, ["train"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pictures": []}))
    with pytest.raises(ReproError, match="not a Karpathy split file"):
        load_karpathy(bad, tmp_path, ["train"])
    bad.write_text(
        json.dumps(
            {"images": [{"filename": "x.jpg", "split": "train", "sentences": sentences(*FIVE[:4])}]}
        )
    )
    with pytest.raises(ReproError, match=r"images\[0\] \(x.jpg\) has 4 captions, needs 5"):
        load_karpathy(bad, tmp_path, ["train"])
    bad.write_text(json.dumps({"images": [{"filename": "x.jpg", "sentences": []}]}))
    with pytest.raises(ReproError, match=r"images\[0\] lacks key 'split'"):
        load_karpathy(bad, tmp_path, ["train"])
    with pytest.raises(ReproError, match="image not found"):
        read_image(tmp_path / "missing.jpg")


def test_vocabulary_from_training_captions_only(tmp_path):
    write_coco(tmp_path)
    train = load_karpathy(tmp_path / "dataset_coco.json", tmp_path, ["train", "restval"])
    vocab = Vocabulary.build(train.captions, min_count=2)
    assert vocab.words[:3] == ["<pad>", "<unk>", "a"]  # "a" is the most frequent word
    assert "zebra" not in vocab.index and "sixth" not in vocab.index  # test / 6th caption
    ids, lengths = vocab.encode([["a", "zebra"], ["a", "red", "bus"]])
    assert lengths.tolist() == [2, 3]
    assert ids.tolist() == [
        [vocab.index["a"], 1, 0],
        [vocab.index["a"], vocab.index["red"], vocab.index["bus"]],
    ]
    assert Vocabulary.build(train.captions, min_count=3).words == ["<pad>", "<unk>", "a"]
    vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json").words == vocab.words


def test_views_are_deterministic_per_image_and_view():
    image = torch.randint(
        0, 256, (3, 60, 80), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    crop = Preprocess(kind="random_resized_crop", size=(32, 32))
    a = crop(image, seed=1, item=2, view=0)
    assert a.shape == (3, 32, 32)
    assert torch.equal(a, crop(image, seed=1, item=2, view=0))
    assert not torch.equal(a, crop(image, seed=1, item=2, view=1))
    assert not torch.equal(a, crop(image, seed=1, item=3, view=0))
    assert Preprocess(kind="resize", size=(35, 35))(image).shape == (3, 35, 35)
    plain = Preprocess()(image)  # "none": only scaled and normalised
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    torch.testing.assert_close(plain, (image / 255 - mean) / std)
    with pytest.raises(ReproError, match=r"^preprocess\.kind: 'centre' is not one of 'none'"):
        parse(Preprocess, {"kind": "centre"}, "preprocess")
    # JSON lists become tuples, an integer size a square
    pre = parse(Preprocess, {"size": 24, "scale": [0.5, 1]}, "preprocess")
    assert pre.size == (24, 24) and pre.scale == (0.5, 1.0) and pre.mean == (0.485, 0.456, 0.406)


def test_synthetic_set_is_determined_by_its_seed(tmp_path):
    cfg = SyntheticConfig(train=4, val=1, test=2, image_size=32, seed=7)
    a = make_synthetic(tmp_path / "a", cfg)
    b = make_synthetic(tmp_path / "b", cfg)
    c = make_synthetic(tmp_path / "c", SyntheticConfig(**{**cfg.__dict__, "seed": 8}))
    assert a.read_text() == b.read_text() != c.read_text()
    for name in ("000000.png", "000006.png"):
        assert (tmp_path / "a/images" / name).read_bytes() == (
            tmp_path / "b/images" / name
        ).read_bytes()
    entries = json.loads(a.read_text())["images"]
    assert [e["split"] for e in entries] == ["train"] * 4 + ["val"] + ["test"] * 2
    for e in entries:
        caps = [" ".join(s["tokens"]) for s in e["sentences"]]
        assert len(caps) == 5 == len(set(caps))
        named = {f"{o['colour']} {o['shape']}" for o in e["objects"]}
        for cap in caps:  # every caption names at least two of the image's objects
            assert sum(n in cap for n in named) >= 2, cap
    pixels = np.asarray(Image.open(tmp_path / "a/images/000000.png"))
    assert pixels.shape == (32, 32, 3)
    data = load_karpathy(a, tmp_path / "a", ["test"])
    assert len(data) == 2 and len(data.captions) == 10
