"""The KD run pool's plan (per-job params, cells, start-up checks) and the scorecard job."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from repro.distill import plan
from repro.distill.report import teacher_energy_stats

POOL = {
    "seeds": [0, 1],
    "teacher_seed": 0,
    "recipes": {
        "cifar": {"epochs": 240, "lr": 0.05, "student_lr": {"ShuffleV1": 0.01}},
        "cifar_long": {"extends": "cifar", "epochs": 480},
        "imagenet": {"epochs": 100, "lr": 0.2, "lr_milestones": [30]},
    },
    "vanilla_recipes": {"default": "cifar", "imagenet": "imagenet"},
    "variants": {
        "kd": {"method": "kd"},
        "dkd": {"method": "dkd", "args": {"beta": 8.0, "warmup": 20}},
        "energy_kd": {
            "method": "kd",
            "args": {"temperature": {"policy": "energy", "direction": "code"}},
            "train": {"cifar": {"epochs": 360}},
        },
    },
    "pair_args": {
        "cifar100": {
            "vgg13-vgg8": {"dkd": {"beta": 6.0}, "energy_kd": {"temperature": {"r_low": 0.1}}}
        }
    },
    "pretrained_teachers": {"imagenet": {"resnet34_imagenet": "/w/r34.pth"}},
}
CONFIG = {
    "kd": POOL,
    "energy_kd": {
        "tables": [
            {
                "title": "CIFAR-100",
                "dataset": "cifar100",
                "recipe": "cifar",
                "pairs": ["vgg13-vgg8", "wrn_40_2-ShuffleV1"],
                "variants": ["kd", "dkd", "energy_kd"],
            },
            {
                "title": "ImageNet",
                "dataset": "imagenet",
                "recipe": "imagenet",
                "pairs": ["resnet34_imagenet-resnet18_imagenet"],
                "variants": ["kd", "energy_kd"],
                "seeds": [0],
            },
        ]
    },
    "cskd": {
        "tables": [
            {
                "dataset": "cifar100",
                "recipe": "cifar",
                "pairs": ["vgg13-vgg8"],
                "variants": ["kd"],
            }
        ]
    },
}


def test_kd_params_layer_recipe_variant_overrides_student_lr_and_pair_args():
    cell = plan.Cell("cifar100", "vgg13", "vgg8", "dkd", "cifar", 1)
    p = plan.kd_params(POOL, cell)
    assert p["args"] == {"beta": 6.0, "warmup": 20}  # the pair's argument wins
    assert p["train"] == {"epochs": 240, "lr": 0.05, "seed": 1}
    assert (p["method"], p["variant"], p["recipe"]) == ("dkd", "dkd", "cifar")
    e = plan.kd_params(
        POOL, plan.Cell("cifar100", "wrn_40_2", "ShuffleV1", "energy_kd", "cifar", 0)
    )
    assert e["train"] == {"epochs": 360, "lr": 0.01, "seed": 0}  # variant override, student LR
    assert e["args"] == {"temperature": {"policy": "energy", "direction": "code"}}
    deep = plan.kd_params(POOL, plan.Cell("cifar100", "vgg13", "vgg8", "energy_kd", "cifar", 0))
    assert deep["args"]["temperature"] == {"policy": "energy", "direction": "code", "r_low": 0.1}
    long = plan.train_settings(POOL, "cifar_long", "vgg8", 0, "energy_kd")
    assert long == {"epochs": 480, "lr": 0.05, "seed": 0}  # overrides are per recipe
    assert POOL["recipes"]["cifar"] == {
        "epochs": 240,
        "lr": 0.05,
        "student_lr": {"ShuffleV1": 0.01},
    }


def test_cells_are_shared_between_papers_and_teachers_planned_once():
    energy = plan.paper_cells(CONFIG, "energy-kd")
    assert len(energy) == 2 * 3 * 2 + 1 * 2 * 1
    cskd = plan.paper_cells(CONFIG, "cskd")
    assert set(cskd) <= set(energy)  # CSKD's KD cell is the Energy KD paper's
    pool = plan.pool_cells(CONFIG, ["energy-kd", "cskd", "burst-sr"])
    assert len(pool) == len(energy)
    vanilla = plan.paper_vanilla(CONFIG, "energy-kd") + plan.paper_vanilla(CONFIG, "cskd")
    assert vanilla.count(("cifar100", "vgg13", 0)) == 2 and len(set(vanilla)) == 2 + 2 * 2 + 2
    assert ("imagenet", "resnet34_imagenet", None) in vanilla  # pretrained: scored, not trained


def test_vanilla_and_pretrained_params():
    v = plan.vanilla_params(POOL, "cifar100", "ShuffleV1", 3)
    assert v["method"] == "ce" and v["teacher"] is None and v["train"]["lr"] == 0.01
    assert plan.vanilla_params(POOL, "imagenet", "ShuffleV1", 1)["train"]["lr"] == 0.2
    imagenet = plan.Cell(
        "imagenet", "resnet34_imagenet", "resnet18_imagenet", "energy_kd", "imagenet", 0
    )
    e = plan.kd_params(POOL, imagenet)
    assert e["train"] == {"epochs": 100, "lr": 0.2, "lr_milestones": [30], "seed": 0}
    assert e["teacher_weights"] == "/w/r34.pth"
    assert e["teacher_weights_key"] == "kd.pretrained_teachers.imagenet.resnet34_imagenet"
    ev = plan.pretrained_eval_params(POOL, "imagenet", "resnet34_imagenet")
    assert ev["teacher_weights"] == "/w/r34.pth" and ev["train"]["epochs"] == 100


def test_start_up_check_names_each_bad_key():
    assert plan.check(CONFIG, ["energy-kd", "cskd"]) == []
    bad = json.loads(json.dumps(CONFIG))
    bad["kd"]["variants"]["dkd"]["args"]["betta"] = 2
    bad["kd"]["variants"]["energy_kd"]["args"]["temperature"]["r_lo"] = 0.1
    bad["kd"]["variants"]["kd"]["method"] = "kdd"
    bad["energy_kd"]["tables"][0]["variants"].append("cswt")
    bad["energy_kd"]["tables"][1]["recipe"] = "imagenett"
    bad["cskd"]["tables"][0]["pairs"] = ["vgg13_vgg8"]
    problems = plan.check(bad, ["energy-kd", "cskd"])
    assert problems == [
        "kd.variants.kd.method: unknown method 'kdd' (registered: ce, cskd, dkd, heda, kd, r2kd)",
        "kd.variants.dkd.args.betta: 'dkd' takes no argument 'betta' (it takes: ce_weight, "
        "alpha, beta, temperature, warmup)",
        "kd.variants.energy_kd.args.temperature.r_lo: policy 'energy' takes no argument 'r_lo' "
        "(it takes: t_low, t_mid, t_high, r_low, r_high, energy_temperature, direction)",
        "energy_kd.tables.0.variants: no variant 'cswt' in kd.variants",
        "energy_kd.tables.1.recipe: no recipe 'imagenett' in kd.recipes",
        "cskd.tables.0.pairs: pair 'vgg13_vgg8' is not 'teacher-student'",
    ]
    assert all("\n" not in p for p in problems)


def test_scorecard_cells_declare_alone_rows_then_variants_and_runs_follow():
    params = plan.report_params(CONFIG, "energy-kd")
    first = plan.scorecard_cells(params["tables"][0])
    assert [(c["teacher"], c["student"], c["variant"]) for c in first[:4]] == [
        (None, "vgg13", "ce"),
        (None, "vgg8", "ce"),
        ("vgg13", "vgg8", "kd"),
        ("vgg13", "vgg8", "dkd"),
    ]
    assert len(first) == 2 * (2 + 3)
    runs = plan.report_runs("results/x", params)
    assert "results/x/kd/cifar100/cifar/dkd/vgg13-vgg8/seed1/result.json" in runs
    assert "results/x/vanilla/cifar100/vgg13/seed0/result.json" in runs  # teacher_seed only
    assert "results/x/vanilla/cifar100/vgg13/seed1/result.json" not in runs
    assert "results/x/vanilla/imagenet/resnet34_imagenet/pretrained/result.json" in runs
    assert len(runs) == len(set(runs)) == 12 + 2 + 2 * (1 + 2) + 2
    cell = plan.figure_cell(CONFIG, "energy-kd")
    assert cell == plan.Cell("cifar100", "vgg13", "vgg8", "energy_kd", "cifar", 0)


def test_teacher_energy_stats_match_numpy():
    from repro.distill.arraydata import ArrayData

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.randint(0, 256, (20, 1, 2, 2), dtype=torch.uint8)
    energy, conf = teacher_energy_stats(
        model, ArrayData(x, torch.zeros(20).long(), 3), [0.5], [0.25], temperature=4.0
    )
    z = model((x.float() / 255 - 0.5) / 0.25).detach().double().numpy()
    expected = -4.0 * np.log(np.exp(z / 4.0).sum(axis=1))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert np.allclose(energy, expected, atol=1e-5) and np.allclose(conf, p.max(1), atol=1e-6)


def _result(variant, seed, best, teacher="vgg13", student="vgg8"):
    return {
        "dataset": "cifar100", "teacher": teacher, "student": student, "variant": variant,
        "recipe": "cifar", "method": variant, "seed": seed, "best_top1": best,
        "final_top1": best - 1, "final_top5": 90.0, "best_epoch": 200, "epochs": 240,
        "test_n": 10000, "args": {}, "prepared": {},
    }  # fmt: skip


def test_report_lays_out_the_paper_table_with_reported_numbers(tmp_path):
    from repro.distill.report import kd_report

    table = {
        "title": "CIFAR-100", "dataset": "cifar100", "recipe": "cifar", "pairs": ["vgg13-vgg8"],
        "variants": ["kd", "dkd"], "seeds": [0, 1],
    }  # fmt: skip
    params = {"paper": "energy-kd", "title": "Energy KD", "tables": [table],
              "teacher_seed": 0, "pretrained": [], "figure": None}  # fmt: skip
    results = tmp_path / "results"
    runs = [
        (plan.Cell("cifar100", "vgg13", "vgg8", "kd", "cifar", 0), _result("kd", 0, 72.0)),
        (plan.Cell("cifar100", "vgg13", "vgg8", "kd", "cifar", 1), _result("kd", 1, 73.0)),
    ]
    for cell, result in runs:
        (results / plan.cell_dir("", cell).lstrip("/")).mkdir(parents=True)
        (results / plan.cell_dir("", cell).lstrip("/") / "result.json").write_text(
            json.dumps(result)
        )
    from repro.core import ReproError

    with pytest.raises(ReproError, match="dkd/vgg13-vgg8/seed0/result.json is missing"):
        kd_report(params, results, "unused.yaml", tmp_path / "out")
    table["variants"] = ["kd"]
    alone = [("vgg13", 0, 74.0, 100.0), ("vgg8", 0, 70.0, 70.0), ("vgg8", 1, 71.0, 71.0)]
    for model, seed, best, _ in alone:
        folder = results / "vanilla" / "cifar100" / model / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(_result("ce", seed, best, None, model)))
    reported = tmp_path / "reported.yaml"
    reported.write_text(
        "source: leaderboard\nrows:\n"
        "- {dataset: cifar100, teacher: vgg13, student: vgg8, variant: kd, top1: 72.98}\n"
        "- {dataset: cifar100, teacher: vgg13, student: vgg8, variant: dkd, top1: 74.68}\n"
    )
    kd_report(params, results, reported, tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    by = {(r["teacher"], r["student"], r["variant"]): r for r in rows}
    kd = by[("vgg13", "vgg8", "kd")]
    assert float(kd["top1_ours"]) == 72.5 and kd["n"] == "2" and kd["test_n"] == "10000"
    assert float(kd["top1_diff"]) == pytest.approx(72.5 - 72.98)
    assert float(kd["top1_std"]) == pytest.approx(2**0.5 / 2)
    assert ("vgg13", "vgg8", "dkd") not in by  # not a cell of this table
    assert float(by[("", "vgg13", "ce")]["top1_ours"]) == 74.0
    assert float(by[("", "vgg8", "ce")]["top1_ours"]) == 70.5
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "| cifar100 | vgg13 | vgg8 | kd | 72.98 | 72.50 | 0.71 | -0.48 | 2 | 10000 |" in md
    assert (tmp_path / "out" / "figures" / "accuracy.png").stat().st_size > 5000
    assert len((tmp_path / "out" / "runs.csv").read_text().splitlines()) == 1 + 5
