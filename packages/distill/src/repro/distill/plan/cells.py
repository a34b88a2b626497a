"""Cells (one KD student run of the pool) and where runs live (the rules, the jobs and the
scorecards use these paths)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Cell:
    """One KD student run of the pool."""

    dataset: str
    teacher: str
    student: str
    variant: str
    recipe: str
    seed: int

    @property
    def pair(self) -> str:
        return f"{self.teacher}-{self.student}"


def split_pair(pair: str) -> tuple[str, str]:
    """``"teacher-student"`` -> (teacher, student)."""
    teacher, sep, student = pair.partition("-")
    if not sep or not teacher or not student or "-" in student:
        raise ValueError(f"pair '{pair}' is not 'teacher-student'")
    return teacher, student


def cell_of(wildcards: Mapping[str, str]) -> Cell:
    """The cell a rule's wildcards name (``dataset``, ``teacher``, ``student``, ``variant``,
    ``recipe``, ``seed``; Snakemake's wildcards or a dict)."""
    w = wildcards
    return Cell(w["dataset"], w["teacher"], w["student"], w["variant"], w["recipe"], int(w["seed"]))


def cell_dir(results: str, cell: Cell) -> str:
    """``<results>/kd/<dataset>/<recipe>/<variant>/<teacher>-<student>/seed<k>``."""
    c = cell
    return f"{results}/kd/{c.dataset}/{c.recipe}/{c.variant}/{c.pair}/seed{c.seed}"


def vanilla_dir(results: str, dataset: str, model: str, seed: int | None) -> str:
    """A model trained alone (``seed<k>``), or a user's pretrained teacher (``pretrained``):
    ``<results>/vanilla/<dataset>/<model>/seed<k>``."""
    return f"{results}/vanilla/{dataset}/{model}/" + (
        "pretrained" if seed is None else f"seed{seed}"
    )


#: Where a KD job's params (:func:`~repro.distill.plan.jobs.kd_params`) name its cell, in
#: :class:`Cell`'s field order.
CELL_KEYS = ("dataset", "teacher", "student", "variant", "recipe", "train.seed")


def params_cell(params: Mapping[str, Any]) -> Cell:
    """The cell whose job :func:`~repro.distill.plan.jobs.kd_params` gave ``params`` (they
    name it: dataset, teacher, student, variant, recipe, and the seed in ``train``), so a job
    that has only its params finds its run folder with :func:`cell_dir`. ValueError names a
    missing or mistyped key."""
    values = []
    for key in CELL_KEYS:
        head, _, tail = key.partition(".")
        value = params.get(head)
        if tail:
            value = value.get(tail) if isinstance(value, Mapping) else None
        wanted, noun = (int, "an integer") if tail else (str, "a string")
        if value is None:
            raise ValueError(f"no '{key}'")
        if type(value) is not wanted:
            raise ValueError(f"'{key}' is {value!r}, not {noun}")
        values.append(value)
    return Cell(*values)
