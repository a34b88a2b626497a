"""The paper contract of repro.core.papers as ``repro.vse.plan`` keeps it, and the values the
rule file wires (no Snakemake: the plan's functions on the quick and paper configs)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from repro.core.papers import Paper, registry, schema_file
from repro.vse import plan

ROOT = Path(__file__).resolve().parents[3]


def _config(name: str) -> dict:
    return yaml.safe_load((ROOT / f"config/{name}.yaml").read_text())


@pytest.fixture
def quick() -> dict:
    return _config("quick")


@pytest.fixture
def paper() -> dict:
    return _config("paper")


def _off(config: dict) -> dict:
    return {**config, "papers": [p for p in config["papers"] if p != "mhsan"]}


def test_the_plan_is_the_registered_paper_mhsan():
    assert registry()["mhsan"] is plan and isinstance(plan, Paper)
    schemas = dict(plan.SCHEMAS)
    assert schemas == {"mhsan": schema_file("repro.vse", "mhsan")}
    assert plan.datasets(_config("quick")) == set()  # no prepared dataset under data/


def test_check_lists_config_problems_only_when_the_run_reproduces_the_paper(quick):
    assert plan.check(quick) == []
    bad = copy.deepcopy(quick)
    bad["mhsan"]["datasets"]["synthetic"]["only"] = ["r2"]
    bad["mhsan"]["test_images"] = 12  # only the naming problem: the rest needs valid names
    assert plan.check(bad) == [
        "mhsan.datasets.synthetic.only: r2: no such model in mhsan.models (r1, r10)"
    ]
    del bad["mhsan"]["datasets"]["synthetic"]["only"]
    assert plan.check(bad) == []  # `full` takes any test-set size
    assert plan.check(_off(bad | {"mhsan": {"datasets": {"synthetic": {"only": ["x"]}}}})) == []


def test_preflight_names_the_users_files_for_planned_training_or_scorecard_jobs(paper, tmp_path):
    problems = plan.preflight(paper, None)  # None: everything the config implies
    assert problems == plan.user_file_problems(paper["mhsan"])
    assert "mhsan.datasets.coco.split_file: not set (the Karpathy split JSON of coco, e.g. " \
        "dataset_coco.json)" in problems  # fmt: skip
    assert sum("backbone_weights: not set" in p for p in problems) == 1  # train.model's, once
    assert plan.preflight(paper, [("mhsan_train", {"dataset": "f30k"})]) == problems
    assert plan.preflight(paper, [("mhsan_report", {})]) == problems
    assert plan.preflight(paper, [("train_kd", {}), ("mhsan_make_synthetic", {})]) == []
    assert plan.preflight(paper, []) == []
    assert plan.preflight(_off(paper), None) == []
    # set and present: nothing left to report
    files = {"split_file": tmp_path / "s.json", "images": tmp_path}
    files["split_file"].write_text("{}")
    (tmp_path / "r152.pth").write_bytes(b"")
    paper["mhsan"]["train"]["model"]["backbone_weights"] = str(tmp_path / "r152.pth")
    for dataset in ("coco", "f30k"):
        paper["mhsan"]["datasets"][dataset].update({k: str(v) for k, v in files.items()})
    assert plan.preflight(paper, None) == []


def test_targets_are_the_scorecard_jobs_outputs(quick):
    targets = plan.targets(quick, "results/quick")
    assert targets == list(plan.report_outputs("results/quick").values())
    assert targets == [f"results/quick/mhsan/{f}" for f in (
        "summary.csv", "summary.html", "summary.md", "runs.csv", "figures/attention.png",
        "figures/recall_vs_heads.png", "provenance.json",
    )]  # fmt: skip
    assert plan.targets(_off(quick), "results/quick") == []


def test_resources_default_per_step_and_the_sections_override_the_training_jobs(quick, paper):
    assert plan.resources(quick, "train") == {
        "threads": 1, "mem_mb": 4000, "runtime": 30, "gpu": 0,
    }  # fmt: skip
    assert plan.resources(paper, "train") == {
        "threads": 9, "mem_mb": 64000, "runtime": 4320, "gpu": 1,
    }  # fmt: skip
    for step in ("synthetic", "report"):  # the section's resources are the training jobs'
        assert plan.resources(paper, step) == plan.RESOURCES[step]
        assert plan.resources(paper, step)["gpu"] == 0
    assert plan.resources({"papers": []}, "train") == plan.RESOURCES["train"]
    with pytest.raises(KeyError):
        plan.resources(quick, "evaluate")


def test_the_training_jobs_params_add_the_settings_to_the_runs(quick, paper):
    params = plan.train_params(paper, "f30k", "r10", 0)
    settings = {"device": "cuda", "threads": 9, "cache": True}
    assert params == {**plan.run_params(paper["mhsan"], "f30k", "r10", 0), **settings}
    quick["mhsan"]["cache"] = False
    assert plan.train_params(quick, "synthetic", "r1", 0)["cache"] is False
    del quick["mhsan"]["device"], quick["mhsan"]["resources"]
    assert plan.train_params(quick, "synthetic", "r1", 0)["device"] == "cpu"
    assert plan.train_params(quick, "synthetic", "r1", 0)["threads"] == 1


def test_the_wired_values_on_and_off(quick, paper):
    assert plan.dataset_pattern(paper) == "coco|f30k" and plan.dataset_pattern(quick) == "synthetic"
    assert plan.model_pattern(paper) == "r1|r5|r10|r10_nodiv"
    never = plan.dataset_pattern(_off(quick))
    assert not any(re.fullmatch(never, s) for s in ("synthetic", "", "x"))
    assert plan.model_pattern({"papers": []}) == never
    assert plan.run_results(quick, "results/quick") == [
        f"results/quick/mhsan/runs/synthetic/{m}/seed0/result.json" for m in ("r1", "r10")
    ]
    assert len(plan.run_results(paper, "r")) == 8
    assert plan.report_job(quick) == plan.report_params(quick["mhsan"])
    # the figure's dataset: the generated set (its split file made by the workflow), or the
    # user's first dataset (their files, nothing to make)
    split = "data/vse-synthetic/dataset_synthetic.json"
    assert plan.figure_inputs(quick) == [split] and plan.figure_split_file(quick) == split
    assert plan.figure_images(quick) == "data/vse-synthetic"
    paper["mhsan"]["datasets"]["coco"]["images"] = "/coco"
    assert plan.figure_inputs(paper) == [] and plan.figure_images(paper) == "/coco"
    assert plan.figure_split_file(paper) is None
    off = _off(quick)
    assert plan.run_results(off, "r") == [] and plan.report_job(off) == {}
    assert plan.figure_inputs(off) == [] and plan.figure_split_file(off) is None
    assert plan.figure_images(off) is None
