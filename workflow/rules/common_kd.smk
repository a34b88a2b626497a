# Helpers shared by the KD papers' Snakemake files: paths, params and resources.
from repro.distill.recipes import (
    is_pretrained,
    kd_params,
    kd_runs,
    pretrained_eval_params,
    pretrained_teachers,
    pretrained_weights,
    vanilla_params,
)

KD = config.get("energy_kd", {})


def kd_resource(name, default):
    """A per-dataset resource from the experiments' `resources` (e.g. gpu=1 on the paper run)."""

    def get(wildcards):
        for exp in KD.get("experiments", []):
            if exp["dataset"] == wildcards.dataset and name in exp.get("resources", {}):
                return exp["resources"][name]
        return default

    return get


def kd_threads(wildcards):
    """Per-dataset `resources.threads` (e.g. JPEG decoding workers), else the recipe's."""
    default = KD.get("vanilla_train", {}).get("threads") or 1
    return kd_resource("threads", default)(wildcards)


def vanilla_file(dataset, model, seed, name=""):
    """A file (or with no name, the folder) of a model trained alone."""
    return os.path.join(f"{RESULTS}/vanilla/{dataset}/{model}/seed{seed}", name)


def vanilla_out(wildcards):
    return vanilla_file(wildcards.dataset, wildcards.model, wildcards.seed)


def vanilla_cfg(wildcards):
    w = wildcards
    return as_json(vanilla_params(KD, w.model, int(w.seed), w.dataset))


def ekd_file(dataset, method, teacher, student, seed, name=""):
    """A file (or the folder) of one Energy-KD-paper student run."""
    pair = f"{teacher}-{student}"
    return os.path.join(f"{RESULTS}/energy-kd/runs/{dataset}/{method}/{pair}/seed{seed}", name)


def ekd_out(wildcards):
    w = wildcards
    return ekd_file(w.dataset, w.method, w.teacher, w.student, w.seed)


def ekd_cfg(wildcards):
    w = wildcards
    return as_json(kd_params(KD, w.method, w.dataset, w.teacher, w.student, int(w.seed)))


def ekd_teacher(wildcards):
    """The teacher's model.pt trained alone, or the user's pretrained file (none if unset)."""
    w = wildcards
    if is_pretrained(KD, w.dataset, w.teacher):
        path = pretrained_weights(KD, w.dataset, w.teacher)
        return [path] if path else []  # unset: the job stops with the key to set
    return vanilla_file(w.dataset, w.teacher, KD["teacher_seed"], "model.pt")


def ekd_unset_teachers():
    """Pretrained teachers that planned KD jobs need but the config leaves unset (one line each)."""
    try:
        jobs = list(workflow.dag.needrun_jobs())
    except AttributeError:  # Snakemake internals moved: the jobs themselves will stop
        return []
    keys = {
        (job.wildcards["dataset"], job.wildcards["teacher"])
        for job in jobs
        if job.rule.name == "train_energy_kd"
    } | {
        (job.wildcards["dataset"], job.wildcards["model"])
        for job in jobs
        if job.rule.name == "evaluate_pretrained_teacher"
    }
    return [
        f"config key energy_kd.pretrained_teachers.{d}.{t} is not set (path to the"
        " teacher's torchvision state_dict file; nothing is downloaded)"
        for d, t in sorted(keys)
        if is_pretrained(KD, d, t) and not pretrained_weights(KD, d, t)
    ]


PREFLIGHT_CHECKS.append(ekd_unset_teachers)


def ekd_teacher_arg(wildcards, input):
    """`--teacher model.pt` for trained teachers; pretrained ones come in the params JSON."""
    if is_pretrained(KD, wildcards.dataset, wildcards.teacher):
        return ""
    return f"--teacher {input.teacher}"


def pretrained_file(dataset, model):
    """result.json of a user-supplied pretrained teacher scored on the test split."""
    return f"{RESULTS}/vanilla/{dataset}/{model}/pretrained/result.json"


def pretrained_input(wildcards):
    """The user's weights file of a pretrained teacher (none while unset: preflight stops)."""
    path = pretrained_weights(KD, wildcards.dataset, wildcards.model)
    return [path] if path else []


def pretrained_cfg(wildcards):
    return as_json(pretrained_eval_params(KD, wildcards.dataset, wildcards.model))


def ekd_results():
    """result.json of every KD run, the teachers and students trained alone, and the
    pretrained teachers scored here."""
    files = [pretrained_file(d, t) for d, t in pretrained_teachers(KD)]
    for r in kd_runs(KD):
        d, t, s = r["dataset"], r["teacher"], r["student"]
        files.append(ekd_file(d, r["method"], t, s, r["seed"], "result.json"))
        files.append(vanilla_file(d, s, r["seed"], "result.json"))
        if not is_pretrained(KD, d, t):
            files.append(vanilla_file(d, t, KD["teacher_seed"], "result.json"))
    return list(dict.fromkeys(files))


def ekd_report_pair():
    """(dataset, teacher) whose teacher energies the report's figures show (first experiment)."""
    first = KD["experiments"][0] if KD else {"dataset": "", "teacher": ""}
    return first["dataset"], first["teacher"]


def ekd_report_teacher(wildcards):
    dataset, teacher = ekd_report_pair()
    return vanilla_file(dataset, teacher, KD["teacher_seed"], "model.pt")
