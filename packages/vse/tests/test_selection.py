"""Model selection (``val_selection``) on hand-made validation matrices where the whole-split
rsum and the mean rsum over folds pick different epochs, and the folds of validation splits
past a whole fold or under one."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from repro.core import ReproError
from repro.vse.cli import main
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
    with pytest.raises(ReproError, match=r"^params\.val_selection: 'all' is not folds or whole"):
        RunParams.from_dict(_params(val_selection="all"))
