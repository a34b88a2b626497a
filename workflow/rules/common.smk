# Shared wiring: config loading and validation at start-up, per-job params, pre-flight checks.
# The logic is repro.core.workflow's (a Run: the papers' plans, targets, resources, pre-flight).
import atexit
import json
import os
import sys
from pathlib import Path

from repro.core import ReproError
from repro.core import launch as launcher
from repro.core import tensorboard
from repro.core.config import deep_update, typed_overrides, validate_config
from repro.core.papers import caption, config_schema, registry, reported_file
from repro.core.workflow import Run, announce, config_source, record_outputs
from repro.data import plan as dataplan
from repro.data.registry import check as check_datasets
from snakemake.cli import get_argument_parser

# The config files (the quick default, or the --configfile files) and the --config values with
# YAML types (Snakemake leaves nested scalars as strings), merged on top.
_CONFIG_FILES = list(map(str, workflow.overwrite_configfiles or workflow.configfiles))
OVERRIDES = typed_overrides(workflow.config_settings.config)
_CONFIG_SOURCE = config_source(_CONFIG_FILES, OVERRIDES)
deep_update(config, OVERRIDES)
try:
    validate_config(
        config,
        config_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
        _CONFIG_SOURCE,
    )
except ReproError as _err:
    sys.exit(f"error: {_err}")

#: This run: the registered papers' plans (entry-point group repro.papers), its results.
RUN_PLAN = Run(config, registry(), _CONFIG_SOURCE)
RUN = config["run"]
RESULTS = RUN_PLAN.results
# A paper's published numbers (reported_file(paper), read only by its scorecard job) and its
# report captions (caption(paper, name)) are package data of the package that registers it.
# Training runs write TensorBoard events too (repro.core.tensorboard): every job inherits it.
tensorboard.configure(config["logging"]["tensorboard"])


def stop_on(problems):
    """Stop with one `error:` line per problem (none: go on)."""
    if problems:
        sys.exit("\n".join(f"error: {p}" for p in problems))


# A target naming something the config does not have (a misspelt model, variant, dataset,
# recipe or seed) stops here, before any job, one line listing the valid names; so do the
# chosen papers' config problems.
stop_on(RUN_PLAN.target_problems(get_argument_parser().parse_known_args(sys.argv[1:])[0].targets))
stop_on(RUN_PLAN.config_problems())


def pkg_version(name):
    """Installed version of repro-<name>: a rule param, so a version bump reruns its jobs."""
    from importlib.metadata import version

    return version(f"repro-{name}")


def as_json(params):
    """One job's params as compact JSON for a CLI's --params (sorted: stable for reruns)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def record_invocation():
    """How the user started this run, for every provenance.json (repro.core.provenance): the
    `snakemake` command line, its targets, config files and --config overrides, put in the
    environment by the first Snakemake process at its start (onstart) and inherited by its
    jobs (also a SLURM job's inner Snakemake, whose own command line is internal)."""
    invocation = {
        "command": [os.path.basename(sys.argv[0]), *sys.argv[1:]],
        "targets": sorted(workflow.dag_settings.targets),
        "configfiles": _CONFIG_FILES,
        "overrides": OVERRIDES,
        "cwd": os.getcwd(),
    }
    os.environ.setdefault("REPRO_INVOCATION", as_json(invocation))


def data_params(wildcards):
    """A data job's params: its dataset's config section as JSON (repro.data.plan.section)."""
    return as_json(dataplan.section(config["data"], wildcards.name))


def planned_jobs():
    """(rule name, wildcards) of the jobs this invocation will run, or None when Snakemake
    does not expose them (then every check treats everything as planned). The one place that
    reads Snakemake's internals."""
    try:
        return [(job.rule.name, dict(job.wildcards)) for job in workflow.dag.needrun_jobs()]
    except AttributeError:
        return None


def preflight_problems(planned):
    """Every problem that would stop a planned job (repro.core.preflight.Problem: the line and
    the papers it blocks): unobtainable datasets, naming the config key and the path set, and
    the papers' own pre-flight checks. planned: planned_jobs() (None: everything)."""
    return RUN_PLAN.preflight(
        planned,
        lambda name: check_datasets(config["data"], [name], Path("data")),
        None if planned is None else dataplan.planned_datasets(planned),
    )


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


def step_threads(paper, step):
    """The threads of one of a paper's steps (its plan's ``resources``)."""
    return RUN_PLAN.threads(paper, step)


def step_resources(paper, step, retry=False):
    """One of a paper's steps' resources (its plan's, without threads); ``retry``: mem_mb and
    runtime grow with the attempt (repro.core.workflow.attempt_scaled)."""
    return RUN_PLAN.resources(paper, step, retry)


#: The jobs this run starts (planned_jobs() at onstart), for what onsuccess records.
STARTED = []
_RECAP = []  # the dry run's closing recap: printed once, at exit, after the job list


def all_targets(wildcards):
    """What `snakemake` builds by default: papers' outputs, datasets and the run's provenance.
    Evaluated while the DAG is built, so the default target is checked before any job: a
    real run stops on any problem that blocks a chosen paper (every one listed, one line each,
    naming the papers); a dry run lists them as warnings, plans every job and lists them again
    at its end (repro.core.preflight.recap). A dataset only `datasets:` lists that cannot be
    prepared is skipped with a warning."""
    problems = preflight_problems(None)
    stop_on(announce(problems, getattr(workflow, "dryrun", False), _RECAP.append))
    return RUN_PLAN.default_targets(problems)


atexit.register(lambda: _RECAP and print(_RECAP[0], file=sys.stderr))
