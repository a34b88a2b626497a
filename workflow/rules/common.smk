# Shared wiring: config validation at start-up and small helpers used by the rule files.
import json
import sys
from pathlib import Path

from repro.core import ReproError
from repro.core.config import validate_config

try:
    validate_config(config, workflow.source_path("../schemas/config.schema.yaml"), "config")
except ReproError as _err:
    sys.exit(f"error: {_err}")

RUN = config["run"]
RESULTS = f"results/{RUN}"


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
    """What `snakemake` builds by default: the configured datasets and the run's provenance."""
    targets = [f"data/{name}/meta.json" for name in config["datasets"]]
    targets.append(f"{RESULTS}/provenance.json")
    return targets


onstart:
    shell(
        "repro-data check --params {cfg:q} {names} > /dev/null",
        cfg=as_json(config["data"]),
        names=" ".join(config["datasets"]),
    )
