"""The smoke overlay (config/smoke.yaml) changes the paper run's scale and placement only."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

#: Config paths (dots; ``*`` one key or list index) the smoke overlay may change, and why each
#: is scale or placement. Anything else changed is a failure: the smoke run is the paper run.
SCALE_KEYS = {
    "run": "results folder name (results/smoke)",
    # seeds: how many repeats
    "kd.seeds": "seeds",
    "kd_leaderboard.seeds": "seeds",
    "mhsan.seeds": "seeds",
    "burst_sr.seeds": "seeds",
    # epochs, iterations, steps (and the LR milestones, which count epochs or iterations)
    "kd.recipes.*.epochs": "epochs",
    "kd.recipes.*.lr_milestones": "epochs at which the LR decays",
    "kd.variants.*.train.*.epochs": "epochs",
    "kd.variants.*.train.*.lr_milestones": "epochs at which the LR decays",
    "burst_sr.train.iterations": "iterations",
    "burst_sr.train.lr_step": "iterations between LR decays",
    "burst_sr.train.checkpoint_every": "iterations between checkpoints",
    "burst_sr.train.log_every": "iterations between log lines",
    "burst_sr.models.*.train.iterations": "iterations",
    "mhsan.train.stages.*.epochs": "epochs",
    "fmri_adv.stimuli.attack.steps": "attack steps",
    # data sizes
    "data.*.subset": "images per class, classes used (labels and outputs stay the full set's)",
    "fmri_adv.stimuli.per_class": "images per class",
    "burst_sr.val.count": "validation bursts",
    "mhsan.test_images": "test-set size the protocols expect",
    "fmri_adv.brain.simulate.n_subjects": "simulated subjects",
    "fmri_adv.brain.simulate.n_runs": "simulated runs",
    # batch sizes, permutation counts
    "kd.recipes.*.batch_size": "batch size",
    "kd.recipes.*.eval_batch_size": "batch size",
    "burst_sr.train.batch_size": "batch size",
    "mhsan.train.batch_size": "batch size",
    "fmri_adv.dnn.stats.n_permutations": "permutations",
    "fmri_adv.analysis.stats.n_permutations": "permutations",
    # placement: where a job runs and what it may use, never what it computes
    "kd.recipes.*.device": "device",
    "burst_sr.device": "device",
    "fmri_adv.device": "device",
    "mhsan.device": "device",
    "kd.recipes.*.workers": "data-loading processes",
    "mhsan.train.workers": "data-loading processes",
    "kd.resources.*": "job resources",
    "burst_sr.gpus": "job resources",
    "burst_sr.threads": "job resources",
    "burst_sr.mem_mb": "job resources",
    "burst_sr.runtime": "job resources",
    "fmri_adv.gpus": "job resources",
    "mhsan.resources": "job resources",
}


def changed_paths(before, after, prefix=""):
    """Dotted paths whose value differs (lists of equal length compared item by item)."""
    if isinstance(before, dict) and isinstance(after, dict):
        paths = []
        for key in sorted(set(before) | set(after), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in before or key not in after:
                paths.append(path)
            else:
                paths += changed_paths(before[key], after[key], path)
        return paths
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [p for i, (b, a) in enumerate(zip(before, after, strict=True))
                for p in changed_paths(b, a, f"{prefix}.{i}")]  # fmt: skip
    return [] if before == after else [prefix]


def allowed(path: str) -> bool:
    """A changed path is allowed when it is a scale key or lies under one."""
    parts = path.split(".")
    for pattern in SCALE_KEYS:
        n = len(pattern.split("."))
        if len(parts) >= n and fnmatch.fnmatchcase(".".join(parts[:n]), pattern):
            return True
    return False


def _smoke_script():
    """.ci/smoke.py, loaded by path (it is a script, not a package module)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("repro_smoke", ROOT / ".ci" / "smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


merge = _smoke_script().merge  # Snakemake's merge of several --configfile files


def load(name: str):
    return yaml.safe_load((ROOT / "config" / name).read_text())


def test_the_overlay_changes_only_scale_keys():
    paper = load("paper.yaml")
    changed = changed_paths(paper, merge(paper, load("smoke.yaml")))
    assert changed, "the overlay changes nothing"
    outside = [p for p in changed if not allowed(p)]
    assert not outside, f"config/smoke.yaml changes keys that are not scale keys: {outside}"


def test_the_checker_catches_a_non_scale_change():
    """The comparison itself: a changed LR, architecture list or protocol is caught, also
    inside a restated list."""
    paper = load("paper.yaml")
    overlay = load("smoke.yaml")
    overlay["mhsan"]["train"]["stages"][1]["lr"] = 0.001
    overlay["kd"]["recipes"]["cifar"]["momentum"] = 0.5
    overlay["mhsan"]["train"]["protocols"] = ["coco_5k"]
    bad = [p for p in changed_paths(paper, merge(paper, overlay)) if not allowed(p)]
    assert bad == ["kd.recipes.cifar.momentum", "mhsan.train.protocols",
                   "mhsan.train.stages.1.lr"]  # fmt: skip


def test_the_cpu_overlay_changes_only_gpu_requests():
    paper = load("paper.yaml")
    changed = changed_paths(paper, merge(paper, load("cpu.yaml")))
    assert changed and all(p.endswith((".gpu", ".gpus")) for p in changed), changed
    assert all(allowed(p) for p in changed)


def coverage(config) -> dict[str, set]:
    """What the paper plan exercises, from the KD planner: each paper's tables (by index),
    datasets, architectures (teachers, students, models trained alone), variants, recipes;
    from MHSAN's: its models, datasets and (dataset, protocol) tables."""
    from repro.distill import plan
    from repro.vse import plan as vseplan

    mhsan = config["mhsan"]
    tables = vseplan.report_params(mhsan)["datasets"]

    cells = plan.pool_cells(config, plan.PAPERS)
    alone = [m for p in plan.PAPERS for m in plan.paper_vanilla(config, p)]
    return {
        "tables": {
            (p, i)
            for p in plan.PAPERS
            for i, t in enumerate(plan.tables(config, p))
            if plan.table_cells(t)
        },  # fmt: skip
        "datasets": {c.dataset for c in cells},
        "architectures": {m for c in cells for m in (c.teacher, c.student)},
        "models trained alone": {m for _, m, _ in alone},
        "variants": {c.variant for c in cells},
        "recipes": {(c.dataset, c.recipe) for c in cells},
        "leaderboard variants": set(plan.leaderboard(config)["variants"]),
        "mhsan models": {m for _, m, _ in vseplan.runs(mhsan)},
        "mhsan datasets": {d for d, _, _ in vseplan.runs(mhsan)},
        "mhsan tables": {(d, p) for d, t in tables.items() for p in t["protocols"]},
    }


def test_the_covering_subset_covers_the_paper_plan():
    """CI's subset of the KD tables leaves out no table, dataset, architecture, variant or
    recipe of the paper plan, has fewer cells, and touches no other section."""
    from repro.distill import plan

    smoke = _smoke_script()
    full = smoke.smoke_config()
    overlay = smoke.cover(full, cost=len)  # any cost: coverage must not depend on it
    assert set(overlay) <= {"energy_kd", "cskd", "r2kd", "kd_leaderboard", "mhsan"}
    assert set(overlay["mhsan"]) == {"datasets"}  # only which models each dataset trains
    covered = smoke.merge(full, overlay)
    want, got = coverage(full), coverage(covered)
    for aspect, items in want.items():
        assert items <= got[aspect], f"{aspect} left out: {sorted(items - got[aspect])}"
    n_full = len(plan.pool_cells(full, plan.PAPERS))
    n_cover = len(plan.pool_cells(covered, plan.PAPERS))
    assert n_cover < n_full / 5, (n_cover, n_full)
    from repro.vse import plan as vseplan

    mhsan_full, mhsan_cover = (len(vseplan.runs(c["mhsan"])) for c in (full, covered))
    assert mhsan_cover == len(full["mhsan"]["models"]) < mhsan_full  # each model once
    assert plan.leaderboard(covered)["seeds"] == [0, 1]  # intervals need two seeds


def test_the_coverage_check_notices_a_dropped_variant():
    smoke = _smoke_script()
    full = smoke.smoke_config()
    overlay = smoke.cover(full, cost=len)
    overlay["kd_leaderboard"]["variants"] = ["kd"]
    assert "heda" in coverage(full)["variants"] - coverage(smoke.merge(full, overlay))["variants"]


def test_the_coverage_check_notices_a_model_or_dataset_mhsan_left_out():
    smoke = _smoke_script()
    full = smoke.smoke_config()
    overlay = smoke.cover(full, cost=len)
    only = overlay["mhsan"]["datasets"]
    dropped = only["coco"]["only"].pop()  # that model no longer trains anywhere
    got = coverage(smoke.merge(full, overlay))
    assert coverage(full)["mhsan models"] - got["mhsan models"] == {dropped}
    cfg = smoke.merge(full, overlay)
    del cfg["mhsan"]["datasets"]["f30k"]  # a paper dataset not run at all
    assert ("f30k", "f30k_1k") in coverage(full)["mhsan tables"] - coverage(cfg)["mhsan tables"]


def test_the_fakes_fit_the_smoke_config():
    """Fakes whose shape the run checks against the config (regression: the fMRI BIDS events
    named 40 sources per condition after the smoke overlay went to 2 per class)."""
    from repro.fmri import fake as fmri_fake
    from repro.vse import fake as vse_fake

    config = _smoke_script().smoke_config()
    stimuli = config["fmri_adv"]["stimuli"]
    assert list(fmri_fake.CLASSES) == stimuli["classes"]
    assert stimuli["per_class"] == fmri_fake.PER_CLASS
    tests = {vse_fake.COCO_SPLITS["test"], vse_fake.F30K_SPLITS["test"]}
    assert tests == {config["mhsan"]["test_images"]}
