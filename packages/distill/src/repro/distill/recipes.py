"""Assemble one run's params from a paper's config section (torch-free: the Snakefile uses it).

A paper section holds the shared recipe and per-method / per-student overrides::

    vanilla_train: {...}        # teachers and students trained alone
    student_train: {...}        # every KD student
    method_train: {energy_kd: {epochs: 360, ...}}   # per-method schedule overrides
    student_lr: {ShuffleV1: 0.01}                   # per-student LR (mdistiller's rule)
    method_args: {dkd: {beta: 8}}                   # loss hyper-parameters
    experiments: [{dataset, teacher, student, methods, method_args?}]
"""

from __future__ import annotations

import copy
from typing import Any

#: Methods with the paper-vs-code temperature direction switch.
ENERGY_METHODS = ("energy_kd", "energy_dkd")


def _merge(base: dict[str, Any], *overrides: dict[str, Any] | None) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for over in overrides:
        out.update(copy.deepcopy(over or {}))
    return out


def vanilla_params(section: dict[str, Any], model: str, seed: int) -> dict[str, Any]:
    """A model trained alone with cross-entropy (teachers and student baselines)."""
    train = _merge(section["vanilla_train"], {"seed": seed})
    if model in section.get("student_lr", {}):
        train["lr"] = section["student_lr"][model]
    return {"student": model, "teacher": None, "method": "ce", "method_args": {}, "train": train}


def experiment_for(
    section: dict[str, Any], dataset: str, teacher: str, student: str
) -> dict[str, Any]:
    """The experiment entry of a (dataset, teacher, student) pair."""
    for exp in section["experiments"]:
        if (exp["dataset"], exp["teacher"], exp["student"]) == (dataset, teacher, student):
            return exp
    raise KeyError(f"no experiment {dataset}: {teacher} -> {student} in the config")


def kd_params(
    section: dict[str, Any], method: str, dataset: str, teacher: str, student: str, seed: int
) -> dict[str, Any]:
    """A KD student run: shared recipe + method schedule + student LR + pair's loss args."""
    exp = experiment_for(section, dataset, teacher, student)
    train = _merge(
        section["student_train"], section.get("method_train", {}).get(method), {"seed": seed}
    )
    if student in section.get("student_lr", {}):
        train["lr"] = section["student_lr"][student]
    args = _merge(
        section.get("method_args", {}).get(method, {}), exp.get("method_args", {}).get(method)
    )
    if method in ENERGY_METHODS:
        args.setdefault("direction", section.get("direction", "paper"))
    return {
        "student": student,
        "teacher": teacher,
        "method": method,
        "method_args": args,
        "train": train,
    }


def kd_runs(section: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (method, dataset, teacher, student, seed) the section asks for."""
    runs = []
    for exp in section["experiments"]:
        for method in exp["methods"]:
            for seed in section["seeds"]:
                runs.append(
                    {
                        "method": method,
                        "dataset": exp["dataset"],
                        "teacher": exp["teacher"],
                        "student": exp["student"],
                        "seed": seed,
                    }
                )
    return runs
