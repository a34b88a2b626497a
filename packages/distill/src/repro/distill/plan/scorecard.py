"""A KD paper's scorecard job: its params, the runs it reads, its rows, figures and outputs.
What differs between the papers (title, figures, the run they draw from) is the paper's
module, ``repro/distill/papers/<section>.py``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from repro.core.papers import caption as caption_file
from repro.distill.plan.cells import Cell, cell_dir, split_pair, vanilla_dir
from repro.distill.plan.pool import POOL, is_pretrained, pretrained_key, pretrained_weights
from repro.distill.plan.tables import (
    LEADERBOARD_DIR,
    PAPERS,
    pretrained_pairs,
    table_cells,
    table_vanilla,
    tables,
)
from repro.distill.registry import paper as paper_of

REPORTED_ONLY_NOTE = "published baseline, not run here (no such method in repro)"
#: Labels of the figures every KD scorecard (and the leaderboard) draws, in the Snakemake
#: report; each paper's own figures are labelled in its module.
FIGURE_LABELS = {
    "accuracy": "accuracy by method",
    "paired_differences": "paired differences from KD",
}
#: A rule output: its path and, for one shown in the Snakemake report, report()'s keywords.
Output = tuple[str, dict[str, Any] | None]


def title(paper: str) -> str:
    """A KD paper's display name (report titles, Snakemake report categories)."""
    return paper_of(paper).title


def report_params(config: Mapping[str, Any], paper: str) -> dict[str, Any]:
    """What a KD paper's scorecard job needs: its tables (compact), the teacher seed, which
    teachers are the user's pretrained files, the figures it draws and the run they draw from.
    The job derives its cells and run folders from these (:func:`report_runs`), so its command
    line stays short."""
    pool = config.get(POOL, {})
    cell = figure_cell(config, paper)
    params = {
        "paper": paper,
        "tables": tables(config, paper),
        "teacher_seed": pool.get("teacher_seed", 0),
        "pretrained": sorted([list(p) for p in pretrained_pairs(pool)]),
        "figures": report_figures(config, paper),
        "figure_cell": None if cell is None else list(asdict(cell).values()),
    }
    if cell is not None and is_pretrained(pool, cell.dataset, cell.teacher):
        params["figure_teacher_weights"] = pretrained_weights(pool, cell.dataset, cell.teacher)
        params["figure_teacher_weights_key"] = pretrained_key(cell.dataset, cell.teacher, pool)
    return params


def report_runs(results: str, params: Mapping[str, Any]) -> list[str]:
    """result.json of every run a scorecard shows (cells, models trained alone, pretrained
    teachers), from :func:`report_params`."""
    pretrained = {tuple(p) for p in params["pretrained"]}
    files: dict[str, None] = {}
    for table in params["tables"]:
        files.update(
            dict.fromkeys(f"{cell_dir(results, c)}/result.json" for c in table_cells(table))
        )
        for d, model, seed in table_vanilla(table, params["teacher_seed"], pretrained):
            files[f"{vanilla_dir(results, d, model, seed)}/result.json"] = None
    return list(files)


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


def _policy(pool: Mapping[str, Any], variant: str) -> str | None:
    temperature = pool["variants"][variant].get("args", {}).get("temperature")
    return temperature.get("policy") if isinstance(temperature, Mapping) else None


def figure_cell(config: Mapping[str, Any], paper: str) -> Cell | None:
    """The run whose per-sample temperatures a paper's figures show: the first pair and seed
    of the first table, with its first variant that uses the paper's ``figure_policy``
    (energy for Energy KD, cswt for CSKD); None when the paper has no such figure or
    variant."""
    policy = paper_of(paper).figure_policy
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
    then the paper's own (its module's ``figures``)."""
    return ["accuracy", *paper_of(paper).figures(config)]


def figure_label(paper: str, name: str) -> str:
    """The label of one of a paper's figures in the Snakemake report."""
    return {**FIGURE_LABELS, **paper_of(paper).labels}[name]


def report_outputs(config: Mapping[str, Any], results: str, paper: str) -> dict[str, Output]:
    """The outputs of a KD paper's scorecard job, by name: ``summary.csv``/``.html``/``.md``,
    ``runs.csv``, ``provenance.json`` and each figure; the HTML and the figures with their
    caption (this package's ``captions/<section>_<name>.rst``), category and label."""
    out, section, category = f"{results}/{paper}", PAPERS[paper], title(paper)

    def shown(path: str, name: str, label: str) -> Output:
        caption = caption_file("repro.distill", f"{section}_{name}.rst")
        return path, {"caption": caption, "category": category, "labels": {"figure": label}}

    files: dict[str, Output] = {
        "csv": (f"{out}/summary.csv", None),
        "html": shown(f"{out}/summary.html", "summary", "scorecard"),
        "md": (f"{out}/summary.md", None),
        "runs": (f"{out}/runs.csv", None),
        "provenance": (f"{out}/provenance.json", None),
    }
    for name in report_figures(config, paper):
        files[name] = shown(f"{out}/figures/{name}.png", name, figure_label(paper, name))
    return files


def leaderboard_outputs(results: str) -> dict[str, Output]:
    """The outputs of the fair leaderboard's job, by name (as :func:`report_outputs`)."""
    out, category = f"{results}/{LEADERBOARD_DIR}", "KD leaderboard"

    def shown(path: str, name: str, label: str) -> Output:
        caption = caption_file("repro.distill", f"kd_leaderboard_{name}.rst")
        return path, {"caption": caption, "category": category, "labels": {"figure": label}}

    return {
        "csv": (f"{out}/summary.csv", None),
        "ranks": (f"{out}/ranks.csv", None),
        "md": (f"{out}/summary.md", None),
        "html": shown(f"{out}/summary.html", "summary", "leaderboard"),
        "figure": shown(
            f"{out}/figures/paired_differences.png",
            "paired_differences",
            FIGURE_LABELS["paired_differences"],
        ),
        "provenance": (f"{out}/provenance.json", None),
    }
