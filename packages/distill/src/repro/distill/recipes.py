"""Assemble one run's params from a paper's config section (torch-free: the Snakefile uses it).

A paper section holds the shared recipe and per-method / per-student overrides::

    vanilla_train: {...}        # teachers and students trained alone
    student_train: {...}        # every KD student
    method_train: {energy_kd: {epochs: 360, ...}}   # per-method schedule overrides
    student_lr: {ShuffleV1: 0.01}                   # per-student LR (mdistiller's rule)
    method_args: {dkd: {beta: 8}}                   # loss hyper-parameters
    dataset_train: {imagenet: {epochs: 100, ...}}   # per-dataset recipe, merged last
    pretrained_teachers: {imagenet: {resnet34_imagenet: /path/resnet34-b627a593.pth}}
    experiments: [{dataset, teacher, student, methods, method_args?}]

Train settings are layered: base recipe < method_train < student_lr < dataset_train (a
dataset's recipe, like ImageNet's, replaces the CIFAR one wherever it sets a key). A
(dataset, teacher) listed in ``pretrained_teachers`` is not trained here: the KD runs load the
user's torchvision state_dict (``teacher_weights``) instead of a teacher trained alone.
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


def _dataset_train(section: dict[str, Any], dataset: str | None) -> dict[str, Any]:
    return section.get("dataset_train", {}).get(dataset, {}) if dataset else {}


def pretrained_key(dataset: str, teacher: str) -> str:
    """The config key holding the weights file of a pretrained (dataset, teacher)."""
    return f"energy_kd.pretrained_teachers.{dataset}.{teacher}"


def is_pretrained(section: dict[str, Any], dataset: str, teacher: str) -> bool:
    """Whether the teacher of ``dataset`` comes from a user file rather than train_vanilla."""
    return teacher in (section.get("pretrained_teachers", {}).get(dataset) or {})


def pretrained_weights(section: dict[str, Any], dataset: str, teacher: str) -> str | None:
    """The configured weights file of a pretrained teacher (None while it is not set)."""
    return (section.get("pretrained_teachers", {}).get(dataset) or {}).get(teacher)


def vanilla_params(
    section: dict[str, Any], model: str, seed: int, dataset: str | None = None
) -> dict[str, Any]:
    """A model trained alone with cross-entropy (teachers and student baselines)."""
    train = _merge(section["vanilla_train"], {"seed": seed})
    if model in section.get("student_lr", {}):
        train["lr"] = section["student_lr"][model]
    train = _merge(train, _dataset_train(section, dataset))
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
    train = _merge(train, _dataset_train(section, dataset))
    args = _merge(
        section.get("method_args", {}).get(method, {}), exp.get("method_args", {}).get(method)
    )
    if method in ENERGY_METHODS:
        args.setdefault("direction", section.get("direction", "paper"))
    params = {
        "student": student,
        "teacher": teacher,
        "method": method,
        "method_args": args,
        "train": train,
    }
    if is_pretrained(section, dataset, teacher):
        params["teacher_weights"] = pretrained_weights(section, dataset, teacher)
        params["teacher_weights_key"] = pretrained_key(dataset, teacher)
    return params


def pretrained_eval_params(section: dict[str, Any], dataset: str, teacher: str) -> dict[str, Any]:
    """Scoring a user-supplied pretrained teacher on the test split: its weights file and the
    dataset's recipe (device, image size, batch size, normalisation)."""
    train = _merge(section["vanilla_train"], _dataset_train(section, dataset))
    return {
        "teacher": teacher,
        "teacher_weights": pretrained_weights(section, dataset, teacher),
        "teacher_weights_key": pretrained_key(dataset, teacher),
        "train": train,
    }


def pretrained_teachers(section: dict[str, Any]) -> list[tuple[str, str]]:
    """(dataset, teacher) pairs of the experiments whose teacher is a user file."""
    pairs = [(e["dataset"], e["teacher"]) for e in section.get("experiments", [])]
    return [p for p in dict.fromkeys(pairs) if is_pretrained(section, *p)]


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
