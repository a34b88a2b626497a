"""The workflow side of MHSAN: the plan's per-job params, the schema that lists every parameter
key, and the scorecard job on a tiny synthetic run."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from repro.vse import plan
from repro.vse.cli import main

ROOT = Path(__file__).resolve().parents[3]
SECTION = {
    "dataset": "synthetic",
    "synthetic": {"train": 6, "val": 2, "test": 3, "image_size": 32, "seed": 1},
    "train": {
        "model": {"backbone": "small", "small_channels": 8, "dim": 12, "embed_dim": 10,
                  "attn_hidden": 6, "word_dim": 5, "rnn_layers": 1},
        "stages": [{"epochs": 1, "lr": 1e-3, "train": ["image_proj", "text"]}],
        "batch_size": 8, "preprocess_train": {"kind": "none"},
        "preprocess_eval": {"kind": "none"}, "workers": 1,
    },
    "models": {"r1": {"model": {"heads": 1}}, "r2": {"model": {"heads": 2}},
               "r2_nodiv": {"model": {"heads": 2}, "loss": {"weight": 0.0}}},
    "seeds": [0, 1],
}  # fmt: skip


def test_run_params_merge_the_model_over_the_shared_recipe():
    p = plan.run_params(SECTION, "r2_nodiv", 1)
    assert p["model"]["heads"] == 2 and p["model"]["dim"] == 12
    assert p["loss"] == {"weight": 0.0} and p["seed"] == 1 and p["dataset"] == "synthetic"
    assert p["protocols"] == ["full"]
    assert SECTION["train"]["model"].get("heads") is None  # the config is not mutated
    assert plan.runs(SECTION) == [(m, s) for m in ("r1", "r2", "r2_nodiv") for s in (0, 1)]
    report = plan.report_params(SECTION)
    assert report["models"]["r2_nodiv"] == {"heads": 2, "diversity": False}
    assert report["figure_model"] == "r2"


def test_user_files_are_checked():
    coco = {**SECTION, "dataset": "coco", "split_file": "/nope/dataset_coco.json"}
    coco["train"] = {**SECTION["train"], "model": {**SECTION["train"]["model"],
                                                     "backbone": "resnet152"}}  # fmt: skip
    assert plan.check(coco) == [
        "mhsan.train.model.backbone_weights: not set (torchvision's ImageNet ResNet-152 "
        "state_dict, e.g. resnet152-394f9c45.pth; nothing is downloaded)",
        "mhsan.split_file: /nope/dataset_coco.json does not exist",
        "mhsan.images: not set (needed for dataset coco)",
    ]


def test_the_schema_lists_exactly_the_parameter_keys():
    from repro.vse.data import Preprocess, SyntheticConfig
    from repro.vse.models import ModelConfig
    from repro.vse.train import LossConfig, RunParams, Stage

    schema = yaml.safe_load((ROOT / "workflow/schemas/mhsan.schema.yaml").read_text())
    defs = schema["$defs"]

    def fields(cls):
        return {f.name for f in dataclasses.fields(cls)}

    assert set(defs["model"]["properties"]) == fields(ModelConfig)
    assert set(defs["loss"]["properties"]) == fields(LossConfig)
    assert set(defs["stage"]["properties"]) == fields(Stage)
    assert set(defs["preprocess"]["properties"]) == fields(Preprocess)
    assert set(defs["run"]["properties"]) == fields(RunParams) - {"dataset", "seed"}
    assert set(schema["properties"]["synthetic"]["properties"]) == fields(SyntheticConfig)


@pytest.mark.slow
def test_scorecard_on_a_tiny_run(tmp_path):
    data = tmp_path / "d"
    assert main(["make-synthetic", "--params", json.dumps(SECTION["synthetic"]),
                 "--out", str(data)]) == 0  # fmt: skip
    results = tmp_path / "results"
    for model, seed in plan.runs(SECTION):
        params = json.dumps(plan.run_params(SECTION, model, seed))
        out = plan.run_dir(str(results), model, seed)
        argv = ["train", "--params", params, "--split-file", str(data / "dataset_synthetic.json"),
                "--images", str(data), "--out", out]  # fmt: skip
        assert main(argv) == 0
    reported = tmp_path / "reported.yaml"
    reported.write_text(
        "rows:\n- {protocol: full, direction: i2t, heads: 1, diversity: true, r1: 50.0, "
        "source: fabricated for this test}\n"
    )
    params = json.dumps(plan.report_params(SECTION))
    argv = ["report", "--params", params, "--results", str(results), "--reported",
            str(reported), "--split-file", str(data / "dataset_synthetic.json"), "--images",
            str(data), "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    assert len(rows) == 3 * 2  # models x directions
    by = {(r["model"], r["direction"]): r for r in rows}
    ours = json.loads((results / "mhsan/runs/r1/seed0/result.json").read_text())
    other = json.loads((results / "mhsan/runs/r1/seed1/result.json").read_text())
    mean = (ours["metrics"]["full"]["i2t_r1"] + other["metrics"]["full"]["i2t_r1"]) / 2
    r1 = by[("r1", "i2t")]
    assert float(r1["r1_ours"]) == pytest.approx(mean) and r1["n"] == "2"
    assert float(r1["r1_reported"]) == 50.0 and r1["source"] == "fabricated for this test"
    assert float(r1["r1_diff"]) == pytest.approx(mean - 50.0)
    assert by[("r2_nodiv", "t2i")]["diversity"] == "no" and by[("r2", "t2i")]["r1_reported"] == ""
    assert r1["test_n"] == "3"
    for fig in ("attention.png", "recall_vs_heads.png"):
        assert (tmp_path / "out" / "figures" / fig).stat().st_size > 5000
