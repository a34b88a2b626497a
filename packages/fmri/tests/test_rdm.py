"""RDMs and RDM comparisons against rsatoolbox (the field's reference implementation)."""

from __future__ import annotations

import numpy as np
import pytest
import rsatoolbox

from repro.fmri import rdm as rdmlib
from repro.fmri import stats


def _rsa_rdms(vectors):
    return rsatoolbox.rdm.RDMs(np.atleast_2d(vectors))


@pytest.mark.parametrize("method", ["correlation", "euclidean"])
def test_rdm_equals_rsatoolbox(method):
    x = np.random.default_rng(0).normal(size=(13, 40))
    ref = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method=method).get_vectors()[0]
    np.testing.assert_allclose(rdmlib.rdm(x, method), ref, rtol=1e-10, atol=1e-12)
    # batched over leading axes
    batch = np.stack([x, 2 * x + 1])
    assert rdmlib.rdm(batch, method).shape == (2, 78)
    np.testing.assert_allclose(rdmlib.rdm(batch, method)[0], ref, rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # inside rsatoolbox
def test_crossnobis_equals_rsatoolbox_leave_one_run_out():
    rng = np.random.default_rng(1)
    runs, n, p = 4, 9, 25
    x = rng.normal(size=(runs, n, p)) + rng.normal(size=(1, n, p))
    data = rsatoolbox.data.Dataset(
        x.reshape(runs * n, p),
        obs_descriptors={"cond": np.tile(np.arange(n), runs), "run": np.repeat(np.arange(runs), n)},
    )
    ref = rsatoolbox.rdm.calc_rdm(
        data, method="crossnobis", descriptor="cond", cv_descriptor="run"
    ).get_vectors()[0]
    np.testing.assert_allclose(rdmlib.crossnobis(x), ref, rtol=1e-10, atol=1e-12)


def test_crossnobis_is_unbiased_for_identical_patterns():
    rng = np.random.default_rng(2)
    true = rng.normal(size=(1, 6, 50))
    true[0, 1] = true[0, 0]  # conditions 0 and 1 identical
    d = np.mean([rdmlib.crossnobis(true + rng.normal(size=(3, 6, 50))) for _ in range(400)], 0)
    m = rdmlib.to_matrix(d)
    assert abs(m[0, 1]) < 0.02  # expectation 0 (the plain distance would be ~2 * 1 = 2)
    expected = np.sum((true[0, 0] - true[0, 2]) ** 2) / 50
    assert abs(m[0, 2] - expected) < 0.05 * expected


@pytest.mark.parametrize(
    ("ours", "theirs"), [("spearman", "spearman"), ("pearson", "corr"), ("tau-a", "tau-a")]
)
def test_comparisons_equal_rsatoolbox_including_ties(ours, theirs):
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(4), 3)
    a = rdmlib.rdm(rng.normal(size=(3, 12, 20)))
    a[1, :5] = a[1, 5]  # ties in a data RDM too
    b = np.stack([rdmlib.category_rdm(labels), rdmlib.rdm(rng.normal(size=(12, 7)))])
    ref = rsatoolbox.rdm.compare(_rsa_rdms(a), _rsa_rdms(b), method=theirs)
    np.testing.assert_allclose(rdmlib.compare(a, b, ours), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("method", "n_a"), [("spearman", 3), ("spearman", 1), ("tau-a", 2)])
def test_permuted_similarities_equal_rsatoolbox_on_reordered_rdms(method, n_a):
    rng = np.random.default_rng(4)
    n = 10
    a = rdmlib.rdm(rng.normal(size=(n_a, n, 15)))  # n_a < 2: our code relabels a instead
    b = np.stack([rdmlib.rdm(rng.normal(size=(n, 6))), rdmlib.category_rdm(np.arange(n) // 3)])
    perms = stats.permutations(n, 25, seed=0)
    ours = stats.permuted_similarities(a, b, perms, method, chunk=7)
    for k, perm in enumerate(perms):
        moved = _rsa_rdms(b)
        moved.reorder(perm)
        ref = rsatoolbox.rdm.compare(_rsa_rdms(a), moved, method=method)
        np.testing.assert_allclose(ours[k], ref, rtol=1e-9, atol=1e-12)


def test_permutation_p_values_by_hand():
    rng = np.random.default_rng(5)
    a = rdmlib.rdm(rng.normal(size=(8, 10)))
    b = np.stack([a, rdmlib.rdm(rng.normal(size=(8, 10)))])
    res = stats.rdm_permutation_test(a, b, "spearman", n_perm=999, seed=1)
    null = stats.permuted_similarities(a, b, stats.permutations(8, 999, 1), "spearman")
    np.testing.assert_allclose(
        res["p"][0, 1], (1 + np.sum(null[:, 0, 1] >= res["observed"][0, 1] - 1e-10)) / 1000
    )
    assert res["observed"][0, 0] == pytest.approx(1.0)
    # only permutations that map the RDM onto itself reach rho = 1 (8! = 40320, so ~none)
    assert res["p"][0, 0] < 0.005
    assert res["p_maxstat"][0, 0] >= res["p"][0, 0]
    assert res["p"][0, 1] > 0.01


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.2 -> p m / rank = 0.04, 0.06, 0.0533, 0.2; then the running
    # minimum from the top: 0.04, 0.0533, 0.0533, 0.2
    p = np.array([0.01, 0.04, 0.03, 0.2])
    expected = np.array([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])
    np.testing.assert_allclose(stats.correct(p, "fdr_bh"), expected, rtol=1e-12)
