"""Plan the KD run pool shared by the three KD papers (torch-free: the Snakefile imports it).

The pool (config section ``kd``) holds what the papers share; each paper's section lists the
tables it reports, and its summary is a view over the pool::

    kd:
      seeds: [0, 1, 2, 3, 4]          # default seeds of every table
      teacher_seed: 0                 # the teacher every KD cell distils from
      recipes:                        # named training recipes (TrainConfig keys)
        cifar: {epochs: 240, lr: 0.05, ..., student_lr: {ShuffleV1: 0.01}}
        cifar_360: {extends: cifar, epochs: 360}
      vanilla_recipes: {default: cifar, imagenet: imagenet}   # models trained alone
      variants:                       # named method variants: method, arguments, and recipe
        kd: {method: kd}              # overrides per recipe name
        energy_kd: {method: kd, args: {temperature: {policy: energy}},
                    train: {cifar: {epochs: 360}}}
      dataset_args: {tinyimagenet: {r2kd_cutout: {cutout_size: 16}}}  # per dataset, deep-merged
      pair_args: {cifar100: {vgg13-vgg8: {dkd: {beta: 6}}}}  # per pair, deep-merged
      pretrained_teachers: {imagenet: {resnet34_imagenet: /path/resnet34-b627a593.pth}}
      init_weights: {cub200: {resnet18_imagenet: /path/resnet18-f37072fd.pth}}  # start from
      resources: {default: {...}, cifar100: {gpu: 1, ...}}   # Snakemake resources per dataset
    energy_kd:
      tables:
        - {title: CIFAR-100, dataset: cifar100, recipe: cifar, pairs: [resnet32x4-resnet8x4],
           variants: [kd, dkd, energy_kd], seeds: [0, 1, 2, 3, 4], reported_only: [mlkd]}
    kd_leaderboard: {dataset: cifar100, recipe: fair, pairs: [...], variants: [...],
                     seeds: [0, 1, 2, 3, 4], baseline: kd}

A *cell* is (dataset, teacher, student, variant, recipe, seed); a cell that two tables (or two
papers, or the leaderboard) ask for is planned once. A recipe that only ``extends`` another (an
alias, e.g. the leaderboard's ``fair: {extends: cifar}``) shares its parent's runs for every
variant that overrides neither (:func:`run_recipe`): the runs are the same, so they are trained
once. ``reported_only`` variants of a table (published baselines we do not implement, e.g.
MLKD) are scorecard rows with the reported number and an empty ours, never planned. A teacher
is trained once per (dataset, model, teacher_seed), whichever paper asks for it, unless
``pretrained_teachers`` names the user's weights file.
Training settings layer as: recipe < the variant's overrides for that recipe < the recipe's
``student_lr`` for the student; method arguments as: the variant's < ``dataset_args`` <
``pair_args``. ``init_weights`` starts every run of a (dataset, model), trained alone or as a
student, from the user's weights file (e.g. ImageNet-pretrained ResNets for the fine-grained
sets; the classifier is new). Each job's params are exactly what determines its output.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from repro.distill.registry import check_method

#: KD papers -> their config sections.
PAPERS = {"energy-kd": "energy_kd", "cskd": "cskd", "r2kd": "r2kd"}
POOL = "kd"
#: The fair KD leaderboard's config section and results folder.
LEADERBOARD, LEADERBOARD_DIR = "kd_leaderboard", "kd-leaderboard"
#: Config keys of a recipe that are not TrainConfig settings.
RECIPE_META = ("extends", "student_lr")


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


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any] | None) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in (over or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def split_pair(pair: str) -> tuple[str, str]:
    """``"teacher-student"`` -> (teacher, student)."""
    teacher, sep, student = pair.partition("-")
    if not sep or not teacher or not student or "-" in student:
        raise ValueError(f"pair '{pair}' is not 'teacher-student'")
    return teacher, student


# -- recipes and arguments ---------------------------------------------------------------------
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
        out = _deep_merge(out, {k: v for k, v in part.items() if k != "extends"})
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
    return _deep_merge(_deep_merge(spec.get("args", {}), data_over), pair_over)


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


def pretrained_key(dataset: str, teacher: str) -> str:
    """The config key holding the weights file of a pretrained (dataset, teacher)."""
    return f"{POOL}.pretrained_teachers.{dataset}.{teacher}"


def is_pretrained(pool: Mapping[str, Any], dataset: str, teacher: str) -> bool:
    """Whether the teacher of ``dataset`` is the user's file rather than trained here."""
    return teacher in (pool.get("pretrained_teachers", {}).get(dataset) or {})


def pretrained_weights(pool: Mapping[str, Any], dataset: str, teacher: str) -> str | None:
    """The configured weights file of a pretrained teacher (None while it is not set)."""
    return (pool.get("pretrained_teachers", {}).get(dataset) or {}).get(teacher)


def init_key(dataset: str, model: str) -> str:
    """The config key holding the initial weights of a (dataset, model)."""
    return f"{POOL}.init_weights.{dataset}.{model}"


def has_init(pool: Mapping[str, Any], dataset: str, model: str) -> bool:
    """Whether runs of ``model`` on ``dataset`` start from the user's weights file."""
    return model in ((pool.get("init_weights") or {}).get(dataset) or {})


def init_weights(pool: Mapping[str, Any], dataset: str, model: str) -> str | None:
    """The configured initial weights of a (dataset, model) (None while it is not set)."""
    return ((pool.get("init_weights") or {}).get(dataset) or {}).get(model)


def _with_init(params: dict[str, Any], pool: Mapping[str, Any], dataset: str, model: str):
    if has_init(pool, dataset, model):
        params["init_weights"] = init_weights(pool, dataset, model)
        params["init_weights_key"] = init_key(dataset, model)
    return params


# -- per-job params ----------------------------------------------------------------------------
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
        params["teacher_weights_key"] = pretrained_key(cell.dataset, cell.teacher)
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
        "teacher_weights_key": pretrained_key(dataset, teacher),
        "train": settings,
    }


# -- tables and cells --------------------------------------------------------------------------
def _table(pool: Mapping[str, Any], table: Mapping[str, Any], title: str) -> dict[str, Any]:
    """A table with its seeds filled in from the pool and, per variant, the recipe whose runs
    it reads (:func:`run_recipe`; listed only where it differs from the table's)."""
    variants = list(table["variants"])
    runs = {v: run_recipe(pool, table["recipe"], v) for v in variants}
    out = {
        "title": table.get("title") or title,
        "dataset": table["dataset"],
        "recipe": table["recipe"],
        "pairs": list(table["pairs"]),
        "variants": variants,
        "seeds": list(table.get("seeds", pool.get("seeds", [0]))),
    }
    shared = {v: r for v, r in runs.items() if r != table["recipe"]}
    if shared:
        out["run_recipes"] = shared
    if table.get("reported_only"):
        out["reported_only"] = list(table["reported_only"])
    return out


def tables(config: Mapping[str, Any], paper: str) -> list[dict[str, Any]]:
    """The tables a KD paper reports, with seeds filled in from the pool."""
    pool = config.get(POOL, {})
    section = config.get(PAPERS[paper], {})
    return [
        _table(pool, table, f"{table['dataset']} ({i + 1})")
        for i, table in enumerate(section.get("tables", []))
    ]


def _table_cells(table: Mapping[str, Any]) -> list[Cell]:
    cells = []
    shared = table.get("run_recipes", {})
    for pair in table["pairs"]:
        teacher, student = split_pair(pair)
        for variant in table["variants"]:
            recipe_name = shared.get(variant, table["recipe"])
            for seed in table["seeds"]:
                cells.append(Cell(table["dataset"], teacher, student, variant, recipe_name, seed))
    return cells


def paper_cells(config: Mapping[str, Any], paper: str) -> list[Cell]:
    """Every KD cell of a paper's tables."""
    return list(dict.fromkeys(c for t in tables(config, paper) for c in _table_cells(t)))


def pool_cells(config: Mapping[str, Any], papers: Iterable[str]) -> list[Cell]:
    """The union of the KD papers' cells (and the leaderboard's), each once."""
    cells: dict[Cell, None] = {}
    for paper in papers:
        if paper in PAPERS:
            cells.update(dict.fromkeys(paper_cells(config, paper)))
    board = leaderboard(config)
    if board is not None:
        cells.update(dict.fromkeys(_table_cells(board)))
    return list(cells)


# -- the fair leaderboard ----------------------------------------------------------------------
def leaderboard(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fair KD leaderboard (section ``kd_leaderboard``) as a table plus its ``baseline``
    variant and ``confidence`` level, or None when the section is absent: every variant on the
    same pairs, recipe and seeds (no variant's recipe overrides apply to its recipe unless the
    config gives them for it by name)."""
    section = config.get(LEADERBOARD)
    if not section:
        return None
    pool = config.get(POOL, {})
    table = _table(pool, section, section.get("title") or "Fair KD leaderboard")
    table["baseline"] = section.get("baseline", "kd")
    table["confidence"] = float(section.get("confidence", 0.95))
    return table


def leaderboard_runs(results: str, board: Mapping[str, Any]) -> list[str]:
    """result.json of every run of the leaderboard (its params: :func:`leaderboard`)."""
    return [f"{cell_dir(results, c)}/result.json" for c in _table_cells(board)]


def _table_vanilla(
    table: Mapping[str, Any], teacher_seed: int, pretrained: set[tuple[str, str]]
) -> list[tuple[str, str, int | None]]:
    d = table["dataset"]
    runs = []
    for pair in table["pairs"]:
        teacher, student = split_pair(pair)
        runs.append((d, teacher, None if (d, teacher) in pretrained else teacher_seed))
        runs += [(d, student, s) for s in table["seeds"]]
    return runs


def _pretrained_pairs(pool: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(d, t) for d, ts in (pool.get("pretrained_teachers") or {}).items() for t in ts or {}}


def paper_vanilla(config: Mapping[str, Any], paper: str) -> list[tuple[str, str, int | None]]:
    """(dataset, model, seed) of the models trained alone that a paper's tables show: each
    pair's student at every seed and its teacher at ``teacher_seed`` (seed None: the user's
    pretrained teacher, scored but not trained)."""
    pool = config.get(POOL, {})
    runs: dict[tuple[str, str, int | None], None] = {}
    for table in tables(config, paper):
        runs.update(
            dict.fromkeys(
                _table_vanilla(table, pool.get("teacher_seed", 0), _pretrained_pairs(pool))
            )
        )
    return list(runs)


# -- where runs live (the rules and the scorecard job use these) -------------------------------
def cell_dir(results: str, cell: Cell) -> str:
    """``<results>/kd/<dataset>/<recipe>/<variant>/<teacher>-<student>/seed<k>``."""
    c = cell
    return f"{results}/kd/{c.dataset}/{c.recipe}/{c.variant}/{c.pair}/seed{c.seed}"


#: Where a KD job's params (:func:`kd_params`) name its cell, in :class:`Cell`'s field order.
CELL_KEYS = ("dataset", "teacher", "student", "variant", "recipe", "train.seed")


def params_cell(params: Mapping[str, Any]) -> Cell:
    """The cell whose job :func:`kd_params` gave ``params`` (they name it: dataset, teacher,
    student, variant, recipe, and the seed in ``train``), so a job that has only its params
    finds its run folder with :func:`cell_dir`. ValueError names a missing or mistyped key."""
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


# -- lockstep groups (kd.lockstep) -------------------------------------------------------------
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
    key: str  # hash of the shared data settings (_group_key)

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
    return {g: sorted(cs) for g, cs in sorted(by_group.items()) if len(cs) > 1}


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
    return [_deep_merge(params.get("common") or {}, cell) for cell in params["cells"]]


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
    """``run`` less what ``common`` holds (the inverse of ``_deep_merge(common, ...)``)."""
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


def vanilla_dir(results: str, dataset: str, model: str, seed: int | None) -> str:
    """A model trained alone (``seed<k>``), or a user's pretrained teacher (``pretrained``)."""
    return f"{results}/vanilla/{dataset}/{model}/" + (
        "pretrained" if seed is None else f"seed{seed}"
    )


def report_params(config: Mapping[str, Any], paper: str) -> dict[str, Any]:
    """What a KD paper's scorecard job needs: its tables (compact), the teacher seed, which
    teachers are the user's pretrained files, the figures it draws and the run they draw from.
    The job derives its cells and run folders from these (:func:`report_runs`), so its command
    line stays short."""
    pool = config.get(POOL, {})
    cell = figure_cell(config, paper)
    return {
        "paper": paper,
        "tables": tables(config, paper),
        "teacher_seed": pool.get("teacher_seed", 0),
        "pretrained": sorted([list(p) for p in _pretrained_pairs(pool)]),
        "figures": report_figures(config, paper),
        "figure_cell": None if cell is None else list(asdict(cell).values()),
    }


def report_runs(results: str, params: Mapping[str, Any]) -> list[str]:
    """result.json of every run a scorecard shows (cells, models trained alone, pretrained
    teachers), from :func:`report_params`."""
    pretrained = {tuple(p) for p in params["pretrained"]}
    files: dict[str, None] = {}
    for table in params["tables"]:
        files.update(
            dict.fromkeys(f"{cell_dir(results, c)}/result.json" for c in _table_cells(table))
        )
        for d, model, seed in _table_vanilla(table, params["teacher_seed"], pretrained):
            files[f"{vanilla_dir(results, d, model, seed)}/result.json"] = None
    return list(files)


REPORTED_ONLY_NOTE = "published baseline, not run here (no such method in repro)"


def scorecard_cells(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A table's declared scorecard rows: the teacher and the student trained alone (once
    each), then every variant of each pair, in the order the paper prints them."""
    cells: dict[tuple, dict[str, Any]] = {}
    for pair in table["pairs"]:
        teacher, student = split_pair(pair)
        for model in (teacher, student):
            cells.setdefault(
                (None, model, "ce"), {"teacher": None, "student": model, "variant": "ce"}
            )
        for variant in table["variants"]:
            cells[(teacher, student, variant)] = {
                "teacher": teacher,
                "student": student,
                "variant": variant,
            }
        for variant in table.get("reported_only", []):
            cells[(teacher, student, variant)] = {
                "teacher": teacher,
                "student": student,
                "variant": variant,
                "note": REPORTED_ONLY_NOTE,
                "planned": False,
            }
    return [{"dataset": table["dataset"], **c} for c in cells.values()]


#: Display names of the KD papers (report titles, Snakemake report categories).
TITLES = {"energy-kd": "Energy KD", "cskd": "CSKD", "r2kd": "R2KD"}
#: The temperature policy whose per-sample temperatures a paper's figures show, drawn from one
#: run of its first table (:func:`figure_cell`).
FIGURE_POLICY = {"energy-kd": "energy", "cskd": "cswt"}
#: Labels of the figures in the Snakemake report.
FIGURE_LABELS = {
    "accuracy": "accuracy by method",
    "energy_histogram": "teacher energy and thresholds",
    "energy_vs_confidence": "teacher energy vs confidence",
    "cswt_temperature": "CSWT temperature vs similarity",
    "pruning": "accuracy with and without pruning",
    "paired_differences": "paired differences from KD",
}


def _policy(pool: Mapping[str, Any], variant: str) -> str | None:
    temperature = pool["variants"][variant].get("args", {}).get("temperature")
    return temperature.get("policy") if isinstance(temperature, Mapping) else None


def figure_cell(config: Mapping[str, Any], paper: str) -> Cell | None:
    """The run whose per-sample temperatures a paper's figures show: the first pair and seed
    of the first table, with its first variant that uses the paper's policy (energy for Energy
    KD, cswt for CSKD); None when the paper has no such figure or variant."""
    policy = FIGURE_POLICY.get(paper)
    pool = config.get(POOL, {})
    for table in tables(config, paper)[:1]:
        for variant in table["variants"]:
            if policy is not None and _policy(pool, variant) == policy:
                teacher, student = split_pair(table["pairs"][0])
                recipe_name = table.get("run_recipes", {}).get(variant, table["recipe"])
                return Cell(
                    table["dataset"], teacher, student, variant, recipe_name, table["seeds"][0]
                )
    return None


def figure_run(
    params: Mapping[str, Any], results: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """Among a scorecard's run results, the one :func:`figure_cell` names (``params`` from
    :func:`report_params`, which records it as ``figure_cell``)."""
    want = params.get("figure_cell")
    if not want:
        return None
    for r in results:
        key = [r["dataset"], r.get("teacher"), r["student"], r.get("variant"), r.get("recipe"),
               r.get("seed")]  # fmt: skip
        if key == list(want):
            return r
    return None


def report_figures(config: Mapping[str, Any], paper: str) -> list[str]:
    """The figures a KD paper's scorecard draws (``figures/<name>.png``): accuracy by method,
    then the paper's own: the energy histogram and scatter (Energy KD) or the CSWT
    temperatures (CSKD) when a table has such a variant, and accuracy with and without pruning
    per augmentation (R2KD) when a table has an ``r2kd`` variant."""
    names = ["accuracy"]
    if figure_cell(config, paper) is not None:
        names += {"energy-kd": ["energy_histogram", "energy_vs_confidence"],
                  "cskd": ["cswt_temperature"]}.get(paper, [])  # fmt: skip
    pool = config.get(POOL, {})
    methods = {pool["variants"][v]["method"] for t in tables(config, paper) for v in t["variants"]}
    if paper == "r2kd" and "r2kd" in methods:
        names.append("pruning")
    return names


def resources(pool: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """Snakemake resources of a dataset's training jobs (``resources.default`` < dataset's)."""
    table = pool.get("resources", {})
    return {**table.get("default", {}), **table.get(dataset, {})}


# -- start-up checks ---------------------------------------------------------------------------
def check(config: Mapping[str, Any], papers: Iterable[str]) -> list[str]:
    """One-line problems with the KD part of the config (empty when fine), each naming the
    key: unknown variants, recipes or pairs, and method or policy arguments that the method's
    signature does not take."""
    papers = [p for p in papers if p in PAPERS]
    if not papers:
        return []
    pool = config.get(POOL)
    if not pool:
        return [f"{POOL}: missing (the KD papers {', '.join(papers)} need the run pool)"]
    problems = []
    variants = pool.get("variants", {})
    for name, spec in variants.items():
        problems += check_method(
            spec.get("method"), spec.get("args", {}), f"{POOL}.variants.{name}"
        )
        for rname in spec.get("train", {}):
            if rname not in pool.get("recipes", {}):
                problems.append(f"{POOL}.variants.{name}.train.{rname}: no recipe '{rname}'")
    for rname in pool.get("recipes", {}):
        try:
            recipe(pool, rname)
        except KeyError as err:
            problems.append(f"{POOL}.recipes.{rname}: extends unknown or circular recipe {err}")
    for dataset, by_variant in (pool.get("dataset_args") or {}).items():
        for variant, args in by_variant.items():
            key = f"{POOL}.dataset_args.{dataset}.{variant}"
            if variant not in variants:
                problems.append(f"{key}: no variant '{variant}'")
            else:
                problems += _own_args_problems(variants[variant], args, key)
    for dataset, by_pair in (pool.get("pair_args") or {}).items():
        for pair, by_variant in by_pair.items():
            for variant, args in by_variant.items():
                key = f"{POOL}.pair_args.{dataset}.{pair}.{variant}"
                if variant not in variants:
                    problems.append(f"{key}: no variant '{variant}'")
                    continue
                problems += _own_args_problems(variants[variant], args, key)
    for name in {vanilla_recipe(pool, "default"), *pool.get("vanilla_recipes", {}).values()}:
        if name not in pool.get("recipes", {}):
            problems.append(f"{POOL}.vanilla_recipes: no recipe '{name}' in {POOL}.recipes")
    board = config.get(LEADERBOARD)
    if board:
        problems += _table_problems(pool, board, LEADERBOARD)
        baseline = board.get("baseline", "kd")
        if baseline not in board.get("variants", []):
            problems.append(f"{LEADERBOARD}.baseline: '{baseline}' is not one of its variants")
    for paper in papers:
        section = PAPERS[paper]
        if not config.get(section, {}).get("tables"):
            problems.append(f"{section}.tables: '{paper}' is in papers but lists no tables")
            continue
        for i, table in enumerate(config[section]["tables"]):
            problems += _table_problems(pool, table, f"{section}.tables.{i}")
    return problems


def _own_args_problems(spec: Mapping[str, Any], args: Mapping[str, Any], key: str) -> list[str]:
    """Problems with override arguments (dataset or pair); a temperature policy's name comes
    from the variant."""
    base = spec.get("args", {}).get("temperature")
    own = dict(args)
    inherited = None
    if isinstance(own.get("temperature"), Mapping) and isinstance(base, Mapping):
        own["temperature"] = {"policy": base.get("policy"), **own["temperature"]}
        inherited = base
    return check_method(spec.get("method"), own, key, inherited)


def _table_problems(pool: Mapping[str, Any], table: Mapping[str, Any], key: str) -> list[str]:
    problems = []
    if table.get("recipe") not in pool.get("recipes", {}):
        problems.append(f"{key}.recipe: no recipe '{table.get('recipe')}' in {POOL}.recipes")
    problems += [
        f"{key}.variants: no variant '{v}' in {POOL}.variants"
        for v in table.get("variants", [])
        if v not in pool.get("variants", {})
    ]
    for pair in table.get("pairs", []):
        try:
            split_pair(pair)
        except ValueError as err:
            problems.append(f"{key}.pairs: {err}")
    return problems


def unset_pretrained(
    config: Mapping[str, Any], datasets_teachers: Iterable[tuple[str, str]]
) -> list[str]:
    """One line per planned pretrained teacher whose weights file is not set."""
    pool = config.get(POOL, {})
    return [
        f"config key {pretrained_key(d, t)} is not set (path to the teacher's torchvision "
        "state_dict file; nothing is downloaded)"
        for d, t in sorted(set(datasets_teachers))
        if is_pretrained(pool, d, t) and not pretrained_weights(pool, d, t)
    ]


def unset_init(config: Mapping[str, Any], datasets_models: Iterable[tuple[str, str]]) -> list[str]:
    """One line per planned (dataset, model) whose initial weights file is not set."""
    pool = config.get(POOL, {})
    return [
        f"config key {init_key(d, m)} is not set (path to the model's ImageNet-pretrained "
        "torchvision state_dict file; nothing is downloaded)"
        for d, m in sorted(set(datasets_models))
        if has_init(pool, d, m) and not init_weights(pool, d, m)
    ]
