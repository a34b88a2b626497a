"""The fair KD leaderboard: every method variant on the same pairs, recipe and seeds.

No paper has it (their recipes, epochs and seeds differ). Runs of the same seed see the same
data order and crops (the trainer's per-epoch generators) and each method's own draws come
from a generator seeded from the run's seed (``RandomDraws``), so runs are paired by seed: per
pair, a variant's difference from the baseline (KD) is computed seed by seed, d_k = acc(v, k) -
acc(KD, k), and reported as the mean of d with a two-sided t interval over the n seeds,
mean(d) +- t_{(1+c)/2, n-1} sd(d) / sqrt(n) (the paired t interval; none for n = 1). Per pair
the variants are ranked by mean accuracy (1 = best, ties share the average rank) and the ranks
are averaged over the pairs.

Params: :class:`repro.distill.params.Leaderboard` (made by :func:`repro.distill.plan.leaderboard`).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from repro.core import ReproError
from repro.core.atomic import write_text
from repro.core.params import to_dict
from repro.core.provenance import write_provenance
from repro.core.tables import to_csv, to_markdown
from repro.distill.params import Leaderboard
from repro.distill.plan import leaderboard_runs, split_pair

COLUMNS = [
    "teacher", "student", "variant", "top1", "top1_std", "n", "diff", "diff_std", "ci_low",
    "ci_high", "rank",
]  # fmt: skip
RANK_COLUMNS = ["variant", "mean_rank", "pairs", "above_baseline", "below_baseline"]


def paired_difference(
    values: Sequence[float], baseline: Sequence[float], confidence: float = 0.95
) -> dict[str, float | int | None]:
    """Mean and sample std of d = values - baseline (paired by position: seed k with seed k),
    n, and the two-sided t interval of the mean at ``confidence`` (None for n < 2)."""
    from scipy.stats import t

    if len(values) != len(baseline) or not values:
        raise ValueError(
            f"paired values need equal, non-zero lengths: {len(values)}, {len(baseline)}"
        )
    d = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return {"diff": mean, "diff_std": None, "n": n, "ci_low": None, "ci_high": None}
    sd = float(d.std(ddof=1))
    half = float(t.ppf((1.0 + confidence) / 2.0, n - 1)) * sd / math.sqrt(n)
    return {"diff": mean, "diff_std": sd, "n": n, "ci_low": mean - half, "ci_high": mean + half}


def average_ranks(means: Mapping[str, float]) -> dict[str, float]:
    """Rank by mean accuracy, 1 = best; tied values share the average of their ranks."""
    from scipy.stats import rankdata

    names = list(means)
    ranks = rankdata([-means[n] for n in names], method="average")
    return {n: float(r) for n, r in zip(names, ranks, strict=True)}


def leaderboard_rows(
    board: Leaderboard, results: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per (pair, variant): accuracy (mean, std, n over seeds), paired difference from the
    baseline with its interval, and rank within the pair; then per variant its mean rank over
    the pairs and in how many pairs its interval lies above / below 0."""
    acc = {
        (r.get("teacher"), r["student"], r.get("variant"), r.get("seed")): r["best_top1"]
        for r in results
    }
    base, level = board.baseline, board.confidence
    rows, ranks_by_variant = [], {v: [] for v in board.variants}
    for pair in board.pairs:
        teacher, student = split_pair(pair)
        per: dict[str, list[float]] = {}
        for variant in board.variants:
            try:
                per[variant] = [acc[(teacher, student, variant, s)] for s in board.seeds]
            except KeyError as err:
                raise ReproError(f"leaderboard: no result for {pair} {variant} seed {err}") from err
        ranks = average_ranks({v: statistics.fmean(x) for v, x in per.items()})
        for variant, values in per.items():
            row: dict[str, Any] = {
                "teacher": teacher,
                "student": student,
                "variant": variant,
                "top1": statistics.fmean(values),
                "top1_std": statistics.stdev(values) if len(values) > 1 else None,
                "n": len(values),
                "rank": ranks[variant],
            }
            if variant == base:
                row.update(diff=None, diff_std=None, ci_low=None, ci_high=None)
            else:
                row.update(paired_difference(values, per[base], level))
            rows.append(row)
            ranks_by_variant[variant].append((ranks[variant], row))
    summary = []
    for variant, entries in ranks_by_variant.items():
        summary.append(
            {
                "variant": variant,
                "mean_rank": statistics.fmean(r for r, _ in entries),
                "pairs": len(entries),
                "above_baseline": sum(1 for _, row in entries if (row["ci_low"] or 0) > 0),
                "below_baseline": sum(1 for _, row in entries if (row["ci_high"] or 0) < 0),
            }
        )
    summary.sort(key=lambda r: r["mean_rank"])
    return rows, summary


def differences_figure(rows: Sequence[Mapping[str, Any]], board: Leaderboard, path: Path) -> None:
    """One panel per pair: each variant's mean paired difference from the baseline with its
    t interval; a vertical line at 0 (no difference)."""
    import matplotlib.pyplot as plt

    from repro.core.plotting import save_figure, use_style

    use_style()
    pairs = [split_pair(p) for p in board.pairs]
    variants = [v for v in board.variants if v != board.baseline]
    cols = 1 if len(pairs) == 1 else 2
    nrows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(4.2 * cols, 0.3 * len(variants) * nrows + 1.4 * nrows),
        squeeze=False, sharex=True,
    )  # fmt: skip
    by = {(r["teacher"], r["student"], r["variant"]): r for r in rows}
    y = np.arange(len(variants))
    for ax, (teacher, student) in zip(axes.flat, pairs, strict=False):
        got = [by[(teacher, student, v)] for v in variants]
        mean = np.array([r["diff"] for r in got])
        low = np.array([r["diff"] - (r["ci_low"] if r["ci_low"] is not None else r["diff"])
                        for r in got])  # fmt: skip
        high = np.array([(r["ci_high"] if r["ci_high"] is not None else r["diff"]) - r["diff"]
                         for r in got])  # fmt: skip
        ax.errorbar(mean, y, xerr=[low, high], fmt="o", color="C0", capsize=3)
        ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(y, variants)
        ax.invert_yaxis()
        ax.set_title(f"{teacher} -> {student} (n = {len(board.seeds)} seeds)", fontsize=8)
    for ax in axes.flat[len(pairs) :]:
        ax.set_visible(False)
    level = round(100 * board.confidence)
    for ax in axes[-1, :]:
        ax.set_xlabel(f"top-1 minus {board.baseline} (points; {level} % paired t interval)")
    fig.suptitle(f"{board.title}: {board.dataset}, recipe {board.recipe}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def _html(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], digits: int = 2) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "—"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def leaderboard_report(
    board: Leaderboard, results_dir: str | os.PathLike[str], out: str | os.PathLike[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Write ``summary.csv`` (per pair and variant), ``ranks.csv``, ``summary.md`` and
    ``summary.html``, ``figures/paired_differences.png`` and ``provenance.json`` to ``out``."""
    out = Path(out)
    params = to_dict(board)
    runs = leaderboard_runs(str(results_dir), params)
    missing = [r for r in runs if not Path(r).is_file()]
    if missing:
        raise ReproError(f"leaderboard: {missing[0]} is missing ({len(missing)} runs missing)")
    results = [json.loads(Path(r).read_text(encoding="utf-8")) for r in runs]
    rows, ranks = leaderboard_rows(board, results)
    sizes = sorted({r.get("test_n") for r in results if r.get("test_n") is not None})
    level = round(100 * board.confidence)
    notes = [
        f"Every variant on the same pairs with the same recipe ({board.recipe}) and seeds "
        f"({', '.join(map(str, board.seeds))}): same data order, crops and method draws per "
        "seed, so runs are paired by seed.",
        "top1: best-epoch test top-1 (%), mean and sample std over the n seeds; test images: "
        f"{', '.join(map(str, sizes)) or 'n/a'}.",
        f"diff: the mean over seeds of (variant - {board.baseline}) of the same seed; "
        f"ci_low / ci_high: its two-sided {level} % t interval with n - 1 degrees of freedom "
        "(paired t interval; empty for n = 1).",
        "rank: within the pair by mean top-1 (1 = best, ties share the average rank); "
        "mean_rank: over the pairs; above / below_baseline: pairs whose interval lies above / "
        "below 0.",
    ]
    figure = "figures/paired_differences.png"
    caption = (
        f"Per pair, each variant's top-1 difference from {board.baseline} (mean over seeds "
        f"of the paired differences) with its {level} % t interval."
    )
    title = board.title
    parts = [f"# {title}\n", "## Mean rank over the pairs\n\n" + to_markdown(ranks, RANK_COLUMNS)]
    html = [
        f"<h1>{escape(title)}</h1><h2>Mean rank over the pairs</h2>",
        _html(ranks, RANK_COLUMNS),
    ]
    for pair in board.pairs:
        teacher, student = split_pair(pair)
        sub = [r for r in rows if (r["teacher"], r["student"]) == (teacher, student)]
        heading = f"{board.dataset}: {teacher} -> {student}"
        parts.append(f"## {heading}\n\n" + to_markdown(sub, COLUMNS[2:]))
        html.append(f"<h2>{escape(heading)}</h2>" + _html(sub, COLUMNS[2:]))
    parts.append("\n".join(f"- {n}" for n in notes) + "\n")
    parts.append(f"## Figures\n\n![{caption}]({figure})\n\n{caption}\n")
    html.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    write_text(out / "summary.csv", to_csv(rows, COLUMNS))
    write_text(out / "ranks.csv", to_csv(ranks, RANK_COLUMNS))
    write_text(out / "summary.md", "\n".join(parts))
    write_text(
        out / "summary.html",
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
        "<style>body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:"
        "collapse;margin-bottom:1.5em}th,td{border-bottom:1px solid #ddd;padding:3px 8px;"
        f"text-align:right}}</style></head><body>{''.join(html)}</body></html>\n",
    )
    differences_figure(rows, board, out / figure)
    write_provenance(out / "provenance.json", params, None, Path(__file__).parent)
    return rows, ranks
