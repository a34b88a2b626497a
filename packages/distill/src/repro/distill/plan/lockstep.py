"""Lockstep groups (``kd.lockstep``): the cells of one dataset, pair and seed that draw the same
batches, trained in one job (:mod:`repro.distill.lockstep`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from repro.distill.plan.cells import Cell, cell_dir
from repro.distill.plan.jobs import kd_params
from repro.distill.plan.pool import POOL, deep_merge
from repro.distill.plan.tables import pool_cells, run_papers

#: TrainConfig settings that determine a run's batches and their augmentation, the process's
#: device and threads, and the precision the group's prepare step and shared teacher forward
#: run at: the cells of a lockstep group agree on them; the rest (epochs, lr, schedule, ...)
#: may differ per cell (repro.distill.lockstep).
SHARED_SETTINGS = (
    "seed", "batch_size", "device", "crop_padding", "flip", "mean", "std", "channels_last",
    "threads", "workers", "image_size", "sync_bn", "amp", "cpu_bf16", "teacher_precision",
)  # fmt: skip
#: Params keys the cells of a group share: one dataset, one teacher (weights), one student
#: initialisation file.
GROUP_KEYS = ("dataset", "teacher", "teacher_weights", "init_weights")
GROUPS_DIR = "kd-groups"


def _group_key(params: Mapping[str, Any]) -> str:
    """Short hash of what a group's cells must share besides (dataset, pair, seed)."""
    train = params.get("train", {})
    shared = {
        "train": {k: train.get(k) for k in SHARED_SETTINGS},
        **{k: params.get(k) for k in GROUP_KEYS},
    }
    blob = json.dumps(shared, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


@dataclass(frozen=True, order=True)
class Group:
    """The cells of one (dataset, teacher-student, seed) that draw the same batches."""

    dataset: str
    teacher: str
    student: str
    seed: int
    key: str  # hash of the shared data settings and the cells (_members_key)

    @property
    def pair(self) -> str:
        return f"{self.teacher}-{self.student}"


def lockstep_groups(pool: Mapping[str, Any], cells: Iterable[Cell]) -> dict[Group, list[Cell]]:
    """The lockstep groups of ``cells`` with two cells or more: cells of one dataset, pair and
    seed whose batches are the same (equal ``SHARED_SETTINGS``, teacher and initial weights),
    whatever their recipe, epochs, learning rate or method. Cells of different epoch counts
    share a group: they step together while both train, the longer goes on alone. A cell in
    no group (alone in its row) trains alone."""
    by_group: dict[Group, list[Cell]] = {}
    for cell in cells:
        params = kd_params(pool, cell)
        group = Group(cell.dataset, cell.teacher, cell.student, cell.seed, _group_key(params))
        by_group.setdefault(group, []).append(cell)
    return {
        replace(g, key=_members_key(g.key, cs)): sorted(cs)
        for g, cs in sorted(by_group.items())
        if len(cs) > 1
    }


def _members_key(shared: str, cells: Iterable[Cell]) -> str:
    """The group's marker name: its shared settings' hash and which cells (variant, recipe)
    it trains. A group whose cells change (a seed a table adds, a variant dropped) is another
    job with another marker, so changing the config back finds the first marker up to date
    and reruns nothing; an edit to a cell's arguments keeps the name and reruns the group."""
    members = sorted({(c.variant, c.recipe) for c in cells})
    blob = json.dumps([shared, members], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def run_groups(config: Mapping[str, Any]) -> dict[Group, list[Cell]]:
    """The lockstep groups of this run's cells (every KD paper's and the leaderboard's), or
    none when ``kd.lockstep`` is off."""
    pool = config.get(POOL, {})
    if not pool.get("lockstep"):
        return {}
    return lockstep_groups(pool, pool_cells(config, run_papers(config)))


def group_of(groups: Mapping[Group, list[Cell]], wildcards: Mapping[str, str]) -> list[Cell]:
    """The cells of the group job a rule's wildcards name (``dataset``, ``teacher``,
    ``student``, ``seed``, ``key``)."""
    w = wildcards
    return groups[Group(w["dataset"], w["teacher"], w["student"], int(w["seed"]), w["key"])]


def group_file(results: str, group: Group) -> str:
    """The group job's marker: ``<results>/kd-groups/<dataset>/<pair>/seed<k>/<key>.json``
    (the cells' run folders and results, written when every cell is done)."""
    g = group
    return f"{results}/{GROUPS_DIR}/{g.dataset}/{g.pair}/seed{g.seed}/{g.key}.json"


def group_params(pool: Mapping[str, Any], cells: Iterable[Cell]) -> dict[str, Any]:
    """Params of a group job: what its cells' params share (``common``) and, in the group's
    order, what each cell adds (``cells``); :func:`expand_group` gives back each cell's params
    exactly. Factoring keeps the printed command short (a 16-cell CIFAR-100 row: 10 k
    characters as full params, a third of it factored)."""
    runs = [kd_params(pool, c) for c in cells]
    common = _common(runs)
    return {"common": common, "cells": [_without(run, common) for run in runs]}


def expand_group(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each cell's full params from :func:`group_params`' ``{"common": ..., "cells": [...]}``
    (``common`` may be absent: the cells are then complete)."""
    return [deep_merge(params.get("common") or {}, cell) for cell in params["cells"]]


def _common(runs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The keys (recursing into mappings) whose values every run of ``runs`` has equal."""
    common: dict[str, Any] = {}
    for key, value in runs[0].items():
        if not all(key in r for r in runs):
            continue
        values = [r[key] for r in runs]
        if all(isinstance(v, Mapping) for v in values):
            sub = _common(values)
            if sub:
                common[key] = sub
        elif all(v == value and type(v) is type(value) for v in values):
            common[key] = value
    return common


def _without(run: Mapping[str, Any], common: Mapping[str, Any]) -> dict[str, Any]:
    """``run`` less what ``common`` holds (the inverse of ``deep_merge(common, ...)``)."""
    rest: dict[str, Any] = {}
    for key, value in run.items():
        if key not in common:
            rest[key] = value
        elif isinstance(common[key], Mapping):
            sub = _without(value, common[key])
            if sub:
                rest[key] = sub
    return rest


def lockstep_inputs(
    results: str, groups: Mapping[Group, list[Cell]], files: Iterable[str]
) -> list[str]:
    """``files`` with each grouped cell's ``result.json``/``model.pt`` replaced by its group's
    marker (a job that reads a cell's files then waits for the group that writes them)."""
    owner = {
        f"{cell_dir(results, c)}/{name}": group_file(results, g)
        for g, cs in groups.items()
        for c in cs
        for name in ("result.json", "model.pt")
    }
    return list(dict.fromkeys(owner.get(f, f) for f in files))


def grouped_cell_targets(
    results: str,
    groups: Mapping[Group, list[Cell]],
    planned: Iterable[tuple[str, Mapping[str, str]]],
) -> list[str]:
    """The ``result.json`` of every cell of the group jobs in ``planned``. A group job writes
    its cells' files, which Snakemake cannot declare as its outputs; after the run the
    workflow records them as the cells' own ``train_kd`` outputs (``--touch``), so a cell asked
    for alone later finds its metadata (no "missing provenance/metadata" line)."""
    return [
        f"{cell_dir(results, cell)}/result.json"
        for rule, wildcards in planned
        if rule == "train_kd_group"
        for cell in group_of(groups, wildcards)
    ]
