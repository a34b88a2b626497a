"""The rsatoolbox files beside ``rdms.npz``: written by the real ``dnn`` and ``analyse`` steps,
loaded with rsatoolbox, equal to the npz RDMs, described by the stimulus table."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from rsatoolbox.rdm import load_rdm

from repro.core.checkpoint import save_checkpoint
from repro.distill.models import build_model
from repro.fmri.cli import main
from repro.fmri.rdm import to_matrix
from repro.fmri.stimuli import write_stimuli

NETS = {"target": "resnet8", "substitute": "wrn_16_1"}


@pytest.fixture(scope="module")
def steps_run(tmp_path_factory, make_stimuli):
    """``simulate``, ``dnn`` and ``analyse`` through the CLI: 30 stimuli, two simulated
    subjects, untrained networks (the files' format is under test, not what they learnt)."""
    out = tmp_path_factory.mktemp("rsatoolbox")
    write_stimuli(make_stimuli(1), out / "stim")
    nets = {}
    for seed, (role, name) in enumerate(NETS.items()):
        torch.manual_seed(seed)
        nets[role] = out / f"{role}.pt"
        save_checkpoint(nets[role], {"model": build_model(name, 10, 1).state_dict()})
    quick = {"stats": {"n_permutations": 99}}
    sim = {"n_subjects": 2, "n_runs": 2, "roi_voxels": 24, "shape": [6, 6, 2], "soa": 3.0}
    stim = ["--stimuli", str(out / "stim")]
    dnn = [*stim, "--target", str(nets["target"]), "--substitute", str(nets["substitute"])]
    for argv in (
        ["simulate", *stim, "--params", json.dumps(sim), "--out", str(out / "bids")],
        ["dnn", *dnn, "--params", json.dumps({"nets": NETS, **quick}), "--out", str(out / "dnn")],
        ["analyse", "--bids", str(out / "bids"), *stim, "--dnn", str(out / "dnn"),
         "--params", json.dumps(quick), "--out", str(out / "ana")],
    ):  # fmt: skip
        assert main(argv) == 0, argv[0]
    with open(out / "stim" / "stimuli.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    return out, table


def _same_stimuli(rdms, table):
    pd = rdms.pattern_descriptors
    assert list(pd["stimulus"]) == [r["id"] for r in table]
    assert list(pd["condition"]) == [r["condition"] for r in table]
    assert set(pd["condition"]) == {"clean", "white", "black"}
    assert [int(v) for v in pd["source"]] == [int(r["source"]) for r in table]
    assert [int(v) for v in pd["class"]] == [int(r["class"]) for r in table]
    assert list(pd["class_name"]) == [r["class_name"] for r in table]


def test_dnn_layer_rdms_load_in_rsatoolbox_equal_to_the_npz(steps_run):
    out, table = steps_run
    rdms = load_rdm(str(out / "dnn" / "rdms.hdf5"))
    npz = np.load(out / "dnn" / "rdms.npz")
    names = npz["names"].tolist()
    assert rdms.n_rdm == len(names) and rdms.n_cond == len(table) == 30
    np.testing.assert_array_equal(rdms.get_matrices(), to_matrix(npz["rdms"]))
    assert rdms.dissimilarity_measure == "correlation"
    rd = rdms.rdm_descriptors
    assert list(rd["name"]) == names
    assert [f"{n}/{la}" for n, la in zip(rd["network"], rd["layer"], strict=True)] == names
    assert {(n, m) for n, m in zip(rd["network"], rd["model"], strict=True)} == set(NETS.items())
    fc = rdms.subset("name", "target/fc").get_vectors()[0]
    np.testing.assert_array_equal(fc, npz["rdms"][names.index("target/fc")])
    _same_stimuli(rdms, table)
    assert not list((out / "dnn").glob(".*.tmp"))  # written through a renamed temporary file


def test_roi_rdms_load_in_rsatoolbox_equal_to_the_npz(steps_run):
    out, table = steps_run
    rdms = load_rdm(str(out / "ana" / "rdms.hdf5"))
    npz = np.load(out / "ana" / "rdms.npz")
    subject_rdms = npz["subject_rdms"]
    n_sub, n_roi, n_pairs = subject_rdms.shape
    assert (n_sub, n_roi) == (2, 2) and rdms.n_cond == len(table) == 30
    np.testing.assert_array_equal(
        rdms.get_matrices(), to_matrix(subject_rdms.reshape(n_sub * n_roi, n_pairs))
    )
    assert rdms.dissimilarity_measure == "crossnobis"
    assert rdms.descriptors == {"data": "simulated", "noise_normalisation": "multivariate"}
    rd = rdms.rdm_descriptors
    assert list(rd["subject"]) == ["01", "01", "02", "02"] == np.repeat(npz["subjects"], 2).tolist()
    assert list(rd["roi"]) == ["early", "late", "early", "late"]
    for r, roi in enumerate(npz["rois"].tolist()):  # the npz's group RDM: the subjects' mean
        group = rdms.subset("roi", roi).mean().get_vectors()[0]
        np.testing.assert_allclose(group, npz["group_rdms"][r], rtol=1e-12, atol=1e-12)
    _same_stimuli(rdms, table)
    assert not list((out / "ana").glob(".*.tmp"))
