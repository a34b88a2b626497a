"""Plan the MHSAN jobs (torch-free: the Snakefile imports it).

Config section ``mhsan`` (schema ``workflow/schemas/mhsan.schema.yaml``, which lists every
parameter key; a test holds it equal to the parameter dataclasses)::

    dataset: synthetic        # synthetic | coco | f30k
    synthetic: {...}          # SyntheticConfig of the generated quick set
    split_file: null          # coco/f30k: the Karpathy split JSON (dataset_coco.json, ...)
    images: null              # coco/f30k: the image root folder
    train: {...}              # RunParams shared by every model (without dataset and seed)
    models:                   # the scorecard's rows: overrides of train, deep-merged
      r1: {model: {heads: 1}}
      r10: {model: {heads: 10}}
    seeds: [0]
    device: cpu
    resources: {gpu: 0, threads: 1, mem_mb: 4000, runtime: 60}

One training job per (model, seed): ``results/<run>/mhsan/runs/<model>/seed<k>/``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SECTION = "mhsan"
SYNTHETIC_DIR = "data/vse-synthetic"
#: Test protocols of each dataset (``repro.vse.evaluate.PROTOCOLS``; ``full``: the whole set).
PROTOCOLS = {"synthetic": ["full"], "coco": ["coco_1k", "coco_5k"], "f30k": ["f30k_1k"]}


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def split_file(section: Mapping[str, Any]) -> str:
    """The Karpathy split JSON the jobs read (the generated one for the synthetic set)."""
    if section["dataset"] == "synthetic":
        return f"{SYNTHETIC_DIR}/dataset_synthetic.json"
    return section["split_file"]


def image_root(section: Mapping[str, Any]) -> str:
    return SYNTHETIC_DIR if section["dataset"] == "synthetic" else section["images"]


def run_params(section: Mapping[str, Any], model: str, seed: int) -> dict[str, Any]:
    """The ``--params`` of one training job (``repro.vse.train.RunParams``)."""
    params = _merge(section["train"], section["models"][model])
    params.update(dataset=section["dataset"], seed=seed)
    params.setdefault("protocols", PROTOCOLS[section["dataset"]])
    return params


def runs(section: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(model, seed) of every training job."""
    return [(m, s) for m in section["models"] for s in section.get("seeds", [0])]


def run_dir(results: str, model: str, seed: int) -> str:
    return f"{results}/mhsan/runs/{model}/seed{seed}"


def report_params(section: Mapping[str, Any]) -> dict[str, Any]:
    """The scorecard job's params: each model's heads and diversity weight, the seeds, the
    protocols and the model whose attention maps the figure shows (most heads, first)."""
    models = {}
    for name in section["models"]:
        p = run_params(section, name, 0)
        models[name] = {
            "heads": p["model"].get("heads", 10),
            "diversity": p.get("loss", {}).get("weight", 0.1) > 0,
        }
    figure = max(models, key=lambda n: (models[n]["heads"], models[n]["diversity"]))
    return {
        "dataset": section["dataset"],
        "models": models,
        "seeds": list(section.get("seeds", [0])),
        "protocols": run_params(section, figure, 0)["protocols"],
        "figure_model": figure,
    }


def check(section: Mapping[str, Any]) -> list[str]:
    """One-line problems the schema cannot see: the user's files (dataset, ImageNet weights)."""
    problems = []
    for name in section["models"]:
        model = run_params(section, name, 0)["model"]
        if model.get("backbone", "resnet152") == "resnet152":
            where = (
                "train.model"
                if "backbone_weights" not in section["models"][name].get("model", {})
                else f"models.{name}.model"
            )
            weights = model.get("backbone_weights")
            if not weights:
                problems.append(
                    f"{SECTION}.{where}.backbone_weights: not set (torchvision's ImageNet "
                    "ResNet-152 state_dict, e.g. resnet152-394f9c45.pth; nothing is downloaded)"
                )
            elif not Path(weights).is_file():
                problems.append(f"{SECTION}.{where}.backbone_weights: {weights} does not exist")
    if section["dataset"] == "synthetic":
        return list(dict.fromkeys(problems))
    for key in ("split_file", "images"):
        value = section.get(key)
        if not value:
            problems.append(f"{SECTION}.{key}: not set (needed for dataset {section['dataset']})")
        elif not Path(value).exists():
            problems.append(f"{SECTION}.{key}: {value} does not exist")
    return list(dict.fromkeys(problems))
