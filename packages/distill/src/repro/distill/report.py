"""A KD paper's scorecard (its tables over the run pool, beside the reported numbers),
the per-run table and figures; one report for every KD paper.

Params (:func:`repro.distill.plan.report_params`)::

    {"paper": "energy-kd", "tables": [{"title", "dataset", "recipe", "pairs", "variants",
     "seeds", ...}, ...], "teacher_seed": 0, "pretrained": [[dataset, teacher], ...],
     "figures": ["accuracy", ...], "figure_cell": [dataset, teacher, student, variant, recipe,
     seed] | null}

The run folders follow from these (:func:`repro.distill.plan.report_runs`). Figures (the
plan decides which): accuracy by method (every paper), then the paper's own, which its module
``repro/distill/papers/<section>.py`` draws from a :class:`FigureContext` (e.g. the teacher
energies of the figure run for Energy KD). The fair leaderboard (:func:`leaderboard_report`)
is in :mod:`repro.distill.leaderboard`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.core import ReproError
from repro.core.provenance import write_provenance
from repro.core.scorecard import Metric, Table, load_reported, write_scorecard
from repro.core.tables import write_table
from repro.data.arrays import read_meta
from repro.distill.arraydata import ArrayData
from repro.distill.models import load_teacher_weights, load_trained
from repro.distill.plan import Cell, cell_dir, figure_run, report_runs, scorecard_cells, vanilla_dir
from repro.distill.registry import paper as paper_of

KEYS = ("dataset", "teacher", "student", "variant")
TOP1 = Metric("top1", 2, "top-1 (%)")
#: The caption of accuracy by method in summary.md (each paper's own figures' are in its
#: module; the Snakemake report's are this package's captions/*.rst).
ACCURACY_CAPTION = (
    "Best-epoch test top-1 of each method per pair: the mean over n seeds with the std over "
    "seeds as bars, or with one run the 95 % Wilson interval of its accuracy on the test-set "
    "size (each panel's title gives n and the test-set size: a gap inside the bars is noise, "
    "not a ranking); reported numbers as crosses; teacher and student alone as lines."
)
RUN_COLUMNS = [
    "dataset",
    "teacher",
    "student",
    "variant",
    "recipe",
    "seed",
    "top1_best",
    "top1_final",
    "top5_final",
    "best_epoch",
    "epochs",
    "test_n",
]


def run_row(result: Mapping[str, Any]) -> dict[str, Any]:
    """One run's row: its cell keys and accuracies (``top1`` is the best epoch's, as the
    papers report it)."""
    return {
        "dataset": result["dataset"],
        "teacher": result.get("teacher"),
        "student": result["student"],
        "variant": result.get("variant", result.get("method")),
        "recipe": result.get("recipe"),
        "seed": result.get("seed"),
        "top1": result["best_top1"],
        "top1_best": result["best_top1"],
        "top1_final": result["final_top1"],
        "top5_final": result["final_top5"],
        "best_epoch": result.get("best_epoch"),
        "epochs": result["epochs"],
        "test_n": result.get("test_n"),
        "note": "pretrained (user's weights file), scored here"
        if result.get("pretrained")
        else None,
    }


def wilson_interval(accuracy: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval (lo, hi), in %, of an accuracy (%) measured on ``n`` images."""
    p = accuracy / 100.0
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return 100.0 * (centre - half), 100.0 * (centre + half)


def accuracy_spread(row: Mapping[str, Any]) -> tuple[float, float, str] | None:
    """The error bar of a scorecard cell's ours: (below, above, kind). With n > 1 runs the
    sample std over seeds ("std"); with one run the 95 % Wilson interval of its accuracy on the
    test-set size ("wilson"); None when there is no number or no known test-set size."""
    ours, n, size = row.get("top1_ours"), row.get("n") or 0, row.get("test_n")
    if ours is None:
        return None
    if n > 1 and row.get("top1_std") is not None:
        return row["top1_std"], row["top1_std"], "std"
    if n == 1 and isinstance(size, int) and size > 0:
        lo, hi = wilson_interval(ours, size)
        return ours - lo, hi - ours, "wilson"
    return None


def _counts(values: Sequence[Any], what: str) -> str:
    known = sorted({v for v in values if v is not None}, key=lambda v: (str(type(v)), v))
    if not known:
        return f"{what} unknown"
    return f"{what} {known[0]}" if len(known) == 1 else f"{what} {'/'.join(map(str, known))}"


def accuracy_figure(rows: Sequence[Mapping[str, Any]], path: Path) -> Any:
    """Best-epoch top-1 of every cell, one panel per (dataset, pair); the teacher and the
    student trained alone are reference lines. The bars are the noise, so that a gap of one
    test image does not read as a win: the sample std over seeds (n > 1), or with one run the
    95 % Wilson interval of the accuracy on the test-set size. Each panel's title states the
    runs per method (n) and the test-set size. Returns the (closed) figure."""
    import matplotlib.pyplot as plt

    from repro.core.plotting import save_figure, use_style

    use_style()
    alone = {
        (r["dataset"], r["student"]): r
        for r in rows
        if r["variant"] == "ce" and r.get("top1_ours") is not None
    }
    pairs = list(
        dict.fromkeys((r["dataset"], r["teacher"], r["student"]) for r in rows if r["teacher"])
    )
    if not pairs:
        return None
    fig, axes = plt.subplots(
        len(pairs), 1, figsize=(5.5, 0.35 * len(rows) / max(len(pairs), 1) + 1.6 * len(pairs)),
        squeeze=False,
    )  # fmt: skip
    labels = {
        "std": "ours (mean ± std over seeds)",
        "wilson": "ours (1 run; 95 % Wilson interval on the test set)",
        None: "ours (no spread: test-set size unknown)",
    }
    for ax, (dataset, teacher, student) in zip(axes[:, 0], pairs, strict=True):
        cells = [
            r
            for r in rows
            if (r["dataset"], r["teacher"], r["student"]) == (dataset, teacher, student)
        ]
        y = np.arange(len(cells))
        spreads = [accuracy_spread(r) for r in cells]
        for kind, color in (("std", "C0"), ("wilson", "C2"), (None, "C0")):
            idx = [
                i
                for i, r in enumerate(cells)
                if r.get("top1_ours") is not None
                and (spreads[i][2] if spreads[i] else None) == kind
            ]
            if not idx:
                continue
            xerr = None if kind is None else [[spreads[i][j] for i in idx] for j in (0, 1)]
            ax.errorbar(
                [cells[i]["top1_ours"] for i in idx], y[idx], xerr=xerr, fmt="o", color=color,
                capsize=2, label=labels[kind],
            )  # fmt: skip
        rep = [(i, r["top1_reported"]) for i, r in enumerate(cells) if r.get("top1_reported")]
        if rep:
            ax.plot([v for _, v in rep], [y[i] for i, _ in rep], "x", color="C1", label="reported")
        for model, style, what in ((teacher, "--", "teacher"), (student, ":", "student")):
            ref = alone.get((dataset, model))
            if ref:
                ax.axvline(ref["top1_ours"], color="grey", linestyle=style,
                           label=f"{what} alone ({ref['top1_ours']:.1f})")  # fmt: skip
        ax.set_yticks(y, [r["variant"] for r in cells])
        ax.invert_yaxis()
        ran = [r for r in cells if r.get("top1_ours") is not None]
        runs = _counts([r.get("n") for r in ran], "n =")
        size = _counts([r.get("test_n") for r in ran], "test images:")
        ax.set_title(f"{dataset}: {teacher} -> {student} ({runs} per method, {size})", fontsize=8)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)
    axes[-1, 0].set_xlabel("best-epoch test top-1 (%; axis range fitted to the data)")
    save_figure(fig, path)
    return fig


def _load_results(runs: Sequence[str], partial: bool = False) -> list[dict[str, Any]]:
    missing = [r for r in runs if not Path(r).is_file()]
    if missing and not partial:
        raise ReproError(f"report: {missing[0]} is missing ({len(missing)} runs missing)")
    return [json.loads(Path(r).read_text(encoding="utf-8")) for r in runs if r not in missing]


def placeholder_figure(path: Path, text: str) -> None:
    """A figure that says why it is empty (a partial report whose figure run is missing)."""
    import matplotlib.pyplot as plt

    from repro.core.plotting import save_figure, use_style

    use_style()
    fig, ax = plt.subplots(figsize=(5.0, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9)
    save_figure(fig, path)


@dataclass
class FigureContext:
    """What a KD paper's own figures draw from (its module's ``draw``): the scorecard's params,
    rows and runs, and the figure run (:func:`repro.distill.plan.figure_run`)."""

    params: Mapping[str, Any]
    results_dir: str | os.PathLike[str]
    data_root: str | os.PathLike[str]
    fig_dir: Path
    rows: list[dict[str, Any]]
    results: list[dict[str, Any]]
    run: Mapping[str, Any] | None

    @property
    def what(self) -> str:
        """The figure run, in words (figure titles)."""
        run = self.run
        return f"{run['variant']} ({run['teacher']} -> {run['student']}, seed {run['seed']})"

    def figure_data(self, split: str) -> tuple[ArrayData, torch.nn.Module, int]:
        """The figure run's dataset split (on the CPU), its teacher (trained here, or the
        user's file), and the number of classes."""
        run = self.run
        data_dir = Path(self.data_root) / run["dataset"]
        classes = len(read_meta(data_dir)["classes"])
        data = ArrayData.load(data_dir, split, "cpu", classes)
        if [run["dataset"], run["teacher"]] in self.params["pretrained"]:
            weights = self.params.get("figure_teacher_weights")
            if not weights:
                raise ReproError(
                    f"report: the figure run {run['variant']} ({run['dataset']}) distils from "
                    "a pretrained teacher whose file the params do not name"
                )
            key = self.params.get("figure_teacher_weights_key") or "figure_teacher_weights"
            teacher = load_teacher_weights(run["teacher"], weights, classes, data.in_channels, key)
            return data, teacher, classes
        seed = self.params["teacher_seed"]
        ckpt = Path(vanilla_dir(str(self.results_dir), run["dataset"], run["teacher"], seed))
        teacher = load_trained(run["teacher"], ckpt / "model.pt", classes, data.in_channels)
        return data, teacher, classes

    def figure_student(self, classes: int, in_channels: int) -> torch.nn.Module:
        """The figure run's trained student."""
        run_dir = Path(cell_dir(str(self.results_dir), Cell(*self.params["figure_cell"])))
        return load_trained(self.run["student"], run_dir / "model.pt", classes, in_channels)


def kd_report(
    params: Mapping[str, Any],
    results_dir: str | os.PathLike[str],
    reported_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    data_root: str | os.PathLike[str] = "data",
    partial: bool = False,
) -> list[dict[str, Any]]:
    """Write ``summary.csv``/``.md``/``.html`` (the scorecard), ``runs.csv`` (one per run),
    ``figures/`` and ``provenance.json`` to ``out``. With ``partial`` (a preview while runs
    are still going) missing runs leave their cells empty and a figure whose run is missing
    says so, instead of stopping the report."""
    try:
        paper = paper_of(params["paper"])
    except KeyError as exc:
        raise ReproError(f"report: --params paper: {exc.args[0]}") from exc
    out = Path(out)
    results = _load_results(report_runs(str(results_dir), params), partial)
    per_run = sorted(
        (run_row(r) for r in results),
        key=lambda r: (
            r["dataset"],
            r["teacher"] or "",
            r["student"],
            r["variant"],
            r["seed"] or 0,
        ),
    )
    tables = [Table(t["title"], KEYS, (TOP1,), scorecard_cells(t)) for t in params["tables"]]
    notes = [
        "ours: best-epoch test top-1 (what the papers report), mean over n runs (seeds) with "
        "the sample std; runs.csv has every run with its final-epoch accuracy too.",
        "reported: the published number with its source; an empty cell was not reported or "
        "not run here. difference = ours - reported.",
    ]
    title = f"{paper.title} reproduction"
    figures = list(params.get("figures", ["accuracy"]))
    captions = {"accuracy": ACCURACY_CAPTION, **paper.captions}
    listed = [(f"figures/{name}.png", captions[name]) for name in figures]
    rows = write_scorecard(
        tables, per_run, load_reported(reported_file), out / "summary.csv", out / "summary.md",
        title, notes, listed, out / "summary.html",
    )  # fmt: skip
    write_table(per_run, out / "runs.csv", columns=RUN_COLUMNS)
    fig_dir = out / "figures"
    accuracy_figure(rows, fig_dir / "accuracy.png")
    run = figure_run(params, results)
    own = [f for f in figures if f != "accuracy"]
    from_run = [f for f in own if f in paper.run_figures]
    if from_run and run is None:
        if not partial:
            raise ReproError(f"report: the figure run {params.get('figure_cell')} is missing")
        for name in from_run:
            placeholder_figure(
                fig_dir / f"{name}.png", f"not drawn: the run {params['figure_cell']} is missing"
            )
        own = [f for f in own if f not in from_run]
    context = FigureContext(params, results_dir, data_root, fig_dir, rows, results, run)
    extra = paper.draw(own, context)
    write_provenance(out / "provenance.json", dict(params), None, Path(__file__).parent, **extra)
    return rows
