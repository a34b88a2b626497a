"""Stimuli end to end on tiny trained networks; the DNN side (hooks, RDMs, accuracy)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from repro.distill.models import build_model
from repro.fmri.attacks import PixelModel
from repro.fmri.dnn import accuracy_by_condition, activations, default_layers, dnn_analysis
from repro.fmri.params import DnnParams, StimulusParams, from_dict
from repro.fmri.stimuli import COLUMNS, build_stimuli, load_nets, read_stimuli


def test_default_layers_of_zoo_models():
    assert default_layers(build_model("resnet20", 10, 1)) == [
        "conv1", "stages.0", "stages.1", "stages.2", "fc",
    ]  # fmt: skip
    assert default_layers(build_model("wrn_16_2", 10, 1)) == [
        "conv1", "stages.0", "stages.1", "stages.2", "fc",
    ]  # fmt: skip
    assert default_layers(build_model("resnet18_imagenet", 10, 3)) == [
        "net.conv1", "net.layer1", "net.layer2", "net.layer3", "net.layer4", "net.fc",
    ]  # fmt: skip


def test_hooked_activations_equal_the_models_own_stage_outputs(digits):
    torch.manual_seed(0)
    model = PixelModel(build_model("resnet8", 10, 1), [0.5], [0.5]).eval()
    x = torch.from_numpy(digits[0][:20]).permute(0, 3, 1, 2).contiguous()
    acts = activations(model, x, ["stages.2", "fc"], batch_size=7)
    with torch.no_grad():
        logits, feats = model.model((x.float() / 255 - 0.5) / 0.5)
    np.testing.assert_allclose(acts["stages.2"], feats["feats"][3].flatten(1).numpy(), atol=1e-5)
    np.testing.assert_allclose(acts["fc"], logits.numpy(), atol=1e-5)


def test_accuracy_by_condition_by_hand(make_stimuli):
    stim = make_stimuli(1)  # 10 sources x 3 conditions, classes 0..9
    preds = stim.labels.copy()
    preds[10:14] = (preds[10:14] + 1) % 10  # 4 white-box errors
    preds[20] = (preds[20] + 1) % 10  # 1 black-box error
    res = accuracy_by_condition(stim, preds)
    assert res["accuracy"] == {"clean": 1.0, "white": 0.6, "black": 0.9}
    assert res["mcnemar"]["white"]["lost"] == 4
    assert res["mcnemar"]["white"]["p"] == pytest.approx(0.5**4)


@pytest.mark.slow
def test_stimuli_and_dnn_side_end_to_end(digits_dir, trained_nets, tmp_path):
    params = from_dict(
        StimulusParams,
        {"nets": {"target": "resnet8", "substitute": "wrn_16_1"}, "per_class": 2,
         "attack": {"method": "pgd", "epsilon": 32, "step_size": 4, "steps": 10}},
        "stimuli",
    )  # fmt: skip
    out = tmp_path / "stimuli"
    stim = build_stimuli(
        digits_dir, trained_nets["target"], trained_nets["substitute"], params, out
    )
    assert len(stim.table) == 60
    with open(out / "stimuli.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 60
    back = read_stimuli(out)
    assert np.array_equal(back.images, stim.images)  # PNG is lossless
    clean, white, black = (
        back.images[back.conditions == c].astype(int) for c in ("clean", "white", "black")
    )
    assert np.abs(white - clean).max() <= 32 and np.abs(black - clean).max() <= 32
    assert np.abs(white - clean).max() == 32
    # every source is classified correctly by both networks when clean (require_correct)
    clean_rows = [r for r in back.table if r["condition"] == "clean"]
    assert all(r["target_pred"] == r["class"] == r["substitute_pred"] for r in clean_rows)
    white_rows = [r for r in back.table if r["condition"] == "white"]
    black_rows = [r for r in back.table if r["condition"] == "black"]
    assert all(r["success"] == int(r["target_pred"] != r["class"]) for r in white_rows + black_rows)
    white_rate = np.mean([r["success"] for r in white_rows])
    black_rate = np.mean([r["success"] for r in black_rows])
    assert white_rate >= 0.6 and white_rate > black_rate
    # black-box stimuli fool the substitute they were made on
    assert np.mean([r["substitute_pred"] != r["class"] for r in black_rows]) >= 0.6

    dparams = from_dict(
        DnnParams,
        {"nets": {"target": "resnet8", "substitute": "wrn_16_1"}, "stats": {"n_permutations": 999}},
        "dnn",
    )
    target, substitute = load_nets(
        dparams.nets, trained_nets["target"], trained_nets["substitute"], 10, 1
    )
    results, rdms = dnn_analysis(back, {"target": target, "substitute": substitute}, dparams)
    tgt = results["networks"]["target"]
    assert len(rdms) == 10 and rdms["target/fc"].shape == (60 * 59 // 2,)
    assert tgt["accuracy"]["clean"] == 1.0
    assert tgt["accuracy"]["white"] == pytest.approx(1 - white_rate)
    assert tgt["mcnemar"]["white"]["p"] < 0.01
    # the white-box attack moves the target's output layer further than the transferred one
    fc = tgt["wb_difference"][-1]
    assert fc["layer"] == "fc" and fc["T"] > 0 and fc["significant"]
