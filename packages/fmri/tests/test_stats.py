"""White/black difference, accuracy tests: hand-worked cases and null behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from repro.fmri import rdm as rdmlib
from repro.fmri import stats


def _rdm_from_distances(n, entries):
    m = np.zeros((n, n))
    for (i, j), v in entries.items():
        m[i, j] = m[j, i] = v
    i, j = rdmlib.upper_indices(n)
    return m[i, j]


def test_wb_difference_exact_sign_flip_by_hand():
    # three sources; stimuli 0-2 clean, 3-5 white, 6-8 black; deltas 1, 2, 3
    trip = np.array([[0, 3, 6], [1, 4, 7], [2, 5, 8]])
    entries = {(0, 3): 2.0, (0, 6): 1.0, (1, 4): 2.5, (1, 7): 0.5, (2, 5): 3.5, (2, 8): 0.5}
    v = _rdm_from_distances(9, entries) + 0.0
    res = stats.wb_difference(v[None], trip, n_perm=1000)
    assert res["exact"][0]
    assert res["T"][0] == pytest.approx(2.0)
    assert res["d_white"][0] == pytest.approx(8 / 3) and res["d_black"][0] == pytest.approx(2 / 3)
    # of the 8 sign patterns only +++ and --- reach |T| >= 2
    assert res["p"][0] == pytest.approx(2 / 8)
    assert res["effect"][0] == pytest.approx(2.0 / 1.0)


def test_wb_difference_null_rate_and_power():
    rng = np.random.default_rng(0)
    trip = np.arange(60).reshape(3, 20).T
    rejections = 0
    for _ in range(200):
        v = rdmlib.rdm(rng.normal(size=(60, 30)))
        rejections += stats.wb_difference(v[None], trip, 999, int(rng.integers(1e9)))["p"][0] < 0.05
    # binomial(200, 0.05): mean 10, P(X > 20) < 0.002
    assert rejections <= 20
    base = rng.normal(size=(20, 30))
    noise = rng.normal(size=(3, 20, 30))
    # white versions displaced further from the clean pattern than black ones
    x = np.concatenate([base + 0.3 * noise[0], base + 0.6 * noise[1], base + 0.3 * noise[2]])
    res = stats.wb_difference(rdmlib.rdm(x)[None], trip, 999, 0)
    assert res["T"][0] > 0 and res["p"][0] < 0.01


def test_mcnemar_by_hand():
    clean = np.array([1, 1, 1, 1, 1, 1, 0, 1], bool)
    adv = np.array([0, 0, 0, 0, 0, 1, 0, 1], bool)
    res = stats.mcnemar(clean, adv)
    assert (res["lost"], res["gained"]) == (5, 0)
    assert res["p"] == pytest.approx(0.5**5)


def test_accuracy_difference_test_within_subjects():
    rng = np.random.default_rng(1)
    subject = np.repeat(np.arange(4), 60)
    condition = np.tile(np.repeat(["clean", "white"], 30), 4)
    same = rng.random(240) < 0.9
    res = stats.accuracy_difference_test(same, condition, subject, "clean", "white", 2000, 0)
    assert res["n_trials"] == 240 and res["p"] > 0.05
    worse = np.where(condition == "white", rng.random(240) < 0.5, rng.random(240) < 0.95)
    res = stats.accuracy_difference_test(worse, condition, subject, "clean", "white", 2000, 0)
    assert res["difference"] < -0.3 and res["p"] < 0.001
