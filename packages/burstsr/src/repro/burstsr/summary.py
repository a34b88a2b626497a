"""The burst SR scorecard (our models beside the published methods) and its two figures.

Params: :func:`repro.burstsr.plan.summary_params`; published numbers: a reported file
(``config/reported/burst-sr.yaml``) read with :func:`repro.core.scorecard.load_reported`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.burstsr import camera
from repro.burstsr.valset import load_val
from repro.core.plotting import save_figure, use_style
from repro.core.scorecard import Metric, Table, load_reported, write_scorecard

#: Precision as the papers print it: PSNR in dB to 2 decimals, SSIM and LPIPS to 3.
METRICS = (Metric("psnr", 2, "PSNR (dB)"), Metric("ssim", 3, "SSIM"), Metric("lpips", 3, "LPIPS"))
EXTRAS = (Metric("params_m", 2, "params (M)"), Metric("sec_per_burst", 3, "s / burst"))


def score_row(params: Mapping[str, Any], result: Mapping[str, Any], track: str) -> dict[str, Any]:
    """One evaluated model as a scorecard run: its label, track and metrics."""
    return {
        "method": params["models"][result["model"]]["label"],
        "track": track,
        "model": result["model"],
        "psnr": result["psnr"],
        "ssim": result["ssim"],
        "lpips": result.get("lpips"),
        "params_m": result.get("parameters", 0) / 1e6,
        "sec_per_burst": result["seconds_per_burst"],
        "test_n": result["bursts"],
    }


def scorecard(
    params: Mapping[str, Any], results: list[dict[str, Any]], real: list[dict[str, Any]]
) -> tuple[Table, list[dict[str, Any]]]:
    """The scorecard table (one row per model and track; published methods we do not run are
    listed too) and our runs: synthetic-track ``results``, real-track ``real``."""
    runs = [score_row(params, r, "synthetic") for r in results]
    runs += [score_row(params, r, "real") for r in real]
    table = Table(
        "NTIRE 2021 burst SR: SyntheticBurst val (synthetic) and BurstSR val (real)",
        keys=("method", "track", "model"),
        metrics=METRICS,
        cells=[{k: r[k] for k in ("method", "track", "model")} for r in runs],
        include_reported=True,
        match=("method", "track"),
        extras=EXTRAS,
    )
    return table, runs


def _srgb(linear: torch.Tensor, cam: camera.CameraParams) -> np.ndarray:
    out = camera.process(linear[None].clamp(0, 1), cam)[0]
    return out.permute(1, 2, 0).numpy()


def figure_visual(
    params: Mapping[str, Any],
    val_dir: str,
    results: list[dict[str, Any]],
    examples: list[str],
    out: str | os.PathLike[str],
) -> None:
    """Frame 0 (demosaicked nearest-neighbour), each model, and the ground truth, in sRGB,
    each model with its PSNR on this burst."""
    import matplotlib.pyplot as plt

    idx = int(params["eval"]["example_index"])
    val = load_val(val_dir, idx + 1)
    cam = val.cam.index(slice(idx, idx + 1))
    gt = val.gt[idx]
    frame0 = camera.packed_to_rgb(val.burst[idx, 0])
    scale = gt.shape[-1] // frame0.shape[-1]
    frame0 = frame0.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    panels = [("input frame 0\n(nearest neighbour)", frame0)]
    for res, path in zip(results, examples, strict=True):
        pred = torch.from_numpy(np.load(path))
        panels.append((f"{res['model']}\n{res['psnr_per_burst'][idx]:.2f} dB", pred))
    panels.append(("ground truth", gt))
    use_style()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.0 * len(panels), 2.5))
    for ax, (title, img) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(_srgb(img.float(), cam))
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    fig.suptitle(
        f"Validation burst {idx}: PSNR of each model on this burst (linear space)", fontsize=8
    )
    save_figure(fig, out)


def figure_frames(
    params: Mapping[str, Any], results: list[dict[str, Any]], out: str | os.PathLike[str]
) -> None:
    """Validation PSNR against the number of burst frames given to each burst model; the
    single-frame models (frame 0 only) are horizontal reference lines."""
    import matplotlib.pyplot as plt

    use_style()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    n_max = max(max(int(k) for k in r["psnr_vs_frames"]) for r in results)
    styles = iter(["--", ":", "-.", (0, (5, 1))])
    for res in results:
        curve = sorted((int(k), v) for k, v in res["psnr_vs_frames"].items())
        label = params["models"][res["model"]]["label"]
        if res["kind"] == "burst":
            ax.plot(*zip(*curve, strict=True), marker="o", label=label)
        else:
            ax.axhline(
                curve[-1][1], linestyle=next(styles), color="grey", linewidth=1,
                label=f"{label} (frame 0 only)",
            )  # fmt: skip
    n = results[0]["bursts"]
    ax.set(
        xlabel="frames in the burst",
        ylabel="PSNR (dB, linear space)",
        title=f"PSNR against burst size ({n} validation bursts)",
        xlim=(0.5, n_max + 0.5),
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    save_figure(fig, out)


def summarize(
    params: Mapping[str, Any],
    reported_file: str | os.PathLike[str],
    val_dir: str,
    result_files: list[str],
    example_files: list[str],
    out_csv: str,
    out_md: str,
    fig_visual: str,
    fig_frames: str,
    real_files: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Write the scorecard and both figures (real-track results only add table rows)."""
    from repro.core import ReproError

    if len(result_files) != len(example_files):
        raise ReproError("summarize: give one --example per --result")
    results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in result_files]
    real = [json.loads(Path(p).read_text(encoding="utf-8")) for p in real_files or []]
    table, runs = scorecard(params, results, real)
    run = params.get("run", "")
    border = params["eval"]["boundary_ignore"]
    notes = [
        f"Ours, synthetic: linear-space PSNR/SSIM (peak 1, 14-bit truncation, {border} px "
        f"border ignored) on the stored validation bursts of run {run} (column test images).",
        "Reported: numbers from the cited source, not recomputed here; a row without a model "
        "was not run here, and an empty cell was not published.",
        "A model named '(oracle: ground-truth flow)' aligns frames with the true motion, which "
        "no real method has; it stands on no published row.",
    ]
    skipped = sorted({r["lpips_note"] for r in results + real if r.get("lpips_note")})
    notes += [f"LPIPS empty: {reason}" for reason in skipped]
    if real:
        flow = real[0].get("flow", "dis_flow")
        words = "PWC-Net flow (as the toolkit)" if flow == "pwcnet" else "OpenCV DIS flow"
        notes.append(
            f"Ours, real: AlignedPSNR and aligned SSIM on {real[0]['bursts']} BurstSR val "
            f"bursts with {words}"
            + (
                ""
                if flow == "pwcnet"
                else " instead of PWC-Net (not comparable to published numbers)"
            )
            + "; models trained on synthetic bursts only (no fine-tuning on BurstSR train)."
        )
    else:
        notes.append("Track real: not run (burst_sr.data.burstsr_root unset).")
    if params.get("source", "photos") == "photos":
        notes.append(
            "Quick-run images are scikit-image photographs with small crops, not the 300 "
            "official SyntheticBurst val bursts: our and reported levels differ."
        )
    here = Path(out_md).parent
    listed = [
        (os.path.relpath(fig_visual, here), "One validation burst: frame 0, each model (with "
         "its PSNR on this burst) and the ground truth, in sRGB."),
        (os.path.relpath(fig_frames, here), "PSNR against the number of frames each burst "
         "model is given; single-frame baselines as reference lines."),
    ]  # fmt: skip
    rows = write_scorecard(
        [table], runs, load_reported(reported_file), out_csv, out_md,
        "Burst SR (NTIRE 2021) scorecard", notes, listed, Path(out_md).with_suffix(".html"),
    )  # fmt: skip
    figure_visual(params, val_dir, results, example_files, fig_visual)
    figure_frames(params, results, fig_frames)
    return rows
