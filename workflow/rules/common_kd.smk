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


def _init_file(dataset, model):
    path = kdplan.init_weights(POOL, dataset, model)
    return [path] if path else []


def vanilla_init_input(wildcards):
    """The user's initial weights of a model trained alone (kd.init_weights), if any."""
    return _init_file(wildcards.dataset, wildcards.model)


def kd_init_input(wildcards):
    """The user's initial weights of a KD student (kd.init_weights), if any."""
    return _init_file(wildcards.dataset, wildcards.student)


#: Lockstep groups (kd.lockstep): the cells of a row trained in one job, by group marker.
KD_GROUPS = (
    kdplan.lockstep_groups(POOL, kdplan.pool_cells(config, KD_PAPERS))
    if POOL.get("lockstep")
    else {}
)
_GROUP_BY_WILDCARDS = {
    (g.dataset, g.teacher, g.student, str(g.seed), g.key): cells for g, cells in KD_GROUPS.items()
}


def group_cells(wildcards):
    """The cells of the group job named by ``wildcards``."""
    w = wildcards
    return _GROUP_BY_WILDCARDS[(w.dataset, w.teacher, w.student, w.seed, w.key)]


def group_runtime(wildcards, attempt):
    """A group job's runtime: the dataset's per-cell runtime times its cells (a bound: the
    shared teacher forward makes it shorter)."""
    per_cell = kdplan.resources(POOL, wildcards.dataset).get("runtime", 30)
    return per_cell * len(group_cells(wildcards)) * attempt


def group_cfg(wildcards):
    return as_json(kdplan.group_params(POOL, group_cells(wildcards)))


def grouped(files):
    """Files read by a report: a grouped cell's files come from its group job."""
    return kdplan.lockstep_inputs(RESULTS, KD_GROUPS, files) if KD_GROUPS else list(files)


def report_cfg(paper):
    """A KD paper's scorecard params: its tables, the teacher seed, the pretrained teachers,
    its figures and the run they draw from."""
    return kdplan.report_params(config, paper)


def report_cfg_json(paper):
    return lambda wildcards: as_json(report_cfg(paper))


def report_inputs(paper):
    """Every result.json a KD paper's scorecard reads (none when the paper is not run)."""
    if paper not in PAPERS:
        return []
    return grouped(kdplan.report_runs(RESULTS, report_cfg(paper)))


def figure_inputs(paper):
    """What a paper's own figures read besides the results: the figure run's teacher (and,
    for CSWT, its student) and the dataset."""
    cell = kdplan.figure_cell(config, paper) if paper in PAPERS else None
    if cell is None:
        return []
    teacher = vanilla_file(cell.dataset, cell.teacher, POOL.get("teacher_seed", 0), "model.pt")
    files = [teacher, f"data/{cell.dataset}/meta.json"]
    if paper == "cskd":
        files.append(f"{kdplan.cell_dir(RESULTS, cell)}/model.pt")
    return grouped(files)


def figure_outputs(paper):
    """A KD paper's figures, each marked for the HTML report with its caption."""
    section, title = kdplan.PAPERS[paper], kdplan.TITLES[paper]
    return {
        name: report(
            f"{RESULTS}/{paper}/figures/{name}.png",
            caption=f"../report/{section}_{name}.rst",
            category=title,
            labels={"figure": kdplan.FIGURE_LABELS[name]},
        )
        for name in kdplan.report_figures(config, paper)
    }


#: The fair KD leaderboard (section kd_leaderboard), or None.
LEADERBOARD = kdplan.leaderboard(config) if KD_PAPERS else None


def leaderboard_inputs(wildcards):
    return grouped(kdplan.leaderboard_runs(RESULTS, LEADERBOARD))


def kd_datasets():
    """Datasets the KD papers' tables (and the leaderboard) need."""
    names = {t["dataset"] for p in KD_PAPERS for t in kdplan.tables(config, p)}
    return names | ({LEADERBOARD["dataset"]} if LEADERBOARD else set())


def _planned_kd(planned):
    """(dataset, teacher, student) of the planned KD jobs and (dataset, model) of the planned
    models trained alone or scored (everything the config implies when planned is None)."""
    if planned is None:
        cells = kdplan.pool_cells(config, KD_PAPERS)
        alone = {(d, m) for p in KD_PAPERS for d, m, _ in kdplan.paper_vanilla(config, p)}
        alone |= {(c.dataset, c.teacher) for c in cells}
        return [(c.dataset, c.teacher, c.student) for c in cells], sorted(alone)
    kd = [
        (w["dataset"], w["teacher"], w["student"])
        for r, w in planned
        if r in ("train_kd", "train_kd_group")
    ]
    alone = [
        (w["dataset"], w["model"])
        for r, w in planned
        if r in ("train_vanilla", "evaluate_pretrained_teacher")
    ]
    return kd, alone


def kd_unset_teachers(planned):
    """Planned KD jobs whose pretrained teacher's weights file is not set (one line each)."""
    kd, alone = _planned_kd(planned)
    return kdplan.unset_pretrained(config, [(d, t) for d, t, _ in kd] + alone)


def kd_unset_init(planned):
    """Planned runs whose initial weights file (kd.init_weights) is not set (one line each)."""
    kd, alone = _planned_kd(planned)
    return kdplan.unset_init(config, [(d, s) for d, _, s in kd] + alone)


DATASETS_NEEDED.append(kd_datasets)
PREFLIGHT_CHECKS.append(kd_unset_teachers)
PREFLIGHT_CHECKS.append(kd_unset_init)
