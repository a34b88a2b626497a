"""Per-job params: exactly what determines each training or scoring job's output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repro.distill.plan.cells import Cell
from repro.distill.plan.pool import (
    has_init,
    init_key,
    init_weights,
    is_pretrained,
    pretrained_key,
    pretrained_weights,
    recipe,
    train_settings,
    vanilla_recipe,
    variant_args,
)


def _with_init(params: dict[str, Any], pool: Mapping[str, Any], dataset: str, model: str):
    if has_init(pool, dataset, model):
        params["init_weights"] = init_weights(pool, dataset, model)
        params["init_weights_key"] = init_key(dataset, model)
    return params


def kd_params(pool: Mapping[str, Any], cell: Cell) -> dict[str, Any]:
    """Params of a KD student job: exactly what determines its output."""
    spec = pool["variants"][cell.variant]
    params = {
        "dataset": cell.dataset,
        "teacher": cell.teacher,
        "student": cell.student,
        "variant": cell.variant,
        "recipe": cell.recipe,
        "method": spec["method"],
        "args": variant_args(pool, cell.variant, cell.dataset, cell.pair),
        "train": train_settings(pool, cell.recipe, cell.student, cell.seed, cell.variant),
    }
    if is_pretrained(pool, cell.dataset, cell.teacher):
        params["teacher_weights"] = pretrained_weights(pool, cell.dataset, cell.teacher)
        params["teacher_weights_key"] = pretrained_key(cell.dataset, cell.teacher, pool)
    return _with_init(params, pool, cell.dataset, cell.student)


def vanilla_params(pool: Mapping[str, Any], dataset: str, model: str, seed: int) -> dict[str, Any]:
    """Params of a model trained alone with cross-entropy (a teacher or a student baseline)."""
    name = vanilla_recipe(pool, dataset)
    params = {
        "dataset": dataset,
        "teacher": None,
        "student": model,
        "variant": "ce",
        "recipe": name,
        "method": "ce",
        "args": {},
        "train": train_settings(pool, name, model, seed),
    }
    return _with_init(params, pool, dataset, model)


def pretrained_eval_params(pool: Mapping[str, Any], dataset: str, teacher: str) -> dict[str, Any]:
    """Scoring a user-supplied pretrained teacher on the test split: its weights file and the
    dataset's recipe (device, image size, batch size, normalisation)."""
    settings = recipe(pool, vanilla_recipe(pool, dataset))
    settings.pop("student_lr", None)
    return {
        "dataset": dataset,
        "teacher": teacher,
        "teacher_weights": pretrained_weights(pool, dataset, teacher),
        "teacher_weights_key": pretrained_key(dataset, teacher, pool),
        "train": settings,
    }
