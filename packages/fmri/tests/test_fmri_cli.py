"""The CLI steps end to end (stimuli -> dnn -> simulate -> analyse -> report) and its errors."""

from __future__ import annotations

import csv
import json

import pytest

from repro.core.papers import reported_file
from repro.fmri.cli import main

NETS = {"target": "resnet8", "substitute": "wrn_16_1"}


REPORTED = reported_file("fmri-adv")


def test_unknown_param_key_is_one_line_naming_it(tmp_path, capsys):
    rc = main(["simulate", "--stimuli", str(tmp_path), "--out", str(tmp_path / "b"),
               "--params", json.dumps({"n_subject": 2})])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0
    assert err.startswith("error: simulate: unknown key 'n_subject'")


def test_settings_are_params_not_flags(tmp_path, capsys):
    """The significance level and the device are params (one config key each), checked
    before any file is read; the old flags are gone."""
    paths = ["--stimuli", str(tmp_path), "--dnn", str(tmp_path), "--out", str(tmp_path / "r")]
    rc = main(["report", *paths, "--params", json.dumps({"alpha": 1.5})])
    assert rc == 2 and capsys.readouterr().err.strip() == "error: report.alpha: must be in (0, 1)"
    rc = main(["report", *paths, "--params", json.dumps({"alpha": "0.05"})])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == "error: report.alpha: must be a number, not str '0.05'"
    for args in (["report", *paths, "--alpha", "0.01"], ["analyse", *paths, "--bids",
                 str(tmp_path), "--device", "cpu"]):  # fmt: skip
        with pytest.raises(SystemExit):
            main(args)
        assert f"unrecognized arguments: {' '.join(args[-2:])}" in capsys.readouterr().err


def test_malformed_bids_stops_the_analysis_with_one_line(tiny_bids, tmp_path, capsys):
    from repro.fmri.stimuli import write_stimuli

    root, stim = tiny_bids()
    write_stimuli(stim, tmp_path / "stimuli")
    events = root / "sub-01/func/sub-01_task-adv_run-1_events.tsv"
    events.unlink()
    rc = main(["analyse", "--bids", str(root), "--stimuli", str(tmp_path / "stimuli"),
               "--out", str(tmp_path / "a")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and str(events) in err
    assert not (tmp_path / "a" / "analysis.json").exists()


@pytest.mark.slow
def test_pipeline_end_to_end(digits_dir, trained_nets, tmp_path):
    t, s = str(trained_nets["target"]), str(trained_nets["substitute"])
    # device "auto" as config/smoke.yaml sets it (torch.device("auto") raised before)
    stim_params = {"nets": NETS, "per_class": 1, "attack": {"epsilon": 32, "step_size": 4},
                   "device": "auto"}  # fmt: skip
    assert (
        main(
            [
                "stimuli",
                "--data",
                str(digits_dir),
                "--target",
                t,
                "--substitute",
                s,
                "--params",
                json.dumps(stim_params),
                "--out",
                str(tmp_path / "stim"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "dnn",
                "--stimuli",
                str(tmp_path / "stim"),
                "--target",
                t,
                "--substitute",
                s,
                "--params",
                json.dumps({"nets": NETS, "stats": {"n_permutations": 199}, "device": "auto"}),
                "--out",
                str(tmp_path / "dnn"),
            ]
        )
        == 0
    )
    sim = {"n_subjects": 1, "n_runs": 2, "shape": [6, 6, 2], "roi_voxels": 24, "soa": 3.0}
    assert (
        main(
            [
                "simulate",
                "--stimuli",
                str(tmp_path / "stim"),
                "--params",
                json.dumps(sim),
                "--out",
                str(tmp_path / "bids"),
            ]
        )
        == 0
    )
    ana = {"stats": {"n_permutations": 199}, "device": "auto"}
    assert (
        main(
            [
                "analyse",
                "--bids",
                str(tmp_path / "bids"),
                "--stimuli",
                str(tmp_path / "stim"),
                "--dnn",
                str(tmp_path / "dnn"),
                "--params",
                json.dumps(ana),
                "--out",
                str(tmp_path / "ana"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "report",
                "--stimuli",
                str(tmp_path / "stim"),
                "--dnn",
                str(tmp_path / "dnn"),
                "--analysis",
                str(tmp_path / "ana"),
                "--reported",
                str(REPORTED),
                "--params",
                json.dumps({"alpha": 0.05}),
                "--out",
                str(tmp_path / "rep"),
            ]
        )
        == 0
    )
    # fmt: skip
    analysis = json.loads((tmp_path / "ana" / "analysis.json").read_text())
    refs = {r["reference"] for r in analysis["relatedness"]}
    assert {"model/pixels", "model/category", "target/fc", "substitute/stages.2"} <= refs
    assert analysis["simulated"] is True
    with open(tmp_path / "rep" / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    claims = [r for r in rows if r["table"] == "The abstract's claims"]
    assert len(claims) == 4
    assert all(r["holds_reported"] == "yes" and "abstract" in r["source"] for r in claims)
    # simulated brain data: the brain and behaviour claims are not compared with the paper
    dnn_claims = [r for r in claims if "DNN" in r["claim"]]
    assert len(dnn_claims) == 2 and all(
        r["holds_diff"] in ("agrees", "differs") for r in dnn_claims
    )
    assert all(r["holds_ours"].split()[0] in ("yes", "no") for r in dnn_claims)
    for r in claims:
        if r not in dnn_claims:
            assert r["holds_ours"] == r["holds_diff"] == ""
            assert r["note"].startswith("not comparable: simulated data")
    # a claim and the detail row of its test give the same n: source images for the brain
    # test (not subjects), the trials of the two conditions compared for behaviour
    numbers = [r for r in rows if r["table"] == "Our numbers"]
    brain = next(r for r in claims if "brain" in r["claim"])
    roi = brain["note"].split("value/p: ROI ")[1].split(",")[0]
    (detail,) = [r for r in numbers if "brain, simulated" in r["section"] and r["item"] == roi]
    with open(tmp_path / "stim" / "stimuli.csv", newline="") as fh:
        n_sources = len({r["source"] for r in csv.DictReader(fh)})
    assert f"(n = {n_sources})" in brain["note"] and detail["test_n"] == str(n_sources)
    human = next(r for r in claims if "human" in r["claim"])
    cond = human["note"].split("accuracy ")[1].split(" - clean")[0]
    trials = analysis["behaviour"]["n_trials"]
    assert f"(n = {trials['clean'] + trials[cond]})" in human["note"]
    (detail,) = [r for r in numbers if r["item"] == f"{cond} - clean"]
    assert detail["test_n"] == str(trials["clean"] + trials[cond])
    assert "simulated responses" in detail["section"]
    assert any(r["section"] == "attack success on target" for r in rows)
    for fig in ("example_stimuli", "rdm_panels", "roi_layer_similarity", "white_black_difference"):
        assert (tmp_path / "rep" / "figures" / f"{fig}.png").stat().st_size > 5000
    assert (tmp_path / "rep" / "provenance.json").is_file()
