"""Plan the burst SR jobs (torch-free: the Snakefile imports it); the paper contract of
:mod:`repro.core.papers` (entry point ``burst-sr``).

Each job gets exactly the parameters that determine its output, taken from the ``burst_sr``
config section: editing one model's settings replans that model's training and evaluation
(and the summary), a published number (``reported/burst-sr.yaml`` in this package) only the
summary.
The rule file ``workflow/rules/burst_sr.smk`` is wiring only: its inputs, wildcard constraints
and optional flags come from the functions here (they take the whole config and plain
strings, and return plain strings and lists). The params' dataclasses are in
:mod:`repro.burstsr.params`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from repro.burstsr.params import BurstConfig
from repro.core import ReproError
from repro.core.papers import Planned, planned_rules, schema_file
from repro.core.params import parse

PAPER = "burst-sr"
SECTION = "burst_sr"
#: The config section this paper reads -> its schema (this package's schemas/).
SCHEMAS = {SECTION: schema_file("repro.burstsr", SECTION)}
#: The summary's files in the paper's folder (``repro-burstsr summarize --out``).
SUMMARY_FILES = {
    "csv": "summary.csv",
    "md": "summary.md",
    "html": "summary.html",
    "visual": "figures/visual_comparison.png",
    "frames": "figures/psnr_vs_frames.png",
    "provenance": "provenance.json",
}
#: A wildcard constraint that matches nothing (no model of a kind is configured).
NEVER = "(?!x)x"

#: Model kinds: interpolation baselines (no training), learned ones, and the flow network.
INTERPOLATION = ("bicubic", "bilinear")
SCORED = ("bicubic", "bilinear", "single", "burst")
#: Trained kinds: one folder per seed, ``models/<model>/seed<k>/``.
TRAINED = ("single", "flownet", "burst")
#: Config keys of a model that only label it in the summary (never rerun a job).
LABELS = ("reported_as", "evaluate")


Config = Mapping[str, Any]


def _section(config: Config) -> Mapping[str, Any]:
    return config.get(SECTION) or {}


def _model(config: Config, name: str) -> Mapping[str, Any]:
    return _section(config)["models"][name]


def models(config: Config, *kinds: str) -> list[str]:
    """Configured model names of the given kinds (all kinds when none given)."""
    specs = _section(config).get("models", {})
    return [n for n, s in specs.items() if not kinds or s["kind"] in kinds]


def scored(config: Config) -> list[str]:
    """Models scored on the validation bursts and listed in the summary."""
    return [n for n in models(config, *SCORED) if _model(config, n).get("evaluate", True)]


def seeds(config: Config) -> list[int]:
    """The seeds every trained model is trained (and scored) with (``burst_sr.seeds``)."""
    return [int(k) for k in _section(config).get("seeds", [0])]


def trained(config: Config, model: str) -> bool:
    """Whether ``model`` is trained (a folder per seed) rather than an untrained baseline."""
    return _model(config, model)["kind"] in TRAINED


def model_dir(results: str, model: str, seed: int) -> str:
    """A trained model's folder: ``<results>/models/<model>/seed<k>``."""
    return f"{results}/models/{model}/seed{seed}"


def model_file(results: str, model: str, seed: int) -> str:
    """A trained model's weights: ``<results>/models/<model>/seed<k>/model.pt``."""
    return f"{model_dir(results, model, seed)}/model.pt"


def _runs(config: Config, names: list[str]) -> list[str]:
    return [
        f"{n}/seed{k}" if trained(config, n) else n
        for n in names
        for k in (seeds(config) if trained(config, n) else [None])
    ]


def eval_runs(config: Config) -> list[str]:
    """The scored runs as result names under ``eval/``: ``<model>/seed<k>`` for each trained
    model and seed, ``<model>`` for an untrained baseline (scored once)."""
    return _runs(config, scored(config))


def real_runs(config: Config) -> list[str]:
    """The same for the real track (``real/``)."""
    return _runs(config, real_models(config))


def run_model(run: str) -> tuple[str, int | None]:
    """(model, seed) of a run name (:func:`eval_runs`); seed None for a baseline."""
    model, sep, seed = run.rpartition("/seed")
    return (model, int(seed)) if sep and seed.isdigit() else (run, None)


def real_track_ok(spec: Mapping[str, Any]) -> bool:
    """Whether a model can run on real bursts (no ground-truth flow exists there): not a
    burst model aligned with the ground-truth flow (align gt, or no align given)."""
    return spec["kind"] != "burst" or spec.get("align", "gt") != "gt"


def real_capable(config: Config) -> list[str]:
    """Scored models that can run on BurstSR val (whether or not its bursts are set)."""
    return [n for n in scored(config) if real_track_ok(_model(config, n))]


def real_planned(config: Config) -> bool:
    """Whether the real track runs: the user has set ``data.burstsr_root``."""
    return bool(_section(config).get("data", {}).get("burstsr_root"))


#: Why a real-track row is empty when the track is not planned (the scorecard's note).
REAL_NOT_PLANNED = (
    "not run: burst_sr.data.burstsr_root unset (the BurstSR val bursts are the user's "
    "download; see docs/burst-sr.md)"
)


def real_models(config: Config) -> list[str]:
    """Scored models evaluated on BurstSR val (none unless ``data.burstsr_root`` is set)."""
    return real_capable(config) if real_planned(config) else []


# -- each job's params -------------------------------------------------------------------------
def _spec(config: Config, model: str) -> dict[str, Any]:
    return {k: v for k, v in _model(config, model).items() if k not in LABELS}


def source(config: Config, split: str) -> dict[str, Any]:
    """The source images of ``split`` ('train' or 'val'): photographs or Zurich."""
    data = _section(config).get("data", {})
    if data.get("source", "photos") == "photos":
        key = "train_photos" if split == "train" else "val_photos"
        return {"source": "photos", "photos_dir": data.get("photos_dir"), key: data.get(key)}
    return {"source": "zurich", "zurich_root": data.get("zurich_root")}


def pwcnet(config: Config) -> dict[str, Any]:
    section = _section(config)
    return {
        "pwcnet_weights": section.get("pwcnet_weights"),
        "pwcnet_bgr": section.get("pwcnet_bgr", False),
    }


def val_params(config: Config) -> dict[str, Any]:
    """The stored validation bursts: burst model, source images and count/seed."""
    section = _section(config)
    return {
        "burst": section["burst"],
        "data": source(config, "val"),
        "val": section["val"],
        "threads": threads(config, "make_val"),
    }


def train_params(config: Config, model: str, seed: int) -> dict[str, Any]:
    """Training one model: its spec and widths, the recipe, bursts, data, device and seed."""
    section, spec = _section(config), _spec(config, model)
    params = {
        "model": model,
        "spec": spec,
        "net": section.get("net", {}),
        "train": {**section["train"], **spec.get("train", {})},
        "burst": section["burst"],
        "data": source(config, "train"),
        "device": section.get("device", "cpu"),
        "seed": seed,
        "threads": threads(config, "train"),
    }
    if spec.get("align") == "pwcnet":
        params.update(pwcnet(config))
    return params


def _scoring(config: Config, model: str, seed: int | None, step: str) -> dict[str, Any]:
    section = _section(config)
    return {
        "model": model,
        **({} if seed is None else {"seed": seed}),
        "spec": _spec(config, model),
        "eval": section["eval"],
        "device": section.get("device", "cpu"),
        "threads": threads(config, step),
    }


def eval_params(config: Config, model: str, seed: int | None = None) -> dict[str, Any]:
    """Scoring one model (a trained one: its run of ``seed``) on the stored validation
    bursts."""
    lpips = _section(config).get("lpips_weights")
    return {**_scoring(config, model, seed, "evaluate"), "lpips_weights": lpips}


def real_params(config: Config, model: str, seed: int | None = None) -> dict[str, Any]:
    """Scoring one model on BurstSR val (AlignedPSNR's flow network included)."""
    return {**_scoring(config, model, seed, "evaluate_real"), **pwcnet(config)}


def method_label(name: str, spec: Mapping[str, Any]) -> str:
    """The summary's method name of one of our models: the published method it reproduces,
    or its own name, marked as an oracle when it aligns with the ground-truth motion."""
    if spec.get("reported_as"):
        return spec["reported_as"]
    if spec["kind"] == "burst" and spec.get("align", "gt") == "gt":
        return f"{name} (oracle: ground-truth flow)"
    return name


def summary_params(config: Config, run: str) -> dict[str, Any]:
    """The summary: each scored model's label, kind and alignment, what the figures show."""
    section = _section(config)
    return {
        "run": run,
        "models": {
            n: {
                "label": method_label(n, _model(config, n)),
                "kind": _model(config, n)["kind"],
                "align": _model(config, n).get("align"),
            }
            for n in scored(config)
        },
        "seeds": seeds(config),
        "real_track": {"models": real_capable(config), "planned": real_planned(config)},
        "eval": {k: section["eval"][k] for k in ("boundary_ignore", "example_index")},
        "source": section.get("data", {}).get("source", "photos"),
        "threads": threads(config, "summary"),
    }


# -- the paper contract (repro.core.papers) ----------------------------------------------------
#: Runtime (minutes) of each step; a training job's is the section's ``runtime``.
RUNTIME = {"make_val": 30, "evaluate": 30, "evaluate_real": 60, "summary": 10}
#: Steps that run models (on ``gpus`` GPUs when set).
GPU_STEPS = ("train", "evaluate", "evaluate_real")


def resources(config: Config, step: str) -> dict[str, Any]:
    """``threads``, ``mem_mb``, ``runtime`` and (model steps) ``gpu`` of one step (make_val,
    train, evaluate, evaluate_real, summary), from the section's ``threads``, ``mem_mb``,
    ``runtime`` (training) and ``gpus``; the summary is small."""
    if step == "summary":
        return {"threads": 1, "mem_mb": 2000, "runtime": RUNTIME["summary"]}
    if step != "train" and step not in RUNTIME:
        raise ReproError(f"{PAPER}: no step '{step}' (steps: {', '.join(['train', *RUNTIME])})")
    section = _section(config)
    res = {
        "threads": int(section.get("threads", 1)),
        "mem_mb": int(section.get("mem_mb", 4000)),
        "runtime": int(section.get("runtime", 60)) if step == "train" else RUNTIME[step],
    }
    if step in GPU_STEPS:
        res["gpu"] = int(section.get("gpus", 0))
    return res


def threads(config: Config, step: str) -> int:
    """The CPU threads of one step (its job's params carry them to the CLI)."""
    return resources(config, step)["threads"]


def check(config: Config) -> list[str]:
    """One-line problems with the ``burst_sr`` section (empty when fine)."""
    section = _section(config)
    problems = []
    for name, spec in section.get("models", {}).items():
        key = f"burst_sr.models.{name}"
        if spec["kind"] == "burst" and spec.get("align", "gt") == "gt" and spec.get("reported_as"):
            problems.append(
                f"{key}.reported_as: align gt aligns with the ground-truth motion (an oracle), "
                f"so it cannot stand on the published '{spec['reported_as']}' row"
            )
        if spec.get("align") == "flownet" and spec.get("flownet") not in models(config, "flownet"):
            problems.append(f"{key}.flownet: no flownet model '{spec.get('flownet')}'")
    try:  # e.g. a crop the SR factor does not divide
        parse(BurstConfig, section.get("burst"), "burst_sr.burst")
    except ReproError as err:
        problems.append(str(err))
    return problems


def source_inputs(config: Config) -> list[str]:
    """The prepared source images the bursts are made from: the photographs, or Zurich
    RAW-to-RGB prepared from its archive (``data.zurich``) unless ``data.zurich_root``
    points at an extracted copy."""
    data = _section(config).get("data", {})
    if data.get("source", "photos") == "photos":
        return ["data/photos/meta.json"]
    return [] if data.get("zurich_root") else ["data/zurich/meta.json"]


def datasets(config: Config) -> set[str]:
    """The prepared datasets the jobs read (``data/<name>/``): :func:`source_inputs`'."""
    return {path.split("/")[1] for path in source_inputs(config)}


def preflight(config: Config, planned: Planned) -> list[str]:
    """The user's files the planned jobs need: a set ``data.burstsr_root`` must hold BurstSR
    ``val/`` (real-track jobs), a set ``lpips_weights`` must exist (evaluations), and PWC-Net
    weights must exist when set and be set for an ``align: pwcnet`` model (trainings and
    real-track jobs). One line each."""
    section = _section(config)
    problems = []
    root = section.get("data", {}).get("burstsr_root")
    if (
        root
        and not os.path.isdir(os.path.join(root, "val"))
        and planned_rules(planned, "burst_sr_evaluate_real")
    ):
        problems.append(
            f"burst_sr.data.burstsr_root: {root}/val is not a folder "
            "(BurstSR val bursts expected, see docs/burst-sr.md)"
        )
    lpips = section.get("lpips_weights")
    if lpips and not os.path.isfile(lpips) and planned_rules(planned, "burst_sr_evaluate"):
        problems.append(f"burst_sr.lpips_weights: {lpips} does not exist (AlexNet state_dict file)")
    if planned_rules(planned, "burst_sr_train", "burst_sr_evaluate_real"):
        problems += _pwcnet_problems(config)
    return problems


def _pwcnet_problems(config: Config) -> list[str]:
    weights = _section(config).get("pwcnet_weights")
    if weights:
        if os.path.isfile(weights):
            return []
        return [f"burst_sr.pwcnet_weights: {weights} does not exist (see docs/burst-sr.md)"]
    needing = [n for n in models(config, "burst") if _model(config, n).get("align") == "pwcnet"]
    return [
        f"burst_sr.models.{n}: align=pwcnet needs burst_sr.pwcnet_weights "
        "(pytorch-pwc's network-default weights; see docs/burst-sr.md)"
        for n in needing[:1]
    ]


def targets(config: Config, results: str) -> list[str]:
    """The paper's final outputs: the summary job's files."""
    return list(summary_files(results).values())


# -- files and wiring (the rule file's paths, inputs, wildcard constraints and flags) ----------
def paper_dir(results: str) -> str:
    """The paper's folder: ``<results>/burst-sr``."""
    return f"{results}/{PAPER}"


def summary_files(results: str) -> dict[str, str]:
    """The summary job's outputs by name (:data:`SUMMARY_FILES` in :func:`paper_dir`)."""
    return {k: f"{paper_dir(results)}/{name}" for k, name in SUMMARY_FILES.items()}


def model_constraint(config: Config, *kinds: str) -> str:
    """A wildcard constraint: the configured model names of ``kinds`` (regex alternation)."""
    return "|".join(models(config, *kinds)) or NEVER


def run_constraint(config: Config, names: Sequence[str]) -> str:
    """A wildcard constraint: run names (:func:`eval_runs`) of the models ``names``:
    ``<model>/seed<k>`` of a trained model, ``<model>`` of an untrained baseline."""
    alternatives = [f"{n}/seed\\d+" if trained(config, n) else n for n in names]
    return "|".join(alternatives) or NEVER


def checkpoint_inputs(results: str, run: str) -> list[str]:
    """The trained model a run's evaluation reads (none for an untrained baseline)."""
    model, seed = run_model(run)
    return [] if seed is None else [model_file(paper_dir(results), model, seed)]


def flownet_inputs(config: Config, results: str, model: str, seed: int) -> list[str]:
    """The flow network a burst model with ``align: flownet`` is trained with (same seed)."""
    spec = _model(config, model)
    if spec.get("align") != "flownet":
        return []
    return [model_file(paper_dir(results), spec["flownet"], seed)]


def option(flag: str, paths: Sequence[str]) -> str:
    """``flag path`` for each path: an optional (or repeated) CLI option's text."""
    return " ".join(f"{flag} {p}" for p in paths)
