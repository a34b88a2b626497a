# Shared wiring: config validation at start-up and small helpers used by the rule files.
import json
import os
import sys
from pathlib import Path

from repro.core import ReproError
from repro.core.config import validate_config

# --configfile replaces config/quick.yaml (profiles/default sets replace-workflow-config).
_CONFIG_FILES = getattr(workflow, "overwrite_configfiles", None) or workflow.configfiles
_CONFIG_SOURCE = " + ".join(str(f) for f in _CONFIG_FILES) or "config"
try:
    validate_config(
        config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml", _CONFIG_SOURCE
    )
except ReproError as _err:
    sys.exit(f"error: {_err}")

RUN = config["run"]
RESULTS = f"results/{RUN}"
PAPERS = config["papers"]
# Each paper's rule file appends its final outputs (summary tables, figures) here.
PAPER_TARGETS = []


def pkg_version(name):
    """Installed version of repro-<name>: a rule param, so a version bump reruns its jobs."""
    from importlib.metadata import version

    return version(f"repro-{name}")


def as_json(section):
    """A config section as a JSON string for a CLI's --params."""
    return json.dumps(section, sort_keys=True)


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


def all_targets():
    """What `snakemake` builds by default: papers' outputs, datasets and the run's provenance."""
    targets = [f"data/{name}/meta.json" for name in config["datasets"]]
    targets.append(f"{RESULTS}/provenance.json")
    return targets + PAPER_TARGETS


def pending_acquisitions():
    """Datasets this invocation still has to fetch or index (from the planned jobs)."""
    try:
        jobs = list(workflow.dag.needrun_jobs())
    except AttributeError:  # Snakemake internals moved: check every configured dataset
        return config["datasets"]
    names = {job.wildcards.get("dataset") for job in jobs if job.rule.name == "fetch_archive"}
    if any(job.rule.name == "index_imagenet" for job in jobs):
        names.add("imagenet")
    return sorted(names - {None})


#: More pre-flight checks (functions returning one-line problems), added by paper rule files.
PREFLIGHT_CHECKS = []


def preflight():
    """Stop before any job runs when a planned dataset cannot be obtained (one line)."""
    from repro.data.cli import check

    problems = check(config["data"], pending_acquisitions(), Path("data"))
    for extra in PREFLIGHT_CHECKS:
        problems += extra()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        sys.exit(f"error: {problems[0]}{more}")


onstart:
    preflight()
