# Shared wiring: config loading and validation at start-up, per-job params, pre-flight checks.
import json
import os
import sys
from pathlib import Path

from repro.core import ReproError
from repro.core import launch as launcher
from repro.core.config import deep_update, typed_overrides, validate_config

# Files the config came from (the quick default, or the --configfile files) and --config.
_CONFIG_FILES = [str(f) for f in (workflow.overwrite_configfiles or workflow.configfiles)]
_CONFIG_SOURCE = " + ".join(_CONFIG_FILES) or "config"
if workflow.config_settings.config:
    _CONFIG_SOURCE += " + --config"
#: --config values with YAML types (Snakemake leaves nested scalars as strings).
OVERRIDES = typed_overrides(workflow.config_settings.config)
deep_update(config, OVERRIDES)
try:
    validate_config(
        config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml", _CONFIG_SOURCE
    )
except ReproError as _err:
    sys.exit(f"error: {_err}")

RUN = config["run"]
RESULTS = f"results/{RUN}"
PAPERS = config["papers"]
NEVER = "(?!x)x"  # a wildcard constraint that matches nothing
# Each paper's rule file appends its final outputs (summary tables, figures) here.
PAPER_TARGETS = []
#: Reported (published) numbers, one file per paper; read only by its scorecard job.
REPORTED = Path(workflow.basedir) / "config" / "reported"


def pkg_version(name):
    """Installed version of repro-<name>: a rule param, so a version bump reruns its jobs."""
    from importlib.metadata import version

    return version(f"repro-{name}")


def as_json(params):
    """One job's params as compact JSON for a CLI's --params (sorted: stable for reruns)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def data_params(dataset):
    """The config section of one dataset as JSON (empty when the run does not configure it)."""
    return as_json(config["data"].get(dataset, {}))


def lt_factor(wildcards):
    """The imbalance factor in a long-tailed dataset name ('digits-lt10' -> 10)."""
    _, _, factor = wildcards.name.partition("-lt")
    return factor or None


def imbalance_flag(wildcards):
    """'--imbalance F' for a long-tailed dataset name, else nothing."""
    factor = lt_factor(wildcards)
    return f"--imbalance {factor}" if factor else ""


def dataset_files(name):
    """The files a prepared array dataset consists of (meta.json last)."""
    return [f"data/{name}/{s}_{k}.npy" for s in ("train", "test") for k in ("images", "labels")]


def planned_jobs():
    """(rule name, wildcards) of the jobs this invocation will run, or None when Snakemake
    does not expose them (then every check treats everything as planned). The one place that
    reads Snakemake's internals."""
    try:
        return [(job.rule.name, dict(job.wildcards)) for job in workflow.dag.needrun_jobs()]
    except AttributeError:
        return None


#: Datasets each paper needs, and more pre-flight checks, as functions the papers add.
#: DATASETS_NEEDED[i]() -> dataset names; PREFLIGHT_CHECKS[i](planned) -> one-line problems,
#: where planned is planned_jobs() (None: check everything the config implies).
DATASETS_NEEDED = []
PREFLIGHT_CHECKS = []


def preflight_problems(planned):
    """Every problem that would stop a planned job: unobtainable datasets (one line each,
    naming the config key and the path set) and the papers' own checks."""
    from repro.data.cli import check

    if planned is None:
        names = set(config["datasets"]).union(*(f() for f in DATASETS_NEEDED))
    else:
        names = {wc["dataset"] for rule, wc in planned if rule == "fetch_archive"}
        names |= {"imagenet" for rule, _ in planned if rule == "index_imagenet"}
        names |= {wc["name"] for rule, wc in planned if rule == "index_fgvr"}
    problems = check(config["data"], sorted(names), Path("data"))
    for extra in PREFLIGHT_CHECKS:
        problems += extra(planned)
    return list(dict.fromkeys(problems))  # two papers may need the same missing file


def launch_prefix(single=False):
    """A params function: the launcher prefix of a GPU job's shell command (repro.core.launch),
    from the job's `gpu` (and `nodes`) resources: empty for a CPU job; otherwise
    `repro-core launch ... --`, which claims the job's GPUs on a workstation and starts one
    process per GPU with torchrun (srun + torchrun on several SLURM nodes). ``single``: one
    process whatever the GPUs (jobs that are not distributed). Taking `resources`, it is no
    rerun trigger: a finished job is not rerun because it would now get more GPUs."""

    def launch(wildcards, resources):
        return launcher.prefix(resources, single=single)

    return launch


def attempt_scaled(value):
    """A resource that grows with the attempt (value x attempt): a job SLURM killed for time
    or memory is retried (the profiles' `retries`) with more, and resumes from its checkpoint."""
    return lambda wildcards, attempt: value * attempt


def stop_on(problems):
    if problems:
        sys.exit("\n".join(f"error: {p}" for p in problems))


def all_targets(wildcards):
    """What `snakemake` builds by default: papers' outputs, datasets and the run's provenance.
    Evaluated while the DAG is built, so the default target is checked before any job: a
    real run stops on any problem (every one listed, one line each); a dry run lists them as
    warnings and still plans every job."""
    problems = preflight_problems(None)
    if getattr(workflow, "dryrun", False):
        for p in problems:
            print(f"warning: a real run would stop here: {p}", file=sys.stderr)
    else:
        stop_on(problems)
    targets = [f"data/{name}/meta.json" for name in config["datasets"]]
    targets.append(f"{RESULTS}/provenance.json")
    return targets + PAPER_TARGETS

