"""The KD run pool's plan (per-job params, cells, start-up checks) and the scorecard job."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from repro.distill import plan
from repro.distill.papers.energy_kd import teacher_energy_stats

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


# ---------------------------------------------------------------- CSKD, R2KD and the leaderboard

BOARD_POOL = {
    "seeds": [0],
    "recipes": {
        "cifar": {"epochs": 240, "lr": 0.05, "student_lr": {"ShuffleV1": 0.01}},
        "fair": {"extends": "cifar"},
        "fair_long": {"extends": "cifar", "epochs": 300},
    },
    "vanilla_recipes": {"default": "cifar"},
    "variants": {
        "kd": {"method": "kd"},
        "energy_kd": {
            "method": "kd",
            "args": {"temperature": {"policy": "energy"}},
            "train": {"cifar": {"epochs": 360}},
        },  # fmt: skip
        "r2kd_cutout": {"method": "r2kd", "args": {"augmentation": "cutout"}},
        "r2kd_noprune": {"method": "r2kd", "args": {"prune": False}},
        "cskd_cswt": {"method": "cskd", "args": {"temperature": {"policy": "cswt"}}},
    },
    "dataset_args": {"tinyimagenet": {"r2kd_cutout": {"cutout_size": 16}}},
    "pair_args": {"tinyimagenet": {"vgg13-vgg8": {"r2kd_cutout": {"aug_weight": 0.5}}}},
    "init_weights": {"cub200": {"resnet18_imagenet": "/w/r18.pth", "resnet34_imagenet": None}},
}


def test_an_alias_recipe_shares_the_runs_of_variants_without_overrides():
    assert plan.run_recipe(BOARD_POOL, "fair", "kd") == "cifar"
    assert plan.run_recipe(BOARD_POOL, "fair", "energy_kd") == "fair"  # 240, not 360 epochs
    assert plan.run_recipe(BOARD_POOL, "fair_long", "kd") == "fair_long"  # its own settings
    fair = plan.train_settings(BOARD_POOL, "fair", "ShuffleV1", 0, "kd")
    assert fair == plan.train_settings(BOARD_POOL, "cifar", "ShuffleV1", 0, "kd")
    config = {
        "kd": BOARD_POOL,
        "energy_kd": {"tables": [{"dataset": "cifar100", "recipe": "cifar",
                                  "pairs": ["vgg13-vgg8"], "variants": ["kd", "energy_kd"]}]},
        "kd_leaderboard": {"dataset": "cifar100", "recipe": "fair", "pairs": ["vgg13-vgg8"],
                           "variants": ["kd", "energy_kd", "cskd_cswt"], "seeds": [0, 1]},
    }  # fmt: skip
    cells = plan.pool_cells(config, ["energy-kd"])
    assert sorted((c.variant, c.recipe, c.seed) for c in cells) == [
        ("cskd_cswt", "cifar", 0), ("cskd_cswt", "cifar", 1), ("energy_kd", "cifar", 0),
        ("energy_kd", "fair", 0), ("energy_kd", "fair", 1), ("kd", "cifar", 0), ("kd", "cifar", 1),
    ]  # fmt: skip
    board = plan.leaderboard(config)
    assert board["baseline"] == "kd" and board["confidence"] == 0.95
    assert board["run_recipes"] == {"kd": "cifar", "cskd_cswt": "cifar"}
    runs = plan.leaderboard_runs("r", board)
    assert "r/kd/cifar100/cifar/kd/vgg13-vgg8/seed1/result.json" in runs
    assert "r/kd/cifar100/fair/energy_kd/vgg13-vgg8/seed1/result.json" in runs


def test_dataset_then_pair_arguments_and_initial_weights():
    args = plan.variant_args(BOARD_POOL, "r2kd_cutout", "tinyimagenet", "vgg13-vgg8")
    assert args == {"augmentation": "cutout", "cutout_size": 16, "aug_weight": 0.5}
    assert plan.variant_args(BOARD_POOL, "r2kd_cutout", "cifar100", "vgg13-vgg8") == {
        "augmentation": "cutout"
    }
    cell = plan.Cell("cub200", "resnet34_imagenet", "resnet18_imagenet", "kd", "cifar", 0)
    p = plan.kd_params(BOARD_POOL, cell)
    assert p["init_weights"] == "/w/r18.pth"
    assert p["init_weights_key"] == "kd.init_weights.cub200.resnet18_imagenet"
    alone = plan.vanilla_params(BOARD_POOL, "cub200", "resnet34_imagenet", 0)
    assert alone["init_weights"] is None  # configured but not set: the pre-flight names it
    assert "init_weights" not in plan.vanilla_params(BOARD_POOL, "cifar100", "vgg8", 0)
    assert plan.unset_init({"kd": BOARD_POOL}, [("cub200", "resnet34_imagenet"),
                                                 ("cub200", "resnet18_imagenet")]) == [
        "config key kd.init_weights.cub200.resnet34_imagenet is not set (path to the model's "
        "ImageNet-pretrained torchvision state_dict file; nothing is downloaded)"
    ]  # fmt: skip


def test_start_up_check_covers_dataset_args_and_the_leaderboard():
    config = {
        "kd": {**BOARD_POOL,
               "dataset_args": {"tinyimagenet": {"r2kd_cutout": {"cutout_sise": 16},
                                                 "nope": {}}}},
        "kd_leaderboard": {"dataset": "cifar100", "recipe": "fairr", "pairs": ["vgg13-vgg8"],
                           "variants": ["energy_kd", "cskd"], "seeds": [0, 1]},
    }  # fmt: skip
    problems = plan.check(config, ["energy-kd"])
    assert problems[0].startswith(
        "kd.dataset_args.tinyimagenet.r2kd_cutout.args.cutout_sise: 'r2kd' takes no argument"
    )
    assert problems[1:] == [
        "kd.dataset_args.tinyimagenet.nope: no variant 'nope'",
        "kd_leaderboard.recipe: no recipe 'fairr' in kd.recipes",
        "kd_leaderboard.variants: no variant 'cskd' in kd.variants",
        "kd_leaderboard.baseline: 'kd' is not one of its variants",
        "energy_kd.tables: 'energy-kd' is in papers but lists no tables",
    ]


def test_each_paper_lists_its_own_figures_and_the_run_they_draw_from():
    config = {
        "kd": BOARD_POOL,
        "cskd": {"tables": [{"dataset": "cifar100", "recipe": "fair", "pairs": ["vgg13-vgg8"],
                             "variants": ["kd", "cskd_cswt"], "reported_only": ["mlkd"]}]},
        "r2kd": {"tables": [{"dataset": "cifar100", "recipe": "cifar", "pairs": ["vgg13-vgg8"],
                             "variants": ["kd", "r2kd_noprune"]}]},
    }  # fmt: skip
    cskd = plan.report_params(config, "cskd")
    assert cskd["figures"] == ["accuracy", "cswt_temperature"]
    assert cskd["figure_cell"] == ["cifar100", "vgg13", "vgg8", "cskd_cswt", "cifar", 0]
    assert plan.report_params(config, "r2kd")["figures"] == ["accuracy", "pruning"]
    cells = plan.scorecard_cells(cskd["tables"][0])
    assert cells[-1] == {"dataset": "cifar100", "teacher": "vgg13", "student": "vgg8",
                         "variant": "mlkd", "note": plan.REPORTED_ONLY_NOTE,
                         "planned": False}  # fmt: skip
    assert not any(c.variant == "mlkd" for c in plan.paper_cells(config, "cskd"))


def _paper_config() -> dict:
    import yaml

    root = next(p for p in plan.__file__ and __import__("pathlib").Path(__file__).parents
                if (p / "config" / "paper.yaml").is_file())  # fmt: skip
    with open(root / "config" / "paper.yaml") as fh:
        return yaml.safe_load(fh), root


def test_the_paper_config_lists_every_cell_of_the_reference_tables():
    """Every published number (reported/<paper>.yaml of repro.distill) is a declared scorecard
    cell, and
    the runs are the reference tables' cells: R2KD 10 CIFAR-100 pairs x 6 + 5 Tiny-ImageNet
    pairs x 7 + 2 ImageNet pairs x 3 + 4 fine-grained sets x 5, plus our pruning ablation (3
    new cells: its pruned variants are the CIFAR-100 table's); CSKD 10 pairs x 5; 5 seeds."""
    from repro.core.papers import reported_file
    from repro.core.scorecard import load_reported

    config, _ = _paper_config()
    assert plan.check(config, ["energy-kd", "cskd", "r2kd"]) == []
    assert len(plan.paper_cells(config, "r2kd")) == (10 * 6 + 5 * 7 + 2 * 3 + 4 * 5 + 3) * 5
    assert len(plan.paper_cells(config, "cskd")) == 10 * 5 * 5
    for paper in ("energy-kd", "cskd", "r2kd"):
        declared = {
            (c["dataset"], c["teacher"], c["student"], c["variant"])
            for t in plan.tables(config, paper)
            for c in plan.scorecard_cells(t)
        }
        reported = load_reported(reported_file(paper))
        shown = {(r["dataset"], r["teacher"], r["student"], r["variant"]) for r in reported}
        assert shown <= declared, (paper, sorted(shown - declared)[:3])
    assert len(load_reported(reported_file("r2kd"))) == (
        (10 * 2 - 2) + 10 * 6 + 5 + (5 * 2 - 2) + 5 * 7 + 4 + 2 * 4 + 4 * 8
    )  # teachers/students alone (shared models once), KD..+CutMixPick where published
    board = plan.leaderboard(config)
    assert len(board["pairs"]) == 10 and len(board["seeds"]) == 5
    shared = plan.pool_cells(config, ["energy-kd", "cskd", "r2kd"])
    only_board = set(plan.table_cells(board)) - set(
        c for p in ("energy-kd", "cskd", "r2kd") for c in plan.paper_cells(config, p)
    )
    assert {c.variant for c in only_board} == {"energy_kd", "energy_dkd", "cskd_lud", "kd_cswt"}
    assert len(shared) == 1170


@pytest.mark.slow  # draws the paper layout's figures (about 10 s each on a free core)
@pytest.mark.parametrize("paper", ["cskd", "r2kd"])
def test_paper_scorecard_renders_with_two_fabricated_cells(tmp_path, paper):
    """The paper layout (config/paper.yaml) with results for two cells only (a partial
    report): every table is laid out, the two cells carry ours, the published numbers carry
    their source, everything else is visibly empty, and every listed figure is drawn."""
    from repro.core.papers import reported_file
    from repro.distill.report import kd_report

    config, _ = _paper_config()
    params = plan.report_params(config, paper)
    two = [
        plan.Cell("cifar100", "resnet32x4", "resnet8x4", v, "cifar", 0)
        for v in (("cskd", "cskd_cswt") if paper == "cskd" else ("r2kd", "r2kd_noprune"))
    ]
    for cell, best in zip(two, (75.25, 74.5), strict=True):
        folder = tmp_path / "results" / plan.cell_dir("", cell).lstrip("/")
        folder.mkdir(parents=True)
        result = _result(cell.variant, 0, best, cell.teacher, cell.student)
        result.update(method=paper, args={"prune": False} if "noprune" in cell.variant else {})
        (folder / "result.json").write_text(json.dumps(result))
    reported = reported_file(paper)
    with pytest.raises(Exception, match="missing"):
        kd_report(params, tmp_path / "results", reported, tmp_path / "out")
    kd_report(params, tmp_path / "results", reported, tmp_path / "out", partial=True)
    md = (tmp_path / "out" / "summary.md").read_text()
    assert all(f"## {t['title']}" in md for t in params["tables"])
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    ours = [r for r in rows if r["top1_ours"]]
    # R2KD's r2kd cell is a row of the CIFAR-100 table and of the pruning ablation
    want = [74.5, 75.25] if paper == "cskd" else [74.5, 75.25, 75.25]
    assert sorted(float(r["top1_ours"]) for r in ours) == want
    mlkd = next(r for r in rows if r["variant"] == "mlkd" and r["student"] == "resnet8x4")
    assert float(mlkd["top1_reported"]) == 77.08 and mlkd["top1_ours"] == ""
    assert mlkd["note"] == plan.REPORTED_ONLY_NOTE and "040cbf3" in mlkd["source"]
    if paper == "cskd":
        cskd_rows = [r for r in rows if r["variant"].startswith("cskd")]
        assert len(cskd_rows) == 30 and not any(r["top1_reported"] for r in cskd_rows)
        assert "| cifar100 | resnet32x4 | resnet8x4 | cskd | — | 75.25 |" in md
    else:
        r2kd = next(r for r in rows if r["variant"] == "r2kd" and r["student"] == "resnet8x4"
                    and r["table"] == "CIFAR-100")  # fmt: skip
        assert (float(r2kd["top1_reported"]), float(r2kd["top1_ours"])) == (77.01, 75.25)
        assert float(r2kd["top1_diff"]) == pytest.approx(75.25 - 77.01)
    for name in params["figures"]:
        assert f"figures/{name}.png" in md
        assert (tmp_path / "out" / "figures" / f"{name}.png").stat().st_size > 3000, name


def test_group_params_factor_the_shared_settings_and_expand_to_each_cells_params():
    """A lockstep job's params are its cells' params with what they share factored out: for
    every group of the paper run, expanding gives each cell's own params exactly (so a cell
    resumed alone has the same fingerprint), and the factored form is far shorter."""
    config, _ = _paper_config()
    pool = config["kd"]
    groups = plan.lockstep_groups(pool, plan.pool_cells(config, ["energy-kd", "cskd", "r2kd"]))
    assert len(groups) > 100
    for cells in groups.values():
        params = plan.group_params(pool, cells)
        full = [plan.kd_params(pool, c) for c in cells]
        assert plan.expand_group(params) == full
        assert json.dumps(plan.expand_group(params), sort_keys=True) == json.dumps(
            full, sort_keys=True
        )
    biggest = max(groups.values(), key=len)
    factored = json.dumps(plan.group_params(pool, biggest), separators=(",", ":"))
    whole = json.dumps({"cells": [plan.kd_params(pool, c) for c in biggest]}, separators=(",", ":"))
    assert len(biggest) >= 16 and len(factored) < len(whole) / 2
    # a hand-made case: nested keys shared by some cells only stay with the cells
    a = {"train": {"lr": 0.1, "epochs": 240}, "args": {}, "method": "kd"}
    b = {"train": {"lr": 0.1, "epochs": 360}, "args": {"w": 1}, "method": "kd", "x": True}
    from repro.distill.plan.lockstep import _common, _without

    common = _common([a, b])
    assert common == {"train": {"lr": 0.1}, "method": "kd"}
    assert plan.expand_group(
        {"common": common, "cells": [_without(r, common) for r in (a, b)]}
    ) == [a, b]
    assert plan.expand_group({"cells": [a]}) == [a]


def test_a_kd_jobs_params_name_its_cell_and_so_its_run_folder():
    """A job that has only its params finds its run folder: the folder written out by hand
    for a cell of an aliased recipe and seed 3; a cell the params do not name is refused."""
    cell = plan.Cell("cifar100", "resnet32x4", "resnet8x4", "dkd", "cifar_long", 3)
    params = plan.kd_params(POOL, cell)
    assert plan.params_cell(params) == cell
    assert plan.cell_dir("results/paper", plan.params_cell(params)) == (
        "results/paper/kd/cifar100/cifar_long/dkd/resnet32x4-resnet8x4/seed3"
    )
    with pytest.raises(ValueError, match="no 'recipe'"):
        plan.params_cell({k: v for k, v in params.items() if k != "recipe"})
    with pytest.raises(ValueError, match="no 'train.seed'"):
        plan.params_cell({**params, "train": {"lr": 0.05}})
    with pytest.raises(ValueError, match="'train.seed' is '3', not an integer"):
        plan.params_cell({**params, "train": {"seed": "3"}})
    with pytest.raises(ValueError, match="no 'teacher'"):
        plan.params_cell({**params, "teacher": None})


def _train_group_cli(monkeypatch, *args: str) -> tuple[int, list[list[str]]]:
    """``repro-distill train-group ...`` with the training replaced by a recorder of the run
    folders it is given (each run's result: its params' variant)."""
    from repro.distill import cli, run

    calls = []

    def record(cells, data_dir, out_dirs, teacher_ckpt=None):
        calls.append(list(out_dirs))
        return [{"variant": c.variant} for c in cells]

    monkeypatch.setattr(run, "train_group", record)
    return cli.main(["train-group", "--data", "data/cifar100", *args]), calls


def test_train_group_derives_the_run_folders_the_workflow_names_for_every_paper_group(
    monkeypatch, tmp_path
):
    """The group job's command gives only the results folder; the folders the CLI derives
    from its params are, for every lockstep group of the paper run, the cells' folders the
    workflow reads (plan.cell_dir of each cell, as the rules name its files), in order; the
    marker lists them with their results."""
    config, _ = _paper_config()
    pool = config["kd"]
    groups = plan.lockstep_groups(pool, plan.pool_cells(config, ["energy-kd", "cskd", "r2kd"]))
    assert len(groups) > 100
    for group, cells in groups.items():
        params = json.dumps(plan.group_params(pool, cells))
        rc, calls = _train_group_cli(monkeypatch, "--results", "results/paper", "--params", params)
        assert rc == 0 and calls == [[plan.cell_dir("results/paper", c) for c in cells]], group
    cells = groups[max(groups, key=lambda g: len(groups[g]))]
    done = tmp_path / "group.json"
    params = json.dumps(plan.group_params(pool, cells))
    rc, _ = _train_group_cli(
        monkeypatch, "--results", "results/paper/", "--params", params, "--done", str(done)
    )
    assert rc == 0
    assert json.loads(done.read_text()) == {
        "runs": [{"out": plan.cell_dir("results/paper", c), "variant": c.variant} for c in cells]
    }


def test_train_group_refuses_params_that_do_not_name_a_cells_run_folder(monkeypatch, capsys):
    pool = POOL
    cells = [plan.Cell("cifar100", "resnet32x4", "resnet8x4", v, "cifar", 0) for v in ("kd", "dkd")]
    params = plan.group_params(pool, cells)
    assert params["cells"][1]["variant"] == "dkd"
    del params["cells"][1]["variant"]
    rc, calls = _train_group_cli(
        monkeypatch, "--results", "results/paper", "--params", json.dumps(params)
    )
    assert rc == 2 and calls == []
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: train-group: --params cell 1: no 'variant'"), err


def test_accuracy_figure_bars_are_the_noise_and_titles_state_n_and_the_test_set_size(tmp_path):
    """One image of 450 (0.22 points) must not read as a win: one run gets the 95 % Wilson
    interval of its accuracy on the test-set size, several runs the std over seeds, and each
    panel's title states n and the test-set size."""
    from scipy import stats

    from repro.distill.report import accuracy_figure

    def row(pair, variant, ours, n, std=None, test_n=450):
        teacher, student = pair
        return {"dataset": "cifar100", "teacher": teacher, "student": student,
                "variant": variant, "top1_ours": ours, "top1_std": std, "n": n,
                "test_n": test_n, "top1_reported": None}  # fmt: skip

    one, five = ("wrn_16_2", "resnet20"), ("vgg13", "vgg8")
    rows = [
        row(one, "kd", 100 * 360 / 450, 1), row(one, "cskd", 100 * 361 / 450, 1),
        row(five, "kd", 72.5, 5, std=0.61, test_n=10000),
        row(five, "dkd", 73.1, 5, std=0.34, test_n=10000),
    ]  # fmt: skip
    fig = accuracy_figure(rows, tmp_path / "accuracy.png")
    assert (tmp_path / "accuracy.png").stat().st_size > 5000
    ax_one, ax_five = fig.axes[:2]

    def bars(ax):  # (x_lo, x_hi) of every horizontal error bar, in plotting order
        return [
            (seg[0][0], seg[1][0]) for c in ax.containers for seg in c.lines[2][0].get_segments()
        ]

    want = [stats.binomtest(k, 450).proportion_ci(0.95, "wilson") for k in (360, 361)]
    np.testing.assert_allclose(
        bars(ax_one), [(100 * ci.low, 100 * ci.high) for ci in want], rtol=0, atol=1e-6
    )
    assert bars(ax_one)[0][1] > 100 * 361 / 450  # one image apart: the intervals overlap
    np.testing.assert_allclose(
        bars(ax_five), [(72.5 - 0.61, 72.5 + 0.61), (73.1 - 0.34, 73.1 + 0.34)], atol=1e-9
    )
    assert "n = 1 per method" in ax_one.get_title() and "450" in ax_one.get_title()
    assert "n = 5 per method" in ax_five.get_title() and "10000" in ax_five.get_title()


def test_overlapping_energy_bands_are_a_start_up_error_and_a_constructor_error():
    from repro.distill.temperature import as_policy

    bad = json.loads(json.dumps(CONFIG))
    bad["kd"]["variants"]["energy_kd"]["args"]["temperature"].update(r_low=0.6, r_high=0.4)
    assert plan.check(bad, ["energy-kd", "cskd"]) == [
        "kd.variants.energy_kd.args.temperature.r_low / r_high: r_low + r_high = 0.6 + 0.4 = 1 "
        ">= 1: the low- and high-energy bands overlap; their sum must be < 1"
    ]
    # the policy's default r_high (0.2) counts, and so does the variant's under an override
    only_low = json.loads(json.dumps(CONFIG))
    only_low["kd"]["variants"]["energy_kd"]["args"]["temperature"] = {
        "policy": "energy", "r_low": 0.85,
    }  # fmt: skip
    assert plan.check(only_low, ["energy-kd", "cskd"]) == [
        "kd.variants.energy_kd.args.temperature.r_low / r_high: r_low + r_high = 0.85 + 0.2 = "
        "1.05 >= 1: the low- and high-energy bands overlap; their sum must be < 1"
    ]
    config = {"kd": {**BOARD_POOL, "dataset_args": {
        "tinyimagenet": {"energy_kd": {"temperature": {"r_high": 0.9}}}}}}  # fmt: skip
    assert plan.check(config, ["energy-kd"])[0] == (
        "kd.dataset_args.tinyimagenet.energy_kd.args.temperature.r_low / r_high: r_low + "
        "r_high = 0.2 + 0.9 = 1.1 >= 1: the low- and high-energy bands overlap; their sum must "
        "be < 1"
    )
    for rates in ({"r_low": 0.6, "r_high": 0.4}, {"r_low": 0.85}):
        with pytest.raises(ValueError, match=r"^r_low \+ r_high = .* >= 1: the low- and high"):
            as_policy({"policy": "energy", **rates})
    assert as_policy({"policy": "energy", "r_low": 0.5, "r_high": 0.49}).split.r_high == 0.49
