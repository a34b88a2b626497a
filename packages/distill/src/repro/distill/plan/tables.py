"""The KD papers' tables and the fair leaderboard as cells of the pool, each cell once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from repro.distill.plan.cells import Cell, cell_dir, split_pair
from repro.distill.plan.pool import POOL, pretrained_teachers, run_recipe
from repro.distill.registry import paper_names, paper_section

#: KD papers -> their config sections (the modules ``repro/distill/papers/<section>.py``).
PAPERS = {name: paper_section(name) for name in paper_names()}
#: The fair KD leaderboard's config section and results folder.
LEADERBOARD, LEADERBOARD_DIR = "kd_leaderboard", "kd-leaderboard"


def run_papers(config: Mapping[str, Any]) -> list[str]:
    """The KD papers this run reproduces (``papers``), in the config's order."""
    return [p for p in config.get("papers", []) if p in PAPERS]


def table(pool: Mapping[str, Any], spec: Mapping[str, Any], title: str) -> dict[str, Any]:
    """A table with its seeds filled in from the pool and, per variant, the recipe whose runs
    it reads (:func:`~repro.distill.plan.pool.run_recipe`; listed only where it differs from
    the table's)."""
    variants = list(spec["variants"])
    runs = {v: run_recipe(pool, spec["recipe"], v) for v in variants}
    out = {
        "title": spec.get("title") or title,
        "dataset": spec["dataset"],
        "recipe": spec["recipe"],
        "pairs": list(spec["pairs"]),
        "variants": variants,
        "seeds": list(spec.get("seeds", pool.get("seeds", [0]))),
    }
    shared = {v: r for v, r in runs.items() if r != spec["recipe"]}
    if shared:
        out["run_recipes"] = shared
    if spec.get("reported_only"):
        out["reported_only"] = list(spec["reported_only"])
    return out


def tables(config: Mapping[str, Any], paper: str) -> list[dict[str, Any]]:
    """The tables a KD paper reports, with seeds filled in from the pool."""
    pool = config.get(POOL, {})
    section = config.get(PAPERS[paper], {})
    return [
        table(pool, spec, f"{spec['dataset']} ({i + 1})")
        for i, spec in enumerate(section.get("tables", []))
    ]


def table_cells(table: Mapping[str, Any]) -> list[Cell]:
    """The cells of a table (from :func:`table`): pairs x variants x seeds."""
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
    return list(dict.fromkeys(c for t in tables(config, paper) for c in table_cells(t)))


def pool_cells(config: Mapping[str, Any], papers: Iterable[str]) -> list[Cell]:
    """The union of the KD papers' cells (and the leaderboard's), each once."""
    cells: dict[Cell, None] = {}
    for paper in papers:
        if paper in PAPERS:
            cells.update(dict.fromkeys(paper_cells(config, paper)))
    board = leaderboard(config)
    if board is not None:
        cells.update(dict.fromkeys(table_cells(board)))
    return list(cells)


def leaderboard(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fair KD leaderboard (section ``kd_leaderboard``) as a table plus its ``baseline``
    variant and ``confidence`` level, or None when the section is absent: every variant on the
    same pairs, recipe and seeds (no variant's recipe overrides apply to its recipe unless the
    config gives them for it by name)."""
    section = config.get(LEADERBOARD)
    if not section:
        return None
    pool = config.get(POOL, {})
    board = table(pool, section, section.get("title") or "Fair KD leaderboard")
    board["baseline"] = section.get("baseline", "kd")
    board["confidence"] = float(section.get("confidence", 0.95))
    return board


def run_leaderboard(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The leaderboard of this run: :func:`leaderboard` when a KD paper is run, else None."""
    return leaderboard(config) if run_papers(config) else None


def leaderboard_runs(results: str, board: Mapping[str, Any]) -> list[str]:
    """result.json of every run of the leaderboard (its params: :func:`leaderboard`)."""
    return [f"{cell_dir(results, c)}/result.json" for c in table_cells(board)]


def table_vanilla(
    table: Mapping[str, Any], teacher_seed: int, pretrained: set[tuple[str, str]]
) -> list[tuple[str, str, int | None]]:
    """(dataset, model, seed) of a table's models trained alone: each pair's teacher at
    ``teacher_seed`` (None: the user's pretrained file) and its student at every seed."""
    d = table["dataset"]
    runs = []
    for pair in table["pairs"]:
        teacher, student = split_pair(pair)
        runs.append((d, teacher, None if (d, teacher) in pretrained else teacher_seed))
        runs += [(d, student, s) for s in table["seeds"]]
    return runs


def pretrained_pairs(pool: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(dataset, teacher) of every pretrained teacher the pool names."""
    return {(d, t) for d, ts in pretrained_teachers(pool).items() for t in ts}


def paper_vanilla(config: Mapping[str, Any], paper: str) -> list[tuple[str, str, int | None]]:
    """(dataset, model, seed) of the models trained alone that a paper's tables show: each
    pair's student at every seed and its teacher at ``teacher_seed`` (seed None: the user's
    pretrained teacher, scored but not trained)."""
    pool = config.get(POOL, {})
    runs: dict[tuple[str, str, int | None], None] = {}
    for spec in tables(config, paper):
        runs.update(
            dict.fromkeys(table_vanilla(spec, pool.get("teacher_seed", 0), pretrained_pairs(pool)))
        )
    return list(runs)
