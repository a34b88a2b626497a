"""The paper contract of fMRI-adv (repro.fmri.plan) without Snakemake: config checks, the one
significance level, the networks from the KD pool, pre-flight, targets, resources, and the
schema holding the same keys as the parameter dataclasses."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from repro.core import ReproError
from repro.core.config import load_schema, validate_config
from repro.core.papers import registry, schema_file, schema_sections
from repro.core.params import keys, parse
from repro.fmri import params as P
from repro.fmri import plan

ROOT = Path(__file__).resolve().parents[3]
QUICK = yaml.safe_load((ROOT / "config/quick.yaml").read_text())
PAPER = yaml.safe_load((ROOT / "config/paper.yaml").read_text())


def _validated(config: dict, **section) -> dict:
    """``config`` with ``section`` merged into fmri_adv, validated (defaults filled) against
    the config schema with the registered papers' sections, as common.smk does."""
    config = copy.deepcopy(config)
    config["fmri_adv"].update(section)
    papers = registry()
    schema = load_schema(
        ROOT / "workflow/schemas/config.schema.yaml",
        sections=schema_sections(papers),
        papers=papers,
    )
    return validate_config(config, schema, "test.yaml")


def test_the_plan_is_registered_as_fmri_adv_with_its_schema():
    assert registry()["fmri-adv"] is plan
    assert plan.SCHEMAS["fmri_adv"] == schema_file("repro.fmri", "fmri_adv")
    assert plan.SCHEMAS["kd"] == schema_file("repro.distill", "kd")  # the pool's owner's


def test_the_quick_and_paper_sections_have_no_problems():
    assert plan.check(_validated(QUICK)) == []
    assert plan.check(_validated(PAPER)) == []


def test_config_problems_are_one_line_naming_the_key():
    config = _validated(QUICK, stimuli={"per_class": 0})
    assert plan.check(config) == ["fmri_adv.stimuli.per_class: must be a positive integer"]
    config = _validated(QUICK, networks={"target": "resnet20", "substitute": "resnet20"})
    (problem,) = plan.check(config)
    assert problem.startswith("fmri_adv.networks.substitute: must differ")
    mixed = _validated(QUICK)
    mixed["kd"]["pretrained_teachers"] = {"digits": {"resnet20": "/x/resnet20.pth"}}
    (problem,) = plan.check(mixed)
    assert problem.startswith("fmri_adv.networks: target and substitute must both")


def test_one_significance_level_reaches_every_step_that_uses_one():
    config = _validated(QUICK, alpha=0.01)
    dnn = parse(P.DnnParams, plan.dnn_params(config))
    analysis = parse(P.AnalysisParams, plan.analysis_params(config))
    report = parse(P.ReportParams, plan.report_params(config))
    assert dnn.stats.alpha == analysis.stats.alpha == report.alpha == 0.01
    # the quick config sets none: the schema's default, the dataclasses' default
    default = _validated(QUICK)
    assert plan.dnn_params(default)["stats"] == {"n_permutations": 2000, "alpha": 0.05}
    # a second level in a step section is not a key of the config
    for section in ("dnn", "analysis"):
        with pytest.raises(ReproError, match=f"unknown key 'fmri_adv.{section}.stats.alpha'"):
            _validated(QUICK, **{section: {"stats": {"alpha": 0.01}}})


def test_device_and_the_simulated_tr_reach_the_analysis():
    config = _validated(QUICK, device="cuda:1", brain={"simulate": {"tr": 2.0}})
    params = plan.analysis_params(config)
    assert params["device"] == "cuda:1" and params["bids"]["tr"] == 2.0
    assert plan.stimuli_params(config)["device"] == plan.dnn_params(config)["device"] == "cuda:1"


def test_networks_trained_here_are_the_kd_pools_vanilla_runs():
    config = _validated(QUICK)
    assert plan.weights_format(config) == "trainer"
    assert plan.network_file(config, "results/quick", "target") == (
        "results/quick/vanilla/digits/resnet20/seed0/model.pt"
    )
    config["kd"]["teacher_seed"] = 3
    assert plan.network_file(config, "results/q", "substitute") == (
        "results/q/vanilla/digits/wrn_16_2/seed3/model.pt"
    )


def test_pretrained_networks_are_the_users_files_and_unset_ones_stop_the_stimuli():
    config = _validated(PAPER)
    assert plan.weights_format(config) == "torchvision"
    assert plan.network_file(config, "results/paper", "target") == []  # not set in paper.yaml
    problems = plan.preflight(config, [("fmri_stimuli", {})])
    assert problems == [
        f"config key kd.pretrained_teachers.imagenet.{m} is not set (path to the teacher's "
        "torchvision state_dict file; nothing is downloaded)"
        for m in ("resnet34_imagenet", "resnet50_imagenet")
    ]
    assert plan.preflight(config, None) == problems
    assert plan.preflight(config, [("fmri_report", {})]) == []
    config["kd"]["pretrained_teachers"]["imagenet"]["resnet50_imagenet"] = "/w/r50.pth"
    assert plan.network_file(config, "results/paper", "target") == "/w/r50.pth"
    assert len(plan.preflight(config, [("fmri_dnn", {})])) == 1


def test_a_users_bids_dataset_is_validated_when_the_analysis_is_planned(tiny_bids):
    root, _ = tiny_bids()
    bids = {"rois": ["early", "late"]}
    config = _validated(QUICK, brain={"bids_root": str(root)}, analysis={"bids": bids})
    assert plan.preflight(config, [("fmri_analyse", {})]) == []
    events = root / "sub-01/func/sub-01_task-adv_run-1_events.tsv"
    events.unlink()
    (problem,) = plan.preflight(config, [("fmri_analyse", {})])
    assert problem.startswith("fmri_adv.brain.bids_root: ") and str(events) in problem
    assert plan.preflight(config, None) == [problem]
    assert plan.preflight(config, [("fmri_report", {})]) == []
    # the simulated dataset is not validated before it exists
    assert plan.preflight(_validated(QUICK), None) == []


def test_the_brain_data_are_the_users_or_simulated_here():
    simulated = _validated(QUICK)
    assert plan.brain_data(simulated) == "simulated"
    assert plan.bids_dir(simulated, "results/q") == "results/q/fmri-adv/bids"
    assert plan.simulated_bids(simulated, "results/q") == [
        "results/q/fmri-adv/bids/dataset_description.json"
    ]
    assert plan.simulate_params(simulated) == {"seed": 0, "n_subjects": 3, "n_runs": 4}
    measured = _validated(QUICK, brain={"bids_root": "/data/bids"})
    assert plan.brain_data(measured) == "measured"
    assert plan.bids_dir(measured, "results/q") == "/data/bids"
    assert plan.simulated_bids(measured, "results/q") == []
    assert plan.simulate_params(measured) is None


def test_targets_datasets_and_resources():
    config = _validated(PAPER)
    assert plan.targets(config, "results/paper") == [
        f"results/paper/fmri-adv/{f}"
        for f in ("summary.csv", "summary.html", "summary.md", "figures/example_stimuli.png",
                  "figures/rdm_panels.png", "figures/white_black_difference.png",
                  "figures/roi_layer_similarity.png", "provenance.json")
    ]  # fmt: skip
    assert plan.datasets(config) == {"imagenet"}
    # the steps on fmri_adv.device request fmri_adv.gpus (paper: 1); the others none
    for step in ("stimuli", "dnn", "analyse"):
        assert plan.resources(config, step)["gpu"] == 1
    for step in ("simulate", "report"):
        assert "gpu" not in plan.resources(config, step)
    for step in ("stimuli", "dnn", "simulate", "analyse", "report"):
        assert {"threads", "mem_mb", "runtime"} <= set(plan.resources(config, step))
    assert plan.resources(_validated(QUICK), "dnn") == {
        "threads": 1, "mem_mb": 4000, "runtime": 60, "gpu": 0
    }  # fmt: skip
    with pytest.raises(ReproError, match="fmri-adv: no step 'train'"):
        plan.resources(config, "train")


def _schema_keys(node: dict) -> dict:
    """The key tree of a schema object: ``{key: subtree or None}``."""
    return {
        name: _schema_keys(sub) if "properties" in sub else None
        for name, sub in node["properties"].items()
    }


def _without(tree: dict, *paths: str) -> dict:
    tree = copy.deepcopy(tree)
    for path in paths:
        *parents, leaf = path.split(".")
        node = tree
        for name in parents:
            node = node[name]
        del node[leaf]
    return tree


def test_the_schema_lists_exactly_the_parameter_keys():
    """Each step section of the schema has the keys of its dataclass, less those the plan
    sets from the section's own keys (nets <- networks, device, stats.alpha <- alpha)."""
    schema = _schema_keys(yaml.safe_load(plan.SCHEMAS["fmri_adv"].read_text()))
    assert schema["networks"] == _without(keys(P.NetParams), "weights_format")
    assert schema["stimuli"] == _without(keys(P.StimulusParams), "nets", "device")
    assert schema["dnn"] == _without(keys(P.DnnParams), "nets", "device", "stats.alpha")
    assert schema["analysis"] == _without(keys(P.AnalysisParams), "device", "stats.alpha")
    assert schema["brain"]["simulate"] == keys(P.SimParams)
    assert {"device", "alpha"} <= set(schema) and keys(P.ReportParams) == {"alpha": None}
