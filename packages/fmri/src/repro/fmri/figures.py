"""Report figures: example stimuli with magnified perturbations, RDM panels, ROI x layer plot."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from repro.core.plotting import save_figure, use_style
from repro.fmri import rdm as rdmlib
from repro.fmri.stimuli import CONDITIONS, StimulusSet


def example_stimuli(
    stim: StimulusSet, path: str | os.PathLike[str], n_examples: int = 4, seed: int = 0
) -> None:
    """Rows: source images; columns: clean, white-box, black-box, and the two perturbations
    (adversarial - clean) magnified to the full grey range (mid-grey = 0)."""
    import matplotlib.pyplot as plt

    use_style()
    trip = stim.triplets()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(trip), size=min(n_examples, len(trip)), replace=False))
    eps = max(float(r["epsilon"]) for r in stim.table) or 1.0
    cols = ["clean", "white-box", "black-box", "white - clean", "black - clean"]
    fig, axes = plt.subplots(len(rows), 5, figsize=(7.5, 1.55 * len(rows) + 0.6), squeeze=False)
    grey = stim.images.shape[-1] == 1
    for i, k in enumerate(rows):
        imgs = [stim.images[j] for j in trip[k]]
        diffs = [imgs[1].astype(float) - imgs[0], imgs[2].astype(float) - imgs[0]]
        panels = imgs + [np.clip(0.5 + d / (2 * eps), 0, 1) for d in diffs]
        for j, img in enumerate(panels):
            ax = axes[i, j]
            shown = img[..., 0] if grey else img
            ax.imshow(shown, cmap="gray", vmin=0, vmax=255 if j < 3 else 1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if i == 0:
                ax.set_title(cols[j], fontsize=8)
            if j < 3:
                row = stim.table[trip[k][j]]
                pred = row.get("target_pred", "")
                ax.set_xlabel(f"class {row['class_name']}, target: {pred}", fontsize=7)
    fig.suptitle(
        f"Example stimuli; perturbations magnified: mid-grey = 0, black/white = -/+{eps:g} "
        "(pixel units of 0..255)",
        fontsize=8,
    )
    save_figure(fig, path)


def _percentile(v: np.ndarray) -> np.ndarray:
    return 100.0 * (rdmlib.ranks(v) - 1) / max(1, len(v) - 1)


def rdm_panels(
    rdms: dict[str, np.ndarray],
    stim: StimulusSet,
    path: str | os.PathLike[str],
    ncols: int = 4,
    brain_data: str | None = None,
) -> None:
    """RDMs as matrices (percentile of dissimilarity), condition blocks outlined;
    ``brain_data`` (``simulated``/``measured``) is named in the title when ROIs are shown."""
    import matplotlib.pyplot as plt

    use_style()
    names = list(rdms)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 2.4 * nrows + 0.3), squeeze=False)
    cond = stim.conditions
    edges = [np.flatnonzero(cond == c)[0] - 0.5 for c in CONDITIONS[1:] if np.any(cond == c)]
    image = None
    for ax, name in zip(axes.ravel(), names, strict=False):
        image = ax.imshow(
            rdmlib.to_matrix(_percentile(rdms[name])), cmap="viridis", vmin=0, vmax=100
        )
        for e in edges:
            ax.axhline(e, color="white", lw=0.6)
            ax.axvline(e, color="white", lw=0.6)
        ax.set_title(name, fontsize=8)
        ax.grid(False)
        ticks = [np.mean(np.flatnonzero(cond == c)) for c in CONDITIONS if np.any(cond == c)]
        ax.set_xticks(ticks, [c for c in CONDITIONS if np.any(cond == c)], fontsize=6)
        ax.set_yticks(ticks, [c for c in CONDITIONS if np.any(cond == c)], fontsize=6)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    if image is not None:
        cbar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.7, pad=0.02)
        cbar.set_label("dissimilarity (percentile)")
    where = f"; ROI RDMs from {brain_data} fMRI data" if brain_data else ""
    fig.suptitle(f"RDMs over {len(cond)} stimuli (clean, white-box, black-box){where}", fontsize=9)
    save_figure(fig, path)


def roi_layer_plot(
    relatedness: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    comparison: str = "spearman",
    alpha: float = 0.05,
    data: str = "simulated",
) -> None:
    """Similarity of each ROI RDM with each reference RDM; filled markers: significant
    after correction. ``data``: ``simulated`` or ``measured`` fMRI data, named in the title."""
    import matplotlib.pyplot as plt

    use_style()
    refs = list(dict.fromkeys(r["reference"] for r in relatedness))
    rois = list(dict.fromkeys(r["roi"] for r in relatedness))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(refs) + 2.5), 3.4))
    x = np.arange(len(refs))
    for k, roi in enumerate(rois):
        rows = {r["reference"]: r for r in relatedness if r["roi"] == roi}
        y = np.array([rows[ref]["r"] for ref in refs])
        sig = np.array([rows[ref]["p_adjusted"] < alpha for ref in refs])
        color = f"C{k}"
        ax.plot(x, y, "-", color=color, lw=1, label=f"{roi} ROI")
        ax.plot(x[sig], y[sig], "o", color=color, ms=5)
        ax.plot(x[~sig], y[~sig], "o", mfc="white", color=color, ms=5)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xticks(x, refs, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("reference RDM (model or network/layer)")
    label = {"spearman": "Spearman rho", "tau-a": "Kendall tau-a", "pearson": "Pearson r"}
    ax.set_ylabel(f"{label.get(comparison, comparison)} with ROI RDM")
    ax.plot([], [], "o", color="0.3", label=f"significant (adjusted p < {alpha:g})")
    ax.plot([], [], "o", mfc="white", color="0.3", label="not significant")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    ax.set_title(f"ROI x reference RDM similarity (group-mean ROI RDMs, {data} fMRI data)")
    save_figure(fig, path)


def wb_plot(
    dnn_wb: dict[str, Sequence[dict[str, Any]]],
    brain_wb: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    alpha: float = 0.05,
    brain_data: str | None = "simulated",
) -> None:
    """White- minus black-box displacement from clean as an effect size (mean / sd over
    source images), per network layer and per ROI (``brain_data``: ``simulated`` or
    ``measured`` fMRI data, named in the panel's title; ``None``: no fMRI data); filled bars
    significant after correction."""
    import matplotlib.pyplot as plt

    use_style()
    groups = [(net, rows, "layer") for net, rows in dnn_wb.items()]
    groups.append((f"brain ROIs ({brain_data or 'no'} fMRI data)", brain_wb, "roi"))
    widths = [max(1, len(rows)) for _, rows, _ in groups]
    fig, axes = plt.subplots(
        1, len(groups), figsize=(2.0 + 0.5 * sum(widths), 3.2), sharey=True,
        gridspec_kw={"width_ratios": widths}, squeeze=False,
    )  # fmt: skip
    for ax, (title, rows, key) in zip(axes[0], groups, strict=True):
        names = [r[key] for r in rows]
        vals = [r["effect_size"] for r in rows]
        sig = [r["p_adjusted"] < alpha for r in rows]
        for i, (v, s) in enumerate(zip(vals, sig, strict=True)):
            ax.bar(i, v, color="C1" if s else "white", edgecolor="C1")
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0, 0].set_ylabel(
        "effect size: mean / sd over images\nof d(clean, white) - d(clean, black)"
    )
    fig.suptitle(
        f"White- vs black-box representational difference (filled: adjusted p < {alpha:g})",
        fontsize=9,
    )
    save_figure(fig, path)
