# Shared wiring: config loading and validation at start-up, per-job params, pre-flight checks.
import json
import os
import sys
from pathlib import Path

from repro.core import ReproError
from repro.core import launch as launcher
from repro.core import tensorboard
from repro.core.config import deep_update, typed_overrides, validate_config
from repro.core.papers import config_schema, registry, target_problems
from repro.data import plan as dataplan
from snakemake.cli import get_argument_parser

#: The registered papers (entry-point group repro.papers): name -> plan (repro.core.papers).
PAPER_PLANS = registry()

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
        config,
        config_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
        _CONFIG_SOURCE,
    )
except ReproError as _err:
    sys.exit(f"error: {_err}")

RUN = config["run"]
# Training runs write TensorBoard events too (repro.core.tensorboard): every job inherits it.
tensorboard.configure(config["logging"]["tensorboard"])
RESULTS = f"results/{RUN}"
PAPERS = config["papers"]
NEVER = "(?!x)x"  # a wildcard constraint that matches nothing
#: The plans of the papers this run reproduces.
RUN_PLANS = {name: PAPER_PLANS[name] for name in PAPERS if name in PAPER_PLANS}
#: The papers' final outputs (summary tables, figures): the default target.
PAPER_TARGETS = [t for plan in RUN_PLANS.values() for t in plan.targets(config, RESULTS)]
#: Reported (published) numbers, one file per paper; read only by its scorecard job.
REPORTED = Path(workflow.basedir) / "config" / "reported"


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
    os.environ.setdefault(
        "REPRO_INVOCATION",
        as_json(
            {
                "command": [os.path.basename(sys.argv[0]), *sys.argv[1:]],
                "targets": sorted(workflow.dag_settings.targets),
                "configfiles": _CONFIG_FILES,
                "overrides": OVERRIDES,
                "cwd": os.getcwd(),
            }
        ),
    )


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


#: Datasets each paper needs, and more pre-flight checks, as functions the papers add.
#: DATASETS_NEEDED[i]() -> dataset names; PREFLIGHT_CHECKS[i](planned) -> one-line problems,
#: where planned is planned_jobs() (None: check everything the config implies).
DATASETS_NEEDED = []
PREFLIGHT_CHECKS = []


def preflight_problems(planned):
    """Every problem that would stop a planned job (repro.core.preflight.Problem: the line and
    the papers it blocks): unobtainable datasets, naming the config key and the path set, and
    the papers' own pre-flight checks. planned: planned_jobs() (None: everything)."""
    from repro.core import preflight
    from repro.data.registry import check

    if planned is None:
        datasets = None
    else:
        datasets = dataplan.planned_datasets(planned)
    problems = preflight.collect(
        config,
        RUN_PLANS,
        planned,
        lambda name: check(config["data"], [name], Path("data")),
        datasets,
    )
    # Rule files not yet on the paper contract (repro.core.papers) add their checks here.
    legacy_sets = set().union(*(f() for f in DATASETS_NEEDED))
    for p in problems:
        if p.dataset in legacy_sets and not p.papers:
            p.papers.append("run")
    legacy = check(config["data"], sorted(legacy_sets), Path("data")) if planned is None else []
    legacy += [p for extra in PREFLIGHT_CHECKS for p in extra(planned)]
    known = {p.text for p in problems}
    return problems + [preflight.Problem(t, ["run"]) for t in dict.fromkeys(legacy) if t not in known]


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


def step_threads(paper, step):
    """The threads of one of a paper's steps (its plan's ``resources``)."""
    return PAPER_PLANS[paper].resources(config, step).get("threads", 1)


def step_resources(paper, step, retry=False):
    """The resources of one of a paper's steps (its plan's ``resources``, without threads);
    ``retry``: mem_mb and runtime grow with the attempt (attempt_scaled)."""
    res = {k: v for k, v in PAPER_PLANS[paper].resources(config, step).items() if k != "threads"}
    if retry:
        res.update({k: attempt_scaled(res[k]) for k in ("mem_mb", "runtime") if k in res})
    return res


# A target naming something the config does not have (a misspelt model, variant, dataset,
# recipe or seed) stops here, before any job, one line listing the valid names.
_TARGETS = get_argument_parser().parse_known_args(sys.argv[1:])[0].targets or []
stop_on(target_problems(RUN_PLANS, config, RESULTS, [str(t) for t in _TARGETS]))
# Config problems of the papers this run reproduces stop it at start-up (one line each).
stop_on(
    list(
        dict.fromkeys(
            f"{_CONFIG_SOURCE}: {p}" for plan in RUN_PLANS.values() for p in plan.check(config)
        )
    )
)


_RECAP = []  # the dry run's closing recap, registered once


def all_targets(wildcards):
    """What `snakemake` builds by default: papers' outputs, datasets and the run's provenance.
    Evaluated while the DAG is built, so the default target is checked before any job: a
    real run stops on any problem that blocks a chosen paper (every one listed, one line each,
    naming the papers); a dry run lists them as warnings, plans every job and lists them again
    at its end (repro.core.preflight.recap). A dataset only `datasets:` lists that cannot be
    prepared is skipped with a warning."""
    import atexit

    from repro.core import preflight

    problems = preflight_problems(None)
    dry = getattr(workflow, "dryrun", False)
    for p in problems:
        if dry and p.blocking:
            print(f"warning: a real run would stop here: {p.line()}", file=sys.stderr)
        elif not p.blocking:
            print(f"warning: skipped (no chosen paper needs it): {p.line()}", file=sys.stderr)
    if dry and not _RECAP:
        _RECAP.append(preflight.recap(problems))
        atexit.register(lambda: print(_RECAP[0], file=sys.stderr))
    else:
        stop_on([p.line() for p in problems if p.blocking])
    skipped = preflight.skipped_datasets(problems)
    targets = [f"data/{d}/meta.json" for d in config["datasets"] if d not in skipped]
    targets.append(f"{RESULTS}/provenance.json")
    return targets + PAPER_TARGETS
