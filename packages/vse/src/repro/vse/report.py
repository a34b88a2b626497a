"""The MHSAN scorecard (paper tables beside our runs), its figures and provenance.

Params: :func:`repro.vse.plan.report_params`. One table per (dataset, protocol) the run
trains, e.g. COCO 1K, COCO 5K and Flickr30K 1K; rows are (dataset, protocol, direction,
heads, diversity, model) with R@1/5/10 in percent, printed to one decimal as the paper prints
them. Published rows (this package's ``reported/mhsan.yaml``) match on dataset, protocol, direction,
heads and diversity, so each table shows the reported numbers of its own dataset only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.core import ReproError
from repro.core.params import parse
from repro.core.plotting import save_figure, use_style
from repro.core.provenance import write_provenance
from repro.core.scorecard import Metric, Table, load_reported, write_scorecard
from repro.core.tables import write_table

KEYS = ("dataset", "protocol", "direction", "heads", "diversity", "model")
MATCH = ("dataset", "protocol", "direction", "heads", "diversity")
METRICS = (Metric("r1", 1, "R@1"), Metric("r5", 1, "R@5"), Metric("r10", 1, "R@10"))
DIRECTIONS = {"i2t": "sentence retrieval (image -> text)", "t2i": "image retrieval (text -> image)"}
PROTOCOL_TITLES = {
    "full": "the whole test set",
    "coco_1k": "MS-COCO 1K test (mean over 5 folds)",
    "coco_5k": "MS-COCO 5K test",
    "f30k_1k": "Flickr30K 1K test",
}


@dataclass(frozen=True)
class ModelSpec:
    """A scorecard row's model: its heads and whether the diversity penalty trained it."""

    heads: int
    diversity: bool


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's models and the protocols its tables show."""

    models: dict[str, ModelSpec]
    protocols: list[str]


@dataclass(frozen=True)
class FigureSpec:
    """The run whose attention maps the figure shows."""

    dataset: str
    model: str


@dataclass(frozen=True)
class ReportParams:
    """The scorecard job's ``--params`` (:func:`repro.vse.plan.report_params`)."""

    datasets: dict[str, DatasetSpec]
    seeds: list[int]
    figure: FigureSpec
    test_images: int | None = None


def run_rows(
    params: ReportParams, dataset: str, name: str, result: Mapping[str, Any]
) -> list[dict]:
    """One run's scorecard rows: per protocol and direction, R@1/5/10 (and the run's rsum)."""
    spec = params.datasets[dataset].models[name]
    rows = []
    for protocol, metrics in result["metrics"].items():
        for d in DIRECTIONS:
            rows.append(
                {
                    "dataset": dataset,
                    "protocol": protocol,
                    "direction": d,
                    "heads": spec.heads,
                    "diversity": "yes" if spec.diversity else "no",
                    "model": name,
                    "r1": metrics[f"{d}_r1"],
                    "r5": metrics[f"{d}_r5"],
                    "r10": metrics[f"{d}_r10"],
                    "medr": metrics[f"{d}_medr"],
                    "rsum": metrics["rsum"],
                    "test_n": result["test_n"]["images"],
                }
            )
    return rows


def _model_on(checkpoint: Path, device: str = "cpu") -> tuple[torch.nn.Module, Any, Any]:
    from repro.core.checkpoint import load_checkpoint
    from repro.vse.data import Vocabulary
    from repro.vse.models import MHSAN
    from repro.vse.train import RunParams

    state = load_checkpoint(checkpoint, map_location=device)
    run = parse(RunParams, state["params"], f"{checkpoint}: params")
    vocab = Vocabulary(list(state["vocab"]))
    model = MHSAN(dataclasses.replace(run.model, backbone_weights=None), len(vocab))
    model.load_state_dict(state["model"])
    return model.eval(), run, vocab


@torch.no_grad()
def attention_figure(
    checkpoint: Path, split_file: str, images: str, out: Path, item: int = 0
) -> None:
    """One test image with each head's spatial attention over it, and its first caption with
    each head's attention over the words (the model named in the title)."""
    import matplotlib.pyplot as plt

    from repro.vse.data import load_karpathy, read_image

    model, run, vocab = _model_on(checkpoint)
    test = load_karpathy(split_file, images, ["test"])
    image = read_image(test.paths[item])
    x = run.preprocess_eval(image)[None]
    _, att_img = model.embed_images(x)  # (1, r, l)
    fmap = model.backbone(x)
    h, w = fmap.shape[-2:]
    caption = test.captions[5 * item]
    tokens, lengths = vocab.encode([caption])
    _, att_txt = model.embed_texts(tokens, lengths)  # (1, r, n)
    r = att_img.shape[1]
    use_style()
    cols = min(r, 5)
    rows = (r + cols - 1) // cols
    fig = plt.figure(figsize=(2.0 * (cols + 1), 2.0 * rows + 2.2))
    grid = fig.add_gridspec(rows + 1, cols + 1, height_ratios=[1.0] * rows + [0.9])
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(image.permute(1, 2, 0).numpy())
    ax.set_title("test image", fontsize=8)
    ax.axis("off")
    for k in range(r):
        ax = fig.add_subplot(grid[k // cols, 1 + k % cols])
        ax.imshow(image.permute(1, 2, 0).numpy())
        heat = att_img[0, k].reshape(1, 1, h, w)
        heat = torch.nn.functional.interpolate(heat, size=image.shape[-2:], mode="nearest")[0, 0]
        ax.imshow(heat.numpy(), alpha=0.6, cmap="magma")
        ax.set_title(f"head {k + 1}", fontsize=8)
        ax.axis("off")
    ax = fig.add_subplot(grid[rows, :])
    words = caption[: int(lengths[0])]
    im = ax.imshow(att_txt[0, :, : len(words)].numpy(), aspect="auto", cmap="magma")
    ax.set_xticks(range(len(words)), words, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(r), [f"head {k + 1}" for k in range(r)], fontsize=6)
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="attention weight", fraction=0.03)
    fig.suptitle(
        f"MHSAN attention ({r} heads): image positions ({h}x{w} map) and caption words",
        fontsize=9,
    )
    save_figure(fig, out)


def heads_figure(rows: Sequence[Mapping[str, Any]], out: Path, dataset: str = "") -> None:
    """R@1 in both directions and rsum against the number of heads (diversity on; mean and
    min/max over seeds) on the first row's protocol."""
    import matplotlib.pyplot as plt

    use_style()
    protocol = rows[0]["protocol"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.2))
    mine = [r for r in rows if r["protocol"] == protocol and r["diversity"] == "yes"]
    heads = sorted({r["heads"] for r in mine})
    for d, marker in (("i2t", "o"), ("t2i", "s")):
        per = [[r["r1"] for r in mine if r["heads"] == h and r["direction"] == d] for h in heads]
        left.errorbar(
            heads, [np.mean(v) for v in per],
            yerr=[[np.mean(v) - min(v) for v in per], [max(v) - np.mean(v) for v in per]],
            marker=marker, capsize=3, label=DIRECTIONS[d],
        )  # fmt: skip
    rsum = [[r["rsum"] for r in mine if r["heads"] == h and r["direction"] == "i2t"] for h in heads]
    right.errorbar(
        heads, [np.mean(v) for v in rsum],
        yerr=[[np.mean(v) - min(v) for v in rsum], [max(v) - np.mean(v) for v in rsum]],
        marker="o", capsize=3, color="C2",
    )  # fmt: skip
    left.set(xlabel="attention heads r", ylabel="R@1 (%)", xticks=heads)
    right.set(xlabel="attention heads r", ylabel="rsum (sum of six recalls, %)", xticks=heads)
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    fig.suptitle(
        f"Recall against the number of heads ({PROTOCOL_TITLES.get(protocol, protocol)}"
        f"{f' of {dataset}' if dataset else ''}; mean over seeds, bars: range)",
        fontsize=9,
    )
    save_figure(fig, out)


def _reported_rows(reported_file: str | os.PathLike[str]) -> list[dict[str, Any]]:
    rows = load_reported(reported_file)
    for i, row in enumerate(rows):
        if not row.get("dataset"):
            raise ReproError(f"{reported_file}: rows[{i}] has no dataset (coco or f30k)")
        row["diversity"] = "yes" if row.get("diversity", True) else "no"
    return rows


def scorecard(
    params: ReportParams,
    results_dir: str | os.PathLike[str],
    reported_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``summary.{csv,md,html}`` and ``runs.csv``: a table per (dataset, protocol), each with
    our runs of that dataset and the reported rows of that dataset and protocol (published
    rows we did not run have an empty ours). Returns (the scorecard's rows, our run rows)."""
    from repro.vse.plan import run_dir

    out = Path(out)
    ours: list[dict[str, Any]] = []
    for dataset, spec in params.datasets.items():
        for name in spec.models:
            for seed in params.seeds:
                path = Path(run_dir(str(results_dir), dataset, name, seed)) / "result.json"
                if not path.is_file():
                    raise ReproError(f"report: {path} is missing")
                result = json.loads(path.read_text(encoding="utf-8"))
                ours += [{**row, "seed": seed} for row in run_rows(params, dataset, name, result)]
    reported = _reported_rows(reported_file)
    tables, shown = [], []
    for dataset, spec in params.datasets.items():
        for protocol in spec.protocols:
            here = {"dataset": dataset, "protocol": protocol}
            mine = [r for r in ours if all(r[k] == v for k, v in here.items())]
            theirs = [r for r in reported if all(r.get(k) == v for k, v in here.items())]
            cells = list({tuple(r[k] for k in KEYS): {k: r[k] for k in KEYS}
                          for r in mine}.values())  # fmt: skip
            cells += [
                {**{k: rep.get(k) for k in KEYS}, "model": None, "planned": False}
                for rep in theirs
                if not any(all(rep.get(k) == c[k] for k in MATCH) for c in cells)
            ]
            tables.append(
                Table(
                    f"{PROTOCOL_TITLES.get(protocol, protocol)} ({dataset})",
                    keys=KEYS,
                    metrics=METRICS,
                    cells=sorted(
                        cells,
                        key=lambda c: (
                            c["direction"],
                            c["heads"],
                            c["diversity"],
                            c["model"] or "",
                        ),
                    ),
                    match=MATCH,
                )
            )
            shown += theirs
    listed = [
        ("figures/attention.png", "Each head's attention over one test image and its caption."),
        ("figures/recall_vs_heads.png", "R@1 and rsum against the number of attention heads."),
    ]
    notes = [
        "ours: recall in percent on the test images (test images column; 5 captions each), mean "
        "over n seeds with the sample std; each model selected by its best validation rsum.",
        "reported: Park et al. (WACV 2020) tables with their sources; rows without a model "
        "were not run here. difference = ours - reported.",
    ]
    if "synthetic" in params.datasets:
        notes.append(
            "The quick run uses a synthetic captioned-shapes set (repro-vse make-synthetic) "
            "with a small CNN: its numbers are not comparable with COCO or Flickr30K."
        )
    if params.test_images is not None:
        notes.append(
            f"Every test protocol was scaled to {params.test_images} test images "
            "(mhsan.test_images; COCO 1K: 5 folds of a fifth of them): not the paper's test "
            "sets, so the numbers are not comparable with the reported ones."
        )
    rows = write_scorecard(
        tables, ours, shown, out / "summary.csv", out / "summary.md",
        "MHSAN reproduction", notes, listed, out / "summary.html",
    )  # fmt: skip
    write_table(
        ours,
        out / "runs.csv",
        columns=["dataset", "protocol", "direction", "model", "heads", "diversity", "seed", "r1",
                 "r5", "r10", "medr", "rsum", "test_n"],
    )  # fmt: skip
    return rows, ours


def mhsan_report(
    params: Mapping[str, Any],
    results_dir: str | os.PathLike[str],
    reported_file: str | os.PathLike[str],
    split_file: str,
    images: str,
    out: str | os.PathLike[str],
) -> list[dict[str, Any]]:
    """:func:`scorecard`, ``figures/`` and ``provenance.json``; ``split_file`` and ``images``
    are those of the figure's dataset (``params["figure"]``)."""
    from repro.vse.plan import run_dir

    report = parse(ReportParams, params, "params")
    out = Path(out)
    rows, ours = scorecard(report, results_dir, reported_file, out)
    dataset, model = report.figure.dataset, report.figure.model
    figure_run = Path(run_dir(str(results_dir), dataset, model, report.seeds[0]))
    attention_figure(figure_run / "model.pt", split_file, images, out / "figures/attention.png")
    protocol = report.datasets[dataset].protocols[0]
    mine = [r for r in ours if r["dataset"] == dataset and r["protocol"] == protocol]
    heads_figure(mine, out / "figures/recall_vs_heads.png", dataset)
    write_provenance(out / "provenance.json", dict(params), None, Path(__file__).parent)
    return rows
