"""The workflow side of MHSAN: the plan's per-job params, the schema that lists every parameter
key, and the scorecard job on a tiny synthetic run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from repro.core.papers import reported_file
from repro.core.params import parse
from repro.vse import plan
from repro.vse.cli import main

ROOT = Path(__file__).resolve().parents[3]
SECTION = {
    "datasets": {"synthetic": {}},
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
    p = plan.run_params(SECTION, "synthetic", "r2_nodiv", 1)
    assert p["model"]["heads"] == 2 and p["model"]["dim"] == 12
    assert p["loss"] == {"weight": 0.0} and p["seed"] == 1 and p["dataset"] == "synthetic"
    assert p["protocols"] == ["full"] and "test_images" not in p
    assert SECTION["train"]["model"].get("heads") is None  # the config is not mutated
    assert plan.runs(SECTION) == [
        ("synthetic", m, s) for m in ("r1", "r2", "r2_nodiv") for s in (0, 1)
    ]
    report = plan.report_params(SECTION)
    assert report["datasets"]["synthetic"]["models"]["r2_nodiv"] == {
        "heads": 2,
        "diversity": False,
    }
    assert report["figure"] == {"dataset": "synthetic", "model": "r2"}
    assert plan.run_dir("results/quick", "synthetic", "r1", 0) == (
        "results/quick/mhsan/runs/synthetic/r1/seed0"
    )


def _paper_section() -> dict:
    return yaml.safe_load((ROOT / "config/paper.yaml").read_text())["mhsan"]


def test_the_paper_section_plans_both_datasets_with_their_own_settings():
    section = _paper_section()
    assert plan.train_datasets(section) == ["coco", "f30k"]
    models = ["r1", "r5", "r10", "r10_nodiv"]
    assert plan.runs(section) == [(d, m, 0) for d in ("coco", "f30k") for m in models]
    coco = plan.run_params(section, "coco", "r10", 0)
    f30k = plan.run_params(section, "f30k", "r10", 0)
    assert coco["dataset"] == "coco" and coco["protocols"] == ["coco_1k", "coco_5k"]
    assert f30k["dataset"] == "f30k" and f30k["protocols"] == ["f30k_1k"]
    # the paper's 10-head Flickr30K model has a bidirectional SRU; nothing else differs
    assert f30k["model"].pop("bidirectional") is True and "bidirectional" not in coco["model"]
    assert {k: v for k, v in f30k.items() if k not in ("dataset", "protocols")} == {
        k: v for k, v in coco.items() if k not in ("dataset", "protocols")
    }
    assert "bidirectional" not in plan.run_params(section, "f30k", "r5", 0)["model"]
    report = plan.report_params(section)
    assert {d: r["protocols"] for d, r in report["datasets"].items()} == {
        "coco": ["coco_1k", "coco_5k"],
        "f30k": ["f30k_1k"],
    }
    assert report["figure"] == {"dataset": "coco", "model": "r10"}


def test_dataset_overrides_merge_in_order():
    section = {
        **SECTION,
        "datasets": {
            "synthetic": {
                "train": {"batch_size": 4, "model": {"dim": 16}},
                "models": {"r2": {"model": {"heads": 3}, "batch_size": 2}},
            }
        },
    }
    p = plan.run_params(section, "synthetic", "r2", 0)
    assert p["batch_size"] == 2 and p["model"]["heads"] == 3 and p["model"]["dim"] == 16
    assert p["model"]["embed_dim"] == 10  # the rest of train.model stays
    assert plan.run_params(section, "synthetic", "r1", 0)["batch_size"] == 4
    assert plan.report_params(section)["datasets"]["synthetic"]["models"]["r2"]["heads"] == 3


def test_test_images_reaches_only_the_training_params():
    section = {**_paper_section(), "test_images": 10}
    for dataset, model, seed in plan.runs(section):
        assert plan.run_params(section, dataset, model, seed)["test_images"] == 10
    assert plan.report_params(section)["test_images"] == 10
    assert "test_images" not in plan.report_params(_paper_section())
    assert not [p for p in plan.section_problems(section) if "test_images" in p]
    problems = plan.section_problems({**section, "test_images": 12})
    assert [p for p in problems if "test_images" in p] == [
        "mhsan.test_images: 12 is not a multiple of 5 (protocol coco_1k of "
        "mhsan.datasets.coco averages 5 equal folds)"
    ]


def test_user_files_are_checked():
    resnet = {**SECTION["train"]["model"], "backbone": "resnet152"}
    section = {
        **SECTION,
        "train": {**SECTION["train"], "model": resnet},
        "datasets": {
            "coco": {"split_file": "/nope/dataset_coco.json", "images": None},
            "f30k": {},
        },
    }
    assert plan.user_file_problems(section) == [
        "mhsan.train.model.backbone_weights: not set (torchvision's ImageNet ResNet-152 "
        "state_dict, e.g. resnet152-394f9c45.pth; nothing is downloaded)",
        "mhsan.datasets.coco.split_file: /nope/dataset_coco.json does not exist",
        "mhsan.datasets.coco.images: not set (the image root folder of coco)",
        "mhsan.datasets.f30k.split_file: not set (the Karpathy split JSON of f30k, e.g. "
        "dataset_flickr30k.json)",
        "mhsan.datasets.f30k.images: not set (the image root folder of f30k)",
    ]
    section["datasets"]["f30k"] = {"models": {"r3": {"model": {"heads": 3}}}}
    assert plan.section_problems(section) == [
        "mhsan.datasets.f30k.models.r3: no such model in mhsan.models (r1, r2, r2_nodiv)"
    ]
    section["datasets"]["f30k"] = {"train": {"protocols": ["coco_5k"]}}
    assert "mhsan.datasets.f30k: protocol coco_5k is not one of f30k's (full, f30k_1k)" in (
        plan.section_problems(section)
    )
    weights = {"backbone_weights": "/nope/r152.pth"}
    section["datasets"]["f30k"] = {"models": {"r1": {"model": weights}}}
    assert (
        "mhsan.datasets.f30k.models.r1.model.backbone_weights: /nope/r152.pth does not "
        "exist" in plan.user_file_problems(section)
    )


def _schema_keys(node: dict, defs: dict) -> dict | None:
    """The key tree of a schema node (``repro.core.params.keys``' shape): an object's
    properties, each an object's (or an array of objects') own tree, else None."""
    while "$ref" in node or node.get("type") == "array":
        node = defs[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node.get("items", {})
    if "properties" not in node:
        return None
    return {k: _schema_keys(v, defs) for k, v in node["properties"].items()}


def test_the_schema_lists_exactly_the_parameter_keys():
    """Every key of the section's ``train``/``models`` runs and of ``synthetic`` is a field
    of the dataclass the job parses its params into, nested ones included, and back."""
    from repro.core.params import keys
    from repro.vse.data import SyntheticConfig
    from repro.vse.train import SETTINGS, RunParams

    schema = yaml.safe_load(plan.SCHEMAS["mhsan"].read_text())
    defs = schema["$defs"]
    # dataset and seed come from the plan, test_images from the section's scale key, the
    # settings (device, threads, cache) from the section and its resources
    planned = {"dataset", "seed", "test_images", *SETTINGS}
    run = {k: v for k, v in keys(RunParams).items() if k not in planned}
    assert _schema_keys(defs["run"], defs) == run
    assert run["model"] and run["stages"] and run["loss"] and run["preprocess_eval"]
    assert {"test_images", "device", "cache", "resources"} <= set(schema["properties"])
    assert _schema_keys(schema["properties"]["synthetic"], defs) == keys(SyntheticConfig)
    assert set(schema["properties"]["datasets"]["properties"]) == set(plan.PROTOCOLS_OF)


@pytest.mark.parametrize("name", ["quick", "paper"])
def test_every_planned_job_parses_into_its_dataclass(name):
    """The params the plan gives each job (config/<name>.yaml) are what its CLI reads."""
    from repro.vse.report import ReportParams
    from repro.vse.train import RunParams

    config = yaml.safe_load((ROOT / f"config/{name}.yaml").read_text())
    for dataset, model, seed in plan.runs(config["mhsan"]):
        run = parse(RunParams, plan.train_params(config, dataset, model, seed), "params")
        assert (run.dataset, run.seed, run.device) == (dataset, seed, config["mhsan"]["device"])
        assert run.threads == config["mhsan"]["resources"]["threads"] and run.cache is True
    report = parse(ReportParams, plan.report_job(config), "params")
    assert list(report.datasets) == list(config["mhsan"]["datasets"])


@pytest.mark.slow
def test_scorecard_on_a_tiny_run(tmp_path):
    data = tmp_path / "d"
    assert main(["make-synthetic", "--params", json.dumps(SECTION["synthetic"]),
                 "--out", str(data)]) == 0  # fmt: skip
    results = tmp_path / "results"
    for dataset, model, seed in plan.runs(SECTION):
        params = json.dumps(plan.run_params(SECTION, dataset, model, seed))
        out = plan.run_dir(str(results), dataset, model, seed)
        argv = ["train", "--params", params, "--split-file", str(data / "dataset_synthetic.json"),
                "--images", str(data), "--out", out]  # fmt: skip
        assert main(argv) == 0
    reported = tmp_path / "reported.yaml"
    reported.write_text(
        "rows:\n- {dataset: synthetic, protocol: full, direction: i2t, heads: 1, diversity: true, "
        "r1: 50.0, "
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
    ours = json.loads((results / "mhsan/runs/synthetic/r1/seed0/result.json").read_text())
    other = json.loads((results / "mhsan/runs/synthetic/r1/seed1/result.json").read_text())
    mean = (ours["metrics"]["full"]["i2t_r1"] + other["metrics"]["full"]["i2t_r1"]) / 2
    r1 = by[("r1", "i2t")]
    assert float(r1["r1_ours"]) == pytest.approx(mean) and r1["n"] == "2"
    assert float(r1["r1_reported"]) == 50.0 and r1["source"] == "fabricated for this test"
    assert float(r1["r1_diff"]) == pytest.approx(mean - 50.0)
    assert by[("r2_nodiv", "t2i")]["diversity"] == "no" and by[("r2", "t2i")]["r1_reported"] == ""
    assert r1["test_n"] == "3"
    for fig in ("attention.png", "recall_vs_heads.png"):
        assert (tmp_path / "out" / "figures" / fig).stat().st_size > 5000


def _fabricated_result(dataset: str, heads: int, seed: int, protocols: list[str]) -> dict:
    """A result.json of one run: every recall a function of (dataset, heads, seed, protocol)."""
    base = {"coco": 10.0, "f30k": 30.0}[dataset] + heads + seed / 10
    metrics = {}
    for k, protocol in enumerate(protocols):
        m = {f"{d}_r{r}": base + k + r + (d == "t2i") for d in ("i2t", "t2i") for r in (1, 5, 10)}
        m |= {"i2t_medr": 1.0, "t2i_medr": 2.0}
        metrics[protocol] = m | {"rsum": sum(v for key, v in m.items() if "_r" in key)}
    return {"metrics": metrics, "test_n": {"images": 10, "captions": 50}}


def _fabricated_runs(section: dict, params: dict, results: Path) -> Path:
    """A fabricated result.json for every run the section plans, under ``results``."""
    for dataset, model, seed in plan.runs(section):
        heads = params["datasets"][dataset]["models"][model]["heads"]
        protocols = plan.run_params(section, dataset, model, seed)["protocols"]
        out = Path(plan.run_dir(str(results), dataset, model, seed))
        out.mkdir(parents=True)
        result = _fabricated_result(dataset, heads, seed, protocols)
        (out / "result.json").write_text(json.dumps(result))
    return results


def test_the_scorecard_has_a_table_per_dataset_and_protocol_with_that_datasets_numbers(
    tmp_path,
):
    from repro.vse.report import ReportParams, scorecard

    section = {**_paper_section(), "seeds": [0, 1], "test_images": 10}
    params = plan.report_params(section)
    results = _fabricated_runs(section, params, tmp_path / "results")
    scorecard(parse(ReportParams, params), results, reported_file("mhsan"), tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    tables = list(dict.fromkeys(r["table"] for r in rows))
    assert tables == [
        "MS-COCO 1K test (mean over 5 folds) (coco)",
        "MS-COCO 5K test (coco)",
        "Flickr30K 1K test (f30k)",
    ]
    reported = yaml.safe_load(reported_file("mhsan").read_text())["rows"]
    for table, (dataset, protocol) in zip(
        tables, [("coco", "coco_1k"), ("coco", "coco_5k"), ("f30k", "f30k_1k")], strict=True
    ):
        mine = [r for r in rows if r["table"] == table]
        assert {(r["dataset"], r["protocol"]) for r in mine} == {(dataset, protocol)}
        # every model of the dataset in both directions, and nothing else ours
        ran = {(r["model"], r["direction"]) for r in mine if r["model"]}
        assert ran == {(m, d) for m in ("r1", "r5", "r10", "r10_nodiv") for d in ("i2t", "t2i")}
        k = plan.PROTOCOLS_OF[dataset].index(protocol)
        for row in mine:
            if not row["model"]:
                continue
            # R@1 of the two seeds' runs of this dataset and protocol: base + heads + seed / 10
            # + protocol index + 1 (+ 1 for t2i), so a number of another dataset would show
            base = {"coco": 10, "f30k": 30}[dataset] + int(row["heads"])
            mean = base + 0.05 + k + 1 + (row["direction"] == "t2i")
            assert float(row["r1_ours"]) == pytest.approx(mean) and row["n"] == "2"
            assert row["test_n"] == "10"
        # the reported numbers are this dataset's and protocol's, each once
        published = {
            (r["direction"], r["heads"], "yes" if r["diversity"] else "no"): r
            for r in reported
            if r["dataset"] == dataset and r["protocol"] == protocol
        }
        shown = {
            (r["direction"], int(r["heads"]), r["diversity"]): r for r in mine if r["r1_reported"]
        }
        assert set(shown) == set(published)
        for key, row in shown.items():
            assert float(row["r1_reported"]) == published[key]["r1"]
            assert row["source"] == published[key]["source"]
        if protocol == "coco_5k":  # the paper reports 10 heads only: r1 and r5 have no number
            assert all(not r["r1_reported"] for r in mine if r["heads"] in ("1", "5"))
    # F30K's 10-head row is the paper's bi-SRU result, not COCO's
    f30k = next(r for r in rows if r["table"] == tables[2] and r["model"] == "r10"
                and r["direction"] == "i2t")  # fmt: skip
    assert float(f30k["r1_reported"]) == 69.6 and "bidirectional" in f30k["source"]
    md = (tmp_path / "out" / "summary.md").read_text()
    assert md.count("\n## ") == 3 + 1 and "mhsan.test_images" in md  # 3 tables, figures
    runs = list(csv.DictReader((tmp_path / "out" / "runs.csv").open()))
    assert len(runs) == (4 * 2 * 2 + 4 * 2 * 1) * 2  # models x directions x protocols x seeds


def test_only_trains_and_reports_a_subset_of_models_on_a_dataset(tmp_path):
    """``datasets.<d>.only``: that dataset's jobs and scorecard rows are those models; the
    published rows of the others stay, with an empty ours, not planned; a name that is no
    model is a one-line problem."""
    from repro.vse.report import ReportParams, scorecard

    section = _paper_section()
    section["datasets"]["coco"]["only"] = ["r1", "r10_nodiv"]
    section["datasets"]["f30k"]["only"] = ["r10"]
    assert plan.runs(section) == [("coco", "r1", 0), ("coco", "r10_nodiv", 0), ("f30k", "r10", 0)]
    params = plan.report_params(section)
    assert {d: list(r["models"]) for d, r in params["datasets"].items()} == {
        "coco": ["r1", "r10_nodiv"],
        "f30k": ["r10"],
    }
    results = _fabricated_runs(section, params, tmp_path / "results")
    scorecard(parse(ReportParams, params), results, reported_file("mhsan"), tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    ours = {(r["dataset"], r["model"]) for r in rows if r["model"]}
    assert ours == {("coco", "r1"), ("coco", "r10_nodiv"), ("f30k", "r10")}
    for r in rows:  # a row is planned exactly when we ran its model, and then it has n
        assert (r["planned"] == "True") == bool(r["model"]) == bool(r["n"]), r
    # COCO 1K's 10-head row with diversity is published but not run here: shown, not planned
    assert any(r["protocol"] == "coco_1k" and r["heads"] == "10" and r["diversity"] == "yes"
               and not r["model"] and r["r1_reported"] for r in rows)  # fmt: skip
    section["datasets"]["f30k"]["only"] = ["r11"]
    problems = [p for p in plan.section_problems(section) if "r11" in p]
    assert problems == [
        "mhsan.datasets.f30k.only: r11: no such model in mhsan.models (r1, r5, r10, r10_nodiv)"
    ]


def test_test_images_in_run_params_is_checked_and_a_wrong_test_split_stops_before_training(
    tmp_path,
):
    from repro.core import ReproError
    from repro.vse.train import RunParams, train_run

    base = plan.run_params(SECTION, "synthetic", "r1", 0)
    assert parse(RunParams, {**base, "test_images": 3}, "params").test_images == 3
    with pytest.raises(ReproError, match=r"params\.test_images: 12 test images cannot be split"):
        parse(RunParams, {**base, "protocols": ["coco_1k"], "test_images": 12}, "params")
    data = tmp_path / "d"
    assert main(["make-synthetic", "--params", json.dumps(SECTION["synthetic"]),
                 "--out", str(data)]) == 0  # fmt: skip
    split = data / "dataset_synthetic.json"
    with pytest.raises(ReproError, match=r"protocol f30k_1k needs 5 test images .*, got 3"):
        train_run({**base, "protocols": ["f30k_1k"], "test_images": 5}, split, data, tmp_path / "r")
    assert not (tmp_path / "r" / "metrics.csv").exists()  # no epoch was trained
