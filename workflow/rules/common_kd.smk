# Wiring of the KD run pool (config section `kd`) shared by the KD papers: each helper asks the
# plan (repro.distill.plan, torch-free), which holds the logic and its tests. The papers'
# checks, pre-flight, datasets and targets come from their registered plans (common.smk).
from repro.distill import plan as kdplan

POOL = config.get("kd", {})
#: The KD papers this run reproduces, the lockstep groups of their cells (kd.lockstep) and
#: the fair leaderboard (None without one).
KD_PAPERS = kdplan.run_papers(config)
KD_GROUPS = kdplan.run_groups(config)
LEADERBOARD = kdplan.run_leaderboard(config)


def kd_resource(name):
    """A training job's resource: kd.resources.<dataset> over kd.resources.default."""
    return lambda wildcards: kdplan.train_resources(config, wildcards.dataset)[name]


def kd_scaled(name):
    """A training job's mem_mb or runtime, grown with the attempt (see attempt_scaled)."""
    return lambda wildcards, attempt: kd_resource(name)(wildcards) * attempt


def kd_launch(wildcards, resources):
    """The launcher prefix of a KD training job (see launch_prefix); small jobs may share a
    GPU: kd.resources.<dataset>.jobs_per_gpu."""
    share = kdplan.jobs_per_gpu(config, wildcards.dataset)
    return launcher.prefix(resources, jobs_per_gpu=share)


def kd_cfg(wildcards):
    return as_json(kdplan.kd_params(POOL, kdplan.cell_of(wildcards)))


def vanilla_cfg(wildcards):
    w = wildcards
    return as_json(kdplan.vanilla_params(POOL, w.dataset, w.model, int(w.seed)))


def pretrained_cfg(wildcards):
    return as_json(kdplan.pretrained_eval_params(POOL, wildcards.dataset, wildcards.model))


def group_cfg(wildcards):
    return as_json(kdplan.group_params(POOL, kdplan.group_of(KD_GROUPS, wildcards)))


def group_runtime(wildcards, attempt):
    return kdplan.group_runtime(config, KD_GROUPS, wildcards) * attempt


def kd_teacher(wildcards):
    return kdplan.teacher_input(config, RESULTS, wildcards)


def kd_teacher_arg(wildcards):
    return kdplan.teacher_arg(config, RESULTS, wildcards)


def pretrained_input(wildcards):
    return kdplan.pretrained_input(config, wildcards)


def vanilla_init_input(wildcards):
    return kdplan.init_input(config, wildcards.dataset, wildcards.model)


def kd_init_input(wildcards):
    return kdplan.init_input(config, wildcards.dataset, wildcards.student)


def report_cfg_json(paper):
    return lambda wildcards: as_json(kdplan.report_params(config, paper))


def leaderboard_inputs(wildcards):
    return kdplan.leaderboard_inputs(config, RESULTS, KD_GROUPS)


def outputs(files):
    """A report rule's outputs (plan: name -> (path, report() keywords or None))."""
    return {name: report(path, **shown) if shown else path for name, (path, shown) in files.items()}


def record_grouped_cells(planned):
    """After a run: the cells its lockstep group jobs wrote are recorded as their own
    train_kd outputs (repro.core.workflow.record_outputs), so a cell asked for alone later
    has Snakemake's metadata."""
    cells = kdplan.grouped_cell_targets(RESULTS, KD_GROUPS, planned or [])
    record_outputs(workflow.main_snakefile, cells, "train_kd", _CONFIG_FILES, OVERRIDES)
