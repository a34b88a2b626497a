"""R2KD: KD with a pruned copy of the teacher and an augmented extra copy of the batch. Its
scorecard's own figure: accuracy with and without pruning per augmentation (our ablation),
when a table has an ``r2kd`` variant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro.distill import plan
from repro.distill.papers.base import KDPaper

if TYPE_CHECKING:
    from repro.distill.report import FigureContext

#: R2KD arguments a variant may set and still be shown in the pruning figure (the others,
#: e.g. the official code's options, make it another method).
PRUNING_FIGURE_ARGS = {
    "augmentation", "prune", "cutout_size", "autoaugment_policy", "cutmix_alpha",
    "mixup_alpha", "pick", "pick_runs",
}  # fmt: skip
AUGMENTATION_ORDER = ("none", "cutmix", "mixup", "cutout", "autoaugment", "cutmixpick")


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
    import numpy as np

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


class R2KD(KDPaper):
    name = "r2kd"
    title = "R2KD"
    labels = {"pruning": "accuracy with and without pruning"}
    captions = {
        "pruning": "R2KD best-epoch test top-1 with and without the pruned teacher, per "
        "augmentation of the extra copy (mean and std over seeds).",
    }

    def figures(self, config: dict[str, Any]) -> list[str]:
        """Accuracy with and without pruning, when a table has a variant of method r2kd."""
        pool = config.get(plan.POOL, {})
        tables = plan.tables(config, self.name)
        methods = {pool["variants"][v]["method"] for t in tables for v in t["variants"]}
        return ["pruning"] if "r2kd" in methods else []

    def draw(self, names: list[str], figures: FigureContext) -> dict[str, Any]:
        """The pruning ablation from the scorecard's rows and the runs' arguments."""
        if "pruning" in names:
            pruning_figure(
                pruning_rows(figures.rows, figures.results), figures.fig_dir / "pruning.png"
            )
        return {}


PAPER = R2KD()
