# Helpers of the KD run pool (config section `kd`) shared by the KD papers: paths, per-job
# params and resources. The plan itself is repro.distill.plan (torch-free).
from repro.distill import plan as kdplan

POOL = config.get("kd", {})
KD_PAPERS = [p for p in PAPERS if p in kdplan.PAPERS]

_kd_problems = kdplan.check(config, KD_PAPERS)
if _kd_problems:
    sys.exit("\n".join(f"error: {_CONFIG_SOURCE}: {p}" for p in _kd_problems))


def kd_resource(name, default):
    """A per-dataset resource (kd.resources.<dataset>, else .default, else ``default``);
    `mem_mb` and `runtime` grow with the attempt (see attempt_scaled)."""
    if name in ("mem_mb", "runtime"):
        return lambda wildcards, attempt: (
            kdplan.resources(POOL, wildcards.dataset).get(name, default) * attempt
        )
    return lambda wildcards: kdplan.resources(POOL, wildcards.dataset).get(name, default)


def kd_launch(wildcards, resources):
    """The launcher prefix of a KD training job (see launch_prefix); small jobs may share a
    GPU: kd.resources.<dataset>.jobs_per_gpu."""
    share = kdplan.resources(POOL, wildcards.dataset).get("jobs_per_gpu", 1)
    return launcher.prefix(resources, jobs_per_gpu=share)


def kd_threads(wildcards):
    return kdplan.resources(POOL, wildcards.dataset).get("threads", 1)


def vanilla_file(dataset, model, seed, name=""):
    """A file (or with no name, the folder) of a model trained alone."""
    return os.path.join(kdplan.vanilla_dir(RESULTS, dataset, model, seed), name)


def cell_of(wildcards):
    w = wildcards
    return kdplan.Cell(w.dataset, w.teacher, w.student, w.variant, w.recipe, int(w.seed))


def kd_cfg(wildcards):
    return as_json(kdplan.kd_params(POOL, cell_of(wildcards)))


def vanilla_cfg(wildcards):
    w = wildcards
    return as_json(kdplan.vanilla_params(POOL, w.dataset, w.model, int(w.seed)))


def pretrained_cfg(wildcards):
    return as_json(kdplan.pretrained_eval_params(POOL, wildcards.dataset, wildcards.model))


def kd_teacher(wildcards):
    """The teacher's model.pt trained alone, or the user's pretrained file (none if unset:
    the pre-flight check stops the run naming the key)."""
    w = wildcards
    if kdplan.is_pretrained(POOL, w.dataset, w.teacher):
        path = kdplan.pretrained_weights(POOL, w.dataset, w.teacher)
        return [path] if path else []
    return vanilla_file(w.dataset, w.teacher, POOL.get("teacher_seed", 0), "model.pt")


def kd_teacher_arg(wildcards, input):
    """`--teacher model.pt` for trained teachers; pretrained ones come in the params JSON."""
    if kdplan.is_pretrained(POOL, wildcards.dataset, wildcards.teacher):
        return ""
    return f"--teacher {input.teacher}"


def pretrained_input(wildcards):
    path = kdplan.pretrained_weights(POOL, wildcards.dataset, wildcards.model)
    return [path] if path else []


def report_cfg(paper):
    """A KD paper's scorecard params: its tables, the teacher seed, the pretrained teachers."""
    return kdplan.report_params(config, paper)


def report_inputs(paper):
    """Every result.json a KD paper's scorecard reads (none when the paper is not run)."""
    if paper not in PAPERS:
        return []
    return kdplan.report_runs(RESULTS, report_cfg(paper))


def energy_figure_inputs(wildcards):
    """The teacher and dataset whose energies the Energy KD figures show (if any)."""
    cell = kdplan.energy_figure_cell(config) if "energy-kd" in PAPERS else None
    if cell is None:
        return []
    teacher = vanilla_file(cell.dataset, cell.teacher, POOL.get("teacher_seed", 0), "model.pt")
    return [teacher, f"data/{cell.dataset}/meta.json"]


def kd_datasets():
    """Datasets the KD papers' tables need."""
    return {t["dataset"] for p in KD_PAPERS for t in kdplan.tables(config, p)}


def kd_unset_teachers(planned):
    """Planned KD jobs whose pretrained teacher's weights file is not set (one line each)."""
    if planned is None:
        pairs = [
            (c.dataset, c.teacher) for p in KD_PAPERS for c in kdplan.paper_cells(config, p)
        ]
    else:
        pairs = [(w["dataset"], w["teacher"]) for r, w in planned if r == "train_kd"]
        pairs += [
            (w["dataset"], w["model"]) for r, w in planned if r == "evaluate_pretrained_teacher"
        ]
    return kdplan.unset_pretrained(config, pairs)


DATASETS_NEEDED.append(kd_datasets)
PREFLIGHT_CHECKS.append(kd_unset_teachers)
