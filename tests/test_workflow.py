"""The DAG itself: lint, dry runs of both configs, config errors, the quick data steps."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from snakerun import ROOT, Plan, dry_run, job_counts, snakemake

# Dry runs shared by several tests: one Snakemake start plans several targets, and each test
# reads what its target needs (Plan.needed: the jobs a dry run of that target alone plans).
QUICK_CELL = "results/quick/kd/digits/digits/kd/wrn_16_2-resnet20/seed0/result.json"
PAPER_KD_TABLES = [
    f"results/paper/{p}/summary.csv" for p in ("energy-kd", "cskd", "r2kd", "kd-leaderboard")
]


def _scratch(tmp_path_factory, name: str):
    workdir = tmp_path_factory.mktemp(name)
    shutil.copytree(ROOT / "config", workdir / "config")
    return workdir


@pytest.fixture(scope="module")
def quick_plan(tmp_path_factory) -> Plan:
    """The quick run's dry run: its default target (all) and one KD cell asked for alone."""
    return dry_run(_scratch(tmp_path_factory, "quick_plan"), "all", QUICK_CELL)[1]


#: --config values (nested ones merge onto quick.yaml) of one quick dry run that several tests
#: read, each the jobs of its own targets: a top-level seed; two KD seeds, one job per cell
#: (kd.lockstep off), one method's argument and 2 GPUs per training job; two burst-SR seeds on
#: one GPU; MHSAN's test-set size.
QUICK_OVERRIDES = [
    "seed=1",
    "kd={seeds: [0, 1], lockstep: false, variants: {dkd: {args: {warmup: 7}}}, "
    "resources: {digits: {gpu: 2, jobs_per_gpu: 2}}}",
    "burst_sr={seeds: [0, 1], gpus: 1}",
    "mhsan={test_images: 1000}",
]


@pytest.fixture(scope="module")
def quick_overrides(tmp_path_factory) -> Plan:
    """The quick dry run with QUICK_OVERRIDES, of the Energy KD, burst SR and MHSAN tables."""
    return dry_run(
        _scratch(tmp_path_factory, "quick_overrides"),
        "results/quick/energy-kd/summary.csv", "results/quick/burst-sr/summary.md",
        "results/quick/mhsan/summary.csv", "--config", *QUICK_OVERRIDES,
    )[1]  # fmt: skip


@pytest.fixture(scope="module")
def paper_cells(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Plan]:
    """The paper run's KD tables, one job per cell (kd.lockstep off), in one dry run."""
    return dry_run(
        _scratch(tmp_path_factory, "paper_cells"), *PAPER_KD_TABLES,
        "--configfile", "config/paper.yaml", "--config", "kd={lockstep: false}",
    )  # fmt: skip


def test_lint_is_clean():
    proc = snakemake("--lint", cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_quick_dry_run_plans_quick_datasets(quick_plan):
    jobs = quick_plan.needed("all").counts
    assert jobs["prepare_digits"] == 2 and jobs["prepare_photos"] == 1
    assert jobs["provenance"] == 1
    assert "fetch_archive" not in jobs and "index_imagenet" not in jobs


@pytest.fixture(scope="module")
def paper_dry_run(tmp_path_factory):
    """The paper run's dry run (the workflow profile prints each shell command)."""
    workdir = _scratch(tmp_path_factory, "paper")
    proc = snakemake("-n", "-p", "--cores", "1", "--configfile", "config/paper.yaml", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_paper_dry_run_plans_paper_datasets(paper_dry_run):
    proc = paper_dry_run
    jobs = job_counts(proc.stdout)
    # what a real run would stop on is listed, every problem on its own line
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert any("data.imagenet.root" in line for line in warned)
    assert any("data.zurich.archive" in line for line in warned)
    assert sum("kd.pretrained_teachers.imagenet" in line for line in warned) == 2
    assert jobs["fetch_archive"] == 3  # cifar100 + tinyimagenet + zurich, once each
    assert jobs["prepare_cifar100"] == 4  # full + LT 100/50/10
    assert jobs["prepare_tinyimagenet"] == 1 and jobs["index_imagenet"] == 1
    assert jobs["prepare_zurich"] == 1  # burst SR's source images
    assert jobs["evaluate_pretrained_teacher"] == 2  # the two ImageNet teachers (user files)
    assert "results/paper/provenance.json" in proc.stdout


def test_the_paper_dry_run_plans_mhsan_on_coco_and_flickr30k(paper_dry_run):
    """Every MHSAN table is planned: one training job per (dataset, model), each with its
    dataset's params and feature cache, and one scorecard over both datasets."""
    proc = paper_dry_run
    jobs = job_counts(proc.stdout)
    assert jobs["mhsan_train"] == 2 * 4 and jobs["mhsan_report"] == 1
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    for dataset in ("coco", "f30k"):
        for key in ("split_file", "images"):
            assert sum(f"mhsan.datasets.{dataset}.{key}: not set" in w for w in warned) == 1
        for model in ("r1", "r5", "r10", "r10_nodiv"):
            assert f"results/paper/mhsan/runs/{dataset}/{model}/seed0/result.json" in proc.stdout
    commands = [
        line.split("Shell command: ", 1)[1]
        for line in proc.stdout.splitlines()
        if "repro-vse train " in line
    ]
    assert len(commands) == 8
    for command in commands:
        params = json.loads(re.search(r"--params '([^']*)'", command)[1])
        dataset = params["dataset"]
        assert f"--cache results/paper/mhsan/cache/{dataset} " in command
        assert f"--out results/paper/mhsan/runs/{dataset}/" in command
        assert params["protocols"] == {"coco": ["coco_1k", "coco_5k"], "f30k": ["f30k_1k"]}[dataset]
        assert "test_images" not in params  # null: the official test-set sizes
        bidirectional = params["model"].get("bidirectional", False)
        assert bidirectional == (dataset == "f30k" and params["model"]["heads"] == 10
                                 and params.get("loss", {}).get("weight", 0.1) > 0)  # fmt: skip


def test_mhsan_test_images_reaches_only_the_training_jobs(workdir, quick_overrides):
    """The scale key changes the training jobs' params and the scorecard's note only."""
    planned = quick_overrides.needed("results/quick/mhsan/summary.csv")  # test_images: 1000
    commands = [
        json.loads(re.search(r"--params '([^']*)'", line)[1])
        for line in planned.text.splitlines()
        if "repro-vse train " in line or "repro-vse report " in line
    ]
    assert len(commands) == 3 and all(c["test_images"] == 1000 for c in commands)
    bad = snakemake(
        "-n", "--cores", "1", "results/quick/mhsan/summary.csv",
        "--config", "mhsan={test_images: 0}", cwd=workdir,
    )  # fmt: skip
    assert bad.returncode != 0 and "mhsan.test_images" in bad.stderr


def test_the_paper_runs_lockstep_commands_name_the_results_folder_not_each_run_folder(
    paper_dry_run,
):
    """A lockstep group job is told the results folder, not its cells' run folders (it derives
    them from its params): no printed train-group command lists a run folder, and the longest
    (a 19-cell CIFAR-100 row) is shorter by what listing them took (5535 characters with the
    folders, 4244 without)."""
    from repro.distill import plan

    commands = [
        line.split("Shell command: ", 1)[1]
        for line in paper_dry_run.stdout.splitlines()
        if "repro-distill train-group " in line
    ]
    assert len(commands) == job_counts(paper_dry_run.stdout)["train_kd_group"] == 120
    for command in commands:
        assert " --results results/paper " in command and " --out " not in command
        params = json.loads(re.search(r"--params '([^']*)'", command)[1])
        cells = [plan.params_cell(p) for p in plan.expand_group(params)]
        assert len(cells) > 1
        assert not any(plan.cell_dir("results/paper", c) in command for c in cells), command
        assert "results/paper/kd/" not in command
    longest = max(commands, key=len)
    assert len(plan.expand_group(json.loads(re.search(r"--params '([^']*)'", longest)[1]))) == 19
    assert len(longest) < 5000


def _quick_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "quick.yaml").read_text())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["data"]["digits"].update(test_fracton=0.2),
            "unknown key 'data.digits.test_fracton'",
        ),
        (lambda c: c.update(seed="zero"), "seed: 'zero' is not of type 'integer'"),
        (lambda c: c.update(papers=["energy-kb"]), "papers.0: 'energy-kb' is not one of"),
        (lambda c: c.update(dataset=["digits"]), "unknown key 'dataset'"),
        (
            lambda c: c["kd"]["recipes"]["digits"].update(epochs="20"),
            "kd.recipes.digits.epochs: '20' is not of type 'integer'",
        ),
        (
            lambda c: c["kd"]["variants"]["dkd"]["args"].update(warmpu=5),
            "kd.variants.dkd.args.warmpu: 'dkd' takes no argument 'warmpu' (it takes: "
            "ce_weight, alpha, beta, temperature, warmup)",
        ),
        (
            lambda c: c["kd"]["variants"]["energy_kd"]["args"]["temperature"].update(r_hihg=0.1),
            "kd.variants.energy_kd.args.temperature.r_hihg: policy 'energy' takes no argument",
        ),
        (lambda c: c.update(papers=["energy-kd", "ntire"]), "papers.1: 'ntire' is not one of"),
        (
            lambda c: c["burst_sr"]["models"]["dbsr_gtflow"].update(reported_as="DBSR"),
            "burst_sr.models.dbsr_gtflow.reported_as: align gt aligns with the ground-truth",
        ),
        (lambda c: c.pop("run"), "'run' is a required property"),
    ],
)
def test_bad_config_fails_with_one_line_naming_the_key(workdir, change, expected):
    cfg = _quick_config()
    change(cfg)
    (workdir / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake("-n", "--cores", "1", "--configfile", "bad.yaml", cwd=workdir)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stderr
    assert re.match(r"error: \S*bad\.yaml: ", errors[0])  # names the file it came from
    assert "Traceback" not in proc.stderr


def test_paper_run_without_imagenet_stops_before_any_job(workdir):
    proc = snakemake("--cores", "1", "--configfile", "config/paper.yaml", cwd=workdir)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert any("data.imagenet.root" in e and "image-net.org" in e for e in errors)
    assert any("data.cub200.root is not set" in e and "CUB_200_2011.tgz" in e for e in errors)
    # imagenet, zurich, the two unset pretrained teachers, MHSAN's five inputs, R2KD's four
    # fine-grained sets and their ImageNet-pretrained initial weights (2 models x 4 sets)
    keys = [
        "data.imagenet.root", "data.zurich.archive", "resnet34_imagenet", "resnet50_imagenet",
        "mhsan.train.model.backbone_weights", "mhsan.datasets.coco.split_file",
        "mhsan.datasets.coco.images", "mhsan.datasets.f30k.split_file",
        "mhsan.datasets.f30k.images",
        "data.cub200.root", "data.mit67.root", "data.stanford40.root", "data.dogs.root",
    ]  # fmt: skip
    assert len(errors) == len(keys) + 8 and all(any(k in e for e in errors) for k in keys), errors
    assert sum("kd.init_weights." in e for e in errors) == 8
    assert not (workdir / "data").exists()  # nothing fetched or prepared


def test_quick_dry_run_plans_every_energy_kd_job(quick_plan, quick_overrides):
    jobs = quick_plan.needed("results/quick/energy-kd/summary.csv").counts
    assert jobs["train_vanilla"] == 2  # the teacher and the student alone
    # kd, dkd, energy_kd, energy_dkd, heda: one row, one lockstep job (quick.yaml)
    assert jobs["train_kd_group"] == 1 and "train_kd" not in jobs
    assert jobs["report_energy_kd"] == 1
    alone = quick_overrides.needed("results/quick/energy-kd/summary.csv")  # kd.lockstep off
    assert alone.counts["train_kd"] == 5 * 2  # one job per cell (5 variants x 2 seeds)


def test_paper_dry_run_lists_the_energy_kd_tables(paper_cells):
    proc, plan = paper_cells  # targets before --configfile, which takes several values
    out = plan.needed("results/paper/energy-kd/summary.csv").text
    # config/paper.yaml replaces the quick config: none of quick's CPU settings leak in
    assert '"threads":1' not in proc.stdout and '"device":"cpu"' not in proc.stdout
    jobs = plan.needed("results/paper/energy-kd/summary.csv").counts
    # 10 CIFAR-100 pairs x 5 methods + 3 CIFAR-100-LT sets x 2 methods + 2 ImageNet pairs x 4
    # methods, 5 seeds each
    assert jobs["train_kd"] == (10 * 5 + 3 * 2 + 2 * 4) * 5
    assert "cifar100/cifar/energy_kd/resnet32x4-resnet8x4/seed4" in out
    assert "gpu=1" in out
    assert "imagenet/imagenet/energy_dkd/resnet34_imagenet-resnet18_imagenet/seed4" in out
    assert "imagenet/imagenet/dkd/resnet50_imagenet-mobilenetv1_imagenet/seed0" in out
    # ImageNet students alone are trained; the teachers are the user's pretrained files,
    # scored (not trained) so the summary has their rows
    assert "vanilla/imagenet/mobilenetv1_imagenet/seed4/model.pt" in out
    for teacher in ("resnet34_imagenet", "resnet50_imagenet"):
        assert f"vanilla/imagenet/{teacher}/seed" not in out
        assert f"vanilla/imagenet/{teacher}/pretrained/result.json" in out


def _paper_jobs(workdir, *targets: str, lockstep: bool = False) -> tuple[dict[str, int], str]:
    """Job counts of a paper dry run; by default one job per cell (kd.lockstep off)."""
    proc = snakemake("-n", "--cores", "1", *targets, "--configfile", "config/paper.yaml",
                     "--config", f"kd={{lockstep: {str(lockstep).lower()}}}",
                     cwd=workdir)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return job_counts(proc.stdout), proc.stdout


def test_paper_dry_run_lists_every_cell_of_the_r2kd_and_cskd_tables(paper_cells):
    """Every cell of the reference sheets' tables is one job, each teacher is trained once."""
    _, plan = paper_cells
    r2kd = plan.needed("results/paper/r2kd/summary.csv")
    jobs, out = r2kd.counts, r2kd.text
    # CIFAR-100: 10 pairs x (KD, DKD, R2KD, +MixUp, +CutMix, +CutMixPick); Tiny-ImageNet: 5 pairs
    # x (KD, DKD, +CutOut, +AutoAug, +MixUp, +CutMix, +CutMixPick); ImageNet: 2 pairs x (KD, DKD,
    # R2KD); 4 fine-grained sets x (KD, DKD, R2KD, +MixUp, +CutMix); our pruning ablation: 3
    # more; 5 seeds each
    assert jobs["train_kd"] == (10 * 6 + 5 * 7 + 2 * 3 + 4 * 5 + 3) * 5
    # teachers once (5 CIFAR-100, 3 Tiny-ImageNet, 4 fine-grained R34 fine-tuned), students
    # alone at every seed (8 CIFAR-100, 5 Tiny-ImageNet, 2 ImageNet, 4 fine-grained)
    assert jobs["train_vanilla"] == 5 + 3 + 4 + (8 + 5 + 2 + 4) * 5
    assert jobs["evaluate_pretrained_teacher"] == 2 and jobs["report_r2kd"] == 1
    assert out.count("rule train_vanilla:") == jobs["train_vanilla"]
    assert "vanilla/cub200/resnet34_imagenet/seed0/model.pt" in out
    assert "kd/tinyimagenet/tiny/r2kd_cutout/vgg13-vgg8/seed4" in out
    assert '"cutout_size":16' in out and '"autoaugment_policy":"imagenet"' in out
    assert "kd/dogs/fgvr/r2kd_cutmix/resnet34_imagenet-resnet18_imagenet/seed0" in out
    assert '"init_weights_key":"kd.init_weights.dogs.resnet18_imagenet"' in out
    cskd = plan.needed("results/paper/cskd/summary.csv")
    assert cskd.counts["train_kd"] == 10 * 5 * 5  # KD, DKD, CSKD, CSKD+CSWT, the lud code's CSKD
    assert '"epochs":480' in cskd.text and '"lr":0.025' in cskd.text  # the lud recipe (cskd_lud)
    # both papers together: the KD and DKD cells they share are planned once
    jobs = plan.needed("results/paper/r2kd/summary.csv", "results/paper/cskd/summary.csv").counts
    assert jobs["train_kd"] == (10 * 6 + 5 * 7 + 2 * 3 + 4 * 5 + 3 + 10 * 3) * 5


def test_the_leaderboard_shares_runs_and_plans_only_what_differs(paper_cells, quick_plan):
    _, plan = paper_cells
    board = plan.needed("results/paper/kd-leaderboard/summary.csv")
    jobs, out = board.counts, board.text
    assert jobs["train_kd"] == 10 * 13 * 5 and jobs["report_kd_leaderboard"] == 1
    assert "kd/cifar100/cifar/kd/resnet110-resnet32/seed0" in out  # KD: the CIFAR-100 runs
    assert "kd/cifar100/fair/energy_kd/resnet110-resnet32/seed0" in out  # 240, not 360 epochs
    everything = plan.needed(*PAPER_KD_TABLES[:3]).counts  # energy-kd, cskd, r2kd
    with_board = plan.needed(*PAPER_KD_TABLES).counts  # and the leaderboard
    # only energy_kd, energy_dkd and cskd_lud (own epochs/LR) and kd_cswt (in no table) are new
    assert with_board["train_kd"] - everything["train_kd"] == 4 * 10 * 5
    quick = quick_plan.needed("results/quick/kd-leaderboard/summary.csv").counts
    assert quick["train_kd_group"] == 2 * 3  # quick: 2 pairs x 3 seeds (rows)


@pytest.mark.parametrize(
    "target",
    [
        "results/paper/kd/imagenet/imagenet/kd/resnet34_imagenet-resnet18_imagenet/seed0",
        "results/paper/vanilla/imagenet/resnet34_imagenet/pretrained",  # scoring the teacher
    ],
)
def test_unset_pretrained_teacher_stops_before_any_job(workdir, target):
    data = workdir / "data" / "imagenet"
    data.mkdir(parents=True)
    for name in ("train.csv", "val.csv"):
        (data / name).write_text("path,label\n")
    (data / "meta.json").write_text(json.dumps({"name": "imagenet", "classes": ["n00000001"]}))
    proc = snakemake(
        "--cores", "1", f"{target}/result.json", "--configfile", "config/paper.yaml", cwd=workdir
    )  # fmt: skip
    assert proc.returncode != 0
    assert "kd.pretrained_teachers.imagenet.resnet34_imagenet is not set" in proc.stderr
    assert not (workdir / target).exists()  # no job started


def test_burst_sr_on_zurich_without_its_archive_stops_before_any_job(workdir):
    target = "results/paper/burst-sr/val/meta.json"
    proc = snakemake("--cores", "1", target, "--configfile", "config/paper.yaml", cwd=workdir)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "zurich: no archive is set" in errors[0]
    assert "data.zurich.archive" in errors[0]
    assert not (workdir / "data").exists()


def test_burst_sr_trains_and_evaluates_every_seed_in_its_own_folder(quick_overrides):
    """burst_sr.seeds: each learned model is trained and scored once per seed, in
    models/<model>/seed<k>/ and eval/<model>/seed<k>.json; the untrained baselines once."""
    planned = quick_overrides.needed("results/quick/burst-sr/summary.md")  # seeds [0, 1]
    jobs, out = planned.counts, planned.text
    assert jobs["burst_sr_train"] == 4 and jobs["burst_sr_evaluate"] == 2 + 4
    for model in ("single", "dbsr_gtflow"):
        for seed in (0, 1):
            assert f"results/quick/burst-sr/models/{model}/seed{seed}/model.pt" in out
            assert f"results/quick/burst-sr/eval/{model}/seed{seed}.json" in out
    assert "results/quick/burst-sr/eval/bicubic.json" in out
    assert "eval/bicubic/seed" not in out and "models/bicubic" not in out


@pytest.mark.slow
def test_two_burst_sr_seeds_keep_their_own_models_and_the_summary_averages_them(workdir):
    """A real (tiny) run with burst_sr.seeds [0, 1]: each seed's model in its own folder, the
    two trained differently, and each scorecard row's mean and std equal numpy's over the
    per-seed evaluation files. One trained model (the single-image one; the quick run trains
    the burst one) and the bicubic baseline, which has no seeds."""
    cfg = _quick_config()
    cfg["burst_sr"].update(
        seeds=[0, 1], val={"count": 2, "seed": 1234},
        models={k: v for k, v in cfg["burst_sr"]["models"].items() if k in ("bicubic", "single")},
    )  # fmt: skip
    cfg["burst_sr"]["train"].update(iterations=3, checkpoint_every=3, log_every=3)
    (workdir / "config" / "seeds.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(
        "--cores", "2", "--configfile", "config/seeds.yaml", "--",
        "results/quick/burst-sr/summary.csv", cwd=workdir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = workdir / "results/quick/burst-sr"
    for model in ("single",):
        runs = [json.loads((out / f"eval/{model}/seed{k}.json").read_text()) for k in (0, 1)]
        assert [r["seed"] for r in runs] == [0, 1]
        one, two = (out / f"models/{model}/seed{k}/model.pt" for k in (0, 1))
        assert one.read_bytes() != two.read_bytes()  # two trainings, neither overwritten
        rows = [
            r for r in csv.DictReader((out / "summary.csv").open())
            if r["model"] == model and r["track"] == "synthetic"
        ]  # fmt: skip
        assert len(rows) == 1 and rows[0]["n"] == "2"
        for metric in ("psnr", "ssim"):  # the CSV keeps 6 decimals
            values = [r[metric] for r in runs]
            assert float(rows[0][f"{metric}_ours"]) == pytest.approx(np.mean(values), abs=5e-7)
            assert float(rows[0][f"{metric}_std"]) == pytest.approx(
                np.std(values, ddof=1), abs=5e-7
            )
    bicubic = next(
        r for r in csv.DictReader((out / "summary.csv").open()) if r["model"] == "bicubic"
    )
    assert bicubic["n"] == "1" and bicubic["psnr_std"] == ""


def test_zurich_archive_is_prepared_and_its_hash_recorded(workdir):
    from repro.data.fake import make_zurich_zip  # the official layout, small

    jpegs = make_zurich_zip(workdir / "zurich.zip")
    cfg = yaml.safe_load((workdir / "config" / "paper.yaml").read_text())
    cfg["data"]["zurich"].update(archive=str(workdir / "zurich.zip"), check_counts=False)
    (workdir / "config" / "zurich.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(
        "--cores", "1", "data/zurich/meta.json", "--configfile", "config/zurich.yaml", cwd=workdir
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (workdir / "data/zurich/test/canon/1.jpg").read_bytes() == jpegs["test"][1]
    recorded = (workdir / "data/archives/zurich.archive.sha256").read_text()
    assert recorded.startswith("sha256:") and len(recorded.strip()) == 7 + 64


@pytest.mark.parametrize("weights", [None, "missing/pwc.pth"])
def test_pwcnet_alignment_without_its_weights_stops_before_any_job(workdir, weights):
    cfg = _quick_config()
    cfg["burst_sr"]["models"]["dbsr_pwc"] = {"kind": "burst", "align": "pwcnet"}
    cfg["burst_sr"]["pwcnet_weights"] = weights
    (workdir / "config" / "pwc.yaml").write_text(yaml.safe_dump(cfg))
    target = "results/quick/burst-sr/models/dbsr_pwc/seed0/model.pt"
    proc = snakemake("--cores", "1", target, "--configfile", "config/pwc.yaml", cwd=workdir)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    expected = "does not exist" if weights else "align=pwcnet needs burst_sr.pwcnet_weights"
    assert len(errors) == 1 and expected in errors[0] and "pwcnet_weights" in errors[0]
    assert not (workdir / "data").exists() and not (workdir / "results").exists()


def _replanned(workdir) -> Plan:
    """The jobs a dry run of the whole quick run (in ``workdir``) would rerun; ``.counts``
    leaves out the default target's own job (rule all)."""
    proc = snakemake("-n", "--cores", "1", cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return Plan([])
    plan = Plan.parse(proc.stdout)
    return Plan([job for job in plan.jobs if job.rule != "all"])


def test_an_edit_replans_exactly_the_jobs_it_changes(workdir, quick_plan, monkeypatch):
    """Each job gets only the parameters that determine its output: after the whole quick run
    is marked done (outputs created and their metadata recorded, nothing run), editing one
    published number, one model's settings or one method's argument replans only the jobs
    that depend on it. The published numbers are package data of the paper's package, so
    this test puts a copy of repro.distill's sources first on PYTHONPATH (the namespace
    package repro takes repro.distill from there) and edits the copy."""
    src = workdir / "distill-src"
    shutil.copytree(ROOT / "packages/distill/src", src, ignore=shutil.ignore_patterns("*.pyc"))
    monkeypatch.setenv("PYTHONPATH", str(src))
    outputs = [out for job in quick_plan.needed("all").jobs for out in job.outputs]
    assert len(outputs) > 40
    for name in outputs:
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text("")
    touched = snakemake("--touch", "--forceall", "--cores", "1", cwd=workdir)
    assert touched.returncode == 0, touched.stderr[-3000:]
    assert _replanned(workdir).counts == {}

    # 1. a published number (in the copy: so the copy is what the run reads): only the
    # scorecard that shows it
    reported = src / "repro/distill/reported/energy-kd.yaml"
    reported.write_text(reported.read_text().replace("top1: 73.33", "top1: 73.34"))
    assert _replanned(workdir).counts == {"report_energy_kd": 1}
    assert snakemake("--touch", "--cores", "1", cwd=workdir).returncode == 0

    quick = workdir / "config" / "quick.yaml"
    text = quick.read_text()
    # 2. one model's settings: its training, its evaluation, the summary (and the run's
    # provenance, which records the whole config)
    edited = text.replace(
        "    single: {kind: single, reported_as: SingleImage}",
        "    single: {kind: single, reported_as: SingleImage, train: {iterations: 300}}",
    )
    assert edited != text
    quick.write_text(edited)
    assert _replanned(workdir).counts == {
        "burst_sr_train": 1,
        "burst_sr_evaluate": 1,
        "burst_sr_summary": 1,
        "provenance": 1,
    }
    # 3. one method's argument: that variant's student and the Energy KD scorecard
    assert "  lockstep: true\n" in text  # quick.yaml's default: one job per row of cells
    edited = text.replace(
        "dkd: {method: dkd, args: {warmup: 5}}", "dkd: {method: dkd, args: {warmup: 6}}"
    )
    assert edited != text
    quick.write_text(edited)
    # the lockstep row that holds the tables' dkd cell (shared by the three KD papers; its
    # other cells resume finished) and the three scorecards that show it; the leaderboard
    # (no dkd) waits for the same row's job, so its table is rewritten too (a cheap report)
    replanned = _replanned(workdir)
    assert replanned.counts == {
        "train_kd_group": 1,
        "report_energy_kd": 1,
        "report_cskd": 1,
        "report_r2kd": 1,
        "report_kd_leaderboard": 1,
        "provenance": 1,
    }
    # asked for one scorecard, only the row's lockstep job and that scorecard (quick: one
    # pair, one seed)
    energy = replanned.needed("results/quick/energy-kd/summary.csv")
    assert energy.counts == {"train_kd_group": 1, "report_energy_kd": 1}
    # a relabelled model (its published row) replans only the summary
    edited = text.replace(
        "bilinear: {kind: bilinear}", "bilinear: {kind: bilinear, reported_as: Bilinear}"
    )
    quick.write_text(edited)
    assert _replanned(workdir).counts == {"burst_sr_summary": 1, "provenance": 1}
    # GPU counts decide how a job runs (its launcher prefix), not what it computes
    edited = text.replace(
        "default: {threads: 1, mem_mb: 2000, runtime: 30}",
        "default: {threads: 1, mem_mb: 2000, runtime: 30, gpu: 2, jobs_per_gpu: 2}",
    ).replace("  gpus: 0\n", "  gpus: 4\n")
    assert edited.count("gpu") == text.count("gpu") + 2 and "gpus: 4" in edited
    quick.write_text(edited)
    assert _replanned(workdir).counts == {"provenance": 1}


def test_a_teacher_two_tables_need_is_trained_once(workdir):
    cfg = _quick_config()
    table = cfg["energy_kd"]["tables"][0]
    cfg["energy_kd"]["tables"].append(
        {**table, "title": "other pair", "pairs": ["wrn_16_2-resnet8"]}
    )
    cfg["kd"]["lockstep"] = False  # count the cells' own jobs
    (workdir / "config" / "two.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(
        "-n", "--cores", "1", "results/quick/energy-kd/summary.csv",
        "--configfile", "config/two.yaml", cwd=workdir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = job_counts(proc.stdout)
    assert jobs["train_vanilla"] == 3  # the teacher once, each student alone once
    assert jobs["train_kd"] == 10
    assert proc.stdout.count("rule train_vanilla:") == 3


def test_config_overrides_merge_onto_the_file_in_use(workdir, quick_overrides):
    """`--config` (nested values too) applies on top of quick.yaml, or of a --configfile."""
    energy = quick_overrides.needed("results/quick/energy-kd/summary.csv")  # QUICK_OVERRIDES
    jobs = energy.counts
    assert jobs["train_kd"] == 10 and jobs["train_vanilla"] == 3  # 2 seeds; one teacher
    assert '"warmup":7' in energy.text
    paper = snakemake(
        "-n", "--cores", "1", "results/paper/energy-kd/summary.csv",
        "--configfile", "config/paper.yaml", "--config", "kd={seeds: [0], lockstep: false}",
        cwd=workdir,
    )  # fmt: skip
    assert paper.returncode == 0, paper.stderr[-2000:]
    assert job_counts(paper.stdout)["train_kd"] == 10 * 5 + 3 * 2 + 2 * 4  # one seed
    bad = snakemake("-n", "--cores", "1", "--config", "kd={seeds: 3}", cwd=workdir)
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: config/quick.yaml + --config: kd.seeds: 3 is not of type 'array'"]


def test_gpu_jobs_start_through_the_launcher(workdir, quick_plan, quick_overrides):
    """A GPU rule's command starts with the launcher its resources ask for (CPU jobs: none):
    N GPUs -> torchrun via `repro-core launch`, shares per GPU from the config, nodes and
    per-node GPUs from a profile's set-resources; evaluation jobs run one process."""
    cell = QUICK_CELL
    quick = quick_plan.needed(cell).text
    assert "repro-core launch" not in quick and "repro-distill train" in quick
    # QUICK_OVERRIDES: 2 GPUs (2 jobs per GPU) for digits training, 1 for burst SR
    out = quick_overrides.needed(cell, "results/quick/burst-sr/eval/single/seed0.json").text
    assert out.count("repro-core launch --gpus=2 --jobs-per-gpu=2 -- repro-distill train") == 2
    assert "repro-core launch --gpus=1 -- repro-burstsr train" in out
    assert "repro-core launch --gpus=1 --single -- repro-burstsr evaluate" in out
    nodes = snakemake(
        "-n", "-p", "--cores", "1", "--set-resources", "train_kd:nodes=2",
        "train_kd:gres='gpu:4'", "train_kd:gpu=0", "--", cell, cwd=workdir,
    )  # fmt: skip
    assert nodes.returncode == 0, nodes.stderr[-2000:]
    assert "repro-core launch --gpus=8 --nodes=2 -- repro-distill train" in nodes.stdout


def test_lockstep_groups_each_row_into_one_job_and_a_cell_target_trains_alone(
    workdir, paper_dry_run
):
    """kd.lockstep (on in paper.yaml): one job per (dataset, pair, seed) row of cells that
    share their batches, whatever their epochs; a cell asked for alone is its own job."""
    energy = Plan.parse(paper_dry_run.stdout).needed("results/paper/energy-kd/summary.csv")
    jobs, out = energy.counts, energy.text
    # rows: 10 CIFAR-100 pairs + 3 CIFAR-100-LT sets x 1 pair + 2 ImageNet pairs, 5 seeds each;
    # energy_kd's 360 epochs share a row with kd's 240
    assert jobs["train_kd_group"] == (10 + 3 + 2) * 5 and "train_kd" not in jobs
    group = re.search(
        r"rule train_kd_group:\n(?:.*\n)*?.*?output: (results/paper/kd-groups/cifar100/"
        r"resnet32x4-resnet8x4/seed0/[0-9a-f]{8}\.json)(?:.*\n)*?Shell command: (.*)",
        out,
    )
    assert group, out[:3000]
    command = group[2]
    assert " --results results/paper " in command and "results/paper/kd/" not in command
    params = json.loads(re.search(r"--params '([^']*)'", command)[1])
    variants = [p["variant"] for p in params["cells"]]
    assert {"kd", "dkd", "energy_kd", "energy_dkd", "heda"} <= set(variants)
    assert '"epochs":360' in command and '"epochs":240' in command
    cell = "results/paper/kd/cifar100/cifar/heda/resnet32x4-resnet8x4/seed0/result.json"
    jobs, out = _paper_jobs(workdir, cell, lockstep=True)
    assert jobs["train_kd"] == 1 and "train_kd_group" not in jobs


def test_a_run_in_another_folder_reads_the_reported_numbers_of_the_package(tmp_path):
    """`--directory` elsewhere (as the smoke run does: .ci/smoke.py): the scorecards' reported
    numbers come from the paper's package (reported/<paper>.yaml), not from the working
    folder (a relative path there failed with a missing input)."""
    from repro.core.papers import reported_file

    proc = snakemake(
        "-n", "--cores", "1", "results/paper/fmri-adv/summary.md", "results/paper/mhsan/summary.md",
        "--configfile", str(ROOT / "config" / "paper.yaml"), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert str(reported_file("fmri-adv")) in proc.stdout


@pytest.mark.parametrize("brain_data", ["simulated", "measured"])
def test_fmri_captions_say_whether_the_brain_data_are_simulated(brain_data):
    """The fMRI report captions name the data (the rule's brain_data param, from the plan:
    measured when fmri_adv.brain.bids_root is set), rendered as Snakemake renders captions;
    the white/black figure's axis is an effect size."""
    from types import SimpleNamespace

    from jinja2 import Environment

    from repro.core.papers import caption
    from repro.fmri import plan

    rule = (ROOT / "workflow/rules/fmri_adv.smk").read_text()
    assert "brain_data=lambda wildcards: fmriplan.brain_data(config)" in rule
    brain = {} if brain_data == "simulated" else {"bids_root": "/data/bids"}
    assert plan.brain_data({"fmri_adv": {"brain": brain}}) == brain_data
    env = Environment(trim_blocks=True, lstrip_blocks=True)  # snakemake.report's settings
    snakemake = SimpleNamespace(params=SimpleNamespace(brain_data=brain_data))
    other = "measured" if brain_data == "simulated" else "simulated"
    for name in ("fmri_summary", "fmri_wb", "fmri_roi_layer", "fmri_rdms"):
        source = Path(caption("fmri-adv", f"{name}.rst")).read_text()
        text = " ".join(env.from_string(source).render(snakemake=snakemake).split())
        assert f"{brain_data} fMRI data" in text or f"are {brain_data}" in text, name
        assert other not in text, name
    wb = Path(caption("fmri-adv", "fmri_wb.rst")).read_text()
    assert "effect size" in wb and "standard deviation" in wb
