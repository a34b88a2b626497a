"""The KD papers as registered papers (repro.core.papers' contract), what the rule files ask
the plan (inputs, flags, resources, patterns), and loading a trained model; no Snakemake."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch

from repro.core import ReproError
from repro.core.checkpoint import save_checkpoint
from repro.core.papers import package_file, registry
from repro.distill import plan
from repro.distill.models import build_model, load_trained
from repro.distill.registry import paper

POOL = {
    "seeds": [0, 1],
    "teacher_seed": 2,
    "recipes": {"cifar": {"epochs": 240}, "fair": {"extends": "cifar"}},
    "vanilla_recipes": {"default": "cifar"},
    "variants": {
        "kd": {"method": "kd"},
        "energy_kd": {"method": "kd", "args": {"temperature": {"policy": "energy"}}},
        "cskd_cswt": {"method": "cskd", "args": {"temperature": {"policy": "cswt"}}},
        "r2kd": {"method": "r2kd"},
    },
    "pretrained_teachers": {"imagenet": {"resnet34_imagenet": None}},
    "init_weights": {"cub200": {"resnet18_imagenet": "/w/r18.pth", "resnet34_imagenet": None}},
    "resources": {"default": {"mem_mb": 3000}, "cifar100": {"gpu": 1, "runtime": 60}},
}
TABLE = {"dataset": "cifar100", "recipe": "cifar", "pairs": ["vgg13-vgg8"]}
CONFIG = {
    "papers": ["r2kd", "burst-sr", "energy-kd", "cskd"],
    "kd": POOL,
    "energy_kd": {"tables": [{**TABLE, "variants": ["kd", "energy_kd"]},
                             {"dataset": "imagenet", "recipe": "cifar", "seeds": [0],
                              "pairs": ["resnet34_imagenet-resnet18_imagenet"],
                              "variants": ["kd"]}]},
    "cskd": {"tables": [{**TABLE, "variants": ["kd", "cskd_cswt"]}]},
    "r2kd": {"tables": [{**TABLE, "dataset": "cub200",
                         "pairs": ["resnet34_imagenet-resnet18_imagenet"],
                         "variants": ["kd", "r2kd"]}]},
    "kd_leaderboard": {"dataset": "tinyimagenet", "recipe": "fair", "pairs": ["vgg13-vgg8"],
                       "variants": ["kd", "energy_kd"], "seeds": [0]},
}  # fmt: skip


def test_the_registered_papers_are_the_paper_modules_and_keep_the_contract():
    """The pyproject's entry points name exactly the modules papers/<section>.py (the file
    names are the registry), and each plan has every part of the contract."""
    eps = {ep.name: ep.value for ep in entry_points(group="repro.papers")}
    distill = {name: value for name, value in eps.items() if value.startswith("repro.distill.")}
    assert distill == {
        name: f"repro.distill.papers.{section}:PAPER" for name, section in plan.PAPERS.items()
    }
    assert set(plan.PAPERS) == {"energy-kd", "cskd", "r2kd"}
    for name in plan.PAPERS:
        assert registry()[name] is paper(name) and paper(name).name == name
        schemas = paper(name).SCHEMAS
        own = {"kd": "kd", "kd_leaderboard": "kd_leaderboard", plan.PAPERS[name]: "kd_paper"}
        assert schemas == {
            section: package_file("repro.distill", f"schemas/{file}.schema.yaml")
            for section, file in own.items()
        }
    with pytest.raises(KeyError, match="unknown KD paper 'energy_kd'"):
        paper("energy_kd")


def test_each_papers_check_gives_the_pools_problems_and_its_own_tables():
    variants = {**POOL["variants"], "dkd": {"method": "dkdd"}}
    bad = {
        **CONFIG,
        "kd": {**POOL, "variants": variants},
        "cskd": {"tables": [{**TABLE, "variants": ["cskd"]}]},
        "r2kd": {"tables": [{**TABLE, "pairs": ["vgg13_vgg8"], "variants": ["r2kd"]}]},
    }
    pool_line = (
        "kd.variants.dkd.method: unknown method 'dkdd' (registered: ce, cskd, dkd, heda, kd, r2kd)"
    )
    assert paper("energy-kd").check(bad) == [pool_line]
    assert paper("cskd").check(bad) == [
        pool_line,
        "cskd.tables.0.variants: no variant 'cskd' in kd.variants",
    ]
    assert paper("r2kd").check(bad) == [
        pool_line,
        "r2kd.tables.0.pairs: pair 'vgg13_vgg8' is not 'teacher-student'",
    ]
    lines = [line for name in ("energy-kd", "cskd", "r2kd") for line in paper(name).check(bad)]
    assert list(dict.fromkeys(lines)) == plan.check(bad, ["energy-kd", "cskd", "r2kd"])
    no_pool = {k: v for k, v in CONFIG.items() if k != "kd"}
    missing = "kd: missing (the KD papers r2kd, energy-kd, cskd need the run pool)"
    assert {line for name in plan.PAPERS for line in paper(name).check(no_pool)} == {missing}
    assert all(paper(name).check(CONFIG) == [] for name in plan.PAPERS)


def test_preflight_names_the_unset_weights_of_the_planned_runs_only():
    teacher = (
        "config key kd.pretrained_teachers.imagenet.resnet34_imagenet is not set (path to the "
        "teacher's torchvision state_dict file; nothing is downloaded)"
    )
    init = (
        "config key kd.init_weights.cub200.resnet34_imagenet is not set (path to the model's "
        "ImageNet-pretrained torchvision state_dict file; nothing is downloaded)"
    )
    assert plan.preflight(CONFIG, None) == [teacher, init]  # the run's KD papers
    energy, cskd, r2kd = paper("energy-kd"), paper("cskd"), paper("r2kd")
    assert (energy.preflight(CONFIG, None), r2kd.preflight(CONFIG, None)) == ([teacher], [init])
    assert cskd.preflight(CONFIG, None) == []  # its tables and the leaderboard: files set
    imagenet_kd = {"dataset": "imagenet", "teacher": "resnet34_imagenet",
                   "student": "resnet18_imagenet"}  # fmt: skip
    assert energy.preflight(CONFIG, [("train_kd", imagenet_kd)]) == [teacher]
    assert r2kd.preflight(CONFIG, [("train_kd", imagenet_kd)]) == []  # not its run
    cub_kd = [("train_kd_group", {**imagenet_kd, "dataset": "cub200"})]
    assert r2kd.preflight(CONFIG, cub_kd) == []  # the student's file is set
    cub_alone = [("train_vanilla", {"dataset": "cub200", "model": "resnet34_imagenet"})]
    assert r2kd.preflight(CONFIG, cub_alone) == [init]  # the teacher's is not
    assert energy.preflight(CONFIG, cub_alone) == []
    assert energy.preflight(CONFIG, [("burst_sr_train", {"dataset": "imagenet"})]) == []
    # a run the leaderboard shares is every KD paper's
    board = {**CONFIG, "kd_leaderboard": {**CONFIG["kd_leaderboard"], "dataset": "imagenet",
             "pairs": ["resnet34_imagenet-resnet18_imagenet"]}}  # fmt: skip
    assert all(paper(name).preflight(board, None)[:1] == [teacher] for name in plan.PAPERS)


def test_datasets_targets_and_resources_of_a_paper():
    energy = paper("energy-kd")
    assert energy.datasets(CONFIG) == {"cifar100", "imagenet", "tinyimagenet"}
    assert paper("r2kd").datasets(CONFIG) == {"cub200", "tinyimagenet"}
    assert paper("r2kd").datasets({**CONFIG, "kd_leaderboard": None}) == {"cub200"}
    board = [f"res/kd-leaderboard/{f}" for f in ("summary.csv", "ranks.csv", "summary.md",
             "summary.html", "figures/paired_differences.png", "provenance.json")]  # fmt: skip
    assert energy.targets(CONFIG, "res") == [
        "res/energy-kd/summary.csv", "res/energy-kd/summary.html", "res/energy-kd/summary.md",
        "res/energy-kd/runs.csv", "res/energy-kd/provenance.json",
        "res/energy-kd/figures/accuracy.png", "res/energy-kd/figures/energy_histogram.png",
        "res/energy-kd/figures/energy_vs_confidence.png", *board,
    ]  # fmt: skip
    r2kd = paper("r2kd").targets({**CONFIG, "kd_leaderboard": None}, "res")
    assert r2kd[-2:] == ["res/r2kd/figures/accuracy.png", "res/r2kd/figures/pruning.png"]
    assert energy.resources(CONFIG, "train") == {
        "threads": 1, "mem_mb": 3000, "runtime": 30, "gpu": 0,
    }  # fmt: skip
    assert plan.train_resources(CONFIG, "cifar100") == {
        "threads": 1, "mem_mb": 3000, "runtime": 60, "gpu": 1,
    }  # fmt: skip
    assert energy.resources(CONFIG, "report") == {"threads": 1, "mem_mb": 4000, "runtime": 20}
    with pytest.raises(KeyError, match="no step 'fit'"):
        energy.resources(CONFIG, "fit")


def test_every_figure_of_a_scorecard_has_a_caption_label_and_report_entry():
    """Each output the Snakemake report shows names a caption file that exists, the paper's
    title as its category and a label; the per-paper figures come from the paper modules."""
    assert plan.report_figures(CONFIG, "energy-kd") == [
        "accuracy", "energy_histogram", "energy_vs_confidence",
    ]  # fmt: skip
    assert plan.report_figures(CONFIG, "cskd") == ["accuracy", "cswt_temperature"]
    assert plan.report_figures(CONFIG, "r2kd") == ["accuracy", "pruning"]
    no_policy = {**CONFIG, "cskd": {"tables": [{**TABLE, "variants": ["kd"]}]}}
    assert plan.report_figures(no_policy, "cskd") == ["accuracy"]
    for name, section in plan.PAPERS.items():
        outputs = plan.report_outputs(CONFIG, "res", name)
        shown = {key: spec for key, (_, spec) in outputs.items() if spec}
        assert set(shown) == {"html", *plan.report_figures(CONFIG, name)}
        for key, spec in shown.items():
            assert spec["category"] == plan.title(name)
            file = f"{section}_{'summary' if key == 'html' else key}.rst"
            assert spec["caption"] == str(package_file("repro.distill", f"captions/{file}"))
            assert spec["labels"]["figure"]
    assert plan.title("energy-kd") == "Energy KD"
    for _, spec in plan.leaderboard_outputs("res").values():
        assert spec is None or Path(spec["caption"]).is_file()


def test_what_the_rules_ask_for_a_teacher_initial_weights_and_patterns():
    trained = {"dataset": "cifar100", "teacher": "vgg13", "student": "vgg8"}
    assert plan.teacher_input(CONFIG, "res", trained) == [
        "res/vanilla/cifar100/vgg13/seed2/model.pt"
    ]
    assert plan.teacher_arg(CONFIG, "res", trained) == (
        "--teacher res/vanilla/cifar100/vgg13/seed2/model.pt"
    )
    pretrained = {"dataset": "imagenet", "teacher": "resnet34_imagenet"}
    assert plan.teacher_input(CONFIG, "res", pretrained) == []  # unset: the pre-flight says so
    assert plan.teacher_arg(CONFIG, "res", pretrained) == ""  # its file is in the params
    set_pool = {**POOL, "pretrained_teachers": {"imagenet": {"resnet34_imagenet": "/w/r34.pth"}}}
    assert plan.teacher_input({**CONFIG, "kd": set_pool}, "res", pretrained) == ["/w/r34.pth"]
    scored = {"dataset": "imagenet", "model": "resnet34_imagenet"}
    assert plan.pretrained_input({**CONFIG, "kd": set_pool}, scored) == ["/w/r34.pth"]
    assert plan.pretrained_input(CONFIG, scored) == []
    assert plan.init_input(CONFIG, "cub200", "resnet18_imagenet") == ["/w/r18.pth"]
    assert plan.init_input(CONFIG, "cub200", "resnet34_imagenet") == []
    assert plan.init_input(CONFIG, "cifar100", "vgg8") == []
    assert plan.variant_pattern(CONFIG) == "kd|energy_kd|cskd_cswt|r2kd"
    assert plan.recipe_pattern({"kd": {}}) == plan.NEVER
    cell = plan.cell_of({"dataset": "d", "teacher": "t", "student": "s", "variant": "v",
                         "recipe": "r", "seed": "3"})  # fmt: skip
    assert cell == plan.Cell("d", "t", "s", "v", "r", 3)


def test_report_and_figure_inputs_wait_for_the_group_that_writes_a_cell():
    config = {**CONFIG, "kd": {**POOL, "lockstep": True}}
    groups = plan.run_groups(config)
    assert plan.run_groups(CONFIG) == {}  # kd.lockstep off
    row = [g for g in groups if (g.dataset, g.pair, g.seed) == ("cifar100", "vgg13-vgg8", 0)]
    assert len(row) == 1 and len(groups[row[0]]) == 3  # kd, energy_kd, cskd_cswt
    marker = plan.group_file("res", row[0])
    cskd = plan.figure_inputs(config, "res", "cskd", groups)
    assert cskd == ["res/vanilla/cifar100/vgg13/seed2/model.pt", "data/cifar100/meta.json", marker]
    assert plan.figure_inputs(CONFIG, "res", "cskd", {})[-1] == (
        "res/kd/cifar100/cifar/cskd_cswt/vgg13-vgg8/seed0/model.pt"
    )
    assert plan.figure_inputs(config, "res", "r2kd", groups) == []
    runs = plan.report_inputs(config, "res", "cskd", groups)
    assert marker in runs and not any("/kd/cifar100/" in r and "seed0" in r for r in runs)
    wildcards = {"dataset": "cifar100", "teacher": "vgg13", "student": "vgg8", "seed": "0",
                 "key": row[0].key}  # fmt: skip
    assert plan.group_runtime(config, groups, wildcards) == 60 * 3
    # the leaderboard's alias recipe reads the cifar runs; its one row is one group
    alone = plan.leaderboard_inputs(CONFIG, "res", {})
    assert alone == [
        f"res/kd/tinyimagenet/cifar/{v}/vgg13-vgg8/seed0/result.json" for v in ("kd", "energy_kd")
    ]
    (tiny,) = [g for g in groups if g.dataset == "tinyimagenet"]
    assert plan.leaderboard_inputs(config, "res", groups) == [plan.group_file("res", tiny)]
    assert plan.leaderboard_inputs({**config, "papers": ["burst-sr"]}, "res", groups) == []


def test_load_trained_gives_back_the_trainers_model(tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet8", 10, 1).eval()
    save_checkpoint(tmp_path / "model.pt", {"model": model.state_dict()})
    again = load_trained("resnet8", tmp_path / "model.pt", 10, 1).eval()
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(again(x)[0], model(x)[0])
    with pytest.raises(ReproError, match="weights do not fit model 'resnet14'"):
        load_trained("resnet14", tmp_path / "model.pt", 10, 1)


def test_a_scorecard_of_an_unknown_paper_is_a_one_line_error(tmp_path):
    from repro.distill.report import kd_report

    params = {"paper": "energy_kd", "tables": [], "teacher_seed": 0, "pretrained": []}
    with pytest.raises(ReproError, match="paper: unknown KD paper 'energy_kd'"):
        kd_report(params, tmp_path, tmp_path / "reported.yaml", tmp_path / "out")
