"""Model selection (``val_selection``) on hand-made validation matrices where the whole-split
rsum and the mean rsum over folds pick different epochs, the folds of validation splits past
a whole fold or under one, and the training splits (``train_splits``) on the fake
``dataset_flickr30k.json`` before and after ``flickr-extend`` adds the images it lacks."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from repro.core import ReproError
from repro.core.params import parse
from repro.vse import fake
from repro.vse.cli import main
from repro.vse.data import extend_flickr_split, load_train
from repro.vse.evaluate import validation_metrics
from repro.vse.protocols import val_folds


def reference_rsum(sims: np.ndarray, folds: int) -> float:
    """rsum averaged over ``folds`` contiguous folds, written from the definitions (no ties
    between a query's own and other candidates in the matrices below): image i's rank is the
    number of other captions scoring above its best own caption, caption j's the number of
    other images scoring above its own image."""
    n = sims.shape[0] // folds
    total = 0.0
    for f in range(folds):
        block = sims[f * n : (f + 1) * n, 5 * f * n : 5 * (f + 1) * n]
        own = (np.arange(5 * n)[None, :] // 5) == np.arange(n)[:, None]
        best = np.where(own, block, -np.inf).max(axis=1)
        i2t = ((block > best[:, None]) & ~own).sum(axis=1)
        own_score = block[np.arange(5 * n) // 5, np.arange(5 * n)]
        t2i = ((block > own_score[None, :]) & ~own).sum(axis=0)
        total += sum(100 * np.mean(r < k) for r in (i2t, t2i) for k in (1, 5, 10))
    return total / folds


def two_epochs(n: int, fold: int) -> list[np.ndarray]:
    """Validation similarities (n, 5n) of two epochs. Epoch 1 ranks every image's captions
    first within its fold, but the captions and images of other folds above them; epoch 2 is
    right on the first half of the images and wrong on the second, whatever the fold."""
    img = np.arange(n)[:, None]
    cap_img = np.arange(5 * n)[None, :] // 5
    same_fold = img // fold == cap_img // fold
    first = np.where(cap_img == img, 1.0, np.where(same_fold, 0.0, 2.0))
    second = np.where(cap_img == img, np.where(img < n // 2, 1.0, -1.0), 0.0)
    return [first.astype(np.float32), second.astype(np.float32)]


def picks(scores: list[float]) -> int:
    """1-based epoch with the highest score, the first among equals (as the run keeps it)."""
    return int(np.argmax(scores)) + 1


def test_whole_split_and_fold_mean_pick_different_epochs():
    """Two COCO-sized folds of 1,000 validation images."""
    epochs = two_epochs(2000, 1000)
    whole = [reference_rsum(s, 1) for s in epochs]
    folds = [reference_rsum(s, 2) for s in epochs]
    assert picks(whole) == 2 and picks(folds) == 1  # the hand-made case does what it should
    assert val_folds(2000) == (2, 1000) and val_folds(2000, "whole") == (1, 2000)
    ours = {m: [validation_metrics(s, m)["rsum"] for s in epochs] for m in ("whole", "folds")}
    assert ours["whole"] == pytest.approx(whole) and ours["folds"] == pytest.approx(folds)
    assert picks(ours["whole"]) == 2 and picks(ours["folds"]) == 1
    assert validation_metrics(epochs[0])["rsum"] == pytest.approx(600.0)  # the default: folds


def test_a_validation_split_past_whole_folds_leaves_the_remainder_out():
    """Flickr30K's Karpathy val has 1,014 images: MHSAN's code scores the first 1,000."""
    sims = two_epochs(1014, 1000)[0]
    sims[1000:, :5000] = 3.0  # the 14 extra images would outrank every caption's own image
    assert val_folds(1014) == (1, 1000)
    assert validation_metrics(sims)["rsum"] == pytest.approx(600.0)
    assert validation_metrics(sims, "whole")["rsum"] == pytest.approx(reference_rsum(sims, 1))
    assert validation_metrics(sims, "whole")["rsum"] < 600


def test_validation_folds():
    assert val_folds(5000) == (5, 1000)  # COCO
    assert val_folds(1000) == (1, 1000)
    assert val_folds(2999) == (2, 1000)
    # under 1,000 images (MHSAN's code has no fold then): one fold of what there is
    assert val_folds(999) == (1, 999) and val_folds(300) == (1, 300)  # the quick set
    assert val_folds(5) == (1, 5) and val_folds(7) == (1, 7)  # the smoke run's stand-ins
    assert val_folds(300, "whole") == (1, 300) and val_folds(5000, "whole") == (1, 5000)
    sims = two_epochs(10, 2)[1]
    assert validation_metrics(sims)["rsum"] == pytest.approx(reference_rsum(sims, 1))
    with pytest.raises(ReproError, match="val_selection: 'best' is not folds or whole"):
        val_folds(300, "best")


MODEL = {"backbone": "small", "small_channels": 8, "dim": 12, "embed_dim": 10,
         "attn_hidden": 6, "heads": 2, "word_dim": 5, "rnn_layers": 1}  # fmt: skip


def _params(**over) -> dict:
    return {
        "dataset": "synthetic",
        "model": MODEL,
        "stages": [{"epochs": 2, "lr": 1e-3, "train": ["image_proj", "text"]}],
        "batch_size": 8,
        "preprocess_train": {"kind": "none"},
        "preprocess_eval": {"kind": "none"},
        "workers": 1,
        **over,
    }


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    data = tmp_path_factory.mktemp("syn")
    syn = {"train": 6, "val": 10, "test": 3, "image_size": 32, "seed": 1}
    assert main(["make-synthetic", "--params", json.dumps(syn), "--out", str(data)]) == 0
    return data / "dataset_synthetic.json", data


@pytest.mark.parametrize("mode, epoch", [(None, 1), ("folds", 1), ("whole", 2)])
def test_the_run_keeps_the_epoch_of_its_selection(split, tmp_path, monkeypatch, mode, epoch):
    """The validation split's embeddings are replaced by the hand-made epochs (images the
    identity, captions the similarities' columns) and the fold shrunk to 2 images: the run
    keeps epoch 1 by the fold mean (the default) and epoch 2 by the whole split."""
    import repro.vse.protocols as protocols
    import repro.vse.train as train

    monkeypatch.setattr(protocols, "VAL_FOLD", 2)
    epochs = two_epochs(10, 2)
    real_encode, seen = train.encode, []

    def encode(model, source, *args, **kwargs):
        enc = real_encode(model, source, *args, **kwargs)
        if len(source.images.paths) != 10:  # the test split
            return enc
        sims = torch.from_numpy(epochs[len(seen)])
        seen.append(sims)
        return train.Encoded(torch.eye(10), sims.T.contiguous(), enc.penalty_image, 0.0)

    monkeypatch.setattr(train, "encode", encode)
    params = _params() if mode is None else _params(val_selection=mode)
    result = train.train_run(params, split[0], split[1], tmp_path / "run")
    assert len(seen) == 2 and result["best_epoch"] == epoch
    folds = 1 if mode == "whole" else 5
    assert result["val_selection"] == {"mode": mode or "folds", "folds": folds,
                                       "fold_images": 10 // folds}  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    logged = [float(r["val_rsum"]) for r in rows]
    assert logged == pytest.approx([reference_rsum(s, folds) for s in epochs])
    assert result["best_val_rsum"] == pytest.approx(max(logged))


def test_a_validation_split_under_one_fold_is_one_fold(split, tmp_path):
    """The real fold (1,000 images) and a split of 10: one fold of the 10, as ``whole``."""
    from repro.vse.train import RunParams, train_run

    result = train_run(_params(), split[0], split[1], tmp_path / "run")
    assert result["val_selection"] == {"mode": "folds", "folds": 1, "fold_images": 10}
    with pytest.raises(ReproError, match=r"^params\.val_selection: 'all' is not one of 'folds'"):
        parse(RunParams, _params(val_selection="all"), "params")


EXTRA = {  # Flickr30K images that Karpathy's file lacks: their raw captions, hand-tokenised
    "90001.jpg": [
        (
            "A man in a T-shirt, holding a dog's leash.",
            ["a", "man", "in", "a", "t-shirt", "holding", "a", "dog's", "leash"],
        ),
        ("Two kids play soccer !", ["two", "kids", "play", "soccer"]),
        ("a dog runs", ["a", "dog", "runs"]),
        ("The 3 girls sit ( smiling ) .", ["the", "3", "girls", "sit", "smiling"]),
        ("Sunset over water", ["sunset", "over", "water"]),
    ],
    "90002.jpg": [(f"Caption number {k} .", ["caption", "number", str(k)]) for k in range(6)],
    "90003.jpg": [(f"A red bus {k}", ["a", "red", "bus", str(k)]) for k in range(5)],
}


@pytest.fixture
def flickr(tmp_path):
    """The fake dataset_flickr30k.json (Karpathy's format and splits: 3 train, 5 val, 10
    test), Flickr30K's caption file for its images and three more (one with 6 captions), and
    those three images beside the others."""
    split_file = fake.write_f30k(tmp_path)
    images = tmp_path / "flickr30k-images"
    entries = json.loads(split_file.read_text())["images"]
    lines = [f"{e['filename']}#{k}\t{s['raw']}" for e in entries
             for k, s in enumerate(e["sentences"])]  # fmt: skip
    extra = [f"{name}#{k}\t{raw}" for name, caps in EXTRA.items() for k, (raw, _) in
             enumerate(caps)]  # fmt: skip
    captions = tmp_path / "results_20130124.token"
    captions.write_text("\n".join(lines[:40] + extra + lines[40:]) + "\n")
    some = next(images.glob("*.jpg")).read_bytes()
    for name in EXTRA:
        (images / name).write_bytes(some)
    return split_file, captions, images, entries


def test_flickr_extend_adds_the_images_karpathys_file_lacks(flickr, tmp_path, capsys):
    split_file, captions, images, entries = flickr
    out = tmp_path / "dataset_flickr30k_all.json"
    assert main(["flickr-extend", "--split-file", str(split_file), "--captions", str(captions),
                 "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(f"{out}: ") and printed.endswith(" images")
    counts = printed.removeprefix(f"{out}: ").removesuffix(" images").split(", ")
    assert sorted(counts) == ["restval 3", "test 10", "train 3", "val 5"]
    extended = json.loads(out.read_text())
    assert extended["dataset"] == "flickr30k" and extended["images"][:18] == entries
    added = extended["images"][18:]
    assert [e["filename"] for e in added] == list(EXTRA)
    assert [e["split"] for e in added] == ["restval"] * 3
    assert [e["imgid"] for e in added] == [18, 19, 20]
    assert [e["sentids"] for e in added] == [list(range(90 + 5 * i, 95 + 5 * i)) for i in range(3)]
    for e in added:
        want = EXTRA[e["filename"]][:5]
        assert [s["raw"] for s in e["sentences"]] == [raw for raw, _ in want]
        assert [s["tokens"] for s in e["sentences"]] == [tokens for _, tokens in want]
        assert {s["imgid"] for s in e["sentences"]} == {e["imgid"]}


def test_train_splits_change_the_flickr_training_images(flickr, tmp_path):
    split_file, captions, images, entries = flickr
    karpathy_train = [e["filename"] for e in entries if e["split"] == "train"]
    extended = extend_flickr_split(split_file, captions, tmp_path / "all.json")
    assert extended == {"train": 3, "val": 5, "test": 10, "restval": 3}

    def names(file, choice):
        return [p.name for p in load_train(file, images, "f30k", choice).paths]

    # Karpathy's own file: nothing lies outside train, val and test, so both give its train
    assert names(split_file, None) == karpathy_train
    assert names(split_file, "outside_eval") == karpathy_train
    # extended: the default still Karpathy's train; outside_eval and [train, restval] add 3
    every = karpathy_train + list(EXTRA)
    assert names(tmp_path / "all.json", None) == karpathy_train
    assert names(tmp_path / "all.json", "outside_eval") == every
    assert names(tmp_path / "all.json", ["train", "restval"]) == every
    assert names(tmp_path / "all.json", ["restval"]) == list(EXTRA)
    loaded = load_train(tmp_path / "all.json", images, "f30k", ["restval"])
    assert loaded.captions[:5] == [tokens for _, tokens in EXTRA["90001.jpg"]]
    with pytest.raises(ReproError, match="train_splits: 'test' is an evaluation split"):
        load_train(split_file, images, "f30k", ["train", "test"])
    with pytest.raises(ReproError, match="train_splits: 'all' is not a list of split names"):
        load_train(split_file, images, "f30k", "all")


def test_the_run_trains_on_the_chosen_flickr_images(flickr, tmp_path):
    from repro.vse.train import train_run

    split_file, captions, images, _ = flickr
    extend_flickr_split(split_file, captions, tmp_path / "all.json")
    params = _params(dataset="f30k", protocols=["full"],
                     stages=[{"epochs": 1, "lr": 1e-3, "train": ["image_proj"]}])  # fmt: skip
    counts = {
        choice: train_run({**params, "train_splits": choice}, tmp_path / "all.json", images,
                          tmp_path / str(choice))["n_train_images"]
        for choice in (None, "outside_eval")
    }  # fmt: skip
    assert counts == {None: 3, "outside_eval": 6}


def test_a_malformed_flickr_caption_file_is_named(flickr, tmp_path):
    split_file, captions, _, _ = flickr
    bad = tmp_path / "bad.token"
    bad.write_text("1.jpg#0\ta dog\n1.jpg a cat\n")
    with pytest.raises(ReproError, match=r"bad\.token:2: not '<filename>#<k><TAB><caption>'"):
        extend_flickr_split(split_file, bad, tmp_path / "x.json")
    short = tmp_path / "short.token"
    short.write_text("".join(f"new.jpg#{k}\tcaption {k}\n" for k in range(4)))
    with pytest.raises(ReproError, match=r"new\.jpg has 4 captions, needs 5"):
        extend_flickr_split(split_file, short, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_train_splits_in_run_params():
    from repro.vse.train import RunParams

    def splits(choice):
        return parse(RunParams, _params(train_splits=choice), "params").train_splits

    assert splits(None) is None
    assert splits(["train", "x"]) == ("train", "x")
    assert splits("outside_eval") == "outside_eval"
    with pytest.raises(ReproError, match=r"^params\.train_splits: 'val' is an evaluation split"):
        splits(["val"])
