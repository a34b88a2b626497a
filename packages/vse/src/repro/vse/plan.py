"""Plan the MHSAN jobs (torch-free: the Snakefile imports it); the paper ``mhsan`` of the
registry :mod:`repro.core.papers` (``SCHEMAS``, ``check``, ``datasets``, ``preflight``,
``targets``, ``resources``), and the values ``workflow/rules/mhsan.smk`` wires into its rules.

Config section ``mhsan`` (schema ``schemas/mhsan.schema.yaml`` of this package, which lists every
parameter key; a test holds it equal to the parameter dataclasses)::

    datasets:                 # every dataset the run trains and reports (one table per protocol)
      coco: {split_file: null, images: null}    # the Karpathy split JSON, the image root
      f30k:                                     # overrides for one dataset, deep-merged:
        split_file: null                        #   train (over mhsan.train), then
        images: null                            #   models.<model> (over mhsan.models.<model>)
        models: {r10: {model: {bidirectional: true}}}
        # only: [r10]                           # train and report only these models here
      # quick: synthetic: {}  (generated from mhsan.synthetic; no files to set)
    synthetic: {...}          # SyntheticConfig of the generated quick set
    test_images: null         # scale key: every protocol's test-set size (null: official)
    train: {...}              # RunParams shared by every dataset and model (without dataset, seed)
    models:                   # the scorecard's rows: overrides of train, deep-merged
      r1: {model: {heads: 1}}
      r10: {model: {heads: 10}}
    seeds: [0]
    device: cpu               # the training jobs' (and their cache: true, on disk)
    resources: {gpu: 0, threads: 1, mem_mb: 4000, runtime: 60}   # the training jobs'

A run's params, deep-merged in this order: ``train``, ``datasets.<d>.train``, ``models.<m>``,
``datasets.<d>.models.<m>``; then its dataset, seed, protocols (by default the dataset's) and
``test_images`` when set (:func:`run_params`); the job gets them with its settings ``device``,
``threads`` and ``cache`` (:func:`train_params`).
One training job per (dataset, model, seed): ``results/<run>/mhsan/runs/<d>/<m>/seed<k>/``,
the frozen-backbone feature cache per dataset (``results/<run>/mhsan/cache/<d>/``), and one
scorecard with a table per (dataset, protocol).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repro.core.papers import Planned, planned_rules, schema_file
from repro.vse.protocols import DATASET_PROTOCOLS, PROTOCOLS

SECTION = "mhsan"
#: The config section this paper reads and its schema (this package's schemas/).
SCHEMAS = {SECTION: schema_file("repro.vse", SECTION)}
NEVER = "(?!x)x"  # a wildcard constraint that matches nothing
#: Each step's resources; ``mhsan.resources`` overrides the training jobs'.
RESOURCES = {
    "synthetic": {"threads": 1, "mem_mb": 2000, "runtime": 10, "gpu": 0},
    "train": {"threads": 1, "mem_mb": 4000, "runtime": 60, "gpu": 0},
    "report": {"threads": 1, "mem_mb": 4000, "runtime": 20, "gpu": 0},
}
#: The scorecard job's outputs under results/<run>/mhsan/ (the paper's targets).
REPORT_FILES = {
    "csv": "summary.csv",
    "html": "summary.html",
    "md": "summary.md",
    "runs": "runs.csv",
    "attention": "figures/attention.png",
    "heads": "figures/recall_vs_heads.png",
    "provenance": "provenance.json",
}
SYNTHETIC = "synthetic"
SYNTHETIC_DIR = "data/vse-synthetic"
#: Test protocols of each dataset (``repro.vse.protocols``; ``full``: the whole test set).
PROTOCOLS_OF = {name: list(p) for name, p in DATASET_PROTOCOLS.items()}
#: The user's files of a real dataset: key -> what it is.
USER_FILES = {
    "split_file": "the Karpathy split JSON",
    "images": "the image root folder",
}
SPLIT_FILES = {"coco": "dataset_coco.json", "f30k": "dataset_flickr30k.json"}


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def train_datasets(section: Mapping[str, Any]) -> list[str]:
    """The datasets the run trains on, in config order."""
    return list(section["datasets"])


def _dataset(section: Mapping[str, Any], dataset: str) -> Mapping[str, Any]:
    return section["datasets"][dataset] or {}


def dataset_models(section: Mapping[str, Any], dataset: str) -> list[str]:
    """The models a dataset trains and reports: its ``only`` list, or every model of
    ``mhsan.models`` (the paper: every model on every dataset)."""
    return list(_dataset(section, dataset).get("only") or section["models"])


def split_file(section: Mapping[str, Any], dataset: str) -> str:
    """The Karpathy split JSON a dataset's jobs read (the generated one for the synthetic set)."""
    if dataset == SYNTHETIC:
        return f"{SYNTHETIC_DIR}/dataset_synthetic.json"
    return _dataset(section, dataset).get("split_file")


def image_root(section: Mapping[str, Any], dataset: str) -> str:
    if dataset == SYNTHETIC:
        return SYNTHETIC_DIR
    return _dataset(section, dataset).get("images")


def generated_inputs(section: Mapping[str, Any], dataset: str) -> list[str]:
    """Files the workflow makes before a dataset's jobs (the synthetic split file)."""
    return [split_file(section, dataset)] if dataset == SYNTHETIC else []


def run_params(section: Mapping[str, Any], dataset: str, model: str, seed: int) -> dict[str, Any]:
    """The ``--params`` of one training job (``repro.vse.train.RunParams``)."""
    own = _dataset(section, dataset)
    params = _merge(section["train"], own.get("train", {}))
    params = _merge(params, section["models"][model])
    params = _merge(params, own.get("models", {}).get(model, {}))
    params.update(dataset=dataset, seed=seed)
    params.setdefault("protocols", PROTOCOLS_OF[dataset])
    if section.get("test_images") is not None:  # absent when null: official sizes
        params["test_images"] = section["test_images"]
    return params


def runs(section: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(dataset, model, seed) of every training job."""
    return [
        (d, m, s) for d in train_datasets(section) for m in dataset_models(section, d)
        for s in section.get("seeds", [0])
    ]  # fmt: skip


def run_dir(results: str, dataset: str, model: str, seed: int) -> str:
    return f"{results}/mhsan/runs/{dataset}/{model}/seed{seed}"


def cache_dir(results: str, dataset: str) -> str:
    """The frozen-backbone feature cache of one dataset's runs (keyed inside by the backbone's
    weights and the preprocessing)."""
    return f"{results}/mhsan/cache/{dataset}"


def report_params(section: Mapping[str, Any]) -> dict[str, Any]:
    """The scorecard job's params: per dataset, each model's heads and diversity weight and
    the protocols; the seeds; the (dataset, model) whose attention maps the figure shows (the
    first dataset's model with most heads, diversity first); ``test_images`` when set."""
    out: dict[str, Any] = {"datasets": {}, "seeds": list(section.get("seeds", [0]))}
    for dataset in train_datasets(section):
        models = {}
        protocols: list[str] = []
        for name in dataset_models(section, dataset):
            p = run_params(section, dataset, name, 0)
            models[name] = {
                "heads": p["model"].get("heads", 10),
                "diversity": p.get("loss", {}).get("weight", 0.1) > 0,
            }
            protocols += [x for x in p["protocols"] if x not in protocols]
        out["datasets"][dataset] = {"models": models, "protocols": protocols}
    first = train_datasets(section)[0]
    models = out["datasets"][first]["models"]
    figure = max(models, key=lambda n: (models[n]["heads"], models[n]["diversity"]))
    out["figure"] = {"dataset": first, "model": figure}
    if section.get("test_images") is not None:
        out["test_images"] = section["test_images"]
    return out


def _protocol_problems(section: Mapping[str, Any]) -> list[str]:
    test_images = section.get("test_images")
    if test_images is None:
        return []
    problems = []
    for dataset in train_datasets(section):
        for model in dataset_models(section, dataset):
            for protocol in run_params(section, dataset, model, 0)["protocols"]:
                folds = PROTOCOLS.get(protocol, (None, 1))[1]
                if test_images % folds:
                    problems.append(
                        f"{SECTION}.test_images: {test_images} is not a multiple of {folds} "
                        f"(protocol {protocol} of {SECTION}.datasets.{dataset} averages "
                        f"{folds} equal folds)"
                    )
    return problems


def _naming_problems(section: Mapping[str, Any]) -> list[str]:
    problems = []
    for dataset in train_datasets(section):
        own = _dataset(section, dataset)
        named = [(f"models.{n}", n) for n in own.get("models", {})]
        named += [(f"only: {n}", n) for n in own.get("only") or []]
        for where, name in named:
            if name not in section["models"]:
                problems.append(
                    f"{SECTION}.datasets.{dataset}.{where}: no such model in "
                    f"{SECTION}.models ({', '.join(section['models'])})"
                )
    return problems


def section_problems(section: Mapping[str, Any]) -> list[str]:
    """One-line problems of the section the schema cannot see: overrides naming no model, a
    protocol not of its dataset, a ``test_images`` the folds do not divide."""
    problems = _naming_problems(section)
    if problems:
        return problems
    for dataset in train_datasets(section):
        allowed = ["full", *PROTOCOLS_OF[dataset]]
        for name in dataset_models(section, dataset):
            for protocol in run_params(section, dataset, name, 0)["protocols"]:
                if protocol not in allowed:
                    problems.append(
                        f"{SECTION}.datasets.{dataset}: protocol {protocol} is not one of "
                        f"{dataset}'s ({', '.join(allowed)})"
                    )
    problems += _protocol_problems(section)
    return list(dict.fromkeys(problems))


def user_file_problems(section: Mapping[str, Any]) -> list[str]:
    """One-line problems with the user's files: each dataset's split file and images and the
    ImageNet weights of a ResNet-152 backbone (unset, or not there)."""
    if _naming_problems(section):
        return []  # the config check stops the run first
    problems = []
    for dataset in train_datasets(section):
        own = _dataset(section, dataset)
        for name in dataset_models(section, dataset):
            model = run_params(section, dataset, name, 0)["model"]
            if model.get("backbone", "resnet152") != "resnet152":
                continue
            if "backbone_weights" in own.get("models", {}).get(name, {}).get("model", {}):
                where = f"datasets.{dataset}.models.{name}.model"
            elif "backbone_weights" in section["models"][name].get("model", {}):
                where = f"models.{name}.model"
            elif "backbone_weights" in own.get("train", {}).get("model", {}):
                where = f"datasets.{dataset}.train.model"
            else:
                where = "train.model"
            weights = model.get("backbone_weights")
            if not weights:
                problems.append(
                    f"{SECTION}.{where}.backbone_weights: not set (torchvision's ImageNet "
                    "ResNet-152 state_dict, e.g. resnet152-394f9c45.pth; nothing is downloaded)"
                )
            elif not Path(weights).is_file():
                problems.append(f"{SECTION}.{where}.backbone_weights: {weights} does not exist")
    for dataset in train_datasets(section):
        if dataset == SYNTHETIC:
            continue
        own = _dataset(section, dataset)
        for key, what in USER_FILES.items():
            value = own.get(key)
            where = f"{SECTION}.datasets.{dataset}.{key}"
            if not value:
                example = f", e.g. {SPLIT_FILES[dataset]}" if key == "split_file" else ""
                problems.append(f"{where}: not set ({what} of {dataset}{example})")
            elif not Path(value).exists():
                problems.append(f"{where}: {value} does not exist")
    return list(dict.fromkeys(problems))


# ---------------------------------------------------------------- the paper contract


def _section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get(SECTION) or {}


def _on(config: Mapping[str, Any]) -> bool:
    """Whether the run reproduces this paper (the rule file is read either way)."""
    return SECTION in config.get("papers", []) and bool(_section(config))


def check(config: Mapping[str, Any]) -> list[str]:
    """Config problems (:func:`section_problems`); the run stops on any at start-up."""
    return section_problems(_section(config)) if _on(config) else []


def datasets(config: Mapping[str, Any]) -> set[str]:
    """Prepared datasets under data/ the jobs read: none (the quick set is this paper's own
    job, COCO and Flickr30K are the user's files)."""
    return set()


def preflight(config: Mapping[str, Any], planned: Planned) -> list[str]:
    """The user's files (:func:`user_file_problems`) when a training or scorecard job is
    planned."""
    if not _on(config) or not planned_rules(planned, "mhsan_train", "mhsan_report"):
        return []
    return user_file_problems(_section(config))


def report_outputs(results: str) -> dict[str, str]:
    """The scorecard job's outputs by name."""
    return {name: f"{results}/{SECTION}/{path}" for name, path in REPORT_FILES.items()}


def targets(config: Mapping[str, Any], results: str) -> list[str]:
    """The scorecard job's outputs."""
    return list(report_outputs(results).values()) if _on(config) else []


def resources(config: Mapping[str, Any], step: str) -> dict[str, Any]:
    """``synthetic``, ``train`` or ``report``: :data:`RESOURCES`, the training jobs' with
    ``mhsan.resources`` over them."""
    own = _section(config).get("resources", {}) if step == "train" else {}
    return {**RESOURCES[step], **own}


# ---------------------------------------------------------------- values the rules wire


def dataset_pattern(config: Mapping[str, Any]) -> str:
    """The training jobs' ``dataset`` wildcard: the run's datasets (none when off)."""
    return "|".join(train_datasets(_section(config))) if _on(config) else NEVER


def model_pattern(config: Mapping[str, Any]) -> str:
    """The training jobs' ``model`` wildcard: the section's models (none when off)."""
    return "|".join(_section(config).get("models", {})) or NEVER


def train_params(config: Mapping[str, Any], dataset: str, model: str, seed: int) -> dict:
    """A training job's ``--params``: :func:`run_params` and the settings that do not change
    its output (``repro.vse.train.SETTINGS``): the section's device and disk cache, the
    job's threads."""
    section = _section(config)
    return {
        **run_params(section, dataset, model, seed),
        "device": section.get("device", "cpu"),
        "threads": resources(config, "train")["threads"],
        "cache": section.get("cache", True),
    }


def run_results(config: Mapping[str, Any], results: str) -> list[str]:
    """``result.json`` of every training job (the scorecard's inputs; none when off)."""
    if not _on(config):
        return []
    return [f"{run_dir(results, *run)}/result.json" for run in runs(_section(config))]


def report_job(config: Mapping[str, Any]) -> dict[str, Any]:
    """The scorecard job's ``--params`` (:func:`report_params`; empty when off)."""
    return report_params(_section(config)) if _on(config) else {}


def _figure_dataset(config: Mapping[str, Any]) -> str | None:
    return report_job(config)["figure"]["dataset"] if _on(config) else None


def figure_inputs(config: Mapping[str, Any]) -> list[str]:
    """Files the workflow makes that the scorecard's figure reads (the synthetic split)."""
    dataset = _figure_dataset(config)
    return generated_inputs(_section(config), dataset) if dataset else []


def figure_split_file(config: Mapping[str, Any]) -> str | None:
    """The split file of the figure's dataset (the scorecard job draws one test image)."""
    dataset = _figure_dataset(config)
    return split_file(_section(config), dataset) if dataset else None


def figure_images(config: Mapping[str, Any]) -> str | None:
    """The image root of the figure's dataset."""
    dataset = _figure_dataset(config)
    return image_root(_section(config), dataset) if dataset else None
