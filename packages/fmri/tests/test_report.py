"""The scorecard's rows and the figures say when the brain data are simulated; a simulated
row is never compared with the paper; claim and detail rows give the same n."""

from __future__ import annotations

import numpy as np
import pytest

from repro.core.papers import reported_file
from repro.core.scorecard import load_reported, score_rows
from repro.fmri import figures
from repro.fmri.report import (
    NOT_COMPARABLE,
    claim_rows,
    number_rows,
    scorecard_runs,
    scorecard_tables,
)

REPORTED = reported_file("fmri-adv")
BRAIN = "white/black-box representations differ in the brain (significant)"
BEHAVIOUR = "human categorisation unaffected by either noise"


def _wb(key, names, ps):
    return [
        {key: n, "T": 0.1 * k, "p": p, "p_adjusted": min(1.0, 2 * p), "significant": 2 * p < 0.05,
         "effect_size": 0.5, "d_clean_white": 1.0, "d_clean_black": 0.9}
        for k, (n, p) in enumerate(zip(names, ps, strict=True))
    ]  # fmt: skip


def _inputs(simulated: bool):
    net = {
        "model": "resnet20",
        "wb_difference": _wb("layer", ["stages.0", "fc"], [0.3, 0.001]),
        "accuracy": {"clean": 1.0, "white": 0.1, "black": 0.6},
        "n": {"clean": 20, "white": 20, "black": 20},
        "mcnemar": {"white": {"p": 1e-5}, "black": {"p": 1e-3}},
    }
    dnn = {"n_stimuli": 60, "networks": {"target": net, "substitute": dict(net, model="wrn")}}
    analysis = {
        "simulated": simulated,
        "n_subjects": 3,
        "n_stimuli": 60,
        "n_sources": 20,
        "wb_difference": _wb("roi", ["early", "late"], [0.4, 0.002]),
        "relatedness": [
            {
                "roi": "late",
                "reference": "model/category",
                "r": 0.3,
                "p": 0.001,
                "p_adjusted": 0.002,
                "significant": True,
                "r_subject_mean": 0.2,
            }
        ],  # fmt: skip
        "params": {"comparison": "spearman"},
        "behaviour": {
            "accuracy": {"clean": 0.95, "white": 0.94, "black": 0.96},
            "n_trials": {"clean": 240, "white": 240, "black": 240},
            "tests": {
                "white": {"difference": -0.01, "p": 0.6, "n_trials": 480},
                "black": {"difference": 0.01, "p": 0.5, "n_trials": 480},
            },
        },
    }
    stim_meta = {"attack_success": {"white": {"success_rate": 0.9, "n": 20}}}
    return stim_meta, dnn, analysis


def _scorecard(simulated: bool):
    stim_meta, dnn, analysis = _inputs(simulated)
    claims = claim_rows(dnn, analysis, simulated)
    numbers = number_rows(stim_meta, dnn, analysis)
    runs = scorecard_runs(claims + numbers)
    tables = scorecard_tables(numbers)
    reported = load_reported(REPORTED)
    claim_table = {r["claim"]: r for r in score_rows(tables[0], runs, reported)}
    return claims, numbers, claim_table


def test_simulated_brain_and_behaviour_claims_are_not_compared_with_the_paper():
    _, numbers, table = _scorecard(simulated=True)
    for claim in (BRAIN, BEHAVIOUR):
        row = table[claim]
        assert row["holds_reported"] == "yes"  # the paper's claim is still shown
        assert row["holds_diff"] != "agrees" and row["holds_ours"] is None
        assert row["note"].startswith(NOT_COMPARABLE) and "simulated data: " in row["note"]
    # the DNN claims rest on the networks: compared as before
    assert table["DNN accuracy degraded by the adversarial noise"]["holds_diff"] == "agrees"
    brain = [r for r in numbers if "brain" in r["section"] or "ROI" in r["section"]]
    human = [r for r in numbers if "human" in r["section"]]
    assert brain and human
    assert all("simulated" in r["section"] for r in brain + human)
    assert not any("simulated" in r["section"] for r in numbers if r not in brain + human)


def test_measured_brain_claims_are_compared_and_say_measured():
    _, numbers, table = _scorecard(simulated=False)
    assert table[BRAIN]["holds_ours"] == "yes" and table[BRAIN]["holds_diff"] == "agrees"
    assert table[BEHAVIOUR]["holds_diff"] == "agrees"
    assert "measured" in table[BRAIN]["note"] and "simulated" not in table[BRAIN]["note"]
    sections = {r["section"] for r in numbers if "brain" in r["section"] or "human" in r["section"]}
    assert sections and all("measured" in s and "simulated" not in s for s in sections)


@pytest.mark.parametrize("simulated", [True, False])
def test_a_claim_and_the_detail_row_of_its_test_give_the_same_n(simulated):
    claims, numbers, _ = _scorecard(simulated)
    detail_of = {  # the detail row of the test behind each claim's value and p
        "white/black-box representations differ in the DNN (significant)": (
            "white-black difference (target resnet20)", "fc"),
        BRAIN: ("white-black difference (brain", "late"),
        BEHAVIOUR: ("human accuracy", "black - clean"),
        "DNN accuracy degraded by the adversarial noise": ("DNN accuracy (target", "black"),
    }  # fmt: skip
    for claim in claims:
        section, item = detail_of[claim["item"]]
        (row,) = [r for r in numbers if r["section"].startswith(section) and r["item"] == item]
        assert (row["p"], row["n"]) == (claim["p"], claim["n"]), claim["item"]
    n = {c["item"]: c["n"] for c in claims}
    assert n[BRAIN] == 20  # source images of the sign-flip test, not 3 subjects
    assert n[BEHAVIOUR] == 480  # trials of white and clean, not 3 subjects


def _texts(monkeypatch):
    seen = []

    def capture(fig, path):
        texts = [fig._suptitle.get_text()] if fig._suptitle else []
        for ax in fig.axes:
            texts += [ax.get_title(), ax.get_ylabel(), ax.get_xlabel()]
        seen.append(" | ".join(texts))

    monkeypatch.setattr(figures, "save_figure", capture)
    return seen


@pytest.mark.parametrize("data", ["simulated", "measured"])
def test_brain_figures_name_the_data_and_the_axis(monkeypatch, tmp_path, make_stimuli, data):
    seen = _texts(monkeypatch)
    _, dnn, analysis = _inputs(data == "simulated")
    wb = {"target resnet20": dnn["networks"]["target"]["wb_difference"]}
    figures.wb_plot(wb, analysis["wb_difference"], tmp_path / "wb.png", brain_data=data)
    figures.roi_layer_plot(analysis["relatedness"], tmp_path / "roi.png", data=data)
    stim = make_stimuli()
    n = len(stim.ids)
    rdms = {"ROI late": np.arange(n * (n - 1) // 2, dtype=float)}
    figures.rdm_panels(rdms, stim, tmp_path / "rdms.png", brain_data=data)
    assert len(seen) == 3
    other = "measured" if data == "simulated" else "simulated"
    assert all(data in text and other not in text for text in seen)
    assert "effect size" in seen[0]


def test_without_fmri_data_the_brain_panel_says_so(monkeypatch, tmp_path):
    seen = _texts(monkeypatch)
    _, dnn, _ = _inputs(True)
    wb = {"target resnet20": dnn["networks"]["target"]["wb_difference"]}
    figures.wb_plot(wb, [], tmp_path / "wb.png", brain_data=None)
    assert "brain ROIs (no fMRI data)" in seen[0]
    assert "simulated" not in seen[0] and "measured" not in seen[0]
