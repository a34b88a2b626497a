"""A KD paper's scorecard (its tables over the run pool, beside the reported numbers),
the per-run table and figures; one report for every KD paper.

Params (:func:`repro.distill.plan.report_params`)::

    {"paper": "energy-kd", "tables": [{"title", "dataset", "recipe", "pairs", "variants",
     "seeds", ...}, ...], "teacher_seed": 0, "pretrained": [[dataset, teacher], ...],
     "figures": ["accuracy", ...], "figure_cell": [dataset, teacher, student, variant, recipe,
     seed] | null}

The run folders follow from these (:func:`repro.distill.plan.report_runs`). Figures (the
plan decides which): accuracy by method (every paper); the teacher energies with the thresholds
of the figure run (Energy KD); the CSWT temperatures of the figure run's student and teacher on
test batches (CSKD); accuracy with and without pruning per augmentation (R2KD). The fair
leaderboard (:func:`leaderboard_report`) is in :mod:`repro.distill.leaderboard`.
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
from repro.distill.models import load_trained
from repro.distill.plan import (
    TITLES,
    Cell,
    cell_dir,
    figure_run,
    report_runs,
    scorecard_cells,
    vanilla_dir,
)

KEYS = ("dataset", "teacher", "student", "variant")
TOP1 = Metric("top1", 2, "top-1 (%)")
#: The caption of each figure in summary.md (the Snakemake report's are workflow/report/*.rst).
CAPTIONS = {
    "accuracy": "Best-epoch test top-1 of each method per pair: the mean over n seeds with "
    "the std over seeds as bars, or with one run the 95 % Wilson interval of its accuracy on "
    "the test-set size (each panel's title gives n and the test-set size: a gap inside the "
    "bars is noise, not a ranking); reported numbers as crosses; teacher and student alone as "
    "lines.",
    "energy_histogram": "Teacher energy on the training images with the global thresholds the "
    "Energy KD run computed before training.",
    "energy_vs_confidence": "Teacher energy against its max softmax probability: low energy = "
    "confident.",
    "cswt_temperature": "CSWT: each test image's temperature against its student-teacher "
    "cosine similarity, batch by batch (the scaling is per batch), for the trained CSKD+CSWT "
    "student.",
    "pruning": "R2KD best-epoch test top-1 with and without the pruned teacher, per "
    "augmentation of the extra copy (mean and std over seeds).",
}
#: R2KD arguments a variant may set and still be shown in the pruning figure (the others,
#: e.g. the official code's options, make it another method).
PRUNING_FIGURE_ARGS = {
    "augmentation", "prune", "cutout_size", "autoaugment_policy", "cutmix_alpha",
    "mixup_alpha", "pick", "pick_runs",
}  # fmt: skip
AUGMENTATION_ORDER = ("none", "cutmix", "mixup", "cutout", "autoaugment", "cutmixpick")
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


@torch.no_grad()
def cswt_points(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    data: ArrayData,
    mean: list[float],
    std: list[float],
    batch_size: int,
    policy: Mapping[str, Any],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(similarity s_i, CSWT temperature T_i) of every image of ``data``, batch by batch in
    order (the batch size of training: the scaling is per batch)."""
    from repro.distill.losses.cosine import row_cosine
    from repro.distill.temperature import as_policy

    cswt = as_policy(dict(policy))
    student.eval()
    teacher.eval()
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    out = []
    for images, _ in data.batches(batch_size, shuffle=False):
        x = (images.float() / 255.0 - m) / s
        z_s, z_t = student(x), teacher(x)
        z_s = z_s[0] if isinstance(z_s, tuple) else z_s
        z_t = z_t[0] if isinstance(z_t, tuple) else z_t
        out.append((row_cosine(z_s, z_t).numpy(), cswt(z_s, z_t).numpy()))
    return out


def cswt_figure(points: Sequence[tuple[np.ndarray, np.ndarray]], path: Path, what: str) -> None:
    """Scatter of T_i against s_i for the first batches (one colour each), and the
    distribution of T_i over all test batches."""
    import matplotlib.pyplot as plt

    from repro.core.plotting import save_figure, use_style

    use_style()
    fig, (ax, hist) = plt.subplots(1, 2, figsize=(8.0, 3.4))
    shown = points[:6]
    for i, (sim, temp) in enumerate(shown):
        ax.scatter(sim, temp, s=8, alpha=0.7, label=f"batch {i + 1} (n = {len(sim)})")
    ax.set(
        xlabel="student-teacher cosine similarity s_i (softmax at T = 1)",
        ylabel="CSWT temperature T_i",
    )
    ax.set_title("Per-batch scaling: most similar -> T_min, least -> T_max", fontsize=8)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    temps = np.concatenate([t for _, t in points])
    hist.hist(temps, bins=30, color="C1")
    hist.set(xlabel="CSWT temperature T_i", ylabel="test images")
    hist.set_title(f"All {len(points)} test batches (n = {len(temps)})", fontsize=8)
    fig.suptitle(f"CSWT temperatures of {what}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def pruning_rows(
    rows: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Scorecard rows of the R2KD variants that differ only in augmentation and pruning, with
    their ``augmentation`` and ``prune`` (one variant per setting and pair), for the pairs that
    were also run without pruning."""
    settings: dict[tuple, tuple[str, bool]] = {}
    for r in results:
        args = r.get("args") or {}
        if r.get("method") != "r2kd" or set(args) - PRUNING_FIGURE_ARGS:
            continue
        key = (r["dataset"], r.get("teacher"), r["student"], r.get("variant"))
        settings[key] = (args.get("augmentation", "none"), bool(args.get("prune", True)))
    out: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = (row["dataset"], row.get("teacher"), row["student"], row.get("variant"))
        if key in settings and row.get("top1_ours") is not None:
            aug, prune = settings[key]
            out.setdefault((*key[:3], aug, prune), {**row, "augmentation": aug, "prune": prune})
    ablated = {k[:3] for k in out if not k[4]}  # pairs run without pruning too
    return [row for k, row in out.items() if k[:3] in ablated]


def pruning_figure(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Grouped bars per (dataset, pair): per augmentation, with and without pruning."""
    import matplotlib.pyplot as plt

    from repro.core.plotting import save_figure, use_style

    use_style()
    pairs = list(dict.fromkeys((r["dataset"], r["teacher"], r["student"]) for r in rows))
    fig, axes = plt.subplots(
        max(len(pairs), 1), 1, figsize=(6.0, 2.6 * max(len(pairs), 1)), squeeze=False
    )
    if not pairs:
        axes[0, 0].text(0.5, 0.5, "no pair was run both with and without pruning",
                        ha="center", va="center", transform=axes[0, 0].transAxes)  # fmt: skip
    for ax, (dataset, teacher, student) in zip(axes[:, 0], pairs, strict=False):
        cells = [r for r in rows if (r["dataset"], r["teacher"], r["student"]) == (
            dataset, teacher, student)]  # fmt: skip
        augs = [a for a in AUGMENTATION_ORDER if any(r["augmentation"] == a for r in cells)]
        x = np.arange(len(augs))
        lows = []
        for offset, prune, label in ((-0.2, True, "pruned teacher blend (R2KD)"),
                                     (0.2, False, "teacher alone (no pruning)")):  # fmt: skip
            got = {r["augmentation"]: r for r in cells if r["prune"] == prune}
            idx = [i for i, a in enumerate(augs) if a in got]
            if not idx:
                continue
            means = [got[augs[i]]["top1_ours"] for i in idx]
            stds = [got[augs[i]].get("top1_std") or 0.0 for i in idx]
            lows += [m - s for m, s in zip(means, stds, strict=True)]
            bars = ax.bar(x[idx] + offset, means, width=0.38, yerr=stds, capsize=3,
                          label=label)  # fmt: skip
            for bar, i in zip(bars, idx, strict=True):
                n = got[augs[i]].get("n")
                ax.annotate(f"n={n}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=6)  # fmt: skip
        ax.set_xticks(x, augs)
        top = max(r["top1_ours"] + (r.get("top1_std") or 0.0) for r in cells)
        ax.set_ylim(max(0.0, min(lows) - 2.0), min(100.0, top + 2.0))
        ax.set_ylabel("best-epoch top-1 (%)")
        ax.set_title(f"{dataset}: {teacher} -> {student} (axis does not start at 0)", fontsize=8)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[-1, 0].set_xlabel("augmentation of R2KD's extra copy of the batch")
    fig.tight_layout()
    save_figure(fig, path)


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


def _teacher_model(
    results_dir: str | os.PathLike[str], params: Mapping[str, Any], run: Mapping[str, Any],
    classes: int, channels: int,
) -> torch.nn.Module:  # fmt: skip
    if [run["dataset"], run["teacher"]] in params["pretrained"]:
        raise ReproError(
            f"report: the figure run {run['variant']} ({run['dataset']}) distils from a "
            "pretrained teacher; the figures need a teacher trained here (put another table "
            "first)"
        )
    ckpt = Path(
        vanilla_dir(str(results_dir), run["dataset"], run["teacher"], params["teacher_seed"])
    )
    return load_trained(run["teacher"], ckpt / "model.pt", classes, channels)


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
    title = f"{TITLES.get(params['paper'], params['paper'])} reproduction"
    figures = list(params.get("figures", ["accuracy"]))
    listed = [(f"figures/{name}.png", CAPTIONS[name]) for name in figures]
    rows = write_scorecard(
        tables, per_run, load_reported(reported_file), out / "summary.csv", out / "summary.md",
        title, notes, listed, out / "summary.html",
    )  # fmt: skip
    write_table(per_run, out / "runs.csv", columns=RUN_COLUMNS)
    fig_dir = out / "figures"
    accuracy_figure(rows, fig_dir / "accuracy.png")
    extra: dict[str, Any] = {}
    run = figure_run(params, results)
    if {"energy_histogram", "cswt_temperature"} & set(figures) and run is None:
        if not partial:
            raise ReproError(f"report: the figure run {params.get('figure_cell')} is missing")
        for name in {"energy_histogram", "energy_vs_confidence", "cswt_temperature"} & set(figures):
            placeholder_figure(
                fig_dir / f"{name}.png", f"not drawn: the run {params['figure_cell']} is missing"
            )
        figures = [f for f in figures if f in ("accuracy", "pruning")]
    if {"energy_histogram", "cswt_temperature"} & set(figures):
        data_dir = Path(data_root) / run["dataset"]
        meta = read_meta(data_dir)
        classes = len(meta["classes"])
        split = "train" if "energy_histogram" in figures else "test"
        data = ArrayData.load(data_dir, split, "cpu", classes)
        teacher = _teacher_model(results_dir, params, run, classes, data.in_channels)
        norm = run["normalize"]
        what = f"{run['variant']} ({run['teacher']} -> {run['student']}, seed {run['seed']})"
    if "energy_histogram" in figures:
        temperature = run["args"]["temperature"].get("energy_temperature", 4.0)
        energy, conf = teacher_energy_stats(teacher, data, norm["mean"], norm["std"], temperature)
        tau = (run["prepared"]["tau_low"], run["prepared"]["tau_high"])
        extra["spearman_energy_confidence"] = energy_figures(energy, conf, tau, fig_dir, what)
    if "cswt_temperature" in figures:
        run_dir = Path(cell_dir(str(results_dir), Cell(*params["figure_cell"])))
        student = load_trained(run["student"], run_dir / "model.pt", classes, data.in_channels)
        points = cswt_points(
            student, teacher, data, norm["mean"], norm["std"], run.get("batch_size", 64),
            run["args"]["temperature"],
        )  # fmt: skip
        cswt_figure(points, fig_dir / "cswt_temperature.png", what)
        temps = np.concatenate([t for _, t in points])
        extra["cswt_temperature_mean"] = float(temps.mean())
    if "pruning" in figures:
        pruning_figure(pruning_rows(rows, results), fig_dir / "pruning.png")
    write_provenance(out / "provenance.json", dict(params), None, Path(__file__).parent, **extra)
    return rows
