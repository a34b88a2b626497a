"""Scoring one model on the stored validation bursts (track 1) or on BurstSR val (track 2)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from repro.burstsr import aligned, burstsr_data, metrics, models, synth
from repro.burstsr.params import EvalParams, ModelSpec, RealParams
from repro.burstsr.train import load_model, pick_device
from repro.burstsr.valset import load_val
from repro.core import ReproError
from repro.core.atomic import atomic_open, write_json

Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_predictor(
    spec: ModelSpec, model_path: str | None, device: torch.device
) -> tuple[Predictor, dict[str, Any]]:
    """A function (burst, packed flow) -> prediction, and facts about the model."""
    kind = spec.kind
    if kind in ("bicubic", "bilinear"):
        return (lambda burst, flow: models.demosaic_upsample(burst, kind)), {"parameters": 0}
    if not model_path:
        raise ReproError(f"model kind '{kind}' needs --model CHECKPOINT")
    model, ckpt = load_model(model_path, device)
    info = {"parameters": int(ckpt["parameters"]), "train_iterations": int(ckpt["iterations"])}

    @torch.no_grad()
    def predict(burst: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return model(burst, flow)

    return predict, info


def evaluate(
    params: EvalParams,
    val_dir: str,
    out_json: str,
    model_path: str | None = None,
    example_out: str | None = None,
) -> dict[str, Any]:
    """Score one model (params from :func:`repro.burstsr.plan.eval_params`) on the stored
    bursts; write the JSON (and one example prediction)."""
    name, spec, ecfg = params.model, params.spec, params.eval
    device = pick_device(params.device)
    torch.manual_seed(0)
    val = load_val(val_dir, ecfg.limit)
    predict, info = make_predictor(spec, model_path, device)
    n_total = val.burst.shape[1]
    # single-frame models see frame 0 only: one score (drawn as a reference line)
    counts = [k for k in ecfg.frame_counts if k <= n_total] if spec.kind == "burst" else []
    if n_total not in counts:
        counts.append(n_total)
    border, bits, chunk = ecfg.boundary_ignore, ecfg.quantize_bits, ecfg.batch_size
    lpips = (
        metrics.LPIPS(params.lpips_weights, key="burst_sr.lpips_weights") if ecfg.lpips else None
    )
    per_count: dict[int, list[float]] = {k: [] for k in counts}
    psnr_all, ssim_all, lpips_all, seconds = [], [], [], 0.0
    example = None
    for start in range(0, val.burst.shape[0], chunk):
        sl = slice(start, start + chunk)
        burst, gt = val.burst[sl].to(device), val.gt[sl].to(device)
        flow = synth.flow_to_packed(val.flow[sl]).to(device)
        for k in counts:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            pred = predict(burst[:, :k], flow[:, :k]).float()
            if device.type == "cuda":
                torch.cuda.synchronize()
            per_count[k].extend(metrics.psnr(pred, gt, border, bits).tolist())
            if k == n_total:
                seconds += time.perf_counter() - t0
                psnr_all.extend(metrics.psnr(pred, gt, border, bits).tolist())
                ssim_all.extend(metrics.ssim(pred, gt, border, bits).tolist())
                if lpips is not None and lpips.available:
                    lpips_all.extend(lpips(pred, gt, border, bits).tolist())
                idx = ecfg.example_index
                if example is None and start <= idx < start + burst.shape[0]:
                    example = metrics.quantize(pred[idx - start], bits or 14).cpu().numpy()
    k_total = len(psnr_all)
    result = {
        "model": name,
        "seed": params.seed,  # the training run's (None: an untrained baseline)
        "kind": spec.kind,
        "align": spec.align,
        "bursts": k_total,
        "frames": n_total,
        "psnr": float(np.mean(psnr_all)),
        "ssim": float(np.mean(ssim_all)),
        "lpips": float(np.mean(lpips_all)) if lpips_all else None,
        "lpips_note": None
        if lpips_all
        else (lpips.reason if lpips is not None else "disabled in config (burst_sr.eval.lpips)"),
        "psnr_per_burst": psnr_all,
        "psnr_vs_frames": {str(k): float(np.mean(v)) for k, v in per_count.items()},
        "seconds_per_burst": seconds / max(k_total, 1),
        "device": str(device),
        "boundary_ignore": border,
        "quantize_bits": bits,
        **info,
    }
    write_json(out_json, result)
    if example_out is not None:
        if example is None:
            raise ReproError(
                f"burst_sr.eval.example_index: {ecfg.example_index} >= {k_total} bursts"
            )
        with atomic_open(example_out, "wb") as fh:
            np.save(fh, example.astype(np.float32))
    run = name if params.seed is None else f"{name} seed {params.seed}"
    print(f"{run}: PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f} on {k_total} bursts")
    return result


#: Frames per BurstSR burst (samsung_00 .. samsung_13).
REAL_BURST_SIZE = 14


def aligned_flow(
    params: RealParams, device: str | torch.device = "cpu"
) -> tuple[aligned.FlowFn, str]:
    """AlignedPSNR's flow estimator and its name: PWC-Net on ``device``, as the toolkit, when
    ``burst_sr.pwcnet_weights`` is set (``eval.aligned_flow`` auto or pwcnet), else OpenCV DIS."""
    choice = params.eval.aligned_flow
    weights = params.pwcnet_weights
    if choice == "dis" or (choice == "auto" and not weights):
        return aligned.dis_flow, "dis_flow"
    if not weights:
        raise ReproError("burst_sr.eval.aligned_flow: pwcnet needs burst_sr.pwcnet_weights")
    from repro.burstsr.pwcnet import load_pwcnet, pwc_flow

    return pwc_flow(load_pwcnet(weights, device), bgr=params.pwcnet_bgr), "pwcnet"


def evaluate_real(
    params: RealParams,
    root: str,
    out_json: str,
    model_path: str | None = None,
    flow_fn: aligned.FlowFn | None = None,
) -> dict[str, Any]:
    """Score one model (params from :func:`repro.burstsr.plan.real_params`) on the BurstSR
    val bursts (track 2) with AlignedPSNR / aligned SSIM. ``flow_fn`` defaults to
    :func:`aligned_flow`'s choice."""
    name, spec, ecfg = params.model, params.spec, params.eval
    if spec.alignment == "gt":
        raise ReproError(
            f"burst_sr.models.{name}: align 'gt' needs ground-truth flow, which real bursts lack"
        )
    device = pick_device(params.device)
    flow_fn, flow_name = (
        (flow_fn, getattr(flow_fn, "__name__", "custom"))
        if flow_fn
        else aligned_flow(params, device)
    )
    torch.manual_seed(0)
    bursts = burstsr_data.list_bursts(root, "val")
    if ecfg.limit:
        bursts = bursts[: ecfg.limit]
    predict, info = make_predictor(spec, model_path, device)
    border, bits = ecfg.boundary_ignore, ecfg.quantize_bits
    psnr_all, ssim_all, seconds = [], [], 0.0
    for path in bursts:
        real = burstsr_data.load_burst(path, REAL_BURST_SIZE)
        burst = real.burst[None].to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        pred = predict(burst, None).float()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        if bits:
            pred = metrics.quantize(pred, bits)
        p, s = aligned.aligned_scores_one(
            pred[0].cpu(), real.gt, real.burst[0], flow_fn, border=border
        )
        psnr_all.append(p)
        ssim_all.append(s)
    result = {
        "model": name,
        "seed": params.seed,
        "kind": spec.kind,
        "align": spec.align,
        "track": "real",
        "bursts": len(bursts),
        "frames": REAL_BURST_SIZE,
        "psnr": float(np.nanmean(psnr_all)),
        "ssim": float(np.nanmean(ssim_all)),
        "lpips": None,
        "lpips_note": "not computed on the real track",
        "psnr_per_burst": psnr_all,
        "ssim_per_burst": ssim_all,
        "burst_names": [p.name for p in bursts],
        "flow": flow_name,
        "seconds_per_burst": seconds / max(len(bursts), 1),
        "device": str(device),
        "boundary_ignore": border,
        "quantize_bits": bits,
        **info,
    }
    write_json(out_json, result)
    print(
        f"{name} (real): AlignedPSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}"
        f" on {len(bursts)} bursts"
    )
    return result
