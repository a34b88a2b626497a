"""A simulated fMRI experiment on the actual stimuli, written as a BIDS dataset.

Each subject sees every stimulus once per run (random order, fixed SOA plus uniform jitter,
fast event-related design). Voxel time series are
``baseline + X P + drift + motion + AR(1) noise``: ``X`` the stimulus regressors convolved
with the HRF (nilearn's, ``sim.hrf_model``), ``P`` the planted response patterns.

Planted geometry (``geometry: planted``), drawn per subject:

- every ROI: a common response ``mean_response`` to all stimuli;
- the first ROI ("early"): the centred pixel vectors of the stimuli times a random Gaussian
  projection, so its RDM follows pixel dissimilarity (random projections keep distances);
- the other ROIs ("late"): a random prototype per class plus ``item_weight`` times a random
  pattern per source image, shared by its clean, white and black versions (category
  structure, perception of the true class);
- in ``wb_roi``: the white-box version of each image gets an extra random displacement of
  rms ``wb_effect * signal``, so ``d(clean, white) > d(clean, black)`` there.

``geometry: null`` replaces all stimulus-specific patterns by i.i.d. Gaussian ones (no
relation to pixels, categories or attack type). Behaviour: each trial is answered correctly
with probability ``p_correct`` whatever the condition. The patterns are scaled to rms
``signal`` over stimuli and voxels before the white-box displacement is added.
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from repro.core.atomic import atomic_path, write_json, write_text
from repro.fmri.bids import bold_name
from repro.fmri.glm import one_blas_thread
from repro.fmri.params import SimParams
from repro.fmri.stimuli import StimulusSet

MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def roi_masks(params: SimParams) -> dict[str, np.ndarray]:
    """One mask per ROI: the first ``roi_voxels`` voxels (raster order) of its own z-slab."""
    nx, ny, nz = params.shape
    step = nz // len(params.rois)
    masks = {}
    for k, roi in enumerate(params.rois):
        m = np.zeros(params.shape, dtype=bool)
        plane = np.zeros(nx * ny, dtype=bool)
        plane[: params.roi_voxels] = True
        m[:, :, k * step] = plane.reshape(nx, ny)
        masks[roi] = m
    return masks


def _scale(p: np.ndarray, rms: float) -> np.ndarray:
    return p * (rms / math.sqrt(np.mean(p * p)))


def planted_patterns(
    stim: StimulusSet, params: SimParams, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Stimulus-by-voxel response patterns ``(n_stimuli, roi_voxels)`` of one subject."""
    n, v = len(stim.table), params.roi_voxels
    labels = stim.labels
    sources = stim.column("source").astype(np.int64)
    _, src_idx = np.unique(sources, return_inverse=True)
    white = stim.conditions == "white"
    out = {}
    for k, roi in enumerate(params.rois):
        if params.geometry == "null":
            p = _scale(rng.standard_normal((n, v)), params.signal)
        elif k == 0:
            pix = stim.images.reshape(n, -1).astype(np.float64) / 255.0
            pix = pix - pix.mean(axis=0)
            proj = rng.standard_normal((pix.shape[1], v))
            p = _scale(pix @ proj, params.signal)
        else:
            proto = rng.standard_normal((int(labels.max()) + 1, v))
            item = rng.standard_normal((int(src_idx.max()) + 1, v))
            p = _scale(proto[labels] + params.item_weight * item[src_idx], params.signal)
        if params.geometry == "planted" and roi == params.wb_roi and params.wb_effect > 0:
            shift = rng.standard_normal((int(src_idx.max()) + 1, v))
            p = p + white[:, None] * params.wb_effect * params.signal * shift[src_idx]
        out[roi] = p + params.mean_response
    return out


def _ar1(rng: np.random.Generator, shape: tuple[int, int], rho: float, sd: float) -> np.ndarray:
    e = rng.standard_normal(shape) * sd
    out = np.empty(shape)
    out[0] = e[0]
    scale = math.sqrt(1 - rho * rho)
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + scale * e[t]
    return out


def _write_nifti(path: Path, data: np.ndarray, params: SimParams, tr: float | None) -> None:
    affine = np.diag([params.voxel_size] * 3 + [1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    if tr is not None:
        img.header.set_zooms((params.voxel_size,) * 3 + (tr,))
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(img.to_bytes(), compresslevel=6, mtime=0))


def _tsv(path: Path, table: pd.DataFrame) -> None:
    write_text(path, table.to_csv(sep="\t", index=False, na_rep="n/a", float_format="%.4f"))


def simulate_run(
    stim: StimulusSet,
    patterns: dict[str, np.ndarray],
    masks: dict[str, np.ndarray],
    params: SimParams,
    rng: np.random.Generator,
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """One run: 4-D data, its events table and its motion confounds."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    n = len(stim.table)
    order = rng.permutation(n)
    onsets = params.lead_in + np.arange(n) * params.soa + rng.uniform(0, params.jitter, n)
    n_vols = int(math.ceil((onsets[-1] + params.stim_duration + params.tail) / params.tr))
    ids = np.array(stim.ids)[order]
    labels = stim.labels[order]
    correct = rng.random(n) < params.p_correct
    wrong = (labels + rng.integers(1, len(stim.classes), n)) % len(stim.classes)
    events = pd.DataFrame(
        {
            "onset": np.round(onsets, 4),
            "duration": params.stim_duration,
            "trial_type": ids,
            "condition": stim.conditions[order],
            "class": labels,
            "response": np.where(correct, labels, wrong),
            "correct": correct.astype(int),
        }
    )
    frame_times = np.arange(n_vols) * params.tr
    with one_blas_thread():
        design = make_first_level_design_matrix(
            frame_times, events[["onset", "duration", "trial_type"]],
            hrf_model=params.hrf_model, drift_model=None,
        )  # fmt: skip
    x = design[stim.ids].to_numpy()  # (n_vols, n_stimuli) in stimulus order
    n_vox = int(np.prod(params.shape))
    signal = np.zeros((n_vols, n_vox))
    for roi, m in masks.items():
        signal[:, m.ravel()] = x @ patterns[roi]
    t = (np.arange(n_vols) + 0.5) / n_vols
    basis = np.stack([np.cos(math.pi * k * t) for k in range(1, 4)] + [t - 0.5], axis=1)
    drift = basis @ rng.standard_normal((basis.shape[1], n_vox)) * params.drift / math.sqrt(2)
    motion = np.cumsum(rng.normal(0, params.motion_sd, (n_vols, len(MOTION))), axis=0)
    loadings = rng.standard_normal((len(MOTION), n_vox)) * params.motion_effect
    noise = _ar1(rng, (n_vols, n_vox), params.ar1, params.noise_sd)
    y = params.baseline + signal + drift + motion @ loadings + noise
    data = y.T.reshape(*params.shape, n_vols).astype(np.float32)
    return data, events, pd.DataFrame(motion, columns=list(MOTION))


def simulate_bids(
    stim: StimulusSet, params: SimParams, out_dir: str | os.PathLike[str]
) -> dict[str, Any]:
    """Write the whole dataset (see ``bids.py`` for the layout) and return what was planted."""
    root = Path(out_dir)
    rng = np.random.default_rng(params.seed)
    masks = roi_masks(params)
    subjects = [f"{k + 1:02d}" for k in range(params.n_subjects)]
    for sub in subjects:
        patterns = planted_patterns(stim, params, rng)
        for roi, m in masks.items():
            name = f"sub-{sub}_desc-{roi}_mask.nii.gz"
            _write_nifti(
                root / "derivatives/rois" / f"sub-{sub}" / name, m.astype(np.uint8), params, None
            )
        for run in range(1, params.n_runs + 1):
            data, events, motion = simulate_run(stim, patterns, masks, params, rng)
            func = root / f"sub-{sub}" / "func"
            bold = func / bold_name(sub, params.task, run)
            _write_nifti(bold, data, params, params.tr)
            write_json(bold.with_name(bold.name.replace(".nii.gz", ".json")),
                       {"RepetitionTime": params.tr, "TaskName": params.task})  # fmt: skip
            _tsv(func / bold.name.replace("_bold.nii.gz", "_events.tsv"), events)
            conf = f"sub-{sub}_task-{params.task}_run-{run}_desc-confounds_timeseries.tsv"
            _tsv(root / "derivatives/confounds" / f"sub-{sub}" / "func" / conf, motion)
    truth = {
        "geometry": params.geometry,
        "rois": {
            roi: ("none" if params.geometry == "null" else "pixels" if k == 0 else "category")
            for k, roi in enumerate(params.rois)
        },
        "wb_roi": params.wb_roi if params.geometry == "planted" and params.wb_effect > 0 else None,
        "p_correct": params.p_correct,
    }
    _tsv(
        root / "participants.tsv", pd.DataFrame({"participant_id": [f"sub-{s}" for s in subjects]})
    )
    write_json(root / "derivatives/simulation/truth.json", {**truth, "params": params.__dict__})
    write_json(
        root / "dataset_description.json",
        {"Name": "Simulated white- vs black-box adversarial fMRI", "BIDSVersion": "1.9.0",
         "DatasetType": "raw", "GeneratedBy": [{"Name": "repro-fmri simulate"}]},
    )  # fmt: skip
    return truth
