"""The fake COCO and Flickr30K (``repro.vse.fake``) read back through the package's own
Karpathy-split loader, image decoder and retrieval metrics."""

import json
from importlib.metadata import entry_points

import pytest
import torch

from repro.core import ReproError
from repro.vse import data, evaluate, fake


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("fake") / "vse"
    return out, fake.write_fakes(out)


def test_coco_split_file_and_images_load(written):
    out, overlay = written
    coco = overlay["mhsan"]["datasets"]["coco"]
    split_file, root = coco["split_file"], coco["images"]
    assert split_file == str(out / "coco" / "dataset_coco.json") and root == str(out / "coco")
    entries = json.loads((out / "coco" / "dataset_coco.json").read_text())["images"]
    assert {len(e["sentences"]) for e in entries} == {5, 6, 7}
    train = data.load_karpathy(split_file, root, data.TRAIN_SPLITS["coco"])
    test = data.load_karpathy(split_file, root, ["test"])
    assert len(train) == 3 and len(train.captions) == 15  # train + restval: 5 captions each
    assert len(test) == 10 and len(test.captions) == 50  # exactly 5 captions each
    # the 6- and 7-caption images keep their first five captions, in file order
    rich = [e for e in entries if e["split"] == "test" and len(e["sentences"]) > 5]
    assert len(rich) == 2
    for e in rich:
        i = next(k for k, p in enumerate(test.paths) if p.name == e["filename"])
        assert test.captions[5 * i : 5 * i + 5] == [s["tokens"] for s in e["sentences"][:5]]
    for p in train.paths + test.paths:
        folder = "train2014" if p.parent.name == "train2014" else "val2014"
        assert p.name.startswith(f"COCO_{folder}_") and len(p.stem.rsplit("_", 1)[1]) == 12
    assert {p.parent.name for p in train.paths} == {"train2014", "val2014"}  # restval: val2014
    assert data.read_image(test.paths[0]).shape == (3, 24, 24)


def test_flickr30k_split_file_and_images_load(written):
    out, overlay = written
    split_file, root = out / "f30k" / "dataset_flickr30k.json", out / "f30k" / "flickr30k-images"
    assert overlay["mhsan"]["datasets"]["f30k"] == {"split_file": str(split_file),
                                                    "images": str(root)}  # fmt: skip
    entries = json.loads(split_file.read_text())["images"]
    assert not any("filepath" in e or "cocoid" in e for e in entries)
    train = data.load_karpathy(split_file, root, data.TRAIN_SPLITS["f30k"])
    test = data.load_karpathy(split_file, root, ["test"])
    assert (len(train), len(test), len(test.captions)) == (3, 10, 50)
    assert all(p.is_file() and p.stem.isdigit() for p in train.paths + test.paths)
    assert data.read_image(train.paths[0]).shape == (3, 24, 24)


def test_coco_test_split_forms_five_folds_but_not_the_papers_sizes(written):
    _, overlay = written
    coco = overlay["mhsan"]["datasets"]["coco"]
    test = data.load_karpathy(coco["split_file"], coco["images"], ["test"])
    sims = torch.eye(len(test)).repeat_interleave(5, dim=1)  # each image's own captions score 1
    folds = evaluate.retrieval_metrics(sims, folds=5)
    assert folds["i2t_r1"] == 100.0 and folds["t2i_r1"] == 100.0
    with pytest.raises(ReproError, match="needs 5000 test images, got 10"):
        evaluate.protocol_metrics(sims, "coco_1k")  # the protocols fix the paper's sizes


def test_the_plugin_is_registered():
    (ep,) = [e for e in entry_points(group="repro.fake") if e.name == "vse"]
    assert ep.load() is fake.write_fakes
