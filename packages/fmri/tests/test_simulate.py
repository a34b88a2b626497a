"""The analysis recovers the planted geometry and finds nothing in null simulations."""

from __future__ import annotations

import pytest
from scipy.stats import binom

from repro.core.params import parse
from repro.fmri.params import AnalysisParams
from repro.fmri.rsa import analyse


def _analyse(root, stim, **kw):
    kw.setdefault("stats", {"n_permutations": 999})
    params = parse(AnalysisParams, kw, "analysis")
    results, arrays = analyse(root, stim, {}, params)
    rel = {(r["roi"], r["reference"]): r for r in results["relatedness"]}
    wb = {r["roi"]: r for r in results["wb_difference"]}
    return results, rel, wb


@pytest.mark.slow
def test_planted_geometry_and_white_black_difference_are_recovered(tiny_bids):
    root, stim = tiny_bids(
        per_class=2, n_subjects=2, n_runs=3, shape=[8, 8, 2], roi_voxels=48, soa=4.0
    )
    results, rel, wb = _analyse(root, stim)
    assert results["n_stimuli"] == 60 and results["n_subjects"] == 2
    # early ROI follows pixels, late ROI follows category (significant after FDR)
    assert rel[("early", "model/pixels")]["significant"]
    assert rel[("late", "model/category")]["significant"]
    assert rel[("early", "model/pixels")]["r"] > rel[("late", "model/pixels")]["r"] + 0.1
    assert rel[("late", "model/category")]["r"] > rel[("early", "model/category")]["r"] + 0.1
    # the white-box displacement planted in the late ROI, and none in the early ROI
    assert wb["late"]["significant"] and wb["late"]["T"] > 0
    assert wb["late"]["d_clean_white"] > wb["late"]["d_clean_black"]
    assert not wb["early"]["significant"]
    # behaviour: same accuracy in every condition (p_correct 0.95), not flagged
    beh = results["behaviour"]
    assert beh["n_trials"] == {"clean": 120, "white": 120, "black": 120}
    assert all(0.85 < beh["accuracy"][c] <= 1.0 for c in ("clean", "white", "black"))
    assert all(t["p"] > 0.05 for t in beh["tests"].values())


@pytest.mark.slow
def test_null_simulations_stay_within_the_false_positive_rate(tiny_bids):
    """Null geometry (i.i.d. patterns, no white/black difference) over 25 seeds.

    Uncorrected: each of the 6 tests per seed (2 ROIs x 2 models, white/black in 2 ROIs)
    rejects at alpha 0.05 with probability <= 0.05 (the randomisation tests are exact), so
    150 tests give more than 14 rejections with probability < 0.01. Corrected (FDR within
    each family): under the global null BH keeps P(any rejection) <= 0.05 per family, so
    more than 4 of 25 seeds with one has probability < 0.01 per family.
    """
    rejections, n_tests = 0, 0
    family_hits = {"relatedness": 0, "wb": 0}
    for seed in range(25):
        root, stim = tiny_bids(per_class=1, geometry="null", seed=seed)
        _, rel, wb = _analyse(root, stim, stats={"n_permutations": 199, "seed": seed})
        ps = [r["p"] for r in rel.values()] + [r["p"] for r in wb.values()]
        rejections += sum(p < 0.05 for p in ps)
        n_tests += len(ps)
        family_hits["relatedness"] += any(r["significant"] for r in rel.values())
        family_hits["wb"] += any(r["significant"] for r in wb.values())
    assert n_tests == 150
    assert binom.sf(14, 150, 0.05) < 0.01 and binom.sf(4, 25, 0.05) < 0.01
    assert rejections <= 14, rejections
    assert max(family_hits.values()) <= 4, family_hits
