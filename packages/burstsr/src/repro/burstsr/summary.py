"""The burst SR scorecard (our models beside the published methods) and its two figures.

Params: :func:`repro.burstsr.plan.summary_params` (:class:`repro.burstsr.params.SummaryParams`);
published numbers: a reported file (this package's ``reported/burst-sr.yaml``) read with
:func:`repro.core.scorecard.load_reported`. The files go to one folder
(:data:`repro.burstsr.plan.SUMMARY_FILES`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.burstsr import camera
from repro.burstsr.params import SummaryParams
from repro.burstsr.plan import REAL_NOT_PLANNED, SUMMARY_FILES
from repro.burstsr.valset import load_val
from repro.core import ReproError
from repro.core.params import to_dict
from repro.core.plotting import save_figure, use_style
from repro.core.provenance import write_provenance
from repro.core.scorecard import Metric, Table, load_reported, write_scorecard

#: Precision as the papers print it: PSNR in dB to 2 decimals, SSIM and LPIPS to 3.
METRICS = (Metric("psnr", 2, "PSNR (dB)"), Metric("ssim", 3, "SSIM"), Metric("lpips", 3, "LPIPS"))
EXTRAS = (Metric("params_m", 2, "params (M)"), Metric("sec_per_burst", 3, "s / burst"))


#: What the published numbers are measured on. Synthetic track: the official SyntheticBurst
#: val set, 300 bursts of 14 frames (384 px ground truth, x4) pre-generated from the Zurich
#: RAW-to-RGB test split; ours is comparable when made the same way from the same split.
#: Real track: the 882 BurstSR val bursts, AlignedPSNR with PWC-Net flow.
OFFICIAL_SYNTHETIC = {"bursts": 300, "frames": 14, "crop": 384, "downsample": 4}
OFFICIAL_REAL_BURSTS = 882


def source_kind(meta: Mapping[str, Any]) -> str:
    """'photos' or 'zurich-test': the images the stored validation bursts were made from
    (sets written before repro-burstsr 0.4.0 name only the photographs or the source's class,
    and make-val reads Zurich's test split)."""
    if meta.get("source_kind"):
        return str(meta["source_kind"])
    return "zurich-test" if meta.get("source") == "ZurichSource" else "photos"


def synthetic_mismatch(meta: Mapping[str, Any] | None, result: Mapping[str, Any]) -> list[str]:
    """How the data a synthetic-track ``result`` was measured on differs from the official
    val set (empty: comparable). ``meta``: the stored bursts' ``meta.json``."""
    if meta is None:
        return ["the stored validation bursts are unknown"]
    why = []
    if source_kind(meta) != "zurich-test":
        names = meta.get("source")
        listed = f" ({', '.join(names)})" if isinstance(names, list) else ""
        why.append(f"scikit-image photographs{listed}, not the Zurich RAW-to-RGB test split")
    burst = meta.get("burst", {})
    official = OFFICIAL_SYNTHETIC
    if int(result["bursts"]) < official["bursts"]:
        why.append(f"{result['bursts']} bursts, not {official['bursts']}")
    frames = result.get("frames", burst.get("burst_size"))
    if frames != official["frames"]:
        why.append(f"{frames} frames, not {official['frames']}")
    if burst.get("crop") != official["crop"]:
        why.append(f"{burst.get('crop')} px, not {official['crop']}")
    if burst.get("downsample", official["downsample"]) != official["downsample"]:
        why.append(f"x{burst.get('downsample')}, not x{official['downsample']}")
    return why


def real_mismatch(result: Mapping[str, Any]) -> list[str]:
    """How a real-track ``result`` differs from the published protocol (empty: comparable)."""
    why = []
    if int(result["bursts"]) < OFFICIAL_REAL_BURSTS:
        why.append(f"{result['bursts']} of the {OFFICIAL_REAL_BURSTS} BurstSR val bursts")
    if result.get("flow", "dis_flow") != "pwcnet":
        why.append("OpenCV DIS flow in AlignedPSNR, not PWC-Net")
    return why


def comparability_notes() -> list[str]:
    """The rule, as the scorecard states it."""
    o = OFFICIAL_SYNTHETIC
    return [
        "difference = ours - reported, only where ours is measured on data like the published "
        f"numbers': synthetic track, at least {o['bursts']} bursts of {o['frames']} frames, "
        f"{o['crop']} px, x{o['downsample']}, made from the Zurich RAW-to-RGB test split (as "
        "the official SyntheticBurst val set; ours are our own bursts of it); real track, all "
        f"{OFFICIAL_REAL_BURSTS} BurstSR val bursts with PWC-Net flow in AlignedPSNR. Elsewhere "
        "the reported value is shown for reference and the difference is empty; the note "
        "column says what differs ('not comparable: ...').",
    ]


def score_row(params: SummaryParams, result: Mapping[str, Any], track: str) -> dict[str, Any]:
    """One evaluated model as a scorecard run: its label, track and metrics."""
    return {
        "method": params.models[result["model"]].label,
        "track": track,
        "model": result["model"],
        "psnr": result["psnr"],
        "ssim": result["ssim"],
        "lpips": result.get("lpips"),
        "params_m": result.get("parameters", 0) / 1e6,
        "sec_per_burst": result["seconds_per_burst"],
        "test_n": result["bursts"],
    }


def declared_cells(
    params: SummaryParams, order: Sequence[str] = ()
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The rows our models fill: every scored model on the synthetic track (in ``order``,
    then the others), every model that can run on real bursts on the real track; a real-track
    row is declared not planned, with the reason, when the user has not set the BurstSR val
    bursts (``data.burstsr_root``)."""
    labels = {name: spec.label for name, spec in params.models.items()}
    names = list(dict.fromkeys([n for n in order if n in labels] + list(labels)))
    cells = {
        (labels[n], "synthetic", n): {"method": labels[n], "track": "synthetic", "model": n}
        for n in names
    }
    real = params.real_track
    for n in real.models:
        cell = {"method": labels[n], "track": "real", "model": n}
        if not real.planned:
            cell |= {"planned": False, "note": REAL_NOT_PLANNED}
        cells[labels[n], "real", n] = cell
    return cells


def scorecard(
    params: SummaryParams,
    results: list[dict[str, Any]],
    real: list[dict[str, Any]],
    val_meta: Mapping[str, Any] | None = None,
) -> tuple[Table, list[dict[str, Any]]]:
    """The scorecard table (one row per model and track, :func:`declared_cells`; published
    methods we do not run are listed too) and our runs: synthetic-track ``results`` on the
    stored bursts described by ``val_meta`` (their ``meta.json``), real-track ``real``; a
    trained model's seeds are several runs of its row (mean, sample std and n). A cell
    measured on other data than the published numbers (:func:`synthetic_mismatch`,
    :func:`real_mismatch`) is declared not comparable: its difference stays empty and its
    note says why."""
    runs = [score_row(params, r, "synthetic") for r in results]
    runs += [score_row(params, r, "real") for r in real]
    declared = declared_cells(params, [r["model"] for r in results])  # the runs' model order
    why: dict[tuple[str, str, str], list[str]] = {key: [] for key in declared}
    for track, found in (("synthetic", results), ("real", real)):
        for r, run in zip(found, [x for x in runs if x["track"] == track], strict=True):
            reasons = synthetic_mismatch(val_meta, r) if track == "synthetic" else real_mismatch(r)
            cell = why.setdefault((run["method"], track, run["model"]), [])
            cell += [w for w in reasons if w not in cell]
    cells = [
        declared.get(key, dict(zip(("method", "track", "model"), key, strict=True)))
        | ({"comparable": False, "note": "not comparable: " + "; ".join(w)} if w else {})
        for key, w in why.items()
    ]
    table = Table(
        "NTIRE 2021 burst SR: SyntheticBurst val (synthetic) and BurstSR val (real)",
        keys=("method", "track", "model"),
        metrics=METRICS,
        cells=cells,
        include_reported=True,
        match=("method", "track"),
        extras=EXTRAS,
    )
    return table, runs


def _srgb(linear: torch.Tensor, cam: camera.CameraParams) -> np.ndarray:
    out = camera.process(linear[None].clamp(0, 1), cam)[0]
    return out.permute(1, 2, 0).numpy()


def first_seed(
    results: list[dict[str, Any]], examples: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """One run per model, in the order the models first appear: a trained model's lowest
    seed (an untrained baseline has one run, seed None)."""
    best: dict[str, tuple[dict[str, Any], str]] = {}
    for res, path in zip(results, examples, strict=True):
        held = best.get(res["model"])
        if held is None or (res.get("seed") or 0) < (held[0].get("seed") or 0):
            best[res["model"]] = (res, path)
    return [r for r, _ in best.values()], [e for _, e in best.values()]


def figure_visual(
    params: SummaryParams,
    val_dir: str,
    results: list[dict[str, Any]],
    examples: list[str],
    out: str | os.PathLike[str],
) -> None:
    """Frame 0 (demosaicked nearest-neighbour), each model, and the ground truth, in sRGB,
    each model with its PSNR on this burst (a trained model: its lowest seed's run)."""
    import matplotlib.pyplot as plt

    results, examples = first_seed(results, examples)

    idx = params.eval.example_index
    val = load_val(val_dir, idx + 1)
    cam = val.cam.index(slice(idx, idx + 1))
    gt = val.gt[idx]
    frame0 = camera.packed_to_rgb(val.burst[idx, 0])
    scale = gt.shape[-1] // frame0.shape[-1]
    frame0 = frame0.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    panels = [("input frame 0\n(nearest neighbour)", frame0)]
    for res, path in zip(results, examples, strict=True):
        pred = torch.from_numpy(np.load(path))
        seed = "" if res.get("seed") is None else f" (seed {res['seed']})"
        panels.append((f"{res['model']}{seed}\n{res['psnr_per_burst'][idx]:.2f} dB", pred))
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
    params: SummaryParams, results: list[dict[str, Any]], out: str | os.PathLike[str]
) -> None:
    """Validation PSNR against the number of burst frames given to each burst model (the mean
    over its seeds); the single-frame models (frame 0 only) are horizontal reference lines."""
    import matplotlib.pyplot as plt

    use_style()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    n_max = max(max(int(k) for k in r["psnr_vs_frames"]) for r in results)
    styles = iter(["--", ":", "-.", (0, (5, 1))])
    curves: dict[str, list[dict[str, float]]] = {}
    for res in results:
        curves.setdefault(res["model"], []).append(res["psnr_vs_frames"])
    for res in first_seed(results, [""] * len(results))[0]:
        runs = curves[res["model"]]
        curve = sorted((int(k), float(np.mean([c[k] for c in runs]))) for k in runs[0])
        label = params.models[res["model"]].label
        if len(runs) > 1:
            label += f" (mean of {len(runs)} seeds)"
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
    params: SummaryParams,
    reported_file: str | os.PathLike[str],
    val_dir: str,
    result_files: list[str],
    example_files: list[str],
    real_files: list[str],
    out_dir: str | os.PathLike[str],
) -> list[dict[str, Any]]:
    """Write the scorecard (``summary.csv``, ``.md``, ``.html``), both figures (real-track
    results only add table rows) and ``provenance.json`` into ``out_dir``."""
    if len(result_files) != len(example_files):
        raise ReproError("summarize: give one --examples file per --results file")
    out = {k: Path(out_dir) / name for k, name in SUMMARY_FILES.items()}
    results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in result_files]
    real = [json.loads(Path(p).read_text(encoding="utf-8")) for p in real_files]
    meta_path = Path(val_dir) / "meta.json"
    val_meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else None
    table, runs = scorecard(params, results, real, val_meta)
    rows = write_scorecard(
        [table], runs, load_reported(reported_file), out["csv"], out["md"],
        "Burst SR (NTIRE 2021) scorecard", _notes(params, results, real),
        _figure_list(out), out["html"],
    )  # fmt: skip
    figure_visual(params, val_dir, results, example_files, out["visual"])
    figure_frames(params, results, out["frames"])
    write_provenance(out["provenance"], to_dict(params), None)
    return rows


def _notes(
    params: SummaryParams, results: list[dict[str, Any]], real: list[dict[str, Any]]
) -> list[str]:
    """The scorecard's notes: how ours were measured, seeds, LPIPS, the real track, the rule."""
    border = params.eval.boundary_ignore
    notes = [
        f"Ours, synthetic: linear-space PSNR/SSIM (peak 1, 14-bit truncation, {border} px "
        f"border ignored) on the stored validation bursts of run {params.run} (column test "
        "images).",
        "Ours: a trained model's mean over its n seeds (burst_sr.seeds "
        f"{params.seeds}) with the sample std; an untrained baseline (bicubic, "
        "bilinear) is scored once (n 1).",
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
    return notes + comparability_notes()


def _figure_list(out: Mapping[str, Path]) -> list[tuple[str, str]]:
    """The figures the Markdown scorecard lists, relative to it, with their captions."""
    here = out["md"].parent
    return [
        (os.path.relpath(out["visual"], here), "One validation burst: frame 0, each model (with "
         "its PSNR on this burst) and the ground truth, in sRGB."),
        (os.path.relpath(out["frames"], here), "PSNR against the number of frames each burst "
         "model is given; single-frame baselines as reference lines."),
    ]  # fmt: skip
