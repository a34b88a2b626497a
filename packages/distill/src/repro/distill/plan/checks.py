"""Start-up checks of the KD part of the config, and the pre-flight of the planned KD jobs
(the paper contract's ``check``, ``preflight`` and ``datasets``, shared by the KD papers)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from repro.distill.plan.cells import split_pair
from repro.distill.plan.pool import (
    POOL,
    has_init,
    init_key,
    init_weights,
    is_pretrained,
    pretrained_key,
    pretrained_weights,
    recipe,
    vanilla_recipe,
)
from repro.distill.plan.tables import (
    LEADERBOARD,
    PAPERS,
    leaderboard,
    paper_vanilla,
    pool_cells,
    run_papers,
    tables,
)
from repro.distill.registry import check_method, model_names

#: The rules whose jobs train or score a KD student, and a model alone.
KD_RULES, ALONE_RULES = (
    ("train_kd", "train_kd_group"),
    ("train_vanilla", "evaluate_pretrained_teacher"),
)


def check(config: Mapping[str, Any], papers: Iterable[str]) -> list[str]:
    """One-line problems with the KD part of the config (empty when fine), each naming the
    key: unknown variants, recipes or pairs, and method or policy arguments that the method's
    signature does not take; the pool's first, then each paper's tables."""
    papers = [p for p in papers if p in PAPERS]
    if not papers:
        return []
    if not config.get(POOL):
        return [f"{POOL}: missing (the KD papers {', '.join(papers)} need the run pool)"]
    return pool_problems(config) + [p for paper in papers for p in table_problems(config, paper)]


def paper_check(config: Mapping[str, Any], paper: str) -> list[str]:
    """A KD paper's start-up check (the contract's ``check``): the pool's problems (the same
    lines for every KD paper of the run; the workflow lists each once), then its tables'."""
    if not config.get(POOL):
        names = ", ".join(run_papers(config) or [paper])
        return [f"{POOL}: missing (the KD papers {names} need the run pool)"]
    return pool_problems(config) + table_problems(config, paper)


def pool_problems(config: Mapping[str, Any]) -> list[str]:
    """Problems with the run pool (section ``kd``) and the fair leaderboard."""
    pool = config[POOL]
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
    return problems


def table_problems(config: Mapping[str, Any], paper: str) -> list[str]:
    """Problems with a KD paper's tables (its section's ``tables``)."""
    section = PAPERS[paper]
    if not config.get(section, {}).get("tables"):
        return [f"{section}.tables: '{paper}' is in papers but lists no tables"]
    pool = config[POOL]
    problems = []
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
        f"config key {pretrained_key(d, t, pool)} is not set (path to the teacher's torchvision "
        "state_dict file; nothing is downloaded)"
        for d, t in sorted(set(datasets_teachers))
        if is_pretrained(pool, d, t) and not pretrained_weights(pool, d, t)
    ]


def missing_mdistiller(
    config: Mapping[str, Any], datasets_teachers: Iterable[tuple[str, str]]
) -> list[str]:
    """One line per planned teacher whose file ``kd.mdistiller_teachers`` names (the released
    teacher in the extracted folder) is not there; one line for a folder that is not there."""
    pool = config.get(POOL, {})
    folders = pool.get("mdistiller_teachers") or {}
    problems: dict[str, None] = {}
    for d, t in sorted(set(datasets_teachers)):
        key = pretrained_key(d, t, pool)
        path = pretrained_weights(pool, d, t)
        if not key.startswith(f"{POOL}.mdistiller_teachers.") or not path:
            continue
        if not Path(folders[d]).is_dir():
            problems[
                f"config key {key}: no folder {folders[d]} (extract mdistiller's "
                "cifar_teachers.tar and set the key to its cifar_teachers/ folder)"
            ] = None
        elif not Path(path).is_file():
            problems[
                f"config key {key}: no file {path} (the folder extracted from mdistiller's "
                "cifar_teachers.tar holds <teacher>_vanilla/ckpt_epoch_240.pth)"
            ] = None
    return list(problems)


def unset_init(config: Mapping[str, Any], datasets_models: Iterable[tuple[str, str]]) -> list[str]:
    """One line per planned (dataset, model) whose initial weights file is not set."""
    pool = config.get(POOL, {})
    return [
        f"config key {init_key(d, m)} is not set (path to the model's ImageNet-pretrained "
        "torchvision state_dict file; nothing is downloaded)"
        for d, m in sorted(set(datasets_models))
        if has_init(pool, d, m) and not init_weights(pool, d, m)
    ]


def planned_models(
    config: Mapping[str, Any],
    planned: list[tuple[str, Mapping[str, str]]] | None,
    papers: Iterable[str] | None = None,
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(dataset, teacher, student) of the planned KD jobs and (dataset, model) of the planned
    models trained alone or scored, of ``papers`` (default: the run's KD papers; the
    leaderboard's runs count for each); with ``planned`` None, everything they imply."""
    papers = run_papers(config) if papers is None else list(papers)
    cells = pool_cells(config, papers)
    kd = [(c.dataset, c.teacher, c.student) for c in cells]
    alone = {(d, m) for p in papers for d, m, _ in paper_vanilla(config, p)}
    alone |= {(c.dataset, c.teacher) for c in cells}
    if planned is None:
        return kd, sorted(alone)
    own_kd = set(kd)
    jobs = [(w["dataset"], w["teacher"], w["student"]) for r, w in planned if r in KD_RULES]
    models = [(w["dataset"], w["model"]) for r, w in planned if r in ALONE_RULES]
    return [j for j in jobs if j in own_kd], [m for m in models if m in alone]


def preflight(
    config: Mapping[str, Any],
    planned: list[tuple[str, Mapping[str, str]]] | None,
    papers: Iterable[str] | None = None,
) -> list[str]:
    """Problems the planned KD jobs of ``papers`` (default: the run's KD papers) would hit,
    one line each: a pretrained teacher's weights file not set (or, from
    ``kd.mdistiller_teachers``, not there), then an initial weights file
    (``kd.init_weights``) not set."""
    kd, alone = planned_models(config, planned, papers)
    teachers = unset_pretrained(config, [(d, t) for d, t, _ in kd] + alone)
    teachers += missing_mdistiller(config, [(d, t) for d, t, _ in kd] + alone)
    return teachers + unset_init(config, [(d, s) for d, _, s in kd] + alone)


def datasets(config: Mapping[str, Any], paper: str) -> set[str]:
    """The datasets a KD paper's tables and the run's leaderboard read."""
    names = {t["dataset"] for t in tables(config, paper)}
    board = leaderboard(config)
    return names | ({board["dataset"]} if board else set())


def target_problem(config: Mapping[str, Any], results: str, target: str) -> str | None:
    """For a target in the run pool (``<results>/kd/<dataset>/<recipe>/<variant>/<teacher>-
    <student>/seed<k>/...`` or ``<results>/vanilla/<dataset>/<model>/seed<k>/...``) that names
    a dataset, recipe, variant, model or seed the config or the zoo does not have: one line
    listing the valid names (None: valid, or not a pool target)."""
    parts = target.removeprefix(f"{results}/").split("/")
    if target == "/".join(parts) or parts[0] not in ("kd", "vanilla"):
        return None
    pool = config.get(POOL, {})
    if parts[0] == "kd" and len(parts) >= 6:
        names = {"dataset": parts[1], "recipe": parts[2], "variant": parts[3]}
        teacher, _, student = parts[4].partition("-")
        models, seed = [teacher, student], parts[5]
    elif parts[0] == "vanilla" and len(parts) >= 4:
        names, models, seed = {"dataset": parts[1]}, [parts[2]], parts[3]
    else:
        return None
    valid = {
        "dataset": _dataset_names(),
        "recipe": sorted(pool.get("recipes", {})),
        "variant": sorted(pool.get("variants", {})),
    }
    for kind, name in names.items():
        if name not in valid[kind] and not (kind == "dataset" and _is_dataset(name)):
            return f"unknown {kind} '{name}' ({kind}s: {', '.join(valid[kind])})"
    for model in models:
        if model not in model_names():
            return f"unknown model '{model}' (models: {', '.join(model_names())})"
    if not re.fullmatch(r"seed\d+", seed) and not (parts[0] == "vanilla" and seed == "pretrained"):
        return f"'{seed}' is not seed<k> (e.g. seed0)"
    return None


def _dataset_names() -> list[str]:
    from repro.data.registry import names

    return names()


def _is_dataset(name: str) -> bool:
    """A registered dataset, also a long-tailed ``<name>-lt<F>``."""
    from repro.core import ReproError
    from repro.data.registry import lookup

    try:
        lookup(name)
    except ReproError:
        return False
    return True
