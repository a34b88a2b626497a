"""A KD paper's scorecard (its tables over the run pool, beside the reported numbers),
the per-run table and figures.

Params (:func:`repro.distill.plan.report_params`)::

    {"paper": "energy-kd", "tables": [{"title", "dataset", "recipe", "pairs", "variants",
     "seeds"}, ...], "teacher_seed": 0, "pretrained": [[dataset, teacher], ...]}

The run folders follow from these (:func:`repro.distill.plan.report_runs`). The Energy KD
figures show the teacher energies of the first run of the first table that uses the energy
temperature policy (:func:`repro.distill.plan.energy_figure_cell`), with the thresholds that
run computed (its ``result.json``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
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
from repro.distill.losses import energy_score
from repro.distill.plan import energy_run, report_runs, scorecard_cells, vanilla_dir
from repro.distill.run import load_model

KEYS = ("dataset", "teacher", "student", "variant")
TOP1 = Metric("top1", 2, "top-1 (%)")
TITLES = {"energy-kd": "Energy KD", "cskd": "CSKD", "r2kd": "R2KD"}
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


@torch.no_grad()
def teacher_energy_stats(
    model: torch.nn.Module, data: ArrayData, mean: list[float], std: list[float], temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """Teacher energy (T = ``temperature``) and max-softmax confidence for every image."""
    model.eval()
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    energies, confidences = [], []
    for images, _ in data.batches(512, shuffle=False):
        out = model((images.float() / 255.0 - m) / s)
        logits = out[0] if isinstance(out, tuple) else out
        energies.append(energy_score(logits, temperature))
        confidences.append(logits.softmax(dim=1).amax(dim=1))
    return torch.cat(energies).numpy(), torch.cat(confidences).numpy()


def energy_figures(
    energy: np.ndarray, confidence: np.ndarray, tau: tuple[float, float], fig_dir: Path, what: str
) -> float:
    """The energy-vs-confidence scatter and the energy histogram with the thresholds used in
    training; returns Spearman's rho between energy and confidence."""
    import matplotlib.pyplot as plt
    from scipy.stats import spearmanr

    from repro.core.plotting import save_figure, use_style

    use_style()
    rho = float(spearmanr(energy, confidence).statistic)
    fig, ax = plt.subplots()
    ax.scatter(energy, confidence, s=4, alpha=0.4)
    ax.set(
        xlabel="teacher energy E = -T log sum exp(z / T), T = 4",
        ylabel="teacher max softmax probability",
        title=f"Low energy = confident (Spearman rho = {rho:.3f}, n = {len(energy)})",
    )
    save_figure(fig, fig_dir / "energy_vs_confidence.png")

    fig, ax = plt.subplots()
    ax.hist(energy, bins=50, color="C0", label=f"training images (n = {len(energy)})")
    for t, name, style in zip(tau, ("tau_low", "tau_high"), ("--", ":"), strict=True):
        ax.axvline(t, color="C1", linestyle=style, label=f"{name} = {t:.2f}")
    ax.set(xlabel="teacher energy (T = 4)", ylabel="training images")
    ax.set_title(f"Teacher energy and the global thresholds of {what}", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
    save_figure(fig, fig_dir / "energy_histogram.png")
    return rho


def accuracy_figure(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Best-epoch top-1 of every cell (mean over seeds, bars = sample std), one panel per
    (dataset, pair); the teacher and the student trained alone are reference lines."""
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
        return
    fig, axes = plt.subplots(
        len(pairs), 1, figsize=(5.5, 0.35 * len(rows) / max(len(pairs), 1) + 1.6 * len(pairs)),
        squeeze=False,
    )  # fmt: skip
    for ax, (dataset, teacher, student) in zip(axes[:, 0], pairs, strict=True):
        cells = [
            r
            for r in rows
            if (r["dataset"], r["teacher"], r["student"]) == (dataset, teacher, student)
        ]
        y = np.arange(len(cells))
        ours = [r.get("top1_ours") for r in cells]
        std = [r.get("top1_std") or 0.0 for r in cells]
        has = [i for i, v in enumerate(ours) if v is not None]
        ax.errorbar(
            [ours[i] for i in has], y[has], xerr=[std[i] for i in has], fmt="o", color="C0",
            label="ours (mean ± std over seeds)",
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
        ax.set_title(f"{dataset}: {teacher} -> {student}", fontsize=9)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)
    axes[-1, 0].set_xlabel("best-epoch test top-1 (%; axis range fitted to the data)")
    save_figure(fig, path)


def kd_report(
    params: Mapping[str, Any],
    results_dir: str | os.PathLike[str],
    reported_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    data_root: str | os.PathLike[str] = "data",
) -> list[dict[str, Any]]:
    """Write ``summary.csv``/``.md``/``.html`` (the scorecard), ``runs.csv`` (one per run),
    ``figures/`` and ``provenance.json`` to ``out``."""
    out = Path(out)
    runs = report_runs(str(results_dir), params)
    missing = [r for r in runs if not Path(r).is_file()]
    if missing:
        raise ReproError(f"report: {missing[0]} is missing ({len(missing)} runs missing)")
    results = [json.loads(Path(r).read_text(encoding="utf-8")) for r in runs]
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
    title = f"{TITLES.get(params['paper'], params['paper'])} reproduction"
    run = energy_run(params, results) if params["paper"] == "energy-kd" else None
    listed = [
        ("figures/accuracy.png", "Best-epoch test top-1 of each method per pair (mean and std "
         "over seeds; reported numbers as crosses; teacher and student alone as lines)."),
    ]  # fmt: skip
    if run is not None:
        listed += [
            ("figures/energy_histogram.png", "Teacher energy on the training images with the "
             "global thresholds the Energy KD run computed before training."),
            ("figures/energy_vs_confidence.png", "Teacher energy against its max softmax "
             "probability: low energy = confident."),
        ]  # fmt: skip
    rows = write_scorecard(
        tables, per_run, load_reported(reported_file), out / "summary.csv", out / "summary.md",
        title, notes, listed, out / "summary.html",
    )  # fmt: skip
    write_table(per_run, out / "runs.csv", columns=RUN_COLUMNS)
    figures = out / "figures"
    accuracy_figure(rows, figures / "accuracy.png")
    extra: dict[str, Any] = {}
    if run is not None:
        data_dir = Path(data_root) / run["dataset"]
        meta = read_meta(data_dir)
        train = ArrayData.load(data_dir, "train", "cpu", len(meta["classes"]))
        teacher_ckpt = Path(
            vanilla_dir(str(results_dir), run["dataset"], run["teacher"], params["teacher_seed"])
        )
        teacher = load_model(
            run["teacher"], teacher_ckpt / "model.pt", len(meta["classes"]), train.in_channels
        )
        temperature = run["args"]["temperature"].get("energy_temperature", 4.0)
        norm = run["normalize"]
        energy, conf = teacher_energy_stats(teacher, train, norm["mean"], norm["std"], temperature)
        tau = (run["prepared"]["tau_low"], run["prepared"]["tau_high"])
        what = f"{run['variant']} ({run['teacher']} -> {run['student']}, seed {run['seed']})"
        extra["spearman_energy_confidence"] = energy_figures(energy, conf, tau, figures, what)
    write_provenance(out / "provenance.json", dict(params), None, Path(__file__).parent, **extra)
    return rows
