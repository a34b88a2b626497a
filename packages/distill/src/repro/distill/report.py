"""Paper reports: summary table beside the reported numbers, figures, provenance."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.core.provenance import write_provenance
from repro.core.tables import write_table
from repro.data.arrays import read_meta
from repro.distill.arraydata import ArrayData
from repro.distill.losses import energy_score, energy_thresholds
from repro.distill.run import load_model

SUMMARY_COLUMNS = [
    "method",
    "dataset",
    "teacher",
    "student",
    "seeds",
    "top1_best",
    "top1_best_std",
    "top1_final",
    "top5_final",
    "epochs",
    "paper_top1",
    "paper_source",
]
COLUMNS = [
    "method",
    "dataset",
    "teacher",
    "student",
    "seed",
    "top1_final",
    "top1_best",
    "top5_final",
    "epochs",
    "paper_top1",
    "paper_source",
]


def _reported(reported: Sequence[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any] | None:
    for rep in reported:
        if all(rep.get(k) == row.get(k) for k in ("method", "dataset", "teacher", "student")):
            return rep
    return None


def summary_rows(
    results: Sequence[dict[str, Any]], reported: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per run; ``paper_top1`` only where the paper reports that exact setting."""
    rows = []
    for res in results:
        row = {
            "method": res["method"],
            "dataset": res["dataset"],
            "teacher": res.get("teacher"),
            "student": res["student"],
            "seed": res["seed"],
            "top1_final": res["final_top1"],
            "top1_best": res["best_top1"],
            "top5_final": res["final_top5"],
            "epochs": res["epochs"],
        }
        rep = _reported(reported, row)
        row["paper_top1"] = rep["top1"] if rep else None
        row["paper_source"] = rep["source"] if rep else None
        rows.append(row)
    order = {
        m: i
        for i, m in enumerate(["teacher", "ce", "kd", "dkd", "energy_kd", "energy_dkd", "heda"])
    }
    return sorted(rows, key=lambda r: (order.get(r["method"], 99), r["student"], r["seed"] or 0))


def aggregate_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per setting: mean over seeds (sample std of the best-epoch top-1 when n > 1)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(
            (row["method"], row["dataset"], row["teacher"], row["student"]), []
        ).append(row)
    out = []
    for (method, dataset, teacher, student), group in groups.items():
        best = np.array([r["top1_best"] for r in group], dtype=float)
        out.append(
            {
                "method": method,
                "dataset": dataset,
                "teacher": teacher,
                "student": student,
                "seeds": len(group),
                "top1_best": float(best.mean()),
                "top1_best_std": float(best.std(ddof=1)) if len(group) > 1 else None,
                "top1_final": float(np.mean([r["top1_final"] for r in group])),
                "top5_final": float(np.mean([r["top5_final"] for r in group])),
                "epochs": group[0]["epochs"],
                "paper_top1": group[0]["paper_top1"],
                "paper_source": group[0]["paper_source"],
            }
        )
    return out


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
    energy: np.ndarray,
    confidence: np.ndarray,
    tau: tuple[float, float],
    rows: Sequence[dict[str, Any]],
    fig_dir: Path,
) -> dict[str, float]:
    """The energy-vs-confidence scatter, the energy histogram and the accuracy bars."""
    import matplotlib.pyplot as plt
    from scipy.stats import spearmanr

    from repro.core.plotting import save_figure, use_style

    use_style()
    rho = float(spearmanr(energy, confidence).statistic)
    fig, ax = plt.subplots()
    ax.scatter(energy, confidence, s=4, alpha=0.4)
    ax.set(
        xlabel="teacher energy E = -T log sum exp(z/T)",
        ylabel="max softmax probability",
        title=f"Low energy = confident (Spearman rho = {rho:.3f}, n = {len(energy)})",
    )
    save_figure(fig, fig_dir / "energy_vs_confidence.png")

    fig, ax = plt.subplots()
    ax.hist(energy, bins=50)
    for t, name in zip(tau, ("tau_low", "tau_high"), strict=True):
        ax.axvline(t, color="C1", linestyle="--")
        ax.annotate(name, (t, ax.get_ylim()[1] * 0.9), rotation=90, ha="right")
    ax.set(
        xlabel="teacher energy",
        ylabel="training images",
        title="Teacher energy on the training set, with the global thresholds",
    )
    save_figure(fig, fig_dir / "energy_histogram.png")

    fig, ax = plt.subplots()
    labels = [f"{r['method']}\n{r['student']}" for r in rows]
    ax.bar(range(len(rows)), [r["top1_best"] for r in rows], color="C0", label="best epoch")
    ax.scatter(
        range(len(rows)), [r["top1_final"] for r in rows], color="C1", zorder=3, label="final epoch"
    )
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    lo = min(min(r["top1_final"], r["top1_best"]) for r in rows)
    ax.set(ylabel="test top-1 (%)", ylim=(max(0, lo - 5), 100), title="Top-1 by method")
    ax.legend()
    save_figure(fig, fig_dir / "accuracy.png")
    return {"spearman_energy_confidence": rho}


def energy_kd_report(
    runs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    params: dict[str, Any],
    data_dir: str | os.PathLike[str],
    teacher_ckpt: str | os.PathLike[str],
    teacher_model: str,
    seed: int,
) -> list[dict[str, Any]]:
    """Write ``summary.csv``/``.md`` (mean over seeds), ``runs.csv`` (one row per run),
    ``figures/`` and ``provenance.json`` to ``out``."""
    out = Path(out)
    results = [json.loads(Path(r).read_text(encoding="utf-8")) for r in runs]
    per_run = summary_rows(results, params.get("reported", []))
    rows = aggregate_rows(per_run)
    meta = read_meta(data_dir)
    train = ArrayData.load(data_dir, "train", "cpu", len(meta["classes"]))
    teacher = load_model(teacher_model, teacher_ckpt, len(meta["classes"]), train.in_channels)
    norm = params.get("normalize", {})
    mean = norm.get("mean", [0.5] * train.in_channels)
    std = norm.get("std", [0.5] * train.in_channels)
    energy_t = params.get("energy_temperature", 4.0)
    energy, conf = teacher_energy_stats(teacher, train, mean, std, energy_t)
    r_low, r_high = params.get("r_low", 0.2), params.get("r_high", 0.2)
    lo, hi = energy_thresholds(torch.from_numpy(energy), r_low, r_high)
    stats = energy_figures(energy, conf, (float(lo), float(hi)), rows, out / "figures")
    notes = [
        "top1_best is the best test accuracy over epochs (what the papers report); "
        "top1_final is the last epoch's; both are means over `seeds` runs (std: sample std "
        "over seeds); runs.csv has one row per run.",
        f"Teacher energy vs max-softmax confidence on the training set: Spearman rho = "
        f"{stats['spearman_energy_confidence']:.3f} (negative: low energy = confident).",
        "paper_top1 is filled only where the paper reports the same dataset and pair; "
        "empty cells are not reproduced here.",
        f"Temperature direction: {params.get('direction', 'paper')} (see docs/energy-kd.md).",
    ]
    if any(r["epochs"] == 0 for r in rows):
        notes.append(
            "epochs 0: a pretrained teacher from the user's weights file "
            "(energy_kd.pretrained_teachers), scored here on the test split, not trained here."
        )
    write_table(per_run, out / "runs.csv", columns=COLUMNS)
    write_table(
        rows,
        out / "summary.csv",
        out / "summary.md",
        SUMMARY_COLUMNS,
        title=f"Energy KD reproduction ({meta['name']})",
        notes=notes,
    )
    write_provenance(
        out / "provenance.json",
        params,
        seed,
        Path(__file__).parent,
        spearman_energy_confidence=stats["spearman_energy_confidence"],
    )
    return rows
