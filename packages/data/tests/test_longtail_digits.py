import math

import numpy as np
import pytest
from sklearn.datasets import load_digits

from repro.data.arrays import load_split, read_meta
from repro.data.digits import prepare_digits
from repro.data.longtail import longtail_counts, longtail_indices


@pytest.mark.parametrize(("imbalance", "total"), [(100, 10847), (50, 12608), (10, 19573)])
def test_cifar100_lt_sizes_match_published_totals(imbalance, total):
    # CIFAR-100-LT training-set sizes reported with the LDAM recipe (Cao et al., 2019).
    counts = longtail_counts(500, 100, imbalance)
    assert counts[0] == 500 and counts[-1] == 500 // imbalance
    assert sum(counts) == total


def test_profile_is_exponential():
    counts = longtail_counts(1000, 5, 16)
    assert (
        counts == [math.floor(1000 * 16 ** (-i / 4)) for i in range(5)] == [1000, 500, 250, 125, 62]
    )


def test_longtail_indices_respect_counts_and_are_seeded():
    labels = np.repeat(np.arange(4), 30)
    idx = longtail_indices(labels, 10, seed=1)
    assert np.bincount(labels[idx]).tolist() == longtail_counts(30, 4, 10)
    assert np.array_equal(idx, longtail_indices(labels, 10, seed=1))
    assert not np.array_equal(idx, longtail_indices(labels, 10, seed=2))


def test_prepared_digits_split_is_fixed_disjoint_and_stratified(tmp_path):
    prepare_digits(tmp_path / "a", test_fraction=0.25, seed=0)
    prepare_digits(tmp_path / "b", test_fraction=0.25, seed=0)
    xa, ya = load_split(tmp_path / "a", "train", verify=True)
    xb, yb = load_split(tmp_path / "b", "train")
    assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    xt, yt = load_split(tmp_path / "a", "test")
    assert len(ya) + len(yt) == 1797 and xa.shape[1:] == (8, 8, 1) and xa.dtype == np.uint8
    ref = load_digits()
    # Every image is a digit from sklearn, scaled 0..16 -> 0..255, and none is in both splits.
    flat = {tuple(np.rint(im * 255 / 16).astype(np.uint8).ravel()) for im in ref.images}
    train_set = {tuple(x.ravel()) for x in xa}
    assert train_set <= flat and not (train_set & {tuple(x.ravel()) for x in xt})
    test_frac = np.bincount(yt) / np.bincount(ref.target)
    assert np.all(np.abs(test_frac - 0.25) < 0.01)


def test_long_tailed_digits_keep_test_split(tmp_path):
    prepare_digits(tmp_path / "lt", imbalance=10)
    prepare_digits(tmp_path / "full")
    _, y = load_split(tmp_path / "lt", "train")
    counts = np.bincount(y)
    full = np.bincount(load_split(tmp_path / "full", "train")[1])
    assert counts.tolist() == [
        min(c, f) for c, f in zip(longtail_counts(int(full.max()), 10, 10), full, strict=True)
    ]
    assert np.array_equal(
        load_split(tmp_path / "lt", "test")[1], load_split(tmp_path / "full", "test")[1]
    )
    assert read_meta(tmp_path / "lt")["name"] == "digits-lt10"
