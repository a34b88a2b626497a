"""What the KD rule files (``workflow/rules/common_kd.smk``, ``kd.smk``) ask the plan: input
files, command-line flags, resources and wildcard patterns, as plain lists and strings.
``wildcards`` is a rule's (Snakemake's object or a dict); ``groups`` is :func:`run_groups`'."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repro.distill.plan.cells import Cell, vanilla_dir
from repro.distill.plan.lockstep import Group, group_of, lockstep_inputs
from repro.distill.plan.pool import (
    POOL,
    init_weights,
    is_pretrained,
    pretrained_key,
    pretrained_weights,
    train_resources,
)
from repro.distill.plan.scorecard import report_params, report_runs
from repro.distill.plan.tables import leaderboard_runs, run_leaderboard
from repro.distill.registry import paper as paper_of

#: A regular expression that matches nothing (a wildcard with no allowed value).
NEVER = "(?!x)x"
Groups = Mapping[Group, list[Cell]]


def teacher_model(config: Mapping[str, Any], results: str, dataset: str, model: str) -> str:
    """The ``model.pt`` of a teacher trained here: the model trained alone at
    ``kd.teacher_seed``."""
    seed = config.get(POOL, {}).get("teacher_seed", 0)
    return f"{vanilla_dir(results, dataset, model, seed)}/model.pt"


def teacher_input(
    config: Mapping[str, Any], results: str, wildcards: Mapping[str, str]
) -> list[str]:
    """A KD job's teacher file: its ``model.pt`` trained alone, or the user's pretrained file
    (none while unset: the pre-flight names the key)."""
    pool, dataset, teacher = config.get(POOL, {}), wildcards["dataset"], wildcards["teacher"]
    if is_pretrained(pool, dataset, teacher):
        return _pretrained_file(pool, dataset, teacher)
    return [teacher_model(config, results, dataset, teacher)]


def teacher_arg(config: Mapping[str, Any], results: str, wildcards: Mapping[str, str]) -> str:
    """``--teacher <model.pt>`` for a teacher trained here; a pretrained one's file is in the
    job's params."""
    if is_pretrained(config.get(POOL, {}), wildcards["dataset"], wildcards["teacher"]):
        return ""
    return f"--teacher {teacher_model(config, results, wildcards['dataset'], wildcards['teacher'])}"


def pretrained_input(config: Mapping[str, Any], wildcards: Mapping[str, str]) -> list[str]:
    """The user's weights file of a pretrained teacher scored here (none while unset)."""
    return _pretrained_file(config.get(POOL, {}), wildcards["dataset"], wildcards["model"])


def _pretrained_file(pool: Mapping[str, Any], dataset: str, teacher: str) -> list[str]:
    """A pretrained teacher's file as a job input: none while unset, and a released teacher
    of ``kd.mdistiller_teachers`` none until it is in the folder (the pre-flight names the key
    either way, and a dry run still plans the jobs)."""
    path = pretrained_weights(pool, dataset, teacher)
    released = pretrained_key(dataset, teacher, pool).startswith(f"{POOL}.mdistiller_teachers.")
    if path and released and not Path(path).is_file():
        return []
    return _file(path)


def init_input(config: Mapping[str, Any], dataset: str, model: str) -> list[str]:
    """The user's initial weights of runs of ``model`` on ``dataset`` (``kd.init_weights``),
    if any."""
    return _file(init_weights(config.get(POOL, {}), dataset, model))


def _file(path: str | None) -> list[str]:
    return [path] if path else []


def jobs_per_gpu(config: Mapping[str, Any], dataset: str) -> int:
    """How many of a dataset's training jobs may share a GPU (``kd.resources.<dataset>``)."""
    return train_resources(config, dataset).get("jobs_per_gpu", 1)


def group_runtime(config: Mapping[str, Any], groups: Groups, wildcards: Mapping[str, str]) -> int:
    """A group job's runtime (minutes, first attempt): the dataset's per-cell runtime times
    its cells (a bound: the shared teacher forward makes it shorter)."""
    per_cell = train_resources(config, wildcards["dataset"])["runtime"]
    return per_cell * len(group_of(groups, wildcards))


def report_inputs(config: Mapping[str, Any], results: str, paper: str, groups: Groups) -> list[str]:
    """Every result.json a KD paper's scorecard reads (a grouped cell's: its group's marker)."""
    return lockstep_inputs(results, groups, report_runs(results, report_params(config, paper)))


def figure_inputs(config: Mapping[str, Any], results: str, paper: str, groups: Groups) -> list[str]:
    """What a KD paper's own figures read besides the results (its module's
    ``figure_inputs``; a grouped cell's model: its group's marker)."""
    return lockstep_inputs(results, groups, paper_of(paper).figure_inputs(config, results))


def leaderboard_inputs(config: Mapping[str, Any], results: str, groups: Groups) -> list[str]:
    """Every result.json the fair leaderboard reads (none when the run has no leaderboard)."""
    board = run_leaderboard(config)
    return lockstep_inputs(results, groups, leaderboard_runs(results, board) if board else [])


def variant_pattern(config: Mapping[str, Any]) -> str:
    """The ``variant`` wildcard's pattern: the pool's variants."""
    return "|".join(config.get(POOL, {}).get("variants", {})) or NEVER


def recipe_pattern(config: Mapping[str, Any]) -> str:
    """The ``recipe`` wildcard's pattern: the pool's recipes."""
    return "|".join(config.get(POOL, {}).get("recipes", {})) or NEVER
