"""Summary table (our scores beside the reported ones) and the two figures."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.burstsr import camera
from repro.burstsr.valset import load_val
from repro.core import ReproError
from repro.core.plotting import save_figure, use_style
from repro.core.tables import write_table

COLUMNS = [
    "method",
    "track",
    "model",
    "psnr",
    "ssim",
    "lpips",
    "params_m",
    "sec_per_burst",
    "reported_psnr",
    "reported_ssim",
    "reported_lpips",
    "reported_source",
    "note",
]


def _reported(params: dict[str, Any]) -> list[dict[str, Any]]:
    rows = params.get("reported", [])
    for i, row in enumerate(rows):
        if not row.get("source"):
            raise ReproError(f"burst_sr.reported[{i}]: a reported number needs a 'source'")
    return rows


def build_rows(
    params: dict[str, Any],
    results: list[dict[str, Any]],
    run_note: str,
    real_results: list[dict[str, Any]] | None = None,
    real_note: str = "",
) -> list[dict[str, Any]]:
    """Our models first (each beside the reported row it reproduces), then other methods.

    ``results`` are synthetic-track scores, ``real_results`` real-track (BurstSR val) ones.
    """
    reported = _reported(params)
    used: set[int] = set()
    rows = []
    scored = [(r, "synthetic", run_note) for r in results]
    scored += [(r, "real", real_note) for r in real_results or []]
    for res, track, note in scored:
        spec = params["models"][res["model"]]
        method = spec.get("reported_as") or res["model"]
        match = next(
            (
                i
                for i, r in enumerate(reported)
                if r["method"] == method and r["track"] == track and i not in used
            ),
            None,
        )
        rep = reported[match] if match is not None else {}
        if match is not None:
            used.add(match)
        rows.append(
            {
                "method": method,
                "track": track,
                "model": res["model"],
                "psnr": res["psnr"],
                "ssim": res["ssim"],
                "lpips": res["lpips"],
                "params_m": res.get("parameters", 0) / 1e6,
                "sec_per_burst": res["seconds_per_burst"],
                "reported_psnr": rep.get("psnr"),
                "reported_ssim": rep.get("ssim"),
                "reported_lpips": rep.get("lpips"),
                "reported_source": rep.get("source"),
                "note": "; ".join(filter(None, [note, res.get("lpips_note")])),
            }
        )
    for i, rep in enumerate(reported):
        if i in used:
            continue
        rows.append(
            {
                "method": rep["method"],
                "track": rep["track"],
                "model": None,
                "reported_psnr": rep.get("psnr"),
                "reported_ssim": rep.get("ssim"),
                "reported_lpips": rep.get("lpips"),
                "reported_source": rep["source"],
                "note": "not run here",
            }
        )
    return rows


def _srgb(linear: torch.Tensor, cam: camera.CameraParams) -> np.ndarray:
    out = camera.process(linear[None].clamp(0, 1), cam)[0]
    return out.permute(1, 2, 0).numpy()


def figure_visual(
    params: dict[str, Any],
    val_dir: str,
    results: list[dict[str, Any]],
    examples: list[str],
    out: str | os.PathLike[str],
) -> None:
    """Frame 0 (demosaicked nearest-neighbour), each model, and the ground truth, in sRGB."""
    import matplotlib.pyplot as plt

    idx = int(params["eval"]["example_index"])
    val = load_val(val_dir, idx + 1)
    cam = val.cam.index(slice(idx, idx + 1))
    gt = val.gt[idx]
    frame0 = camera.packed_to_rgb(val.burst[idx, 0])
    scale = gt.shape[-1] // frame0.shape[-1]
    frame0 = frame0.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    panels = [("input frame 0", frame0)]
    for res, path in zip(results, examples, strict=True):
        pred = torch.from_numpy(np.load(path))
        panels.append((f"{res['model']}\n{res['psnr']:.2f} dB", pred))
    panels.append(("ground truth", gt))
    use_style()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.0 * len(panels), 2.4))
    for ax, (title, img) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(_srgb(img.float(), cam))
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    fig.suptitle(f"validation burst {idx} (linear PSNR over the whole set)", fontsize=8)
    save_figure(fig, out)


def figure_frames(results: list[dict[str, Any]], out: str | os.PathLike[str]) -> None:
    """Validation PSNR against the number of burst frames given to each model."""
    import matplotlib.pyplot as plt

    use_style()
    fig, ax = plt.subplots()
    n_max = max(max(int(k) for k in r["psnr_vs_frames"]) for r in results)
    for res in results:
        curve = sorted((int(k), v) for k, v in res["psnr_vs_frames"].items())
        if len(curve) > 1:
            ax.plot(*zip(*curve, strict=True), marker="o", label=res["model"])
        else:
            ax.axhline(
                curve[-1][1],
                linestyle="--",
                linewidth=1,
                label=f"{res['model']} (frame 0)",
                color="grey" if res["kind"] in ("bicubic", "bilinear") else None,
            )
    ax.set_xlabel("frames in the burst")
    ax.set_ylabel("PSNR (dB, linear)")
    ax.set_xlim(0.5, n_max + 0.5)
    ax.legend(fontsize=7)
    save_figure(fig, out)


def summarize(
    params: dict[str, Any],
    val_dir: str,
    result_files: list[str],
    example_files: list[str],
    out_csv: str,
    out_md: str,
    fig_visual: str,
    fig_frames: str,
    run: str,
    real_files: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Write the summary table and both figures (real-track results only add table rows)."""
    if len(result_files) != len(example_files):
        raise ReproError("summarize: give one --example per --result")
    results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in result_files]
    n = results[0]["bursts"] if results else 0
    note = f"run {run}: {n} stored val bursts"
    real = [json.loads(Path(p).read_text(encoding="utf-8")) for p in real_files or []]
    flow = real[0].get("flow", "dis_flow") if real else ""
    flow_words = "PWC-Net flow (as the toolkit)" if flow == "pwcnet" else "OpenCV DIS flow"
    real_note = (
        f"run {run}: {real[0]['bursts']} BurstSR val bursts, AlignedPSNR/SSIM with "
        f"{flow_words}; trained on synthetic bursts only"
        if real
        else ""
    )
    rows = build_rows(params, results, note, real, real_note)
    notes = [
        "Ours: linear-space PSNR/SSIM (peak 1, 14-bit truncation, "
        f"{params['eval']['boundary_ignore']} px border ignored) on the stored validation bursts.",
        "Reported: numbers from the cited source, not recomputed here; empty cells were not "
        "published or cannot be run here.",
    ]
    if real:
        notes.append(
            "Ours, track real: AlignedPSNR and aligned SSIM on the BurstSR val bursts "
            f"(burst_sr.data.burstsr_root), {flow_words}"
            + (
                " instead of PWC-Net (not comparable to published numbers)"
                if flow != "pwcnet"
                else ""
            )
            + ", models trained on synthetic bursts only (no fine-tuning on BurstSR train)."
        )
    else:
        notes.append(
            "Track real: not run (burst_sr.data.burstsr_root unset); our real rows are absent."
        )
    if params["data"].get("source", "photos") == "photos":
        notes.append(
            "Quick-run images are scikit-image photographs with small crops, not the 300 "
            "official SyntheticBurst val bursts: our and reported levels differ."
        )
    write_table(rows, out_csv, out_md, COLUMNS, "Burst SR (NTIRE 2021) summary", notes)
    figure_visual(params, val_dir, results, example_files, fig_visual)
    figure_frames(results, fig_frames)
    return rows
