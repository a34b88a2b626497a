"""vsepp retrieval metrics: hand-worked matrices with ties, and a per-query reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repro.core import ReproError
from repro.vse.evaluate import i2t_ranks, protocol_metrics, ranks, retrieval_metrics, t2i_ranks

# 2 images x 10 captions; captions 0-4 belong to image 0, 5-9 to image 1.
HAND = np.array(
    [
        [0.5, 0.9, 0.1, 0.9, 0.2, 0.9, 0.3, 0.2, 0.0, 0.95],
        [0.7, 0.1, 0.1, 0.1, 0.1, 0.7, 0.2, 0.2, 0.2, 0.2],
    ],
    dtype=np.float32,
)


def test_hand_worked_ranks_with_ties():
    # image 0: own best 0.9 at columns 1 and 3 -> column 3 counts (later index first among
    # ties); ahead of it: 0.95 (col 9) and the tied 0.9 at col 5 -> rank 2.
    # image 1: own best 0.7 at col 5; the tied 0.7 at col 0 has a smaller index -> rank 0.
    assert i2t_ranks(HAND).tolist() == [2, 0]
    # caption 2: tie 0.1/0.1, own image 0 is behind image 1 -> 1; caption 7: tie 0.2/0.2,
    # own image 1 comes first -> 0; captions 0, 5, 6, 9: the other image scores higher -> 1.
    assert t2i_ranks(HAND).tolist() == [1, 0, 1, 0, 0, 1, 1, 0, 0, 1]


def test_hand_worked_metrics():
    m = retrieval_metrics(HAND)
    assert m["i2t_r1"] == 50 and m["i2t_r5"] == 100 and m["i2t_r10"] == 100
    assert m["t2i_r1"] == 50 and m["t2i_r5"] == 100
    assert m["i2t_medr"] == 2  # median of 0-based [2, 0] is 1.0 -> floor + 1
    assert m["t2i_medr"] == 1  # median of five 0s and five 1s is 0.5 -> floor 0, + 1
    assert m["i2t_meanr"] == 2 and m["t2i_meanr"] == 1.5
    assert m["rsum"] == 500


def test_folds_average_and_ignore_other_folds():
    sims = np.full((10, 50), 10.0, dtype=np.float32)  # off-fold scores would win every query
    for f in range(5):
        block = HAND if f == 0 else np.kron(np.eye(2), np.ones((1, 5)))
        sims[2 * f : 2 * f + 2, 10 * f : 10 * f + 10] = block
    m = retrieval_metrics(sims, folds=5)
    assert m["rsum"] == pytest.approx((500 + 4 * 600) / 5)
    assert m["i2t_medr"] == pytest.approx((2 + 4 * 1) / 5)
    assert m["t2i_r1"] == pytest.approx((50 + 4 * 100) / 5)
    assert retrieval_metrics(sims)["rsum"] <= 100  # one 10-image test: off-fold scores count


def vsepp_i2t(sims: np.ndarray, kind: str) -> np.ndarray:
    """Per query, the vsepp way: sort the captions, take the best position of the 5 own ones."""
    n = sims.shape[0]
    ranks = np.zeros(n)
    for i in range(n):
        inds = np.argsort(sims[i], kind=kind)[::-1]
        ranks[i] = min(np.where(inds == j)[0][0] for j in range(5 * i, 5 * i + 5))
    return ranks


def vsepp_t2i(sims: np.ndarray, kind: str) -> np.ndarray:
    n = sims.shape[0]
    ranks = np.zeros(5 * n)
    for i in range(n):
        d = sims[:, 5 * i : 5 * i + 5].T  # the 5 captions of image i against all images
        for k in range(5):
            inds = np.argsort(d[k], kind=kind)[::-1]
            ranks[5 * i + k] = np.where(inds == i)[0][0]
    return ranks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_per_query_reference_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    n = 40
    emb_i = rng.normal(size=(n, 8)).astype(np.float32)
    emb_t = np.repeat(emb_i, 5, axis=0) + rng.normal(size=(5 * n, 8)).astype(np.float32)
    sims = emb_i @ emb_t.T  # continuous: no ties, numpy's default sort gives the same order
    assert np.array_equal(i2t_ranks(sims).numpy(), vsepp_i2t(sims, "quicksort"))
    assert np.array_equal(t2i_ranks(sims).numpy(), vsepp_t2i(sims, "quicksort"))


@pytest.mark.parametrize("kernels", ["numpy", "torch"])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_stable_per_query_reference_with_many_ties(seed, kernels):
    sims = np.random.default_rng(seed).integers(0, 4, size=(30, 150)).astype(np.float32)
    r_i2t, r_t2i = ranks(sims, kernels)
    assert np.array_equal(r_i2t.numpy(), vsepp_i2t(sims, "stable"))
    assert np.array_equal(r_t2i.numpy(), vsepp_t2i(sims, "stable"))


def test_torch_kernels_match_on_continuous_scores_in_float64():
    sims = np.random.default_rng(5).normal(size=(40, 200))
    r_i2t, r_t2i = ranks(torch.from_numpy(sims), "torch")
    assert np.array_equal(r_i2t.numpy(), vsepp_i2t(sims, "quicksort"))
    assert np.array_equal(r_t2i.numpy(), vsepp_t2i(sims, "quicksort"))


def test_blocks_give_the_same_ranks(monkeypatch):
    sims = torch.from_numpy(np.random.default_rng(3).integers(0, 3, size=(20, 100))).float()
    assert np.array_equal(i2t_ranks(sims).numpy(), vsepp_i2t(sims.numpy(), "stable"))
    full_i, full_t = i2t_ranks(sims), t2i_ranks(sims)
    monkeypatch.setattr("repro.vse.evaluate.BLOCK_ELEMENTS", {"cpu": 7})
    assert torch.equal(i2t_ranks(sims), full_i) and torch.equal(t2i_ranks(sims), full_t)
    for kernels in ("numpy", "torch"):
        got = ranks(sims, kernels)
        assert torch.equal(got[0], full_i) and torch.equal(got[1], full_t)


def test_medr_and_recall_against_numpy_on_random_scores():
    sims = np.random.default_rng(4).normal(size=(50, 250)).astype(np.float32)
    r = vsepp_t2i(sims, "quicksort")
    m = retrieval_metrics(sims)
    assert m["t2i_medr"] == np.floor(np.median(r)) + 1
    assert m["t2i_r5"] == pytest.approx(100.0 * len(np.where(r < 5)[0]) / len(r))


def test_bad_shapes_and_protocol_sizes_are_one_line_errors():
    with pytest.raises(ReproError, match=r"\(N, 5N\)"):
        retrieval_metrics(np.zeros((3, 10)))
    with pytest.raises(ReproError, match="equal folds"):
        retrieval_metrics(np.zeros((3, 15)), folds=5)
    with pytest.raises(ReproError, match="needs 1000 test images"):
        protocol_metrics(np.zeros((3, 15)), "f30k_1k")


def _by_hand(sims: np.ndarray) -> dict[str, float]:
    """R@1/5/10 and rsum of one fold from the definitions, query by query (distinct scores)."""
    n = sims.shape[0]
    i2t = [
        min(sorted(sims[i], reverse=True).index(sims[i, j]) for j in range(5 * i, 5 * i + 5))
        for i in range(n)
    ]
    t2i = [sorted(sims[:, j], reverse=True).index(sims[j // 5, j]) for j in range(5 * n)]
    out = {}
    for name, r in (("i2t", i2t), ("t2i", t2i)):
        for k in (1, 5, 10):
            out[f"{name}_r{k}"] = 100.0 * sum(x < k for x in r) / len(r)
    out["rsum"] = sum(out.values())
    return out


# 10 test images, 50 captions, distinct scores: a scrambled ramp with each image's own
# captions raised by an amount that varies, so ranks differ between folds and protocols
TEN = (np.arange(500).reshape(10, 50) * 37 % 500).astype(np.float64) / 500
for _i in range(10):
    TEN[_i, 5 * _i : 5 * _i + 5] += 0.1003 * (_i % 4)


def test_test_images_scales_every_protocol():
    folds = [_by_hand(TEN[2 * f : 2 * f + 2, 10 * f : 10 * f + 10]) for f in range(5)]
    whole = _by_hand(TEN)
    coco_1k = protocol_metrics(TEN, "coco_1k", test_images=10)  # 5 folds of 2 images
    for key in ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5", "rsum"):
        assert coco_1k[key] == pytest.approx(np.mean([f[key] for f in folds])), key
    assert coco_1k["rsum"] != pytest.approx(whole["rsum"])  # the folds are not the whole set
    for protocol in ("coco_5k", "f30k_1k", "full"):
        m = protocol_metrics(TEN, protocol, test_images=10)
        for key, value in whole.items():
            assert m[key] == pytest.approx(value), (protocol, key)


def test_test_images_size_errors_are_one_line():
    with pytest.raises(ReproError, match=r"needs 20 test images \(mhsan.test_images\), got 10"):
        protocol_metrics(TEN, "f30k_1k", test_images=20)
    with pytest.raises(ReproError, match="5 must divide test_images"):
        protocol_metrics(np.zeros((12, 60)), "coco_1k", test_images=12)
    protocol_metrics(np.zeros((12, 60)), "coco_5k", test_images=12)  # one fold: any size
    with pytest.raises(ReproError, match="needs 5000 test images, got 10"):  # official sizes
        protocol_metrics(TEN, "coco_1k")
    assert protocol_metrics(TEN, "full")["rsum"] == pytest.approx(_by_hand(TEN)["rsum"])
