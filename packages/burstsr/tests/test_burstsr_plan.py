"""The paper contract of repro.burstsr.plan and the rule file's wiring functions, on
hand-written configs and temporary files (no Snakemake)."""

from __future__ import annotations

import re

import pytest

from repro.burstsr import plan
from repro.core import ReproError
from repro.core.papers import registry, schema_file

MODELS = {
    "bicubic": {"kind": "bicubic"},
    "single": {"kind": "single"},
    "flow": {"kind": "flownet"},
    "dbsr": {"kind": "burst", "align": "flownet", "flownet": "flow"},
    "oracle": {"kind": "burst"},  # no align: ground-truth flow
}


def config(**section) -> dict:
    return {"burst_sr": {"models": MODELS, **section}}


def test_the_plan_is_registered_as_burst_sr():
    assert registry()["burst-sr"] is plan
    schemas = dict(plan.SCHEMAS)
    assert schemas == {"burst_sr": schema_file("repro.burstsr", "burst_sr")}


def test_config_problems_name_the_key():
    bad = {
        "o": {"kind": "burst", "align": "gt", "reported_as": "DBSR"},
        "d": {"kind": "burst", "align": "flownet", "flownet": "nothing"},
    }
    problems = plan.check({"burst_sr": {"models": bad, "burst": {"crop": 100, "downsample": 4}}})
    assert len(problems) == 3
    assert problems[0].startswith("burst_sr.models.o.reported_as: align gt aligns with")
    assert problems[1] == "burst_sr.models.d.flownet: no flownet model 'nothing'"
    assert problems[2] == "burst_sr.burst.crop: 100 is not a multiple of 2*downsample=8"
    assert plan.check(config(burst={"crop": 96})) == []


@pytest.mark.parametrize(
    ("data", "inputs", "names"),
    [
        ({}, ["data/photos/meta.json"], {"photos"}),
        ({"source": "zurich"}, ["data/zurich/meta.json"], {"zurich"}),
        ({"source": "zurich", "zurich_root": "/z"}, [], set()),  # the user's extracted copy
    ],
)
def test_source_images_and_datasets(data, inputs, names):
    assert plan.source_inputs({"burst_sr": {"data": data}}) == inputs
    assert plan.datasets(config(data=data)) == names


def test_real_track_folder_is_checked_only_when_a_real_job_is_planned(tmp_path):
    cfg = config(data={"burstsr_root": str(tmp_path)})
    message = (
        f"burst_sr.data.burstsr_root: {tmp_path}/val is not a folder "
        "(BurstSR val bursts expected, see docs/burst-sr.md)"
    )
    assert plan.preflight(cfg, None) == [message]
    assert plan.preflight(cfg, [("burst_sr_evaluate_real", {"run": "single/seed0"})]) == [message]
    assert plan.preflight(cfg, [("burst_sr_train", {"model": "single", "seed": "0"})]) == []
    (tmp_path / "val").mkdir()
    assert plan.preflight(cfg, None) == []


def test_lpips_weights_are_checked_when_an_evaluation_is_planned(tmp_path):
    cfg = config(lpips_weights=str(tmp_path / "alexnet.pth"))
    message = (
        f"burst_sr.lpips_weights: {tmp_path}/alexnet.pth does not exist (AlexNet state_dict file)"
    )
    assert plan.preflight(cfg, [("burst_sr_evaluate", {"run": "bicubic"})]) == [message]
    assert plan.preflight(cfg, [("burst_sr_summary", {})]) == []
    (tmp_path / "alexnet.pth").write_bytes(b"")
    assert plan.preflight(cfg, None) == []


def test_pwcnet_weights_are_needed_by_trainings_and_real_jobs(tmp_path):
    models = {
        **MODELS,
        "p1": {"kind": "burst", "align": "pwcnet"},
        "p2": {"kind": "burst", "align": "pwcnet"},
    }
    unset = {"burst_sr": {"models": models}}
    need = (
        "burst_sr.models.p1: align=pwcnet needs burst_sr.pwcnet_weights "
        "(pytorch-pwc's network-default weights; see docs/burst-sr.md)"
    )
    assert plan.preflight(unset, None) == [need]  # the first such model, once
    assert plan.preflight(unset, [("burst_sr_evaluate_real", {"run": "p1/seed0"})]) == [need]
    assert plan.preflight(unset, [("burst_sr_evaluate", {"run": "p1/seed0"})]) == []
    weights = tmp_path / "pwc.pth"
    missing = {"burst_sr": {"models": MODELS, "pwcnet_weights": str(weights)}}
    assert plan.preflight(missing, [("burst_sr_train", {})]) == [
        f"burst_sr.pwcnet_weights: {weights} does not exist (see docs/burst-sr.md)"
    ]
    weights.write_bytes(b"")
    assert plan.preflight(missing, None) == []
    assert plan.preflight(config(), None) == []  # no pwcnet model, no weights: fine


def test_targets_are_the_summary_jobs_files():
    assert plan.targets(config(), "results/r") == [
        "results/r/burst-sr/summary.csv",
        "results/r/burst-sr/summary.md",
        "results/r/burst-sr/summary.html",
        "results/r/burst-sr/figures/visual_comparison.png",
        "results/r/burst-sr/figures/psnr_vs_frames.png",
        "results/r/burst-sr/provenance.json",
    ]


def test_resources_per_step_and_threads_in_the_params():
    section = {"models": MODELS, "threads": 3, "mem_mb": 5000, "runtime": 90, "gpus": 2}
    cfg = {"burst_sr": section}
    assert plan.resources(cfg, "train") == {"threads": 3, "mem_mb": 5000, "runtime": 90, "gpu": 2}
    assert plan.resources(cfg, "evaluate") == {
        "threads": 3,
        "mem_mb": 5000,
        "runtime": 30,
        "gpu": 2,
    }
    assert plan.resources(cfg, "evaluate_real")["runtime"] == 60
    assert plan.resources(cfg, "make_val") == {"threads": 3, "mem_mb": 5000, "runtime": 30}
    assert plan.resources(cfg, "summary") == {"threads": 1, "mem_mb": 2000, "runtime": 10}
    assert plan.resources({"burst_sr": {}}, "train") == {
        "threads": 1, "mem_mb": 4000, "runtime": 60, "gpu": 0,
    }  # fmt: skip
    with pytest.raises(ReproError, match="burst-sr: no step 'fit'"):
        plan.resources(cfg, "fit")
    evals = {"boundary_ignore": 8, "example_index": 0}
    full = {"burst_sr": {**section, "burst": {}, "val": {}, "train": {}, "eval": evals}}
    assert plan.val_params(full)["threads"] == 3
    assert plan.train_params(full, "single", 0)["threads"] == 3
    assert plan.eval_params(full, "single", 0)["threads"] == 3
    assert plan.real_params(full, "single", 0)["threads"] == 3
    assert plan.summary_params(full, "r")["threads"] == 1
    assert "gpus" not in str(plan.train_params(full, "single", 0))  # how, not what


def _matches(constraint: str, name: str) -> bool:
    return re.fullmatch(constraint, name) is not None


def test_wildcard_constraints():
    cfg = config()
    trained = plan.model_constraint(cfg, *plan.TRAINED)
    assert [n for n in [*MODELS, "other"] if _matches(trained, n)] == [
        "single",
        "flow",
        "dbsr",
        "oracle",
    ]
    assert not _matches(plan.model_constraint(cfg, "bilinear"), "")  # none configured
    assert not _matches(plan.model_constraint(cfg, "bilinear"), "bilinear")
    runs = plan.run_constraint(cfg, ["bicubic", "single"])
    assert _matches(runs, "bicubic") and _matches(runs, "single/seed12")
    assert not _matches(runs, "single") and not _matches(runs, "bicubic/seed0")
    assert not _matches(plan.run_constraint(cfg, []), "bicubic")


def test_inputs_and_flags_of_the_rules():
    cfg = config()
    assert plan.checkpoint_inputs("results/r", "bicubic") == []
    assert plan.checkpoint_inputs("results/r", "single/seed2") == [
        "results/r/burst-sr/models/single/seed2/model.pt"
    ]
    assert plan.flownet_inputs(cfg, "results/r", "dbsr", 3) == [
        "results/r/burst-sr/models/flow/seed3/model.pt"
    ]
    assert plan.flownet_inputs(cfg, "results/r", "single", 3) == []
    assert plan.option("--checkpoint", []) == ""
    assert plan.option("--checkpoint", ["a.pt"]) == "--checkpoint a.pt"


def test_a_burst_model_without_align_is_an_oracle_not_run_on_real_bursts():
    cfg = config(data={"burstsr_root": "R"})
    assert plan.real_models(cfg) == ["bicubic", "single", "dbsr"]
    assert plan.method_label("oracle", MODELS["oracle"]) == "oracle (oracle: ground-truth flow)"
