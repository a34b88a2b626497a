"""The pool's recipes and method arguments: how a run's training settings and arguments layer."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from repro.core.papers import schema_file

#: The config section of the KD run pool, and its schema (shared by every paper that reads
#: the pool: the KD papers and fmri-adv).
POOL = "kd"
POOL_SCHEMA = schema_file("repro.distill", POOL)
#: Config keys of a recipe that are not TrainConfig settings.
RECIPE_META = ("extends", "student_lr")
#: Resources of a training job when neither ``kd.resources.<dataset>`` nor ``.default`` sets
#: them.
TRAIN_DEFAULTS = {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpu": 0}


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``over`` merged in, recursing into mappings (copies; neither changes)."""
    out = copy.deepcopy(dict(base))
    for key, value in (over or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def recipe(pool: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Recipe ``name`` with its ``extends`` chain resolved (``student_lr`` kept)."""
    recipes = pool.get("recipes", {})
    chain, seen = [], set()
    while name is not None:
        if name in seen or name not in recipes:
            raise KeyError(name)
        seen.add(name)
        chain.append(recipes[name])
        name = recipes[name].get("extends")
    out: dict[str, Any] = {}
    for part in reversed(chain):
        out = deep_merge(out, {k: v for k, v in part.items() if k != "extends"})
    return out


def train_settings(
    pool: Mapping[str, Any], recipe_name: str, model: str, seed: int, variant: str | None = None
) -> dict[str, Any]:
    """TrainConfig settings of one run: recipe < variant overrides < the student's LR."""
    settings = recipe(pool, recipe_name)
    student_lr = settings.pop("student_lr", {}) or {}
    if variant is not None:
        settings.update(pool["variants"][variant].get("train", {}).get(recipe_name, {}))
    if model in student_lr:
        settings["lr"] = student_lr[model]
    settings["seed"] = seed
    return settings


def variant_args(pool: Mapping[str, Any], variant: str, dataset: str, pair: str) -> dict[str, Any]:
    """The variant's method arguments, then the dataset's and the pair's deep-merged in."""
    spec = pool["variants"][variant]
    data_over = (pool.get("dataset_args") or {}).get(dataset, {}).get(variant)
    pair_over = (pool.get("pair_args") or {}).get(dataset, {}).get(pair, {}).get(variant)
    return deep_merge(deep_merge(spec.get("args", {}), data_over), pair_over)


def run_recipe(pool: Mapping[str, Any], recipe_name: str, variant: str) -> str:
    """The recipe whose runs a (recipe, variant) uses: a recipe that only ``extends`` another
    (no settings of its own) is its parent's alias for a variant that overrides neither, so
    the two are the same runs; followed up the chain."""
    recipes = pool.get("recipes", {})
    overrides = pool.get("variants", {}).get(variant, {}).get("train", {}) or {}
    name = recipe_name
    while name in recipes:
        spec, parent = recipes[name], recipes[name].get("extends")
        if parent is None or set(spec) != {"extends"} or name in overrides or parent in overrides:
            break
        name = parent
    return name


def vanilla_recipe(pool: Mapping[str, Any], dataset: str) -> str:
    """The recipe of models trained alone on ``dataset``."""
    names = pool.get("vanilla_recipes", {})
    return names.get(dataset, names.get("default", "vanilla"))


#: mdistiller's released CIFAR-100 teachers (``cifar_teachers.tar``: CRD's teachers, those of
#: DKD and the three KD papers), by their names in its ``cifar_model_dict``, which are the
#: zoo's.
MDISTILLER_TEACHERS = ("resnet56", "resnet110", "resnet32x4", "ResNet50", "wrn_40_2", "vgg13")


def mdistiller_file(folder: str, teacher: str) -> str:
    """A released teacher's checkpoint in the folder extracted from ``cifar_teachers.tar``."""
    return f"{folder.rstrip('/')}/{teacher}_vanilla/ckpt_epoch_240.pth"


def pretrained_teachers(pool: Mapping[str, Any]) -> dict[str, dict[str, str | None]]:
    """dataset -> {teacher: weights file} of every teacher that is the user's file, not
    trained here: ``kd.mdistiller_teachers.<dataset>`` (the extracted ``cifar_teachers/``
    folder) gives each of :data:`MDISTILLER_TEACHERS` its file there, and
    ``kd.pretrained_teachers.<dataset>.<teacher>`` sets (or overrides) one teacher."""
    teachers: dict[str, dict[str, str | None]] = {}
    for dataset, folder in (pool.get("mdistiller_teachers") or {}).items():
        if folder:
            teachers[dataset] = {t: mdistiller_file(folder, t) for t in MDISTILLER_TEACHERS}
    for dataset, files in (pool.get("pretrained_teachers") or {}).items():
        teachers.setdefault(dataset, {}).update(files or {})
    return teachers


def pretrained_key(dataset: str, teacher: str, pool: Mapping[str, Any] | None = None) -> str:
    """The config key that names the weights file of a pretrained (dataset, teacher): its
    ``kd.pretrained_teachers`` entry, or ``kd.mdistiller_teachers.<dataset>`` when the file
    is the released teacher in that folder."""
    own = ((pool or {}).get("pretrained_teachers") or {}).get(dataset) or {}
    if pool is not None and teacher not in own and is_pretrained(pool, dataset, teacher):
        return f"{POOL}.mdistiller_teachers.{dataset}"
    return f"{POOL}.pretrained_teachers.{dataset}.{teacher}"


def is_pretrained(pool: Mapping[str, Any], dataset: str, teacher: str) -> bool:
    """Whether the teacher of ``dataset`` is the user's file rather than trained here."""
    return teacher in pretrained_teachers(pool).get(dataset, {})


def pretrained_weights(pool: Mapping[str, Any], dataset: str, teacher: str) -> str | None:
    """The configured weights file of a pretrained teacher (None while it is not set)."""
    return pretrained_teachers(pool).get(dataset, {}).get(teacher)


def init_key(dataset: str, model: str) -> str:
    """The config key holding the initial weights of a (dataset, model)."""
    return f"{POOL}.init_weights.{dataset}.{model}"


def has_init(pool: Mapping[str, Any], dataset: str, model: str) -> bool:
    """Whether runs of ``model`` on ``dataset`` start from the user's weights file."""
    return model in ((pool.get("init_weights") or {}).get(dataset) or {})


def init_weights(pool: Mapping[str, Any], dataset: str, model: str) -> str | None:
    """The configured initial weights of a (dataset, model) (None while it is not set)."""
    return ((pool.get("init_weights") or {}).get(dataset) or {}).get(model)


def train_resources(config: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """Snakemake resources of a dataset's training jobs: :data:`TRAIN_DEFAULTS` <
    ``kd.resources.default`` < ``kd.resources.<dataset>`` (``threads`` and, for GPU jobs,
    ``jobs_per_gpu`` included)."""
    table = config.get(POOL, {}).get("resources", {})
    return {**TRAIN_DEFAULTS, **table.get("default", {}), **table.get(dataset, {})}
