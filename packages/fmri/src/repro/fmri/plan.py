"""Plan the fMRI-adversarial jobs: the paper contract of ``repro.core.papers`` (entry point
``fmri-adv``). Torch-free: the Snakefile imports it.

Config section ``fmri_adv`` (schema ``schemas/fmri_adv.schema.yaml`` of this package)::

    dataset: digits                 # clean images: an array dataset, or an image index
    networks: {target: resnet20, substitute: wrn_16_2, mean: [0.5], std: [0.5]}
    stimuli: {...}                  # StimulusParams without nets, device
    dnn: {...}                      # DnnParams without nets, device, stats.alpha
    brain: {simulate: {...}}        # SimParams: a simulated BIDS dataset on the stimuli
         # or {bids_root: /path}    # the user's BIDS dataset (validated before any job)
    analysis: {...}                 # AnalysisParams without device, stats.alpha
    device: cpu                     # stimuli, dnn and analyse
    gpus: 0                         # GPUs each of these three jobs requests
    alpha: 0.05                     # the one significance level: dnn, analyse and report

The networks come from the KD run pool (section ``kd``): a (dataset, model) the pool lists
in ``kd.pretrained_teachers`` is the user's torchvision file; any other is the model trained
alone with the pool's recipe at ``kd.teacher_seed`` (``repro.distill.plan.vanilla_dir``),
the same job the KD papers use. Each job's params are exactly its step's parameter dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repro.core import ReproError
from repro.core.papers import Planned, planned_rules, schema_file
from repro.core.params import parse
from repro.distill import plan as kdplan
from repro.fmri import params as P

PAPER = "fmri-adv"
SECTION = "fmri_adv"
#: Config sections this paper reads (the networks' recipe and seed come from the KD pool,
#: whose schema is repro.distill's) -> their schemas.
SCHEMAS = {SECTION: schema_file("repro.fmri", SECTION), kdplan.POOL: kdplan.POOL_SCHEMA}
ROLES = ("target", "substitute")

#: Each step's resources; the steps on ``fmri_adv.device`` also request ``fmri_adv.gpus``.
_RESOURCES = {
    "stimuli": {"threads": 1, "mem_mb": 4000, "runtime": 60},
    "dnn": {"threads": 1, "mem_mb": 4000, "runtime": 60},
    "simulate": {"threads": 1, "mem_mb": 2000, "runtime": 30},
    "analyse": {"threads": 1, "mem_mb": 4000, "runtime": 60},
    "report": {"threads": 1, "mem_mb": 2000, "runtime": 10},
}
_ON_DEVICE = ("stimuli", "dnn", "analyse")

#: The report job's outputs (the paper's targets), relative to :func:`paper_dir`.
REPORT_FILES = {
    "csv": "summary.csv",
    "html": "summary.html",
    "md": "summary.md",
    "stimuli": "figures/example_stimuli.png",
    "rdms": "figures/rdm_panels.png",
    "wb": "figures/white_black_difference.png",
    "roi": "figures/roi_layer_similarity.png",
    "provenance": "provenance.json",
}


# -- the paper contract ----------------------------------------------------------------------
def check(config: Mapping[str, Any]) -> list[str]:
    """One-line problems: the networks, then every step's params built as its dataclass."""
    try:
        weights_format(config)
        parse(P.NetParams, _nets(config), f"{SECTION}.networks")
    except ReproError as err:
        return [str(err)]
    steps = [
        (P.StimulusParams, stimuli_params(config), f"{SECTION}.stimuli"),
        (P.DnnParams, dnn_params(config), f"{SECTION}.dnn"),
        (P.AnalysisParams, analysis_params(config), f"{SECTION}.analysis"),
        (P.ReportParams, report_params(config), SECTION),
    ]
    sim = simulate_params(config)
    if sim is not None:
        steps.append((P.SimParams, sim, f"{SECTION}.brain.simulate"))
    problems = []
    for cls, params, where in steps:
        try:
            parse(cls, params, where)
        except ReproError as err:
            problems.append(str(err))
    return problems


def datasets(config: Mapping[str, Any]) -> set[str]:
    """The prepared dataset the stimuli are drawn from."""
    return {config[SECTION]["dataset"]}


def preflight(config: Mapping[str, Any], planned: Planned) -> list[str]:
    """A user's BIDS dataset, validated (runs, events, TR, masks: one line naming the file)
    when the analysis is planned; the networks, when they are the user's pretrained files,
    must be set when the jobs reading them are planned."""
    problems = []
    root = bids_root(config)
    if root and planned_rules(planned, "fmri_analyse"):
        problem = validate_bids(root, analysis_params(config))
        problems += [problem] if problem else []
    if planned_rules(planned, "fmri_stimuli", "fmri_dnn"):
        section = config[SECTION]
        pairs = [(section["dataset"], section["networks"][role]) for role in ROLES]
        problems += kdplan.unset_pretrained(config, pairs)
    return problems


def targets(config: Mapping[str, Any], results: str) -> list[str]:
    """The report job's outputs: scorecard, figures, provenance."""
    return [report_file(results, name) for name in REPORT_FILES]


def resources(config: Mapping[str, Any], step: str) -> dict[str, Any]:
    """``threads``, ``mem_mb``, ``runtime`` of a step, and ``gpu`` for the steps that run on
    ``fmri_adv.device`` (stimuli, dnn, analyse)."""
    if step not in _RESOURCES:
        raise ReproError(f"{PAPER}: no step '{step}' (steps: {', '.join(_RESOURCES)})")
    res = dict(_RESOURCES[step])
    if step in _ON_DEVICE:
        res["gpu"] = config.get(SECTION, {}).get("gpus", 0)
    return res


# -- files -----------------------------------------------------------------------------------
def paper_dir(results: str) -> str:
    return f"{results}/{PAPER}"


def report_file(results: str, name: str) -> str:
    """One of the report job's outputs (a key of :data:`REPORT_FILES`)."""
    return f"{paper_dir(results)}/{REPORT_FILES[name]}"


def data_file(config: Mapping[str, Any]) -> str:
    """The prepared dataset's ``meta.json`` (an input of the stimuli job)."""
    return f"data/{config[SECTION]['dataset']}/meta.json"


def weights_format(config: Mapping[str, Any]) -> str:
    """``torchvision`` when both networks are the user's pretrained files
    (``kd.pretrained_teachers``), ``trainer`` when both are trained here; a mix is an error."""
    section, pool = config[SECTION], config.get("kd", {})
    pretrained = {
        kdplan.is_pretrained(pool, section["dataset"], section["networks"][role]) for role in ROLES
    }
    if len(pretrained) > 1:
        raise ReproError(
            f"{SECTION}.networks: target and substitute must both be trained here or both be "
            "pretrained files (kd.pretrained_teachers)"
        )
    return "torchvision" if pretrained.pop() else "trainer"


def network_file(config: Mapping[str, Any], results: str, role: str) -> str | list[str]:
    """The weights of the ``target`` or ``substitute``: the user's pretrained file (``[]``
    while unset: the pre-flight names its key), else the ``model.pt`` of the KD pool's model
    trained alone at ``kd.teacher_seed``."""
    section, pool = config[SECTION], config.get("kd", {})
    dataset, model = section["dataset"], section["networks"][role]
    if kdplan.is_pretrained(pool, dataset, model):
        return kdplan.pretrained_weights(pool, dataset, model) or []
    seed = pool.get("teacher_seed", 0)
    return f"{kdplan.vanilla_dir(results, dataset, model, seed)}/model.pt"


def bids_root(config: Mapping[str, Any]) -> str | None:
    """The user's BIDS dataset (``fmri_adv.brain.bids_root``), or None: simulated here."""
    return config[SECTION].get("brain", {}).get("bids_root")


def bids_dir(config: Mapping[str, Any], results: str) -> str:
    """The BIDS folder the analysis reads: the user's, or the one simulated here."""
    return bids_root(config) or f"{paper_dir(results)}/bids"


def simulated_bids(config: Mapping[str, Any], results: str) -> list[str]:
    """The simulated dataset's marker file as the analysis's input ([] with a user's)."""
    return [] if bids_root(config) else [f"{paper_dir(results)}/bids/dataset_description.json"]


def brain_data(config: Mapping[str, Any]) -> str:
    """``measured`` (a user's BIDS dataset) or ``simulated``: named in the report captions."""
    return "measured" if bids_root(config) else "simulated"


# -- each job's params -----------------------------------------------------------------------
def _nets(config: Mapping[str, Any]) -> dict[str, Any]:
    nets = config[SECTION]["networks"]
    return {
        "target": nets["target"],
        "substitute": nets["substitute"],
        "mean": nets["mean"],
        "std": nets["std"],
        "weights_format": weights_format(config),
    }


def alpha(config: Mapping[str, Any]) -> float:
    """The run's one significance level (``fmri_adv.alpha``), given to every step using one."""
    return config[SECTION].get("alpha", 0.05)


def _with_alpha(params: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    return {**params, "stats": {**params.get("stats", {}), "alpha": alpha(config)}}


def stimuli_params(config: Mapping[str, Any]) -> dict[str, Any]:
    section = config[SECTION]
    return {**section.get("stimuli", {}), "nets": _nets(config), "device": section["device"]}


def dnn_params(config: Mapping[str, Any]) -> dict[str, Any]:
    section = config[SECTION]
    dnn = _with_alpha(section.get("dnn", {}), config)
    return {**dnn, "nets": _nets(config), "device": section["device"]}


def simulate_params(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The simulated experiment's params (None when the user's BIDS dataset is analysed)."""
    brain = config[SECTION].get("brain", {})
    return None if brain.get("bids_root") else dict(brain.get("simulate", {}))


def analysis_params(config: Mapping[str, Any]) -> dict[str, Any]:
    section = config[SECTION]
    params = _with_alpha(section.get("analysis", {}), config)
    sim = simulate_params(config)
    if sim is not None and "tr" in sim:  # the simulated runs' TR is the analysis's
        params["bids"] = {**params.get("bids", {}), "tr": sim["tr"]}
    return {**params, "device": section["device"]}


def report_params(config: Mapping[str, Any]) -> dict[str, Any]:
    return {"alpha": alpha(config)}


def validate_bids(root: str, analysis: Mapping[str, Any]) -> str | None:
    """The first problem of a user's BIDS dataset as one line (None when valid)."""
    from repro.fmri.bids import scan

    params = parse(P.AnalysisParams, dict(analysis), f"{SECTION}.analysis")
    try:
        scan(root, params.bids)
    except ReproError as err:
        return f"{SECTION}.brain.bids_root: {err}"
    return None
