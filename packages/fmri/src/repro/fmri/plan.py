"""Plan the fMRI-adversarial jobs (torch-free: the Snakefile imports it).

Config section ``fmri_adv`` (schema ``workflow/schemas/fmri_adv.schema.yaml``)::

    dataset: digits                 # clean images: an array dataset, or an image index
    networks: {target: resnet20, substitute: wrn_16_2, mean: [0.5], std: [0.5]}
    stimuli: {...}                  # StimulusParams without nets
    dnn: {...}                      # DnnParams without nets
    brain: {simulate: {...}}        # SimParams: a simulated BIDS dataset on the stimuli
         # or {bids_root: /path}    # the user's BIDS dataset (validated before any job)
    analysis: {...}                 # AnalysisParams
    device: cpu
    alpha: 0.05

The networks come from the KD run pool (section ``kd``): a (dataset, model) the pool lists
in ``kd.pretrained_teachers`` is the user's torchvision file; any other is the model trained
alone with the pool's recipe at ``kd.teacher_seed`` (``results/<run>/vanilla/...``), the
same job the KD papers use. Each job's params are exactly its step's parameter dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repro.core import ReproError
from repro.fmri import params as P

SECTION = "fmri_adv"


def network_files(config: Mapping[str, Any], results: str) -> tuple[str | None, str | None, str]:
    """(target file, substitute file, weights format) from the KD pool; a pretrained file
    that is not set yet is None (the pre-flight names its key)."""
    section, pool = config[SECTION], config.get("kd", {})
    dataset, nets = section["dataset"], section["networks"]
    pretrained = pool.get("pretrained_teachers", {}).get(dataset) or {}
    files, formats = [], set()
    for model in (nets["target"], nets["substitute"]):
        if model in pretrained:
            files.append(pretrained[model])
            formats.add("torchvision")
        else:
            seed = pool.get("teacher_seed", 0)
            files.append(f"{results}/vanilla/{dataset}/{model}/seed{seed}/model.pt")
            formats.add("trainer")
    if len(formats) > 1:
        raise ReproError(
            f"{SECTION}.networks: target and substitute must both be trained here or both be "
            "pretrained files (kd.pretrained_teachers)"
        )
    return files[0], files[1], formats.pop()


def _nets(config: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    nets = config[SECTION]["networks"]
    return {
        "target": nets["target"],
        "substitute": nets["substitute"],
        "mean": nets["mean"],
        "std": nets["std"],
        "weights_format": fmt,
    }


def stimuli_params(config: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    section = config[SECTION]
    return {**section.get("stimuli", {}), "nets": _nets(config, fmt), "device": section["device"]}


def dnn_params(config: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    section = config[SECTION]
    return {**section.get("dnn", {}), "nets": _nets(config, fmt), "device": section["device"]}


def simulate_params(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The simulated experiment's params (None when the user's BIDS dataset is analysed)."""
    brain = config[SECTION].get("brain", {})
    return None if brain.get("bids_root") else dict(brain.get("simulate", {}))


def analysis_params(config: Mapping[str, Any]) -> dict[str, Any]:
    params = dict(config[SECTION].get("analysis", {}))
    sim = simulate_params(config)
    if sim is not None and "tr" in sim:  # the simulated runs' TR is the analysis's
        params["bids"] = {**params.get("bids", {}), "tr": sim["tr"]}
    return params


def check(config: Mapping[str, Any], results: str) -> list[str]:
    """One-line problems (every step's params built as its dataclass; the networks)."""
    problems = []
    try:
        _, _, fmt = network_files(config, results)
    except ReproError as err:
        return [str(err)]
    steps = [
        (P.StimulusParams, stimuli_params(config, fmt), f"{SECTION}.stimuli"),
        (P.DnnParams, dnn_params(config, fmt), f"{SECTION}.dnn"),
        (P.AnalysisParams, analysis_params(config), f"{SECTION}.analysis"),
    ]
    sim = simulate_params(config)
    if sim is not None:
        steps.append((P.SimParams, sim, f"{SECTION}.brain.simulate"))
    for cls, params, where in steps:
        try:
            P.from_dict(cls, params, where)
        except ReproError as err:
            problems.append(str(err))
    return problems


def validate_bids(root: str, analysis: Mapping[str, Any]) -> str | None:
    """The first problem of a user's BIDS dataset as one line (None when valid)."""
    from repro.fmri.bids import scan

    params = P.from_dict(P.AnalysisParams, dict(analysis), f"{SECTION}.analysis")
    try:
        scan(root, params.bids)
    except ReproError as err:
        return f"{SECTION}.brain.bids_root: {err}"
    return None
